//! The local host: every function's handler in one process. It plays API Gateway (routing HTTP requests to
//! the ingest and tickets handlers) and the SQS event-source mappings (polling each queue in batches, deleting
//! what succeeded, returning failures to the queue with backoff, and leaving dead-lettering to the queue).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil::aggregates::TenantRegistry;
use vigil::alert::Alerter;
use vigil::analytics::{self, AnalyticsHandler, AnalyticsPorts};
use vigil::api::{json, ApiError, HttpRequest, HttpResponse};
use vigil::auth::Authenticator;
use vigil::clock::Clock;
use vigil::config::Config;
use vigil::detect::DetectionEngine;
use vigil::ingest::IngestHandler;
use vigil::messages::InboundMessage;
use vigil::metrics::KnownLabels;
use vigil::notify::Notifier;
use vigil::ports::{AlertStore, EventStore, Ports, QueueReceiver, QueueSender, WindowStore};
use vigil::score::Scorer;
use vigil::tickets::{self, TicketsHandler};

/// Event-source mapping settings, as on a Lambda SQS trigger.
#[derive(Clone, Copy, Debug)]
pub struct MappingSettings {
    pub batch_size: usize,
    pub visibility: Duration,
    /// Long-poll wait when a queue is empty.
    pub wait: Duration,
}

impl Default for MappingSettings {
    fn default() -> Self {
        MappingSettings { batch_size: 10, visibility: Duration::from_secs(180), wait: Duration::from_secs(1) }
    }
}

pub struct Host {
    pub ports: Ports,
    ingest: IngestHandler<dyn QueueSender>,
    tickets: TicketsHandler<dyn AlertStore>,
    scorer: Scorer<dyn EventStore, dyn WindowStore, dyn QueueSender>,
    alerter: Alerter<dyn AlertStore>,
    analytics: AnalyticsHandler,
}

/// Which consumer a mapping feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Score,
    Alert,
}

impl Host {
    pub fn new(
        ports: Ports,
        config: &Config,
        auth: Arc<Authenticator>,
        engine: Arc<DetectionEngine>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Host> {
        let analytics = AnalyticsHandler::new(
            AnalyticsPorts::from_ports(&ports),
            auth.clone(),
            clock.clone(),
            config.analytics.clone(),
        )
        .with_known_labels(KnownLabels::from_engine(&engine));
        Arc::new(Host {
            ingest: IngestHandler::new(ports.events_queue.clone(), auth.clone(), config.limits.clone(), clock.clone())
                .with_hec(config.hec.clone()),
            tickets: TicketsHandler::new(ports.alerts.clone(), auth, clock.clone()).with_events(ports.events.clone()),
            scorer: Scorer {
                events: ports.events.clone(),
                windows: ports.windows.clone(),
                detections: ports.detections_queue.clone(),
                engine: engine.clone(),
                clock: clock.clone(),
                retention: config.event_retention,
                // Registers each tenant once per process, so an all-tenants /metrics scrape finds it.
                aggregates: Arc::new(TenantRegistry::new(ports.aggregates.clone())),
            },
            alerter: Alerter {
                store: ports.alerts.clone(),
                engine,
                sla: config.sla.clone(),
                notifier: Notifier::new(config.webhooks.clone()).map(Arc::new),
                clock,
                aggregates: ports.aggregates.clone(),
            },
            analytics,
            ports,
        })
    }

    /// Routes a request the way API Gateway routes it to the functions.
    pub async fn handle_http(&self, req: HttpRequest) -> HttpResponse {
        if req.method() == http::Method::GET && req.uri().path() == "/healthz" {
            return self.health().await;
        }
        if req.method() == http::Method::GET {
            if let Some(page) = crate::console::serve(req.uri().path()) {
                return page;
            }
        }
        if IngestHandler::<dyn QueueSender>::route(&req).is_some()
            || req.uri().path().starts_with("/services/collector/health")
        {
            return self.ingest.handle(req).await;
        }
        if tickets::owns(&req) {
            return self.tickets.handle(req).await;
        }
        if analytics::owns(&req) {
            return self.analytics.handle(req).await;
        }
        let _span = vigil::access_log::span(&req).entered();
        vigil::access_log::error_response(ApiError::not_found())
    }

    /// `GET /healthz`: liveness plus the depth of every queue, so operators (and tests) can see a backlog.
    async fn health(&self) -> HttpResponse {
        let p = &self.ports;
        let queues = [
            ("events", &p.events_receiver),
            ("events_dead_letters", &p.events_dead_letters),
            ("detections", &p.detections_receiver),
            ("detections_dead_letters", &p.detections_dead_letters),
        ];
        let mut depths = serde_json::Map::new();
        for (name, q) in queues {
            match q.depth().await {
                Ok(d) => depths.insert(name.into(), serde_json::json!(d)),
                Err(e) => {
                    tracing::warn!(queue = name, error = %e, "queue depth unavailable");
                    return ApiError::unavailable().into_response();
                }
            };
        }
        json(http::StatusCode::OK, &serde_json::json!({ "status": "ok", "queues": depths }))
    }

    fn queue(&self, stage: Stage) -> &Arc<dyn QueueReceiver> {
        match stage {
            Stage::Score => &self.ports.events_receiver,
            Stage::Alert => &self.ports.detections_receiver,
        }
    }

    /// One poll of one queue: receive a batch, run the stage's handler, delete what succeeded and return the
    /// failures with backoff. Returns how many messages were received.
    pub async fn poll(
        &self,
        stage: Stage,
        settings: MappingSettings,
        wait: Duration,
    ) -> Result<usize, vigil::error::StoreError> {
        let queue = self.queue(stage);
        let received = queue.receive(settings.batch_size, settings.visibility, wait).await?;
        if received.is_empty() {
            return Ok(0);
        }
        let inbound: Vec<InboundMessage> =
            received.iter().map(|m| InboundMessage { id: m.message_id.clone(), body: m.body.clone() }).collect();
        let failed = match stage {
            Stage::Score => self.scorer.handle_batch(&inbound).await,
            Stage::Alert => self.alerter.handle_batch(&inbound).await,
        };
        let (bad, good): (Vec<_>, Vec<_>) = received.iter().partition(|m| failed.contains(&m.message_id));
        let receipts: Vec<String> = good.iter().map(|m| m.receipt.clone()).collect();
        if !receipts.is_empty() {
            queue.delete(&receipts).await?;
        }
        for m in bad {
            // Exponential backoff per receive, capped: a poison message reaches the dead-letter queue in minutes.
            let delay = Duration::from_secs(1u64 << m.receive_count.min(6));
            queue.release(&m.receipt, delay).await?;
        }
        Ok(received.len())
    }

    /// Polls both stages until neither queue returns a message (tests and `vigil serve --drain`).
    pub async fn drain(&self, settings: MappingSettings) -> Result<usize, vigil::error::StoreError> {
        let mut total = 0;
        loop {
            let n = self.poll(Stage::Score, settings, Duration::ZERO).await?
                + self.poll(Stage::Alert, settings, Duration::ZERO).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Runs the two event-source mappings until `shutdown` turns true.
    pub fn spawn_mappings(
        self: &Arc<Self>,
        settings: MappingSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        [Stage::Score, Stage::Alert]
            .into_iter()
            .map(|stage| {
                let host = self.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let mut backoff = Duration::from_millis(200);
                    // The flag is checked between polls, so a batch in progress always finishes (and is deleted).
                    while !*shutdown.borrow() {
                        match host.poll(stage, settings, settings.wait).await {
                            Ok(_) => backoff = Duration::from_millis(200),
                            Err(e) => {
                                tracing::warn!(?stage, error = %e, "queue poll failed; backing off");
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(10));
                            }
                        }
                    }
                })
            })
            .collect()
    }
}

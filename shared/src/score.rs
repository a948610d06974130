//! The score function: normalises queued events, runs the detection engine, stores every scored event once,
//! and queues the detections. Safe to run twice on the same message: every step is idempotent.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::Instrument;

use crate::aggregates::{coalesce, count, observe, LATENCY_BUCKETS};
use crate::clock::Clock;
use crate::detect::DetectionEngine;
use crate::messages::{InboundMessage, MessageError};
use crate::model::{Event, EventBatch, Risk, Timestamp};
use crate::pack::pack;
use crate::parse::normalize;
use crate::ports::{
    AggregateWrite, Aggregates, EventStore, QueueSender, Sample, WindowStore, GLOBAL_TENANT, MAX_QUEUE_MESSAGE_BYTES,
};

/// Unique events that entered the pipeline, by source (documented metric).
pub const INGESTED_METRIC: &str = "vigil_events_ingested_total";
/// Scored events by risk band (documented metric).
pub const SCORED_METRIC: &str = "vigil_events_scored_total";
/// Stored events by category: an internal hourly counter behind `/v1/analytics/volume` (not exported).
pub const CATEGORY_COUNTER: &str = "analytics_events_by_category_total";
/// Processing latency between stages (documented metric, on [`GLOBAL_TENANT`]).
pub const LATENCY_METRIC: &str = "vigil_pipeline_latency_seconds";
/// The sample kind behind `/v1/analytics/recent-high-threats`: one per high or critical event.
pub const THREAT_SAMPLE: &str = "threat";
/// The category label of events without one.
pub const NO_CATEGORY: &str = "uncategorized";
/// Longest label value an event field becomes (sources and categories come from senders).
pub const MAX_LABEL_CHARS: usize = 64;

/// A sender-controlled value as a bounded label value.
pub fn label_value(v: &str) -> String {
    v.chars().take(MAX_LABEL_CHARS).collect()
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

/// The aggregate writes for the events stored for the first time (`inserted[i]` true): per tenant, the
/// ingested / scored counters, the hourly category counter and a `threat` sample for every high or critical
/// event; and, tenant-less, the `received_to_scored` latency (`now − received_at`). Coalesced.
pub fn event_writes(
    events: &[Event],
    inserted: &[bool],
    now: Timestamp,
) -> (BTreeMap<String, Vec<AggregateWrite>>, Vec<AggregateWrite>) {
    let mut per_tenant: BTreeMap<String, Vec<AggregateWrite>> = BTreeMap::new();
    let mut global = Vec::new();
    for (e, _) in events.iter().zip(inserted).filter(|(_, new)| **new) {
        let at = e.received_at;
        let risk = e.risk.unwrap_or_else(|| Risk::from_score(e.score.unwrap_or(0)));
        let writes = per_tenant.entry(e.tenant.clone()).or_default();
        let source = label_value(&e.source);
        let category = e.category.as_deref().map(label_value).unwrap_or_else(|| NO_CATEGORY.to_string());
        writes.push(count(INGESTED_METRIC, &[("source", &source)], at, 1));
        writes.push(count(SCORED_METRIC, &[("risk", risk.as_str())], at, 1));
        writes.push(count(CATEGORY_COUNTER, &[("category", &category)], at, 1));
        if matches!(risk, Risk::High | Risk::Critical) {
            let mut labels = BTreeMap::new();
            labels.insert("risk".to_string(), risk.as_str().to_string());
            labels.insert("rules".to_string(), e.rules.join(","));
            labels.insert("source".to_string(), source.clone());
            labels.insert("event_time".to_string(), e.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            for (k, v) in
                [("src_ip", e.src_ip.map(|ip| ip.to_string())), ("user", e.user.clone()), ("host", e.host.clone())]
            {
                if let Some(v) = v {
                    labels.insert(k.to_string(), label_value(&v));
                }
            }
            writes.push(AggregateWrite::Sample(Sample {
                kind: THREAT_SAMPLE.to_string(),
                id: e.id.clone(),
                at,
                value: f64::from(e.score.unwrap_or(0)),
                labels,
            }));
        }
        global.extend(observe(
            LATENCY_METRIC,
            &[("stage", "received_to_scored")],
            seconds_between(e.received_at, now),
            &LATENCY_BUCKETS,
            now,
        ));
    }
    let per_tenant = per_tenant.into_iter().map(|(t, w)| (t, coalesce(w))).collect();
    (per_tenant, coalesce(global))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreSummary {
    pub events: usize,
    pub new_events: usize,
    pub detections: usize,
}

pub struct Scorer<E: ?Sized, W: ?Sized, Q: ?Sized> {
    pub events: Arc<E>,
    pub windows: Arc<W>,
    pub detections: Arc<Q>,
    pub engine: Arc<DetectionEngine>,
    pub clock: Arc<dyn Clock>,
    pub retention: std::time::Duration,
    /// Counters and samples behind analytics and `/metrics`.
    pub aggregates: Arc<dyn Aggregates>,
}

impl<E, W, Q> Scorer<E, W, Q>
where
    E: EventStore + ?Sized,
    W: WindowStore + ?Sized,
    Q: QueueSender + ?Sized,
{
    /// Handles one events-queue message.
    pub async fn handle_message(&self, body: &str) -> Result<ScoreSummary, MessageError> {
        let batch: EventBatch = serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let mut events = batch.events;
        if let Some(bad) = events.iter().find(|e| !crate::auth::valid_tenant(&e.tenant) || e.id.is_empty()) {
            return Err(MessageError::Malformed(format!("event {:?} has no valid tenant or id", bad.id)));
        }
        for e in events.iter_mut() {
            normalize(e);
        }
        let now = self.clock.now();
        let detections = self.engine.evaluate(&*self.windows, &mut events, now).await?;
        let expires_at = now + chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::days(30));
        let inserted = self.events.put_new(&events, expires_at).await?;
        // Counted once, for the events this call stored first. (Should this write fail after the events were
        // stored, the redelivery finds them stored and does not count them: counts err low, never twice.)
        let (per_tenant, global) = event_writes(&events, &inserted, now);
        for (tenant, writes) in &per_tenant {
            self.aggregates.apply(tenant, writes).await?;
        }
        if !global.is_empty() {
            self.aggregates.apply(GLOBAL_TENANT, &global).await?;
        }
        // Detections are sent even when every event was stored before: a retry must finish what a failed attempt
        // began, and the alert stage recognises detection ids it has seen.
        if !detections.is_empty() {
            let bodies = pack(&detections, "detections", MAX_QUEUE_MESSAGE_BYTES)
                .map_err(|i| MessageError::Malformed(format!("detection {i} does not fit in a queue message")))?;
            self.detections.send(&bodies).await?;
        }
        Ok(ScoreSummary {
            events: events.len(),
            new_events: inserted.iter().filter(|n| **n).count(),
            detections: detections.len(),
        })
    }

    /// Handles a batch and returns the ids of the messages that failed (SQS partial batch failure).
    pub async fn handle_batch(&self, messages: &[InboundMessage]) -> Vec<String> {
        let mut failed = Vec::new();
        for m in messages {
            let span = tracing::info_span!("score", message_id = %m.id);
            match self.handle_message(&m.body).instrument(span).await {
                Ok(s) => tracing::debug!(events = s.events, new = s.new_events, detections = s.detections, "scored"),
                Err(e) => {
                    tracing::warn!(error = %e, "message failed; it will be retried");
                    failed.push(m.id.clone());
                }
            }
        }
        failed
    }
}

/// The built-in rules plus the user's rules file (`VIGIL_RULES_FILE`), if any. Errors name the file and rule.
pub fn load_engine(config: &crate::config::Config) -> Result<DetectionEngine, String> {
    let engine = DetectionEngine::builtin();
    match &config.rules_path {
        None => Ok(engine),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            engine.with_overrides(&text, &path.display().to_string()).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::model::Severity;

    fn counts(writes: &[AggregateWrite]) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for w in writes {
            if let AggregateWrite::Count { name, delta, .. } = w {
                *out.entry(name.clone()).or_default() += delta;
            }
        }
        out
    }

    #[test]
    fn only_new_events_are_counted_per_tenant_with_threat_samples_and_global_latency() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let ev = |id: &str, tenant: &str, score: u8, category: Option<&str>| Event {
            id: id.into(),
            tenant: tenant.into(),
            timestamp: now - Duration::seconds(30),
            received_at: now - Duration::milliseconds(300),
            source: "syslog".into(),
            category: category.map(str::to_string),
            severity: Severity::Info,
            src_ip: "203.0.113.7".parse().ok(),
            user: Some("root".into()),
            score: Some(score),
            risk: Some(Risk::from_score(score)),
            rules: if score >= 60 { vec!["ssh_brute_force".into()] } else { vec![] },
            ..Event::default()
        };
        let events = [
            ev("e1", "acme", 10, Some("authentication")),
            ev("e2", "acme", 70, Some("authentication")),
            ev("e3", "acme", 90, None),
            ev("e4", "globex", 40, Some("web")),
        ];
        let (per_tenant, global) = event_writes(&events, &[true, true, false, true], now);
        let acme = counts(&per_tenant["acme"]);
        assert_eq!(acme[r#"vigil_events_ingested_total{source="syslog"}"#], 2);
        assert_eq!(acme[r#"vigil_events_scored_total{risk="low"}"#], 1);
        assert_eq!(acme[r#"vigil_events_scored_total{risk="high"}"#], 1);
        assert!(!acme.contains_key(r#"vigil_events_scored_total{risk="critical"}"#), "e3 was stored before");
        assert_eq!(acme[r#"analytics_events_by_category_total{category="authentication"}"#], 2);
        let threats: Vec<&Sample> = per_tenant["acme"]
            .iter()
            .filter_map(|w| if let AggregateWrite::Sample(s) = w { Some(s) } else { None })
            .collect();
        assert_eq!(threats.len(), 1);
        assert_eq!((threats[0].id.as_str(), threats[0].value, threats[0].kind.as_str()), ("e2", 70.0, THREAT_SAMPLE));
        assert_eq!(threats[0].labels.get("src_ip").map(String::as_str), Some("203.0.113.7"));
        assert_eq!(threats[0].labels.get("rules").map(String::as_str), Some("ssh_brute_force"));
        let globex = counts(&per_tenant["globex"]);
        assert_eq!(globex[r#"vigil_events_scored_total{risk="medium"}"#], 1);
        let g = counts(&global);
        assert_eq!(g[r#"vigil_pipeline_latency_seconds_count{stage="received_to_scored"}"#], 3);
        assert_eq!(g[r#"vigil_pipeline_latency_seconds_sum_ms{stage="received_to_scored"}"#], 900);
        assert_eq!(g[r#"vigil_pipeline_latency_seconds_bucket{le="0.5",stage="received_to_scored"}"#], 3);
        assert!(!g.contains_key(r#"vigil_pipeline_latency_seconds_bucket{le="0.25",stage="received_to_scored"}"#));
        assert_eq!(label_value(&"x".repeat(100)).len(), MAX_LABEL_CHARS);
    }
}

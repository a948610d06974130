//! SOC analytics: `GET /v1/analytics/{route}` (and, through [`crate::metrics`], `GET /metrics`), answered from
//! the stored aggregates (hourly counters, samples) and the open tickets — never by scanning events, so the
//! cost of a request does not grow with the number of stored events. Role `viewer`; the tenant is the token's.
//!
//! Every route takes `from` and `to` (RFC 3339; default: the 24 hours up to now; `from` must be before `to` and
//! at most [`MAX_RANGE_DAYS`] days before it — otherwise `400` naming the parameter). Unknown parameters are
//! refused with `400` too.
//!
//! * **Counters** are kept per UTC hour: an hour counts when it overlaps `[from, to)` (so `from=12:30` counts
//!   the 12:00 hour). **Samples** (ticket times, threats) are exact: their time must lie in `[from, to)`.
//! * **Percentiles** are nearest-rank: of the `n` values sorted ascending, the p-th percentile is the value at
//!   rank `⌈p/100 · n⌉` (1-based; rank 1 for `p = 0`). So p50 of `[60, 120, 300, 900]` is 120 and p90 is 900;
//!   the answer is always an observed value, never interpolated. Means are arithmetic means. Without values
//!   mean and percentiles are `null`.
//!
//! | route | answers |
//! | --- | --- |
//! | `severity-count` | alerts and detections by severity, scored events by risk band (in the period); open tickets by severity (now) |
//! | `top-events` | top rules (detections, alerts), sources, categories; top source IPs, users and hosts among high/critical events; `limit` 1..=100 (10) per list |
//! | `recent-high-threats` | high and critical events, newest first (id, time, score, risk, rules, src_ip, user, host); `limit` 1..=500 (50) |
//! | `ticket-aging` | open tickets by severity and age bucket (`<1h`, `1h-4h`, `4h-24h`, `1d-7d`, `>7d`; age = now − created_at), oldest open age, SLA breaches (acknowledge: open, never acknowledged, past `acknowledge_by`; close: open past `close_by`) with the breaching tickets, escalations (open escalated tickets now; escalations in the period) |
//! | `response-times` | MTTA, MTTR, MTTC, MTTD: count, mean, p50, p90 (seconds), overall and by severity; `period=day|week` adds UTC day / ISO week (Monday) buckets |
//! | `detection-efficacy` | per rule: detections, alerts, closes by disposition, precision = true_positive / closed, noise = (false_positive + benign) / closed, `needs_tuning` when closed ≥ `VIGIL_PRECISION_MIN_CLOSED` and precision < `VIGIL_PRECISION_FLOOR` |
//! | `volume` | per hour: events in, alerts in, tickets closed; peak hours (top 3 of each); events by source and by category (the 50 largest, the rest as `other`) |
//! | `shift-performance` | per analyst and per shift (`VIGIL_SHIFTS`, UTC; an action belongs to the shift its time falls in): tickets handled (distinct tickets acknowledged, responded to or closed), acknowledged, responded, closed, time to acknowledge (count, mean, p50, p90) |
//!
//! Ticket times come from the samples the ticket transitions record (see [`crate::ticket_flow`]): MTTA from
//! `acknowledged_at − created_at`, MTTR from `responded_at − created_at`, MTTC from every close
//! (`closed_at − created_at`, a reopened ticket counting each close), MTTD from `created_at − source_time`
//! (recorded when the ticket opens). Each sample belongs to the time of its transition.

mod query;
mod reports;

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::json;
use tracing::Instrument;

use crate::aggregates::registered_tenants;
use crate::api::{healthz, json, path_segments, query_pairs, ApiError, HttpRequest, HttpResponse};
use crate::auth::{Authenticator, Role};
use crate::clock::Clock;
use crate::config::AnalyticsConfig;
use crate::error::StoreError;
use crate::metrics::{KnownLabels, MAX_TENANTS_PER_SCRAPE, SCOPE_ALL_TENANTS};
pub use crate::stats::AnalyticsPorts;
pub use crate::ticket_flow::{CLOSED_METRIC, ESCALATED_METRIC};
pub use query::{floor_hour, Window, MAX_RANGE_DAYS};
use query::{invalid_param, Query};
pub use reports::{shift_of, TTA_SAMPLE, TTC_SAMPLE, TTR_SAMPLE};

/// The routes under `/v1/analytics/`.
pub const ROUTES: [&str; 8] = [
    "severity-count",
    "top-events",
    "recent-high-threats",
    "ticket-aging",
    "response-times",
    "detection-efficacy",
    "volume",
    "shift-performance",
];

/// Whether a path belongs to the analytics function.
pub fn owns(req: &HttpRequest) -> bool {
    matches!(path_segments(req).as_slice(), ["v1", "analytics", ..] | ["metrics"])
}

pub struct AnalyticsHandler {
    pub(crate) ports: AnalyticsPorts,
    auth: Arc<Authenticator>,
    clock: Arc<dyn Clock>,
    pub(crate) config: AnalyticsConfig,
    known: KnownLabels,
}

fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "analytics read failed");
    ApiError::unavailable()
}

impl AnalyticsHandler {
    pub fn new(
        ports: AnalyticsPorts,
        auth: Arc<Authenticator>,
        clock: Arc<dyn Clock>,
        config: AnalyticsConfig,
    ) -> Self {
        AnalyticsHandler { ports, auth, clock, config, known: KnownLabels::default() }
    }

    /// The label values `/metrics` exposes at 0 from the start (the loaded rules).
    pub fn with_known_labels(mut self, known: KnownLabels) -> Self {
        self.known = known;
        self
    }

    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        let span = crate::access_log::span(&req);
        async {
            match self.route(&req).await {
                Ok(resp) => resp,
                Err(e) => crate::access_log::error_response(e),
            }
        }
        .instrument(span)
        .await
    }

    async fn route(&self, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
        let segs = path_segments(req);
        if let (&Method::GET, ["healthz"]) = (req.method(), segs.as_slice()) {
            return Ok(healthz());
        }
        if !owns(req) {
            return Err(ApiError::not_found());
        }
        if req.method() != Method::GET {
            return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "use GET"));
        }
        let claims = self.auth.authorize(req.headers(), Role::Viewer, false)?;
        crate::access_log::set_tenant(&claims.tenant);
        let tenant = claims.tenant.as_str();
        let now = self.clock.now();
        if segs.as_slice() == ["metrics"] {
            if let Some((k, v)) = query_pairs(req).into_iter().next() {
                return Err(invalid_param(&k, &v, "no query parameters"));
            }
            let mut tenants = vec![tenant.to_string()];
            if claims.has_scope(SCOPE_ALL_TENANTS) {
                let registered = registered_tenants(&*self.ports.aggregates).await.map_err(store_err)?;
                tenants.extend(registered.into_iter().filter(|t| t != tenant));
                if tenants.len() > MAX_TENANTS_PER_SCRAPE {
                    tracing::warn!(tenants = tenants.len(), "more tenants than one scrape renders; the first ones");
                    tenants.truncate(MAX_TENANTS_PER_SCRAPE);
                }
            }
            return crate::metrics::response(&self.ports, &self.known, &tenants, now).await;
        }
        let route = match segs.as_slice() {
            ["v1", "analytics", r] if ROUTES.contains(r) => *r,
            _ => return Err(ApiError::not_found().with_detail(json!({ "routes": ROUTES }))),
        };
        let q = Query::parse(req, route, now)?;
        let body = match route {
            "severity-count" => self.severity_count(tenant, &q, now).await,
            "top-events" => self.top_events(tenant, &q).await,
            "recent-high-threats" => self.recent_high_threats(tenant, &q).await,
            "ticket-aging" => self.ticket_aging(tenant, &q, now).await,
            "response-times" => self.response_times(tenant, &q).await,
            "detection-efficacy" => self.detection_efficacy(tenant, &q).await,
            "volume" => self.volume(tenant, &q).await,
            _ => self.shift_performance(tenant, &q).await,
        }
        .map_err(store_err)?;
        Ok(json(StatusCode::OK, &body))
    }
}

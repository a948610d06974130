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
//! | `volume` | per hour: events in, alerts in, tickets closed; peak hours (top 3 of each); events by source and by category |
//! | `shift-performance` | per analyst and per shift (`VIGIL_SHIFTS`, UTC; an action belongs to the shift its time falls in): tickets handled (distinct tickets acknowledged, responded to or closed), acknowledged, responded, closed, time to acknowledge (count, mean, p50, p90) |
//!
//! Ticket times come from the samples the ticket transitions record (see [`crate::ticket_flow`]): MTTA from
//! `acknowledged_at − created_at`, MTTR from `responded_at − created_at`, MTTC from every close
//! (`closed_at − created_at`, a reopened ticket counting each close), MTTD from `created_at − source_time`
//! (recorded when the ticket opens). Each sample belongs to the time of its transition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use crate::aggregates::CounterName;
use crate::alert::{ALERTS_METRIC, DETECTIONS_METRIC, TTD_SAMPLE};
use crate::api::{healthz, json, path_segments, query_pairs, ApiError, HttpRequest, HttpResponse};
use crate::auth::{Authenticator, Role};
use crate::clock::Clock;
use crate::config::{AnalyticsConfig, Shift};
use crate::error::{StoreError, StoreResult};
use crate::model::{Risk, Severity, Ticket, TicketStatus, Timestamp};
use crate::ports::{Aggregates, AlertStore, PageRequest, QueueReceiver, Sample, TicketFilter};
use crate::score::{CATEGORY_COUNTER, INGESTED_METRIC, SCORED_METRIC, THREAT_SAMPLE};

pub use crate::ticket_flow::{CLOSED_METRIC, ESCALATED_METRIC};

/// Sample kinds of the ticket transitions ([`crate::ticket_flow`]).
pub const TTA_SAMPLE: &str = "tta";
pub const TTR_SAMPLE: &str = "ttr";
pub const TTC_SAMPLE: &str = "ttc";

/// The longest period one request may cover.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The statuses of an open ticket.
pub const OPEN_STATUSES: [TicketStatus; 3] = [TicketStatus::New, TicketStatus::Acknowledged, TicketStatus::InProgress];
/// Age buckets of open tickets, youngest first.
pub const AGE_BUCKETS: [&str; 5] = ["<1h", "1h-4h", "4h-24h", "1d-7d", ">7d"];
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
/// Pages of open tickets read per status at most (500 each): a bound on one request's work.
const MAX_TICKET_PAGES: usize = 400;
/// Breaching tickets listed at most by `ticket-aging` (the counts are always complete).
const MAX_BREACH_ITEMS: usize = 200;

/// What analytics and `/metrics` read: the aggregates, the alert store (open tickets) and the queues.
#[derive(Clone)]
pub struct AnalyticsPorts {
    pub aggregates: Arc<dyn Aggregates>,
    pub alerts: Arc<dyn AlertStore>,
    /// `(queue label, receiver)` for `vigil_queue_messages{queue}`: `events`, `events-dlq`, `detections`,
    /// `detections-dlq`.
    pub queues: Vec<(String, Arc<dyn QueueReceiver>)>,
}

impl AnalyticsPorts {
    /// The analytics view of a backend's ports.
    pub fn from_ports(p: &crate::ports::Ports) -> AnalyticsPorts {
        AnalyticsPorts {
            aggregates: p.aggregates.clone(),
            alerts: p.alerts.clone(),
            queues: vec![
                ("events".to_string(), p.events_receiver.clone()),
                ("events-dlq".to_string(), p.events_dead_letters.clone()),
                ("detections".to_string(), p.detections_receiver.clone()),
                ("detections-dlq".to_string(), p.detections_dead_letters.clone()),
            ],
        }
    }
}

/// Whether a path belongs to the analytics function.
pub fn owns(req: &HttpRequest) -> bool {
    matches!(path_segments(req).as_slice(), ["v1", "analytics", ..] | ["metrics"])
}

pub struct AnalyticsHandler {
    ports: AnalyticsPorts,
    auth: Arc<Authenticator>,
    clock: Arc<dyn Clock>,
    config: AnalyticsConfig,
}

fn store_err(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "analytics read failed");
    ApiError::unavailable()
}

fn invalid_param(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!("invalid query parameter {name}"))
        .with_detail(json!({ "parameter": name, "value": value, "expected": expected }))
}

impl AnalyticsHandler {
    pub fn new(
        ports: AnalyticsPorts,
        auth: Arc<Authenticator>,
        clock: Arc<dyn Clock>,
        config: AnalyticsConfig,
    ) -> Self {
        AnalyticsHandler { ports, auth, clock, config }
    }

    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        match self.route(&req).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(),
        }
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
        let tenant = claims.tenant.as_str();
        let now = self.clock.now();
        if segs.as_slice() == ["metrics"] {
            if let Some((k, v)) = query_pairs(req).into_iter().next() {
                return Err(invalid_param(&k, &v, "no query parameters"));
            }
            return crate::metrics::response(&self.ports, tenant, now).await;
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

    /// Hourly counters of the hours overlapping the window, names parsed.
    async fn hourly(&self, tenant: &str, w: &Window) -> StoreResult<Vec<(Timestamp, CounterName, i64)>> {
        let rows = self.ports.aggregates.hourly(tenant, floor_hour(w.from), w.to).await?;
        Ok(rows.into_iter().filter_map(|r| CounterName::parse(&r.name).map(|n| (r.hour, n, r.value))).collect())
    }

    async fn samples(&self, tenant: &str, kind: &str, w: &Window) -> StoreResult<Vec<Sample>> {
        let mut s = self.ports.aggregates.samples(tenant, kind, w.from, w.to).await?;
        s.retain(|s| s.at >= w.from && s.at < w.to);
        Ok(s)
    }

    async fn severity_count(&self, tenant: &str, q: &Query, now: Timestamp) -> StoreResult<Value> {
        let rows = self.hourly(tenant, &q.window).await?;
        let open = open_tickets(&*self.ports.alerts, tenant).await?;
        let mut open_by = severity_map();
        for t in open.iter() {
            *open_by.entry(t.severity.as_str().to_string()).or_default() += 1;
        }
        let mut risks: BTreeMap<String, i64> = Risk::ALL.iter().map(|r| (r.as_str().to_string(), 0)).collect();
        for (k, v) in sum_by(&rows, SCORED_METRIC, "risk") {
            *risks.entry(k).or_default() += v;
        }
        Ok(json!({
            "from": q.window.from, "to": q.window.to, "as_of": now,
            "alerts": with_all_severities(sum_by(&rows, ALERTS_METRIC, "severity")),
            "detections": with_all_severities(sum_by(&rows, DETECTIONS_METRIC, "severity")),
            "events_by_risk": risks,
            "open_tickets": open_by,
        }))
    }

    async fn top_events(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
        let rows = self.hourly(tenant, &q.window).await?;
        let limit = q.limit.unwrap_or(10);
        let detections = sum_by(&rows, DETECTIONS_METRIC, "rule");
        let alerts = sum_by(&rows, ALERTS_METRIC, "rule");
        let mut rules: Vec<(String, i64, i64)> = detections
            .keys()
            .chain(alerts.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|r| (r.clone(), detections.get(r).copied().unwrap_or(0), alerts.get(r).copied().unwrap_or(0)))
            .collect();
        rules.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        rules.truncate(limit);
        let threats = self.samples(tenant, THREAT_SAMPLE, &q.window).await?;
        let top_label = |label: &str| -> Vec<Value> {
            let mut by: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
            for s in &threats {
                if let Some(v) = s.labels.get(label).filter(|v| !v.is_empty()) {
                    let e = by.entry(v.as_str()).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 = e.1.max(s.value);
                }
            }
            top(by.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), |v| v.0, limit)
                .into_iter()
                .map(|(k, (n, max))| json!({ "value": k, "threats": n, "max_score": max }))
                .collect()
        };
        let counted = |metric: &str, label: &str, key: &str| -> Vec<Value> {
            top(sum_by(&rows, metric, label).into_iter().collect(), |v| *v, limit)
                .into_iter()
                .map(|(k, n)| json!({ key: k, "events": n }))
                .collect()
        };
        Ok(json!({
            "from": q.window.from, "to": q.window.to, "limit": limit,
            "rules": rules.into_iter().map(|(r, d, a)| json!({ "rule": r, "detections": d, "alerts": a })).collect::<Vec<_>>(),
            "sources": counted(INGESTED_METRIC, "source", "source"),
            "categories": counted(CATEGORY_COUNTER, "category", "category"),
            "src_ips": top_label("src_ip"),
            "users": top_label("user"),
            "hosts": top_label("host"),
        }))
    }

    async fn recent_high_threats(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
        let mut threats = self.samples(tenant, THREAT_SAMPLE, &q.window).await?;
        threats.sort_by(|a, b| b.at.cmp(&a.at).then(a.id.cmp(&b.id)));
        let total = threats.len();
        let items: Vec<Value> = threats
            .into_iter()
            .take(q.limit.unwrap_or(50))
            .map(|s| {
                let l = |k: &str| s.labels.get(k).filter(|v| !v.is_empty()).cloned();
                let rules: Vec<String> =
                    l("rules").map(|r| r.split(',').map(str::to_string).collect()).unwrap_or_default();
                json!({
                    "id": s.id, "at": s.at, "score": s.value, "risk": l("risk"), "rules": rules,
                    "src_ip": l("src_ip"), "user": l("user"), "host": l("host"), "source": l("source"),
                    "event_time": l("event_time"),
                })
            })
            .collect();
        Ok(json!({ "from": q.window.from, "to": q.window.to, "total": total, "items": items }))
    }

    async fn ticket_aging(&self, tenant: &str, q: &Query, now: Timestamp) -> StoreResult<Value> {
        let open = open_tickets(&*self.ports.alerts, tenant).await?;
        let a = aging(&open, now);
        let rows = self.hourly(tenant, &q.window).await?;
        let escalations = with_all_severities(sum_by(&rows, ESCALATED_METRIC, "severity"));
        let mut by_severity = serde_json::Map::new();
        let (mut ack_by, mut close_by, mut esc_open) = (severity_map(), severity_map(), severity_map());
        for (sev, s) in &a.by_severity {
            let buckets: serde_json::Map<String, Value> =
                AGE_BUCKETS.iter().zip(s.open).map(|(b, n)| (b.to_string(), json!(n))).collect();
            by_severity.insert(
                sev.as_str().into(),
                json!({ "total": s.open.iter().sum::<u64>(), "buckets": buckets, "oldest_age_seconds": s.oldest_age_seconds }),
            );
            ack_by.insert(sev.as_str().into(), s.ack_breached as i64);
            close_by.insert(sev.as_str().into(), s.close_breached as i64);
            esc_open.insert(sev.as_str().into(), s.escalated_open as i64);
        }
        let mut breaches = a.breaches.clone();
        breaches.sort_by(|x, y| y.overdue_seconds.total_cmp(&x.overdue_seconds).then(x.ticket_id.cmp(&y.ticket_id)));
        let truncated = breaches.len() > MAX_BREACH_ITEMS;
        breaches.truncate(MAX_BREACH_ITEMS);
        Ok(json!({
            "from": q.window.from, "to": q.window.to, "as_of": now,
            "age_buckets": AGE_BUCKETS,
            "open": { "total": open.len(), "by_severity": by_severity },
            "sla_breaches": {
                "total": ack_by.values().sum::<i64>() + close_by.values().sum::<i64>(),
                "acknowledge": { "total": ack_by.values().sum::<i64>(), "by_severity": ack_by },
                "close": { "total": close_by.values().sum::<i64>(), "by_severity": close_by },
                "tickets": breaches,
                "tickets_truncated": truncated,
            },
            "escalations": {
                "open_escalated": { "total": esc_open.values().sum::<i64>(), "by_severity": esc_open },
                "in_period": { "total": escalations.values().sum::<i64>(), "by_severity": escalations },
            },
        }))
    }

    async fn response_times(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
        let mut kinds = Vec::new();
        for (name, kind) in [("mtta", TTA_SAMPLE), ("mttr", TTR_SAMPLE), ("mttc", TTC_SAMPLE), ("mttd", TTD_SAMPLE)] {
            kinds.push((name, self.samples(tenant, kind, &q.window).await?));
        }
        let section = |from: Timestamp, to: Timestamp| -> Value {
            let mut m = serde_json::Map::new();
            for (name, samples) in &kinds {
                let inside: Vec<&Sample> = samples.iter().filter(|s| s.at >= from && s.at < to).collect();
                let by_severity: serde_json::Map<String, Value> = Severity::ALL
                    .iter()
                    .rev()
                    .map(|sev| {
                        let v: Vec<f64> = inside
                            .iter()
                            .filter(|s| s.labels.get("severity").map(String::as_str) == Some(sev.as_str()))
                            .map(|s| s.value)
                            .collect();
                        (sev.as_str().to_string(), json!(Stats::of(v)))
                    })
                    .collect();
                let all = Stats::of(inside.iter().map(|s| s.value).collect());
                m.insert(name.to_string(), json!({ "all": all, "by_severity": by_severity }));
            }
            Value::Object(m)
        };
        let mut out = json!({
            "from": q.window.from, "to": q.window.to, "percentile_method": "nearest-rank",
            "metrics": section(q.window.from, q.window.to),
        });
        if let Some(period) = q.period {
            let mut periods = Vec::new();
            let mut start = period.floor(q.window.from);
            while start < q.window.to {
                let end = period.next(start);
                periods.push(json!({
                    "start": start, "end": end,
                    "metrics": section(start.max(q.window.from), end.min(q.window.to)),
                }));
                start = end;
            }
            out["period"] = json!(period.as_str());
            out["periods"] = Value::Array(periods);
        }
        Ok(out)
    }

    async fn detection_efficacy(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
        let rows = self.hourly(tenant, &q.window).await?;
        let detections = sum_by(&rows, DETECTIONS_METRIC, "rule");
        let alerts = sum_by(&rows, ALERTS_METRIC, "rule");
        let mut closes: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for (_, n, v) in rows.iter().filter(|(_, n, _)| n.metric == CLOSED_METRIC) {
            let (Some(rule), Some(disp)) = (n.label("rule"), n.label("disposition")) else { continue };
            *closes.entry(rule.to_string()).or_default().entry(disp.to_string()).or_default() += v;
        }
        let rules: BTreeSet<&String> = detections.keys().chain(alerts.keys()).chain(closes.keys()).collect();
        let floor = self.config.precision_floor;
        let min_closed = self.config.precision_min_closed;
        let efficacy = |detections: i64, alerts: i64, c: Option<&BTreeMap<String, i64>>| -> (Value, bool) {
            let get = |d: &str| c.and_then(|c| c.get(d)).copied().unwrap_or(0);
            let (tp, fp, benign, dup) = (get("true_positive"), get("false_positive"), get("benign"), get("duplicate"));
            let closed: i64 = c.map(|c| c.values().sum()).unwrap_or(0);
            let precision = (closed > 0).then(|| tp as f64 / closed as f64);
            let noise = (closed > 0).then(|| (fp + benign) as f64 / closed as f64);
            let needs_tuning = closed > 0 && closed as u64 >= min_closed && precision.is_some_and(|p| p < floor);
            (
                json!({
                    "detections": detections, "alerts": alerts, "closed": closed,
                    "true_positive": tp, "false_positive": fp, "benign": benign, "duplicate": dup,
                    "precision": precision, "noise": noise, "needs_tuning": needs_tuning,
                }),
                needs_tuning,
            )
        };
        let mut list = Vec::new();
        let mut tuning = Vec::new();
        for rule in rules {
            let (mut v, needs) = efficacy(
                detections.get(rule).copied().unwrap_or(0),
                alerts.get(rule).copied().unwrap_or(0),
                closes.get(rule),
            );
            v["rule"] = json!(rule);
            if needs {
                tuning.push(rule.clone());
            }
            list.push(v);
        }
        let mut all: BTreeMap<String, i64> = BTreeMap::new();
        for c in closes.values() {
            for (d, n) in c {
                *all.entry(d.clone()).or_default() += n;
            }
        }
        let (mut totals, _) = efficacy(detections.values().sum(), alerts.values().sum(), Some(&all));
        if let Some(o) = totals.as_object_mut() {
            o.remove("needs_tuning");
        }
        Ok(json!({
            "from": q.window.from, "to": q.window.to,
            "precision_floor": floor, "min_closed": min_closed,
            "rules": list, "totals": totals, "needs_tuning": tuning,
        }))
    }

    async fn volume(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
        let rows = self.hourly(tenant, &q.window).await?;
        let mut hours: BTreeMap<Timestamp, [i64; 3]> = BTreeMap::new();
        let mut h = floor_hour(q.window.from);
        while h < q.window.to {
            hours.insert(h, [0; 3]);
            h += Duration::hours(1);
        }
        for (hour, n, v) in &rows {
            let i = match n.metric.as_str() {
                INGESTED_METRIC => 0,
                ALERTS_METRIC => 1,
                CLOSED_METRIC => 2,
                _ => continue,
            };
            hours.entry(*hour).or_insert([0; 3])[i] += v;
        }
        let names = ["events", "alerts", "tickets_closed"];
        let mut totals = serde_json::Map::new();
        let mut peaks = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            totals.insert(name.to_string(), json!(hours.values().map(|c| c[i]).sum::<i64>()));
            let mut ranked: Vec<(Timestamp, i64)> =
                hours.iter().map(|(h, c)| (*h, c[i])).filter(|(_, n)| *n > 0).collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.truncate(3);
            peaks.insert(
                name.to_string(),
                json!(ranked.into_iter().map(|(h, n)| json!({ "hour": h, "count": n })).collect::<Vec<_>>()),
            );
        }
        let per_hour: Vec<Value> = hours
            .iter()
            .map(|(h, c)| json!({ "hour": h, "events": c[0], "alerts": c[1], "tickets_closed": c[2] }))
            .collect();
        Ok(json!({
            "from": q.window.from, "to": q.window.to,
            "totals": totals,
            "hours": per_hour,
            "peak_hours": peaks,
            "by_source": sum_by(&rows, INGESTED_METRIC, "source"),
            "by_category": sum_by(&rows, CATEGORY_COUNTER, "category"),
        }))
    }

    async fn shift_performance(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
        #[derive(Default)]
        struct Tally {
            tickets: BTreeSet<String>,
            acknowledged: u64,
            responded: u64,
            closed: u64,
            tta: Vec<f64>,
        }
        impl Tally {
            fn into_json(self) -> Value {
                json!({
                    "handled": self.tickets.len(), "acknowledged": self.acknowledged,
                    "responded": self.responded, "closed": self.closed, "tta": Stats::of(self.tta),
                })
            }
        }
        let shifts = &self.config.shifts;
        let mut by_actor: BTreeMap<String, Tally> = BTreeMap::new();
        let mut by_shift: BTreeMap<String, Tally> = shifts.iter().map(|s| (s.name.clone(), Tally::default())).collect();
        for kind in [TTA_SAMPLE, TTR_SAMPLE, TTC_SAMPLE] {
            for s in self.samples(tenant, kind, &q.window).await? {
                let actor =
                    s.labels.get("actor").cloned().filter(|a| !a.is_empty()).unwrap_or_else(|| "unknown".into());
                let shift = shift_of(shifts, s.at).unwrap_or("unassigned").to_string();
                // A re-close's sample id is `{ticket}#{n}`: the ticket is what was handled.
                let ticket = s.id.split('#').next().unwrap_or(&s.id).to_string();
                for t in [by_actor.entry(actor).or_default(), by_shift.entry(shift).or_default()] {
                    t.tickets.insert(ticket.clone());
                    match kind {
                        TTA_SAMPLE => {
                            t.acknowledged += 1;
                            t.tta.push(s.value);
                        }
                        TTR_SAMPLE => t.responded += 1,
                        _ => t.closed += 1,
                    }
                }
            }
        }
        let order: Vec<String> = shifts.iter().map(|s| s.name.clone()).chain(["unassigned".to_string()]).collect();
        let mut shift_rows = Vec::new();
        for name in order {
            if let Some(t) = by_shift.remove(&name) {
                let mut v = t.into_json();
                v["shift"] = json!(name);
                if let Some(s) = shifts.iter().find(|s| s.name == name) {
                    v["start"] = json!(Shift::format_minute(s.start_minute));
                    v["end"] = json!(Shift::format_minute(s.end_minute));
                }
                shift_rows.push(v);
            }
        }
        let analysts: Vec<Value> = by_actor
            .into_iter()
            .map(|(actor, t)| {
                let mut v = t.into_json();
                v["actor"] = json!(actor);
                v
            })
            .collect();
        Ok(json!({
            "from": q.window.from, "to": q.window.to, "timezone": "UTC",
            "analysts": analysts, "shifts": shift_rows,
        }))
    }
}

/// The validated query of an analytics request.
#[derive(Clone, Debug, PartialEq)]
struct Query {
    window: Window,
    limit: Option<usize>,
    period: Option<Period>,
}

/// `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Period {
    Day,
    Week,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
        }
    }

    /// The start of the UTC day / ISO week (Monday 00:00 UTC) holding `t`.
    fn floor(self, t: Timestamp) -> Timestamp {
        let day = t.date_naive();
        let day = match self {
            Period::Day => day,
            Period::Week => day - Duration::days(i64::from(day.weekday().num_days_from_monday())),
        };
        day.and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(t)
    }

    fn next(self, start: Timestamp) -> Timestamp {
        start + Duration::days(if self == Period::Day { 1 } else { 7 })
    }
}

impl Query {
    fn parse(req: &HttpRequest, route: &str, now: Timestamp) -> Result<Query, ApiError> {
        let (mut from, mut to, mut limit, mut period) = (None, None, None, None);
        let limit_max = match route {
            "top-events" => Some(100),
            "recent-high-threats" => Some(500),
            _ => None,
        };
        for (k, v) in query_pairs(req) {
            match k.as_str() {
                "from" => from = Some(parse_time("from", &v)?),
                "to" => to = Some(parse_time("to", &v)?),
                "limit" if limit_max.is_some() => {
                    let max = limit_max.unwrap_or(1);
                    limit = Some(
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| (1..=max).contains(n))
                            .ok_or_else(|| invalid_param("limit", &v, &format!("a number from 1 to {max}")))?,
                    );
                }
                "period" if route == "response-times" => {
                    period = Some(match v.as_str() {
                        "day" => Period::Day,
                        "week" => Period::Week,
                        _ => return Err(invalid_param("period", &v, "day or week")),
                    })
                }
                other => {
                    let mut allowed = vec!["from", "to"];
                    if limit_max.is_some() {
                        allowed.push("limit");
                    }
                    if route == "response-times" {
                        allowed.push("period");
                    }
                    return Err(invalid_param(other, &v, &format!("one of {}", allowed.join(", "))));
                }
            }
        }
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - Duration::hours(24));
        if from >= to {
            return Err(invalid_param("from", &from.to_rfc3339(), "a time before to"));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(invalid_param("from", &from.to_rfc3339(), &format!("at most {MAX_RANGE_DAYS} days before to")));
        }
        Ok(Query { window: Window { from, to }, limit, period })
    }
}

fn parse_time(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid_param(name, v, "an RFC 3339 time, e.g. 2026-03-10T12:00:00Z"))
}

/// The start of the UTC hour holding `t`.
pub fn floor_hour(t: Timestamp) -> Timestamp {
    t.with_nanosecond(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_minute(0)).unwrap_or(t)
}

/// Sums `metric`'s hourly values by one label.
fn sum_by(rows: &[(Timestamp, CounterName, i64)], metric: &str, label: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (_, n, v) in rows.iter().filter(|(_, n, _)| n.metric == metric) {
        if let Some(l) = n.label(label) {
            *out.entry(l.to_string()).or_default() += v;
        }
    }
    out
}

fn severity_map() -> BTreeMap<String, i64> {
    Severity::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect()
}

fn with_all_severities(m: BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let mut out = severity_map();
    out.extend(m);
    out
}

/// The `limit` largest entries by `key`, ties by name.
fn top<T>(mut items: Vec<(String, T)>, key: impl Fn(&T) -> i64, limit: usize) -> Vec<(String, T)> {
    items.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(&b.0)));
    items.truncate(limit);
    items
}

/// Count, mean and nearest-rank p50 / p90 of seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub count: usize,
    pub mean_seconds: Option<f64>,
    pub p50_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

impl Stats {
    pub fn of(mut values: Vec<f64>) -> Stats {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        let n = values.len();
        Stats {
            count: n,
            mean_seconds: (n > 0).then(|| values.iter().sum::<f64>() / n as f64),
            p50_seconds: nearest_rank(&values, 50),
            p90_seconds: nearest_rank(&values, 90),
        }
    }
}

/// The nearest-rank `p`-th percentile (`p` in 0..=100) of ascending `sorted` values: the value at 1-based rank
/// `⌈p · n / 100⌉` (at least 1). Integer arithmetic, so no rounding surprises.
pub fn nearest_rank(sorted: &[f64], p: u32) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p.min(100) as usize * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The shift a time falls in (the first configured one that contains its UTC time of day).
pub fn shift_of(shifts: &[Shift], at: Timestamp) -> Option<&str> {
    let minute = at.hour() * 60 + at.minute();
    shifts.iter().find(|s| s.contains(minute)).map(|s| s.name.as_str())
}

/// Every open ticket of the tenant (one `list_tickets` walk per open status).
pub async fn open_tickets(alerts: &dyn AlertStore, tenant: &str) -> StoreResult<Vec<Ticket>> {
    let mut out = Vec::new();
    for status in OPEN_STATUSES {
        let filter = TicketFilter { status: Some(status), ..TicketFilter::default() };
        let mut page = PageRequest { limit: 500, cursor: None };
        for n in 0.. {
            if n == MAX_TICKET_PAGES {
                tracing::warn!(
                    tenant,
                    status = status.as_str(),
                    "more open tickets than analytics reads; counting the first ones"
                );
                break;
            }
            let p = alerts.list_tickets(tenant, &filter, &page).await?;
            out.extend(p.items.into_iter().filter(|t| t.tenant == tenant && t.status == status));
            match p.next {
                Some(next) => page.cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(out)
}

/// The age bucket of an open ticket `age_seconds` old.
pub fn age_bucket(age_seconds: f64) -> usize {
    match age_seconds {
        a if a < 3600.0 => 0,
        a if a < 4.0 * 3600.0 => 1,
        a if a < 24.0 * 3600.0 => 2,
        a if a < 7.0 * 24.0 * 3600.0 => 3,
        _ => 4,
    }
}

/// Open tickets of one severity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeverityAging {
    /// Counts per [`AGE_BUCKETS`] entry.
    pub open: [u64; 5],
    pub oldest_age_seconds: Option<f64>,
    /// Open, never acknowledged, past `acknowledge_by`.
    pub ack_breached: u64,
    /// Open past `close_by`.
    pub close_breached: u64,
    pub escalated_open: u64,
}

/// One SLA breach of an open ticket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breach {
    pub ticket_id: String,
    pub severity: Severity,
    pub rule: String,
    /// `acknowledge` or `close`.
    pub kind: &'static str,
    pub deadline: Timestamp,
    pub overdue_seconds: f64,
}

/// The open-ticket picture at `now`, shared by `ticket-aging` and the `/metrics` gauges.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aging {
    /// Every severity, in [`Severity::ALL`] order.
    pub by_severity: Vec<(Severity, SeverityAging)>,
    pub breaches: Vec<Breach>,
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds().max(0) as f64 / 1000.0
}

pub fn aging(open: &[Ticket], now: Timestamp) -> Aging {
    let mut by: BTreeMap<Severity, SeverityAging> =
        Severity::ALL.iter().map(|s| (*s, SeverityAging::default())).collect();
    let mut breaches = Vec::new();
    for t in open.iter().filter(|t| t.status != TicketStatus::Closed) {
        let s = by.entry(t.severity).or_default();
        let age = seconds(now - t.created_at);
        s.open[age_bucket(age)] += 1;
        s.oldest_age_seconds = Some(s.oldest_age_seconds.map_or(age, |o| o.max(age)));
        if t.escalated {
            s.escalated_open += 1;
        }
        if t.acknowledged_at.is_none() && now > t.acknowledge_by {
            s.ack_breached += 1;
            breaches.push(Breach {
                ticket_id: t.id.clone(),
                severity: t.severity,
                rule: t.rule.clone(),
                kind: "acknowledge",
                deadline: t.acknowledge_by,
                overdue_seconds: seconds(now - t.acknowledge_by),
            });
        }
        if now > t.close_by {
            s.close_breached += 1;
            breaches.push(Breach {
                ticket_id: t.id.clone(),
                severity: t.severity,
                rule: t.rule.clone(),
                kind: "close",
                deadline: t.close_by,
                overdue_seconds: seconds(now - t.close_by),
            });
        }
    }
    Aging { by_severity: by.into_iter().collect(), breaches }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::config::parse_shifts;

    #[test]
    fn nearest_rank_picks_observed_values() {
        let v = [60.0, 120.0, 300.0, 900.0];
        assert_eq!(nearest_rank(&v, 50), Some(120.0));
        assert_eq!(nearest_rank(&v, 90), Some(900.0));
        assert_eq!(nearest_rank(&v, 0), Some(60.0));
        assert_eq!(nearest_rank(&v, 100), Some(900.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&ten, 90), Some(9.0), "rank 9 of 10, no floating-point round-up");
        assert_eq!(nearest_rank(&[], 50), None);
        let s = Stats::of(vec![300.0, 60.0, 900.0]);
        assert_eq!((s.count, s.mean_seconds, s.p50_seconds, s.p90_seconds), (3, Some(420.0), Some(300.0), Some(900.0)));
    }

    #[test]
    fn age_buckets_and_breaches() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(age_bucket(3599.9), 0);
        assert_eq!(age_bucket(3600.0), 1);
        assert_eq!(age_bucket(4.0 * 3600.0), 2);
        assert_eq!(age_bucket(86400.0), 3);
        assert_eq!(age_bucket(7.0 * 86400.0), 4);
        let t = |id: &str, age_h: i64, acked: bool| Ticket {
            id: id.into(),
            tenant: "acme".into(),
            alert_id: "A".into(),
            rule: "r".into(),
            title: "t".into(),
            entity: "e".into(),
            severity: Severity::High,
            status: if acked { TicketStatus::Acknowledged } else { TicketStatus::New },
            escalated: false,
            assignee: None,
            disposition: None,
            source_time: now - Duration::hours(age_h),
            created_at: now - Duration::hours(age_h),
            acknowledged_at: acked.then_some(now),
            responded_at: None,
            closed_at: None,
            acknowledge_by: now - Duration::hours(age_h) + Duration::hours(1),
            close_by: now - Duration::hours(age_h) + Duration::hours(24),
            version: 1,
            history: vec![],
        };
        let a = aging(&[t("T1", 2, false), t("T2", 30, true), t("T3", 0, false)], now);
        let high = &a.by_severity.iter().find(|(s, _)| *s == Severity::High).expect("high").1;
        assert_eq!(high.open, [1, 1, 0, 1, 0]);
        assert_eq!(high.oldest_age_seconds, Some(30.0 * 3600.0));
        assert_eq!((high.ack_breached, high.close_breached), (1, 1));
        assert_eq!(a.breaches.len(), 2);
        assert_eq!(a.by_severity.len(), 5);
    }

    #[test]
    fn shifts_and_periods() {
        let shifts = parse_shifts(crate::config::DEFAULT_SHIFTS).expect("default shifts");
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0).unwrap();
        assert_eq!(shift_of(&shifts, at(7, 59)), Some("night"));
        assert_eq!(shift_of(&shifts, at(8, 0)), Some("day"));
        assert_eq!(shift_of(&shifts, at(23, 59)), Some("swing"));
        // 2026-03-10 is a Tuesday: its ISO week starts on Monday the 9th.
        assert_eq!(Period::Week.floor(at(13, 5)), Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap());
        assert_eq!(Period::Day.floor(at(13, 5)), Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap());
        assert_eq!(floor_hour(at(13, 5)), at(13, 0));
    }
}

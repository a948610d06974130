//! `GET /metrics`: the Prometheus text format (docs/metrics.md is the contract), written with the `prometheus`
//! crate. Nothing is kept in process memory: every request builds a fresh [`Registry`] from the stored values —
//! the token's tenant's counters and histograms (its all-time aggregate totals, with a `tenant` label), the
//! tenant-less pipeline-latency histogram (aggregates of `GLOBAL_TENANT`), gauges computed from the tenant's
//! open tickets, and the queue depths — so every function instance reports the same numbers.
//!
//! Histograms are stored as cumulative counters (`<name>_bucket{le}`, `<name>_count`, `<name>_sum_ms`; see
//! [`crate::aggregates::observe`]) and exposed as real histograms: every documented bucket (a missing one is
//! 0), `+Inf` = `_count`, `_sum` = `_sum_ms / 1000`.
//!
//! Series with a small, known label set are always exposed, 0 when nothing happened, so dashboards show 0
//! rather than "no data": `vigil_tickets_open` for every severity and age bucket, `vigil_tickets_sla_breached`
//! for every severity and kind, `vigil_ticket_oldest_open_age_seconds` for every severity (0 without open
//! tickets), `vigil_tickets_escalated_total` for every severity, `vigil_queue_messages` for every queue.

use std::collections::{BTreeMap, HashMap};

use http::{header, HeaderValue, StatusCode};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{CounterVec, Encoder, GaugeVec, Opts, Registry, TextEncoder};

use crate::aggregates::{format_le, CounterName, LATENCY_BUCKETS, TICKET_BUCKETS};
use crate::api::{ApiError, HttpResponse};
use crate::error::StoreError;
use crate::model::{Severity, Timestamp};
use crate::ports::GLOBAL_TENANT;
use crate::score::LATENCY_METRIC;
use crate::stats::{aging, open_tickets, AnalyticsPorts, AGE_BUCKETS};
use crate::ticket_flow::{CLOSED_METRIC, ESCALATED_METRIC, TTA_METRIC, TTC_METRIC, TTR_METRIC};

/// `text/plain; version=0.0.4`.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// The per-tenant counters: name, help, labels besides `tenant`.
const COUNTERS: [(&str, &str, &[&str]); 6] = [
    (
        "vigil_events_ingested_total",
        "Unique events that entered the pipeline (counted once, when first stored).",
        &["source"],
    ),
    ("vigil_events_scored_total", "Scored events by risk band.", &["risk"]),
    ("vigil_detections_total", "Detections (distinct detection ids).", &["rule", "severity"]),
    ("vigil_alerts_total", "Alerts opened (after dedup).", &["rule", "severity"]),
    (
        CLOSED_METRIC,
        "Ticket closes by rule and disposition; precision = true_positive / all.",
        &["rule", "disposition"],
    ),
    (ESCALATED_METRIC, "Ticket escalations.", &["severity"]),
];

/// The per-tenant ticket-time histograms (label `severity`).
const TICKET_HISTOGRAMS: [(&str, &str); 3] = [
    (TTA_METRIC, "Time from ticket creation to acknowledgement (MTTA)."),
    (TTR_METRIC, "Time from ticket creation to first response (MTTR)."),
    (TTC_METRIC, "Time from ticket creation to close, every close (MTTC)."),
];

const LATENCY_HELP: &str = "Processing latency between pipeline stages (wall clock).";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building the metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// The `/metrics` answer for the token's tenant.
pub async fn response(ports: &AnalyticsPorts, tenant: &str, now: Timestamp) -> Result<HttpResponse, ApiError> {
    match render(ports, tenant, now).await {
        Ok(text) => {
            let mut resp = http::Response::new(bytes::Bytes::from(text));
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            Ok(resp)
        }
        Err(MetricsError::Store(e)) => {
            tracing::error!(error = %e, "metrics read failed");
            Err(ApiError::unavailable())
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics encoding failed");
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed"))
        }
    }
}

/// The Prometheus text of the tenant's series, the tenant-less pipeline series and the queue depths.
pub async fn render(ports: &AnalyticsPorts, tenant: &str, now: Timestamp) -> Result<String, MetricsError> {
    let totals = parse_totals(ports.aggregates.totals(tenant).await?);
    let global = parse_totals(ports.aggregates.totals(GLOBAL_TENANT).await?);
    let open = open_tickets(&*ports.alerts, tenant).await?;
    let mut depths = Vec::with_capacity(ports.queues.len());
    for (name, q) in &ports.queues {
        depths.push((name.as_str(), q.depth().await?.visible));
    }

    let registry = Registry::new();
    for (name, help, labels) in COUNTERS {
        let mut all = vec!["tenant"];
        all.extend_from_slice(labels);
        let vec = CounterVec::new(Opts::new(name, help), &all)?;
        for (n, v) in totals.iter().filter(|(n, _)| n.metric == name) {
            let mut values = vec![tenant];
            values.extend(labels.iter().map(|l| n.label(l).unwrap_or("")));
            vec.get_metric_with_label_values(&values)?.inc_by((*v).max(0) as f64);
        }
        if labels == ["severity"] {
            for s in Severity::ALL {
                vec.get_metric_with_label_values(&[tenant, s.as_str()])?;
            }
        }
        registry.register(Box::new(vec))?;
    }
    for (name, help) in TICKET_HISTOGRAMS {
        registry.register(Box::new(StoredHistogram::new(
            name,
            help,
            &totals,
            &TICKET_BUCKETS,
            &["severity"],
            Some(tenant),
        )?))?;
    }
    registry.register(Box::new(StoredHistogram::new(
        LATENCY_METRIC,
        LATENCY_HELP,
        &global,
        &LATENCY_BUCKETS,
        &["stage"],
        None,
    )?))?;

    let a = aging(&open, now);
    let open_g = GaugeVec::new(
        Opts::new("vigil_tickets_open", "Open (not closed) tickets by age (now − created_at)."),
        &["tenant", "severity", "age_bucket"],
    )?;
    let oldest = GaugeVec::new(
        Opts::new("vigil_ticket_oldest_open_age_seconds", "Age of the oldest open ticket (0 when none is open)."),
        &["tenant", "severity"],
    )?;
    let breached = GaugeVec::new(
        Opts::new(
            "vigil_tickets_sla_breached",
            "Open tickets past their deadline: not acknowledged by acknowledge_by / not closed by close_by.",
        ),
        &["tenant", "severity", "kind"],
    )?;
    for (sev, s) in &a.by_severity {
        let sev = sev.as_str();
        for (bucket, n) in AGE_BUCKETS.iter().zip(s.open) {
            open_g.get_metric_with_label_values(&[tenant, sev, bucket])?.set(n as f64);
        }
        oldest.get_metric_with_label_values(&[tenant, sev])?.set(s.oldest_age_seconds.unwrap_or(0.0));
        breached.get_metric_with_label_values(&[tenant, sev, "acknowledge"])?.set(s.ack_breached as f64);
        breached.get_metric_with_label_values(&[tenant, sev, "close"])?.set(s.close_breached as f64);
    }
    let queues =
        GaugeVec::new(Opts::new("vigil_queue_messages", "Approximate visible messages per queue."), &["queue"])?;
    for (name, visible) in depths {
        queues.get_metric_with_label_values(&[name])?.set(visible as f64);
    }
    for g in [open_g, oldest, breached, queues] {
        registry.register(Box::new(g))?;
    }

    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| MetricsError::Prometheus(prometheus::Error::Msg(e.to_string())))
}

fn parse_totals(totals: Vec<(String, i64)>) -> Vec<(CounterName, i64)> {
    totals.into_iter().filter_map(|(n, v)| CounterName::parse(&n).map(|n| (n, v))).collect()
}

/// A histogram family rebuilt from its stored cumulative counters.
struct StoredHistogram {
    desc: Desc,
    family: MetricFamily,
}

impl StoredHistogram {
    /// `labels` are the histogram's own labels (besides `le`); `tenant`, when given, is added as the first.
    fn new(
        name: &str,
        help: &str,
        totals: &[(CounterName, i64)],
        bounds: &[f64],
        labels: &[&str],
        tenant: Option<&str>,
    ) -> Result<StoredHistogram, prometheus::Error> {
        #[derive(Default)]
        struct Parts {
            buckets: HashMap<String, i64>,
            count: i64,
            sum_ms: i64,
        }
        let (bucket, count, sum) = (format!("{name}_bucket"), format!("{name}_count"), format!("{name}_sum_ms"));
        let mut series: BTreeMap<Vec<String>, Parts> = BTreeMap::new();
        for (n, v) in totals {
            let which = if n.metric == bucket {
                0
            } else if n.metric == count {
                1
            } else if n.metric == sum {
                2
            } else {
                continue;
            };
            let key: Vec<String> = labels.iter().map(|l| n.label(l).unwrap_or("").to_string()).collect();
            let p = series.entry(key).or_default();
            match which {
                0 => {
                    if let Some(le) = n.label("le") {
                        *p.buckets.entry(le.to_string()).or_default() += v;
                    }
                }
                1 => p.count += v,
                _ => p.sum_ms += v,
            }
        }
        let names: Vec<String> =
            tenant.map(|_| "tenant").into_iter().chain(labels.iter().copied()).map(str::to_string).collect();
        let desc = Desc::new(name.to_string(), help.to_string(), names.clone(), HashMap::new())?;
        let mut metrics = Vec::with_capacity(series.len());
        for (values, p) in series {
            // Label pairs sorted by name, as the crate's own vectors write them.
            let mut pairs: Vec<(String, String)> =
                names.iter().cloned().zip(tenant.map(str::to_string).into_iter().chain(values)).collect();
            pairs.sort();
            let pairs: Vec<LabelPair> = pairs
                .into_iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name(k);
                    l.set_value(v);
                    l
                })
                .collect();
            let count = p.count.max(0) as u64;
            let buckets: Vec<Bucket> = bounds
                .iter()
                .map(|b| {
                    let mut bucket = Bucket::default();
                    bucket.set_upper_bound(*b);
                    // Cumulative, and never above the total count (a torn read could otherwise say so).
                    bucket.set_cumulative_count(
                        (p.buckets.get(&format_le(*b)).copied().unwrap_or(0).max(0) as u64).min(count),
                    );
                    bucket
                })
                .collect();
            let mut h = Histogram::default();
            h.set_sample_count(count);
            h.set_sample_sum(p.sum_ms as f64 / 1000.0);
            h.set_bucket(buckets);
            let mut m = Metric::from_label(pairs);
            m.set_histogram(h);
            metrics.push(m);
        }
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(MetricType::HISTOGRAM);
        family.set_metric(metrics);
        Ok(StoredHistogram { desc, family })
    }
}

impl Collector for StoredHistogram {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        vec![self.family.clone()]
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use std::sync::Arc;

    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::aggregates::{count, observe};
    use crate::clock::SystemClock;

    #[tokio::test]
    async fn histograms_counters_gauges_and_queues_in_the_text_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend =
            crate::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
        let ports = AnalyticsPorts::from_ports(&backend.ports());
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let mut writes = vec![
            count("vigil_events_ingested_total", &[("source", "syslog")], now, 21),
            count("vigil_alerts_total", &[("rule", "ssh_brute_force"), ("severity", "high")], now, 1),
            count("analytics_events_by_category_total", &[("category", "authentication")], now, 21),
        ];
        writes.extend(observe(TTA_METRIC, &[("severity", "high")], 120.0, &TICKET_BUCKETS, now));
        writes.extend(observe(TTA_METRIC, &[("severity", "high")], 1000.0, &TICKET_BUCKETS, now));
        ports.aggregates.apply("acme", &writes).await.expect("apply");
        ports
            .aggregates
            .apply("globex", &[count("vigil_events_ingested_total", &[("source", "json")], now, 5)])
            .await
            .expect("apply");
        let latency = observe(LATENCY_METRIC, &[("stage", "received_to_scored")], 0.2, &LATENCY_BUCKETS, now);
        ports.aggregates.apply(GLOBAL_TENANT, &latency).await.expect("apply");

        let text = render(&ports, "acme", now + Duration::minutes(5)).await.expect("render");
        for line in [
            "# TYPE vigil_events_ingested_total counter",
            r#"vigil_events_ingested_total{source="syslog",tenant="acme"} 21"#,
            r#"vigil_alerts_total{rule="ssh_brute_force",severity="high",tenant="acme"} 1"#,
            r#"vigil_tickets_escalated_total{severity="critical",tenant="acme"} 0"#,
            "# TYPE vigil_ticket_time_to_acknowledge_seconds histogram",
            r#"vigil_ticket_time_to_acknowledge_seconds_bucket{severity="high",tenant="acme",le="60"} 0"#,
            r#"vigil_ticket_time_to_acknowledge_seconds_bucket{severity="high",tenant="acme",le="300"} 1"#,
            r#"vigil_ticket_time_to_acknowledge_seconds_bucket{severity="high",tenant="acme",le="3600"} 2"#,
            r#"vigil_ticket_time_to_acknowledge_seconds_bucket{severity="high",tenant="acme",le="+Inf"} 2"#,
            r#"vigil_ticket_time_to_acknowledge_seconds_sum{severity="high",tenant="acme"} 1120"#,
            r#"vigil_ticket_time_to_acknowledge_seconds_count{severity="high",tenant="acme"} 2"#,
            r#"vigil_pipeline_latency_seconds_bucket{stage="received_to_scored",le="0.1"} 0"#,
            r#"vigil_pipeline_latency_seconds_bucket{stage="received_to_scored",le="0.25"} 1"#,
            r#"vigil_pipeline_latency_seconds_sum{stage="received_to_scored"} 0.2"#,
            r#"vigil_tickets_open{age_bucket="<1h",severity="high",tenant="acme"} 0"#,
            r#"vigil_tickets_sla_breached{kind="close",severity="low",tenant="acme"} 0"#,
            r#"vigil_ticket_oldest_open_age_seconds{severity="high",tenant="acme"} 0"#,
            r#"vigil_queue_messages{queue="events-dlq"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("globex"), "another tenant's series leaked:\n{text}");
        assert!(!text.contains("analytics_"), "internal counters are not exported:\n{text}");
        assert!(!text.contains("_sum_ms"), "{text}");
    }
}

//! `GET /metrics`: the Prometheus text format (docs/metrics.md is the contract), written with the `prometheus`
//! crate. Nothing is kept in process memory: every request builds a fresh [`Registry`] from the stored values —
//! each scraped tenant's counters and histograms (its all-time aggregate totals, with a `tenant` label), the
//! tenant-less pipeline-latency histogram (aggregates of `GLOBAL_TENANT`), gauges computed from each tenant's
//! open tickets, the queue depths, the rules loaded and the build — so every function instance reports the
//! same numbers. A token scrapes its own tenant; a token with the scope [`SCOPE_ALL_TENANTS`] scrapes every
//! registered tenant ([`crate::aggregates::TenantRegistry`]).
//!
//! Histograms are stored as cumulative counters (`<name>_bucket{le}`, `<name>_count`, `<name>_sum_ms`; see
//! [`crate::aggregates::observe`]) and exposed as real histograms: every documented bucket (a missing one is
//! 0), `+Inf` = `_count`, `_sum` = `_sum_ms / 1000`.
//!
//! Every known label value is exposed from the start, at 0, so `rate()` sees a series' first increment and
//! dashboards show 0 rather than "no data": risk bands, severities, the loaded rules (with the severities
//! their alerts can have) and dispositions, the default sources, ticket-time histograms per severity, latency
//! per stage, open tickets per severity and age bucket, SLA breaches per severity and kind, queues.
//!
//! The sender-chosen `source` label is bounded where it is rendered: per tenant the [`MAX_SOURCE_SERIES`]
//! sources with the most events keep their own series, the rest add up in `source="other"`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use http::{header, HeaderValue, StatusCode};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{CounterVec, Encoder, Gauge, GaugeVec, Opts, Registry, TextEncoder};

use crate::aggregates::{format_le, CounterName, LATENCY_BUCKETS, TICKET_BUCKETS};
use crate::alert::{ALERTS_METRIC, DETECTIONS_METRIC};
use crate::api::{ApiError, HttpResponse};
use crate::detect::{DetectionEngine, SeverityPolicy};
use crate::error::StoreError;
use crate::model::{Risk, Severity, Timestamp};
use crate::ports::GLOBAL_TENANT;
use crate::score::{INGESTED_METRIC, LATENCY_METRIC, SCORED_METRIC};
use crate::stats::{aging, open_tickets, AnalyticsPorts, AGE_BUCKETS};
use crate::ticket_flow::{CLOSED_METRIC, DISPOSITIONS, ESCALATED_METRIC, TTA_METRIC, TTC_METRIC, TTR_METRIC};

pub use crate::auth::SCOPE_ALL_TENANTS;

/// `text/plain; version=0.0.4`.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Sources with their own `vigil_events_ingested_total` series per tenant (the rest are `other`).
pub const MAX_SOURCE_SERIES: usize = 50;
/// The label value the sources beyond [`MAX_SOURCE_SERIES`] add up in.
pub const OTHER_SOURCE: &str = "other";
/// The sources Vigil itself names (a body without `source`), always exposed.
pub const DEFAULT_SOURCES: [&str; 3] = ["hec", "json", "syslog"];
/// The pipeline stages of `vigil_pipeline_latency_seconds`.
pub const LATENCY_STAGES: [&str; 2] = ["received_to_scored", "scored_to_alerted"];
/// Tenants one all-tenants scrape renders at most (a bound on one request's work).
pub const MAX_TENANTS_PER_SCRAPE: usize = 1000;

/// The per-tenant counters: name, help, labels besides `tenant`.
const COUNTERS: [(&str, &str, &[&str]); 6] = [
    (
        INGESTED_METRIC,
        "Unique events that entered the pipeline (counted once, when first stored), by source (top 50 + other).",
        &["source"],
    ),
    (SCORED_METRIC, "Scored events by risk band.", &["risk"]),
    (DETECTIONS_METRIC, "Detections (distinct detection ids).", &["rule", "severity"]),
    (ALERTS_METRIC, "Alerts opened (after dedup).", &["rule", "severity"]),
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

/// What `/metrics` knows before anything happened: the loaded rules, each with the severities its detections
/// can have (its fixed severity, or every severity when it takes the events').
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KnownLabels {
    pub rules: Vec<(String, Vec<Severity>)>,
}

impl KnownLabels {
    pub fn from_engine(engine: &DetectionEngine) -> KnownLabels {
        let rules = engine
            .rules()
            .iter()
            .filter(|r| r.enabled)
            .map(|r| {
                let severities = match r.severity {
                    SeverityPolicy::Fixed(s) => vec![s],
                    SeverityPolicy::Event => Severity::ALL.to_vec(),
                };
                (r.id.clone(), severities)
            })
            .collect();
        KnownLabels { rules }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building the metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// The `/metrics` answer for `tenants`.
pub async fn response(
    ports: &AnalyticsPorts,
    known: &KnownLabels,
    tenants: &[String],
    now: Timestamp,
) -> Result<HttpResponse, ApiError> {
    match render(ports, known, tenants, now).await {
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

/// Stored totals, with the tenant they belong to (`None`: tenant-less series).
type TotalsOf<'a> = (Option<&'a str>, &'a [(CounterName, i64)]);

/// One tenant's stored values.
struct TenantData {
    tenant: String,
    totals: Vec<(CounterName, i64)>,
}

/// The Prometheus text of the tenants' series, the tenant-less pipeline series, the queue depths, the rules
/// loaded and the build.
pub async fn render(
    ports: &AnalyticsPorts,
    known: &KnownLabels,
    tenants: &[String],
    now: Timestamp,
) -> Result<String, MetricsError> {
    let global = parse_totals(ports.aggregates.totals(GLOBAL_TENANT).await?);
    let mut data = Vec::with_capacity(tenants.len());
    let mut open = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        data.push(TenantData {
            tenant: tenant.clone(),
            totals: bound_sources(parse_totals(ports.aggregates.totals(tenant).await?)),
        });
        open.push((tenant.as_str(), open_tickets(&*ports.alerts, tenant).await?));
    }
    let mut depths = Vec::with_capacity(ports.queues.len());
    for (name, q) in &ports.queues {
        depths.push((name.as_str(), q.depth().await?.visible));
    }

    let registry = Registry::new();
    let rule_severities: Vec<(&str, &Severity)> =
        known.rules.iter().flat_map(|(r, sevs)| sevs.iter().map(move |s| (r.as_str(), s))).collect();
    for (name, help, labels) in COUNTERS {
        let mut all = vec!["tenant"];
        all.extend_from_slice(labels);
        let vec = CounterVec::new(Opts::new(name, help), &all)?;
        for d in &data {
            let t = d.tenant.as_str();
            // Known label values first, at 0.
            match name {
                INGESTED_METRIC => {
                    for source in DEFAULT_SOURCES {
                        vec.get_metric_with_label_values(&[t, source])?;
                    }
                }
                SCORED_METRIC => {
                    for r in Risk::ALL {
                        vec.get_metric_with_label_values(&[t, r.as_str()])?;
                    }
                }
                DETECTIONS_METRIC | ALERTS_METRIC => {
                    for (rule, sev) in &rule_severities {
                        vec.get_metric_with_label_values(&[t, rule, sev.as_str()])?;
                    }
                }
                CLOSED_METRIC => {
                    for (rule, _) in &known.rules {
                        for disposition in DISPOSITIONS {
                            vec.get_metric_with_label_values(&[t, rule, disposition])?;
                        }
                    }
                }
                _ => {
                    for s in Severity::ALL {
                        vec.get_metric_with_label_values(&[t, s.as_str()])?;
                    }
                }
            }
            for (n, v) in d.totals.iter().filter(|(n, _)| n.metric == name) {
                let mut values = vec![t];
                values.extend(labels.iter().map(|l| n.label(l).unwrap_or("")));
                vec.get_metric_with_label_values(&values)?.inc_by((*v).max(0) as f64);
            }
        }
        registry.register(Box::new(vec))?;
    }
    let severities: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    for (name, help) in TICKET_HISTOGRAMS {
        let sources: Vec<TotalsOf> = data.iter().map(|d| (Some(d.tenant.as_str()), d.totals.as_slice())).collect();
        registry.register(Box::new(StoredHistogram::new(
            name,
            help,
            &sources,
            &TICKET_BUCKETS,
            "severity",
            &severities,
        )?))?;
    }
    registry.register(Box::new(StoredHistogram::new(
        LATENCY_METRIC,
        LATENCY_HELP,
        &[(None, global.as_slice())],
        &LATENCY_BUCKETS,
        "stage",
        &LATENCY_STAGES,
    )?))?;

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
    for (tenant, tickets) in &open {
        let a = aging(tickets, now);
        for (sev, s) in &a.by_severity {
            let sev = sev.as_str();
            for (bucket, n) in AGE_BUCKETS.iter().zip(s.open) {
                open_g.get_metric_with_label_values(&[tenant, sev, bucket])?.set(n as f64);
            }
            oldest.get_metric_with_label_values(&[tenant, sev])?.set(s.oldest_age_seconds.unwrap_or(0.0));
            breached.get_metric_with_label_values(&[tenant, sev, "acknowledge"])?.set(s.ack_breached as f64);
            breached.get_metric_with_label_values(&[tenant, sev, "close"])?.set(s.close_breached as f64);
        }
    }
    let queues =
        GaugeVec::new(Opts::new("vigil_queue_messages", "Approximate visible messages per queue."), &["queue"])?;
    for (name, visible) in depths {
        queues.get_metric_with_label_values(&[name])?.set(visible as f64);
    }
    let rules = Gauge::with_opts(Opts::new("vigil_rules_loaded", "Detection rules loaded and enabled."))?;
    rules.set(known.rules.len() as f64);
    let build = GaugeVec::new(Opts::new("vigil_build_info", "The running Vigil version (always 1)."), &["version"])?;
    build.get_metric_with_label_values(&[env!("CARGO_PKG_VERSION")])?.set(1.0);
    for g in [open_g, oldest, breached, queues, build] {
        registry.register(Box::new(g))?;
    }
    registry.register(Box::new(rules))?;

    let mut buf = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| MetricsError::Prometheus(prometheus::Error::Msg(e.to_string())))
}

/// Keeps the [`MAX_SOURCE_SERIES`] sources with the most ingested events (ties by name) and adds up the rest
/// as [`OTHER_SOURCE`] (a sender naming its own source `other` adds to that series too).
fn bound_sources(totals: Vec<(CounterName, i64)>) -> Vec<(CounterName, i64)> {
    let (sources, mut rest): (Vec<_>, Vec<_>) = totals.into_iter().partition(|(n, _)| n.metric == INGESTED_METRIC);
    let mut by_source: BTreeMap<String, i64> = BTreeMap::new();
    for (n, v) in sources {
        *by_source.entry(n.label("source").unwrap_or_default().to_string()).or_default() += v;
    }
    let other_named = by_source.remove(OTHER_SOURCE).unwrap_or(0);
    let mut ranked: Vec<(String, i64)> = by_source.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let kept: BTreeSet<String> = ranked.iter().take(MAX_SOURCE_SERIES).map(|(s, _)| s.clone()).collect();
    let mut other = other_named;
    for (source, v) in ranked {
        if kept.contains(&source) {
            rest.push((CounterName::new(INGESTED_METRIC, &[("source", &source)]), v));
        } else {
            other += v;
        }
    }
    if other != 0 || kept.len() == MAX_SOURCE_SERIES {
        rest.push((CounterName::new(INGESTED_METRIC, &[("source", OTHER_SOURCE)]), other));
    }
    rest
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
    /// One family from the totals of each source (`Some(tenant)` adds a first label `tenant`); `label` is the
    /// histogram's own label besides `le`, with `known` values exposed (empty) even without observations.
    fn new(
        name: &str,
        help: &str,
        sources: &[TotalsOf],
        bounds: &[f64],
        label: &str,
        known: &[&str],
    ) -> Result<StoredHistogram, prometheus::Error> {
        #[derive(Default)]
        struct Parts {
            buckets: HashMap<String, i64>,
            count: i64,
            sum_ms: i64,
        }
        let (bucket, count, sum) = (format!("{name}_bucket"), format!("{name}_count"), format!("{name}_sum_ms"));
        let with_tenant = sources.iter().any(|(t, _)| t.is_some());
        let mut series: BTreeMap<(String, String), Parts> = BTreeMap::new();
        for (tenant, totals) in sources {
            let tenant = tenant.unwrap_or_default().to_string();
            for value in known {
                series.entry((tenant.clone(), value.to_string())).or_default();
            }
            for (n, v) in totals.iter() {
                let which = if n.metric == bucket {
                    0
                } else if n.metric == count {
                    1
                } else if n.metric == sum {
                    2
                } else {
                    continue;
                };
                let p = series.entry((tenant.clone(), n.label(label).unwrap_or("").to_string())).or_default();
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
        }
        let names: Vec<String> =
            with_tenant.then_some("tenant").into_iter().chain([label]).map(str::to_string).collect();
        let desc = Desc::new(name.to_string(), help.to_string(), names.clone(), HashMap::new())?;
        let mut metrics = Vec::with_capacity(series.len());
        for ((tenant, value), p) in series {
            // Label pairs sorted by name, as the crate's own vectors write them.
            let mut pairs: Vec<(String, String)> = vec![(label.to_string(), value)];
            if with_tenant {
                pairs.push(("tenant".to_string(), tenant));
            }
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
    use crate::aggregates::{count, observe, LATENCY_BUCKETS};
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

        let known = KnownLabels { rules: vec![("ssh_brute_force".into(), vec![Severity::High])] };
        let text = render(&ports, &known, &["acme".into()], now + Duration::minutes(5)).await.expect("render");
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
            // Known label values at 0 from the start.
            r#"vigil_events_scored_total{risk="critical",tenant="acme"} 0"#,
            r#"vigil_events_ingested_total{source="hec",tenant="acme"} 0"#,
            r#"vigil_detections_total{rule="ssh_brute_force",severity="high",tenant="acme"} 0"#,
            r#"vigil_tickets_closed_total{disposition="benign",rule="ssh_brute_force",tenant="acme"} 0"#,
            r#"vigil_ticket_time_to_close_seconds_count{severity="critical",tenant="acme"} 0"#,
            r#"vigil_pipeline_latency_seconds_count{stage="scored_to_alerted"} 0"#,
            "vigil_rules_loaded 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("globex"), "another tenant's series leaked:\n{text}");
        assert!(!text.contains("analytics_"), "internal counters are not exported:\n{text}");
        assert!(!text.contains("_sum_ms"), "{text}");

        let both = render(&ports, &known, &["acme".into(), "globex".into()], now).await.expect("render");
        assert!(both.lines().any(|l| l == r#"vigil_events_ingested_total{source="json",tenant="globex"} 5"#), "{both}");
        assert!(both.lines().any(|l| l == r#"vigil_events_ingested_total{source="syslog",tenant="acme"} 21"#));
        let latency = both.lines().filter(|l| l.starts_with("vigil_pipeline_latency_seconds_count")).count();
        assert_eq!(latency, 2, "tenant-less series once, whatever the number of tenants");
    }

    #[tokio::test]
    async fn ten_thousand_sources_cannot_grow_the_page_past_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend =
            crate::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
        let ports = AnalyticsPorts::from_ports(&backend.ports());
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let render_page =
            || async { render(&ports, &KnownLabels::default(), &["acme".into()], now).await.expect("render") };
        let before = render_page().await;
        let writes: Vec<_> = (0..10_000)
            .map(|i| count(INGESTED_METRIC, &[("source", &format!("sender-{i:05}"))], now, 1 + (i % 7)))
            .collect();
        for chunk in writes.chunks(500) {
            ports.aggregates.apply("acme", chunk).await.expect("apply");
        }
        let page = render_page().await;
        let sources: Vec<&str> = page.lines().filter(|l| l.starts_with("vigil_events_ingested_total{")).collect();
        assert!(sources.len() <= MAX_SOURCE_SERIES + DEFAULT_SOURCES.len() + 1, "{} series", sources.len());
        assert!(sources.iter().any(|l| l.starts_with(r#"vigil_events_ingested_total{source="other",tenant="acme"}"#)));
        let total: f64 = sources.iter().filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum();
        let expected: i64 = (0..10_000).map(|i| 1 + (i % 7)).sum();
        assert_eq!(total, expected as f64, "nothing is lost to the bound, only merged");
        assert!(page.len() < before.len() + 8 * 1024, "{} bytes before, {} after", before.len(), page.len());
    }
}

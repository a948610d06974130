//! Naming and building the aggregate writes behind analytics and `/metrics`: counters are stored under their
//! Prometheus-style name (`metric{label="value",…}`, labels sorted), histograms as cumulative bucket counters.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::model::Timestamp;
use crate::ports::{AggregateWrite, Aggregates, HourlyCount, Sample, GLOBAL_TENANT};

/// Ticket-time histogram buckets (seconds), from docs/metrics.md.
pub const TICKET_BUCKETS: [f64; 10] =
    [60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0, 259200.0, 604800.0];
/// Pipeline-latency histogram buckets (seconds).
pub const LATENCY_BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// A counter's identity: metric name and bounded labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterName {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
}

impl CounterName {
    pub fn new(metric: &str, labels: &[(&str, &str)]) -> CounterName {
        CounterName {
            metric: metric.to_string(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }

    /// Parses the canonical text form written by `Display`.
    pub fn parse(s: &str) -> Option<CounterName> {
        let Some(open) = s.find('{') else {
            return (!s.is_empty()).then(|| CounterName { metric: s.to_string(), labels: BTreeMap::new() });
        };
        let metric = &s[..open];
        let body = s[open + 1..].strip_suffix('}')?;
        let mut labels = BTreeMap::new();
        let mut rest = body;
        while !rest.is_empty() {
            let eq = rest.find("=\"")?;
            let key = &rest[..eq];
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => value.push(chars.next()?.1),
                    '"' => break eq + 2 + i + 1,
                    c => value.push(c),
                }
            };
            labels.insert(key.to_string(), value);
            rest = rest[end..].strip_prefix(',').unwrap_or(&rest[end..]);
        }
        Some(CounterName { metric: metric.to_string(), labels })
    }
}

impl fmt::Display for CounterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        f.write_str("}")
    }
}

/// `delta` added to `metric{labels}` at `at`.
pub fn count(metric: &str, labels: &[(&str, &str)], at: Timestamp, delta: i64) -> AggregateWrite {
    AggregateWrite::Count { name: CounterName::new(metric, labels).to_string(), at, delta }
}

/// One observation of a histogram: `_bucket{le}` for every bucket that holds it (cumulative, as Prometheus
/// exposes them), `_bucket{le="+Inf"}`, `_count`, and `_sum_ms` (the sum in milliseconds, kept as an integer).
pub fn observe(
    metric: &str,
    labels: &[(&str, &str)],
    value_seconds: f64,
    buckets: &[f64],
    at: Timestamp,
) -> Vec<AggregateWrite> {
    let mut writes = Vec::with_capacity(buckets.len() + 3);
    let bucket = format!("{metric}_bucket");
    for le in buckets.iter().filter(|le| value_seconds <= **le) {
        let le = format_le(*le);
        let mut l: Vec<(&str, &str)> = labels.to_vec();
        l.push(("le", &le));
        writes.push(count(&bucket, &l, at, 1));
    }
    let mut l: Vec<(&str, &str)> = labels.to_vec();
    l.push(("le", "+Inf"));
    writes.push(count(&bucket, &l, at, 1));
    writes.push(count(&format!("{metric}_count"), labels, at, 1));
    writes.push(count(&format!("{metric}_sum_ms"), labels, at, (value_seconds * 1000.0).round() as i64));
    writes
}

/// Bucket bounds as Prometheus prints them (`60`, `0.05`).
pub fn format_le(le: f64) -> String {
    if le.fract() == 0.0 {
        format!("{}", le as i64)
    } else {
        format!("{le}")
    }
}

/// Merges writes to the same counter and hour into one (fewer items per transaction).
pub fn coalesce(writes: Vec<AggregateWrite>) -> Vec<AggregateWrite> {
    let mut counts: BTreeMap<(String, i64), (Timestamp, i64)> = BTreeMap::new();
    let mut others = Vec::new();
    for w in writes {
        match w {
            AggregateWrite::Count { name, at, delta } => {
                let hour = at.timestamp().div_euclid(3600);
                counts.entry((name, hour)).or_insert((at, 0)).1 += delta;
            }
            other => others.push(other),
        }
    }
    let mut out: Vec<AggregateWrite> = counts
        .into_iter()
        .filter(|(_, (_, d))| *d != 0)
        .map(|((name, _), (at, delta))| AggregateWrite::Count { name, at, delta })
        .collect();
    out.extend(others);
    out
}

/// The tenant registry: a counter on [`GLOBAL_TENANT`] per tenant that has aggregates (`{tenant="…"}`), read
/// by an all-tenants `/metrics` scrape to know whose series to render.
pub const TENANT_REGISTRY_METRIC: &str = "vigil_tenant_registered";

/// Tenants remembered per process before the set starts over (memory stays bounded; a tenant seen again is
/// registered again, which only adds to its counter).
const MAX_REMEMBERED_TENANTS: usize = 10_000;

/// [`Aggregates`] that also registers every tenant written to in [`TENANT_REGISTRY_METRIC`], once per process
/// per tenant (one extra write at a function instance's first message of a tenant, not one per message).
pub struct TenantRegistry {
    inner: Arc<dyn Aggregates>,
    registered: Mutex<HashSet<String>>,
}

impl TenantRegistry {
    pub fn new(inner: Arc<dyn Aggregates>) -> TenantRegistry {
        TenantRegistry { inner, registered: Mutex::new(HashSet::new()) }
    }

    fn is_registered(&self, tenant: &str) -> bool {
        self.registered.lock().map(|r| r.contains(tenant)).unwrap_or(false)
    }

    fn remember(&self, tenant: &str) {
        if let Ok(mut r) = self.registered.lock() {
            if r.len() >= MAX_REMEMBERED_TENANTS {
                r.clear();
            }
            r.insert(tenant.to_string());
        }
    }
}

#[async_trait]
impl Aggregates for TenantRegistry {
    async fn apply(&self, tenant: &str, writes: &[AggregateWrite]) -> StoreResult<()> {
        if tenant != GLOBAL_TENANT && !writes.is_empty() && !self.is_registered(tenant) {
            let at = match &writes[0] {
                AggregateWrite::Count { at, .. } => *at,
                AggregateWrite::Sample(s) => s.at,
            };
            self.inner.apply(GLOBAL_TENANT, &[count(TENANT_REGISTRY_METRIC, &[("tenant", tenant)], at, 1)]).await?;
            self.remember(tenant);
        }
        self.inner.apply(tenant, writes).await
    }

    async fn totals(&self, tenant: &str) -> StoreResult<Vec<(String, i64)>> {
        self.inner.totals(tenant).await
    }

    async fn hourly(&self, tenant: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<HourlyCount>> {
        self.inner.hourly(tenant, from, to).await
    }

    async fn samples(&self, tenant: &str, kind: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<Sample>> {
        self.inner.samples(tenant, kind, from, to).await
    }
}

/// Every registered tenant, sorted.
pub async fn registered_tenants(aggregates: &dyn Aggregates) -> StoreResult<Vec<String>> {
    let mut tenants: Vec<String> = aggregates
        .totals(GLOBAL_TENANT)
        .await?
        .into_iter()
        .filter_map(|(name, _)| CounterName::parse(&name))
        .filter(|n| n.metric == TENANT_REGISTRY_METRIC)
        .filter_map(|n| n.label("tenant").map(str::to_string))
        .collect();
    tenants.sort();
    tenants.dedup();
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn names_round_trip_with_escapes_and_sorted_labels() {
        let n = CounterName::new("vigil_alerts_total", &[("severity", "high"), ("rule", "a\"b\\c,d")]);
        let s = n.to_string();
        assert_eq!(s, r#"vigil_alerts_total{rule="a\"b\\c,d",severity="high"}"#);
        assert_eq!(CounterName::parse(&s), Some(n));
        assert_eq!(CounterName::parse("plain").map(|n| n.metric), Some("plain".into()));
        assert_eq!(CounterName::parse("broken{a=\"x"), None);
    }

    #[test]
    fn an_observation_fills_every_bucket_at_or_above_it() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let w = observe("t", &[("severity", "high")], 300.0, &TICKET_BUCKETS, at);
        let names: Vec<String> = w
            .iter()
            .map(|w| match w {
                AggregateWrite::Count { name, .. } => name.clone(),
                AggregateWrite::Sample(_) => String::new(),
            })
            .collect();
        assert!(!names.iter().any(|n| n.contains("le=\"60\"")));
        assert!(
            names.contains(&r#"t_bucket{le="300",severity="high"}"#.to_string()),
            "300 is inside le=300: {names:?}"
        );
        assert!(names.contains(&r#"t_bucket{le="+Inf",severity="high"}"#.to_string()));
        assert!(names.contains(&r#"t_sum_ms{severity="high"}"#.to_string()));
        assert_eq!(w.len(), 9 + 1 + 2);
    }

    #[test]
    fn coalescing_adds_within_an_hour_and_keeps_hours_apart() {
        let h = |m| chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, m, 0).unwrap();
        let later = chrono::Utc.with_ymd_and_hms(2026, 3, 10, 13, 0, 0).unwrap();
        let w = coalesce(vec![count("c", &[], h(1), 2), count("c", &[], h(59), 3), count("c", &[], later, 1)]);
        let deltas: Vec<i64> =
            w.iter().map(|w| if let AggregateWrite::Count { delta, .. } = w { *delta } else { 0 }).collect();
        assert_eq!(deltas, vec![5, 1]);
    }
}

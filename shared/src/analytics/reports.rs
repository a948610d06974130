//! The analytics reports (see the table in [`super`]): each reads the hourly counters, samples and open tickets
//! of one tenant for one window and answers JSON.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, Timelike};
use serde_json::{json, Value};

use super::query::{floor_hour, Query, Window};
use super::AnalyticsHandler;
use crate::aggregates::CounterName;
use crate::alert::{ALERTS_METRIC, DETECTIONS_METRIC, TTD_SAMPLE};
use crate::config::Shift;
use crate::error::StoreResult;
use crate::metrics::{MAX_SOURCE_SERIES, OTHER_SOURCE};
use crate::model::{Risk, Severity, Timestamp};
use crate::ports::Sample;
use crate::score::{CATEGORY_COUNTER, INGESTED_METRIC, SCORED_METRIC, THREAT_SAMPLE};
use crate::stats::{aging, open_tickets, Stats, AGE_BUCKETS};
use crate::ticket_flow::{CLOSED_METRIC, ESCALATED_METRIC};

/// Sample kinds of the ticket transitions ([`crate::ticket_flow`]).
pub const TTA_SAMPLE: &str = "tta";
pub const TTR_SAMPLE: &str = "ttr";
pub const TTC_SAMPLE: &str = "ttc";
/// Breaching tickets listed at most by `ticket-aging` (the counts are always complete).
const MAX_BREACH_ITEMS: usize = 200;

impl AnalyticsHandler {
    /// Hourly counters of the hours overlapping the window, names parsed.
    pub(super) async fn hourly(&self, tenant: &str, w: &Window) -> StoreResult<Vec<(Timestamp, CounterName, i64)>> {
        let rows = self.ports.aggregates.hourly(tenant, floor_hour(w.from), w.to).await?;
        Ok(rows.into_iter().filter_map(|r| CounterName::parse(&r.name).map(|n| (r.hour, n, r.value))).collect())
    }

    pub(super) async fn samples(&self, tenant: &str, kind: &str, w: &Window) -> StoreResult<Vec<Sample>> {
        let mut s = self.ports.aggregates.samples(tenant, kind, w.from, w.to).await?;
        s.retain(|s| s.at >= w.from && s.at < w.to);
        Ok(s)
    }

    pub(super) async fn severity_count(&self, tenant: &str, q: &Query, now: Timestamp) -> StoreResult<Value> {
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

    pub(super) async fn top_events(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
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

    pub(super) async fn recent_high_threats(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
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

    pub(super) async fn ticket_aging(&self, tenant: &str, q: &Query, now: Timestamp) -> StoreResult<Value> {
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

    pub(super) async fn response_times(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
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

    pub(super) async fn detection_efficacy(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
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

    pub(super) async fn volume(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
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
            "by_source": top_and_other(sum_by(&rows, INGESTED_METRIC, "source")),
            "by_category": top_and_other(sum_by(&rows, CATEGORY_COUNTER, "category")),
        }))
    }

    pub(super) async fn shift_performance(&self, tenant: &str, q: &Query) -> StoreResult<Value> {
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

/// Sender-chosen values (sources, categories) in a report: the [`MAX_SOURCE_SERIES`] largest keep their own
/// entry, the rest add up in `other` — the same bound as `/metrics`.
fn top_and_other(counts: BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    if counts.len() <= MAX_SOURCE_SERIES {
        return counts;
    }
    let ranked = top(counts.into_iter().collect(), |v| *v, usize::MAX);
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (k, v)) in ranked.into_iter().enumerate() {
        let key = if i < MAX_SOURCE_SERIES && k != OTHER_SOURCE { k } else { OTHER_SOURCE.to_string() };
        *out.entry(key).or_default() += v;
    }
    out
}

/// The shift a time falls in (the first configured one that contains its UTC time of day).
pub fn shift_of(shifts: &[Shift], at: Timestamp) -> Option<&str> {
    let minute = at.hour() * 60 + at.minute();
    shifts.iter().find(|s| s.contains(minute)).map(|s| s.name.as_str())
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::config::parse_shifts;

    #[test]
    fn sender_chosen_values_are_bounded_like_metrics() {
        let many: BTreeMap<String, i64> = (0..1000).map(|i| (format!("src-{i:04}"), 1 + i % 5)).collect();
        let total: i64 = many.values().sum();
        let bounded = top_and_other(many);
        assert_eq!(bounded.len(), MAX_SOURCE_SERIES + 1);
        assert_eq!(bounded.values().sum::<i64>(), total, "merged, not lost");
        let few: BTreeMap<String, i64> = [("syslog".to_string(), 3)].into();
        assert_eq!(top_and_other(few.clone()), few);
    }

    #[test]
    fn shifts() {
        let shifts = parse_shifts(crate::config::DEFAULT_SHIFTS).expect("default shifts");
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0).unwrap();
        assert_eq!(shift_of(&shifts, at(7, 59)), Some("night"));
        assert_eq!(shift_of(&shifts, at(8, 0)), Some("day"));
        assert_eq!(shift_of(&shifts, at(23, 59)), Some("swing"));
    }
}

//! Read-side statistics shared by the analytics reports and `/metrics`: the ports they read, the tenant's open
//! tickets and their aging (buckets, oldest age, SLA breaches), and nearest-rank percentiles.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use serde::Serialize;

use crate::error::StoreResult;
use crate::model::{Severity, Ticket, TicketStatus, Timestamp};
use crate::ports::{Aggregates, AlertStore, PageRequest, QueueReceiver, TicketFilter};

/// The statuses of an open ticket.
pub const OPEN_STATUSES: [TicketStatus; 3] = [TicketStatus::New, TicketStatus::Acknowledged, TicketStatus::InProgress];
/// Age buckets of open tickets, youngest first.
pub const AGE_BUCKETS: [&str; 5] = ["<1h", "1h-4h", "4h-24h", "1d-7d", ">7d"];
/// Pages of open tickets read per status at most (500 each): a bound on one request's work.
const MAX_TICKET_PAGES: usize = 400;

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
    use chrono::{TimeZone, Utc};

    use super::*;

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
}

//! The one contract-test suite every adapter runs (feature `contract`).
//!
//! An adapter's tests call [`contract_tests!`](crate::contract_tests) with an async expression that builds a
//! fresh, empty backend as a [`Fixture`]; the macro expands to one `#[tokio::test]` per check below.
//!
//! The checks test only what the ports document, so DynamoDB + SQS pass them as well as the embedded backend:
//! no assumption about the order of queue messages, approximate depths read when the queue is quiet, and
//! waits (at most [`POLL`]) only ever as upper bounds, never a sleep to let time pass. Redelivery uses a
//! visibility timeout of zero instead of waiting for one to end.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aggregates::count;
use crate::config::SlaPolicy;
use crate::error::StoreError;
use crate::model::{Alert, Detection, Event, Outcome, Risk, Severity, Ticket, TicketStatus, Timestamp};
use crate::ports::{
    AggregateWrite, AlertCandidate, HourlyCount, Page, PageRequest, Ports, QueueDepth, QueueReceiver, QueueSender,
    ReceivedMessage, RecordOutcome, Sample, TicketFilter, WindowEntry, WindowUpdate, GLOBAL_TENANT, TICKET_NOT_FOUND,
};
use crate::schema::{DETECTIONS_QUEUE, EVENTS_QUEUE};

/// A fresh, empty backend for one check.
pub struct Fixture {
    pub ports: Ports,
    /// Whatever must outlive the ports (a temporary directory, a server handle).
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

/// Expands to one `#[tokio::test]` per contract check. `$make` is an async expression (e.g. an `async { }`
/// block) yielding a [`Fixture`]; it is evaluated afresh for every test.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@checks $make;
            queue_round_trip,
            queue_send_many_in_one_call,
            queue_large_body,
            queue_redelivery_after_visibility,
            queue_invisible_while_in_flight,
            queue_release,
            queue_delete_with_stale_receipt_succeeds,
            queue_dead_letter_after_max_receives,
            queue_depth_counts_visible_and_in_flight,
            queue_long_poll_receives_message_sent_meanwhile,
            queues_are_independent,
            events_put_new_is_idempotent,
            events_duplicate_ids_in_one_slice,
            events_round_trip_every_field,
            events_tenant_isolation,
            windows_merge_is_set_union,
            windows_merge_several_keys_in_one_call,
            windows_keys_are_isolated,
            windows_concurrent_merges_lose_nothing,
            windows_prune,
            alerts_first_detection_opens_alert_and_ticket,
            alerts_roll_up_within_suppression,
            alerts_same_detection_is_already_recorded,
            alerts_detection_at_suppress_until_opens_new_alert,
            alerts_never_shared_across_tenants_rules_entities,
            alerts_concurrent_records_open_one_alert,
            alerts_list_paginates_newest_first,
            tickets_list_filters_and_paginates,
            alerts_and_tickets_are_tenant_scoped,
            alerts_aggregates_applied_exactly_once,
            alerts_concurrent_records_count_each_detection_once,
            tickets_update_checks_the_version,
            tickets_update_unknown_or_other_tenant_is_not_found,
            tickets_concurrent_updates_exactly_one_wins,
            tickets_update_applies_aggregates_exactly_once,
            tickets_list_follows_updates_through_every_index,
            aggregates_totals_and_hourly_ranges,
            aggregates_samples_range_and_replace,
            aggregates_concurrent_increments_lose_nothing,
            aggregates_tenants_and_global_are_separate,
            aggregates_large_write_sets_apply,
        );
    };
    (@checks $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture: $crate::contract::Fixture = $make.await;
                $crate::contract::$check(&fixture.ports).await;
                drop(fixture);
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------------------
// Test data

/// Upper bound of every long poll in the suite.
pub const POLL: Duration = Duration::from_secs(1);
/// A visibility timeout no check outlives.
pub const HIDDEN: Duration = Duration::from_secs(120);

pub const TENANT: &str = "acme";
pub const OTHER_TENANT: &str = "globex";
/// The rule and entity of the alert checks.
pub(crate) const RULE: &str = "ssh-brute-force";
pub(crate) const ENTITY: &str = "src_ip=203.0.113.7";

/// A fixed event time for detections, alerts and tickets.
pub fn t0() -> Timestamp {
    DateTime::from_timestamp(1_714_564_800, 0).unwrap_or_default()
}

pub fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

/// Expiry for stored events and windows: in the future of the backend's (wall) clock.
pub fn later() -> Timestamp {
    Utc::now() + chrono::Duration::days(1)
}

/// A scored event with every optional field set.
pub fn event(tenant: &str, id: &str) -> Event {
    Event {
        id: id.to_string(),
        tenant: tenant.to_string(),
        timestamp: t0(),
        received_at: t0() + chrono::Duration::milliseconds(1234),
        source: "syslog".into(),
        host: Some("bastion-1".into()),
        program: Some("sshd".into()),
        category: Some("authentication".into()),
        action: Some("login".into()),
        outcome: Outcome::Failure,
        severity: Severity::Medium,
        src_ip: "203.0.113.7".parse().ok(),
        src_port: Some(52144),
        user: Some("root".into()),
        dst_ip: "10.0.0.5".parse().ok(),
        message: Some(format!("Failed password for root from 203.0.113.7 ({tenant}/{id})")),
        raw: Some("<38>Jan  1 00:00:00 bastion-1 sshd[42]: Failed password for root".into()),
        labels: [("env".to_string(), "prod".to_string()), ("team".to_string(), "ünïcødé".to_string())].into(),
        score: Some(72),
        risk: Some(Risk::High),
        reasons: vec!["failed root login".into()],
        rules: vec!["ssh-brute-force".into()],
        mitre: vec!["T1110".into()],
    }
}

/// A detection of `rule` for `entity` whose evidence ends at `last_seen`.
pub fn detection(tenant: &str, rule: &str, entity: &str, id: &str, last_seen: Timestamp) -> Detection {
    Detection {
        id: id.to_string(),
        tenant: tenant.to_string(),
        rule: rule.to_string(),
        rule_name: format!("Rule {rule}"),
        entity: entity.to_string(),
        window_seconds: 300,
        count: 5,
        first_seen: last_seen - minutes(1),
        last_seen,
        evidence: vec![format!("{id}-ev1"), format!("{id}-ev2")],
        score: 50,
        severity: Severity::Medium,
        mitre: vec!["T1110".into()],
        reasons: vec![format!("5 failures for {entity}")],
        detected_at: last_seen + chrono::Duration::seconds(2),
    }
}

/// The alert and ticket the alert stage would open for `d` at its `detected_at`
/// ([`crate::alert::candidate`]): ids sort by `last_seen` and are unique per (tenant, rule, entity, detection
/// id); acknowledge within 15 minutes and close within a day, whatever the severity; no aggregate writes
/// (the tests that need them set their own).
pub fn candidate(d: &Detection, suppression: chrono::Duration) -> AlertCandidate {
    let every = |within: Duration| Severity::ALL.into_iter().map(|s| (s, within)).collect();
    let sla =
        SlaPolicy { acknowledge: every(Duration::from_secs(15 * 60)), close: every(Duration::from_secs(24 * 3600)) };
    let suppression = suppression.to_std().expect("a non-negative suppression");
    let mut c = crate::alert::candidate(d, suppression, &sla, d.detected_at);
    c.on_open.clear();
    c.on_detection.clear();
    c
}

pub fn entry(at_ms: i64, event_id: &str, tag: &str) -> WindowEntry {
    WindowEntry { at_ms, event_id: event_id.to_string(), tag: tag.to_string() }
}

pub fn update(key: &str, entries: Vec<WindowEntry>) -> WindowUpdate {
    WindowUpdate { key: key.to_string(), entries }
}

pub(crate) fn set(entries: &[WindowEntry]) -> BTreeSet<WindowEntry> {
    entries.iter().cloned().collect()
}

pub(crate) fn bodies(messages: &[ReceivedMessage]) -> Vec<String> {
    let mut b: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
    b.sort();
    b
}

/// Receives until `n` messages arrived (each poll waits at most [`POLL`]) or the queue stays empty.
pub async fn receive_n(rx: &dyn QueueReceiver, n: usize, visibility: Duration) -> Vec<ReceivedMessage> {
    let mut got = Vec::new();
    let mut empty_polls = 0;
    while got.len() < n && empty_polls < 3 {
        let batch = rx.receive((n - got.len()).min(10), visibility, POLL).await.expect("receive");
        if batch.is_empty() {
            empty_polls += 1;
        }
        got.extend(batch);
    }
    got
}

/// Receives exactly one message.
pub async fn receive_one(rx: &dyn QueueReceiver, visibility: Duration) -> ReceivedMessage {
    let mut got = receive_n(rx, 1, visibility).await;
    assert_eq!(got.len(), 1, "expected one message, got {got:?}");
    got.remove(0)
}

pub(crate) async fn assert_empty(rx: &dyn QueueReceiver, what: &str) {
    let got = rx.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    assert!(got.is_empty(), "{what}: expected no visible message, got {got:?}");
}

pub(crate) async fn depth(rx: &dyn QueueReceiver) -> QueueDepth {
    rx.depth().await.expect("depth")
}

pub(crate) async fn send(tx: &dyn QueueSender, bodies: &[&str]) {
    let bodies: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
    tx.send(&bodies).await.expect("send");
}

pub(crate) async fn record(p: &Ports, c: &AlertCandidate) -> RecordOutcome {
    p.alerts.record(c).await.expect("record")
}

pub(crate) async fn alert(p: &Ports, tenant: &str, id: &str) -> Alert {
    p.alerts.get_alert(tenant, id).await.expect("get_alert").unwrap_or_else(|| panic!("alert {id} not found"))
}

pub(crate) fn opened_id(o: &RecordOutcome) -> String {
    match o {
        RecordOutcome::Opened { alert_id, .. } => alert_id.clone(),
        other => panic!("expected Opened, got {other:?}"),
    }
}

/// The page size a request asks for: 0 means the default of 50, and at most 500.
pub(crate) fn effective_limit(limit: usize) -> usize {
    if limit == 0 {
        50
    } else {
        limit.min(500)
    }
}

/// The total of counter `name` for `tenant` (0 when it was never written).
pub async fn total(p: &Ports, tenant: &str, name: &str) -> i64 {
    let totals = p.aggregates.totals(tenant).await.expect("totals");
    let matching: Vec<i64> = totals.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect();
    assert!(matching.len() <= 1, "counter {name} listed twice: {totals:?}");
    matching.first().copied().unwrap_or(0)
}

pub(crate) fn sample(kind: &str, id: &str, at: Timestamp, value: f64) -> AggregateWrite {
    AggregateWrite::Sample(Sample {
        kind: kind.to_string(),
        id: id.to_string(),
        at,
        value,
        labels: [("severity".to_string(), "high".to_string())].into(),
    })
}

/// Every page of alerts, asserting each page respects the limit.
pub async fn all_alerts(p: &Ports, tenant: &str, limit: usize) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page: Page<Alert> =
            p.alerts.list_alerts(tenant, &PageRequest { limit, cursor }).await.expect("list_alerts");
        assert!(page.items.len() <= effective_limit(limit), "page of {} exceeds limit {limit}", page.items.len());
        out.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("list_alerts never ended");
}

/// Every page of tickets matching `filter`.
pub async fn all_tickets(p: &Ports, tenant: &str, filter: &TicketFilter, limit: usize) -> Vec<Ticket> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..100 {
        let page = p.alerts.list_tickets(tenant, filter, &PageRequest { limit, cursor }).await.expect("list_tickets");
        assert!(page.items.len() <= effective_limit(limit), "page of {} exceeds limit {limit}", page.items.len());
        out.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("list_tickets never ended");
}

mod aggregates;
mod alerts;
mod events;
mod queues;
mod windows;

pub use aggregates::*;
pub use alerts::*;
pub use events::*;
pub use queues::*;
pub use windows::*;

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

fn set(entries: &[WindowEntry]) -> BTreeSet<WindowEntry> {
    entries.iter().cloned().collect()
}

fn bodies(messages: &[ReceivedMessage]) -> Vec<String> {
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

async fn assert_empty(rx: &dyn QueueReceiver, what: &str) {
    let got = rx.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    assert!(got.is_empty(), "{what}: expected no visible message, got {got:?}");
}

async fn depth(rx: &dyn QueueReceiver) -> QueueDepth {
    rx.depth().await.expect("depth")
}

async fn send(tx: &dyn QueueSender, bodies: &[&str]) {
    let bodies: Vec<String> = bodies.iter().map(|b| b.to_string()).collect();
    tx.send(&bodies).await.expect("send");
}

async fn record(p: &Ports, c: &AlertCandidate) -> RecordOutcome {
    p.alerts.record(c).await.expect("record")
}

async fn alert(p: &Ports, tenant: &str, id: &str) -> Alert {
    p.alerts.get_alert(tenant, id).await.expect("get_alert").unwrap_or_else(|| panic!("alert {id} not found"))
}

fn opened_id(o: &RecordOutcome) -> String {
    match o {
        RecordOutcome::Opened { alert_id, .. } => alert_id.clone(),
        other => panic!("expected Opened, got {other:?}"),
    }
}

/// The page size a request asks for: 0 means the default of 50, and at most 500.
fn effective_limit(limit: usize) -> usize {
    if limit == 0 {
        50
    } else {
        limit.min(500)
    }
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

// ---------------------------------------------------------------------------------------------------------
// Queues

/// Bodies come back byte-identical, once each, with receive count 1; deleted messages are gone.
pub async fn queue_round_trip(p: &Ports) {
    let sent = [
        r#"{"events":[{"id":"e1","tenant":"acme"}]}"#,
        "ünïcødé ✓ 😀 — テスト",
        "line one\nline two\ttabbed <xml attr=\"1\"> & 'quotes' \\ backslash",
    ];
    send(&*p.events_queue, &sent).await;
    let got = receive_n(&*p.events_receiver, sent.len(), HIDDEN).await;
    let mut expected: Vec<String> = sent.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(bodies(&got), expected);
    assert!(got.iter().all(|m| m.receive_count == 1), "{got:?}");
    let ids: BTreeSet<_> = got.iter().map(|m| m.message_id.clone()).collect();
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    assert_eq!(ids.len(), sent.len(), "message ids must be distinct");
    assert_eq!(receipts.iter().collect::<BTreeSet<_>>().len(), sent.len(), "receipts must be distinct");
    p.events_receiver.delete(&receipts).await.expect("delete");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
    assert_empty(&*p.events_receiver, "after delete").await;
}

/// One `send` of more bodies than one SQS batch holds delivers all of them.
pub async fn queue_send_many_in_one_call(p: &Ports) {
    let sent: Vec<String> = (0..25).map(|i| format!("message {i:02}")).collect();
    p.detections_queue.send(&sent).await.expect("send");
    let got = receive_n(&*p.detections_receiver, sent.len(), HIDDEN).await;
    assert_eq!(bodies(&got), sent);
}

/// A body of 250 KiB (close to the queue limit) round-trips unchanged.
pub async fn queue_large_body(p: &Ports) {
    let unit = "0123456789abcdef{\"k\":\"v\"}\n";
    let mut big: String = unit.repeat(250 * 1024 / unit.len() + 1);
    big.truncate(250 * 1024);
    p.events_queue.send(std::slice::from_ref(&big)).await.expect("send");
    let got = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(got.body.len(), big.len());
    assert!(got.body == big, "large body changed in transit");
}

/// A message not deleted within its visibility timeout is received again, with a new receipt.
pub async fn queue_redelivery_after_visibility(p: &Ports) {
    send(&*p.events_queue, &["redeliver me"]).await;
    let first = receive_one(&*p.events_receiver, Duration::ZERO).await;
    assert_eq!(first.receive_count, 1);
    let second = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.body, "redeliver me");
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt, "every receive gives a new receipt");
}

/// A received message stays invisible while its visibility timeout runs.
pub async fn queue_invisible_while_in_flight(p: &Ports) {
    send(&*p.events_queue, &["in flight"]).await;
    let m = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(m.body, "in flight");
    assert_empty(&*p.events_receiver, "while in flight").await;
}

/// `release` makes a received message visible again before its timeout.
pub async fn queue_release(p: &Ports) {
    send(&*p.events_queue, &["retry me"]).await;
    let first = receive_one(&*p.events_receiver, HIDDEN).await;
    p.events_receiver.release(&first.receipt, Duration::ZERO).await.expect("release");
    let second = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    p.events_receiver.delete(std::slice::from_ref(&second.receipt)).await.expect("delete");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
}

/// Deleting with a receipt from an earlier receive is not an error, and the current receipt deletes.
/// (Whether the stale receipt deletes is not specified: SQS says it "might not".)
pub async fn queue_delete_with_stale_receipt_succeeds(p: &Ports) {
    send(&*p.events_queue, &["stale"]).await;
    let first = receive_one(&*p.events_receiver, Duration::ZERO).await;
    let second = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_ne!(first.receipt, second.receipt);
    p.events_receiver.delete(std::slice::from_ref(&first.receipt)).await.expect("delete with a stale receipt");
    p.events_receiver.delete(std::slice::from_ref(&second.receipt)).await.expect("delete with the current receipt");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
}

/// After the queue's maximum receive count, the message moves to the dead-letter queue.
pub async fn queue_dead_letter_after_max_receives(p: &Ports) {
    let queues: [(&dyn QueueSender, &dyn QueueReceiver, &dyn QueueReceiver, u32); 2] = [
        (&*p.events_queue, &*p.events_receiver, &*p.events_dead_letters, EVENTS_QUEUE.max_receive_count),
        (
            &*p.detections_queue,
            &*p.detections_receiver,
            &*p.detections_dead_letters,
            DETECTIONS_QUEUE.max_receive_count,
        ),
    ];
    for (tx, rx, dlq, max) in queues {
        send(tx, &["poison"]).await;
        let mut deliveries = Vec::new();
        for _ in 0..max + 3 {
            let got = rx.receive(10, Duration::ZERO, POLL).await.expect("receive");
            if got.is_empty() {
                break;
            }
            deliveries.extend(got);
        }
        let counts: Vec<u32> = deliveries.iter().map(|m| m.receive_count).collect();
        assert_eq!(counts, (1..=max).collect::<Vec<_>>(), "deliveries before dead-lettering");
        assert_empty(rx, "after dead-lettering").await;
        let dead = receive_one(dlq, HIDDEN).await;
        assert_eq!(dead.body, "poison");
        assert_eq!(depth(rx).await, QueueDepth { visible: 0, in_flight: 0 });
    }
}

/// Depth counts visible and in-flight messages.
pub async fn queue_depth_counts_visible_and_in_flight(p: &Ports) {
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 0, in_flight: 0 });
    send(&*p.events_queue, &["a", "b", "c"]).await;
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 3, in_flight: 0 });
    let m = receive_one(&*p.events_receiver, HIDDEN).await;
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 2, in_flight: 1 });
    p.events_receiver.delete(&[m.receipt]).await.expect("delete");
    assert_eq!(depth(&*p.events_receiver).await, QueueDepth { visible: 2, in_flight: 0 });
}

/// A receive with `wait` that is in progress when a message is sent gets it (or the next receive does);
/// `wait` zero on an empty queue returns empty.
pub async fn queue_long_poll_receives_message_sent_meanwhile(p: &Ports) {
    assert!(p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive").is_empty());
    let rx = p.events_receiver.clone();
    let waiter = tokio::spawn(async move { rx.receive(10, HIDDEN, POLL).await });
    tokio::task::yield_now().await;
    send(&*p.events_queue, &["while you wait"]).await;
    let mut got = waiter.await.expect("join").expect("receive");
    if got.is_empty() {
        got = receive_n(&*p.events_receiver, 1, HIDDEN).await;
    }
    assert_eq!(bodies(&got), vec!["while you wait".to_string()]);
}

/// The four queues of the bundle are distinct.
pub async fn queues_are_independent(p: &Ports) {
    send(&*p.events_queue, &["event batch"]).await;
    send(&*p.detections_queue, &["detection batch"]).await;
    assert_empty(&*p.events_dead_letters, "events dead letters").await;
    assert_empty(&*p.detections_dead_letters, "detections dead letters").await;
    assert_eq!(bodies(&receive_n(&*p.events_receiver, 1, HIDDEN).await), vec!["event batch".to_string()]);
    assert_eq!(bodies(&receive_n(&*p.detections_receiver, 1, HIDDEN).await), vec!["detection batch".to_string()]);
    assert_empty(&*p.events_receiver, "events").await;
    assert_empty(&*p.detections_receiver, "detections").await;
}

// ---------------------------------------------------------------------------------------------------------
// Events

/// `put_new` stores only unseen ids and reports which were new; storing again changes nothing.
pub async fn events_put_new_is_idempotent(p: &Ports) {
    let (a, b, c) = (event(TENANT, "ev-a"), event(TENANT, "ev-b"), event(TENANT, "ev-c"));
    let first = p.events.put_new(&[a.clone(), b.clone()], later()).await.expect("put_new");
    assert_eq!(first, vec![true, true]);
    let again = p.events.put_new(&[a.clone(), b.clone()], later()).await.expect("put_new");
    assert_eq!(again, vec![false, false]);
    let mut changed_b = b.clone();
    changed_b.message = Some("a retry must not overwrite".into());
    let mixed = p.events.put_new(&[changed_b, c.clone()], later()).await.expect("put_new");
    assert_eq!(mixed, vec![false, true]);
    for e in [&a, &b, &c] {
        assert_eq!(p.events.get(TENANT, &e.id).await.expect("get").as_ref(), Some(e));
    }
    assert_eq!(p.events.get(TENANT, "ev-missing").await.expect("get"), None);
    assert_eq!(p.events.put_new(&[], later()).await.expect("empty put_new"), Vec::<bool>::new());
}

/// The same id twice in one slice is stored once.
pub async fn events_duplicate_ids_in_one_slice(p: &Ports) {
    let a = event(TENANT, "ev-dup");
    let got = p.events.put_new(&[a.clone(), a.clone()], later()).await.expect("put_new");
    assert_eq!(got.iter().filter(|n| **n).count(), 1, "{got:?}");
    assert_eq!(p.events.get(TENANT, "ev-dup").await.expect("get"), Some(a));
}

/// Every field survives storage, including minimal events.
pub async fn events_round_trip_every_field(p: &Ports) {
    let full = event(TENANT, "ev-full");
    let minimal =
        Event { id: "ev-min".into(), tenant: TENANT.into(), timestamp: t0(), received_at: t0(), ..Event::default() };
    assert_eq!(p.events.put_new(&[full.clone(), minimal.clone()], later()).await.expect("put_new"), vec![true, true]);
    assert_eq!(p.events.get(TENANT, "ev-full").await.expect("get"), Some(full));
    assert_eq!(p.events.get(TENANT, "ev-min").await.expect("get"), Some(minimal));
}

/// The same id in two tenants is two events; a tenant never sees another's.
pub async fn events_tenant_isolation(p: &Ports) {
    let ours = event(TENANT, "ev-shared-id");
    let mut theirs = event(OTHER_TENANT, "ev-shared-id");
    theirs.user = Some("someone-else".into());
    assert_eq!(p.events.put_new(std::slice::from_ref(&ours), later()).await.expect("put_new"), vec![true]);
    assert_eq!(p.events.put_new(std::slice::from_ref(&theirs), later()).await.expect("put_new"), vec![true]);
    assert_eq!(p.events.get(TENANT, "ev-shared-id").await.expect("get"), Some(ours));
    assert_eq!(p.events.get(OTHER_TENANT, "ev-shared-id").await.expect("get"), Some(theirs));
    assert_eq!(p.events.get("initech", "ev-shared-id").await.expect("get"), None);
}

// ---------------------------------------------------------------------------------------------------------
// Windows

/// A window is a set: merging returns everything it holds, and an entry merged twice counts once.
pub async fn windows_merge_is_set_union(p: &Ports) {
    let key = "acme#ssh-brute-force#src_ip=203.0.113.7";
    let (e1, e2, e3) = (entry(1_000, "ev1", "failure"), entry(2_000, "ev2", "failure"), entry(3_000, "ev3", "success"));
    let got = p.windows.merge(&[update(key, vec![e1.clone(), e2.clone()])], later()).await.expect("merge");
    assert_eq!(got.len(), 1);
    assert_eq!(set(&got[0]), set(&[e1.clone(), e2.clone()]));
    let got = p.windows.merge(&[update(key, vec![e2.clone(), e3.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e1.clone(), e2.clone(), e3.clone()]));
    let got = p.windows.merge(&[update(key, vec![e1.clone(), e2.clone(), e3.clone()])], later()).await.expect("merge");
    assert_eq!(got[0].len(), 3, "{:?}", got[0]);
}

/// One call updates several keys and answers per key, in input order.
pub async fn windows_merge_several_keys_in_one_call(p: &Ports) {
    let (k1, k2, k3) = ("acme#r1#user=alice", "acme#r1#user=bob", "acme#r2#user=alice");
    let (a, b, c, d) = (entry(1, "a", "x"), entry(2, "b", "x"), entry(3, "c", "y"), entry(4, "d", "z"));
    let got = p
        .windows
        .merge(
            &[update(k1, vec![a.clone()]), update(k2, vec![b.clone(), c.clone()]), update(k3, vec![d.clone()])],
            later(),
        )
        .await
        .expect("merge");
    assert_eq!(got.len(), 3);
    assert_eq!(set(&got[0]), set(std::slice::from_ref(&a)));
    assert_eq!(set(&got[1]), set(&[b.clone(), c.clone()]));
    assert_eq!(set(&got[2]), set(std::slice::from_ref(&d)));
    let e = entry(5, "e", "x");
    let got =
        p.windows.merge(&[update(k2, vec![e.clone()]), update(k1, vec![b.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[b.clone(), c, e]));
    assert_eq!(set(&got[1]), set(&[a, b]));
}

/// Keys of different tenants never share entries.
pub async fn windows_keys_are_isolated(p: &Ports) {
    let ours = "acme#ssh-brute-force#src_ip=198.51.100.1";
    let theirs = "globex#ssh-brute-force#src_ip=198.51.100.1";
    let (e1, e2) = (entry(10, "ev1", "failure"), entry(20, "ev2", "failure"));
    p.windows.merge(&[update(ours, vec![e1.clone()])], later()).await.expect("merge");
    let got = p.windows.merge(&[update(theirs, vec![e2.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e2]));
    let e3 = entry(30, "ev3", "failure");
    let got = p.windows.merge(&[update(ours, vec![e3.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e1, e3]));
}

/// Merges into one key from many tasks at once never lose an entry.
pub async fn windows_concurrent_merges_lose_nothing(p: &Ports) {
    let key = "acme#ssh-brute-force#src_ip=192.0.2.99";
    let mut tasks = Vec::new();
    for t in 0..10 {
        let windows = p.windows.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let e = entry(i64::from(t * 100 + i), &format!("ev-{t}-{i}"), "failure");
                windows.merge(&[update(key, vec![e])], later()).await.expect("merge");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let last = entry(9_999, "ev-last", "failure");
    let got = p.windows.merge(&[update(key, vec![last])], later()).await.expect("merge");
    assert_eq!(set(&got[0]).len(), 51, "{:?}", got[0]);
}

/// `prune` removes exactly the given entries; unknown keys and entries are fine.
pub async fn windows_prune(p: &Ports) {
    let key = "acme#http-scan#src_ip=203.0.113.50";
    let (e1, e2, e3, e4) =
        (entry(1, "ev1", "404"), entry(2, "ev2", "404"), entry(3, "ev3", "200"), entry(4, "ev4", "404"));
    p.windows.merge(&[update(key, vec![e1.clone(), e2.clone(), e3.clone()])], later()).await.expect("merge");
    p.windows
        .prune(&[
            update(key, vec![e1.clone(), e2.clone(), entry(99, "never-merged", "x")]),
            update("acme#nope#x", vec![e1.clone()]),
        ])
        .await
        .expect("prune");
    let got = p.windows.merge(&[update(key, vec![e4.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e3.clone(), e4.clone()]));
    p.windows.prune(&[update(key, vec![e3, e4])]).await.expect("prune");
    let e5 = entry(5, "ev5", "404");
    let got = p.windows.merge(&[update(key, vec![e5.clone()])], later()).await.expect("merge");
    assert_eq!(set(&got[0]), set(&[e5]));
}

// ---------------------------------------------------------------------------------------------------------
// Alerts and tickets

const RULE: &str = "ssh-brute-force";
const ENTITY: &str = "src_ip=203.0.113.7";

/// The first detection for a key opens the candidate alert and its ticket, stored as given.
pub async fn alerts_first_detection_opens_alert_and_ticket(p: &Ports) {
    let c = candidate(&detection(TENANT, RULE, ENTITY, "det-1", t0()), minutes(30));
    let outcome = record(p, &c).await;
    assert_eq!(outcome, RecordOutcome::Opened { alert_id: c.alert.id.clone(), ticket_id: c.ticket.id.clone() });
    assert_eq!(p.alerts.get_alert(TENANT, &c.alert.id).await.expect("get_alert"), Some(c.alert.clone()));
    assert_eq!(p.alerts.get_ticket(TENANT, &c.ticket.id).await.expect("get_ticket"), Some(c.ticket.clone()));
}

/// Detections within the suppression period roll up: count, first/last seen, score and severity, evidence.
pub async fn alerts_roll_up_within_suppression(p: &Ports) {
    let d1 = detection(TENANT, RULE, ENTITY, "det-1", t0());
    let c1 = candidate(&d1, minutes(30));
    let alert_id = opened_id(&record(p, &c1).await);

    let mut d2 = detection(TENANT, RULE, ENTITY, "det-2", t0() + minutes(5));
    d2.severity = Severity::High;
    d2.score = 80;
    d2.first_seen = t0() - minutes(10);
    d2.evidence = vec!["det-1-ev2".into(), "det-2-ev9".into()];
    assert_eq!(record(p, &candidate(&d2, minutes(30))).await, RecordOutcome::RolledUp { alert_id: alert_id.clone() });

    let mut d3 = detection(TENANT, RULE, ENTITY, "det-3", t0() + minutes(2));
    d3.severity = Severity::Low;
    d3.score = 10;
    assert_eq!(record(p, &candidate(&d3, minutes(30))).await, RecordOutcome::RolledUp { alert_id: alert_id.clone() });

    let a = alert(p, TENANT, &alert_id).await;
    assert_eq!(a.count, 3);
    assert_eq!(a.first_seen, t0() - minutes(10));
    assert_eq!(a.last_seen, t0() + minutes(5));
    assert_eq!(a.severity, Severity::High);
    assert_eq!(a.score, 80);
    assert_eq!(a.suppress_until, c1.alert.suppress_until, "roll-up does not extend suppression");
    let evidence: BTreeSet<&str> = a.evidence.iter().map(String::as_str).collect();
    assert_eq!(evidence.len(), a.evidence.len(), "evidence has duplicates: {:?}", a.evidence);
    assert_eq!(evidence, BTreeSet::from(["det-1-ev1", "det-1-ev2", "det-2-ev9", "det-3-ev1", "det-3-ev2"]));
    assert_eq!(all_alerts(p, TENANT, 10).await.len(), 1);
    assert_eq!(all_tickets(p, TENANT, &TicketFilter::default(), 10).await.len(), 1);
}

/// Recording a detection again (a retry) changes nothing, whether it opened the alert or rolled up.
pub async fn alerts_same_detection_is_already_recorded(p: &Ports) {
    let c1 = candidate(&detection(TENANT, RULE, ENTITY, "det-1", t0()), minutes(30));
    let alert_id = opened_id(&record(p, &c1).await);
    assert_eq!(record(p, &c1).await, RecordOutcome::AlreadyRecorded { alert_id: alert_id.clone() });
    let c2 = candidate(&detection(TENANT, RULE, ENTITY, "det-2", t0() + minutes(1)), minutes(30));
    assert_eq!(record(p, &c2).await, RecordOutcome::RolledUp { alert_id: alert_id.clone() });
    assert_eq!(record(p, &c2).await, RecordOutcome::AlreadyRecorded { alert_id: alert_id.clone() });
    assert_eq!(record(p, &c1).await, RecordOutcome::AlreadyRecorded { alert_id: alert_id.clone() });
    assert_eq!(alert(p, TENANT, &alert_id).await.count, 2);
    assert_eq!(all_alerts(p, TENANT, 10).await.len(), 1);
    assert_eq!(all_tickets(p, TENANT, &TicketFilter::default(), 10).await.len(), 1);
}

/// A detection at or after the open alert's `suppress_until` opens a new alert, and later ones roll into it.
pub async fn alerts_detection_at_suppress_until_opens_new_alert(p: &Ports) {
    let c1 = candidate(&detection(TENANT, RULE, ENTITY, "det-1", t0()), minutes(30));
    let first = opened_id(&record(p, &c1).await);
    let c2 = candidate(&detection(TENANT, RULE, ENTITY, "det-2", c1.alert.suppress_until), minutes(30));
    let second = opened_id(&record(p, &c2).await);
    assert_ne!(first, second);
    let c3 = candidate(&detection(TENANT, RULE, ENTITY, "det-3", t0() + minutes(40)), minutes(30));
    assert_eq!(record(p, &c3).await, RecordOutcome::RolledUp { alert_id: second.clone() });
    assert_eq!(alert(p, TENANT, &first).await.count, 1);
    assert_eq!(alert(p, TENANT, &second).await.count, 2);
    let listed: Vec<String> = all_alerts(p, TENANT, 10).await.into_iter().map(|a| a.id).collect();
    assert_eq!(listed, vec![second, first], "newest first");
}

/// Alerts are per (tenant, rule, entity), and detection ids are only compared within one key.
pub async fn alerts_never_shared_across_tenants_rules_entities(p: &Ports) {
    let keys = [
        (TENANT, RULE, ENTITY),
        (OTHER_TENANT, RULE, ENTITY),
        (TENANT, "http-scan", ENTITY),
        (TENANT, RULE, "user=root"),
    ];
    let mut ids = BTreeSet::new();
    for (tenant, rule, entity) in keys {
        let c = candidate(&detection(tenant, rule, entity, "det-same-id", t0()), minutes(30));
        let id = opened_id(&record(p, &c).await);
        assert_eq!(alert(p, tenant, &id).await.count, 1);
        ids.insert(id);
    }
    assert_eq!(ids.len(), keys.len());
    assert_eq!(all_alerts(p, TENANT, 10).await.len(), 3);
    assert_eq!(all_alerts(p, OTHER_TENANT, 10).await.len(), 1);
}

/// Ten distinct detections for one key recorded at once: exactly one opens the alert, all are counted.
pub async fn alerts_concurrent_records_open_one_alert(p: &Ports) {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let alerts = p.alerts.clone();
        let c = candidate(
            &detection(TENANT, RULE, ENTITY, &format!("det-{i}"), t0() + chrono::Duration::seconds(i)),
            minutes(30),
        );
        tasks.push(tokio::spawn(async move { alerts.record(&c).await.expect("record") }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("join"));
    }
    let opened: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match o {
            RecordOutcome::Opened { alert_id, .. } => Some(alert_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1, "{outcomes:?}");
    let id = opened[0].clone();
    for o in &outcomes {
        match o {
            RecordOutcome::Opened { .. } => {}
            RecordOutcome::RolledUp { alert_id } => assert_eq!(alert_id, &id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(alert(p, TENANT, &id).await.count, 10);
    assert_eq!(all_alerts(p, TENANT, 50).await.len(), 1);
    assert_eq!(all_tickets(p, TENANT, &TicketFilter::default(), 50).await.len(), 1);
}

/// Listing is newest first and pages through everything without duplicates or gaps.
pub async fn alerts_list_paginates_newest_first(p: &Ports) {
    let mut expected_alerts = Vec::new();
    let mut expected_tickets = Vec::new();
    for i in 0..7 {
        let c = candidate(
            &detection(TENANT, RULE, &format!("user=u{i}"), &format!("det-{i}"), t0() + minutes(i)),
            minutes(30),
        );
        opened_id(&record(p, &c).await);
        expected_alerts.push(c.alert.id.clone());
        expected_tickets.push(c.ticket.id.clone());
    }
    expected_alerts.reverse();
    expected_tickets.reverse();
    let first = p.alerts.list_alerts(TENANT, &PageRequest { limit: 3, cursor: None }).await.expect("list_alerts");
    assert_eq!(first.items.len(), 3);
    assert!(first.next.is_some());
    for limit in [1, 3, 7, 0, 500] {
        let ids: Vec<String> = all_alerts(p, TENANT, limit).await.into_iter().map(|a| a.id).collect();
        assert_eq!(ids, expected_alerts, "alerts with limit {limit}");
        let ids: Vec<String> =
            all_tickets(p, TENANT, &TicketFilter::default(), limit).await.into_iter().map(|t| t.id).collect();
        assert_eq!(ids, expected_tickets, "tickets with limit {limit}");
    }
    let all = p.alerts.list_alerts(TENANT, &PageRequest { limit: 0, cursor: None }).await.expect("list_alerts");
    assert_eq!(all.items.len(), 7, "limit 0 means the default page size");
    assert_eq!(all.next, None);
}

/// Ticket filters (status, severity, assignee, rule) select exactly the matching tickets, across pages.
pub async fn tickets_list_filters_and_paginates(p: &Ports) {
    let variants = [
        ("r1", TicketStatus::New, Severity::High, None),
        ("r1", TicketStatus::Acknowledged, Severity::Medium, Some("alice")),
        ("r2", TicketStatus::New, Severity::High, Some("bob")),
        ("r2", TicketStatus::Closed, Severity::Low, Some("alice")),
        ("r1", TicketStatus::New, Severity::Critical, Some("alice")),
        ("r2", TicketStatus::InProgress, Severity::High, None),
        ("r1", TicketStatus::Closed, Severity::High, Some("bob")),
    ];
    let mut tickets = Vec::new();
    for (i, (rule, status, severity, assignee)) in variants.into_iter().enumerate() {
        let minute = i64::try_from(i).unwrap_or_default();
        let mut c = candidate(
            &detection(TENANT, rule, &format!("host=h{i}"), &format!("det-{i}"), t0() + minutes(minute)),
            minutes(30),
        );
        c.ticket.status = status;
        c.ticket.severity = severity;
        c.ticket.assignee = assignee.map(str::to_string);
        opened_id(&record(p, &c).await);
        tickets.push(c.ticket);
    }
    tickets.reverse();
    let filters = [
        TicketFilter::default(),
        TicketFilter { status: Some(TicketStatus::New), ..TicketFilter::default() },
        TicketFilter { status: Some(TicketStatus::Closed), ..TicketFilter::default() },
        TicketFilter { severity: Some(Severity::High), ..TicketFilter::default() },
        TicketFilter { assignee: Some("alice".into()), ..TicketFilter::default() },
        TicketFilter { rule: Some("r2".into()), ..TicketFilter::default() },
        TicketFilter { status: Some(TicketStatus::New), rule: Some("r1".into()), ..TicketFilter::default() },
        TicketFilter { assignee: Some("nobody".into()), ..TicketFilter::default() },
    ];
    for filter in &filters {
        let expected: Vec<String> = tickets.iter().filter(|t| filter.matches(t)).map(|t| t.id.clone()).collect();
        for limit in [2, 50] {
            let got: Vec<String> = all_tickets(p, TENANT, filter, limit).await.into_iter().map(|t| t.id).collect();
            assert_eq!(got, expected, "filter {filter:?}, limit {limit}");
        }
    }
}

/// Another tenant's alert or ticket id is simply not found, and lists never mix tenants.
pub async fn alerts_and_tickets_are_tenant_scoped(p: &Ports) {
    let ours = candidate(&detection(TENANT, RULE, ENTITY, "det-1", t0()), minutes(30));
    let theirs = candidate(&detection(OTHER_TENANT, RULE, ENTITY, "det-9", t0() + minutes(1)), minutes(30));
    opened_id(&record(p, &ours).await);
    assert_eq!(p.alerts.get_alert(OTHER_TENANT, &ours.alert.id).await.expect("get_alert"), None);
    assert_eq!(p.alerts.get_ticket(OTHER_TENANT, &ours.ticket.id).await.expect("get_ticket"), None);
    assert!(all_alerts(p, OTHER_TENANT, 10).await.is_empty());
    assert!(all_tickets(p, OTHER_TENANT, &TicketFilter::default(), 10).await.is_empty());
    opened_id(&record(p, &theirs).await);
    let ours_listed: Vec<String> = all_alerts(p, TENANT, 10).await.into_iter().map(|a| a.id).collect();
    assert_eq!(ours_listed, vec![ours.alert.id.clone()]);
    let theirs_listed: Vec<String> =
        all_tickets(p, OTHER_TENANT, &TicketFilter::default(), 10).await.into_iter().map(|t| t.id).collect();
    assert_eq!(theirs_listed, vec![theirs.ticket.id.clone()]);
    assert_eq!(p.alerts.get_alert("initech", &ours.alert.id).await.expect("get_alert"), None);
}

// ---------------------------------------------------------------------------------------------------------
// Aggregates with alerts and tickets

/// The total of counter `name` for `tenant` (0 when it was never written).
pub async fn total(p: &Ports, tenant: &str, name: &str) -> i64 {
    let totals = p.aggregates.totals(tenant).await.expect("totals");
    let matching: Vec<i64> = totals.iter().filter(|(n, _)| n == name).map(|(_, v)| *v).collect();
    assert!(matching.len() <= 1, "counter {name} listed twice: {totals:?}");
    matching.first().copied().unwrap_or(0)
}

fn sample(kind: &str, id: &str, at: Timestamp, value: f64) -> AggregateWrite {
    AggregateWrite::Sample(Sample {
        kind: kind.to_string(),
        id: id.to_string(),
        at,
        value,
        labels: [("severity".to_string(), "high".to_string())].into(),
    })
}

/// A candidate whose record counts `opened` on open and `detections` on open or roll-up.
fn counted(d: &Detection) -> AlertCandidate {
    let mut c = candidate(d, minutes(30));
    c.on_open =
        vec![count("opened", &[("rule", &d.rule)], d.last_seen, 1), sample("ttd", &c.ticket.id, d.last_seen, 5.0)];
    c.on_detection = vec![count("detections", &[("rule", &d.rule)], d.last_seen, 1)];
    c
}

/// `on_open` is applied with an open, `on_detection` with an open or a roll-up, and neither on a retry.
pub async fn alerts_aggregates_applied_exactly_once(p: &Ports) {
    let (opened, detections) = (r#"opened{rule="ssh-brute-force"}"#, r#"detections{rule="ssh-brute-force"}"#);
    let c1 = counted(&detection(TENANT, RULE, ENTITY, "det-1", t0()));
    opened_id(&record(p, &c1).await);
    assert_eq!((total(p, TENANT, opened).await, total(p, TENANT, detections).await), (1, 1));
    assert!(matches!(record(p, &c1).await, RecordOutcome::AlreadyRecorded { .. }));
    assert_eq!((total(p, TENANT, opened).await, total(p, TENANT, detections).await), (1, 1), "a retry adds nothing");

    let c2 = counted(&detection(TENANT, RULE, ENTITY, "det-2", t0() + minutes(1)));
    assert!(matches!(record(p, &c2).await, RecordOutcome::RolledUp { .. }));
    assert_eq!((total(p, TENANT, opened).await, total(p, TENANT, detections).await), (1, 2), "a roll-up counts");
    for c in [&c1, &c2, &c2] {
        assert!(matches!(record(p, c).await, RecordOutcome::AlreadyRecorded { .. }));
    }
    assert_eq!((total(p, TENANT, opened).await, total(p, TENANT, detections).await), (1, 2));

    let ttd = p.aggregates.samples(TENANT, "ttd", t0() - minutes(60), t0() + minutes(60)).await.expect("samples");
    assert_eq!(ttd.len(), 1, "{ttd:?}");
    assert_eq!(ttd[0].id, c1.ticket.id);
    let hourly = p.aggregates.hourly(TENANT, t0() - minutes(60), t0() + minutes(60)).await.expect("hourly");
    let det: i64 = hourly.iter().filter(|h| h.name == detections).map(|h| h.value).sum();
    assert_eq!(det, 2);
    assert!(p.aggregates.totals(OTHER_TENANT).await.expect("totals").is_empty(), "counted for the detection's tenant");
}

/// Ten detections for one key at once: one open, ten detections counted, each once, even when all are retried.
pub async fn alerts_concurrent_records_count_each_detection_once(p: &Ports) {
    let candidates: Vec<AlertCandidate> = (0..10)
        .map(|i| counted(&detection(TENANT, RULE, ENTITY, &format!("det-{i}"), t0() + chrono::Duration::seconds(i))))
        .collect();
    for round in 0..2 {
        let mut tasks = Vec::new();
        for c in candidates.clone() {
            let alerts = p.alerts.clone();
            tasks.push(tokio::spawn(async move { alerts.record(&c).await.expect("record") }));
        }
        for t in tasks {
            let outcome = t.await.expect("join");
            if round == 1 {
                assert!(matches!(outcome, RecordOutcome::AlreadyRecorded { .. }), "{outcome:?}");
            }
        }
    }
    assert_eq!(total(p, TENANT, r#"opened{rule="ssh-brute-force"}"#).await, 1);
    assert_eq!(total(p, TENANT, r#"detections{rule="ssh-brute-force"}"#).await, 10);
}

/// Opens one ticket (version 1) and returns it.
async fn open_ticket(p: &Ports, tenant: &str, id: &str, minute: i64) -> Ticket {
    let c = candidate(&detection(tenant, RULE, &format!("host={id}"), id, t0() + minutes(minute)), minutes(30));
    opened_id(&record(p, &c).await);
    c.ticket
}

/// `ticket` changed as an analyst would, one version on.
fn next(ticket: &Ticket, status: TicketStatus, assignee: Option<&str>) -> Ticket {
    let mut t = ticket.clone();
    t.status = status;
    t.assignee = assignee.map(str::to_string);
    t.version += 1;
    t
}

/// An update from the stored version succeeds and is stored; one from an older version is a conflict and
/// changes nothing; a ticket whose version is not expected + 1 is refused.
pub async fn tickets_update_checks_the_version(p: &Ports) {
    let v1 = open_ticket(p, TENANT, "det-1", 0).await;
    assert_eq!(v1.version, 1);
    let v2 = next(&v1, TicketStatus::Acknowledged, Some("alice"));
    p.alerts.update_ticket(&v2, 1, &[]).await.expect("update from version 1");
    assert_eq!(p.alerts.get_ticket(TENANT, &v1.id).await.expect("get"), Some(v2.clone()));

    let stale = next(&v1, TicketStatus::Closed, Some("bob"));
    match p.alerts.update_ticket(&stale, 1, &[count("c", &[], t0(), 1)]).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a stale update must be a conflict, got {other:?}"),
    }
    assert_eq!(p.alerts.get_ticket(TENANT, &v1.id).await.expect("get"), Some(v2.clone()), "never last-writer-wins");
    assert_eq!(total(p, TENANT, "c").await, 0, "a conflicting update writes no aggregate");

    let mut skipping = next(&v2, TicketStatus::InProgress, Some("alice"));
    skipping.version = 7;
    assert!(matches!(p.alerts.update_ticket(&skipping, 2, &[]).await, Err(StoreError::Permanent(_))));
    let v3 = next(&v2, TicketStatus::InProgress, None);
    p.alerts.update_ticket(&v3, 2, &[]).await.expect("update from version 2");
    assert_eq!(p.alerts.get_ticket(TENANT, &v1.id).await.expect("get"), Some(v3));
}

/// Updating a ticket that does not exist, or another tenant's, is a permanent "not found" and writes nothing.
pub async fn tickets_update_unknown_or_other_tenant_is_not_found(p: &Ports) {
    let ours = open_ticket(p, TENANT, "det-1", 0).await;
    let mut unknown = next(&ours, TicketStatus::Closed, None);
    unknown.id = "T9999999999999nothere".into();
    let mut theirs = next(&ours, TicketStatus::Closed, None);
    theirs.tenant = OTHER_TENANT.into();
    for t in [&unknown, &theirs] {
        match p.alerts.update_ticket(t, 1, &[count("c", &[], t0(), 1)]).await {
            Err(StoreError::Permanent(m)) => assert!(m.starts_with(TICKET_NOT_FOUND), "{m}"),
            other => panic!("expected not found for {}/{}, got {other:?}", t.tenant, t.id),
        }
    }
    assert_eq!(p.alerts.get_ticket(TENANT, &ours.id).await.expect("get"), Some(ours.clone()));
    assert_eq!(p.alerts.get_ticket(OTHER_TENANT, &ours.id).await.expect("get"), None);
    assert!(all_tickets(p, OTHER_TENANT, &TicketFilter::default(), 10).await.is_empty());
    assert_eq!(total(p, TENANT, "c").await + total(p, OTHER_TENANT, "c").await, 0);
}

/// Ten updates from the same version at once: exactly one succeeds, the others conflict, and only the
/// winner's aggregate writes are applied.
pub async fn tickets_concurrent_updates_exactly_one_wins(p: &Ports) {
    let v1 = open_ticket(p, TENANT, "det-1", 0).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let alerts = p.alerts.clone();
        let who = format!("analyst-{i}");
        let t = next(&v1, TicketStatus::Acknowledged, Some(&who));
        let writes = vec![count("acks", &[], t0(), 1), count(&format!("ack-by-{i}"), &[], t0(), 1)];
        tasks.push(tokio::spawn(async move { (t.clone(), alerts.update_ticket(&t, 1, &writes).await) }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("join") {
            (t, Ok(())) => winners.push(t),
            (_, Err(StoreError::Conflict(_))) => {}
            (_, Err(e)) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent update wins");
    let stored = p.alerts.get_ticket(TENANT, &v1.id).await.expect("get").expect("ticket");
    assert_eq!(stored, winners[0]);
    assert_eq!(total(p, TENANT, "acks").await, 1);
    let totals = p.aggregates.totals(TENANT).await.expect("totals");
    let by: Vec<&str> = totals.iter().map(|(n, _)| n.as_str()).filter(|n| n.starts_with("ack-by-")).collect();
    let winner = stored.assignee.as_deref().and_then(|a| a.strip_prefix("analyst-")).unwrap_or("?");
    assert_eq!(by, vec![format!("ack-by-{winner}").as_str()]);
}

/// The aggregate writes of an update land with it, once: a retry of the same update conflicts and adds
/// nothing; they go to the ticket's tenant.
pub async fn tickets_update_applies_aggregates_exactly_once(p: &Ports) {
    let v1 = open_ticket(p, TENANT, "det-1", 0).await;
    let v2 = next(&v1, TicketStatus::Closed, Some("alice"));
    let at = t0() + minutes(90);
    let writes = vec![
        count("closed", &[("rule", RULE)], at, 1),
        count("closed", &[("rule", RULE)], at, 1),
        count("ttc_bucket", &[("le", "300")], at, 1),
        sample("ttc", &v1.id, at, 5400.0),
    ];
    p.alerts.update_ticket(&v2, 1, &writes).await.expect("update");
    assert!(matches!(p.alerts.update_ticket(&v2, 1, &writes).await, Err(StoreError::Conflict(_))));
    let closed = r#"closed{rule="ssh-brute-force"}"#;
    assert_eq!(total(p, TENANT, closed).await, 2);
    assert_eq!(total(p, TENANT, r#"ttc_bucket{le="300"}"#).await, 1);
    let hourly = p.aggregates.hourly(TENANT, t0(), t0() + minutes(180)).await.expect("hourly");
    let hour = at - minutes(30);
    assert!(hourly.contains(&HourlyCount { hour, name: closed.into(), value: 2 }), "{hourly:?}");
    let ttc = p.aggregates.samples(TENANT, "ttc", t0(), t0() + minutes(180)).await.expect("samples");
    assert_eq!(ttc.len(), 1);
    assert_eq!(ttc[0].value, 5400.0);
    assert!(p.aggregates.totals(OTHER_TENANT).await.expect("totals").is_empty());
}

/// Listing by status, assignee, rule and severity follows updates: a ticket moves between index entries, an
/// unassigned ticket leaves the assignee's list, and every filter pages through without gaps or repeats.
pub async fn tickets_list_follows_updates_through_every_index(p: &Ports) {
    let mut tickets = Vec::new();
    for i in 0..9 {
        let rule = if i % 3 == 0 { "r-odd" } else { RULE };
        let mut c = candidate(
            &detection(TENANT, rule, &format!("host=h{i}"), &format!("det-{i}"), t0() + minutes(i)),
            minutes(30),
        );
        c.ticket.severity = if i % 2 == 0 { Severity::High } else { Severity::Low };
        opened_id(&record(p, &c).await);
        tickets.push(c.ticket);
    }
    // Another tenant with the same values never shows up.
    let theirs = candidate(&detection(OTHER_TENANT, RULE, "host=h0", "det-x", t0()), minutes(30));
    opened_id(&record(p, &theirs).await);
    for i in [1usize, 4, 5, 7] {
        let status = if i == 7 { TicketStatus::Closed } else { TicketStatus::Acknowledged };
        let updated = next(&tickets[i], status, Some(if i == 5 { "bob" } else { "alice" }));
        p.alerts.update_ticket(&updated, 1, &[]).await.expect("update");
        tickets[i] = updated;
    }
    // 4 is unassigned again and closed.
    let again = next(&tickets[4], TicketStatus::Closed, None);
    p.alerts.update_ticket(&again, 2, &[]).await.expect("update");
    tickets[4] = again;

    tickets.reverse();
    let st = |s| TicketFilter { status: Some(s), ..TicketFilter::default() };
    let filters = [
        TicketFilter::default(),
        st(TicketStatus::New),
        st(TicketStatus::Acknowledged),
        st(TicketStatus::Closed),
        st(TicketStatus::InProgress),
        TicketFilter { assignee: Some("alice".into()), ..TicketFilter::default() },
        TicketFilter { assignee: Some("bob".into()), ..TicketFilter::default() },
        TicketFilter { rule: Some("r-odd".into()), ..TicketFilter::default() },
        TicketFilter { severity: Some(Severity::High), ..TicketFilter::default() },
        TicketFilter { severity: Some(Severity::Critical), ..TicketFilter::default() },
        TicketFilter { status: Some(TicketStatus::Closed), assignee: Some("alice".into()), ..TicketFilter::default() },
        TicketFilter { status: Some(TicketStatus::New), severity: Some(Severity::High), ..TicketFilter::default() },
        TicketFilter { rule: Some(RULE.into()), severity: Some(Severity::Low), ..TicketFilter::default() },
    ];
    for filter in &filters {
        let expected: Vec<String> = tickets.iter().filter(|t| filter.matches(t)).map(|t| t.id.clone()).collect();
        for limit in [1, 2, 3, 50] {
            let got: Vec<Ticket> = all_tickets(p, TENANT, filter, limit).await;
            assert!(got.iter().all(|t| filter.matches(t)), "filter {filter:?}: a ticket that does not match");
            let got: Vec<String> = got.into_iter().map(|t| t.id).collect();
            assert_eq!(got, expected, "filter {filter:?}, limit {limit}");
        }
    }
    let closed = all_tickets(p, TENANT, &st(TicketStatus::Closed), 50).await;
    assert!(closed.iter().all(|t| t.version >= 2), "lists return the stored version: {closed:?}");
}

// ---------------------------------------------------------------------------------------------------------
// Aggregates

fn at_hm(h: i64, m: i64) -> Timestamp {
    t0() + chrono::Duration::hours(h) + minutes(m)
}

/// Totals add every delta; hourly buckets add per UTC hour and are selected by `from <= hour < to`.
pub async fn aggregates_totals_and_hourly_ranges(p: &Ports) {
    let a = r#"a{x="1"}"#;
    p.aggregates
        .apply(TENANT, &[count("a", &[("x", "1")], at_hm(0, 5), 2), count("b", &[], at_hm(0, 59), 1)])
        .await
        .expect("apply");
    p.aggregates.apply(TENANT, &[count("a", &[("x", "1")], at_hm(1, 0), 3)]).await.expect("apply");
    p.aggregates.apply(TENANT, &[count("a", &[("x", "1")], at_hm(3, 30), -1)]).await.expect("apply");
    p.aggregates.apply(TENANT, &[]).await.expect("empty apply");
    let mut totals = p.aggregates.totals(TENANT).await.expect("totals");
    totals.sort();
    assert_eq!(totals, vec![(a.to_string(), 4), ("b".to_string(), 1)]);

    let hourly = |from, to| async move {
        let mut h = p.aggregates.hourly(TENANT, from, to).await.expect("hourly");
        h.sort_by(|x, y| (x.hour, &x.name).cmp(&(y.hour, &y.name)));
        h.into_iter().map(|h| (h.hour, h.name, h.value)).collect::<Vec<_>>()
    };
    let all = hourly(at_hm(-1, 0), at_hm(24, 0)).await;
    assert_eq!(
        all,
        vec![
            (at_hm(0, 0), a.to_string(), 2),
            (at_hm(0, 0), "b".to_string(), 1),
            (at_hm(1, 0), a.to_string(), 3),
            (at_hm(3, 0), a.to_string(), -1),
        ]
    );
    assert_eq!(hourly(at_hm(0, 0), at_hm(1, 0)).await.len(), 2, "from is inclusive, to exclusive");
    assert_eq!(hourly(at_hm(1, 0), at_hm(3, 0)).await, vec![(at_hm(1, 0), a.to_string(), 3)]);
    assert_eq!(hourly(at_hm(0, 1), at_hm(3, 1)).await.len(), 2, "an hour starting before from is out");
    assert_eq!(hourly(at_hm(0, 1), at_hm(3, 0)).await, vec![(at_hm(1, 0), a.to_string(), 3)]);
    assert!(hourly(at_hm(4, 0), at_hm(4, 0)).await.is_empty());
    assert!(hourly(at_hm(5, 0), at_hm(4, 0)).await.is_empty());
}

/// Samples come back by kind and time range `[from, to)`; recording a (kind, id) again replaces it, also when
/// its time moved.
pub async fn aggregates_samples_range_and_replace(p: &Ports) {
    let ms = chrono::Duration::milliseconds;
    p.aggregates
        .apply(
            TENANT,
            &[
                sample("tta", "T1", at_hm(0, 0), 60.0),
                sample("tta", "T2", at_hm(0, 30), 120.0),
                sample("tta", "T3", at_hm(2, 0) + ms(500), 30.0),
                sample("ttc", "T1", at_hm(0, 10), 600.0),
            ],
        )
        .await
        .expect("apply");
    let ids = |v: Vec<Sample>| {
        let mut ids: Vec<(String, f64)> = v.into_iter().map(|s| (s.id, s.value)).collect();
        ids.sort_by(|a, b| a.0.cmp(&b.0));
        ids
    };
    let got = p.aggregates.samples(TENANT, "tta", at_hm(0, 0), at_hm(3, 0)).await.expect("samples");
    assert_eq!(got.len(), 3);
    let t1 = got.iter().find(|s| s.id == "T1").expect("T1");
    assert_eq!(t1.at, at_hm(0, 0));
    assert_eq!(t1.labels.get("severity").map(String::as_str), Some("high"), "labels round-trip");
    assert_eq!(
        ids(p.aggregates.samples(TENANT, "tta", at_hm(0, 0), at_hm(0, 30)).await.expect("samples")),
        vec![("T1".to_string(), 60.0)],
        "to is exclusive"
    );
    assert_eq!(
        ids(p.aggregates.samples(TENANT, "tta", at_hm(2, 0) + ms(500), at_hm(2, 0) + ms(501)).await.expect("samples")),
        vec![("T3".to_string(), 30.0)],
        "from is inclusive, to the millisecond"
    );
    assert!(p.aggregates.samples(TENANT, "tta", at_hm(2, 0), at_hm(2, 0) + ms(500)).await.expect("samples").is_empty());
    assert_eq!(ids(p.aggregates.samples(TENANT, "ttc", at_hm(0, 0), at_hm(3, 0)).await.expect("s")).len(), 1);

    // Same sample again: still one. Same (kind, id) at another time: replaced, wherever it was.
    p.aggregates.apply(TENANT, &[sample("tta", "T1", at_hm(0, 0), 60.0)]).await.expect("apply");
    p.aggregates.apply(TENANT, &[sample("tta", "T2", at_hm(5, 0), 999.0)]).await.expect("apply");
    assert_eq!(
        ids(p.aggregates.samples(TENANT, "tta", at_hm(0, 0), at_hm(24, 0)).await.expect("samples")),
        vec![("T1".to_string(), 60.0), ("T2".to_string(), 999.0), ("T3".to_string(), 30.0)]
    );
    assert!(p.aggregates.samples(TENANT, "tta", at_hm(0, 1), at_hm(1, 0)).await.expect("samples").is_empty());
    assert!(p.aggregates.samples(OTHER_TENANT, "tta", at_hm(0, 0), at_hm(24, 0)).await.expect("s").is_empty());
}

/// Increments of one counter from many tasks at once all count.
pub async fn aggregates_concurrent_increments_lose_nothing(p: &Ports) {
    let mut tasks = Vec::new();
    for t in 0..10 {
        let aggregates = p.aggregates.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let writes = [count("hot", &[], at_hm(0, i), 1), count(&format!("task-{t}"), &[], at_hm(0, i), 1)];
                aggregates.apply(TENANT, &writes).await.expect("apply");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(total(p, TENANT, "hot").await, 50);
    let hourly = p.aggregates.hourly(TENANT, at_hm(0, 0), at_hm(1, 0)).await.expect("hourly");
    assert!(hourly.contains(&HourlyCount { hour: at_hm(0, 0), name: "hot".into(), value: 50 }), "{hourly:?}");
    for t in 0..10 {
        assert_eq!(total(p, TENANT, &format!("task-{t}")).await, 5);
    }
}

/// Tenants, and the tenant-less `GLOBAL_TENANT`, never share a counter or sample.
pub async fn aggregates_tenants_and_global_are_separate(p: &Ports) {
    p.aggregates
        .apply(TENANT, &[count("c", &[], at_hm(0, 0), 1), sample("tta", "T1", at_hm(0, 0), 1.0)])
        .await
        .expect("a");
    p.aggregates.apply(OTHER_TENANT, &[count("c", &[], at_hm(0, 0), 10)]).await.expect("apply");
    p.aggregates.apply(GLOBAL_TENANT, &[count("c", &[], at_hm(0, 0), 100)]).await.expect("apply");
    assert_eq!(total(p, TENANT, "c").await, 1);
    assert_eq!(total(p, OTHER_TENANT, "c").await, 10);
    assert_eq!(total(p, GLOBAL_TENANT, "c").await, 100);
    let global = p.aggregates.hourly(GLOBAL_TENANT, at_hm(0, 0), at_hm(1, 0)).await.expect("hourly");
    assert_eq!(global, vec![HourlyCount { hour: at_hm(0, 0), name: "c".into(), value: 100 }]);
    assert!(p.aggregates.samples(GLOBAL_TENANT, "tta", at_hm(0, 0), at_hm(1, 0)).await.expect("s").is_empty());
    assert!(p.aggregates.totals("initech").await.expect("totals").is_empty());
}

/// A write set larger than one DynamoDB transaction (here 80 counters over 2 hours: 240 items) applies whole.
pub async fn aggregates_large_write_sets_apply(p: &Ports) {
    let writes: Vec<AggregateWrite> =
        (0..160).map(|i| count(&format!("m{:03}", i % 80), &[], at_hm(i / 80, 0), 1)).collect();
    p.aggregates.apply(TENANT, &writes).await.expect("apply");
    let totals = p.aggregates.totals(TENANT).await.expect("totals");
    assert_eq!(totals.len(), 80);
    assert!(totals.iter().all(|(_, v)| *v == 2), "{totals:?}");
    assert_eq!(p.aggregates.hourly(TENANT, at_hm(0, 0), at_hm(2, 0)).await.expect("hourly").len(), 160);

    let v1 = open_ticket(p, TENANT, "det-1", 0).await;
    let big: Vec<AggregateWrite> = (0..120).map(|i| count(&format!("u{i:03}"), &[], at_hm(0, 0), 1)).collect();
    p.alerts.update_ticket(&next(&v1, TicketStatus::Closed, None), 1, &big).await.expect("update with 240 items");
    assert_eq!(total(p, TENANT, "u119").await, 1);
}

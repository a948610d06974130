//! Embedded-only tests (durability across reopen, time driven by a `ManualClock`, behaviour the port
//! contract leaves open), plus the shared contract suite run against a fresh database per check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTableMetadata};

use super::*;
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::model::Event;
use crate::ports::{AlertCandidate, QueueDepth, RecordOutcome, WindowEntry, WindowUpdate, MAX_QUEUE_MESSAGE_BYTES};

#[cfg(feature = "contract")]
mod contract {
    use std::sync::Arc;

    use crate::adapters::embedded::EmbeddedBackend;
    use crate::clock::SystemClock;
    use crate::contract::Fixture;

    crate::contract_tests!(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
        Fixture { ports: backend.ports(), guard: Box::new(dir) }
    });
}

const HIDDEN: Duration = Duration::from_secs(60);

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

fn manual() -> (tempfile::TempDir, ManualClock, EmbeddedBackend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::new(start());
    let backend = EmbeddedBackend::open(dir.path(), Arc::new(clock.clone())).expect("open");
    (dir, clock, backend)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn event(tenant: &str, id: &str) -> Event {
    Event { id: id.into(), tenant: tenant.into(), timestamp: start(), received_at: start(), ..Event::default() }
}

fn entry(at_ms: i64, id: &str) -> WindowEntry {
    WindowEntry { at_ms, event_id: id.into(), tag: "failure".into() }
}

fn candidate(det: &str, last_seen: DateTime<Utc>, suppression: chrono::Duration) -> AlertCandidate {
    let d = crate::model::Detection {
        id: det.into(),
        tenant: "acme".into(),
        rule: "ssh-brute-force".into(),
        rule_name: "SSH brute force".into(),
        entity: "src_ip=203.0.113.7".into(),
        window_seconds: 300,
        count: 5,
        first_seen: last_seen,
        last_seen,
        evidence: vec![format!("{det}-ev")],
        score: 40,
        severity: crate::model::Severity::Medium,
        mitre: vec![],
        reasons: vec![],
        detected_at: last_seen,
    };
    let ms = last_seen.timestamp_millis();
    let (alert_id, ticket_id) = (format!("A{ms:013}{det}"), format!("T{ms:013}{det}"));
    let alert = crate::model::Alert {
        id: alert_id.clone(),
        tenant: d.tenant.clone(),
        rule: d.rule.clone(),
        rule_name: d.rule_name.clone(),
        entity: d.entity.clone(),
        severity: d.severity,
        score: d.score,
        mitre: vec![],
        reasons: vec![],
        count: 1,
        first_seen: last_seen,
        last_seen,
        suppress_until: last_seen + suppression,
        evidence: d.evidence.clone(),
        ticket_id: ticket_id.clone(),
        created_at: last_seen,
        updated_at: last_seen,
        runbook: None,
        falsepositives: vec![],
        references: vec![],
    };
    let ticket = crate::model::Ticket {
        id: ticket_id,
        tenant: d.tenant.clone(),
        alert_id,
        rule: d.rule.clone(),
        title: "SSH brute force".into(),
        entity: d.entity.clone(),
        severity: d.severity,
        status: crate::model::TicketStatus::New,
        escalated: false,
        assignee: None,
        disposition: None,
        source_time: last_seen,
        created_at: last_seen,
        acknowledged_at: None,
        responded_at: None,
        closed_at: None,
        acknowledge_by: last_seen,
        close_by: last_seen,
        version: 1,
        history: vec![],
    };
    AlertCandidate { detection: d, alert, ticket, on_open: Vec::new(), on_detection: Vec::new() }
}

#[tokio::test]
async fn reopen_keeps_queued_messages_events_and_windows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let expires = Utc::now() + chrono::Duration::days(1);
    {
        let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
        let p = backend.ports();
        p.events_queue.send(&strings(&["m1", "m2"])).await.expect("send");
        p.detections_queue.send(&strings(&["d1"])).await.expect("send");
        // A non-durable window merge, then a durable commit persists it.
        p.windows
            .merge(&[WindowUpdate { key: "acme#r#e".into(), entries: vec![entry(1, "ev1")] }], expires)
            .await
            .expect("merge");
        assert_eq!(p.events.put_new(&[event("acme", "ev1")], expires).await.expect("put_new"), vec![true]);
        let m = p.events_receiver.receive(1, HIDDEN, Duration::ZERO).await.expect("receive");
        assert_eq!(m.len(), 1);
        assert!(!dir.path().join(DATABASE_FILE).metadata().expect("file").permissions().readonly());
    }
    let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("reopen");
    let p = backend.ports();
    // The message in flight when the database closed is visible again (recovered on open).
    assert_eq!(p.events_receiver.depth().await.expect("depth"), QueueDepth { visible: 2, in_flight: 0 });
    let got = p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    let mut bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, vec!["m1", "m2"]);
    let got = p.detections_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(p.events.get("acme", "ev1").await.expect("get"), Some(event("acme", "ev1")));
    assert_eq!(p.events.put_new(&[event("acme", "ev1")], expires).await.expect("put_new"), vec![false]);
    let w = p
        .windows
        .merge(&[WindowUpdate { key: "acme#r#e".into(), entries: vec![entry(2, "ev2")] }], expires)
        .await
        .expect("merge");
    assert_eq!(w[0].len(), 2);
}

#[tokio::test]
async fn messages_come_in_send_order() {
    let (_dir, _clock, backend) = manual();
    let p = backend.ports();
    let sent: Vec<String> = (0..30).map(|i| format!("m{i:02}")).collect();
    p.events_queue.send(&sent[..12]).await.expect("send");
    p.events_queue.send(&sent[12..]).await.expect("send");
    let mut got = Vec::new();
    for _ in 0..4 {
        got.extend(
            p.events_receiver.receive(8, HIDDEN, Duration::ZERO).await.expect("receive").into_iter().map(|m| m.body),
        );
    }
    assert_eq!(got, sent);
}

#[tokio::test]
async fn visibility_and_release_follow_the_clock() {
    let (_dir, clock, backend) = manual();
    let p = backend.ports();
    p.events_queue.send(&strings(&["m"])).await.expect("send");
    let first = p.events_receiver.receive(10, Duration::from_secs(30), Duration::ZERO).await.expect("receive");
    assert_eq!(first.len(), 1);
    clock.advance(chrono::Duration::seconds(29));
    assert!(p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive").is_empty());
    assert_eq!(p.events_receiver.depth().await.expect("depth"), QueueDepth { visible: 0, in_flight: 1 });
    clock.advance(chrono::Duration::seconds(1));
    let second = p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].message_id, first[0].message_id);

    p.events_receiver.release(&second[0].receipt, Duration::from_secs(10)).await.expect("release");
    clock.advance(chrono::Duration::seconds(9));
    assert!(p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive").is_empty());
    clock.advance(chrono::Duration::seconds(1));
    let third = p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].receive_count, 3);
    // The receipt stays valid after the timeout, until the next receive.
    clock.advance(chrono::Duration::seconds(120));
    p.events_receiver.delete(std::slice::from_ref(&third[0].receipt)).await.expect("delete");
    assert_eq!(p.events_receiver.depth().await.expect("depth"), QueueDepth::default());
}

#[tokio::test]
async fn stale_or_garbage_receipts_do_not_delete_or_release() {
    let (_dir, _clock, backend) = manual();
    let p = backend.ports();
    p.events_queue.send(&strings(&["m"])).await.expect("send");
    let first = p.events_receiver.receive(1, Duration::ZERO, Duration::ZERO).await.expect("receive");
    let second = p.events_receiver.receive(1, HIDDEN, Duration::ZERO).await.expect("receive");
    assert_eq!(second[0].receive_count, 2);
    let stale = first[0].receipt.clone();
    p.events_receiver.delete(&[stale.clone(), "garbage".into(), "1:0".into(), "99:ff".into()]).await.expect("delete");
    p.events_receiver.release(&stale, Duration::ZERO).await.expect("release");
    p.events_receiver.release("garbage", Duration::ZERO).await.expect("release");
    assert_eq!(p.events_receiver.depth().await.expect("depth"), QueueDepth { visible: 0, in_flight: 1 });
    p.events_receiver.delete(std::slice::from_ref(&second[0].receipt)).await.expect("delete");
    assert_eq!(p.events_receiver.depth().await.expect("depth"), QueueDepth::default());
}

#[tokio::test]
async fn dead_lettering_keeps_id_body_and_count() {
    let (_dir, _clock, backend) = manual();
    let p = backend.ports();
    p.detections_queue.send(&strings(&["poison"])).await.expect("send");
    let mut id = None;
    for n in 1..=crate::schema::DETECTIONS_QUEUE.max_receive_count {
        let got = p.detections_receiver.receive(1, Duration::ZERO, Duration::ZERO).await.expect("receive");
        assert_eq!(got[0].receive_count, n);
        id = Some(got[0].message_id.clone());
    }
    assert!(p.detections_receiver.receive(1, Duration::ZERO, Duration::ZERO).await.expect("receive").is_empty());
    assert_eq!(p.detections_receiver.depth().await.expect("depth"), QueueDepth::default());
    assert_eq!(p.detections_dead_letters.depth().await.expect("depth"), QueueDepth { visible: 1, in_flight: 0 });
    // The dead-letter queue has no redrive of its own: it delivers however often it is received.
    for _ in 0..8 {
        let dead = p.detections_dead_letters.receive(1, Duration::ZERO, Duration::ZERO).await.expect("receive");
        assert_eq!(dead[0].body, "poison");
        assert_eq!(Some(dead[0].message_id.clone()), id);
    }
    assert!(p.events_dead_letters.receive(1, HIDDEN, Duration::ZERO).await.expect("receive").is_empty());
}

#[tokio::test]
async fn long_poll_wakes_on_send_and_times_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
    let p = backend.ports();

    let t = Instant::now();
    assert!(p.events_receiver.receive(10, HIDDEN, Duration::from_millis(150)).await.expect("receive").is_empty());
    assert!(t.elapsed() >= Duration::from_millis(150));

    let rx = p.events_receiver.clone();
    let t = Instant::now();
    let waiter = tokio::spawn(async move { rx.receive(10, HIDDEN, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    p.events_queue.send(&strings(&["wake up"])).await.expect("send");
    let got = waiter.await.expect("join").expect("receive");
    assert_eq!(got.len(), 1);
    assert!(t.elapsed() < Duration::from_secs(10), "long poll did not wake on send");
}

#[tokio::test]
async fn long_poll_wakes_when_visibility_ends_or_on_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
    let p = backend.ports();
    p.events_queue.send(&strings(&["m"])).await.expect("send");
    p.events_receiver.receive(1, Duration::from_millis(200), Duration::ZERO).await.expect("receive");
    let t = Instant::now();
    let got = p.events_receiver.receive(1, HIDDEN, Duration::from_secs(20)).await.expect("receive");
    assert_eq!(got.len(), 1);
    assert!(t.elapsed() < Duration::from_secs(10), "long poll did not wake when the visibility ended");

    let rx = p.events_receiver.clone();
    let t = Instant::now();
    let waiter = tokio::spawn(async move { rx.receive(1, HIDDEN, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    p.events_receiver.release(&got[0].receipt, Duration::ZERO).await.expect("release");
    assert_eq!(waiter.await.expect("join").expect("receive").len(), 1);
    assert!(t.elapsed() < Duration::from_secs(10), "long poll did not wake on release");
}

#[tokio::test]
async fn retention_drops_old_messages() {
    let (_dir, clock, backend) = manual();
    let p = backend.ports();
    p.events_queue.send(&strings(&["old"])).await.expect("send");
    clock.advance(chrono::Duration::seconds(i64::from(crate::schema::EVENTS_QUEUE.retention_seconds)));
    assert!(p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive").is_empty());
    assert_eq!(p.events_receiver.depth().await.expect("depth"), QueueDepth::default());
}

#[tokio::test]
async fn send_rejects_oversized_bodies() {
    let (_dir, _clock, backend) = manual();
    let p = backend.ports();
    let too_big = "x".repeat(MAX_QUEUE_MESSAGE_BYTES + 1);
    assert!(matches!(p.events_queue.send(&[too_big]).await, Err(StoreError::Permanent(_))));
    let just_fits = "x".repeat(MAX_QUEUE_MESSAGE_BYTES);
    p.events_queue.send(&[just_fits]).await.expect("send");
}

#[tokio::test]
async fn expired_events_are_gone_and_purged() {
    let (_dir, clock, backend) = manual();
    let p = backend.ports();
    let expires = clock.now() + chrono::Duration::hours(1);
    let old: Vec<Event> = (0..10).map(|i| event("acme", &format!("ev{i}"))).collect();
    assert_eq!(p.events.put_new(&old, expires).await.expect("put_new"), vec![true; 10]);
    clock.advance(chrono::Duration::minutes(59));
    assert!(p.events.get("acme", "ev0").await.expect("get").is_some());
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(p.events.get("acme", "ev0").await.expect("get"), None);
    // An expired event counts as absent; storing anything purges the expired ones.
    let again = clock.now() + chrono::Duration::hours(1);
    assert_eq!(p.events.put_new(&old[..1], again).await.expect("put_new"), vec![true]);
    let tx = backend.shared.db.begin_read().expect("read");
    assert_eq!(tx.open_table(EVENTS).expect("events").len().expect("len"), 1);
    assert_eq!(tx.open_table(EVENTS_TTL).expect("ttl").len().expect("len"), 1);
    drop(tx);
    assert!(p.events.get("acme", "ev0").await.expect("get").is_some());
}

#[tokio::test]
async fn expired_windows_start_empty() {
    let (_dir, clock, backend) = manual();
    let p = backend.ports();
    let key = "acme#r#e";
    let expires = clock.now() + chrono::Duration::minutes(10);
    p.windows.merge(&[WindowUpdate { key: key.into(), entries: vec![entry(1, "a")] }], expires).await.expect("merge");
    let later = clock.now() + chrono::Duration::minutes(20);
    let got =
        p.windows.merge(&[WindowUpdate { key: key.into(), entries: vec![entry(2, "b")] }], later).await.expect("merge");
    assert_eq!(got[0].len(), 2);
    clock.advance(chrono::Duration::minutes(30));
    let latest = clock.now() + chrono::Duration::minutes(10);
    let got = p
        .windows
        .merge(&[WindowUpdate { key: key.into(), entries: vec![entry(3, "c")] }], latest)
        .await
        .expect("merge");
    assert_eq!(got[0], vec![entry(3, "c")]);
    let tx = backend.shared.db.begin_read().expect("read");
    assert_eq!(tx.open_table(WINDOWS_TTL).expect("ttl").len().expect("len"), 1);
}

#[tokio::test]
async fn a_retried_opener_is_already_recorded_even_without_suppression() {
    let (_dir, _clock, backend) = manual();
    let p = backend.ports();
    let c = candidate("det-1", start(), chrono::Duration::zero());
    let opened = p.alerts.record(&c).await.expect("record");
    assert_eq!(opened, RecordOutcome::Opened { alert_id: c.alert.id.clone(), ticket_id: c.ticket.id.clone() });
    assert_eq!(
        p.alerts.record(&c).await.expect("record"),
        RecordOutcome::AlreadyRecorded { alert_id: c.alert.id.clone() }
    );
    let c2 = candidate("det-2", start(), chrono::Duration::zero());
    assert!(matches!(p.alerts.record(&c2).await.expect("record"), RecordOutcome::Opened { .. }));
}

#[tokio::test]
async fn pages_beyond_the_maximum_are_clamped() {
    let (_dir, _clock, backend) = manual();
    let p = backend.ports();
    for i in 0..3 {
        let c = candidate(&format!("det-{i}"), start() + chrono::Duration::hours(i), chrono::Duration::minutes(30));
        p.alerts.record(&c).await.expect("record");
    }
    let page =
        p.alerts.list_alerts("acme", &crate::ports::PageRequest { limit: 10_000, cursor: None }).await.expect("list");
    assert_eq!(page.items.len(), 3);
    let page = p
        .alerts
        .list_alerts("acme", &crate::ports::PageRequest { limit: 2, cursor: Some(String::new()) })
        .await
        .expect("list");
    assert_eq!(page.items.len(), 2, "an empty cursor starts from the top");
    assert_eq!(page.next.as_deref(), Some(page.items[1].id.as_str()));
}

#[tokio::test]
async fn corrupt_records_are_permanent_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
        let tx = backend.shared.db.begin_write().expect("write");
        {
            let mut events = tx.open_table(EVENTS).expect("events");
            events.insert(("acme", "short"), [1u8, 2].as_slice()).expect("insert");
            let bad_json = with_expiry(i64::MAX, b"{not json");
            events.insert(("acme", "bad"), bad_json.as_slice()).expect("insert");
            let mut alerts = tx.open_table(ALERTS).expect("alerts");
            alerts.insert(("acme", "A1"), b"[]".as_slice()).expect("insert");
        }
        tx.commit().expect("commit");
    }
    let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("reopen");
    let p = backend.ports();
    assert!(matches!(p.events.get("acme", "short").await, Err(StoreError::Permanent(_))));
    assert!(matches!(p.events.get("acme", "bad").await, Err(StoreError::Permanent(_))));
    assert!(matches!(p.alerts.get_alert("acme", "A1").await, Err(StoreError::Permanent(_))));
    assert!(matches!(
        p.alerts.list_alerts("acme", &crate::ports::PageRequest::default()).await,
        Err(StoreError::Permanent(_))
    ));
}

#[test]
fn open_reports_an_unusable_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let err = EmbeddedBackend::open(&file, Arc::new(SystemClock)).expect_err("open a file as a directory");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[tokio::test]
async fn messages_in_flight_when_the_process_died_are_visible_again_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("open");
        let p = backend.ports();
        p.events_queue.send(&strings(&["in flight"])).await.expect("send");
        let got = p.events_receiver.receive(10, Duration::from_secs(3600), Duration::ZERO).await.expect("receive");
        assert_eq!(got.len(), 1);
        // Dropped without delete: as if the host were killed mid-batch.
    }
    let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("reopen");
    let p = backend.ports();
    let got = p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    assert_eq!(got.iter().map(|m| (m.body.as_str(), m.receive_count)).collect::<Vec<_>>(), vec![("in flight", 2)]);
}

const KILL9_DIR: &str = "VIGIL_EMBEDDED_KILL9_DIR";

/// The child half of `acknowledged_writes_survive_kill_9`: writes, reports, then waits to be killed.
#[tokio::test]
#[ignore = "run by acknowledged_writes_survive_kill_9 in a child process"]
async fn kill9_child_writer() {
    let Some(dir) = std::env::var_os(KILL9_DIR) else { return };
    let backend = EmbeddedBackend::open(std::path::Path::new(&dir), Arc::new(SystemClock)).expect("open");
    let p = backend.ports();
    let expires = Utc::now() + chrono::Duration::days(1);
    p.events_queue.send(&strings(&["acknowledged"])).await.expect("send");
    p.windows
        .merge(&[WindowUpdate { key: "acme#r#e".into(), entries: vec![entry(1, "ev1")] }], expires)
        .await
        .expect("merge");
    p.events.put_new(&[event("acme", "ev1")], expires).await.expect("put_new");
    println!("\nVIGIL-KILL9-READY");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "adapters::embedded::tests::kill9_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL9_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let ready = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).any(|l| l.trim() == "VIGIL-KILL9-READY")
    });
    let ready = tokio::time::timeout(Duration::from_secs(120), ready).await;
    child.kill().expect("SIGKILL"); // SIGKILL on Unix: no destructor, no clean close.
    child.wait().expect("wait");
    assert!(matches!(ready, Ok(Ok(true))), "child never reported READY");

    let backend = EmbeddedBackend::open(dir.path(), Arc::new(SystemClock)).expect("reopen after kill -9");
    let p = backend.ports();
    let got = p.events_receiver.receive(10, HIDDEN, Duration::ZERO).await.expect("receive");
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), vec!["acknowledged"]);
    assert_eq!(p.events.get("acme", "ev1").await.expect("get"), Some(event("acme", "ev1")));
    // The non-durable merge was persisted by the durable put_new after it.
    let expires = Utc::now() + chrono::Duration::days(1);
    let w = p.windows.merge(&[WindowUpdate { key: "acme#r#e".into(), entries: vec![] }], expires).await.expect("merge");
    assert_eq!(w[0], vec![entry(1, "ev1")]);
}

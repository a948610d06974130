//! The AWS backend against moto (a real DynamoDB and SQS API over HTTP): bootstrap, queue packing and
//! redrive, conditional event writes, window set merges, alert open / roll-up / idempotency, and how many
//! requests each costs.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::{BillingMode, KeyType, ProjectionType, TimeToLiveStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, TimeZone, Utc};
use vigil::adapters::aws::{bootstrap, AwsBackend};
use vigil::aggregates::count;
use vigil::model::{Alert, Detection, Event, Severity, Ticket, TicketStatus};
use vigil::ports::{
    AggregateWrite, AlertCandidate, PageRequest, RecordOutcome, Sample, TicketFilter, WindowEntry, WindowUpdate,
};
use vigil::schema::{ALERTS_TABLE, EVENTS_QUEUE, EVENTS_TABLE, STATE_TABLE, TICKETS_TABLE};
use vigil_tests::moto::{config_with_suffix, fresh_backend, sdk_config, unique_suffix};

/// An index as compared: name, key schema, projection.
type IndexShape = (String, Vec<(String, KeyType)>, Option<ProjectionType>);

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).single().expect("valid time")
}

fn event(tenant: &str, id: &str) -> Event {
    Event {
        id: id.into(),
        tenant: tenant.into(),
        timestamp: t(0),
        received_at: t(1),
        source: "json".into(),
        user: Some("alice".into()),
        message: Some(format!("event {id}")),
        ..Event::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_creates_the_schema_once() {
    let cfg = config_with_suffix(&unique_suffix());
    let sdk = sdk_config().await;
    let created = bootstrap(&sdk, &cfg).await.expect("bootstrap");
    assert_eq!(created.len(), 4 + 4, "4 tables, 2 queues and 2 dead-letter queues: {created:?}");
    assert!(bootstrap(&sdk, &cfg).await.expect("bootstrap again").is_empty(), "idempotent");

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    for spec in [EVENTS_TABLE, STATE_TABLE, ALERTS_TABLE, TICKETS_TABLE] {
        let name = cfg.table(&spec);
        let table = ddb.describe_table().table_name(name).send().await.expect("describe");
        let table = table.table().expect("table description");
        let keys: Vec<(String, KeyType)> =
            table.key_schema().iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect();
        let mut want = vec![(spec.key.hash.to_string(), KeyType::Hash)];
        if let Some(range) = spec.key.range {
            want.push((range.to_string(), KeyType::Range));
        }
        assert_eq!(keys, want, "{name} keys");
        let billing = table.billing_mode_summary().and_then(|b| b.billing_mode()).cloned();
        assert_eq!(billing, Some(BillingMode::PayPerRequest), "{name} billing");
        let ttl = ddb.describe_time_to_live().table_name(name).send().await.expect("describe ttl");
        let ttl = ttl.time_to_live_description().expect("ttl description");
        match spec.ttl {
            Some(attr) => {
                assert_eq!(ttl.attribute_name(), Some(attr), "{name} TTL attribute");
                assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled), "{name} TTL");
            }
            None => assert_ne!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled), "{name} has no TTL"),
        }
        let mut indexes: Vec<IndexShape> = table
            .global_secondary_indexes()
            .iter()
            .map(|g| {
                let keys =
                    g.key_schema().iter().map(|k| (k.attribute_name().to_string(), k.key_type().clone())).collect();
                let projection = g.projection().and_then(|p| p.projection_type()).cloned();
                (g.index_name().unwrap_or_default().to_string(), keys, projection)
            })
            .collect();
        indexes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<IndexShape> = spec
            .indexes
            .iter()
            .map(|ix| {
                let mut keys = vec![(ix.key.hash.to_string(), KeyType::Hash)];
                keys.extend(ix.key.range.map(|r| (r.to_string(), KeyType::Range)));
                (ix.name.to_string(), keys, Some(ProjectionType::All))
            })
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(indexes, want, "{name} global secondary indexes");
    }

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = cfg.queue(&EVENTS_QUEUE);
    let url = sqs.get_queue_url().queue_name(name).send().await.expect("queue url");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url.queue_url().expect("url"))
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes");
    let attrs = attrs.attributes().expect("attributes");
    assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], EVENTS_QUEUE.visibility_timeout_seconds.to_string());
    assert_eq!(attrs[&QueueAttributeName::MessageRetentionPeriod], EVENTS_QUEUE.retention_seconds.to_string());
    let redrive: serde_json::Value =
        serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).expect("redrive policy is JSON");
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), EVENTS_QUEUE.max_receive_count.to_string());
    let target = redrive["deadLetterTargetArn"].as_str().expect("dead-letter ARN");
    assert!(target.ends_with(&format!(":{name}-dlq")), "{target}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_pack_into_few_batches_and_receive_round_trips() {
    let (backend, _) = fresh_backend().await;
    let ports = backend.ports();
    let big = "B".repeat(250 * 1024);
    let mut bodies = vec![big.clone()];
    bodies.extend((0..25).map(|i| format!("{{\"n\":{i}}}")));

    let before = backend.request_counts();
    ports.events_queue.send(&bodies).await.expect("send");
    let sent = backend.request_counts().sqs_send_requests - before.sqs_send_requests;
    assert!(sent <= 3, "26 messages, one of 250 KiB, took {sent} SendMessageBatch requests");

    let depth = ports.events_receiver.depth().await.expect("depth");
    assert_eq!(depth.visible, 26);

    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() == bodies.len() {
            break;
        }
        got.extend(
            ports
                .events_receiver
                .receive(10, Duration::from_secs(60), Duration::from_millis(200))
                .await
                .expect("receive"),
        );
    }
    assert_eq!(got.len(), bodies.len());
    assert!(got.iter().all(|m| m.receive_count == 1));
    let want: BTreeSet<&str> = bodies.iter().map(String::as_str).collect();
    let have: BTreeSet<&str> = got.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(have, want, "bodies survive intact");

    let depth = ports.events_receiver.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (0, 26));
    let receipts: Vec<String> = got.iter().map(|m| m.receipt.clone()).collect();
    ports.events_receiver.delete(&receipts).await.expect("delete");
    let depth = ports.events_receiver.depth().await.expect("depth");
    assert_eq!((depth.visible, depth.in_flight), (0, 0));

    let too_big = "x".repeat(256 * 1024 + 1);
    assert!(ports.events_queue.send(&[too_big]).await.is_err(), "an oversized body is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn released_messages_return_and_move_to_the_dead_letter_queue() {
    let (backend, _) = fresh_backend().await;
    let ports = backend.ports();
    ports.detections_queue.send(&["poison".to_string()]).await.expect("send");
    let max = vigil::schema::DETECTIONS_QUEUE.max_receive_count;
    for n in 1..=max {
        let got = ports
            .detections_receiver
            .receive(10, Duration::from_secs(60), Duration::from_secs(1))
            .await
            .expect("receive");
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
        ports.detections_receiver.release(&got[0].receipt, Duration::ZERO).await.expect("release");
    }
    let got = ports
        .detections_receiver
        .receive(10, Duration::from_secs(60), Duration::from_millis(500))
        .await
        .expect("receive");
    assert!(got.is_empty(), "moved to the dead-letter queue after {max} receives");
    let dead = ports
        .detections_dead_letters
        .receive(10, Duration::from_secs(60), Duration::from_secs(1))
        .await
        .expect("receive dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    ports.detections_dead_letters.delete(&[dead[0].receipt.clone()]).await.expect("delete dead letter");
    assert_eq!(ports.detections_dead_letters.depth().await.expect("depth").visible, 0);
    assert_eq!(ports.events_dead_letters.depth().await.expect("depth").visible, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_new_writes_only_new_events() {
    let (backend, _) = fresh_backend().await;
    let ports = backend.ports();
    let expires = t(30 * 24 * 3600);
    let first = vec![event("acme", "e1"), event("acme", "e2"), event("globex", "e1")];
    assert_eq!(ports.events.put_new(&first, expires).await.expect("put"), vec![true, true, true]);
    assert_eq!(ports.events.put_new(&first, expires).await.expect("put again"), vec![false, false, false]);

    let mixed =
        vec![event("acme", "e1"), event("acme", "e4"), event("acme", "e2"), event("acme", "e4"), event("acme", "e5")];
    let before = backend.request_counts();
    let new = ports.events.put_new(&mixed, expires).await.expect("mixed put");
    assert_eq!(new, vec![false, true, false, false, true]);
    let writes = backend.request_counts().dynamodb_write_requests - before.dynamodb_write_requests;
    assert!(writes <= 2, "a cancelled transaction is retried once without the existing events ({writes} requests)");

    let stored = ports.events.get("acme", "e4").await.expect("get").expect("stored");
    assert_eq!(stored, event("acme", "e4"));
    assert_eq!(ports.events.get("globex", "e2").await.expect("get"), None);

    // 250 events: three transactions of at most 100.
    let many: Vec<Event> = (0..250).map(|i| event("bulk", &format!("b{i:03}"))).collect();
    let before = backend.request_counts();
    let new = ports.events.put_new(&many, expires).await.expect("bulk put");
    assert!(new.iter().all(|n| *n));
    let writes = backend.request_counts().dynamodb_write_requests - before.dynamodb_write_requests;
    assert_eq!(writes, 3);
}

fn entry(at: i64, id: &str) -> WindowEntry {
    WindowEntry { at_ms: at, event_id: id.into(), tag: "failure".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_merges_are_set_unions() {
    let (backend, _) = fresh_backend().await;
    let ports = backend.ports();
    let expires = t(3600);
    let sorted = |mut v: Vec<WindowEntry>| {
        v.sort();
        v
    };
    let got = ports
        .windows
        .merge(
            &[
                WindowUpdate { key: "acme#r1#ip=1".into(), entries: vec![entry(1, "a"), entry(2, "b")] },
                WindowUpdate { key: "acme#r1#ip=2".into(), entries: vec![entry(3, "c")] },
            ],
            expires,
        )
        .await
        .expect("merge");
    assert_eq!(sorted(got[0].clone()), vec![entry(1, "a"), entry(2, "b")]);
    assert_eq!(got[1], vec![entry(3, "c")]);

    let got = ports
        .windows
        .merge(&[WindowUpdate { key: "acme#r1#ip=1".into(), entries: vec![entry(2, "b"), entry(4, "d")] }], expires)
        .await
        .expect("merge again");
    assert_eq!(sorted(got[0].clone()), vec![entry(1, "a"), entry(2, "b"), entry(4, "d")]);

    // Concurrent merges into one key lose nothing.
    let windows = ports.windows.clone();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let windows = windows.clone();
            tokio::spawn(async move {
                let update = WindowUpdate { key: "acme#r2#x".into(), entries: vec![entry(i, &format!("c{i}"))] };
                windows.merge(&[update], expires).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("concurrent merge");
    }
    let all = ports.windows.merge(&[WindowUpdate { key: "acme#r2#x".into(), entries: vec![] }], expires).await;
    assert_eq!(all.expect("read")[0].len(), 8);

    ports
        .windows
        .prune(&[
            WindowUpdate { key: "acme#r1#ip=1".into(), entries: vec![entry(1, "a")] },
            WindowUpdate { key: "acme#gone".into(), entries: vec![entry(1, "a")] },
        ])
        .await
        .expect("prune");
    let got = ports
        .windows
        .merge(&[WindowUpdate { key: "acme#r1#ip=1".into(), entries: vec![] }], expires)
        .await
        .expect("read");
    assert_eq!(sorted(got[0].clone()), vec![entry(2, "b"), entry(4, "d")]);

    // Duplicate keys in one call are merged once and all see the union.
    let got = ports
        .windows
        .merge(
            &[
                WindowUpdate { key: "acme#r3#y".into(), entries: vec![entry(1, "p")] },
                WindowUpdate { key: "acme#r3#y".into(), entries: vec![entry(2, "q")] },
            ],
            expires,
        )
        .await
        .expect("merge duplicates");
    assert_eq!(sorted(got[0].clone()), vec![entry(1, "p"), entry(2, "q")]);
    assert_eq!(got[0].len(), got[1].len());
}

fn candidate(tenant: &str, detection_id: &str, alert_id: &str, ticket_id: &str, last_seen: i64) -> AlertCandidate {
    let first = t(last_seen - 60);
    let last = t(last_seen);
    let now = t(last_seen + 5);
    let detection = Detection {
        id: detection_id.into(),
        tenant: tenant.into(),
        rule: "ssh-brute-force".into(),
        rule_name: "SSH brute force".into(),
        entity: "src_ip=203.0.113.7".into(),
        window_seconds: 60,
        count: 20,
        first_seen: first,
        last_seen: last,
        evidence: vec![format!("{detection_id}-ev1"), format!("{detection_id}-ev2")],
        score: 70,
        severity: Severity::High,
        mitre: vec!["T1110".into()],
        reasons: vec!["20 failures".into()],
        detected_at: now,
    };
    let alert = Alert {
        id: alert_id.into(),
        tenant: tenant.into(),
        rule: detection.rule.clone(),
        rule_name: detection.rule_name.clone(),
        entity: detection.entity.clone(),
        severity: detection.severity,
        score: detection.score,
        mitre: detection.mitre.clone(),
        reasons: detection.reasons.clone(),
        count: 1,
        first_seen: first,
        last_seen: last,
        suppress_until: t(last_seen + 3600),
        evidence: detection.evidence.clone(),
        ticket_id: ticket_id.into(),
        created_at: now,
        updated_at: now,
        runbook: None,
        falsepositives: vec![],
        references: vec![],
    };
    let ticket = Ticket {
        id: ticket_id.into(),
        tenant: tenant.into(),
        alert_id: alert_id.into(),
        rule: detection.rule.clone(),
        title: "SSH brute force from 203.0.113.7".into(),
        entity: detection.entity.clone(),
        severity: detection.severity,
        status: TicketStatus::New,
        escalated: false,
        assignee: None,
        disposition: None,
        source_time: first,
        created_at: now,
        acknowledged_at: None,
        responded_at: None,
        closed_at: None,
        acknowledge_by: t(last_seen + 3600),
        close_by: t(last_seen + 86400),
        version: 0,
        history: vec![],
    };
    AlertCandidate { detection, alert, ticket, on_open: Vec::new(), on_detection: Vec::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_open_roll_up_and_are_idempotent() {
    let (backend, _) = fresh_backend().await;
    let alerts = backend.ports().alerts;

    let c1 = candidate("acme", "d1", "a001", "t001", 0);
    let before = backend.request_counts();
    let opened = alerts.record(&c1).await.expect("record");
    assert_eq!(opened, RecordOutcome::Opened { alert_id: "a001".into(), ticket_id: "t001".into() });
    let counts = backend.request_counts();
    assert_eq!(counts.dynamodb_write_requests - before.dynamodb_write_requests, 1, "one transaction opens");
    assert_eq!(alerts.record(&c1).await.expect("retry"), RecordOutcome::AlreadyRecorded { alert_id: "a001".into() });

    // A later detection within the suppression window rolls up (its own candidate ids are not used).
    let c2 = candidate("acme", "d2", "a002", "t002", 600);
    assert_eq!(alerts.record(&c2).await.expect("roll up"), RecordOutcome::RolledUp { alert_id: "a001".into() });
    assert_eq!(alerts.record(&c2).await.expect("retry"), RecordOutcome::AlreadyRecorded { alert_id: "a001".into() });
    let alert = alerts.get_alert("acme", "a001").await.expect("get").expect("alert");
    assert_eq!(alert.count, 2);
    assert_eq!(alert.last_seen, t(600));
    assert_eq!(alert.evidence.len(), 4);
    assert_eq!(alerts.get_alert("acme", "a002").await.expect("get"), None);
    assert_eq!(alerts.get_ticket("acme", "t002").await.expect("get"), None);

    // After suppress_until a new alert opens.
    let c3 = candidate("acme", "d3", "a003", "t003", 3600);
    assert_eq!(
        alerts.record(&c3).await.expect("reopen"),
        RecordOutcome::Opened { alert_id: "a003".into(), ticket_id: "t003".into() }
    );

    // Concurrent detections for one entity: one alert, every detection counted once.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let alerts = alerts.clone();
            let c = candidate("acme", &format!("cd{i}"), &format!("b{i:03}"), &format!("u{i:03}"), 100_000 + i);
            tokio::spawn(async move { alerts.record(&c).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task").expect("concurrent record"));
    }
    let opened: Vec<_> = outcomes.iter().filter(|o| matches!(o, RecordOutcome::Opened { .. })).collect();
    assert_eq!(opened.len(), 1, "{outcomes:?}");
    let RecordOutcome::Opened { alert_id, .. } = opened[0] else { unreachable!() };
    let alert = alerts.get_alert("acme", alert_id).await.expect("get").expect("alert");
    assert_eq!(alert.count, 8);

    // Lists: newest first, paged, filtered, per tenant.
    let page = alerts.list_alerts("acme", &PageRequest { limit: 2, cursor: None }).await.expect("list");
    assert_eq!(page.items.len(), 2);
    let mut ids: Vec<String> = page.items.iter().map(|a| a.id.clone()).collect();
    let mut cursor = page.next;
    while let Some(c) = cursor {
        let page = alerts.list_alerts("acme", &PageRequest { limit: 2, cursor: Some(c) }).await.expect("page");
        ids.extend(page.items.iter().map(|a| a.id.clone()));
        cursor = page.next;
    }
    let mut want = ids.clone();
    want.sort();
    want.reverse();
    assert_eq!(ids, want, "newest first");
    assert_eq!(ids.len(), 3);
    assert!(alerts
        .list_alerts("globex", &PageRequest { limit: 10, cursor: None })
        .await
        .expect("list")
        .items
        .is_empty());

    let all = alerts.list_tickets("acme", &TicketFilter::default(), &PageRequest { limit: 10, cursor: None }).await;
    let all = all.expect("tickets");
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.next, None);
    let filter = TicketFilter { status: Some(TicketStatus::Closed), ..TicketFilter::default() };
    let none = alerts.list_tickets("acme", &filter, &PageRequest { limit: 1, cursor: None }).await.expect("tickets");
    assert!(none.items.is_empty() && none.next.is_none());
    let ticket = alerts.get_ticket("acme", "t001").await.expect("get").expect("ticket");
    assert_eq!(ticket.alert_id, "a001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_accepts_queue_urls_and_reports_missing_queues() {
    let (backend, mut cfg) = fresh_backend().await;
    let (events_url, detections_url) = backend.queue_urls();
    cfg.queues.insert(EVENTS_QUEUE.logical, events_url.to_string());
    cfg.queues.insert(vigil::schema::DETECTIONS_QUEUE.logical, detections_url.to_string());
    let sdk = sdk_config().await;
    let by_url = AwsBackend::connect(&sdk, &cfg).await.expect("connect by URL");
    assert_eq!(by_url.request_counts().sqs_requests, 0, "URLs need no look-up");
    by_url.ports().events_queue.send(&["hello".into()]).await.expect("send by URL");
    assert_eq!(backend.ports().events_receiver.depth().await.expect("depth").visible, 1);

    let missing = config_with_suffix(&unique_suffix());
    match AwsBackend::connect(&sdk, &missing).await {
        Err(e) => assert!(!e.is_retryable(), "a missing queue is permanent: {e}"),
        Ok(_) => panic!("connect to missing queues succeeded"),
    }
}

/// Filtered ticket lists read one index partition: a filter matching 2 of 130 tickets costs one `Query`
/// (reading the tenant's partition 100 items at a time would take two), for every filter field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_lists_query_the_index_of_the_filter() {
    let (backend, _) = fresh_backend().await;
    let alerts = backend.ports().alerts;
    let mut rare = Vec::new();
    for i in 0..130i64 {
        let mut c = candidate("acme", &format!("d{i:03}"), &format!("a{i:03}"), &format!("t{i:03}"), i * 7200);
        if i < 2 {
            c.ticket.severity = Severity::Critical;
            c.ticket.rule = "rare-rule".into();
            c.ticket.status = TicketStatus::InProgress;
            c.ticket.assignee = Some("carol".into());
            rare.push(c.ticket.id.clone());
        }
        alerts.record(&c).await.expect("record");
    }
    rare.reverse();
    let filters = [
        TicketFilter { status: Some(TicketStatus::InProgress), ..TicketFilter::default() },
        TicketFilter { assignee: Some("carol".into()), ..TicketFilter::default() },
        TicketFilter { rule: Some("rare-rule".into()), ..TicketFilter::default() },
        TicketFilter { severity: Some(Severity::Critical), ..TicketFilter::default() },
        TicketFilter {
            status: Some(TicketStatus::InProgress),
            severity: Some(Severity::Critical),
            ..TicketFilter::default()
        },
    ];
    for filter in filters {
        let before = backend.request_counts().dynamodb_read_requests;
        let page = alerts.list_tickets("acme", &filter, &PageRequest { limit: 50, cursor: None }).await.expect("list");
        let reads = backend.request_counts().dynamodb_read_requests - before;
        let ids: Vec<String> = page.items.iter().map(|t| t.id.clone()).collect();
        assert_eq!(ids, rare, "{filter:?}");
        assert_eq!(reads, 1, "{filter:?}: one Query of the index");
    }
    let before = backend.request_counts().dynamodb_read_requests;
    let all = alerts.list_tickets("acme", &TicketFilter::default(), &PageRequest { limit: 500, cursor: None }).await;
    assert_eq!(all.expect("list").items.len(), 130);
    assert_eq!(backend.request_counts().dynamodb_read_requests - before, 1);
}

/// Aggregate writes ride in the transactions they belong to: an open with its counters is still one
/// transaction, a roll-up with its counters one, a ticket update with its counters one; a sample costs one
/// read of its pointer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_writes_join_the_record_and_update_transactions() {
    let (backend, _) = fresh_backend().await;
    let ports = backend.ports();
    let mut c1 = candidate("acme", "d1", "a001", "t001", 0);
    c1.on_open = vec![count("opened", &[], t(0), 1)];
    c1.on_detection = vec![count("detections", &[], t(0), 1)];
    let before = backend.request_counts();
    assert!(matches!(ports.alerts.record(&c1).await.expect("record"), RecordOutcome::Opened { .. }));
    let after = backend.request_counts();
    assert_eq!(after.dynamodb_write_requests - before.dynamodb_write_requests, 1, "one transaction opens");
    assert_eq!(
        after.dynamodb_items_written - before.dynamodb_items_written,
        3 + 4,
        "head, alert, ticket, 2 x 2 counters"
    );

    let mut c2 = candidate("acme", "d2", "a002", "t002", 60);
    c2.on_open = c1.on_open.clone();
    c2.on_detection = c1.on_detection.clone();
    let before = backend.request_counts();
    assert!(matches!(ports.alerts.record(&c2).await.expect("record"), RecordOutcome::RolledUp { .. }));
    let writes = backend.request_counts().dynamodb_write_requests - before.dynamodb_write_requests;
    assert_eq!(writes, 2, "the failed open attempt, then one roll-up transaction");

    let mut ticket = ports.alerts.get_ticket("acme", "t001").await.expect("get").expect("ticket");
    ticket.status = TicketStatus::Acknowledged;
    ticket.version += 1;
    let tta = AggregateWrite::Sample(Sample {
        kind: "tta".into(),
        id: "t001".into(),
        at: t(120),
        value: 115.0,
        labels: Default::default(),
    });
    let before = backend.request_counts();
    ports.alerts.update_ticket(&ticket, 0, &[count("acks", &[], t(120), 1), tta]).await.expect("update");
    let after = backend.request_counts();
    assert_eq!(after.dynamodb_write_requests - before.dynamodb_write_requests, 1, "one transaction");
    assert_eq!(after.dynamodb_read_requests - before.dynamodb_read_requests, 0, "a new sample needs no read");

    // Recording the sample again at another time replaces it: the first attempt assumes it is new, is
    // cancelled by the pointer's condition, and the retry reads the pointer.
    ticket.status = TicketStatus::InProgress;
    ticket.version += 1;
    let moved = AggregateWrite::Sample(Sample {
        kind: "tta".into(),
        id: "t001".into(),
        at: t(180),
        value: 175.0,
        labels: Default::default(),
    });
    let before = backend.request_counts();
    ports.alerts.update_ticket(&ticket, 1, &[moved]).await.expect("update");
    let after = backend.request_counts();
    assert_eq!(after.dynamodb_write_requests - before.dynamodb_write_requests, 2, "cancelled, then done");
    assert_eq!(after.dynamodb_read_requests - before.dynamodb_read_requests, 1, "the sample pointer");
    let tta = ports.aggregates.samples("acme", "tta", t(0), t(3600)).await.expect("samples");
    assert_eq!(tta.len(), 1);
    assert_eq!(tta[0].value, 175.0);

    let totals = ports.aggregates.totals("acme").await.expect("totals");
    assert_eq!(totals, vec![("acks".to_string(), 1), ("detections".to_string(), 2), ("opened".to_string(), 1)]);
}

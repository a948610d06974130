//! Aggregates checks: totals, hourly ranges, samples, concurrency, tenants; and the aggregate writes that
//! ride along with alert records and ticket updates, applied exactly once.

use super::*;

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

//! Alert store checks: dedup into alerts, roll-up, tickets, paging, filters, optimistic concurrency.

use super::*;

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

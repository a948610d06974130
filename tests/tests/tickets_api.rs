//! The alerts and tickets API end to end through the local host: tickets opened by a real brute-force
//! scenario, walked through every transition with a manual clock; the role needed by every route; tenant
//! isolation on every route; and optimistic concurrency (concurrent acknowledges: exactly one wins) on both
//! backends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use vigil::auth::Role;
use vigil::clock::{Clock, ManualClock};
use vigil::config::Config;
use vigil::error::StoreResult;
use vigil::model::{Alert, Ticket};
use vigil::ports::{AggregateWrite, AlertCandidate, AlertStore, Page, PageRequest, Ports, RecordOutcome, TicketFilter};
use vigil_local::host::{Host, MappingSettings};
use vigil_tests::scenario::{self, brute_force_then_success, call, get, request, start};

const SECRET: &str = "tickets-api-test-secret-0123456789abcdef";

fn token_for(tenant: &str, role: Role, sub: &str) -> String {
    scenario::token(SECRET, tenant, role, sub)
}

fn token(tenant: &str, role: Role) -> String {
    token_for(tenant, role, role.as_str())
}

async fn post(host: &Host, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(host, request(Method::POST, path, Some(token), "application/json", body.to_string())).await
}

fn host_for(ports: Ports) -> (Arc<Host>, ManualClock) {
    scenario::host_at(ports, &Config::default(), SECRET, start())
}

/// Sends the scenario as tenant `acme`, runs the pipeline, and returns acme's tickets by rule:
/// (`ssh_brute_force` (high), `success_after_failures` (critical)).
async fn open_tickets(host: &Host) -> (Value, Value) {
    let sender = token("acme", Role::Sender);
    let req = request(Method::POST, "/v1/syslog", Some(&sender), "text/plain", brute_force_then_success());
    let (status, body) = call(host, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    host.drain(MappingSettings { wait: std::time::Duration::ZERO, ..MappingSettings::default() }).await.expect("drain");
    let (status, list) = get(host, "/v1/tickets", &token("acme", Role::Viewer)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let by_rule = |rule: &str| {
        items.iter().find(|t| t["rule"] == rule).cloned().unwrap_or_else(|| panic!("no {rule} ticket in {list}"))
    };
    let (brute, success) = (by_rule("ssh_brute_force"), by_rule("success_after_failures"));
    assert_eq!((brute["status"].as_str(), success["status"].as_str()), (Some("new"), Some("new")));
    assert_eq!((brute["version"].as_u64(), success["version"].as_u64()), (Some(1), Some(1)));
    (brute, success)
}

fn id_of(ticket: &Value) -> String {
    ticket["id"].as_str().expect("ticket id").to_string()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

fn last_entry(ticket: &Value) -> Value {
    ticket["history"].as_array().and_then(|h| h.last().cloned()).unwrap_or_else(|| panic!("no history: {ticket}"))
}

async fn walk_every_transition(ports: Ports) {
    let (host, clock) = host_for(ports);
    let (brute, success) = open_tickets(&host).await;
    let id = id_of(&brute);
    let path = |action: &str| format!("/v1/tickets/{id}/{action}");
    let alice = token_for("acme", Role::Analyst, "alice");
    let bob = token_for("acme", Role::Analyst, "bob");

    // Acknowledge after four minutes.
    clock.advance(Duration::minutes(4));
    let acked_at = clock.now();
    let (status, t) = post(&host, &path("acknowledge"), &alice, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!((t["status"].as_str(), t["version"].as_u64()), (Some("acknowledged"), Some(2)));
    assert_eq!(time(&t["acknowledged_at"]), acked_at);
    let h = last_entry(&t);
    assert_eq!(
        (h["actor"].as_str(), h["action"].as_str(), h["from"].as_str(), h["to"].as_str()),
        (Some("alice"), Some("acknowledge"), Some("new"), Some("acknowledged"))
    );
    assert_eq!(time(&h["at"]), acked_at);

    // Twice is illegal: 409 with the current state.
    let (status, e) = post(&host, &path("acknowledge"), &bob, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["detail"], json!({"status": "acknowledged", "escalated": false, "version": 2}));

    // Respond needs a note; with one it moves to in_progress.
    let (status, e) = post(&host, &path("respond"), &bob, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["detail"]["field"], "note");
    clock.advance(Duration::minutes(6));
    let responded_at = clock.now();
    let (status, t) = post(&host, &path("respond"), &bob, json!({"note": "blocked 203.0.113.7 at the edge"})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!((t["status"].as_str(), t["version"].as_u64()), (Some("in_progress"), Some(3)));
    assert_eq!(time(&t["responded_at"]), responded_at);
    assert_eq!(last_entry(&t)["note"], "blocked 203.0.113.7 at the edge");
    // A second response keeps the first response time.
    clock.advance(Duration::minutes(1));
    let (status, t) = post(&host, &path("respond"), &bob, json!({"note": "reset root's password"})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(time(&t["responded_at"]), responded_at);

    // Assign needs an assignee; the list filter finds the ticket by it.
    let (status, e) = post(&host, &path("assign"), &alice, json!({"note": "yours"})).await;
    assert_eq!((status, e["detail"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("assignee")), "{e}");
    let (status, t) = post(&host, &path("assign"), &alice, json!({"assignee": "bob", "note": "yours"})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!((t["assignee"].as_str(), t["status"].as_str()), (Some("bob"), Some("in_progress")));
    let (_, mine) = get(&host, "/v1/tickets?assignee=bob", &token("acme", Role::Viewer)).await;
    assert_eq!(
        mine["items"].as_array().map(|i| i.iter().map(id_of).collect::<Vec<_>>()),
        Some(vec![id.clone()]),
        "{mine}"
    );

    // Escalate once; twice is a 409 that says it is escalated.
    let (status, t) = post(&host, &path("escalate"), &bob, json!({"note": "root was compromised"})).await;
    assert_eq!((status, t["escalated"].as_bool()), (StatusCode::OK, Some(true)), "{t}");
    let version = t["version"].as_u64().expect("version");
    let (status, e) = post(&host, &path("escalate"), &bob, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["detail"], json!({"status": "in_progress", "escalated": true, "version": version}));

    // Bodies are checked: unknown fields, fields the action does not take, bad dispositions, non-strings, JSON.
    let (status, e) =
        post(&host, &path("close"), &bob, json!({"disposition": "true_positive", "priority": "p1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["detail"]["field"], "priority");
    assert!(e["error"].as_str().is_some_and(|m| m.contains("priority")), "{e}");
    let (status, e) = post(&host, &path("acknowledge"), &bob, json!({"disposition": "benign"})).await;
    assert_eq!((status, e["detail"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("disposition")), "{e}");
    let (status, e) = post(&host, &path("close"), &bob, json!({"disposition": "maybe"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["detail"]["allowed"], json!(["true_positive", "false_positive", "benign", "duplicate"]));
    for allowed in ["true_positive", "false_positive", "benign", "duplicate"] {
        assert!(e["error"].as_str().is_some_and(|m| m.contains(allowed)), "{e}");
    }
    let (status, e) = post(&host, &path("close"), &bob, json!({})).await;
    assert_eq!((status, e["detail"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("disposition")), "{e}");
    let (status, e) = post(&host, &path("close"), &bob, json!({"disposition": "benign", "note": 7})).await;
    assert_eq!((status, e["detail"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("note")), "{e}");
    let (status, e) =
        call(&host, request(Method::POST, &path("close"), Some(&bob), "application/json", "{\"disposition\":")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let (status, e) = post(&host, &path("close"), &bob, json!(["true_positive"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    // None of that changed the ticket.
    let (_, unchanged) = get(&host, &format!("/v1/tickets/{id}"), &bob).await;
    assert_eq!(unchanged["version"].as_u64(), Some(version));

    // Close after an hour.
    clock.set(start() + Duration::hours(1));
    let (status, t) =
        post(&host, &path("close"), &bob, json!({"disposition": "true_positive", "note": "contained"})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!((t["status"].as_str(), t["disposition"].as_str()), (Some("closed"), Some("true_positive")));
    assert_eq!(time(&t["closed_at"]), start() + Duration::hours(1));
    assert_eq!(time(&t["acknowledged_at"]), acked_at, "closing keeps the acknowledge time");
    assert_eq!(last_entry(&t)["note"], "closed as true_positive: contained");

    // Nothing but reopen on a closed ticket.
    for (action, body) in [
        ("acknowledge", json!({})),
        ("respond", json!({"note": "x"})),
        ("assign", json!({"assignee": "carol"})),
        ("escalate", json!({})),
        ("close", json!({"disposition": "benign"})),
    ] {
        let (status, e) = post(&host, &path(action), &bob, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {e}");
        assert_eq!(e["detail"]["status"], "closed", "{action}: {e}");
    }
    let (status, e) = post(&host, &path("reopen"), &alice, json!({})).await;
    assert_eq!((status, e["detail"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("note")), "{e}");
    clock.advance(Duration::minutes(30));
    let (status, t) = post(&host, &path("reopen"), &alice, json!({"note": "the same address is back"})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "in_progress");
    assert!(t.get("closed_at").is_none_or(Value::is_null) && t.get("disposition").is_none_or(Value::is_null), "{t}");
    assert_eq!(time(&t["acknowledged_at"]), acked_at);
    assert_eq!(time(&t["responded_at"]), responded_at);
    let (status, e) = post(&host, &path("reopen"), &alice, json!({"note": "again"})).await;
    assert_eq!((status, e["detail"]["status"].as_str()), (StatusCode::CONFLICT, Some("in_progress")), "{e}");

    // If-Match: a stale version is a 412 and changes nothing; the current one goes through.
    let version = t["version"].as_u64().expect("version");
    let close = json!({"disposition": "duplicate"}).to_string();
    let mut stale = request(Method::POST, &path("close"), Some(&bob), "application/json", close.clone());
    stale.headers_mut().insert("if-match", format!("\"{}\"", version - 1).parse().expect("header"));
    let (status, e) = call(&host, stale).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{e}");
    assert_eq!(e["detail"], json!({"status": "in_progress", "escalated": true, "version": version}));
    let mut bad = request(Method::POST, &path("close"), Some(&bob), "application/json", close.clone());
    bad.headers_mut().insert("if-match", "soon".parse().expect("header"));
    assert_eq!(call(&host, bad).await.0, StatusCode::BAD_REQUEST);
    let mut current = request(Method::POST, &path("close"), Some(&bob), "application/json", close);
    current.headers_mut().insert("if-match", version.to_string().parse().expect("header"));
    let resp = host.handle_http(current).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("etag").and_then(|v| v.to_str().ok()), Some(format!("\"{}\"", version + 1).as_str()));
    let t: Value = serde_json::from_slice(resp.body()).expect("json");
    assert_eq!((t["status"].as_str(), t["disposition"].as_str()), (Some("closed"), Some("duplicate")));

    // The whole history: who did what, when, from which state to which.
    let (status, t) = get(&host, &format!("/v1/tickets/{id}"), &token("acme", Role::Viewer)).await;
    assert_eq!(status, StatusCode::OK);
    let history = t["history"].as_array().cloned().unwrap_or_default();
    let steps: Vec<(String, String, String, String)> = history
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            (s("action"), s("actor"), s("from"), s("to"))
        })
        .collect();
    let expect =
        |a: &str, who: &str, from: &str, to: &str| (a.to_string(), who.to_string(), from.to_string(), to.to_string());
    assert_eq!(
        steps,
        vec![
            expect("open", "vigil", "", "new"),
            expect("acknowledge", "alice", "new", "acknowledged"),
            expect("respond", "bob", "acknowledged", "in_progress"),
            expect("respond", "bob", "in_progress", "in_progress"),
            expect("assign", "alice", "in_progress", "in_progress"),
            expect("escalate", "bob", "in_progress", "in_progress"),
            expect("close", "bob", "in_progress", "closed"),
            expect("reopen", "alice", "closed", "in_progress"),
            expect("close", "bob", "in_progress", "closed"),
        ]
    );
    let times: Vec<DateTime<Utc>> = history.iter().map(|h| time(&h["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "history is in time order: {times:?}");
    assert_eq!(times[1], acked_at);
    assert_eq!(times[2], responded_at);
    assert_eq!(times[6], start() + Duration::hours(1));
    assert_eq!(t["version"].as_u64(), Some(history.len() as u64));

    // Closing a ticket nobody acknowledged acknowledges it at the same time.
    let other = id_of(&success);
    clock.set(start() + Duration::hours(2));
    let (status, t) =
        post(&host, &format!("/v1/tickets/{other}/close"), &alice, json!({"disposition": "false_positive"})).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(time(&t["acknowledged_at"]), start() + Duration::hours(2));
    assert_eq!(time(&t["closed_at"]), start() + Duration::hours(2));
    assert!(t.get("responded_at").is_none_or(Value::is_null));

    // The aggregates behind /metrics and analytics: written with each transition, in the ticket's tenant.
    let totals: std::collections::BTreeMap<String, i64> =
        host.ports.aggregates.totals("acme").await.expect("totals").into_iter().collect();
    let total = |name: &str| totals.get(name).copied().unwrap_or_default();
    assert_eq!(total("vigil_ticket_time_to_acknowledge_seconds_count{severity=\"high\"}"), 1, "{totals:?}");
    assert_eq!(
        total("vigil_ticket_time_to_acknowledge_seconds_count{severity=\"critical\"}"),
        1,
        "closing acknowledged it"
    );
    assert_eq!(total("vigil_ticket_time_to_acknowledge_seconds_sum_ms{severity=\"high\"}"), 240_000);
    assert_eq!(total("vigil_ticket_time_to_acknowledge_seconds_bucket{le=\"300\",severity=\"high\"}"), 1);
    assert_eq!(total("vigil_ticket_time_to_acknowledge_seconds_bucket{le=\"60\",severity=\"high\"}"), 0);
    assert_eq!(total("vigil_ticket_time_to_respond_seconds_count{severity=\"high\"}"), 1, "only the first response");
    assert_eq!(total("vigil_ticket_time_to_respond_seconds_sum_ms{severity=\"high\"}"), 600_000);
    assert_eq!(total("vigil_ticket_time_to_close_seconds_count{severity=\"high\"}"), 2, "every close");
    assert_eq!(total("vigil_ticket_time_to_close_seconds_count{severity=\"critical\"}"), 1);
    assert_eq!(total("vigil_tickets_closed_total{disposition=\"true_positive\",rule=\"ssh_brute_force\"}"), 1);
    assert_eq!(total("vigil_tickets_closed_total{disposition=\"duplicate\",rule=\"ssh_brute_force\"}"), 1);
    assert_eq!(total("vigil_tickets_closed_total{disposition=\"false_positive\",rule=\"success_after_failures\"}"), 1);
    assert_eq!(total("vigil_tickets_escalated_total{severity=\"high\"}"), 1);
    let window = (start() - Duration::days(1), start() + Duration::days(1));
    let ttc = host.ports.aggregates.samples("acme", "ttc", window.0, window.1).await.expect("samples");
    let mut closes: Vec<(String, f64, String)> =
        ttc.iter().map(|s| (s.id.clone(), s.value, s.labels.get("actor").cloned().unwrap_or_default())).collect();
    closes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected_closes = vec![
        (id.clone(), 3600.0, "bob".to_string()),
        (format!("{id}#2"), 5400.0, "bob".to_string()),
        (other.clone(), 7200.0, "alice".to_string()),
    ];
    expected_closes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(closes, expected_closes);
    let tta = host.ports.aggregates.samples("acme", "tta", window.0, window.1).await.expect("samples");
    let brute_tta = tta.iter().find(|s| s.id == id).expect("tta sample");
    assert_eq!((brute_tta.value, brute_tta.at), (240.0, acked_at));
    assert_eq!(brute_tta.labels.get("rule").map(String::as_str), Some("ssh_brute_force"));
    assert_eq!(brute_tta.labels.get("severity").map(String::as_str), Some("high"));
    let ttr = host.ports.aggregates.samples("acme", "ttr", window.0, window.1).await.expect("samples");
    assert_eq!(ttr.iter().map(|s| (s.id.clone(), s.value)).collect::<Vec<_>>(), vec![(id.clone(), 600.0)]);
    assert!(
        host.ports.aggregates.totals("globex").await.expect("totals").is_empty(),
        "nothing leaks to another tenant"
    );

    // Routing: unknown action 404, wrong method 405, unknown ticket 404.
    let (status, e) = post(&host, &path("snooze"), &alice, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{e}");
    let (status, _) = get(&host, &path("acknowledge"), &alice).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = post(&host, &format!("/v1/tickets/{id}"), &alice, json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = post(&host, "/v1/tickets/T0000000000000nope/acknowledge", &alice, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Role checks for every alerts and tickets route, and tenant isolation for every route.
async fn roles_and_tenants(ports: Ports) {
    let (host, clock) = host_for(ports);
    let (brute, _) = open_tickets(&host).await;
    let ticket = id_of(&brute);
    let alert = brute["alert_id"].as_str().expect("alert id").to_string();
    let reads = [
        "/v1/alerts".to_string(),
        format!("/v1/alerts/{alert}"),
        "/v1/tickets".to_string(),
        "/v1/tickets?status=new".to_string(),
        format!("/v1/tickets/{ticket}"),
    ];
    // In this order every action is legal for the analyst.
    let actions: [(&str, Value); 6] = [
        ("acknowledge", json!({})),
        ("respond", json!({"note": "isolating web-1"})),
        ("assign", json!({"assignee": "bob"})),
        ("escalate", json!({})),
        ("close", json!({"disposition": "true_positive"})),
        ("reopen", json!({"note": "not done"})),
    ];
    let sender = token("acme", Role::Sender);
    let viewer = token("acme", Role::Viewer);
    let analyst = token("acme", Role::Analyst);
    let admin = token("acme", Role::Admin);

    for path in &reads {
        let (status, e) = call(&host, request(Method::GET, path, None, "application/json", "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path} without a token: {e}");
        let (status, e) = call(&host, request(Method::GET, path, Some("not-a-jwt"), "application/json", "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "GET {path} with a bad token: {e}");
        let (status, e) = get(&host, path, &sender).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "GET {path} as sender: {e}");
        for t in [&viewer, &analyst, &admin] {
            let (status, e) = get(&host, path, t).await;
            assert_eq!(status, StatusCode::OK, "GET {path}: {e}");
        }
    }

    // Another tenant, even an admin: empty lists, 404 on every id and every action, and nothing changes.
    let other_analyst = token("globex", Role::Analyst);
    let other_admin = token("globex", Role::Admin);
    for t in [&other_analyst, &other_admin] {
        for path in ["/v1/alerts", "/v1/tickets", "/v1/tickets?status=new", "/v1/tickets?rule=ssh_brute_force"] {
            let (status, body) = get(&host, path, t).await;
            assert_eq!((status, &body["items"]), (StatusCode::OK, &json!([])), "GET {path} as globex");
        }
        for path in [format!("/v1/alerts/{alert}"), format!("/v1/tickets/{ticket}")] {
            let (status, e) = get(&host, &path, t).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "GET {path} as globex: {e}");
        }
        for (action, body) in &actions {
            let path = format!("/v1/tickets/{ticket}/{action}");
            let (status, e) = post(&host, &path, t, body.clone()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "POST {path} as globex: {e}");
        }
    }
    let (_, unchanged) = get(&host, &format!("/v1/tickets/{ticket}"), &viewer).await;
    assert_eq!((unchanged["status"].as_str(), unchanged["version"].as_u64()), (Some("new"), Some(1)), "{unchanged}");

    for (action, body) in &actions {
        let path = format!("/v1/tickets/{ticket}/{action}");
        let (status, e) = call(&host, request(Method::POST, &path, None, "application/json", body.to_string())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "POST {path} without a token: {e}");
        for (who, t) in [("sender", &sender), ("viewer", &viewer)] {
            let (status, e) = post(&host, &path, t, body.clone()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "POST {path} as {who}: {e}");
        }
        clock.advance(Duration::minutes(1));
        let (status, t) = post(&host, &path, &analyst, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "POST {path} as analyst: {t}");
        assert_eq!(last_entry(&t)["actor"], "analyst");
        assert_eq!(time(&last_entry(&t)["at"]), clock.now());
    }
    // An admin may do what an analyst may.
    let (status, t) = post(&host, &format!("/v1/tickets/{ticket}/assign"), &admin, json!({"assignee": "carol"})).await;
    assert_eq!((status, t["assignee"].as_str()), (StatusCode::OK, Some("carol")), "{t}");
    assert_eq!(last_entry(&t)["actor"], "admin");
    // Still invisible to the other tenant after all that.
    let (status, _) = get(&host, &format!("/v1/tickets/{ticket}"), &other_admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Ten analysts acknowledge the same ticket at once: exactly one wins, the others get 409 with the state the
/// winner left; the history holds one acknowledge by the winner. Then five concurrent reassignments all land
/// (each re-reads and re-applies after a conflict), none lost.
async fn concurrent_transitions(ports: Ports) {
    let (host, clock) = host_for(ports);
    let (brute, _) = open_tickets(&host).await;
    let id = id_of(&brute);
    clock.advance(Duration::minutes(3));

    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let host = host.clone();
            let barrier = barrier.clone();
            let path = format!("/v1/tickets/{id}/acknowledge");
            tokio::spawn(async move {
                let who = format!("analyst-{i}");
                let t = token_for("acme", Role::Analyst, &who);
                barrier.wait().await;
                let (status, body) = post(&host, &path, &t, json!({"note": format!("mine ({who})")})).await;
                (who, status, body)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    let winners: Vec<&(String, StatusCode, Value)> = results.iter().filter(|(_, s, _)| *s == StatusCode::OK).collect();
    assert_eq!(winners.len(), 1, "exactly one acknowledge wins: {results:?}");
    for (who, status, body) in &results {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::CONFLICT, "{who}: {body}");
            assert_eq!(
                body["detail"],
                json!({"status": "acknowledged", "escalated": false, "version": 2}),
                "{who}: {body}"
            );
        }
    }
    let winner = winners[0].0.clone();
    let (_, t) = get(&host, &format!("/v1/tickets/{id}"), &token("acme", Role::Viewer)).await;
    assert_eq!((t["status"].as_str(), t["version"].as_u64()), (Some("acknowledged"), Some(2)), "{t}");
    let acks: Vec<&Value> = t["history"]
        .as_array()
        .map(|h| h.iter().filter(|e| e["action"] == "acknowledge").collect())
        .unwrap_or_default();
    assert_eq!(acks.len(), 1, "{t}");
    assert_eq!(acks[0]["actor"].as_str(), Some(winner.as_str()));
    assert_eq!(acks[0]["note"].as_str(), Some(format!("mine ({winner})").as_str()));
    assert_eq!(time(&acks[0]["at"]), start() + Duration::minutes(3));
    assert_eq!(time(&t["acknowledged_at"]), start() + Duration::minutes(3));

    // Reassignments are all legal, so each lands after re-reading: no update is lost.
    let barrier = Arc::new(tokio::sync::Barrier::new(5));
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let host = host.clone();
            let barrier = barrier.clone();
            let path = format!("/v1/tickets/{id}/assign");
            tokio::spawn(async move {
                let t = token_for("acme", Role::Analyst, &format!("lead-{i}"));
                barrier.wait().await;
                post(&host, &path, &t, json!({"assignee": format!("analyst-{i}")})).await
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, t) = get(&host, &format!("/v1/tickets/{id}"), &token("acme", Role::Viewer)).await;
    assert_eq!(t["version"].as_u64(), Some(7), "{t}");
    let assigns: Vec<String> = t["history"]
        .as_array()
        .map(|h| {
            h.iter().filter(|e| e["action"] == "assign").filter_map(|e| e["actor"].as_str().map(String::from)).collect()
        })
        .unwrap_or_default();
    let mut sorted = assigns.clone();
    sorted.sort();
    assert_eq!(sorted, (0..5).map(|i| format!("lead-{i}")).collect::<Vec<_>>(), "{t}");
    let last_assigner = assigns.last().cloned().unwrap_or_default();
    let expected_assignee = last_assigner.replace("lead-", "analyst-");
    assert_eq!(
        t["assignee"].as_str(),
        Some(expected_assignee.as_str()),
        "the assignee is the last assign in the history"
    );
}

/// `GET /v1/events/{id}` answers an alert's evidence event as stored (scored), to viewers of its tenant only.
#[tokio::test]
async fn evidence_events_by_id_for_the_tenant_only_on_the_embedded_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The store and the pipeline share one clock, so the events are within their retention.
    let clock = ManualClock::new(start());
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(clock.clone())).expect("open");
    let host = scenario::host(backend.ports(), &Config::default(), SECRET, Arc::new(clock.clone()));
    let (brute, _) = open_tickets(&host).await;
    let viewer = token("acme", Role::Viewer);
    let (_, alert) =
        get(&host, &format!("/v1/alerts/{}", brute["alert_id"].as_str().expect("alert id")), &viewer).await;
    let evidence: Vec<String> =
        alert["evidence"].as_array().expect("evidence").iter().filter_map(|e| e.as_str().map(str::to_string)).collect();
    assert!(evidence.len() >= 10, "{alert}");
    for id in &evidence {
        let path = format!("/v1/events/{id}");
        let (status, event) = get(&host, &path, &viewer).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {event}");
        assert_eq!((event["id"].as_str(), event["tenant"].as_str()), (Some(id.as_str()), Some("acme")));
        assert_eq!(event["src_ip"], "203.0.113.7", "{event}");
        assert!(event["score"].as_u64().is_some() && event["raw"].is_string(), "scored, with its raw line: {event}");
        for other in [token("globex", Role::Viewer), token("globex", Role::Admin)] {
            assert_eq!(get(&host, &path, &other).await.0, StatusCode::NOT_FOUND, "another tenant's event");
        }
        assert_eq!(get(&host, &path, &token("acme", Role::Sender)).await.0, StatusCode::FORBIDDEN);
        let (status, _) = call(&host, request(Method::GET, &path, None, "application/json", "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(get(&host, "/v1/events/no-such-event", &viewer).await.0, StatusCode::NOT_FOUND);
    let (status, _) = post(&host, &format!("/v1/events/{}", evidence[0]), &token("acme", Role::Admin), json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

fn embedded() -> (tempfile::TempDir, Ports) {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(vigil::clock::SystemClock))
        .expect("open");
    let ports = backend.ports();
    (dir, ports)
}

#[tokio::test]
async fn every_transition_on_the_embedded_backend() {
    let (_dir, ports) = embedded();
    walk_every_transition(ports).await;
}

#[tokio::test]
async fn roles_and_tenant_isolation_on_every_route_on_the_embedded_backend() {
    let (_dir, ports) = embedded();
    roles_and_tenants(ports).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transitions_on_the_embedded_backend() {
    let (_dir, ports) = embedded();
    concurrent_transitions(ports).await;
}

/// moto applies `TransactWriteItems` without isolation: it checks conditions and writes with no lock, after
/// backing the tables up (deepcopy) and restoring that backup when the transaction fails — so on moto two
/// concurrent transactions can both pass `version = :expected`, and a failing one can even undo another's
/// commit. DynamoDB serializes transactions on the same item. This wrapper gives moto that one guarantee by
/// letting one `update_ticket` reach it at a time; everything else (the handler's concurrent reads, its
/// apply, the adapter's conditional transaction and its conflict detection, the handler's re-read and
/// re-apply) runs concurrently and unchanged.
struct OneTransactionAtATime {
    inner: Arc<dyn AlertStore>,
    lock: tokio::sync::Mutex<()>,
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

// `AlertStore` is an `#[async_trait]` trait; these are the signatures the macro gives its methods.
impl AlertStore for OneTransactionAtATime {
    fn record<'life0, 'life1, 'async_trait>(
        &'life0 self,
        candidate: &'life1 AlertCandidate,
    ) -> Fut<'async_trait, RecordOutcome>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let _one = self.lock.lock().await;
            self.inner.record(candidate).await
        })
    }

    fn get_alert<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        tenant: &'life1 str,
        id: &'life2 str,
    ) -> Fut<'async_trait, Option<Alert>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.get_alert(tenant, id)
    }

    fn list_alerts<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        tenant: &'life1 str,
        page: &'life2 PageRequest,
    ) -> Fut<'async_trait, Page<Alert>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.list_alerts(tenant, page)
    }

    fn get_ticket<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        tenant: &'life1 str,
        id: &'life2 str,
    ) -> Fut<'async_trait, Option<Ticket>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.get_ticket(tenant, id)
    }

    fn update_ticket<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        ticket: &'life1 Ticket,
        expected_version: u64,
        writes: &'life2 [AggregateWrite],
    ) -> Fut<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let _one = self.lock.lock().await;
            self.inner.update_ticket(ticket, expected_version, writes).await
        })
    }

    fn list_tickets<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        tenant: &'life1 str,
        filter: &'life2 TicketFilter,
        page: &'life3 PageRequest,
    ) -> Fut<'async_trait, Page<Ticket>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.list_tickets(tenant, filter, page)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transitions_on_the_aws_backend_against_moto() {
    let (backend, _config) = vigil_tests::moto::fresh_backend().await;
    let mut ports = backend.ports();
    ports.alerts = Arc::new(OneTransactionAtATime { inner: ports.alerts, lock: tokio::sync::Mutex::new(()) });
    concurrent_transitions(ports).await;
}

#[tokio::test]
async fn every_transition_on_the_aws_backend_against_moto() {
    let (backend, _config) = vigil_tests::moto::fresh_backend().await;
    walk_every_transition(backend.ports()).await;
}

//! SOC analytics and `/metrics` end to end through the local host, on both backends, with a manual clock:
//! real brute-force traffic opens six tickets, analysts work them through the ticket API at known offsets
//! (one is reopened and closed again, one is escalated and left open past both SLA deadlines, one opens late),
//! and every number the analytics routes and the Prometheus text report is checked against values computed by
//! hand from that timeline. Then: the role every route needs, tenant isolation, and parameter validation.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use vigil::auth::Role;
use vigil::clock::ManualClock;
use vigil::config::Config;
use vigil::ports::Ports;
use vigil_local::host::{Host, MappingSettings};
use vigil_tests::scenario::{self, call, get, request};

const SECRET: &str = "analytics-test-secret-0123456789abcdef";
const ROUTES: [&str; 8] = [
    "severity-count",
    "top-events",
    "recent-high-threats",
    "ticket-aging",
    "response-times",
    "detection-efficacy",
    "volume",
    "shift-performance",
];

/// 2026-03-10 12:00:00 UTC: the tickets of the first traffic open here.
fn t0() -> DateTime<Utc> {
    scenario::start()
}

fn at(offset: Duration) -> DateTime<Utc> {
    t0() + offset
}

fn token_for(tenant: &str, role: Role, sub: &str) -> String {
    scenario::token(SECRET, tenant, role, sub)
}

fn token(tenant: &str, role: Role) -> String {
    token_for(tenant, role, role.as_str())
}

async fn ok(host: &Host, path: &str, token: &str) -> Value {
    let (status, body) = get(host, path, token).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// `GET /metrics`: status, content type and body.
async fn scrape(host: &Host, token: Option<&str>) -> (StatusCode, String, String) {
    let resp = host.handle_http(request(Method::GET, "/metrics", token, "text/plain", "")).await;
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (resp.status(), ct, String::from_utf8_lossy(resp.body()).into_owned())
}

/// The samples of a Prometheus text page, keyed `name{label="value",...}` with the labels sorted.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut pairs: Vec<&str> = if labels.is_empty() { vec![] } else { labels.split("\",").collect() };
        pairs.iter_mut().for_each(|p| *p = p.trim_end_matches('"'));
        pairs.sort();
        let key = if pairs.is_empty() { name.to_string() } else { format!("{name}{{{}\"}}", pairs.join("\",")) };
        out.insert(key, value);
    }
    out
}

fn series(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or_else(|| panic!("no series {key} in /metrics: {:#?}", m.keys().collect::<Vec<_>>()))
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

fn close_to(got: &Value, want: f64, what: &str) {
    let g = got.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!((g - want).abs() < 1e-9, "{what}: got {g}, expected {want}");
}

/// count / mean / p50 / p90 of a stats object.
fn stats(v: &Value, count: u64, mean: f64, p50: f64, p90: f64, what: &str) {
    assert_eq!(v["count"].as_u64(), Some(count), "{what}: {v}");
    close_to(&v["mean_seconds"], mean, &format!("{what} mean"));
    close_to(&v["p50_seconds"], p50, &format!("{what} p50"));
    close_to(&v["p90_seconds"], p90, &format!("{what} p90"));
}

fn empty_stats(v: &Value, what: &str) {
    assert_eq!(v, &json!({ "count": 0, "mean_seconds": null, "p50_seconds": null, "p90_seconds": null }), "{what}");
}

/// Twenty failed logins from `ip` within 20 seconds of `minute` (`Mar 10 11:59`), then optionally a success.
fn brute_force(ip: &str, minute: &str, host: &str, success: bool) -> Vec<String> {
    scenario::brute_force(ip, host, success, |s| format!("{minute}:{s:02}"))
}

const IP1: &str = "203.0.113.7";
const IP2: &str = "198.51.100.9";
const IP3: &str = "192.0.2.33";
const IP4: &str = "203.0.113.99";

fn host_for(ports: Ports) -> (Arc<Host>, ManualClock) {
    let config = Config::from_lookup(|k| match k {
        "VIGIL_PRECISION_FLOOR" => Some("0.6".into()),
        "VIGIL_PRECISION_MIN_CLOSED" => Some("2".into()),
        // The scenario is dated March 2026: keep its events readable whatever today's date.
        "VIGIL_EVENT_RETENTION_DAYS" => Some("36500".into()),
        _ => None,
    })
    .expect("config");
    scenario::host_at(ports, &config, SECRET, t0())
}

/// Sends syslog lines as acme's sender, runs the pipeline, and returns the accepted event ids.
async fn send(host: &Host, lines: &[String]) -> Vec<String> {
    let req = request(Method::POST, "/v1/syslog", Some(&token("acme", Role::Sender)), "text/plain", lines.join("\n"));
    let (status, body) = call(host, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"].as_u64(), Some(lines.len() as u64), "{body}");
    host.drain(MappingSettings { wait: std::time::Duration::ZERO, ..MappingSettings::default() }).await.expect("drain");
    body["ids"].as_array().expect("ids").iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
}

/// acme's ticket for (rule, ip).
async fn ticket(host: &Host, rule: &str, ip: &str) -> Value {
    let list = ok(host, &format!("/v1/tickets?rule={rule}&limit=500"), &token("acme", Role::Viewer)).await;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let found: Vec<Value> =
        items.into_iter().filter(|t| t["entity"].as_str().is_some_and(|e| e.contains(ip))).collect();
    assert_eq!(found.len(), 1, "one {rule} ticket for {ip}: {found:?}");
    found[0].clone()
}

async fn act(host: &Host, clock: &ManualClock, offset: Duration, who: &str, ticket: &str, action: &str, body: Value) {
    clock.set(at(offset));
    let path = format!("/v1/tickets/{ticket}/{action}");
    let req = request(
        Method::POST,
        &path,
        Some(&token_for("acme", Role::Analyst, who)),
        "application/json",
        body.to_string(),
    );
    let (status, answer) = call(host, req).await;
    assert!(status.is_success(), "POST {path} at +{}m: {status} {answer}", offset.num_minutes());
}

/// Nearest rank, computed independently of the code under test.
fn nearest(values: &[f64], p: usize) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len()) as f64 / 100.0).ceil().max(1.0) as usize;
    v[rank - 1]
}

async fn scenario(ports: Ports) {
    let (host, clock) = host_for(ports.clone());
    let viewer = token("acme", Role::Viewer);

    // ------------------------------------------------------------------ traffic at 12:00 (events at 11:59)
    let mut lines = brute_force(IP1, "Mar 10 11:59", "web-1", true);
    lines.extend(brute_force(IP2, "Mar 10 11:59", "web-2", true));
    lines.extend(brute_force(IP3, "Mar 10 11:59", "web-3", false));
    // Two ordinary logins: low risk, no detection.
    lines.push(
        "<38>Mar 10 11:58:00 db-1 sshd[3000]: Accepted publickey for deploy from 10.1.2.3 port 50000 ssh2".into(),
    );
    lines.push(
        "<38>Mar 10 11:58:05 db-1 sshd[3001]: Accepted publickey for deploy from 10.1.2.3 port 50001 ssh2".into(),
    );
    let mut ids = send(&host, &lines).await;
    assert_eq!(ids.len(), 64);

    let bf1 = ticket(&host, "ssh_brute_force", IP1).await;
    let saf1 = ticket(&host, "success_after_failures", IP1).await;
    let bf2 = ticket(&host, "ssh_brute_force", IP2).await;
    let saf2 = ticket(&host, "success_after_failures", IP2).await;
    let bf3 = ticket(&host, "ssh_brute_force", IP3).await;
    for (t, sev) in [(&bf1, "high"), (&saf1, "critical"), (&bf2, "high"), (&saf2, "critical"), (&bf3, "high")] {
        assert_eq!(t["severity"], sev, "{t}");
        assert_eq!(time(&t["created_at"]), t0(), "{t}");
    }
    let id = |t: &Value| t["id"].as_str().expect("id").to_string();
    let (bf1, saf1, bf2, saf2, bf3) = (id(&bf1), id(&saf1), id(&bf2), id(&saf2), id(&bf3));
    let m = Duration::minutes;

    // ------------------------------------------------------------------ the analysts' day
    act(&host, &clock, m(5), "alice", &bf1, "acknowledge", json!({})).await; //         TTA 300 high
    act(&host, &clock, m(10), "bob", &saf1, "acknowledge", json!({})).await; //         TTA 600 critical
    act(&host, &clock, m(20), "alice", &bf1, "respond", json!({ "note": "blocked" })).await; // TTR 1200 high
    act(&host, &clock, m(25), "bob", &saf2, "acknowledge", json!({})).await; //         TTA 1500 critical (late, but acknowledged)
    act(&host, &clock, m(30), "bob", &saf1, "respond", json!({ "note": "reset password" })).await; // TTR 1800 critical
    act(&host, &clock, m(40), "bob", &saf2, "close", json!({ "disposition": "true_positive" })).await; // TTC 2400 critical
    act(&host, &clock, m(60), "alice", &bf1, "close", json!({ "disposition": "true_positive" })).await; // TTC 3600 high
    act(&host, &clock, m(90), "bob", &bf2, "acknowledge", json!({})).await; //          TTA 5400 high
    act(&host, &clock, m(100), "bob", &bf2, "close", json!({ "disposition": "false_positive" })).await; // TTC 6000 high
    act(&host, &clock, m(120), "bob", &saf1, "close", json!({ "disposition": "true_positive" })).await; // TTC 7200 critical
    act(&host, &clock, m(120), "alice", &bf3, "escalate", json!({ "note": "nobody looked" })).await;
    act(&host, &clock, m(180), "alice", &saf1, "reopen", json!({ "note": "came back" })).await;
    act(&host, &clock, m(300), "alice", &saf1, "close", json!({ "disposition": "benign" })).await; // TTC 18000 critical, 17:00 = swing

    // ------------------------------------------------------------------ late traffic: a ticket opened at +25h30m
    clock.set(at(Duration::hours(25) + m(30)));
    ids.extend(send(&host, &brute_force(IP4, "Mar 11 13:29", "web-4", false)).await);
    let bf4 = ticket(&host, "ssh_brute_force", IP4).await;
    assert_eq!(time(&bf4["created_at"]), at(Duration::hours(25) + m(30)));
    assert_eq!(ids.len(), 84);

    let now = at(Duration::hours(26)); // 2026-03-11 14:00
    clock.set(now);
    let window = "from=2026-03-10T11:00:00Z&to=2026-03-11T14:00:00Z";

    // Alerts and detections, as the alerts API reports them.
    let alerts = ok(&host, "/v1/alerts?limit=500", &viewer).await;
    let alerts = alerts["items"].as_array().cloned().unwrap_or_default();
    let mut alerts_by_rule: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for a in &alerts {
        let e = alerts_by_rule.entry(a["rule"].as_str().unwrap_or_default().to_string()).or_default();
        e.0 += 1;
        e.1 += a["count"].as_i64().unwrap_or(0);
    }
    assert_eq!(
        alerts_by_rule.keys().collect::<Vec<_>>(),
        vec!["ssh_brute_force", "success_after_failures"],
        "{alerts:?}"
    );
    let (bf_alerts, bf_detections) = alerts_by_rule["ssh_brute_force"];
    let (saf_alerts, saf_detections) = alerts_by_rule["success_after_failures"];
    assert_eq!((bf_alerts, saf_alerts), (4, 2));

    // The events as stored: the high and critical ones are the threats.
    let mut threats: Vec<(String, u8, Option<String>)> = Vec::new();
    for id in &ids {
        let e = ports.events.get("acme", id).await.expect("get").unwrap_or_else(|| panic!("event {id} stored"));
        if e.score.unwrap_or(0) >= 60 {
            threats.push((e.id.clone(), e.score.unwrap_or(0), e.src_ip.map(|ip| ip.to_string())));
        }
    }

    assert!(
        !threats.is_empty() && threats.len() < 84,
        "the brute force scores high, the ordinary logins do not: {}",
        threats.len()
    );
    // ------------------------------------------------------------------ severity-count
    let sc = ok(&host, &format!("/v1/analytics/severity-count?{window}"), &viewer).await;
    assert_eq!(sc["alerts"], json!({ "critical": 2, "high": 4, "medium": 0, "low": 0, "info": 0 }), "{sc}");
    assert_eq!(sc["detections"]["high"].as_i64(), Some(bf_detections), "{sc}");
    assert_eq!(sc["detections"]["critical"].as_i64(), Some(saf_detections), "{sc}");
    let by_risk: i64 = sc["events_by_risk"].as_object().expect("risks").values().filter_map(Value::as_i64).sum();
    assert_eq!(by_risk, 84, "{sc}");
    assert_eq!(
        sc["events_by_risk"]["high"].as_i64().unwrap_or(0) + sc["events_by_risk"]["critical"].as_i64().unwrap_or(0),
        threats.len() as i64,
        "{sc}"
    );
    assert_eq!(sc["open_tickets"], json!({ "critical": 0, "high": 2, "medium": 0, "low": 0, "info": 0 }), "{sc}");

    // ------------------------------------------------------------------ ticket-aging (now = +26h)
    let ta = ok(&host, &format!("/v1/analytics/ticket-aging?{window}"), &viewer).await;
    assert_eq!(ta["open"]["total"], 2, "{ta}");
    assert_eq!(
        ta["open"]["by_severity"]["high"],
        json!({ "total": 2, "buckets": { "<1h": 1, "1h-4h": 0, "4h-24h": 0, "1d-7d": 1, ">7d": 0 }, "oldest_age_seconds": 93600.0 }),
        "{ta}"
    );
    assert_eq!(ta["open"]["by_severity"]["critical"]["total"], 0, "{ta}");
    assert_eq!(ta["open"]["by_severity"]["critical"]["oldest_age_seconds"], Value::Null, "{ta}");
    // bf3: never acknowledged (due +1h) and open past close_by (+24h); bf4 is 30 minutes old, within both.
    assert_eq!(ta["sla_breaches"]["total"], 2, "{ta}");
    assert_eq!(ta["sla_breaches"]["acknowledge"]["by_severity"]["high"], 1, "{ta}");
    assert_eq!(ta["sla_breaches"]["close"]["by_severity"]["high"], 1, "{ta}");
    let breaches = ta["sla_breaches"]["tickets"].as_array().expect("tickets");
    let mut kinds: Vec<(String, String, f64)> = breaches
        .iter()
        .map(|b| {
            (
                b["ticket_id"].as_str().unwrap_or_default().to_string(),
                b["kind"].as_str().unwrap_or_default().to_string(),
                b["overdue_seconds"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    kinds.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        kinds,
        vec![(bf3.clone(), "acknowledge".into(), 25.0 * 3600.0), (bf3.clone(), "close".into(), 2.0 * 3600.0)]
    );
    assert_eq!(ta["escalations"]["open_escalated"]["by_severity"]["high"], 1, "{ta}");
    assert_eq!(ta["escalations"]["in_period"]["total"], 1, "{ta}");

    // ------------------------------------------------------------------ response-times
    let rt = ok(&host, &format!("/v1/analytics/response-times?{window}"), &viewer).await;
    assert_eq!(rt["percentile_method"], "nearest-rank");
    let mt = &rt["metrics"];
    stats(&mt["mtta"]["all"], 4, 1950.0, 600.0, 5400.0, "MTTA");
    stats(&mt["mtta"]["by_severity"]["high"], 2, 2850.0, 300.0, 5400.0, "MTTA high");
    stats(&mt["mtta"]["by_severity"]["critical"], 2, 1050.0, 600.0, 1500.0, "MTTA critical");
    empty_stats(&mt["mtta"]["by_severity"]["medium"], "MTTA medium");
    stats(&mt["mttr"]["all"], 2, 1500.0, 1200.0, 1800.0, "MTTR");
    stats(&mt["mttr"]["by_severity"]["high"], 1, 1200.0, 1200.0, 1200.0, "MTTR high");
    stats(&mt["mttc"]["all"], 5, 7440.0, 6000.0, 18000.0, "MTTC (the reopened ticket counts both closes)");
    stats(&mt["mttc"]["by_severity"]["high"], 2, 4800.0, 3600.0, 6000.0, "MTTC high");
    stats(&mt["mttc"]["by_severity"]["critical"], 3, 9200.0, 7200.0, 18000.0, "MTTC critical");
    // MTTD: ticket created_at − source_time (the first evidence's event time), from the tickets themselves.
    let tickets = ok(&host, "/v1/tickets?limit=500", &viewer).await;
    let ttd: Vec<f64> = tickets["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| (time(&t["created_at"]) - time(&t["source_time"])).num_milliseconds() as f64 / 1000.0)
        .collect();
    assert_eq!(ttd.len(), 6);
    stats(&mt["mttd"]["all"], 6, ttd.iter().sum::<f64>() / 6.0, nearest(&ttd, 50), nearest(&ttd, 90), "MTTD");
    // The default window is the 24 hours up to now, [+2h, +26h): two closes (+2h exactly, +5h), nothing else.
    let rt_default = ok(&host, "/v1/analytics/response-times", &viewer).await;
    assert_eq!(time(&rt_default["from"]), at(Duration::hours(2)));
    stats(&rt_default["metrics"]["mttc"]["all"], 2, 12600.0, 7200.0, 18000.0, "MTTC, default window");
    empty_stats(&rt_default["metrics"]["mtta"]["all"], "MTTA, default window");
    // Daily buckets: everything on March 10, only bf4's time to detect on March 11.
    let rt_days = ok(&host, &format!("/v1/analytics/response-times?period=day&{window}"), &viewer).await;
    let days = rt_days["periods"].as_array().expect("periods");
    assert_eq!(days.len(), 2, "{rt_days}");
    assert_eq!(time(&days[0]["start"]), Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap());
    assert_eq!(days[0]["metrics"]["mttc"]["all"]["count"], 5);
    assert_eq!(days[1]["metrics"]["mttc"]["all"]["count"], 0);
    assert_eq!(days[1]["metrics"]["mttd"]["all"]["count"], 1);
    let rt_weeks = ok(&host, &format!("/v1/analytics/response-times?period=week&{window}"), &viewer).await;
    assert_eq!(rt_weeks["periods"].as_array().map(Vec::len), Some(1), "one ISO week: {rt_weeks}");
    assert_eq!(time(&rt_weeks["periods"][0]["start"]), Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap());

    // ------------------------------------------------------------------ detection-efficacy (floor 0.6, min 2 closes)
    let de = ok(&host, &format!("/v1/analytics/detection-efficacy?{window}"), &viewer).await;
    let rule = |r: &str| {
        de["rules"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["rule"] == r).cloned())
            .unwrap_or_else(|| panic!("{r} in {de}"))
    };
    let bf = rule("ssh_brute_force");
    assert_eq!(
        (
            bf["alerts"].as_i64(),
            bf["detections"].as_i64(),
            bf["closed"].as_i64(),
            bf["true_positive"].as_i64(),
            bf["false_positive"].as_i64()
        ),
        (Some(4), Some(bf_detections), Some(2), Some(1), Some(1)),
        "{bf}"
    );
    close_to(&bf["precision"], 0.5, "ssh_brute_force precision");
    close_to(&bf["noise"], 0.5, "ssh_brute_force noise");
    assert_eq!(bf["needs_tuning"], true, "0.5 < 0.6 with 2 closes: {bf}");
    let saf = rule("success_after_failures");
    assert_eq!(
        (saf["closed"].as_i64(), saf["true_positive"].as_i64(), saf["benign"].as_i64()),
        (Some(3), Some(2), Some(1)),
        "{saf}"
    );
    close_to(&saf["precision"], 2.0 / 3.0, "success_after_failures precision");
    close_to(&saf["noise"], 1.0 / 3.0, "success_after_failures noise");
    assert_eq!(saf["needs_tuning"], false, "{saf}");
    assert_eq!(de["needs_tuning"], json!(["ssh_brute_force"]));
    close_to(&de["totals"]["precision"], 0.6, "overall precision");
    assert_eq!(de["totals"]["closed"], 5);

    // ------------------------------------------------------------------ volume
    let vo = ok(&host, &format!("/v1/analytics/volume?{window}"), &viewer).await;
    assert_eq!(vo["totals"], json!({ "events": 84, "alerts": 6, "tickets_closed": 5 }), "{vo}");
    let hours = vo["hours"].as_array().expect("hours");
    assert_eq!(hours.len(), 27, "11:00 on the 10th to 13:00 on the 11th");
    let hour =
        |h: DateTime<Utc>| hours.iter().find(|x| time(&x["hour"]) == h).cloned().unwrap_or_else(|| panic!("hour {h}"));
    assert_eq!(hour(t0())["events"], 64);
    assert_eq!(hour(t0())["alerts"], 5);
    assert_eq!(hour(t0())["tickets_closed"], 1, "saf2 at 12:40");
    assert_eq!(hour(at(m(60)))["tickets_closed"], 2, "bf1 at 13:00, bf2 at 13:40");
    assert_eq!(hour(at(Duration::hours(25)))["events"], 20);
    assert_eq!(
        vo["peak_hours"]["alerts"],
        json!([{ "hour": "2026-03-10T12:00:00Z", "count": 5 }, { "hour": "2026-03-11T13:00:00Z", "count": 1 }])
    );
    assert_eq!(
        vo["peak_hours"]["tickets_closed"],
        json!([
            { "hour": "2026-03-10T13:00:00Z", "count": 2 },
            { "hour": "2026-03-10T12:00:00Z", "count": 1 },
            { "hour": "2026-03-10T14:00:00Z", "count": 1 }
        ])
    );
    assert_eq!(vo["by_source"], json!({ "syslog": 84 }));
    assert_eq!(
        vo["by_category"].as_object().map(|c| c.values().filter_map(Value::as_i64).sum::<i64>()),
        Some(84),
        "{vo}"
    );

    // ------------------------------------------------------------------ shift-performance (day 08-16, swing 16-24)
    let sp = ok(&host, &format!("/v1/analytics/shift-performance?{window}"), &viewer).await;
    let analyst = |a: &str| {
        sp["analysts"]
            .as_array()
            .and_then(|x| x.iter().find(|y| y["actor"] == a).cloned())
            .unwrap_or_else(|| panic!("{a} in {sp}"))
    };
    let alice = analyst("alice");
    assert_eq!(
        (
            alice["handled"].as_u64(),
            alice["acknowledged"].as_u64(),
            alice["responded"].as_u64(),
            alice["closed"].as_u64()
        ),
        (Some(2), Some(1), Some(1), Some(2)),
        "{alice}"
    );
    stats(&alice["tta"], 1, 300.0, 300.0, 300.0, "alice TTA");
    let bob = analyst("bob");
    assert_eq!(
        (bob["handled"].as_u64(), bob["acknowledged"].as_u64(), bob["responded"].as_u64(), bob["closed"].as_u64()),
        (Some(3), Some(3), Some(1), Some(3)),
        "{bob}"
    );
    stats(&bob["tta"], 3, 2500.0, 1500.0, 5400.0, "bob TTA");
    let shift = |s: &str| {
        sp["shifts"]
            .as_array()
            .and_then(|x| x.iter().find(|y| y["shift"] == s).cloned())
            .unwrap_or_else(|| panic!("{s} in {sp}"))
    };
    let day = shift("day");
    assert_eq!(
        (day["handled"].as_u64(), day["acknowledged"].as_u64(), day["closed"].as_u64()),
        (Some(4), Some(4), Some(4)),
        "{day}"
    );
    stats(&day["tta"], 4, 1950.0, 600.0, 5400.0, "day TTA");
    let swing = shift("swing");
    assert_eq!(
        (swing["handled"].as_u64(), swing["closed"].as_u64(), swing["acknowledged"].as_u64()),
        (Some(1), Some(1), Some(0)),
        "{swing}"
    );
    assert_eq!(shift("night")["handled"], 0);

    // ------------------------------------------------------------------ top-events and recent-high-threats
    let te = ok(&host, &format!("/v1/analytics/top-events?{window}&limit=5"), &viewer).await;
    let rules: Vec<(String, i64, i64)> = te["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap_or_default().to_string(),
                r["detections"].as_i64().unwrap_or(-1),
                r["alerts"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    let mut expected_rules = vec![
        ("ssh_brute_force".to_string(), bf_detections, 4),
        ("success_after_failures".to_string(), saf_detections, 2),
    ];
    expected_rules.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    assert_eq!(rules, expected_rules);
    assert_eq!(te["sources"], json!([{ "source": "syslog", "events": 84 }]));
    let mut by_ip: BTreeMap<String, i64> = BTreeMap::new();
    for (_, _, ip) in &threats {
        if let Some(ip) = ip {
            *by_ip.entry(ip.clone()).or_default() += 1;
        }
    }
    let got_ips: BTreeMap<String, i64> = te["src_ips"]
        .as_array()
        .expect("src_ips")
        .iter()
        .map(|x| (x["value"].as_str().unwrap_or_default().to_string(), x["threats"].as_i64().unwrap_or(0)))
        .collect();
    assert_eq!(got_ips, by_ip, "{te}");
    let rh = ok(&host, &format!("/v1/analytics/recent-high-threats?{window}&limit=500"), &viewer).await;
    assert_eq!(rh["total"].as_u64(), Some(threats.len() as u64), "{rh}");
    let items = rh["items"].as_array().expect("items");
    let mut got: Vec<String> = items.iter().map(|i| i["id"].as_str().unwrap_or_default().to_string()).collect();
    assert!(items.windows(2).all(|w| time(&w[0]["at"]) >= time(&w[1]["at"])), "newest first");
    assert!(items
        .iter()
        .all(|i| i["score"].as_f64().is_some_and(|s| s >= 60.0) && (i["risk"] == "high" || i["risk"] == "critical")));
    got.sort();
    let mut want: Vec<String> = threats.iter().map(|t| t.0.clone()).collect();
    want.sort();
    assert_eq!(got, want);
    let rh1 = ok(&host, &format!("/v1/analytics/recent-high-threats?{window}&limit=1"), &viewer).await;
    assert_eq!(rh1["items"].as_array().map(Vec::len), Some(threats.len().min(1)));

    // ------------------------------------------------------------------ /metrics: the same numbers
    let (status, ct, text) = scrape(&host, Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(ct, "text/plain; version=0.0.4");
    let mx = parse_metrics(&text);
    assert_eq!(series(&mx, r#"vigil_events_ingested_total{source="syslog",tenant="acme"}"#), 84.0);
    assert_eq!(series(&mx, r#"vigil_alerts_total{rule="ssh_brute_force",severity="high",tenant="acme"}"#), 4.0);
    assert_eq!(
        series(&mx, r#"vigil_alerts_total{rule="success_after_failures",severity="critical",tenant="acme"}"#),
        2.0
    );
    assert_eq!(
        series(&mx, r#"vigil_detections_total{rule="ssh_brute_force",severity="high",tenant="acme"}"#),
        bf_detections as f64
    );
    assert_eq!(
        series(&mx, r#"vigil_detections_total{rule="success_after_failures",severity="critical",tenant="acme"}"#),
        saf_detections as f64
    );
    let scored: f64 = mx.iter().filter(|(k, _)| k.starts_with("vigil_events_scored_total{")).map(|(_, v)| v).sum();
    assert_eq!(scored, 84.0);
    let high_or_critical: f64 = ["high", "critical"]
        .iter()
        .map(|r| mx.get(&format!(r#"vigil_events_scored_total{{risk="{r}",tenant="acme"}}"#)).copied().unwrap_or(0.0))
        .sum();
    assert_eq!(high_or_critical, threats.len() as f64);
    for (rule, disp, n) in [
        ("ssh_brute_force", "true_positive", 1.0),
        ("ssh_brute_force", "false_positive", 1.0),
        ("success_after_failures", "true_positive", 2.0),
        ("success_after_failures", "benign", 1.0),
    ] {
        assert_eq!(
            series(&mx, &format!(r#"vigil_tickets_closed_total{{disposition="{disp}",rule="{rule}",tenant="acme"}}"#)),
            n,
            "{rule} {disp}"
        );
    }
    // Precision by rule as the dashboards compute it: true_positive / all closes of the rule.
    for (rule, precision) in [("ssh_brute_force", 0.5), ("success_after_failures", 2.0 / 3.0)] {
        let closes = |disp: Option<&str>| -> f64 {
            mx.iter()
                .filter(|(k, _)| {
                    k.starts_with("vigil_tickets_closed_total{") && k.contains(&format!(r#"rule="{rule}""#))
                })
                .filter(|(k, _)| disp.is_none_or(|d| k.contains(&format!(r#"disposition="{d}""#))))
                .map(|(_, v)| v)
                .sum()
        };
        close_to(
            &json!(closes(Some("true_positive")) / closes(None)),
            precision,
            &format!("{rule} precision from /metrics"),
        );
    }
    assert_eq!(series(&mx, r#"vigil_tickets_escalated_total{severity="high",tenant="acme"}"#), 1.0);
    assert_eq!(series(&mx, r#"vigil_tickets_escalated_total{severity="critical",tenant="acme"}"#), 0.0);
    let h = |metric: &str, sev: &str, part: &str| {
        series(&mx, &format!(r#"{metric}_{part}{{severity="{sev}",tenant="acme"}}"#))
    };
    let b = |metric: &str, sev: &str, le: &str| {
        series(&mx, &format!(r#"{metric}_bucket{{le="{le}",severity="{sev}",tenant="acme"}}"#))
    };
    let (tta, ttr, ttc) = (
        "vigil_ticket_time_to_acknowledge_seconds",
        "vigil_ticket_time_to_respond_seconds",
        "vigil_ticket_time_to_close_seconds",
    );
    assert_eq!((h(tta, "high", "count"), h(tta, "high", "sum")), (2.0, 5700.0));
    assert_eq!((h(tta, "critical", "count"), h(tta, "critical", "sum")), (2.0, 2100.0));
    assert_eq!(
        (
            b(tta, "high", "60"),
            b(tta, "high", "300"),
            b(tta, "high", "3600"),
            b(tta, "high", "14400"),
            b(tta, "high", "+Inf")
        ),
        (0.0, 1.0, 1.0, 2.0, 2.0)
    );
    assert_eq!((h(ttr, "high", "sum"), h(ttr, "critical", "sum")), (1200.0, 1800.0));
    assert_eq!((h(ttc, "high", "count"), h(ttc, "high", "sum")), (2.0, 9600.0));
    assert_eq!(
        (h(ttc, "critical", "count"), h(ttc, "critical", "sum")),
        (3.0, 27600.0),
        "every close of the reopened ticket"
    );
    assert_eq!((b(ttc, "critical", "3600"), b(ttc, "critical", "14400"), b(ttc, "critical", "43200")), (1.0, 2.0, 3.0));
    // MTTA / MTTC means from the histograms equal the API's.
    close_to(
        &json!(h(tta, "high", "sum") / h(tta, "high", "count")),
        mt["mtta"]["by_severity"]["high"]["mean_seconds"].as_f64().unwrap_or(-1.0),
        "MTTA high",
    );
    let open = |sev: &str, bucket: &str| {
        series(&mx, &format!(r#"vigil_tickets_open{{age_bucket="{bucket}",severity="{sev}",tenant="acme"}}"#))
    };
    assert_eq!(
        (open("high", "<1h"), open("high", "1h-4h"), open("high", "1d-7d"), open("critical", "<1h")),
        (1.0, 0.0, 1.0, 0.0)
    );
    assert_eq!(series(&mx, r#"vigil_ticket_oldest_open_age_seconds{severity="high",tenant="acme"}"#), 93600.0);
    assert_eq!(series(&mx, r#"vigil_tickets_sla_breached{kind="acknowledge",severity="high",tenant="acme"}"#), 1.0);
    assert_eq!(series(&mx, r#"vigil_tickets_sla_breached{kind="close",severity="high",tenant="acme"}"#), 1.0);
    assert_eq!(series(&mx, r#"vigil_tickets_sla_breached{kind="acknowledge",severity="critical",tenant="acme"}"#), 0.0);
    for q in ["events", "events-dlq", "detections", "detections-dlq"] {
        assert_eq!(series(&mx, &format!(r#"vigil_queue_messages{{queue="{q}"}}"#)), 0.0, "{q} is drained");
    }
    // Pipeline latency (tenant-less): the manual clock does not move while the pipeline runs.
    assert_eq!(series(&mx, r#"vigil_pipeline_latency_seconds_count{stage="received_to_scored"}"#), 84.0);
    assert_eq!(series(&mx, r#"vigil_pipeline_latency_seconds_bucket{le="0.05",stage="received_to_scored"}"#), 84.0);
    assert_eq!(
        series(&mx, r#"vigil_pipeline_latency_seconds_count{stage="scored_to_alerted"}"#),
        (bf_detections + saf_detections) as f64
    );
    assert_eq!(series(&mx, r#"vigil_pipeline_latency_seconds_sum{stage="scored_to_alerted"}"#), 0.0);

    // ------------------------------------------------------------------ roles and tenants
    roles_and_tenants(&host).await;
}

/// Every analytics route and /metrics: 401 without a token, 403 for a sender, 405 for POST, 200 for viewer
/// and above; another tenant's viewer sees none of acme's numbers; invalid parameters are named.
async fn roles_and_tenants(host: &Host) {
    let sender = token("acme", Role::Sender);
    let paths: Vec<String> =
        ROUTES.iter().map(|r| format!("/v1/analytics/{r}")).chain(["/metrics".to_string()]).collect();
    for path in &paths {
        let resp = host.handle_http(request(Method::GET, path, None, "application/json", "")).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path} without a token");
        let (status, body) = get(host, path, &sender).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} as sender: {body}");
        let (status, _) =
            call(host, request(Method::POST, path, Some(&token("acme", Role::Admin)), "application/json", "{}")).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
        for role in [Role::Viewer, Role::Analyst, Role::Admin] {
            let resp =
                host.handle_http(request(Method::GET, path, Some(&token("acme", role)), "application/json", "")).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path} as {role}");
        }
    }
    let (status, body) = get(host, "/v1/analytics/nope", &token("acme", Role::Viewer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Another tenant: empty analytics, and only its own (zero) series on /metrics.
    let globex = token("globex", Role::Admin);
    let window = "from=2026-03-10T11:00:00Z&to=2026-03-11T14:00:00Z";
    let sc = ok(host, &format!("/v1/analytics/severity-count?{window}"), &globex).await;
    assert_eq!(sc["alerts"], json!({ "critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0 }));
    assert_eq!(sc["open_tickets"]["high"], 0);
    let ta = ok(host, &format!("/v1/analytics/ticket-aging?{window}"), &globex).await;
    assert_eq!((ta["open"]["total"].as_u64(), ta["sla_breaches"]["total"].as_u64()), (Some(0), Some(0)), "{ta}");
    let rt = ok(host, &format!("/v1/analytics/response-times?{window}"), &globex).await;
    for k in ["mtta", "mttr", "mttc", "mttd"] {
        assert_eq!(rt["metrics"][k]["all"]["count"], 0, "{k}: {rt}");
    }
    for r in ["top-events", "recent-high-threats", "detection-efficacy", "volume", "shift-performance"] {
        let body = ok(host, &format!("/v1/analytics/{r}?{window}"), &globex).await;
        assert!(
            !body.to_string().contains("203.0.113.7") && !body.to_string().contains("ssh_brute_force"),
            "{r}: {body}"
        );
    }
    let vo = ok(host, &format!("/v1/analytics/volume?{window}"), &globex).await;
    assert_eq!(vo["totals"], json!({ "events": 0, "alerts": 0, "tickets_closed": 0 }));
    let (status, _, text) = scrape(host, Some(&globex)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains("acme"), "globex's scrape shows acme:\n{text}");
    let mx = parse_metrics(&text);
    assert_eq!(series(&mx, r#"vigil_tickets_open{age_bucket="1d-7d",severity="high",tenant="globex"}"#), 0.0);
    // Every rule's alert series exists from the start, at 0 (so rate() sees the first one).
    let alerts: Vec<f64> = mx.iter().filter(|(k, _)| k.starts_with("vigil_alerts_total")).map(|(_, v)| *v).collect();
    assert!(!alerts.is_empty() && alerts.iter().all(|v| *v == 0.0), "no alerts for globex: {alerts:?}");

    // Parameters: invalid values, from >= to, too long a range, unknown and misplaced parameters.
    let viewer = token("acme", Role::Viewer);
    for (path, param) in [
        ("/v1/analytics/severity-count?from=yesterday", "from"),
        ("/v1/analytics/severity-count?to=2026-13-01T00:00:00Z", "to"),
        ("/v1/analytics/volume?from=2026-03-10T12:00:00Z&to=2026-03-10T12:00:00Z", "from"),
        ("/v1/analytics/volume?from=2026-03-11T12:00:00Z&to=2026-03-10T12:00:00Z", "from"),
        ("/v1/analytics/volume?from=2024-01-01T00:00:00Z&to=2026-03-10T12:00:00Z", "from"),
        ("/v1/analytics/ticket-aging?severity=high", "severity"),
        ("/v1/analytics/severity-count?limit=5", "limit"),
        ("/v1/analytics/top-events?limit=0", "limit"),
        ("/v1/analytics/recent-high-threats?limit=501", "limit"),
        ("/v1/analytics/response-times?period=month", "period"),
        ("/v1/analytics/volume?period=day", "period"),
        ("/metrics?from=2026-03-10T12:00:00Z", "from"),
    ] {
        let (status, body) = get(host, path, &viewer).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["detail"]["parameter"], param, "{path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains(param)), "{path}: {body}");
    }
}

fn embedded() -> (tempfile::TempDir, Ports) {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(vigil::clock::SystemClock))
        .expect("open");
    let ports = backend.ports();
    (dir, ports)
}

#[tokio::test]
async fn analytics_and_metrics_on_the_embedded_backend() {
    let (_dir, ports) = embedded();
    scenario(ports).await;
}

#[tokio::test]
async fn analytics_and_metrics_on_the_aws_backend_against_moto() {
    let (backend, _config) = vigil_tests::moto::fresh_backend().await;
    scenario(backend.ports()).await;
}

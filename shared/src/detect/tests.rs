//! Scenario tests of the detection engine: given events at these times, when evaluated, then …

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::model::{Event, Outcome, Risk, Severity, Timestamp};
use crate::ports::{WindowEntry, WindowStore, WindowUpdate};

// ── An in-memory window store ───────────────────────────────────────────────────────────────────────────

#[derive(Default)]
struct MemWindows {
    sets: Mutex<HashMap<String, BTreeSet<WindowEntry>>>,
    /// Keys and `expires_at` of every merge call.
    merges: Mutex<Vec<(Vec<String>, Timestamp)>>,
    prunes: Mutex<usize>,
}

#[async_trait]
impl WindowStore for MemWindows {
    async fn merge(&self, updates: &[WindowUpdate], expires_at: Timestamp) -> StoreResult<Vec<Vec<WindowEntry>>> {
        self.merges.lock().unwrap().push((updates.iter().map(|u| u.key.clone()).collect(), expires_at));
        let mut sets = self.sets.lock().unwrap();
        Ok(updates
            .iter()
            .map(|u| {
                let set = sets.entry(u.key.clone()).or_default();
                set.extend(u.entries.iter().cloned());
                // "any order": hand them back newest first to make sure the engine sorts.
                set.iter().rev().cloned().collect()
            })
            .collect())
    }

    async fn prune(&self, removals: &[WindowUpdate]) -> StoreResult<()> {
        *self.prunes.lock().unwrap() += 1;
        let mut sets = self.sets.lock().unwrap();
        for r in removals {
            if let Some(set) = sets.get_mut(&r.key) {
                for e in &r.entries {
                    set.remove(e);
                }
            }
        }
        Ok(())
    }
}

impl MemWindows {
    fn entries(&self, key: &str) -> Vec<WindowEntry> {
        self.sets.lock().unwrap().get(key).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    fn keys(&self) -> BTreeSet<String> {
        self.sets.lock().unwrap().iter().filter(|(_, s)| !s.is_empty()).map(|(k, _)| k.clone()).collect()
    }

    fn merge_calls(&self) -> usize {
        self.merges.lock().unwrap().len()
    }
}

// ── Event builders ──────────────────────────────────────────────────────────────────────────────────────

const T0: i64 = 1_700_000_000_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const IP: &str = "203.0.113.7";

fn at(ms: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(T0 + ms).unwrap()
}

/// "Now" for every evaluation: after all the event times the tests use.
fn now() -> Timestamp {
    at(3 * 60 * MIN)
}

fn base(id: &str, ms: i64) -> Event {
    Event {
        id: id.to_string(),
        tenant: "acme".to_string(),
        timestamp: at(ms),
        received_at: at(ms),
        source: "syslog".to_string(),
        host: Some("web-1".to_string()),
        program: Some("sshd".to_string()),
        category: Some("authentication".to_string()),
        action: Some("login".to_string()),
        ..Event::default()
    }
}

fn login(id: &str, ms: i64, ip: &str, user: &str, outcome: Outcome) -> Event {
    Event { outcome, src_ip: Some(ip.parse().unwrap()), user: Some(user.to_string()), ..base(id, ms) }
}

fn fail(id: &str, ms: i64, ip: &str, user: &str) -> Event {
    login(id, ms, ip, user, Outcome::Failure)
}

fn ok(id: &str, ms: i64, ip: &str, user: &str) -> Event {
    login(id, ms, ip, user, Outcome::Success)
}

/// `n` failures for `alice` from `IP`, `step` apart from `start`, ids `{prefix}{i}`.
fn failures(prefix: &str, n: usize, start: i64, step: i64) -> Vec<Event> {
    (0..n).map(|i| fail(&format!("{prefix}{i:03}"), start + i as i64 * step, IP, "alice")).collect()
}

fn with_tenant(mut events: Vec<Event>, tenant: &str) -> Vec<Event> {
    for e in &mut events {
        e.tenant = tenant.to_string();
    }
    events
}

async fn eval(engine: &DetectionEngine, store: &MemWindows, events: &mut [Event]) -> Vec<Detection> {
    engine.evaluate(store, events, now()).await.unwrap()
}

fn of<'a>(detections: &'a [Detection], rule: &str) -> Vec<&'a Detection> {
    detections.iter().filter(|d| d.rule == rule).collect()
}

fn one<'a>(detections: &'a [Detection], rule: &str) -> &'a Detection {
    let found = of(detections, rule);
    assert_eq!(found.len(), 1, "expected one {rule} detection, got {detections:#?}");
    found[0]
}

fn engine_with(rules: &str) -> DetectionEngine {
    DetectionEngine::from_toml(rules, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// A single threshold rule over failures by src_ip, for state tests.
fn single_threshold(window: &str, threshold: u64) -> DetectionEngine {
    engine_with(&format!(
        r#"
        [[rule]]
        id = "t"
        kind = "threshold"
        group_by = "src_ip"
        window = "{window}"
        threshold = {threshold}
        score = 10
        severity = "low"
        [rule.match]
        outcome = "failure"
        "#
    ))
}

// ── The built-in rules ──────────────────────────────────────────────────────────────────────────────────

#[test]
fn builtin_rules_load_with_their_documented_defaults() {
    let engine = DetectionEngine::builtin();
    let ids: Vec<&str> = engine.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ssh_brute_force",
            "password_spraying",
            "success_after_failures",
            "abnormal_access_frequency",
            "abnormal_access_frequency_user",
            "high_severity_passthrough",
            "slow_brute_force",
            "distributed_brute_force",
            "web_scanning",
            "web_error_burst",
            "sudo_failures",
            "su_root",
            "new_privileged_source",
            "risk_accumulation",
        ]
    );
    let rule = |id: &str| engine.rule(id).unwrap();
    let m = |s: u64| Duration::from_secs(60 * s);

    assert_eq!(
        rule("ssh_brute_force").kind,
        RuleKind::Threshold { window: m(2), threshold: 10, reset: None, burst: None }
    );
    assert_eq!(rule("ssh_brute_force").severity, SeverityPolicy::Fixed(Severity::High));
    assert_eq!(rule("ssh_brute_force").mitre, ["T1110.001"]);

    assert_eq!(rule("password_spraying").kind, RuleKind::Distinct { window: m(10), threshold: 5, field: Field::User });
    assert_eq!(rule("password_spraying").severity, SeverityPolicy::Fixed(Severity::High));
    assert_eq!(rule("password_spraying").mitre, ["T1110.003"]);

    assert_eq!(rule("success_after_failures").window(), Some(m(10)));
    assert_eq!(rule("success_after_failures").threshold(), Some(5));
    assert_eq!(rule("success_after_failures").severity, SeverityPolicy::Fixed(Severity::Critical));
    assert_eq!(rule("success_after_failures").mitre, ["T1110", "T1078"]);

    for id in ["abnormal_access_frequency", "abnormal_access_frequency_user"] {
        assert_eq!(rule(id).kind, RuleKind::Threshold { window: m(5), threshold: 300, reset: None, burst: None });
        assert_eq!(rule(id).severity, SeverityPolicy::Fixed(Severity::Medium));
    }
    assert_eq!(rule("abnormal_access_frequency").group_by[0].alternatives, [Field::SrcIp]);
    assert_eq!(rule("abnormal_access_frequency_user").group_by[0].alternatives, [Field::User]);

    assert_eq!(rule("high_severity_passthrough").kind, RuleKind::Passthrough);
    assert_eq!(rule("high_severity_passthrough").severity, SeverityPolicy::Event);
    assert_eq!(rule("high_severity_passthrough").conditions.min_severity, Some(Severity::High));

    for r in engine.rules() {
        assert!(r.enabled, "{}", r.id);
        let long = ["slow_brute_force", "new_privileged_source"];
        assert_eq!(r.suppression > m(60), long.contains(&r.id.as_str()), "{}", r.id);
        assert!(!r.description.is_empty() && r.runbook.is_some(), "{} is documented", r.id);
        assert_eq!(r.origin, "rules/builtin.toml");
    }
}

#[test]
fn suppression_defaults_to_an_hour_and_follows_the_rule() {
    let engine = DetectionEngine::builtin();
    assert_eq!(engine.suppression("ssh_brute_force"), Duration::from_secs(3600));
    assert_eq!(engine.suppression("no_such_rule"), Duration::from_secs(3600));
    let engine =
        engine.with_overrides("[[rule]]\nid = \"ssh_brute_force\"\nsuppression = \"15m\"\n", "o.toml").unwrap();
    assert_eq!(engine.suppression("ssh_brute_force"), Duration::from_secs(900));
}

#[test]
fn durations_parse_and_format() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
    assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    for bad in ["5x", "", "m", "0m", "-2m", "2 m", "1.5h", "2mm"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    assert_eq!(format_duration(Duration::from_secs(6 * 3600)), "6h");
}

// ── ssh_brute_force ─────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn brute_force_needs_ten_failures_and_nine_are_not_enough() {
    let engine = DetectionEngine::builtin();

    // Given 9 failures 10 s apart, when evaluated, then nothing fires.
    let store = MemWindows::default();
    let mut events = failures("f", 9, 0, 10 * SEC);
    assert!(of(&eval(&engine, &store, &mut events).await, "ssh_brute_force").is_empty());
    assert!(events.iter().all(|e| e.rules.is_empty()));

    // Given 10 (in reverse order), then one detection with every field filled.
    let store = MemWindows::default();
    let mut events = failures("f", 10, 0, 10 * SEC);
    events.reverse();
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "ssh_brute_force");
    assert_eq!(d.tenant, "acme");
    assert_eq!(d.rule_name, "Brute force from one address");
    assert_eq!(d.entity, "src_ip=203.0.113.7");
    assert_eq!(d.window_seconds, 120);
    assert_eq!(d.count, 10);
    assert_eq!(d.first_seen, at(0));
    assert_eq!(d.last_seen, at(90 * SEC));
    assert_eq!(d.evidence, (0..10).map(|i| format!("f{i:03}")).collect::<Vec<_>>());
    assert_eq!(d.severity, Severity::High);
    assert_eq!(d.mitre, ["T1110.001"]);
    assert_eq!(d.reasons, ["10 failed logins from 203.0.113.7 within 2m (threshold 10)"]);
    assert_eq!(d.detected_at, now());
    assert_eq!(d.score, 60, "failure 10 + rule 50");
    assert_eq!(detections.len(), 1, "no other rule fires: {detections:#?}");
}

#[tokio::test]
async fn brute_force_window_includes_an_event_exactly_two_minutes_after_the_first() {
    let engine = DetectionEngine::builtin();
    for (last_at, fires) in [(2 * MIN, true), (2 * MIN + 1, false)] {
        let store = MemWindows::default();
        let mut events = failures("f", 9, 0, SEC);
        events.push(fail("last", last_at, IP, "alice"));
        let detections = eval(&engine, &store, &mut events).await;
        assert_eq!(of(&detections, "ssh_brute_force").len(), usize::from(fires), "last at {last_at} ms");
    }
}

#[tokio::test]
async fn events_lacking_the_group_by_field_are_skipped_by_that_rule() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = failures("f", 12, 0, SEC);
    for e in &mut events {
        e.src_ip = None;
    }
    let detections = eval(&engine, &store, &mut events).await;
    assert!(detections.is_empty());
    assert_eq!(store.keys(), BTreeSet::from(["acme#abnormal_access_frequency_user#user=alice".to_string()]));
}

// ── password_spraying ───────────────────────────────────────────────────────────────────────────────────

fn spray(users: usize, repeats: usize, step: i64) -> Vec<Event> {
    let mut events = Vec::new();
    for r in 0..repeats {
        for u in 0..users {
            let i = r * users + u;
            events.push(fail(&format!("s{i:03}"), i as i64 * step, IP, &format!("user{u}")));
        }
    }
    events
}

#[tokio::test]
async fn spraying_needs_five_distinct_users_and_repeats_do_not_count() {
    let engine = DetectionEngine::builtin();

    // 4 users, each tried 3 times (12 failures): brute force, but no spraying.
    let store = MemWindows::default();
    let mut events = spray(4, 3, 10 * SEC);
    let detections = eval(&engine, &store, &mut events).await;
    assert!(of(&detections, "password_spraying").is_empty());
    assert_eq!(of(&detections, "ssh_brute_force").len(), 1);

    // 5 users once each.
    let store = MemWindows::default();
    let mut events = spray(5, 1, MIN);
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "password_spraying");
    assert_eq!(d.count, 5);
    assert_eq!(d.window_seconds, 600);
    assert_eq!(d.severity, Severity::High);
    assert_eq!(d.mitre, ["T1110.003"]);
    assert_eq!(d.reasons, ["Failed logins for 5 different users from 203.0.113.7 within 10m (threshold 5)"]);
    let keys = store.keys();
    assert!(keys.contains("acme#password_spraying#src_ip=203.0.113.7"));
    let tags: BTreeSet<String> =
        store.entries("acme#password_spraying#src_ip=203.0.113.7").into_iter().map(|e| e.tag).collect();
    assert_eq!(tags.len(), 5, "the tag carries the user");
}

#[tokio::test]
async fn spraying_window_edge() {
    let engine = DetectionEngine::builtin();
    for (fifth_at, fires) in [(10 * MIN, true), (10 * MIN + 1, false)] {
        let store = MemWindows::default();
        let mut events = spray(4, 1, SEC);
        events.push(fail("fifth", fifth_at, IP, "user4"));
        let detections = eval(&engine, &store, &mut events).await;
        assert_eq!(of(&detections, "password_spraying").len(), usize::from(fires), "fifth at {fifth_at} ms");
    }
}

// ── success_after_failures ──────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn a_success_after_five_failures_is_critical_and_after_four_is_not() {
    let engine = DetectionEngine::builtin();

    let store = MemWindows::default();
    let mut events = failures("f", 4, 0, MIN);
    events.push(ok("win", 5 * MIN, IP, "alice"));
    assert!(of(&eval(&engine, &store, &mut events).await, "success_after_failures").is_empty());

    let store = MemWindows::default();
    let mut events = failures("f", 5, 0, MIN);
    events.push(ok("win", 5 * MIN, IP, "alice"));
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "success_after_failures");
    assert_eq!(d.severity, Severity::Critical);
    assert_eq!(d.mitre, ["T1110", "T1078"]);
    assert_eq!(d.count, 6, "five failures and the success");
    assert_eq!(d.first_seen, at(0));
    assert_eq!(d.last_seen, at(5 * MIN));
    assert_eq!(d.evidence.last().map(String::as_str), Some("win"));
    assert_eq!(d.reasons, ["Successful login from 203.0.113.7 after 5 failed logins within 10m (threshold 5)"]);
    let success = events.iter().find(|e| e.id == "win").unwrap();
    assert_eq!(success.risk, Some(Risk::Critical));
    assert_eq!(success.rules, ["success_after_failures"]);
    assert_eq!(success.score, Some(85));
    assert_eq!(d.score, 95, "the riskiest event of the window: a failure, 10 + 85");
}

#[tokio::test]
async fn success_window_edge_and_order_in_time() {
    let engine = DetectionEngine::builtin();
    // Failures at first, +1 s … +4 s; the success exactly 10 min after the first (inside) or 1 ms later.
    for (success_at, fires) in [(10 * MIN, true), (10 * MIN + 1, false)] {
        let store = MemWindows::default();
        let mut events = failures("f", 5, 0, SEC);
        events.push(ok("win", success_at, IP, "alice"));
        let detections = eval(&engine, &store, &mut events).await;
        assert_eq!(of(&detections, "success_after_failures").len(), usize::from(fires), "success at {success_at}");
    }
    // A success in the same millisecond as the fifth failure counts it as before.
    let store = MemWindows::default();
    let mut events = failures("f", 5, 0, SEC);
    events.push(ok("win", 4 * SEC, IP, "alice"));
    assert_eq!(of(&eval(&engine, &store, &mut events).await, "success_after_failures").len(), 1);
    // A success before the failures (in event time) is not "after failures".
    let store = MemWindows::default();
    let mut events = failures("f", 5, SEC, SEC);
    events.push(ok("win", 0, IP, "alice"));
    assert!(of(&eval(&engine, &store, &mut events).await, "success_after_failures").is_empty());
}

#[tokio::test]
async fn failures_arriving_after_their_success_still_fire_with_the_same_id() {
    let engine = DetectionEngine::builtin();
    let mut all = failures("f", 6, 0, MIN);
    all.push(ok("win", 6 * MIN, IP, "alice"));
    let in_one = {
        let store = MemWindows::default();
        let mut events = all.clone();
        one(&eval(&engine, &store, &mut events).await, "success_after_failures").clone()
    };

    // The success is delivered first, the failures later.
    let store = MemWindows::default();
    let mut first = vec![all[6].clone()];
    assert!(eval(&engine, &store, &mut first).await.is_empty());
    let mut later = all[..6].to_vec();
    let detections = eval(&engine, &store, &mut later).await;
    let d = one(&detections, "success_after_failures");
    assert_eq!(d, &in_one);
    assert!(later.iter().all(|e| e.rules.contains(&"success_after_failures".to_string())));
}

// ── abnormal_access_frequency ───────────────────────────────────────────────────────────────────────────

fn requests(n: usize, ip_for: impl Fn(usize) -> String, user: &str) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            category: Some("web".to_string()),
            action: Some("request".to_string()),
            outcome: Outcome::Success,
            src_ip: Some(ip_for(i).parse().unwrap()),
            user: Some(user.to_string()),
            ..base(&format!("r{i:04}"), i as i64 * 500)
        })
        .collect()
}

#[tokio::test]
async fn abnormal_rate_from_one_address_needs_300_events_in_five_minutes() {
    let engine = DetectionEngine::builtin();
    for (n, fires) in [(299, false), (300, true)] {
        let store = MemWindows::default();
        let mut events = requests(n, |_| "198.51.100.1".to_string(), "svc");
        // Spread over users so only the address rule can fire.
        for (i, e) in events.iter_mut().enumerate() {
            e.user = Some(format!("u{i}"));
        }
        let detections = eval(&engine, &store, &mut events).await;
        assert_eq!(of(&detections, "abnormal_access_frequency").len(), usize::from(fires), "{n} events");
        assert!(of(&detections, "abnormal_access_frequency_user").is_empty());
        if fires {
            let d = one(&detections, "abnormal_access_frequency");
            assert_eq!(d.severity, Severity::Medium);
            assert_eq!(d.reasons, ["300 events from 198.51.100.1 within 5m (threshold 300)"]);
            assert_eq!(d.evidence.len(), EVIDENCE_CAP);
        }
    }
}

#[tokio::test]
async fn abnormal_rate_for_one_user_from_many_addresses() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = requests(300, |i| format!("10.0.{}.{}", i / 200, i % 200 + 1), "svc-backup");
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "abnormal_access_frequency_user");
    assert_eq!(d.entity, "user=svc-backup");
    assert_eq!(d.count, 300);
    assert_eq!(d.reasons, ["300 events for user svc-backup within 5m (threshold 300)"]);
    assert!(of(&detections, "abnormal_access_frequency").is_empty());
    assert!(events.iter().all(|e| e.score == Some(25) && e.risk == Some(Risk::Low)));
}

// ── high_severity_passthrough ───────────────────────────────────────────────────────────────────────────

fn alarm(id: &str, ms: i64, severity: Severity, host: Option<&str>) -> Event {
    Event {
        category: Some("ids".to_string()),
        severity,
        host: host.map(str::to_string),
        message: Some("ET EXPLOIT attempt".to_string()),
        ..base(id, ms)
    }
}

#[tokio::test]
async fn high_and_critical_events_become_detections_at_once_without_state() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = vec![
        alarm("h1", 0, Severity::High, Some("db-1")),
        alarm("c1", SEC, Severity::Critical, Some("db-1")),
        alarm("m1", 2 * SEC, Severity::Medium, Some("db-2")),
        alarm("h2", 3 * SEC, Severity::High, Some("db-3")),
        alarm("h3", 4 * SEC, Severity::High, None),
    ];
    let detections = eval(&engine, &store, &mut events).await;
    assert_eq!(store.merge_calls(), 0, "passthrough keeps no state");
    let entities: Vec<&str> = detections.iter().map(|d| d.entity.as_str()).collect();
    assert_eq!(entities, ["host=db-1", "host=db-3", "source=syslog"], "one per entity, host|src_ip|source");

    let db1 = &detections[0];
    assert_eq!(db1.count, 2, "at most one detection per key per call");
    assert_eq!(db1.severity, Severity::Critical, "the highest of the events'");
    assert_eq!(db1.evidence, ["h1", "c1"]);
    assert_eq!(db1.window_seconds, 0);
    assert_eq!(db1.reasons, ["2 critical-severity event(s) from db-1"]);
    assert_eq!(db1.score, 85);
    assert_eq!(detections[1].severity, Severity::High);
    assert_eq!(detections[1].score, 70);

    let by_id = |id: &str| events.iter().find(|e| e.id == id).unwrap().clone();
    assert_eq!(by_id("c1").score, Some(85));
    assert_eq!(by_id("c1").risk, Some(Risk::Critical));
    assert_eq!(by_id("h2").risk, Some(Risk::High));
    assert_eq!(by_id("m1").score, Some(20));
    assert!(by_id("m1").rules.is_empty());
}

// ── Engine semantics ────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn out_of_order_calls_give_the_same_detection_as_in_order() {
    let engine = DetectionEngine::builtin();
    let all = failures("f", 12, 0, 5 * SEC);
    // Three interleaved chunks of 4: no chunk, nor any two, reach the threshold of 10.
    let chunks: Vec<Vec<Event>> = (0..3).map(|c| all.iter().skip(c).step_by(3).cloned().collect::<Vec<_>>()).collect();
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let mut results = Vec::new();
    for order in orders {
        let store = MemWindows::default();
        let mut detections = Vec::new();
        for c in order {
            let mut events = chunks[c].clone();
            detections.extend(eval(&engine, &store, &mut events).await);
        }
        results.push(detections);
    }
    let in_order = {
        let store = MemWindows::default();
        let mut events = all.clone();
        eval(&engine, &store, &mut events).await
    };
    let expected = one(&in_order, "ssh_brute_force");
    assert_eq!(expected.count, 12);
    for (order, detections) in orders.iter().zip(&results) {
        assert_eq!(detections, &in_order, "order {order:?}");
    }
}

#[tokio::test]
async fn evaluating_the_same_batch_twice_changes_nothing() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut batch = failures("f", 10, 0, SEC);
    batch.push(ok("win", 20 * SEC, IP, "alice"));
    let first = eval(&engine, &store, &mut batch.clone()).await;
    let state: Vec<Vec<WindowEntry>> = store.keys().iter().map(|k| store.entries(k)).collect();

    let mut again = batch.clone();
    let second = eval(&engine, &store, &mut again).await;
    assert_eq!(first, second, "same ids, same counts");
    assert_eq!(one(&second, "ssh_brute_force").count, 10, "not 20");
    assert_eq!(store.keys().iter().map(|k| store.entries(k)).collect::<Vec<_>>(), state);

    let mut once = batch.clone();
    eval(&engine, &MemWindows::default(), &mut once).await;
    assert_eq!(again, once, "events are scored the same on a retry");
}

#[tokio::test]
async fn tenants_never_share_state() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    // Five failures each from the same address for two tenants, interleaved in one call.
    let a = with_tenant(failures("a", 5, 0, SEC), "acme");
    let b = with_tenant(failures("b", 5, 500, SEC), "globex");
    let mut events: Vec<Event> = a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect();
    assert!(eval(&engine, &store, &mut events).await.is_empty());
    assert!(store.keys().contains("acme#ssh_brute_force#src_ip=203.0.113.7"));
    assert!(store.keys().contains("globex#ssh_brute_force#src_ip=203.0.113.7"));

    // Five more for acme and four for globex: only acme reaches 10.
    let mut events = with_tenant(failures("a2-", 5, 10 * SEC, SEC), "acme");
    events.extend(with_tenant(failures("b2-", 4, 10 * SEC, SEC), "globex"));
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "ssh_brute_force");
    assert_eq!(d.tenant, "acme");
    assert!(d.evidence.iter().all(|id| id.starts_with('a')));
    assert_eq!(detections.len(), 1);
    assert!(events.iter().filter(|e| e.tenant == "globex").all(|e| e.rules.is_empty()));
}

#[tokio::test]
async fn all_keys_of_a_call_go_to_the_store_in_one_merge() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = Vec::new();
    for ip in 1..=10 {
        for i in 0..3 {
            events.push(fail(&format!("{ip}-{i}"), i * SEC, &format!("192.0.2.{ip}"), &format!("u{ip}")));
        }
    }
    eval(&engine, &store, &mut events).await;
    let merges = store.merges.lock().unwrap().clone();
    assert_eq!(merges.len(), 1);
    // 10 addresses × (brute force, spraying, sequence, rate, slow brute force, risk)
    // + 10 users × (rate, distributed brute force).
    assert_eq!(merges[0].0.len(), 80);
    assert_eq!(merges[0].1, now() + chrono::Duration::hours(12), "now + 2 × the longest window (6h)");

    // Event times after "now" (clock skew) push the expiry with them.
    let store = MemWindows::default();
    let mut late = vec![fail("x", 4 * 60 * MIN, IP, "alice")];
    eval(&engine, &store, &mut late).await;
    assert_eq!(store.merges.lock().unwrap()[0].1, at(4 * 60 * MIN) + chrono::Duration::hours(12));
}

#[tokio::test]
async fn one_detection_per_key_per_call_but_every_burst_is_flagged() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    // Two bursts an hour apart in one batch (a backfill): 10 then 12 failures.
    let mut events = failures("a", 10, 0, SEC);
    events.extend(failures("b", 12, 60 * MIN, SEC));
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "ssh_brute_force");
    assert_eq!(d.count, 12, "the biggest window");
    assert_eq!(d.first_seen, at(60 * MIN));
    let flagged = events.iter().filter(|e| e.rules.contains(&"ssh_brute_force".to_string())).count();
    assert_eq!(flagged, 22);
    let first = events.iter().find(|e| e.id == "a000").unwrap();
    assert!(first.reasons.contains(&"10 failed logins from 203.0.113.7 within 2m (threshold 10)".to_string()));
    // The first burst is older than newest − 2 × 2m: pruned from the store.
    let kept = store.entries("acme#ssh_brute_force#src_ip=203.0.113.7");
    assert_eq!(kept.len(), 12);
    assert!(kept.iter().all(|e| e.event_id.starts_with('b')));
}

#[tokio::test]
async fn equal_windows_are_broken_by_the_earliest() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = failures("b", 10, 60 * MIN, SEC);
    events.extend(failures("a", 10, 0, SEC));
    let d = one(&eval(&engine, &store, &mut events).await, "ssh_brute_force").clone();
    assert_eq!((d.first_seen, d.evidence[0].as_str()), (at(0), "a000"));
}

#[tokio::test]
async fn the_detection_id_depends_on_the_window_not_on_the_call() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut first = failures("f", 10, 0, SEC);
    let d1 = one(&eval(&engine, &store, &mut first).await, "ssh_brute_force").clone();
    // Two more failures extend the window: a new detection with a new id and all 12 events.
    let mut more = vec![fail("g1", 10 * SEC, IP, "alice"), fail("g2", 11 * SEC, IP, "alice")];
    let d2 = one(&eval(&engine, &store, &mut more).await, "ssh_brute_force").clone();
    assert_ne!(d1.id, d2.id);
    assert_eq!(d2.count, 12);
    assert_eq!(d2.evidence.first().map(String::as_str), Some("f000"));
    assert_eq!(d2.evidence.last().map(String::as_str), Some("g2"));
    // An unrelated event much later for the same key does not re-fire the old window.
    let mut quiet = vec![fail("h", 30 * MIN, IP, "alice")];
    assert!(of(&eval(&engine, &store, &mut quiet).await, "ssh_brute_force").is_empty());
}

#[tokio::test]
async fn evidence_is_capped_at_twenty_ids_from_both_ends() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = failures("f", 30, 0, SEC);
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "ssh_brute_force");
    assert_eq!(d.count, 30);
    let expected: Vec<String> = (0..10).chain(20..30).map(|i| format!("f{i:03}")).collect();
    assert_eq!(d.evidence, expected);
}

#[tokio::test]
async fn stale_entries_are_pruned_at_twice_the_window() {
    let engine = single_threshold("2m", 3);
    let store = MemWindows::default();
    let key = "acme#t#src_ip=203.0.113.7";
    let mut events = vec![fail("old", 0, IP, "a"), fail("edge", MIN, IP, "a")];
    eval(&engine, &store, &mut events).await;
    assert_eq!(store.entries(key).len(), 2);
    // Newest 5m: entries before 5m − 4m = 1m go, the one exactly at 1m stays.
    let mut events = vec![fail("new", 5 * MIN, IP, "a")];
    eval(&engine, &store, &mut events).await;
    let ids: Vec<String> = store.entries(key).into_iter().map(|e| e.event_id).collect();
    assert_eq!(ids, ["edge", "new"]);
    assert_eq!(*store.prunes.lock().unwrap(), 1, "one prune call, only when something goes");
}

#[tokio::test]
async fn a_key_never_keeps_more_than_2000_entries() {
    let engine = single_threshold("1d", 2000);
    let store = MemWindows::default();
    let key = "acme#t#src_ip=203.0.113.7";
    let mut events: Vec<Event> = (0..2100).map(|i| fail(&format!("e{i:05}"), i * SEC, IP, "a")).collect();
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "t");
    assert_eq!(d.count, 2100, "the whole batch is evaluated");
    let kept = store.entries(key);
    assert_eq!(kept.len(), MAX_ENTRIES_PER_KEY);
    assert_eq!(kept[0].event_id, "e00100", "the oldest were dropped");

    let mut events: Vec<Event> = (2100..2150).map(|i| fail(&format!("e{i:05}"), i * SEC, IP, "a")).collect();
    eval(&engine, &store, &mut events).await;
    let kept = store.entries(key);
    assert_eq!(kept.len(), MAX_ENTRIES_PER_KEY);
    assert_eq!(kept[0].event_id, "e00150");
    assert_eq!(kept[MAX_ENTRIES_PER_KEY - 1].event_id, "e02149");
}

// ── Scoring ─────────────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn an_ordinary_login_scores_low_and_signals_add_up() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = vec![
        ok("ok", 0, IP, "alice"),
        fail("f-alice", SEC, "198.51.100.9", "alice"),
        fail("f-root", 2 * SEC, "198.51.100.10", "root"),
        Event { severity: Severity::Medium, ..ok("warn", 3 * SEC, "198.51.100.11", "bob") },
    ];
    eval(&engine, &store, &mut events).await;

    let e = &events[0];
    assert_eq!((e.score, e.risk), (Some(0), Some(Risk::Low)));
    assert!(e.reasons.is_empty() && e.rules.is_empty() && e.mitre.is_empty());

    assert_eq!(events[1].score, Some(10));
    assert_eq!(events[1].reasons, ["Failed login"]);

    assert_eq!(events[2].score, Some(20));
    assert_eq!(events[2].reasons, ["Failed login", "Privileged account root"]);

    assert_eq!(events[3].score, Some(20));
    assert_eq!(events[3].reasons, ["Source reported severity medium"]);
}

#[tokio::test]
async fn rule_contributions_reasons_and_mitre_are_added_and_the_score_capped() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    // Ten failures for ten users, the last as root and reported critical: brute force and spraying, and the
    // failures plus a critical event from one address add up to a risk detection.
    let mut events: Vec<Event> = (0..10).map(|i| fail(&format!("f{i}"), i * SEC, IP, &format!("user{i}"))).collect();
    events[9].user = Some("root".to_string());
    events[9].severity = Severity::Critical;
    let detections = eval(&engine, &store, &mut events).await;
    assert_eq!(of(&detections, "ssh_brute_force").len(), 1);
    assert_eq!(of(&detections, "password_spraying").len(), 1);
    assert_eq!(of(&detections, "risk_accumulation").len(), 1);

    let plain = &events[0];
    assert_eq!(plain.score, Some(100), "10 + 50 + 50 + 30");
    assert_eq!(plain.risk, Some(Risk::Critical));
    assert_eq!(plain.rules, ["ssh_brute_force", "password_spraying", "risk_accumulation"]);
    assert_eq!(plain.mitre, ["T1110.001", "T1110.003", "T1595", "T1110"]);
    assert_eq!(
        plain.reasons,
        [
            "Failed login",
            "10 failed logins from 203.0.113.7 within 2m (threshold 10)",
            "Failed logins for 10 different users from 203.0.113.7 within 10m (threshold 5)",
            "Risk 80 from 203.0.113.7 within 1h (threshold 70): failed login ×10 (+40), high-severity event ×1 (+40)",
        ]
    );
    let root = &events[9];
    assert_eq!(root.score, Some(100), "capped");
    assert_eq!(root.rules, ["ssh_brute_force", "password_spraying", "high_severity_passthrough", "risk_accumulation"]);
    assert_eq!(root.reasons.len(), 3 + 4);
}

#[tokio::test]
async fn a_brute_force_event_is_high_risk() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let mut events = failures("f", 10, 0, SEC);
    eval(&engine, &store, &mut events).await;
    for e in &events {
        assert_eq!((e.score, e.risk), (Some(60), Some(Risk::High)), "{}", e.id);
        assert_eq!(e.rules, ["ssh_brute_force"]);
        assert_eq!(e.mitre, ["T1110.001"]);
    }
}

// ── Rule files: errors ──────────────────────────────────────────────────────────────────────────────────

const GOOD: &str = r#"
[[rule]]
id = "x"
kind = "threshold"
group_by = "src_ip"
window = "5m"
threshold = 3
score = 10
severity = "low"
"#;

fn load_err(text: &str) -> RuleError {
    match DetectionEngine::from_toml(text, "custom.toml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

fn assert_err(e: &RuleError, rule: Option<&str>, field: &str, problem_has: &str) {
    assert_eq!(e.origin, "custom.toml", "{e}");
    assert_eq!(e.rule.as_deref(), rule, "{e}");
    assert_eq!(e.field, field, "{e}");
    assert!(e.problem.contains(problem_has), "{e}");
}

#[test]
fn the_good_file_loads() {
    let engine = engine_with(GOOD);
    assert_eq!(engine.rules().len(), 1);
    assert_eq!(engine.scoring(), &Scoring::default());
}

#[test]
fn an_unknown_field_names_file_rule_and_field() {
    let e = load_err(&GOOD.replace("threshold = 3", "threshold = 3\ntreshold = 5"));
    assert_err(&e, Some("x"), "treshold", "unknown field");
    assert!(e.to_string().starts_with("custom.toml: rule Some(\"x\"): treshold: unknown field"), "{e}");

    let e = load_err(&format!("{GOOD}[rule.match]\ncolour = \"red\"\n"));
    assert_err(&e, Some("x"), "match.colour", "unknown field");
}

#[test]
fn a_bad_window_is_rejected() {
    let e = load_err(&GOOD.replace("\"5m\"", "\"5x\""));
    assert_err(&e, Some("x"), "window", "invalid duration \"5x\"");
    let e = load_err(&GOOD.replace("\"5m\"", "\"30d\""));
    assert_err(&e, Some("x"), "window", "longer than");
    let e = load_err(&GOOD.replace("window = \"5m\"", "window = 5"));
    assert_err(&e, Some("x"), "window", "expected a string");
}

#[test]
fn a_missing_threshold_is_rejected() {
    let e = load_err(&GOOD.replace("threshold = 3\n", ""));
    assert_err(&e, Some("x"), "threshold", "missing");
    let e = load_err(&GOOD.replace("threshold = 3", "threshold = 0"));
    assert_err(&e, Some("x"), "threshold", "out of range");
    let e = load_err(&GOOD.replace("threshold = 3", "threshold = 2001"));
    assert_err(&e, Some("x"), "threshold", "out of range");
}

#[test]
fn an_unknown_kind_is_rejected() {
    let e = load_err(&GOOD.replace("\"threshold\"", "\"ratio\""));
    assert_err(&e, Some("x"), "kind", "unknown kind \"ratio\"");
}

#[test]
fn other_rule_file_mistakes_are_named() {
    let cases: Vec<(String, Option<&str>, &str, &str)> = vec![
        ("[[rule]\nid=".to_string(), None, "toml", ""),
        ("colour = 1\n".to_string(), None, "colour", "unknown top-level key"),
        (GOOD.replace("id = \"x\"\n", ""), None, "id", "missing"),
        (GOOD.replace("id = \"x\"", "id = \"a#b\""), Some("a#b"), "id", "must be"),
        (format!("{GOOD}{GOOD}"), Some("x"), "id", "defined twice"),
        (GOOD.replace("group_by = \"src_ip\"\n", ""), Some("x"), "group_by", "missing"),
        (GOOD.replace("\"src_ip\"", "\"ip\""), Some("x"), "group_by", "unknown field \"ip\""),
        (GOOD.replace("\"low\"", "\"urgent\""), Some("x"), "severity", "unknown severity"),
        (GOOD.replace("score = 10", "score = 101"), Some("x"), "score", "out of range"),
        (format!("{GOOD}mitre = [\"1110\"]\n"), Some("x"), "mitre", "ATT&CK"),
        (format!("{GOOD}reason = \"{{count}} from {{ip}}\"\n"), Some("x"), "reason", "unknown placeholder {ip}"),
        (format!("{GOOD}reason = \"{{distinct}} users\"\n"), Some("x"), "reason", "unknown placeholder"),
        (format!("{GOOD}distinct = \"user\"\n"), Some("x"), "distinct", "not used by kind threshold"),
        (format!("{GOOD}[rule.match]\noutcome = \"maybe\"\n"), Some("x"), "match.outcome", "unknown outcome"),
        (format!("{GOOD}[rule.match]\nmin_severity = \"loud\"\n"), Some("x"), "match.min_severity", "unknown severity"),
        (GOOD.replace("\"threshold\"", "\"distinct\""), Some("x"), "distinct", "missing"),
        (GOOD.replace("\"threshold\"", "\"sequence\""), Some("x"), "failure", "missing"),
        (
            format!(
                "{}[rule.failure]\noutcome = \"failure\"\n[rule.success]\nresult = \"ok\"\n",
                GOOD.replace("\"threshold\"", "\"sequence\"")
            ),
            Some("x"),
            "success.result",
            "unknown field",
        ),
        (GOOD.replace("\"threshold\"", "\"passthrough\""), Some("x"), "window", "not used by kind passthrough"),
        ("[scoring]\nfailure = 500\n".to_string(), None, "scoring.failure", "out of range"),
        ("[scoring]\nseverity = { loud = 1 }\n".to_string(), None, "scoring.severity.loud", "unknown field"),
    ];
    for (text, rule, field, problem) in cases {
        let e = load_err(&text);
        assert_err(&e, rule, field, problem);
    }
}

// ── Rule files: overrides ───────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn an_override_can_change_a_threshold_and_keeps_the_rest() {
    let engine = DetectionEngine::builtin()
        .with_overrides("[[rule]]\nid = \"ssh_brute_force\"\nthreshold = 3\n", "/etc/vigil/rules.toml")
        .unwrap();
    let rule = engine.rule("ssh_brute_force").unwrap();
    assert_eq!(
        rule.kind,
        RuleKind::Threshold { window: Duration::from_secs(120), threshold: 3, reset: None, burst: None }
    );
    assert_eq!(rule.mitre, ["T1110.001"]);
    assert_eq!(rule.origin, "/etc/vigil/rules.toml");
    assert_eq!(engine.rules().len(), 14, "replaced in place");

    let store = MemWindows::default();
    let mut events = failures("f", 3, 0, SEC);
    let d = one(&eval(&engine, &store, &mut events).await, "ssh_brute_force").clone();
    assert_eq!(d.reasons, ["3 failed logins from 203.0.113.7 within 2m (threshold 3)"]);
}

#[tokio::test]
async fn an_override_can_disable_a_rule() {
    let engine = DetectionEngine::builtin()
        .with_overrides("[[rule]]\nid = \"ssh_brute_force\"\nenabled = false\n", "o.toml")
        .unwrap();
    assert!(!engine.rule("ssh_brute_force").unwrap().enabled);
    let store = MemWindows::default();
    let mut events = failures("f", 20, 0, SEC);
    let detections = eval(&engine, &store, &mut events).await;
    assert!(of(&detections, "ssh_brute_force").is_empty());
    assert!(!store.keys().iter().any(|k| k.contains("ssh_brute_force")), "a disabled rule keeps no state");
    assert!(events.iter().all(|e| !e.rules.contains(&"ssh_brute_force".to_string())));
}

#[tokio::test]
async fn an_override_can_add_a_rule_replace_one_and_patch_scoring() {
    let overrides = r#"
        [scoring]
        failure = 30
        severity = { high = 40 }

        [[rule]]
        id = "web_scan"
        name = "404 storm"
        kind = "threshold"
        group_by = ["src_ip", "host"]
        window = "1m"
        threshold = 3
        score = 20
        severity = "medium"
        mitre = ["T1595.003"]
        reason = "{count} missing pages asked for by {entity} ({group_by}) within {window}"
        [rule.match]
        category = ["web", "http"]
        action = "request"
        labels = { status = ["404", "410"] }

        [[rule]]
        id = "high_severity_passthrough"
        kind = "passthrough"
        score = 5
        severity = "critical"
        [rule.match]
        min_severity = "critical"
    "#;
    let engine = DetectionEngine::builtin().with_overrides(overrides, "o.toml").unwrap();
    assert_eq!(engine.rules().len(), 15);
    assert_eq!(engine.scoring().failure, 30);
    assert_eq!(engine.scoring().severity, [0, 10, 20, 40, 50], "only `high` changed");
    let passthrough = engine.rule("high_severity_passthrough").unwrap();
    assert_eq!(passthrough.runbook, None, "a table with `kind` replaces the rule outright");
    assert_eq!(passthrough.conditions.min_severity, Some(Severity::Critical));

    let store = MemWindows::default();
    let mut events: Vec<Event> = (0..4)
        .map(|i| {
            let mut e = Event {
                category: Some("WEB".to_string()),
                action: Some("request".to_string()),
                outcome: Outcome::Success,
                src_ip: Some("198.51.100.4".parse().unwrap()),
                ..base(&format!("w{i}"), i * SEC)
            };
            e.labels.insert("status".to_string(), if i == 3 { "200" } else { "404" }.to_string());
            e
        })
        .collect();
    events.push(alarm("h", 0, Severity::High, Some("db-1")));
    let detections = eval(&engine, &store, &mut events).await;
    let d = one(&detections, "web_scan");
    assert_eq!(d.entity, "src_ip=198.51.100.4,host=web-1");
    assert_eq!(d.count, 3);
    assert_eq!(d.reasons, ["3 missing pages asked for by 198.51.100.4, web-1 (src_ip,host) within 1m"]);
    assert_eq!(events[3].rules, Vec::<String>::new(), "status 200 does not match");
    assert!(of(&detections, "high_severity_passthrough").is_empty(), "now only critical passes through");
    assert_eq!(events[4].score, Some(40));
}

#[test]
fn override_errors_name_the_override_file() {
    let e = DetectionEngine::builtin()
        .with_overrides("[[rule]]\nid = \"ssh_brute_force\"\nwindow = \"5x\"\n", "/etc/vigil/rules.toml")
        .unwrap_err();
    assert_eq!(e.origin, "/etc/vigil/rules.toml");
    assert_eq!(e.rule.as_deref(), Some("ssh_brute_force"));
    assert_eq!(e.field, "window");

    // A patch of an id that does not exist is a new rule, and an incomplete one.
    let e = DetectionEngine::builtin()
        .with_overrides("[[rule]]\nid = \"ssh_brute_forse\"\nenabled = false\n", "o.toml")
        .unwrap_err();
    assert_eq!((e.rule.as_deref(), e.field.as_str()), (Some("ssh_brute_forse"), "kind"));
}

// ── The rules file's own tests ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn every_builtin_rule_test_passes() {
    let engine = DetectionEngine::builtin();
    let reports = ruletest::run_rule_tests(&engine).await;
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            ruletest::TestOutcome::Passed => None,
            other => Some(format!("{} / {}: {other:?}", r.rule, r.test)),
        })
        .collect();
    assert!(failed.is_empty(), "failing rule tests:\n{}", failed.join("\n"));
    assert!(reports.len() >= 40, "{} rule tests", reports.len());
}

#[test]
fn test_offsets_parse_to_milliseconds() {
    assert_eq!(super::parse_offset("+30s"), Ok(30_000));
    assert_eq!(super::parse_offset("-2m"), Ok(-120_000));
    assert_eq!(super::parse_offset("+2m1ms"), Ok(120_001));
    assert_eq!(super::parse_offset("1d6h"), Ok(30 * 3_600_000));
    assert_eq!(super::parse_offset("0"), Ok(0));
    for bad in ["", "+", "5", "5x", "m5", "+1.5h", "++1s", "1s-"] {
        assert!(super::parse_offset(bad).is_err(), "{bad:?}");
    }
}

const TESTED: &str = r#"
[[rule]]
id = "t"
kind = "threshold"
group_by = "src_ip"
window = "1m"
threshold = 3
score = 10
severity = "low"
[rule.match]
outcome = "failure"
"#;

#[tokio::test]
async fn a_rule_test_that_does_not_hold_fails_and_says_why() {
    let text = format!(
        "{TESTED}{}",
        r#"
[[rule.test]]
name = "holds"
events = [ { at = "+0s", repeat = 3, every = "10s", outcome = "failure", src_ip = "192.0.2.1" } ]
expect = { fires = true, count = 3 }

[[rule.test]]
name = "too few"
events = [ { at = "+0s", repeat = 2, every = "10s", outcome = "failure", src_ip = "192.0.2.1" } ]
expect = { fires = true }

[[rule.test]]
name = "wrong count and entity"
events = [ { at = "+0s", repeat = 4, every = "10s", outcome = "failure", src_ip = "192.0.2.1" } ]
expect = { fires = true, count = 3, entity = "src_ip=192.0.2.9" }

[[rule.test]]
name = "fires although it should not"
events = [ { at = "+0s", repeat = 3, every = "1s", outcome = "failure", src_ip = "192.0.2.1" } ]
expect = { fires = false }
"#
    );
    let engine = engine_with(&text);
    let reports = ruletest::run_rule_tests(&engine).await;
    let outcome = |name: &str| reports.iter().find(|r| r.test == name).map(|r| r.outcome.clone()).unwrap();
    assert_eq!(outcome("holds"), ruletest::TestOutcome::Passed);
    let problems = |name: &str| match outcome(name) {
        ruletest::TestOutcome::Failed(p) => p.join(" | "),
        other => panic!("{name}: {other:?}"),
    };
    assert!(problems("too few").contains("expected to fire, but there was no detection"));
    let p = problems("wrong count and entity");
    assert!(p.contains("no detection has count 3, entity src_ip=192.0.2.9") && p.contains("count 4"), "{p}");
    assert!(problems("fires although it should not").contains("expected no detection, got 1: src_ip=192.0.2.1"));

    // A disabled rule's tests are skipped, not run.
    let engine = engine.with_overrides("[[rule]]\nid = \"t\"\nenabled = false\n", "o.toml").unwrap();
    let reports = ruletest::run_rule_tests(&engine).await;
    assert!(reports.iter().all(|r| matches!(r.outcome, ruletest::TestOutcome::Skipped(_))));
}

#[test]
fn rule_test_mistakes_are_named() {
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            r#"events = [ { at = "soon", outcome = "failure" } ]
expect = { fires = true }"#,
            "test[0].events[0].at",
            "invalid offset",
        ),
        (
            r#"events = [ { at = "+0s", repeat = 3, outcome = "failure" } ]
expect = { fires = true }"#,
            "test[0].events[0].every",
            "missing",
        ),
        (
            r#"events = [ { at = "+0s", colour = "red" } ]
expect = { fires = true }"#,
            "test[0].events[0].colour",
            "unknown field",
        ),
        (
            r#"events = [ { at = "+0s", src_ip = "10.0.0.{n}", repeat = 300, every = "1s" } ]
expect = { fires = true }"#,
            "test[0].events[0].src_ip",
            "\"10.0.0.299\" is not an IP address",
        ),
        (
            r#"events = [ { at = "+0s" } ]
expect = { fires = false, count = 3 }"#,
            "test[0].expect.fires",
            "no detection details",
        ),
        (r#"events = [ { at = "+0s" } ]"#, "test[0].expect", "missing"),
        (
            r#"events = []
expect = { fires = true }"#,
            "test[0].events",
            "missing",
        ),
    ];
    for (body, field, problem) in cases {
        let text = format!("{TESTED}[[rule.test]]\nname = \"n\"\n{body}\n");
        let e = match DetectionEngine::from_toml(&text, "custom.toml") {
            Ok(_) => panic!("expected an error for:\n{body}"),
            Err(e) => e,
        };
        assert_err(&e, Some("t"), field, problem);
    }
}

#[test]
fn new_kind_mistakes_are_named() {
    let risk = r#"
[[rule]]
id = "r"
kind = "risk"
group_by = "src_ip"
window = "1h"
threshold = 50
score = 10
severity = "low"
"#;
    let first = r#"
[[rule]]
id = "f"
kind = "first_seen"
group_by = "user"
value = "src_ip"
window = "7d"
score = 10
severity = "low"
"#;
    let cases: Vec<(String, &str, &str, &str)> = vec![
        (risk.to_string(), "r", "signal", "missing"),
        (format!("{risk}[[rule.signal]]\nname = \"a\"\nscore = 5\n"), "r", "signal[0].match", "missing"),
        (
            format!("{risk}[[rule.signal]]\nname = \"a\"\nscore = 5\ncap = 2\n[rule.signal.match]\noutcome = \"failure\"\n"),
            "r",
            "signal[0].cap",
            "at least the signal's score",
        ),
        (
            format!("{risk}min_signals = 2\n[[rule.signal]]\nname = \"a\"\nscore = 5\n[rule.signal.match]\noutcome = \"failure\"\n"),
            "r",
            "min_signals",
            "out of range",
        ),
        (format!("{risk}distinct = \"user\"\n"), "r", "distinct", "not used by kind risk"),
        (first.replace("value = \"src_ip\"\n", ""), "f", "value", "missing"),
        (format!("{first}threshold = 3\n"), "f", "threshold", "not used by kind first_seen"),
        (format!("{first}learning = \"8d\"\n"), "f", "learning", "not be longer than the window"),
        (format!("{TESTED}[rule.burst]\nthreshold = 10\nwindow = \"2h\"\n"), "t", "burst.window", "not be longer"),
        (format!("{TESTED}[rule.except]\n"), "t", "except", "at least one condition"),
        (format!("{TESTED}[rule.reset]\nmood = \"x\"\n"), "t", "reset.mood", "unknown field"),
    ];
    for (text, rule, field, problem) in cases {
        let e = load_err(&text);
        assert_err(&e, Some(rule), field, problem);
    }
}

// ── New kinds and options ───────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn slow_brute_force_gives_the_same_detection_in_one_call_or_one_event_per_call_in_any_order() {
    let engine = DetectionEngine::builtin();
    let mut events = failures("s", 24, 0, 12 * MIN);
    let store = MemWindows::default();
    let all_at_once: Vec<String> = of(&eval(&engine, &store, &mut events.clone()).await, "slow_brute_force")
        .iter()
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(all_at_once.len(), 1);

    // Reversed, one event per call: fires once the 20th arrives, then the window can only grow.
    events.reverse();
    let store = MemWindows::default();
    let mut ids = Vec::new();
    for e in &events {
        let found = eval(&engine, &store, &mut [e.clone()]).await;
        ids.extend(of(&found, "slow_brute_force").iter().map(|d| (d.id.clone(), d.count)));
    }
    assert_eq!(ids.first().map(|(_, c)| *c), Some(20));
    assert_eq!(ids.last().map(|(id, c)| (id.clone(), *c)), Some((all_at_once[0].clone(), 24)));
}

#[tokio::test]
async fn a_reset_or_a_burst_cuts_the_run_and_the_cut_depends_on_event_time_only() {
    let engine = DetectionEngine::builtin();
    // 12 slow failures, a success, 12 more: two runs of 12, never 20.
    let mut events = failures("a", 12, 0, 10 * MIN);
    events.push(ok("ok", 125 * MIN, IP, "alice"));
    events.extend(failures("b", 12, 130 * MIN, 10 * MIN));
    for order in [false, true] {
        let mut batch = events.clone();
        if order {
            batch.reverse();
        }
        let store = MemWindows::default();
        let mut fired = 0;
        for e in batch {
            fired += of(&eval(&engine, &store, &mut [e]).await, "slow_brute_force").len();
        }
        assert_eq!(fired, 0, "reversed: {order}");
    }
    // The success in the same millisecond as a failure comes before it: that failure starts the next run.
    let mut events = failures("a", 19, 0, 10 * MIN);
    events.push(ok("ok", 190 * MIN, IP, "alice"));
    events.push(fail("same", 190 * MIN, IP, "alice"));
    let store = MemWindows::default();
    assert!(of(&eval(&engine, &store, &mut events).await, "slow_brute_force").is_empty());
}

#[tokio::test]
async fn first_seen_keeps_two_sightings_per_value_and_forgets_after_the_window() {
    let engine = DetectionEngine::builtin();
    let store = MemWindows::default();
    let key = "acme#new_privileged_source#user=root";
    // Root logs in from its admin host every hour for two days.
    let mut events: Vec<Event> = (0..48).map(|h| ok(&format!("a{h}"), h * 60 * MIN, "10.0.0.10", "root")).collect();
    assert!(of(&eval(&engine, &store, &mut events).await, "new_privileged_source").is_empty());
    let kept = store.entries(key);
    assert_eq!(kept.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["a0", "a47"], "first and last");

    // Two new addresses in one call: one detection each, entity = user plus the address.
    let mut events = vec![
        ok("n1", 49 * 60 * MIN, "198.51.100.1", "root"),
        ok("n2", 49 * 60 * MIN + SEC, "198.51.100.2", "root"),
        ok("n3", 49 * 60 * MIN + 2 * SEC, "198.51.100.2", "root"),
    ];
    let found = eval(&engine, &store, &mut events).await;
    let mut entities: Vec<(&str, u64)> =
        of(&found, "new_privileged_source").iter().map(|d| (d.entity.as_str(), d.count)).collect();
    entities.sort();
    assert_eq!(entities, [("user=root,src_ip=198.51.100.1", 1), ("user=root,src_ip=198.51.100.2", 2)]);
    assert!(events.iter().all(|e| e.rules == ["new_privileged_source"]), "every sighting is flagged");
    let d = of(&found, "new_privileged_source")[0];
    assert_eq!(
        d.reasons,
        ["Privileged account root logged in from 198.51.100.1, not seen for it before (1 known address(es))"]
    );

    // Eight days later the admin host is back: everything older than 7 days is forgotten, so the account is
    // being learned again and nothing fires.
    let later = (49 + 8 * 24) * 60 * MIN;
    let mut events = vec![ok("b", later, "10.0.0.10", "root"), ok("c", later + MIN, "198.51.100.3", "root")];
    assert!(of(&eval(&engine, &store, &mut events).await, "new_privileged_source").is_empty());
    let kept: Vec<String> = store.entries(key).into_iter().map(|e| e.event_id).collect();
    assert_eq!(kept, ["b", "c"]);
}

#[tokio::test]
async fn risk_needs_enough_different_signals_and_explains_its_sum() {
    let engine = engine_with(
        r#"
[[rule]]
id = "r"
kind = "risk"
group_by = "src_ip"
window = "10m"
threshold = 20
min_signals = 2
score = 10
severity = "medium"
reason = "{score} from {entity}: {signals}"
[[rule.signal]]
name = "fail"
score = 5
[rule.signal.match]
outcome = "failure"
[[rule.signal]]
name = "ok"
score = 1
cap = 2
[rule.signal.match]
outcome = "success"
"#,
    );
    let store = MemWindows::default();
    // Ten failures: 50 points, but one signal only.
    let mut events = failures("f", 10, 0, SEC);
    assert!(eval(&engine, &store, &mut events).await.is_empty());
    // Three successes add a second signal, capped at 2.
    let mut events: Vec<Event> = (0..3).map(|i| ok(&format!("o{i}"), 20 * SEC + i * SEC, IP, "alice")).collect();
    let d = one(&eval(&engine, &store, &mut events).await, "r").clone();
    assert_eq!(d.reasons, ["52 from 203.0.113.7: fail ×10 (+50), ok ×3 (+2)"]);
    assert_eq!(d.count, 13);
}

#[tokio::test]
async fn except_skips_events_and_prefixes_match() {
    let engine = engine_with(&format!(
        "{}{}",
        TESTED.replace("outcome = \"failure\"", "outcome = \"failure\"\nlabels = { status = \"4*\" }"),
        "[rule.except]\nuser = \"scanner\"\nlabels = { allowed = \"*\" }\n"
    ));
    let web = |id: &str, status: &str, user: &str, allowed: bool| {
        let mut e = fail(id, 0, IP, user);
        e.labels.insert("status".into(), status.into());
        if allowed {
            e.labels.insert("allowed".into(), "yes".into());
        }
        e
    };
    let store = MemWindows::default();
    let mut events = vec![
        web("a", "404", "x", false),
        web("b", "503", "x", false),
        web("c", "404", "scanner", true),
        web("d", "404", "scanner", false),
        web("e", "401", "x", false),
    ];
    let d = one(&eval(&engine, &store, &mut events).await, "t").clone();
    assert_eq!(d.count, 3, "a, d, e: 5xx does not match 4*, c is excepted");
    assert!(!d.evidence.contains(&"c".to_string()) && !d.evidence.contains(&"b".to_string()));
}

#[tokio::test]
async fn wildcards_match_prefixes_suffixes_and_substrings_ignoring_case() {
    let engine = engine_with(&TESTED.replace(
        "outcome = \"failure\"",
        "outcome = \"failure\"\nuser = [\"*ADM*\", \"svc-*\"]\nlabels = { path = \"*.php\" }",
    ));
    let event = |id: &str, user: &str, path: &str| {
        let mut e = fail(id, 0, IP, user);
        e.labels.insert("path".into(), path.into());
        e
    };
    let store = MemWindows::default();
    let mut events = vec![
        event("a", "sysadmin", "/wp-login.PHP"),
        event("b", "SVC-backup", "/x.php"),
        event("c", "admin", "/index.php"),
        event("d", "alice", "/x.php"),
        event("e", "admin", "/x.php.bak"),
        event("f", "svc", "/x.php"),
    ];
    let d = one(&eval(&engine, &store, &mut events).await, "t").clone();
    let mut evidence = d.evidence.clone();
    evidence.sort();
    assert_eq!(evidence, ["a", "b", "c"]);
}

#[tokio::test]
async fn replaying_old_batches_after_the_key_moved_on_finds_the_same_detection() {
    let engine = single_threshold("2m", 3);
    let store = MemWindows::default();
    let batches = vec![
        vec![fail("a", 0, IP, "x"), fail("b", SEC, IP, "x")],
        vec![fail("c", 2 * SEC, IP, "x")],
        vec![fail("later", 60 * MIN, IP, "x")],
    ];
    let mut first = Vec::new();
    for b in &batches {
        first.extend(eval(&engine, &store, &mut b.clone()).await.into_iter().map(|d| d.id));
    }
    assert_eq!(first.len(), 1);
    // The whole log again, in the same batches: the old entries come back with the context they had, so the
    // window (and its id) is the same; nothing new is detected.
    let mut again = Vec::new();
    for b in &batches {
        again.extend(eval(&engine, &store, &mut b.clone()).await.into_iter().map(|d| d.id));
    }
    assert!(again.iter().all(|id| first.contains(id)), "{again:?} vs {first:?}");
    assert!(!again.is_empty(), "the replayed window is recognised, with the same id");
}

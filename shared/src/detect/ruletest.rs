//! Rule tests: `[[rule.test]]` entries in a rules file, run through the real engine.
//!
//! ```toml
//! [[rule.test]]
//! name = "ten failures within two minutes fire"
//! events = [
//!   { at = "+0s", repeat = 10, every = "12s", category = "authentication", outcome = "failure",
//!     src_ip = "203.0.113.7", user = "root" },
//! ]
//! expect = { fires = true, count = 10, entity = "src_ip=203.0.113.7" }
//! ```
//!
//! * `at` is an offset from the test's start and the event's time (a message's own time is ignored), `+30s`, `-5m`, `+2m1ms`, `+1d6h` (units `ms`, `s`, `m`, `h`, `d`),
//!   so window edges can be tested to the millisecond. `repeat = n` with `every = "10s"` makes `n` events, the
//!   k-th at `at + k × every`; in `user`, `host`, `src_ip`, `dst_ip`, `message` and label values `{n}` stands
//!   for k (0, 1, …), so `src_ip = "198.51.100.{n}"` makes one address per event. `batch = n` (default 0) puts events into separate `evaluate` calls, run in
//!   increasing batch order against the same window store (state carried over, as between queue messages).
//! * Event fields: `category`, `action`, `outcome`, `severity`, `program`, `source`, `host`, `user`, `src_ip`,
//!   `dst_ip`, `labels = { .. }`, `tenant`, `id`, and `message`: with a message the event is normalised as
//!   ingest would (`program = "sshd", message = "Failed password for ..."`), never overwriting given fields.
//! * `expect`: `fires` (required) — whether the rule produces any detection; optionally `detections` (how many
//!   distinct detections), and `count`, `entity`, `severity`, `reason` (a substring) that one detection must
//!   all have.
//!
//! Each test runs the rule alone (with the file's `[scoring]`), enabled, on a fresh in-memory window store.
//! After the expectations are checked, every batch is evaluated once more: a replay must not produce a
//! detection with a new id (the engine's idempotency, checked for every rule test).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use toml::Value;

use super::rules::{err, parse_severity, Reader};
use super::{DetectionEngine, Rule, RuleError};
use crate::error::StoreResult;
use crate::model::{Detection, Event, Outcome, Severity, Timestamp};
use crate::ports::{WindowEntry, WindowStore, WindowUpdate};

/// Offsets count from this instant (2024-01-01T00:00:00Z).
pub const TEST_EPOCH_MS: i64 = 1_704_067_200_000;
/// No test may make more events than this.
const MAX_TEST_EVENTS: u64 = 20_000;

#[derive(Clone, Debug, PartialEq)]
pub struct RuleTest {
    pub name: String,
    pub events: Vec<TestEvent>,
    pub expect: Expect,
}

/// One `events` entry: a template event and where (and how often) it occurs.
#[derive(Clone, Debug, PartialEq)]
pub struct TestEvent {
    pub offset_ms: i64,
    pub repeat: u64,
    pub every_ms: i64,
    pub batch: u64,
    pub id: Option<String>,
    pub template: Event,
    /// Address templates (may hold `{n}`), parsed per repetition.
    pub src_ip: Option<String>,
    pub dst_ip: Option<String>,
    /// The template has a message to normalise.
    pub normalize: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expect {
    pub fires: bool,
    pub detections: Option<usize>,
    pub count: Option<u64>,
    pub entity: Option<String>,
    pub severity: Option<Severity>,
    pub reason: Option<String>,
}

/// The result of one rule test.
#[derive(Clone, Debug, PartialEq)]
pub struct TestReport {
    pub rule: String,
    pub origin: String,
    pub test: String,
    pub outcome: TestOutcome,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestOutcome {
    Passed,
    /// What did not hold.
    Failed(Vec<String>),
    /// Not run, and why (the rule is disabled).
    Skipped(String),
}

/// `+30s`, `-5m`, `+2m1ms`, `1d6h`, `0`: a signed sum of whole numbers with units ms, s, m, h, d.
pub fn parse_offset(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid offset {text:?} (expected e.g. \"+30s\", \"-2m\", \"+2m1ms\" or \"0\")");
    let t = text.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1i64, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n.checked_mul(per).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    Ok(sign * total)
}

const TEST_FIELDS: &[&str] = &["name", "events", "expect"];
const EVENT_FIELDS: &[&str] = &[
    "at", "repeat", "every", "batch", "id", "tenant", "category", "action", "outcome", "severity", "program", "source",
    "host", "user", "src_ip", "dst_ip", "message", "labels",
];
const EXPECT_FIELDS: &[&str] = &["fires", "detections", "count", "entity", "severity", "reason"];

/// Reads a rule's `test` array.
pub(crate) fn parse_tests(value: &Value, origin: &str, rule: &str) -> Result<Vec<RuleTest>, RuleError> {
    let Value::Array(items) = value else {
        return Err(err(origin, Some(rule), "test", "must be an array of tables ([[rule.test]])"));
    };
    let mut tests = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("test[{i}].");
        let Value::Table(t) = item else {
            return Err(err(origin, Some(rule), format!("test[{i}]"), "must be a table ([[rule.test]])"));
        };
        let r = Reader { table: t, origin, rule: Some(rule), prefix: &prefix };
        r.check_known(TEST_FIELDS)?;
        let name = r.required_string("name")?;
        if tests.iter().any(|x: &RuleTest| x.name == name) {
            return Err(r.fail("name", format!("{name:?} names another test of this rule")));
        }
        let events = match t.get("events") {
            Some(Value::Array(evs)) if !evs.is_empty() => {
                let mut out = Vec::with_capacity(evs.len());
                let mut total = 0u64;
                for (j, ev) in evs.iter().enumerate() {
                    let eprefix = format!("{prefix}events[{j}].");
                    let Value::Table(et) = ev else {
                        return Err(r.fail(&format!("events[{j}]"), "must be a table"));
                    };
                    let te = test_event(&Reader { table: et, origin, rule: Some(rule), prefix: &eprefix })?;
                    total += te.repeat;
                    out.push(te);
                }
                if total > MAX_TEST_EVENTS {
                    return Err(r.fail("events", format!("more than {MAX_TEST_EVENTS} events")));
                }
                out
            }
            Some(Value::Array(_)) | None => return Err(r.fail("events", "missing (at least one event)")),
            Some(other) => return Err(r.wrong_type("events", "an array of tables", other)),
        };
        let expect = match r.table("expect")? {
            Some(et) => {
                expectation(&Reader { table: et, origin, rule: Some(rule), prefix: &format!("{prefix}expect.") })?
            }
            None => return Err(r.fail("expect", "missing (e.g. expect = { fires = true })")),
        };
        tests.push(RuleTest { name, events, expect });
    }
    Ok(tests)
}

fn test_event(r: &Reader) -> Result<TestEvent, RuleError> {
    r.check_known(EVENT_FIELDS)?;
    let at = r.required_string("at")?;
    let offset_ms = parse_offset(&at).map_err(|p| r.fail("at", p))?;
    let repeat = r.integer("repeat", 1, MAX_TEST_EVENTS as i64)?.unwrap_or(1) as u64;
    let every_ms = match r.string("every")? {
        Some(t) => parse_offset(&t).map_err(|p| r.fail("every", p))?,
        None if repeat > 1 => return Err(r.fail("every", "missing (the step between repeated events)")),
        None => 0,
    };
    let batch = r.integer("batch", 0, 1000)?.unwrap_or(0) as u64;
    let id = r.string("id")?;
    if id.is_some() && repeat > 1 {
        return Err(r.fail("id", "cannot be given with repeat"));
    }
    let mut e = Event {
        tenant: r.string("tenant")?.unwrap_or_else(|| "test".to_string()),
        source: r.string("source")?.unwrap_or_else(|| "test".to_string()),
        category: r.string("category")?,
        action: r.string("action")?,
        program: r.string("program")?,
        host: r.string("host")?,
        user: r.string("user")?,
        message: r.string("message")?,
        ..Event::default()
    };
    if let Some(o) = r.string("outcome")? {
        e.outcome = match o.to_ascii_lowercase().as_str() {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            "unknown" => Outcome::Unknown,
            _ => return Err(r.fail("outcome", format!("unknown outcome {o:?} (expected success, failure or unknown)"))),
        };
    }
    if let Some(s) = r.string("severity")? {
        e.severity = parse_severity(&s).ok_or_else(|| r.fail("severity", format!("unknown severity {s:?}")))?;
    }
    let address = |name: &str| -> Result<Option<String>, RuleError> {
        let Some(text) = r.string(name)? else { return Ok(None) };
        for k in [0, repeat - 1] {
            let value = substitute(&text, k);
            if value.trim().parse::<IpAddr>().is_err() {
                return Err(r.fail(name, format!("{value:?} is not an IP address")));
            }
        }
        Ok(Some(text))
    };
    let (src_ip, dst_ip) = (address("src_ip")?, address("dst_ip")?);
    if let Some(labels) = r.table("labels")? {
        for (k, v) in labels {
            match v {
                Value::String(s) => {
                    e.labels.insert(k.clone(), s.clone());
                }
                other => return Err(r.wrong_type(&format!("labels.{k}"), "a string", other)),
            }
        }
    }
    let normalize = e.message.is_some();
    Ok(TestEvent { offset_ms, repeat, every_ms, batch, id, template: e, src_ip, dst_ip, normalize })
}

fn expectation(r: &Reader) -> Result<Expect, RuleError> {
    r.check_known(EXPECT_FIELDS)?;
    let fires = r.bool("fires")?.ok_or_else(|| r.fail("fires", "missing (true or false)"))?;
    let expect = Expect {
        fires,
        detections: r.integer("detections", 0, 100_000)?.map(|n| n as usize),
        count: r.integer("count", 1, i64::MAX)?.map(|n| n as u64),
        entity: r.string("entity")?,
        severity: match r.string("severity")? {
            Some(s) => Some(parse_severity(&s).ok_or_else(|| r.fail("severity", format!("unknown severity {s:?}")))?),
            None => None,
        },
        reason: r.string("reason")?,
    };
    let details =
        expect.count.is_some() || expect.entity.is_some() || expect.severity.is_some() || expect.reason.is_some();
    if !fires && (details || expect.detections.is_some_and(|n| n > 0)) {
        return Err(r.fail("fires", "is false, so no detection details can be expected"));
    }
    if fires && expect.detections == Some(0) {
        return Err(r.fail("detections", "must be at least 1 when fires = true"));
    }
    Ok(expect)
}

/// The events of a test, by batch, in batch order.
pub fn materialize(test: &RuleTest) -> Vec<(u64, Vec<Event>)> {
    let mut batches: std::collections::BTreeMap<u64, Vec<Event>> = std::collections::BTreeMap::new();
    for (j, te) in test.events.iter().enumerate() {
        for k in 0..te.repeat {
            let at_ms = TEST_EPOCH_MS + te.offset_ms + te.every_ms * k as i64;
            let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
            let mut e = te.template.clone();
            e.id = te.id.clone().unwrap_or_else(|| format!("e{j}-{k}"));
            for slot in [&mut e.user, &mut e.host, &mut e.message] {
                if let Some(v) = slot.as_mut() {
                    *v = substitute(v, k);
                }
            }
            for v in e.labels.values_mut() {
                *v = substitute(v, k);
            }
            e.src_ip = te.src_ip.as_deref().and_then(|t| substitute(t, k).trim().parse().ok());
            e.dst_ip = te.dst_ip.as_deref().and_then(|t| substitute(t, k).trim().parse().ok());
            e.timestamp = at;
            // Arrival a second later, so `at` stays the event time even for an access-log message (whose own
            // time only replaces an event time equal to the arrival time, as for unwrapped lines at ingest).
            e.received_at = at + chrono::Duration::seconds(1);
            if te.normalize {
                crate::parse::normalize(&mut e);
            }
            batches.entry(te.batch).or_default().push(e);
        }
    }
    batches.into_iter().collect()
}

/// `{n}` → the repetition index.
fn substitute(text: &str, k: u64) -> String {
    if text.contains("{n}") {
        text.replace("{n}", &k.to_string())
    } else {
        text.to_string()
    }
}

fn describe(d: &Detection) -> String {
    format!("{} count {} severity {}: {}", d.entity, d.count, d.severity, d.reasons.join(" "))
}

/// Runs one test of `rule` (alone, enabled, with `engine`'s scoring). `Err` lists what did not hold.
pub async fn run_test(engine: &DetectionEngine, rule: &Rule, test: &RuleTest) -> Result<(), Vec<String>> {
    let mut rule = rule.clone();
    rule.enabled = true;
    let single = DetectionEngine { rules: vec![rule], scoring: engine.scoring.clone() };
    let store = MemoryWindows::default();
    let batches = materialize(test);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut detections: Vec<Detection> = Vec::new();
    for (_, events) in &batches {
        let mut events = events.clone();
        let now = events.iter().map(|e| e.timestamp).max().unwrap_or_default();
        let found = single.evaluate(&store, &mut events, now).await.map_err(|e| vec![format!("store error: {e}")])?;
        for d in found {
            if seen.insert(d.id.clone()) {
                detections.push(d);
            }
        }
    }
    let mut problems = Vec::new();
    let e = &test.expect;
    match (e.fires, detections.is_empty()) {
        (true, true) => problems.push("expected to fire, but there was no detection".to_string()),
        (false, false) => problems.push(format!(
            "expected no detection, got {}: {}",
            detections.len(),
            detections.iter().map(describe).collect::<Vec<_>>().join("; ")
        )),
        _ => {}
    }
    if let Some(n) = e.detections {
        if n != detections.len() {
            problems.push(format!("expected {n} detection(s), got {}", detections.len()));
        }
    }
    let details = e.count.is_some() || e.entity.is_some() || e.severity.is_some() || e.reason.is_some();
    if details && !detections.is_empty() {
        let ok = |d: &Detection| {
            e.count.is_none_or(|c| d.count == c)
                && e.entity.as_deref().is_none_or(|x| d.entity == x)
                && e.severity.is_none_or(|s| d.severity == s)
                && e.reason.as_deref().is_none_or(|x| d.reasons.iter().any(|r| r.contains(x)))
        };
        if !detections.iter().any(ok) {
            let mut want = Vec::new();
            if let Some(c) = e.count {
                want.push(format!("count {c}"));
            }
            if let Some(x) = &e.entity {
                want.push(format!("entity {x}"));
            }
            if let Some(s) = e.severity {
                want.push(format!("severity {s}"));
            }
            if let Some(x) = &e.reason {
                want.push(format!("a reason containing {x:?}"));
            }
            problems.push(format!(
                "no detection has {}; got: {}",
                want.join(", "),
                detections.iter().map(describe).collect::<Vec<_>>().join("; ")
            ));
        }
    }
    // Idempotency: the same batches again must not produce anything new.
    for (_, events) in &batches {
        let mut events = events.clone();
        let now = events.iter().map(|e| e.timestamp).max().unwrap_or_default();
        let found = single.evaluate(&store, &mut events, now).await.map_err(|e| vec![format!("store error: {e}")])?;
        for d in found.iter().filter(|d| !seen.contains(&d.id)) {
            problems.push(format!("replaying the events produced a new detection: {}", describe(d)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Runs the tests of every rule of `engine`, in rule order. Disabled rules' tests are reported as skipped.
pub async fn run_rule_tests(engine: &DetectionEngine) -> Vec<TestReport> {
    let mut reports = Vec::new();
    for rule in engine.rules() {
        for test in &rule.tests {
            let outcome = if !rule.enabled {
                TestOutcome::Skipped("the rule is disabled".to_string())
            } else {
                match run_test(engine, rule, test).await {
                    Ok(()) => TestOutcome::Passed,
                    Err(problems) => TestOutcome::Failed(problems),
                }
            };
            reports.push(TestReport {
                rule: rule.id.clone(),
                origin: rule.origin.clone(),
                test: test.name.clone(),
                outcome,
            });
        }
    }
    reports
}

/// A [`WindowStore`] in memory: what rule tests (and tools replaying small samples) evaluate against.
#[derive(Default)]
pub struct MemoryWindows {
    sets: Mutex<HashMap<String, BTreeSet<WindowEntry>>>,
}

impl MemoryWindows {
    /// Entries of every key, for inspection.
    pub fn snapshot(&self) -> HashMap<String, Vec<WindowEntry>> {
        let sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        sets.iter().map(|(k, v)| (k.clone(), v.iter().cloned().collect())).collect()
    }
}

#[async_trait]
impl WindowStore for MemoryWindows {
    async fn merge(&self, updates: &[WindowUpdate], _expires_at: Timestamp) -> StoreResult<Vec<Vec<WindowEntry>>> {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(updates
            .iter()
            .map(|u| {
                let set = sets.entry(u.key.clone()).or_default();
                set.extend(u.entries.iter().cloned());
                set.iter().cloned().collect()
            })
            .collect())
    }

    async fn prune(&self, removals: &[WindowUpdate]) -> StoreResult<()> {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
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

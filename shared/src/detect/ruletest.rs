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
use std::sync::Mutex;

use async_trait::async_trait;

use super::rule::substitute;
pub use super::rule::{Expect, RuleTest, TestEvent};
use super::{DetectionEngine, Rule};
use crate::error::StoreResult;
use crate::model::{Detection, Event, Timestamp};
use crate::ports::{WindowEntry, WindowStore, WindowUpdate};

/// Offsets count from this instant (2024-01-01T00:00:00Z).
pub const TEST_EPOCH_MS: i64 = 1_704_067_200_000;

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

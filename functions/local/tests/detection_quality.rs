//! The detection quality gate: a small labelled benchmark (`vigil simulate`) replayed through the real
//! pipeline (`vigil eval`'s replay: the `Host` of `vigil serve` over the embedded backend, clock from the data)
//! must reach precision ≥ 0.99 and recall ≥ 0.99 for every rule, with no alert at all on the benign-only
//! scenario; replaying the same logs again must change no alert, and delivering them shuffled by up to three
//! minutes must raise the same alerts.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use vigil::detect::DetectionEngine;
use vigil::model::Alert;
use vigil_local::eval::{
    load_lines, load_truth, render, score, shortfalls, shuffle, EvalReport, Pipeline, ReplayStats,
};
use vigil_local::simulate::{simulate, Scenario, SimOptions};

const SEED: u64 = 20_240_304;
const SCALE: f64 = 0.05;
/// Half an hour of event time per ingest request and queue drain: fewer, larger steps keep the debug build
/// fast; detections do not depend on the step (windows are in event time), only detection delays do.
const STEP: Duration = Duration::from_secs(1800);

/// Temporary directories in memory where there is such a file system: the embedded backend fsyncs every
/// commit, which is not what this test measures.
fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix("vigil-quality-").tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("temporary directory")
}

fn rules(engine: &DetectionEngine) -> Vec<String> {
    engine.rules().iter().filter(|r| r.enabled).map(|r| r.id.clone()).collect()
}

/// What identifies an alert regardless of when it was written.
fn identity(alerts: &[Alert]) -> BTreeSet<(String, String, String, String, String, u64)> {
    alerts
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                a.rule.clone(),
                a.entity.clone(),
                a.first_seen.to_rfc3339(),
                a.last_seen.to_rfc3339(),
                a.count,
            )
        })
        .collect()
}

fn rule_entities(alerts: &[Alert]) -> BTreeSet<(String, String)> {
    alerts.iter().map(|a| (a.rule.clone(), a.entity.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_reaches_the_quality_bar_and_replays_change_nothing() {
    let data = tempdir();
    let opts = SimOptions { seed: SEED, scale: SCALE, days: 1, scenario: Scenario::Mixed };
    simulate(&opts, data.path()).expect("simulate");
    let truth = load_truth(data.path()).expect("truth");
    let lines = load_lines(data.path(), &truth).expect("lines");
    let engine = Arc::new(DetectionEngine::builtin());

    // In order.
    let db = tempdir();
    let pipeline = Pipeline::open(Some(db.path()), engine.clone(), &truth.tenant, truth.start).expect("pipeline");
    let stats = pipeline.replay(&lines, STEP).await.expect("replay");
    assert_eq!((stats.accepted, stats.rejected), (truth.events.total, 0));
    let first = pipeline.alerts().await.expect("alerts");
    let scores = score(&truth, &first, &rules(&engine));
    let report = EvalReport {
        dir: "benchmark".into(),
        seed: SEED,
        scale: SCALE,
        days: 1,
        scenario: "mixed".into(),
        events: truth.events,
        replay: stats,
        scores: scores.clone(),
    };
    let table = render(&report);
    let short = shortfalls(&scores, 0.99, 0.99);
    assert!(short.is_empty(), "{}\n{table}", short.join("\n"));
    for row in &scores.rules {
        assert!(row.expected > 0, "the benchmark has no attack for {}: its recall is not measured\n{table}", row.rule);
    }
    assert_eq!(scores.attacks_detected, scores.attacks, "{table}");

    // The same logs again (a shipper retrying everything) must not change a single alert; and every line up to
    // three minutes late, in random order, into a fresh pipeline must raise the same alerts. Both at once.
    let mut shuffled = lines.clone();
    shuffle(&mut shuffled, 3, SEED);
    assert_ne!(shuffled.iter().map(|l| &l.text).collect::<Vec<_>>(), lines.iter().map(|l| &l.text).collect::<Vec<_>>());
    let db = tempdir();
    let other = Pipeline::open(Some(db.path()), engine.clone(), &truth.tenant, truth.start).expect("pipeline");
    let (again, late) = tokio::join!(pipeline.replay(&lines, STEP), other.replay(&shuffled, STEP));
    again.expect("second replay");
    late.expect("shuffled replay");
    let second = pipeline.alerts().await.expect("alerts");
    assert_eq!(identity(&second), identity(&first), "a replay changed the alerts");
    let third = other.alerts().await.expect("alerts");
    assert_eq!(rule_entities(&third), rule_entities(&first), "shuffled delivery raised different alerts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benign_only_scenario_raises_no_alert() {
    let data = tempdir();
    let opts = SimOptions { seed: SEED, scale: SCALE, days: 1, scenario: Scenario::Benign };
    simulate(&opts, data.path()).expect("simulate");
    let truth = load_truth(data.path()).expect("truth");
    assert!(truth.attacks.is_empty());
    let lines = load_lines(data.path(), &truth).expect("lines");
    let engine = Arc::new(DetectionEngine::builtin());
    let db = tempdir();
    let pipeline = Pipeline::open(Some(db.path()), engine.clone(), &truth.tenant, truth.start).expect("pipeline");
    let stats: ReplayStats = pipeline.replay(&lines, STEP).await.expect("replay");
    assert_eq!(stats.accepted, truth.events.total);
    let alerts = pipeline.alerts().await.expect("alerts");
    let described: Vec<String> =
        alerts.iter().map(|a| format!("{} {}: {}", a.rule, a.entity, a.reasons.join(" "))).collect();
    assert!(alerts.is_empty(), "false alarms on benign traffic:\n{}", described.join("\n"));
}

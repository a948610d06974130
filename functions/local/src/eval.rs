//! `vigil eval DIR`: replays a labelled data set (`vigil simulate`) through the real pipeline, in process, and
//! scores the alerts against its ground truth.
//!
//! # The replay
//! The same [`Host`] `vigil serve` runs, over the embedded backend in a fresh directory, with a clock that
//! follows the data. Every line of every file gets its event time (read with Vigil's own parsers); the lines
//! are merged in event-time order and cut into steps of `step` (60 s) of event time. For each step the clock is
//! set to the newest event time replayed so far, the syslog lines are POSTed to `/v1/syslog` and the NDJSON
//! lines to `/v1/events` with a sender token, and both queue mappings are drained. So ingest, score (rules,
//! windows in redb) and alert (dedup, suppression, tickets) all run exactly as in production, as if a shipper
//! sent each minute of logs as it was written. `--shuffle-minutes N` displaces every line by a random amount of
//! up to N minutes first (late and out-of-order delivery).
//!
//! # Matching alerts to the ground truth
//! An alert (rule R, entity E, evidence from `first_seen` to `last_seen`) matches an expectation of an attack
//! when the expectation names R and exactly E, and `[first_seen, last_seen]` overlaps the attack's
//! `[start, end]` (the event times of its first and last line). Then, per rule:
//! * expected — the required expectations naming the rule; detected — those matched by at least one alert;
//!   recall = detected / expected;
//! * alerts — the rule's alerts; true alerts — those matching any expectation (required, or allowed: a correct
//!   co-detection such as ssh_brute_force on a password spraying address); false alerts — the rest;
//!   precision = true / alerts;
//! * F1 = 2PR / (P + R); false alarms per million = false alerts × 10⁶ / benign events;
//! * detection delay of a detected expectation = `created_at` of its first matching alert (the replay clock,
//!   i.e. the newest event time replayed when the alert was opened) − the attack's start: the event time from
//!   the attack's first line to the alert, including up to one step of batching.
//!
//! Precision is undefined (shown as "–") for a rule without alerts, recall for a rule without expectations.
//! "overall" sums the counts over every rule (micro average).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use vigil::auth::{mint_hs256, Authenticator, Claims, Role};
use vigil::clock::{Clock, ManualClock};
use vigil::config::{AuthConfig, Config};
use vigil::detect::DetectionEngine;
use vigil::model::{Alert, Timestamp};
use vigil::parse::{parse_json_events, parse_syslog_lines, ParseContext};
use vigil::ports::PageRequest;

use crate::host::{Host, MappingSettings};
use crate::simulate::{GroundTruth, TRUTH_FILE};

/// Lines per ingest request at most (well under `VIGIL_MAX_EVENTS_PER_REQUEST` and the body limit).
const LINES_PER_REQUEST: usize = 5_000;

#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub dir: PathBuf,
    /// Event time replayed per step.
    pub step: Duration,
    /// Displace each line by up to this many minutes of event time (0: in order).
    pub shuffle_minutes: u64,
    pub shuffle_seed: u64,
    /// Keep the database here instead of in a temporary directory.
    pub data_dir: Option<PathBuf>,
}

impl EvalOptions {
    pub fn new(dir: impl Into<PathBuf>) -> EvalOptions {
        EvalOptions {
            dir: dir.into(),
            step: Duration::from_secs(60),
            shuffle_minutes: 0,
            shuffle_seed: 1,
            data_dir: None,
        }
    }
}

/// One log line with its event time.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub at: Timestamp,
    /// Replay order key (the event time, displaced when shuffling).
    pub key_ms: i64,
    pub ndjson: bool,
    pub text: String,
}

pub fn load_truth(dir: &Path) -> anyhow::Result<GroundTruth> {
    let path = dir.join(TRUTH_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (make a data set with `vigil simulate --out DIR`)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a ground-truth file", path.display()))
}

/// Reads every file of the data set and gives each line its event time, in event-time order.
pub fn load_lines(dir: &Path, truth: &GroundTruth) -> anyhow::Result<Vec<LogLine>> {
    // Year-less syslog dates resolve against this, as ingest resolves them against the arrival time.
    let reference = truth.end + chrono::Duration::hours(1);
    let ctx = ParseContext {
        tenant: &truth.tenant,
        received_at: reference,
        max_event_bytes: 1 << 20,
        max_events: 10,
        source: None,
        host: None,
    };
    let mut lines = Vec::new();
    for name in &truth.files {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let ndjson = text.trim_start().starts_with('{');
        let mut last = truth.start;
        for raw in text.lines().filter(|l| !l.trim().is_empty()) {
            let at = quick_time(raw, ndjson, reference)
                .or_else(|| {
                    let parsed = if ndjson { parse_json_events(raw, &ctx) } else { parse_syslog_lines(raw, &ctx) };
                    parsed.ok().and_then(|p| p.events.first().map(|e| e.timestamp))
                })
                .unwrap_or(last);
            last = at;
            lines.push(LogLine { at, key_ms: at.timestamp_millis(), ndjson, text: raw.to_string() });
        }
    }
    lines.sort_by_key(|l| l.key_ms);
    Ok(lines)
}

/// The event time of the common line shapes without a full parse: an RFC 3164 header, an access log's
/// `[10/Oct/2000:13:55:36 -0700]`, an NDJSON `timestamp`. `None` for anything else (the parsers decide).
fn quick_time(line: &str, ndjson: bool, reference: Timestamp) -> Option<Timestamp> {
    use chrono::{Datelike, NaiveDateTime};
    if ndjson {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let t = v.get("timestamp")?.as_str()?;
        return chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&Utc));
    }
    if let Some(rest) = line.strip_prefix('<') {
        let header = rest.split_once('>')?.1.get(..15)?;
        for year in [reference.year(), reference.year() - 1] {
            let at = NaiveDateTime::parse_from_str(&format!("{year} {header}"), "%Y %b %e %H:%M:%S").ok()?.and_utc();
            if at <= reference + chrono::Duration::days(1) {
                return Some(at);
            }
        }
        return None;
    }
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    chrono::DateTime::parse_from_str(&line[open + 1..close], "%d/%b/%Y:%H:%M:%S %z").ok().map(|t| t.with_timezone(&Utc))
}

/// Displaces every line by a random 0..`minutes` of event time and re-sorts: late, out-of-order delivery.
pub fn shuffle(lines: &mut [LogLine], minutes: u64, seed: u64) {
    if minutes == 0 {
        return;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let max = (minutes * 60_000) as i64;
    for l in lines.iter_mut() {
        l.key_ms = l.at.timestamp_millis() + rng.random_range(0..max);
    }
    lines.sort_by_key(|l| l.key_ms);
}

/// What one replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayStats {
    pub lines: usize,
    pub accepted: u64,
    pub rejected: u64,
    pub steps: u64,
    pub seconds: f64,
}

/// The pipeline under test: a [`Host`] over the embedded backend, with a clock the replay sets.
pub struct Pipeline {
    pub host: Arc<Host>,
    pub clock: ManualClock,
    token: String,
    tenant: String,
    _temp: Option<tempfile::TempDir>,
}

impl Pipeline {
    /// Opens the embedded backend in `data_dir` (a new temporary directory when `None`).
    pub fn open(
        data_dir: Option<&Path>,
        engine: Arc<DetectionEngine>,
        tenant: &str,
        start: Timestamp,
    ) -> anyhow::Result<Pipeline> {
        let (dir, temp) = match data_dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("vigil-eval-")
                    .tempdir()
                    .context("creating a temporary directory")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let clock = ManualClock::new(start);
        let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
        let backend = vigil::adapters::embedded::EmbeddedBackend::open(&dir, shared_clock.clone())
            .with_context(|| format!("opening the embedded database in {}", dir.display()))?;
        let mut config = Config::from_lookup(|_| None).map_err(anyhow::Error::msg)?;
        config.webhooks.clear();
        let secret = {
            let mut bytes = [0u8; 32];
            rand::rng().fill(&mut bytes);
            hex::encode(bytes)
        };
        config.auth = AuthConfig { secret: Some(secret.clone()), ..AuthConfig::default() };
        let auth = Arc::new(Authenticator::from_config(&config.auth).map_err(anyhow::Error::msg)?);
        let exp = (Utc::now().timestamp() as u64) + 7 * 24 * 3600;
        let claims = Claims {
            sub: "vigil-eval".into(),
            tenant: tenant.into(),
            role: Role::Admin,
            exp,
            iss: None,
            aud: None,
            scope: None,
        };
        let token = mint_hs256(&secret, &claims).map_err(anyhow::Error::msg)?;
        let host = Host::new(backend.ports(), &config, auth, engine, shared_clock);
        Ok(Pipeline { host, clock, token, tenant: tenant.to_string(), _temp: temp })
    }

    async fn post(&self, path: &str, content_type: &str, body: String, stats: &mut ReplayStats) -> anyhow::Result<()> {
        let req = http::Request::builder()
            .method(http::Method::POST)
            .uri(path)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(http::header::CONTENT_TYPE, content_type)
            .body(bytes::Bytes::from(body))?;
        let resp = self.host.handle_http(req).await;
        let status = resp.status();
        let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap_or_default();
        anyhow::ensure!(status.is_success(), "{path} answered {status}: {v}");
        stats.accepted += v["accepted"].as_u64().unwrap_or(0);
        stats.rejected += v["rejected"].as_array().map_or(0, |r| r.len() as u64);
        Ok(())
    }

    /// Replays `lines` (in their order) in steps of `step` of event time; see the module documentation.
    pub async fn replay(&self, lines: &[LogLine], step: Duration) -> anyhow::Result<ReplayStats> {
        let started = Instant::now();
        let mut stats = ReplayStats { lines: lines.len(), ..ReplayStats::default() };
        let step_ms = step.as_millis().max(1) as i64;
        let settings = MappingSettings { batch_size: 10, visibility: Duration::from_secs(180), wait: Duration::ZERO };
        let mut newest = self.clock.now();
        let mut i = 0;
        while i < lines.len() {
            let until = lines[i].key_ms - lines[i].key_ms.rem_euclid(step_ms) + step_ms;
            let mut j = i;
            while j < lines.len() && lines[j].key_ms < until {
                newest = newest.max(lines[j].at);
                j += 1;
            }
            self.clock.set(newest);
            let chunk = &lines[i..j];
            for ndjson in [false, true] {
                let picked: Vec<&str> = chunk.iter().filter(|l| l.ndjson == ndjson).map(|l| l.text.as_str()).collect();
                for part in picked.chunks(LINES_PER_REQUEST) {
                    let body = part.join("\n");
                    if ndjson {
                        self.post("/v1/events", "application/x-ndjson", body, &mut stats).await?;
                    } else {
                        self.post("/v1/syslog", "text/plain", body, &mut stats).await?;
                    }
                }
            }
            self.host.drain(settings).await.context("draining the queues")?;
            stats.steps += 1;
            i = j;
        }
        stats.seconds = started.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// Every alert of the tenant.
    pub async fn alerts(&self) -> anyhow::Result<Vec<Alert>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.host.ports.alerts.list_alerts(&self.tenant, &PageRequest { limit: 500, cursor }).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }
}

// ── Scoring ─────────────────────────────────────────────────────────────────────────────────────────────────

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RuleScore {
    pub rule: String,
    pub expected: u64,
    pub detected: u64,
    pub alerts: u64,
    pub true_alerts: u64,
    pub false_alerts: u64,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub false_alarms_per_million: f64,
    /// Detection delays in seconds: median and maximum over the detected expectations.
    pub delay_p50_s: Option<f64>,
    pub delay_max_s: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Missed {
    pub attack: String,
    pub kind: String,
    pub rule: String,
    pub entity: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FalseAlarm {
    pub rule: String,
    pub entity: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Scores {
    pub rules: Vec<RuleScore>,
    pub overall: RuleScore,
    /// Attacks all of whose required expectations were detected.
    pub attacks_detected: u64,
    pub attacks: u64,
    pub missed: Vec<Missed>,
    pub false_alarms: Vec<FalseAlarm>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub dir: String,
    pub seed: u64,
    pub scale: f64,
    pub days: u32,
    pub scenario: String,
    pub events: crate::simulate::EventCounts,
    pub replay: ReplayStats,
    #[serde(flatten)]
    pub scores: Scores,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn overlaps(alert: &Alert, start: Timestamp, end: Timestamp) -> bool {
    alert.first_seen <= end && alert.last_seen >= start
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Scores `alerts` against `truth`, one row per rule of `rules` (in that order) and per other alerting rule.
pub fn score(truth: &GroundTruth, alerts: &[Alert], rules: &[String]) -> Scores {
    let mut ids: Vec<String> = rules.to_vec();
    for a in alerts {
        if !ids.contains(&a.rule) {
            ids.push(a.rule.clone());
        }
    }
    for e in truth.attacks.iter().flat_map(|a| &a.expect) {
        if !ids.contains(&e.rule) {
            ids.push(e.rule.clone());
        }
    }
    let matches = |a: &Alert| {
        truth
            .attacks
            .iter()
            .any(|t| t.expect.iter().any(|e| e.rule == a.rule && e.entity == a.entity) && overlaps(a, t.start, t.end))
    };
    let benign = truth.events.benign.max(1) as f64;
    let mut rows = Vec::new();
    let mut missed = Vec::new();
    let mut false_alarms = Vec::new();
    let mut all_delays = Vec::new();
    for rule in &ids {
        let mut row = RuleScore { rule: rule.clone(), ..RuleScore::default() };
        let mut delays = Vec::new();
        for attack in &truth.attacks {
            for e in attack.expect.iter().filter(|e| e.required && &e.rule == rule) {
                row.expected += 1;
                let first = alerts
                    .iter()
                    .filter(|a| &a.rule == rule && a.entity == e.entity && overlaps(a, attack.start, attack.end))
                    .map(|a| a.created_at)
                    .min();
                match first {
                    Some(at) => {
                        row.detected += 1;
                        delays.push((at - attack.start).num_milliseconds() as f64 / 1000.0);
                    }
                    None => missed.push(Missed {
                        attack: attack.id.clone(),
                        kind: attack.kind.clone(),
                        rule: rule.clone(),
                        entity: e.entity.clone(),
                        start: attack.start,
                        end: attack.end,
                    }),
                }
            }
        }
        for a in alerts.iter().filter(|a| &a.rule == rule) {
            row.alerts += 1;
            if matches(a) {
                row.true_alerts += 1;
            } else {
                row.false_alerts += 1;
                false_alarms.push(FalseAlarm {
                    rule: a.rule.clone(),
                    entity: a.entity.clone(),
                    first_seen: a.first_seen,
                    last_seen: a.last_seen,
                    reasons: a.reasons.clone(),
                });
            }
        }
        row.precision = ratio(row.true_alerts, row.alerts);
        row.recall = ratio(row.detected, row.expected);
        row.f1 = f1(row.precision, row.recall, row.expected);
        row.false_alarms_per_million = row.false_alerts as f64 * 1e6 / benign;
        row.delay_max_s = delays.iter().copied().reduce(f64::max);
        all_delays.extend(delays.iter().copied());
        row.delay_p50_s = median(&mut delays);
        rows.push(row);
    }
    let mut overall = RuleScore { rule: "overall".into(), ..RuleScore::default() };
    for r in &rows {
        overall.expected += r.expected;
        overall.detected += r.detected;
        overall.alerts += r.alerts;
        overall.true_alerts += r.true_alerts;
        overall.false_alerts += r.false_alerts;
    }
    overall.precision = ratio(overall.true_alerts, overall.alerts);
    overall.recall = ratio(overall.detected, overall.expected);
    overall.f1 = f1(overall.precision, overall.recall, overall.expected);
    overall.false_alarms_per_million = overall.false_alerts as f64 * 1e6 / benign;
    overall.delay_max_s = all_delays.iter().copied().reduce(f64::max);
    overall.delay_p50_s = median(&mut all_delays);
    let attacks_detected = truth.attacks.iter().filter(|t| !missed.iter().any(|m| m.attack == t.id)).count() as u64;
    false_alarms.sort_by_key(|f| f.first_seen);
    Scores { rules: rows, overall, attacks_detected, attacks: truth.attacks.len() as u64, missed, false_alarms }
}

fn f1(p: Option<f64>, r: Option<f64>, expected: u64) -> Option<f64> {
    match (p, r) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        (None, Some(_)) if expected > 0 => Some(0.0),
        _ => None,
    }
}

/// Rows (rules and overall) falling short of the thresholds, described.
pub fn shortfalls(scores: &Scores, min_precision: f64, min_recall: f64) -> Vec<String> {
    let mut out = Vec::new();
    for r in scores.rules.iter().chain(std::iter::once(&scores.overall)) {
        if let Some(p) = r.precision.filter(|p| *p < min_precision) {
            out.push(format!("{}: precision {p:.3} < {min_precision} ({} false alerts)", r.rule, r.false_alerts));
        }
        if let Some(rc) = r.recall.filter(|rc| *rc < min_recall) {
            out.push(format!("{}: recall {rc:.3} < {min_recall} ({} of {} detected)", r.rule, r.detected, r.expected));
        }
    }
    out
}

/// Evaluates the data set in `opts.dir` with `engine`.
pub async fn run(opts: &EvalOptions, engine: Arc<DetectionEngine>) -> anyhow::Result<EvalReport> {
    let truth = load_truth(&opts.dir)?;
    let mut lines = load_lines(&opts.dir, &truth)?;
    shuffle(&mut lines, opts.shuffle_minutes, opts.shuffle_seed);
    let rules: Vec<String> = engine.rules().iter().filter(|r| r.enabled).map(|r| r.id.clone()).collect();
    let pipeline = Pipeline::open(opts.data_dir.as_deref(), engine, &truth.tenant, truth.start)?;
    let replay = pipeline.replay(&lines, opts.step).await?;
    let alerts = pipeline.alerts().await?;
    Ok(EvalReport {
        dir: opts.dir.display().to_string(),
        seed: truth.seed,
        scale: truth.scale,
        days: truth.days,
        scenario: format!("{:?}", truth.scenario).to_ascii_lowercase(),
        events: truth.events,
        replay,
        scores: score(&truth, &alerts, &rules),
    })
}

// ── Output ──────────────────────────────────────────────────────────────────────────────────────────────────

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.3}"))
}

fn secs(v: Option<f64>) -> String {
    match v {
        None => "–".to_string(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) if s < 7200.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{:.1} h", s / 3600.0),
    }
}

/// The report as a Markdown table plus the misses and false alarms.
pub fn render(report: &EvalReport) -> String {
    let s = &report.scores;
    let mut out = format!(
        "data set {}: seed {}, scale {}, {} attack day(s) after a benign day, scenario {}\n\
         {} events ({} benign, {} attack), {} attacks; replayed in {} steps in {:.1} s ({} accepted, {} rejected)\n\n",
        report.dir,
        report.seed,
        report.scale,
        report.days,
        report.scenario,
        report.events.total,
        report.events.benign,
        report.events.attack,
        s.attacks,
        report.replay.steps,
        report.replay.seconds,
        report.replay.accepted,
        report.replay.rejected,
    );
    out.push_str("| rule | expected | detected | alerts | false | precision | recall | F1 | false alarms / M benign | delay p50 | delay max |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in s.rules.iter().chain(std::iter::once(&s.overall)) {
        let name = if r.rule == "overall" { "**overall**".to_string() } else { format!("`{}`", r.rule) };
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |\n",
            r.expected,
            r.detected,
            r.alerts,
            r.false_alerts,
            pct(r.precision),
            pct(r.recall),
            pct(r.f1),
            r.false_alarms_per_million,
            secs(r.delay_p50_s),
            secs(r.delay_max_s),
        ));
    }
    out.push_str(&format!("\nattacks detected: {} of {}\n", s.attacks_detected, s.attacks));
    if !s.missed.is_empty() {
        out.push_str(&format!("\nmissed ({}):\n", s.missed.len()));
        for m in s.missed.iter().take(30) {
            out.push_str(&format!("  {} {} {} {} ({} – {})\n", m.attack, m.kind, m.rule, m.entity, m.start, m.end));
        }
    }
    if !s.false_alarms.is_empty() {
        out.push_str(&format!("\nfalse alarms ({}):\n", s.false_alarms.len()));
        for f in s.false_alarms.iter().take(30) {
            out.push_str(&format!(
                "  {} {} {} – {}: {}\n",
                f.rule,
                f.entity,
                f.first_seen,
                f.last_seen,
                f.reasons.join(" ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Attack, EventCounts, Expectation, Scenario};

    fn t(min: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_700_000_000 + min * 60, 0).unwrap_or_default()
    }

    fn alert(rule: &str, entity: &str, from: i64, to: i64, created: i64) -> Alert {
        Alert {
            id: format!("{rule}{entity}{from}"),
            tenant: "bench".into(),
            rule: rule.into(),
            rule_name: rule.into(),
            entity: entity.into(),
            severity: vigil::model::Severity::High,
            score: 50,
            mitre: vec![],
            reasons: vec!["r".into()],
            count: 1,
            first_seen: t(from),
            last_seen: t(to),
            suppress_until: t(to + 60),
            evidence: vec![],
            ticket_id: "T".into(),
            created_at: t(created),
            updated_at: t(created),
            runbook: None,
            falsepositives: vec![],
            references: vec![],
        }
    }

    fn truth() -> GroundTruth {
        let exp = |rule: &str, entity: &str, required: bool| Expectation {
            rule: rule.into(),
            entity: entity.into(),
            required,
        };
        GroundTruth {
            version: 1,
            seed: 1,
            scale: 1.0,
            days: 1,
            scenario: Scenario::Mixed,
            tenant: "bench".into(),
            start: t(0),
            end: t(2000),
            files: vec![],
            events: EventCounts { total: 1_000_100, benign: 1_000_000, attack: 100 },
            attacks: vec![
                Attack {
                    id: "a1".into(),
                    kind: "password_spraying".into(),
                    description: String::new(),
                    start: t(100),
                    end: t(110),
                    events: 50,
                    expect: vec![
                        exp("password_spraying", "src_ip=1.2.3.4", true),
                        exp("ssh_brute_force", "src_ip=1.2.3.4", false),
                    ],
                },
                Attack {
                    id: "a2".into(),
                    kind: "fast_brute_force".into(),
                    description: String::new(),
                    start: t(500),
                    end: t(505),
                    events: 50,
                    expect: vec![exp("ssh_brute_force", "src_ip=5.6.7.8", true)],
                },
            ],
        }
    }

    #[test]
    fn alerts_match_by_rule_entity_and_overlapping_time() {
        let alerts = vec![
            alert("password_spraying", "src_ip=1.2.3.4", 101, 104, 104), // true, detects a1
            alert("ssh_brute_force", "src_ip=1.2.3.4", 100, 102, 102),   // allowed co-detection: true
            alert("ssh_brute_force", "src_ip=1.2.3.4", 300, 302, 302),   // right entity, wrong time: false
            alert("ssh_brute_force", "src_ip=9.9.9.9", 500, 502, 502),   // wrong entity: false
            alert("web_scanning", "src_ip=1.2.3.4", 100, 102, 103),      // rule not expected: false
        ];
        let rules = vec!["ssh_brute_force".to_string(), "password_spraying".to_string()];
        let s = score(&truth(), &alerts, &rules);
        let row = |id: &str| s.rules.iter().find(|r| r.rule == id).cloned().unwrap();
        let spray = row("password_spraying");
        assert_eq!((spray.expected, spray.detected, spray.alerts, spray.false_alerts), (1, 1, 1, 0));
        assert_eq!(spray.delay_p50_s, Some(240.0), "created 4 min after the attack's first line");
        let brute = row("ssh_brute_force");
        assert_eq!((brute.expected, brute.detected, brute.alerts, brute.true_alerts), (1, 0, 3, 1));
        assert_eq!(brute.recall, Some(0.0));
        assert_eq!(brute.precision, Some(1.0 / 3.0));
        assert_eq!(brute.false_alarms_per_million, 2.0);
        let web = row("web_scanning");
        assert_eq!((web.expected, web.precision, web.recall, web.f1), (0, Some(0.0), None, None));
        assert_eq!((s.overall.expected, s.overall.detected, s.overall.alerts, s.overall.false_alerts), (2, 1, 5, 3));
        assert_eq!((s.attacks_detected, s.attacks), (1, 2));
        assert_eq!(s.missed.len(), 1);
        assert_eq!(s.missed[0].attack, "a2");
        assert_eq!(shortfalls(&s, 0.99, 0.99).len(), 5, "{:?}", shortfalls(&s, 0.99, 0.99));
        let table = render(&EvalReport {
            dir: "d".into(),
            seed: 1,
            scale: 1.0,
            days: 1,
            scenario: "mixed".into(),
            events: truth().events,
            replay: ReplayStats::default(),
            scores: s,
        });
        assert!(
            table.contains("| `password_spraying` | 1 | 1 | 1 | 0 | 1.000 | 1.000 | 1.000 | 0.0 | 4.0 min | 4.0 min |"),
            "{table}"
        );
    }

    #[test]
    fn no_alerts_and_no_attacks_is_no_shortfall() {
        let mut truth = truth();
        truth.attacks.clear();
        let s = score(&truth, &[], &["ssh_brute_force".to_string()]);
        assert!(shortfalls(&s, 0.99, 0.99).is_empty());
        assert_eq!(s.rules[0].precision, None);
    }
}

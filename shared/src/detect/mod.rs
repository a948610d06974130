//! The detection engine: rules loaded from TOML (the built-in set ships as `rules/builtin.toml`), evaluated
//! over batches of normalised events with windowed state kept behind the [`WindowStore`] port. Rules carry
//! their own tests (`[[rule.test]]`, run by [`ruletest`]).
//!
//! # Semantics
//! * **State.** Each stateful rule keeps, per `(tenant, rule, entity)`, a set of [`WindowEntry`]s under the key
//!   `{tenant}#{rule_id}#{entity}` (for example `acme#ssh_brute_force#src_ip=203.0.113.7`). The tag of an
//!   entry is empty for `threshold` (`reset` for its reset events), the counted value for `distinct`, the
//!   value for `first_seen`, the signal's name for `risk` (an event matching several signals adds one entry
//!   per signal), and `failure`/`success` for `sequence`. All keys of one [`DetectionEngine::evaluate`] call go
//!   to the store in a single `merge`; merging is a set union, so a retried batch changes nothing, and arrival
//!   order across calls does not change the state.
//! * **Windows** are closed intervals of event time: an event exactly `W` after the first is inside, one
//!   `W + 1 ms` after is not. A sequence looks at `[success − W, success]`. A `threshold` rule with `reset`
//!   or `burst` cuts a window short at the first reset after its start, and before the first point at or after
//!   its start where the burst rate is reached; both cuts are functions of event times alone.
//! * **Firing.** A rule fires for a key when a window satisfying its condition holds at least one entry of
//!   this call. Of those windows the one with the highest metric (events, distinct values, failures or risk
//!   score), then the most members, then the earliest, is the detection's: at most one detection per key per
//!   call, with an id hashed from tenant, rule, entity and the window's first and last event ids, so a retry
//!   reproduces it. `first_seen` instead gives one detection per value whose earliest sighting is in this
//!   call, the entity extended with the value (`user=root,src_ip=198.51.100.7`) and the id hashed from that
//!   first sighting alone.
//! * **Order.** Counting conditions are monotone, so the same entries give the same detections whatever order
//!   and batches they arrive in. Two conditions are not: a `reset` (or a `burst`) that arrives after the run it
//!   cuts has already fired does not retract that detection, and a `first_seen` value is judged against what
//!   the key holds when its earliest sighting arrives (history arriving later does not un-fire it). Both
//!   matter only for events delivered out of order across the cut, or a `learning` period late.
//! * **Bounded state.** A call evaluates everything the key holds plus its new entries, then prunes from the
//!   store the entries older than `newest − 2W`, where `newest` is the newest entry the call brings for the
//!   key, and keeps at most [`MAX_ENTRIES_PER_KEY`] (the oldest go; a call never merges more new entries than
//!   that into one key). So a batch spanning hours is evaluated whole, and a replay of old events finds the
//!   context they had the first time (so the same windows and detection ids); an event arriving after calls
//!   with events more than `2W` newer than it is evaluated without the entries those calls pruned. `first_seen` keys forget values not seen for `W` (before evaluating)
//!   and keep only the first and last sighting of each value. The merge's `expires_at` is
//!   `max(newest event, now) + 2 × the longest window`, so the state of replayed old logs lives while they flow.
//! * **Scoring.** Every event gets a base score from its own signals (`[scoring]`: severity, failure,
//!   privileged user) plus the `score` of each rule that fired in a window holding it, capped at 100; its risk
//!   band, reasons, rule ids and ATT&CK techniques follow. A detection's score is the highest score among this
//!   call's events in its window.

mod load;
mod rule;
pub mod ruletest;
pub mod sigma;
mod window;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{StoreError, StoreResult};
use crate::model::{Detection, Event, Outcome, Risk, Severity, Timestamp};
use crate::ports::{WindowEntry, WindowStore, WindowUpdate};

pub use load::{format_duration, parse_duration, parse_offset};
pub use rule::{
    Burst, Field, GroupKey, Matcher, Rule, RuleError, RuleKind, Scoring, SeverityPolicy, Signal, DEFAULT_SUPPRESSION,
    MAX_ENTRIES_PER_KEY, MAX_WINDOW,
};

use load::{build_rule, build_scoring, parse_file};
use rule::{render, Entity};
use window::{analyse, risk_score, Analysis, Hit, TAG_FAILURE, TAG_RESET, TAG_SUCCESS};

/// The shipped rules.
pub const BUILTIN_RULES: &str = include_str!("../../rules/builtin.toml");
const BUILTIN_ORIGIN: &str = "rules/builtin.toml";
/// Most event ids a detection carries as evidence (the first and last half of its window).
pub const EVIDENCE_CAP: usize = 20;

/// Rules plus scoring weights; cheap to share, immutable once built.
#[derive(Clone, Debug)]
pub struct DetectionEngine {
    rules: Vec<Rule>,
    scoring: Scoring,
}

/// One key's new entries in this call, each with the indices of the events that produced it.
struct Pending {
    rule: usize,
    tenant: String,
    entity: Entity,
    new: BTreeMap<WindowEntry, Vec<usize>>,
}

/// One key after merging: its retained entries, sorted, and what the rule found in them.
struct Evaluated {
    pending: Pending,
    entries: Vec<WindowEntry>,
    is_new: Vec<bool>,
    analysis: Analysis,
}

impl DetectionEngine {
    /// The built-in rules. Panics only if the embedded file is broken, which a unit test rules out.
    pub fn builtin() -> DetectionEngine {
        DetectionEngine::from_toml(BUILTIN_RULES, BUILTIN_ORIGIN)
            .unwrap_or_else(|e| panic!("the built-in rules do not load: {e}"))
    }

    /// Loads a complete rules file; `origin` (usually its path) names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<DetectionEngine, RuleError> {
        let raw = parse_file(text, origin)?;
        let mut rules: Vec<Rule> =
            raw.rules.into_iter().map(|(id, table)| build_rule(&id, table, origin)).collect::<Result<_, _>>()?;
        if let Some(table) = raw.sigma {
            sigma::extend(&mut rules, &table, origin)?;
        }
        let scoring = match raw.scoring {
            Some(table) => build_scoring(&table, origin, &Scoring::default())?,
            None => Scoring::default(),
        };
        Ok(DetectionEngine { rules, scoring })
    }

    /// Applies a user's rules file. A rule with a new id is added (it must be complete). A rule with a known id
    /// replaces it outright when it gives `kind`; without `kind` it patches only the fields it gives (so
    /// `id = "ssh_brute_force"` with `threshold = 20`, or with `enabled = false`, is a whole override).
    /// A `[scoring]` table patches the weights the same way.
    pub fn with_overrides(mut self, text: &str, origin: &str) -> Result<DetectionEngine, RuleError> {
        let raw = parse_file(text, origin)?;
        if let Some(table) = raw.sigma {
            sigma::extend(&mut self.rules, &table, origin)?;
        }
        for (id, table) in raw.rules {
            match self.rules.iter().position(|r| r.id == id) {
                // A Sigma rule's detection comes from its YAML; a patch changes only what Sigma does not say.
                Some(i) if self.rules[i].sigma.is_some() && !table.contains_key("kind") => {
                    self.rules[i] = sigma::patch(&self.rules[i], table, origin)?;
                }
                Some(i) => {
                    let merged = if table.contains_key("kind") {
                        table
                    } else {
                        let mut merged = self.rules[i].table.clone();
                        merged.extend(table);
                        merged
                    };
                    self.rules[i] = build_rule(&id, merged, origin)?;
                }
                None => self.rules.push(build_rule(&id, table, origin)?),
            }
        }
        if let Some(table) = raw.scoring {
            self.scoring = build_scoring(&table, origin, &self.scoring)?;
        }
        Ok(self)
    }

    /// Every rule, disabled ones included (see [`Rule::enabled`]).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn scoring(&self) -> &Scoring {
        &self.scoring
    }

    /// How long alerts of this rule absorb later detections; 60 minutes for unknown rules.
    pub fn suppression(&self, rule_id: &str) -> Duration {
        self.rule(rule_id).map_or(DEFAULT_SUPPRESSION, |r| r.suppression)
    }

    /// Runs every rule over `events` (already normalised, possibly of several tenants, in any order), merging
    /// window state through `store`, fills each event's score/risk/reasons/rules/mitre, and returns detections.
    /// On a store error nothing is filled in; the whole call can be retried.
    pub async fn evaluate<W: WindowStore + ?Sized>(
        &self,
        store: &W,
        events: &mut [Event],
        now: Timestamp,
    ) -> StoreResult<Vec<Detection>> {
        // 1. Which key each (rule, event) belongs to, and the entry it adds.
        let mut stateful: BTreeMap<String, Pending> = BTreeMap::new();
        let mut passthrough: BTreeMap<String, Pending> = BTreeMap::new();
        for (ri, rule) in self.rules.iter().enumerate().filter(|(_, r)| r.enabled) {
            for (ei, event) in events.iter().enumerate() {
                if !rule.applies(event) {
                    continue;
                }
                let tags: Vec<String> = match &rule.kind {
                    RuleKind::Passthrough => vec![String::new()],
                    RuleKind::Threshold { reset, .. } => {
                        if reset.as_ref().is_some_and(|r| r.matches(event)) {
                            vec![TAG_RESET.to_string()]
                        } else {
                            vec![String::new()]
                        }
                    }
                    RuleKind::Distinct { field, .. } | RuleKind::FirstSeen { field, .. } => match field.value(event) {
                        Some(v) => vec![v],
                        None => continue,
                    },
                    RuleKind::Sequence { failure, success, .. } => {
                        if failure.matches(event) {
                            vec![TAG_FAILURE.to_string()]
                        } else if success.matches(event) {
                            vec![TAG_SUCCESS.to_string()]
                        } else {
                            continue;
                        }
                    }
                    RuleKind::Risk { signals, .. } => {
                        signals.iter().filter(|s| s.matcher.matches(event)).map(|s| s.name.clone()).collect()
                    }
                    RuleKind::Temporal(spec) => spec.tags(event),
                };
                if tags.is_empty() {
                    continue;
                }
                let Some(entity) = rule.entity(event) else { continue };
                let key = format!("{}#{}#{}", event.tenant, rule.id, entity.key);
                let map = if rule.kind == RuleKind::Passthrough { &mut passthrough } else { &mut stateful };
                let pending = map.entry(key).or_insert_with(|| Pending {
                    rule: ri,
                    tenant: event.tenant.clone(),
                    entity,
                    new: BTreeMap::new(),
                });
                for tag in tags {
                    let entry =
                        WindowEntry { at_ms: event.timestamp.timestamp_millis(), event_id: event.id.clone(), tag };
                    pending.new.entry(entry).or_default().push(ei);
                }
            }
        }

        // 2. One merge for every key. A key never takes more than the cap of new entries (the newest).
        let mut updates = Vec::with_capacity(stateful.len());
        let mut newest_ms = i64::MIN;
        let mut longest = Duration::ZERO;
        for (key, p) in &stateful {
            let entries: Vec<WindowEntry> = p.new.keys().rev().take(MAX_ENTRIES_PER_KEY).cloned().collect();
            newest_ms = newest_ms.max(entries[0].at_ms);
            longest = longest.max(self.rules[p.rule].window().unwrap_or_default());
            updates.push(WindowUpdate { key: key.clone(), entries });
        }
        let merged = if updates.is_empty() {
            Vec::new()
        } else {
            let base = now.max(timestamp(newest_ms));
            let expires_at = base + chrono::Duration::from_std(longest * 2).unwrap_or(chrono::Duration::days(14));
            let merged = store.merge(&updates, expires_at).await?;
            if merged.len() != updates.len() {
                return Err(StoreError::Permanent(format!(
                    "window store answered {} sets for {} updates",
                    merged.len(),
                    updates.len()
                )));
            }
            merged
        };

        // 3. Prune and cap each key, then look for firing windows.
        let mut removals = Vec::new();
        let mut evaluated = Vec::with_capacity(stateful.len() + passthrough.len());
        for ((key, pending), mut entries) in stateful.into_iter().zip(merged) {
            let rule = &self.rules[pending.rule];
            let w = rule.window().unwrap_or_default().as_millis() as i64;
            entries.sort();
            entries.dedup();
            // What the key holds now, minus the stale and anything over the cap.
            let reference = pending.new.keys().map(|e| e.at_ms).max().unwrap_or(i64::MIN);
            let removed = Self::prunable(&rule.kind, w, &entries, reference);
            if !removed.is_empty() {
                removals.push(WindowUpdate { key, entries: removed });
            }
            // A first-seen value not sighted within the window is forgotten, for this evaluation too.
            if let (RuleKind::FirstSeen { .. }, Some(newest)) = (&rule.kind, entries.last().map(|e| e.at_ms)) {
                entries.retain(|e| e.at_ms >= newest.saturating_sub(w));
            }
            // Evaluate everything known, including new entries the cap kept out of the store.
            if pending.new.len() > MAX_ENTRIES_PER_KEY {
                entries.extend(pending.new.keys().cloned());
                entries.sort();
                entries.dedup();
            }
            let is_new: Vec<bool> = entries.iter().map(|e| pending.new.contains_key(e)).collect();
            let analysis = analyse(&rule.kind, &entries, &is_new);
            evaluated.push(Evaluated { pending, entries, is_new, analysis });
        }
        if !removals.is_empty() {
            // Housekeeping only: the next call prunes again, so a failure here must not lose detections.
            if let Err(e) = store.prune(&removals).await {
                tracing::warn!(error = %e, keys = removals.len(), "pruning detection windows failed");
            }
        }
        for (_, pending) in passthrough {
            let entries: Vec<WindowEntry> = pending.new.keys().cloned().collect();
            let is_new = vec![true; entries.len()];
            let analysis = analyse(&RuleKind::Passthrough, &entries, &is_new);
            evaluated.push(Evaluated { pending, entries, is_new, analysis });
        }
        evaluated.sort_by_key(|e| e.pending.rule);

        // 4. Which rules flag each event, with the reason rendered for the best window holding it.
        let mut flags: Vec<Vec<(usize, String)>> = vec![Vec::new(); events.len()];
        for ev in &evaluated {
            let mut rendered: HashMap<(usize, usize), String> = HashMap::new();
            for (k, hit) in ev.analysis.per_entry.iter().enumerate() {
                let Some(hit) = hit else { continue };
                let reason =
                    rendered.entry((hit.lo, hit.anchor)).or_insert_with(|| self.reason(ev, hit, events)).clone();
                for &ei in ev.pending.new.get(&ev.entries[k]).into_iter().flatten() {
                    flags[ei].push((ev.pending.rule, reason.clone()));
                }
            }
        }

        // 5. Score every event.
        for (event, mut flagged) in events.iter_mut().zip(flags) {
            flagged.sort_by_key(|(rule, _)| *rule);
            flagged.dedup_by_key(|(rule, _)| *rule);
            self.score_event(event, &flagged);
        }

        // 6. One detection per firing key.
        let mut detections = Vec::new();
        for ev in &evaluated {
            for hit in &ev.analysis.fired {
                detections.push(self.detection(ev, hit, events, now));
            }
        }
        Ok(detections)
    }

    /// The entries of one key (sorted, deduplicated) that the store no longer needs: those older than twice
    /// the window before `reference`, the newest entry this call brings (for `first_seen`: older than the
    /// window, i.e. values not seen for that long are forgotten, and of each value only its first and last
    /// sighting are kept), then the oldest of what remains beyond [`MAX_ENTRIES_PER_KEY`]. Pruning relative to
    /// the call's own events, not to the newest the key holds, means a call replaying old events keeps the
    /// context they had the first time, so a replay finds the same windows (and detection ids) again.
    fn prunable(kind: &RuleKind, w: i64, entries: &[WindowEntry], reference: i64) -> Vec<WindowEntry> {
        if entries.is_empty() {
            return Vec::new();
        }
        let first_seen = matches!(kind, RuleKind::FirstSeen { .. });
        let horizon = if first_seen { w } else { w.saturating_mul(2) };
        let cutoff = reference.saturating_sub(horizon);
        let stale = entries.partition_point(|e| e.at_ms < cutoff);
        let mut removed: Vec<WindowEntry> = entries[..stale].to_vec();
        let mut kept: Vec<&WindowEntry> = entries[stale..].iter().collect();
        if first_seen {
            let mut span: HashMap<&str, (usize, usize)> = HashMap::new();
            for (k, e) in kept.iter().enumerate() {
                span.entry(e.tag.as_str()).or_insert((k, k)).1 = k;
            }
            let mut ends = Vec::with_capacity(kept.len());
            for (k, e) in kept.iter().copied().enumerate() {
                let (first, last) = span[e.tag.as_str()];
                if k == first || k == last {
                    ends.push(e);
                } else {
                    removed.push(e.clone());
                }
            }
            kept = ends;
        }
        let over = kept.len().saturating_sub(MAX_ENTRIES_PER_KEY);
        removed.extend(kept[..over].iter().map(|e| (*e).clone()));
        removed
    }

    fn score_event(&self, event: &mut Event, flagged: &[(usize, String)]) {
        let s = &self.scoring;
        let mut score = 0u32;
        let mut reasons = Vec::new();
        let severity = s.severity_weight(event.severity);
        if severity > 0 {
            score += u32::from(severity);
            reasons.push(format!("Source reported severity {}", event.severity));
        }
        if event.outcome == Outcome::Failure && s.failure > 0 {
            score += u32::from(s.failure);
            reasons.push(match &event.action {
                Some(action) => format!("Failed {action}"),
                None => "Failed attempt".to_string(),
            });
        }
        if let Some(user) = event.user.as_deref().filter(|u| s.privileged > 0 && s.is_privileged(u)) {
            score += u32::from(s.privileged);
            reasons.push(format!("Privileged account {user}"));
        }
        let mut rule_ids = Vec::new();
        let mut mitre: Vec<String> = Vec::new();
        for (ri, reason) in flagged {
            let rule = &self.rules[*ri];
            score += u32::from(rule.score);
            reasons.push(reason.clone());
            rule_ids.push(rule.id.clone());
            for t in &rule.mitre {
                if !mitre.contains(t) {
                    mitre.push(t.clone());
                }
            }
        }
        let score = score.min(100) as u8;
        event.score = Some(score);
        event.risk = Some(Risk::from_score(score));
        event.reasons = reasons;
        event.rules = rule_ids;
        event.mitre = mitre;
    }

    /// Indices of this call's events that are members of `hit`.
    fn batch_members(ev: &Evaluated, hit: &Hit) -> Vec<usize> {
        hit.members(&ev.entries)
            .filter(|&k| ev.is_new[k])
            .flat_map(|k| ev.pending.new.get(&ev.entries[k]).into_iter().flatten().copied())
            .collect()
    }

    fn hit_severity(&self, ev: &Evaluated, hit: &Hit, events: &[Event]) -> Severity {
        match self.rules[ev.pending.rule].severity {
            SeverityPolicy::Fixed(s) => s,
            SeverityPolicy::Event => {
                Self::batch_members(ev, hit).into_iter().map(|i| events[i].severity).max().unwrap_or_default()
            }
        }
    }

    fn reason(&self, ev: &Evaluated, hit: &Hit, events: &[Event]) -> String {
        let rule = &self.rules[ev.pending.rule];
        let members: Vec<&WindowEntry> = hit.members(&ev.entries).map(|k| &ev.entries[k]).collect();
        let (first, last) = (members[0].at_ms, members[members.len() - 1].at_ms);
        render(&rule.reason, |name| match name {
            "count" => hit.count.to_string(),
            "entity" => ev.pending.entity.display.clone(),
            "group_by" => rule.group_by.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            "rule" => rule.id.clone(),
            "name" => rule.name.clone(),
            "severity" => self.hit_severity(ev, hit, events).to_string(),
            "first_seen" => timestamp(first).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "last_seen" => timestamp(last).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "window" => rule.window().map(format_duration).unwrap_or_default(),
            "threshold" => rule.threshold().map(|t| t.to_string()).unwrap_or_default(),
            "distinct" | "failures" | "score" => hit.metric.to_string(),
            "distinct_field" | "field" => match &rule.kind {
                RuleKind::Distinct { field, .. } | RuleKind::FirstSeen { field, .. } => field.to_string(),
                _ => String::new(),
            },
            "value" => ev.entries[hit.anchor].tag.clone(),
            "known" => {
                let value = ev.entries[hit.anchor].tag.as_str();
                // Values sighted before this one's first sighting.
                let mut known: Vec<&str> =
                    ev.entries[..hit.anchor].iter().map(|e| e.tag.as_str()).filter(|t| *t != value).collect();
                known.sort_unstable();
                known.dedup();
                known.len().to_string()
            }
            "learning" => match &rule.kind {
                RuleKind::FirstSeen { learning, .. } => format_duration(*learning),
                _ => String::new(),
            },
            "signals" => match &rule.kind {
                RuleKind::Risk { signals, .. } => Self::signal_breakdown(signals, ev, hit),
                _ => String::new(),
            },
            other => format!("{{{other}}}"),
        })
    }

    /// `failed login ×6 (+30), refused web request ×10 (+30)`: each signal present in the window with its
    /// count and capped contribution, largest first.
    fn signal_breakdown(signals: &[Signal], ev: &Evaluated, hit: &Hit) -> String {
        let mut counts = vec![0u64; signals.len()];
        for k in hit.members(&ev.entries) {
            if let Some(s) = signals.iter().position(|s| s.name == ev.entries[k].tag) {
                counts[s] += 1;
            }
        }
        let mut parts: Vec<(u64, &str, u64)> = signals
            .iter()
            .zip(&counts)
            .filter(|(_, &c)| c > 0)
            .map(|(s, &c)| (risk_score(std::slice::from_ref(s), &[c]).0, s.name.as_str(), c))
            .collect();
        parts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        parts.iter().map(|(points, name, c)| format!("{name} ×{c} (+{points})")).collect::<Vec<_>>().join(", ")
    }

    fn detection(&self, ev: &Evaluated, hit: &Hit, events: &[Event], now: Timestamp) -> Detection {
        let rule = &self.rules[ev.pending.rule];
        let members: Vec<&WindowEntry> = hit.members(&ev.entries).map(|k| &ev.entries[k]).collect();
        let (first, last) = (members[0], members[members.len() - 1]);
        let (entity, id) = match &rule.kind {
            // One detection per new value, identified by the value's first sighting alone, so whichever call
            // (and however many later sightings) it comes with, the id is the same.
            RuleKind::FirstSeen { field, .. } => {
                let entity = format!("{},{}={}", ev.pending.entity.key, field, ev.entries[hit.anchor].tag);
                let id = detection_id(&ev.pending.tenant, &rule.id, &entity, &first.event_id, &first.event_id);
                (entity, id)
            }
            _ => {
                let entity = ev.pending.entity.key.clone();
                let id = detection_id(&ev.pending.tenant, &rule.id, &entity, &first.event_id, &last.event_id);
                (entity, id)
            }
        };
        let entity = &entity;

        let mut ids: Vec<&str> = Vec::with_capacity(members.len());
        for m in &members {
            if !ids.contains(&m.event_id.as_str()) {
                ids.push(&m.event_id);
            }
        }
        let evidence: Vec<String> = if ids.len() > EVIDENCE_CAP {
            let half = EVIDENCE_CAP / 2;
            ids[..half].iter().chain(&ids[ids.len() - (EVIDENCE_CAP - half)..]).map(|s| s.to_string()).collect()
        } else {
            ids.iter().map(|s| s.to_string()).collect()
        };
        let score =
            Self::batch_members(ev, hit).into_iter().filter_map(|i| events[i].score).max().unwrap_or(rule.score);

        Detection {
            id,
            tenant: ev.pending.tenant.clone(),
            rule: rule.id.clone(),
            rule_name: rule.name.clone(),
            entity: entity.clone(),
            window_seconds: rule.window().unwrap_or_default().as_secs(),
            count: hit.count,
            first_seen: timestamp(first.at_ms),
            last_seen: timestamp(last.at_ms),
            evidence,
            score,
            severity: self.hit_severity(ev, hit, events),
            mitre: rule.mitre.clone(),
            reasons: vec![self.reason(ev, hit, events)],
            detected_at: now,
        }
    }
}

fn timestamp(ms: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Stable id of a detection: the same window of the same key always hashes to the same id.
fn detection_id(tenant: &str, rule: &str, entity: &str, first: &str, last: &str) -> String {
    let mut h = Sha256::new();
    for part in [tenant, rule, entity, first, last] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

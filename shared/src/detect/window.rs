//! Sliding-window analysis of one key's entries: which windows satisfy a rule, and which is the best.
//!
//! Windows are closed intervals of event time, `[t, t + W]`: an entry exactly `W` after the first is inside,
//! one `W + 1 ms` after is not. For a sequence the window is `[success − W, success]`, so a failure exactly `W`
//! before the success counts, and so do failures in the same millisecond as the success.
//!
//! Counting conditions are monotone in the counted entries (more of them never un-satisfy one), so it is enough
//! to look at the windows that start at an entry (for a sequence: that end at a success); any satisfying window
//! can be slid to one of those without losing a member. A `threshold` rule with `reset` or `burst` cuts each
//! window short at the first reset after its start and before the first burst point at or after its start;
//! those cuts depend only on event times, never on arrival order.
//!
//! `first_seen` is not a window count: each value of the entity is judged on its own (see [`analyse`]).

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::ports::WindowEntry;

use super::rule::{RuleKind, Signal};

pub(crate) const TAG_FAILURE: &str = "failure";
pub(crate) const TAG_SUCCESS: &str = "success";
/// A `threshold` rule's reset events (counted events carry the empty tag).
pub(crate) const TAG_RESET: &str = "reset";

/// Which entries of `lo..=hi` belong to a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Members {
    /// All of them.
    All,
    /// The failures, plus the success at `anchor`.
    Sequence,
    /// All but resets.
    Counted,
    /// Those with the tag of the entry at `anchor` (a first-seen value).
    SameTag,
}

/// A window satisfying the rule that holds at least one new entry. Its members are the entries `lo..=hi`
/// that [`Members`] selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub lo: usize,
    pub hi: usize,
    pub anchor: usize,
    /// What was compared with the threshold: events, distinct values, failures or a risk score.
    pub metric: u64,
    /// Members.
    pub count: u64,
    pub members: Members,
}

impl Hit {
    pub fn contains(&self, entries: &[WindowEntry], k: usize) -> bool {
        (self.lo..=self.hi).contains(&k)
            && match self.members {
                Members::All => true,
                Members::Sequence => k == self.anchor || entries[k].tag == TAG_FAILURE,
                Members::Counted => entries[k].tag != TAG_RESET,
                Members::SameTag => entries[k].tag == entries[self.anchor].tag,
            }
    }

    pub fn members<'a>(&'a self, entries: &'a [WindowEntry]) -> impl Iterator<Item = usize> + 'a {
        (self.lo..=self.hi).filter(move |&k| self.contains(entries, k))
    }

    /// Higher metric, then more members, then the earlier window: a total order, so the choice (and with it
    /// the detection id) depends only on the entries, never on the order they arrived in.
    fn rank(&self) -> (u64, u64, Reverse<usize>, Reverse<usize>) {
        (self.metric, self.count, Reverse(self.lo), Reverse(self.anchor))
    }
}

pub(crate) struct Analysis {
    /// The windows that become detections: the best satisfying window holding a new entry (at most one),
    /// or for `first_seen` one per new value.
    pub fired: Vec<Hit>,
    /// Per entry: the best satisfying window holding it (only for new entries).
    pub per_entry: Vec<Option<Hit>>,
}

/// The risk a window's signal counts add up to: each signal's score times its count, capped per signal.
pub(crate) fn risk_score(signals: &[Signal], counts: &[u64]) -> (u64, u64) {
    let mut score = 0u64;
    let mut present = 0u64;
    for (s, &c) in signals.iter().zip(counts) {
        if c > 0 {
            present += 1;
            score = score.saturating_add(s.score.saturating_mul(c).min(s.cap));
        }
    }
    (score, present)
}

/// Analyses `entries` (sorted, no duplicates); `is_new[k]` tells whether entry `k` came with this evaluation.
pub(crate) fn analyse(kind: &RuleKind, entries: &[WindowEntry], is_new: &[bool]) -> Analysis {
    debug_assert_eq!(entries.len(), is_new.len());
    let n = entries.len();
    let mut hits = Vec::new();
    let mut new_prefix = vec![0usize; n + 1];
    for k in 0..n {
        new_prefix[k + 1] = new_prefix[k] + usize::from(is_new[k]);
    }
    let any_new = |lo: usize, hi: usize| new_prefix[hi + 1] > new_prefix[lo];
    let mut all_fire = false;

    match kind {
        RuleKind::Passthrough => {
            if n > 0 {
                hits.push(Hit {
                    lo: 0,
                    hi: n - 1,
                    anchor: 0,
                    metric: n as u64,
                    count: n as u64,
                    members: Members::All,
                });
            }
        }
        RuleKind::Threshold { window, threshold, burst, .. } => {
            let w = window.as_millis() as i64;
            let counted: Vec<bool> = entries.iter().map(|e| e.tag != TAG_RESET).collect();
            let mut counted_prefix = vec![0usize; n + 1];
            let mut new_counted_prefix = vec![0usize; n + 1];
            for k in 0..n {
                counted_prefix[k + 1] = counted_prefix[k] + usize::from(counted[k]);
                new_counted_prefix[k + 1] = new_counted_prefix[k] + usize::from(counted[k] && is_new[k]);
            }
            let resets: Vec<i64> = entries.iter().filter(|e| e.tag == TAG_RESET).map(|e| e.at_ms).collect();
            // Burst points: counted entries that complete `threshold` counted entries within the burst window.
            let mut bursts: Vec<i64> = Vec::new();
            if let Some(b) = burst {
                let bw = b.window.as_millis() as i64;
                for k in (0..n).filter(|&k| counted[k]) {
                    let at = entries[k].at_ms;
                    let upto = entries.partition_point(|e| e.at_ms <= at);
                    let from = entries.partition_point(|e| e.at_ms < at.saturating_sub(bw));
                    if (counted_prefix[upto] - counted_prefix[from]) as u64 >= b.threshold {
                        bursts.push(at);
                    }
                }
                bursts.dedup();
            }
            let mut last_start: Option<i64> = None;
            for i in (0..n).filter(|&i| counted[i]) {
                let t = entries[i].at_ms;
                if last_start == Some(t) {
                    continue;
                }
                last_start = Some(t);
                let mut limit = t.saturating_add(w);
                if let Some(&r) = resets.get(resets.partition_point(|&r| r <= t)) {
                    limit = limit.min(r - 1);
                }
                if let Some(&b) = bursts.get(bursts.partition_point(|&b| b < t)) {
                    limit = limit.min(b - 1);
                }
                if limit < t {
                    continue;
                }
                let lo = entries.partition_point(|e| e.at_ms < t);
                let end = entries.partition_point(|e| e.at_ms <= limit);
                let count = (counted_prefix[end] - counted_prefix[lo]) as u64;
                if count >= *threshold && new_counted_prefix[end] > new_counted_prefix[lo] {
                    hits.push(Hit { lo, hi: end - 1, anchor: i, metric: count, count, members: Members::Counted });
                }
            }
        }
        RuleKind::Distinct { window, threshold, .. } => {
            let w = window.as_millis() as i64;
            let mut values: HashMap<&str, usize> = HashMap::new();
            let mut end = 0;
            for i in 0..n {
                let limit = entries[i].at_ms.saturating_add(w);
                while end < n && entries[end].at_ms <= limit {
                    *values.entry(entries[end].tag.as_str()).or_default() += 1;
                    end += 1;
                }
                let run_start = i == 0 || entries[i - 1].at_ms != entries[i].at_ms;
                let count = (end - i) as u64;
                let metric = values.len() as u64;
                if run_start && metric >= *threshold && any_new(i, end - 1) {
                    hits.push(Hit { lo: i, hi: end - 1, anchor: i, metric, count, members: Members::All });
                }
                let tag = entries[i].tag.as_str();
                if let Some(c) = values.get_mut(tag) {
                    *c -= 1;
                    if *c == 0 {
                        values.remove(tag);
                    }
                }
            }
        }
        RuleKind::Risk { window, threshold, min_signals, signals } => {
            let w = window.as_millis() as i64;
            let signal_of: Vec<Option<usize>> =
                entries.iter().map(|e| signals.iter().position(|s| s.name == e.tag)).collect();
            let mut counts = vec![0u64; signals.len()];
            let mut end = 0;
            for i in 0..n {
                let limit = entries[i].at_ms.saturating_add(w);
                while end < n && entries[end].at_ms <= limit {
                    if let Some(s) = signal_of[end] {
                        counts[s] += 1;
                    }
                    end += 1;
                }
                let run_start = i == 0 || entries[i - 1].at_ms != entries[i].at_ms;
                let (score, present) = risk_score(signals, &counts);
                if run_start && score >= *threshold && present >= *min_signals && any_new(i, end - 1) {
                    let count = (end - i) as u64;
                    hits.push(Hit { lo: i, hi: end - 1, anchor: i, metric: score, count, members: Members::All });
                }
                if let Some(s) = signal_of[i] {
                    counts[s] -= 1;
                }
            }
        }
        RuleKind::Sequence { window, threshold, .. } => {
            let w = window.as_millis() as i64;
            let mut fail_prefix = vec![0usize; n + 1];
            let mut new_fail_prefix = vec![0usize; n + 1];
            for k in 0..n {
                let failure = entries[k].tag == TAG_FAILURE;
                fail_prefix[k + 1] = fail_prefix[k] + usize::from(failure);
                new_fail_prefix[k + 1] = new_fail_prefix[k] + usize::from(failure && is_new[k]);
            }
            for s in (0..n).filter(|&s| entries[s].tag == TAG_SUCCESS) {
                let at = entries[s].at_ms;
                let lo = entries.partition_point(|e| e.at_ms < at.saturating_sub(w));
                let hi = entries.partition_point(|e| e.at_ms <= at) - 1;
                let failures = (fail_prefix[hi + 1] - fail_prefix[lo]) as u64;
                let holds_new = is_new[s] || new_fail_prefix[hi + 1] > new_fail_prefix[lo];
                if failures >= *threshold && holds_new {
                    hits.push(Hit {
                        lo,
                        hi,
                        anchor: s,
                        metric: failures,
                        count: failures + 1,
                        members: Members::Sequence,
                    });
                }
            }
        }
        RuleKind::Temporal(spec) => hits.extend(spec.windows(entries, is_new).into_iter().map(|w| Hit {
            lo: w.lo,
            hi: w.hi,
            anchor: w.anchor,
            metric: w.steps,
            count: w.count,
            members: Members::All,
        })),
        RuleKind::FirstSeen { learning, .. } => {
            // A value is new when the call brings its earliest entry and the entity was already known, through
            // another value, at least `learning` before it. Each new value is its own detection.
            all_fire = true;
            let l = learning.as_millis() as i64;
            let mut span: HashMap<&str, (usize, usize, u64)> = HashMap::new();
            for (k, e) in entries.iter().enumerate() {
                let s = span.entry(e.tag.as_str()).or_insert((k, k, 0));
                s.1 = k;
                s.2 += 1;
            }
            let mut values: Vec<(usize, usize, u64)> = span.into_values().collect();
            values.sort_unstable();
            for (first, last, count) in values {
                let novel = first > 0
                    && entries[0].tag != entries[first].tag
                    && entries[0].at_ms <= entries[first].at_ms.saturating_sub(l);
                if is_new[first] && novel {
                    hits.push(Hit {
                        lo: first,
                        hi: last,
                        anchor: first,
                        metric: count,
                        count,
                        members: Members::SameTag,
                    });
                }
            }
        }
    }

    let new_positions: Vec<usize> = (0..n).filter(|&k| is_new[k]).collect();
    let mut per_entry: Vec<Option<Hit>> = vec![None; n];
    let mut best: Option<Hit> = None;
    for hit in &hits {
        if best.is_none_or(|b| hit.rank() > b.rank()) {
            best = Some(*hit);
        }
        let from = new_positions.partition_point(|&k| k < hit.lo);
        for &k in new_positions[from..].iter().take_while(|&&k| k <= hit.hi) {
            if hit.contains(entries, k) && per_entry[k].is_none_or(|b| hit.rank() > b.rank()) {
                per_entry[k] = Some(*hit);
            }
        }
    }
    let fired = if all_fire { hits } else { best.into_iter().collect() };
    Analysis { fired, per_entry }
}

//! Sliding-window analysis of one key's entries: which windows satisfy a rule, and which is the best.
//!
//! Windows are closed intervals of event time, `[t, t + W]`: an entry exactly `W` after the first is inside,
//! one `W + 1 ms` after is not. For a sequence the window is `[success − W, success]`, so a failure exactly `W`
//! before the success counts, and so do failures in the same millisecond as the success.
//!
//! Every condition is monotone (more entries never un-satisfy it), so it is enough to look at the windows that
//! start at an entry (for a sequence: that end at a success); any satisfying window can be slid to one of
//! those without losing a member.

use std::cmp::Reverse;
use std::collections::HashMap;

use crate::ports::WindowEntry;

use super::rules::RuleKind;

pub(crate) const TAG_FAILURE: &str = "failure";
pub(crate) const TAG_SUCCESS: &str = "success";

/// A window satisfying the rule that holds at least one new entry. Its members are the entries `lo..=hi`;
/// for a sequence only the failures among them plus the success at `anchor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub lo: usize,
    pub hi: usize,
    pub anchor: usize,
    /// What was compared with the threshold: events, distinct values or failures.
    pub metric: u64,
    /// Members.
    pub count: u64,
    sequence: bool,
}

impl Hit {
    pub fn contains(&self, entries: &[WindowEntry], k: usize) -> bool {
        (self.lo..=self.hi).contains(&k) && (!self.sequence || k == self.anchor || entries[k].tag == TAG_FAILURE)
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
    /// The best satisfying window that holds a new entry.
    pub best: Option<Hit>,
    /// Per entry: the best satisfying window holding it (only for new entries).
    pub per_entry: Vec<Option<Hit>>,
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

    match kind {
        RuleKind::Passthrough => {
            if n > 0 {
                hits.push(Hit { lo: 0, hi: n - 1, anchor: 0, metric: n as u64, count: n as u64, sequence: false });
            }
        }
        RuleKind::Threshold { window, threshold } | RuleKind::Distinct { window, threshold, .. } => {
            let w = window.as_millis() as i64;
            let distinct = matches!(kind, RuleKind::Distinct { .. });
            let mut values: HashMap<&str, usize> = HashMap::new();
            let mut end = 0;
            for i in 0..n {
                let limit = entries[i].at_ms.saturating_add(w);
                while end < n && entries[end].at_ms <= limit {
                    if distinct {
                        *values.entry(entries[end].tag.as_str()).or_default() += 1;
                    }
                    end += 1;
                }
                let run_start = i == 0 || entries[i - 1].at_ms != entries[i].at_ms;
                let count = (end - i) as u64;
                let metric = if distinct { values.len() as u64 } else { count };
                if run_start && metric >= *threshold && any_new(i, end - 1) {
                    hits.push(Hit { lo: i, hi: end - 1, anchor: i, metric, count, sequence: false });
                }
                if distinct {
                    let tag = entries[i].tag.as_str();
                    if let Some(c) = values.get_mut(tag) {
                        *c -= 1;
                        if *c == 0 {
                            values.remove(tag);
                        }
                    }
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
                    hits.push(Hit { lo, hi, anchor: s, metric: failures, count: failures + 1, sequence: true });
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
    Analysis { best, per_entry }
}

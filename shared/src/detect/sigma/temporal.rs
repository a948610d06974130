//! Temporal proximity of several rules' events, the analysis behind Sigma's `temporal_ordered` correlations
//! (and `temporal` ones over other correlations): a pure function of one key's sorted window entries.
//!
//! Each entry is tagged with the step (the referenced rule) its event matched: `2`, or `2=alice` for a
//! step that counts distinct values. A step is *completed* at an entry when its own condition holds in
//! `[t − within, t]`: one event for a plain Sigma rule, `count` events (or distinct values) for a chained
//! `event_count` (`value_count`) correlation. The correlation holds for a window when completions of the
//! steps fall within `timespan` of each other — in step order for `temporal_ordered` (equal times count as
//! in order), any `min_steps` of them for `temporal`.
//!
//! Only completion times matter and completions only ever appear as entries are added, so the result is a
//! function of the entry set alone: order-independent, idempotent, and monotone, like the engine's counting
//! kinds.

use std::collections::HashMap;
use std::time::Duration;

use crate::detect::rule::{Field, Matcher};
use crate::model::Event;
use crate::ports::WindowEntry;

/// One referenced rule of a temporal correlation.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The referenced rule (its Sigma name or id), for reasons.
    pub name: String,
    /// Which events are the step's (the referenced rule's logsource and detection).
    pub matcher: Matcher,
    /// At least this many events (or distinct values) ...
    pub count: u64,
    /// ... within this span; zero for a plain rule.
    pub within: Duration,
    /// Count distinct values of this field instead of events (a chained `value_count`).
    pub distinct: Option<Field>,
}

/// A `temporal` / `temporal_ordered` correlation.
#[derive(Clone, Debug, PartialEq)]
pub struct TemporalSpec {
    pub timespan: Duration,
    pub ordered: bool,
    /// Steps that must complete within `timespan` (all of them when ordered).
    pub min_steps: usize,
    pub steps: Vec<Step>,
}

/// A window in which the correlation holds: entries `lo..=hi`, ending at `anchor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub lo: usize,
    pub hi: usize,
    pub anchor: usize,
    /// Steps completed in the window.
    pub steps: u64,
    pub count: u64,
}

impl TemporalSpec {
    /// How far back entries matter: the timespan plus the longest step span.
    pub fn lookback(&self) -> Duration {
        self.timespan + self.steps.iter().map(|s| s.within).max().unwrap_or_default()
    }

    pub fn name(&self) -> &'static str {
        if self.ordered {
            "temporal_ordered"
        } else {
            "temporal"
        }
    }

    /// The tags `event` adds: one per step it belongs to.
    pub fn tags(&self, event: &Event) -> Vec<String> {
        let mut tags = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            if !step.matcher.matches(event) {
                continue;
            }
            match &step.distinct {
                None => tags.push(i.to_string()),
                Some(field) => {
                    if let Some(v) = field.value(event) {
                        tags.push(format!("{i}={v}"));
                    }
                }
            }
        }
        tags
    }

    /// Every window (sorted `entries`, `is_new[k]` for this call's) in which the correlation holds and that
    /// holds a new entry.
    pub fn windows(&self, entries: &[WindowEntry], is_new: &[bool]) -> Vec<Found> {
        let n = entries.len();
        if n == 0 || self.steps.is_empty() {
            return Vec::new();
        }
        let mut new_prefix = vec![0usize; n + 1];
        for k in 0..n {
            new_prefix[k + 1] = new_prefix[k] + usize::from(is_new.get(k).copied().unwrap_or(false));
        }
        let completions = self.completions(entries);
        let span = self.timespan.as_millis() as i64;
        let within: Vec<i64> = self.steps.iter().map(|s| s.within.as_millis() as i64).collect();
        let mut found = Vec::new();
        let mut emit = |start_ms: i64, end_ms: i64, anchor: usize, steps: u64| {
            let lo = entries.partition_point(|e| e.at_ms < start_ms);
            let hi = entries.partition_point(|e| e.at_ms <= end_ms).saturating_sub(1);
            if lo <= hi && new_prefix[hi + 1] > new_prefix[lo] {
                found.push(Found { lo, hi, anchor, steps, count: (hi - lo + 1) as u64 });
            }
        };
        if self.ordered {
            let last = self.steps.len() - 1;
            for &(end_ms, anchor) in &completions[last] {
                // The latest completion of each earlier step no later than the next one's leaves the most room.
                let mut at = end_ms;
                let mut start = end_ms - within[last];
                let mut chained = true;
                for s in (0..last).rev() {
                    let upto = completions[s].partition_point(|&(t, _)| t <= at);
                    if upto == 0 {
                        chained = false;
                        break;
                    }
                    at = completions[s][upto - 1].0;
                    start = start.min(at - within[s]);
                }
                if chained && end_ms - at <= span {
                    emit(start, end_ms, anchor, self.steps.len() as u64);
                }
            }
        } else {
            let mut all: Vec<(i64, usize, usize)> = completions
                .iter()
                .enumerate()
                .flat_map(|(s, list)| list.iter().map(move |&(t, k)| (t, s, k)))
                .collect();
            all.sort_unstable();
            let mut counts = vec![0usize; self.steps.len()];
            let mut present = 0usize;
            let mut end = 0;
            for i in 0..all.len() {
                let (t, _, _) = all[i];
                while end < all.len() && all[end].0 <= t + span {
                    let s = all[end].1;
                    if counts[s] == 0 {
                        present += 1;
                    }
                    counts[s] += 1;
                    end += 1;
                }
                let run_start = i == 0 || all[i - 1].0 != t;
                if run_start && present >= self.min_steps {
                    let start = (i..end).map(|j| all[j].0 - within[all[j].1]).min().unwrap_or(t);
                    let (end_ms, _, anchor) = all[end - 1];
                    emit(start, end_ms, anchor, present as u64);
                }
                let s = all[i].1;
                counts[s] -= 1;
                if counts[s] == 0 {
                    present -= 1;
                }
            }
        }
        found
    }

    /// Per step, the `(time, entry)` points where it is completed, in time order.
    fn completions(&self, entries: &[WindowEntry]) -> Vec<Vec<(i64, usize)>> {
        let mut per_step: Vec<Vec<(usize, Option<&str>)>> = vec![Vec::new(); self.steps.len()];
        for (k, e) in entries.iter().enumerate() {
            let (step, value) = match e.tag.split_once('=') {
                Some((s, v)) => (s, Some(v)),
                None => (e.tag.as_str(), None),
            };
            if let Some(i) = step.parse::<usize>().ok().filter(|&i| i < self.steps.len()) {
                per_step[i].push((k, value));
            }
        }
        per_step
            .iter()
            .zip(&self.steps)
            .map(|(list, step)| {
                if step.count <= 1 && step.distinct.is_none() {
                    return list.iter().map(|&(k, _)| (entries[k].at_ms, k)).collect();
                }
                let w = step.within.as_millis() as i64;
                let mut out = Vec::new();
                let mut values: HashMap<&str, usize> = HashMap::new();
                let mut start = 0;
                for j in 0..list.len() {
                    let (k, v) = list[j];
                    let t = entries[k].at_ms;
                    *values.entry(v.unwrap_or("")).or_default() += 1;
                    while entries[list[start].0].at_ms < t - w {
                        let old = list[start].1.unwrap_or("");
                        if let Some(c) = values.get_mut(old) {
                            *c -= 1;
                            if *c == 0 {
                                values.remove(old);
                            }
                        }
                        start += 1;
                    }
                    let counted = if step.distinct.is_some() { values.len() } else { j - start + 1 };
                    if counted as u64 >= step.count {
                        out.push((t, k));
                    }
                }
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, count: u64, within_s: u64) -> Step {
        Step {
            name: name.into(),
            matcher: Matcher::default(),
            count,
            within: Duration::from_secs(within_s),
            distinct: None,
        }
    }

    fn spec(ordered: bool, timespan_s: u64, steps: Vec<Step>) -> TemporalSpec {
        let min_steps = steps.len();
        TemporalSpec { timespan: Duration::from_secs(timespan_s), ordered, min_steps, steps }
    }

    /// Entries at `(seconds, tag)`, sorted as the engine sorts them, all new.
    fn entries(at: &[(i64, &str)]) -> (Vec<WindowEntry>, Vec<bool>) {
        let mut e: Vec<WindowEntry> = at
            .iter()
            .enumerate()
            .map(|(i, (s, tag))| WindowEntry { at_ms: s * 1000, event_id: format!("e{i:03}"), tag: tag.to_string() })
            .collect();
        e.sort();
        let new = vec![true; e.len()];
        (e, new)
    }

    fn fires(spec: &TemporalSpec, at: &[(i64, &str)]) -> bool {
        let (e, new) = entries(at);
        !spec.windows(&e, &new).is_empty()
    }

    #[test]
    fn ordered_steps_must_come_in_order_within_the_timespan() {
        let s = spec(true, 60, vec![step("recon", 1, 0), step("exploit", 1, 0), step("shell", 1, 0)]);
        assert!(fires(&s, &[(0, "0"), (10, "1"), (20, "2")]));
        assert!(!fires(&s, &[(0, "1"), (10, "0"), (20, "2")]), "exploit before recon");
        assert!(!fires(&s, &[(0, "0"), (20, "2")]), "a step missing");
        assert!(fires(&s, &[(0, "0"), (30, "1"), (60, "2")]), "exactly the timespan is inside");
        assert!(!fires(&s, &[(0, "0"), (30, "1"), (61, "2")]), "one second more is outside");
        // A late recon (after the exploit) does not help, an earlier one within the span does.
        assert!(!fires(&s, &[(10, "1"), (15, "0"), (20, "2")]));
        assert!(fires(&s, &[(0, "0"), (10, "1"), (15, "0"), (20, "2")]));
        assert!(fires(&s, &[(5, "0"), (5, "1"), (5, "2")]), "equal times count as in order");
    }

    #[test]
    fn the_result_does_not_depend_on_arrival_and_needs_a_new_entry() {
        let s = spec(true, 60, vec![step("a", 1, 0), step("b", 1, 0)]);
        let (e, _) = entries(&[(0, "0"), (30, "1")]);
        assert_eq!(s.windows(&e, &[false, false]), vec![]);
        let with_old_a = s.windows(&e, &[false, true]);
        assert_eq!(with_old_a.len(), 1);
        assert_eq!((with_old_a[0].lo, with_old_a[0].hi, with_old_a[0].anchor), (0, 1, 1));
        assert_eq!(s.windows(&e, &[true, false]), with_old_a, "the same window whichever entry is new");
    }

    #[test]
    fn a_counted_step_completes_when_its_count_is_reached_within_its_span() {
        // The specification's example: ten failed logins within 10m, then a success within 10m.
        let s = spec(true, 600, vec![step("failed", 10, 600), step("success", 1, 0)]);
        let mut at: Vec<(i64, &str)> = (0..10).map(|i| (i * 30, "0")).collect();
        at.push((400, "1"));
        assert!(fires(&s, &at));
        let (e, new) = entries(&at);
        let w = s.windows(&e, &new);
        assert_eq!((w[0].lo, w[0].count), (0, 11), "the window spans the failures that completed the step");
        at.pop();
        at.push((200, "1"));
        assert!(!fires(&s, &at), "the success came before the tenth failure");
        let slow: Vec<(i64, &str)> = (0..10).map(|i| (i * 70, "0")).chain([(700, "1")]).collect();
        assert!(!fires(&s, &slow), "ten failures over 630s are not ten within 600s");
    }

    #[test]
    fn a_distinct_step_counts_values() {
        let mut users = step("spray", 3, 60);
        users.distinct = Some(Field::User);
        let s = spec(true, 60, vec![users, step("success", 1, 0)]);
        assert!(fires(&s, &[(0, "0=a"), (10, "0=b"), (20, "0=c"), (30, "1")]));
        assert!(!fires(&s, &[(0, "0=a"), (10, "0=a"), (20, "0=b"), (30, "1")]));
    }

    #[test]
    fn unordered_needs_the_steps_in_any_order() {
        let mut s = spec(false, 60, vec![step("a", 1, 0), step("b", 2, 30)]);
        assert!(fires(&s, &[(0, "1"), (20, "1"), (50, "0")]));
        assert!(fires(&s, &[(0, "0"), (40, "1"), (60, "1")]));
        assert!(!fires(&s, &[(0, "0"), (40, "1"), (61, "1")]), "b completes 61s after a");
        s.min_steps = 1;
        assert!(fires(&s, &[(0, "0")]));
    }

    #[test]
    fn tags_name_the_steps_an_event_belongs_to() {
        let mut user = step("spray", 3, 60);
        user.distinct = Some(Field::User);
        let s = spec(false, 60, vec![step("any", 1, 0), user]);
        let e = Event { user: Some("alice".into()), ..Event::default() };
        assert_eq!(s.tags(&e), vec!["0".to_string(), "1=alice".to_string()]);
        assert_eq!(s.lookback(), Duration::from_secs(120));
    }
}

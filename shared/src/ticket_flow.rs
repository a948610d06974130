//! Ticket transitions: what an analyst may do to a ticket, in which state, and which aggregate writes
//! (histograms, counters, samples) each change implies.
//!
//! States: `new → acknowledged → in_progress → closed`, plus the `escalated` flag. "Open" means not closed.
//!
//! | action        | legal from                        | to            | effects |
//! | ------------- | --------------------------------- | ------------- | ------- |
//! | `acknowledge` | `new`                             | `acknowledged`| `acknowledged_at` = now; TTA observed |
//! | `respond`     | `acknowledged`, `in_progress`     | `in_progress` | note required; `responded_at` = now and TTR observed the first time only |
//! | `assign`      | any open state                    | (unchanged)   | assignee required (replaces the previous one) |
//! | `escalate`    | any open state, not yet escalated | (unchanged)   | `escalated` = true; `vigil_tickets_escalated_total{severity}` + 1 |
//! | `close`       | any open state                    | `closed`      | disposition required; `closed_at` = now; TTC observed (every close); `vigil_tickets_closed_total{rule,disposition}` + 1; if never acknowledged, `acknowledged_at` = now and TTA observed too |
//! | `reopen`      | `closed`                          | `in_progress` | note required; `closed_at` and `disposition` cleared; `acknowledged_at`, `responded_at`, assignee and `escalated` kept |
//!
//! Everything else is illegal ([`IllegalTransition`], carrying the current state): acknowledging twice,
//! responding before acknowledging, escalating twice, acting on a closed ticket other than reopening it,
//! reopening an open one.
//!
//! Every legal transition appends a [`HistoryEntry`] (actor = the token's `sub`, at = the injected clock,
//! from, to, note) and increments `version` by one. The note of an `assign` entry starts with
//! `assigned to <assignee>` and that of a `close` entry with `closed as <disposition>` (the analyst's note, if
//! any, follows after `: `), so the history alone tells who had the ticket and how it ended.
//!
//! Times are measured from `created_at` (negative differences from clock skew count as 0). Histograms carry
//! the label `severity` and use [`TICKET_BUCKETS`]. Samples (`tta`, `ttr`, `ttc`) carry the labels
//! `severity`, `rule`, `actor`; their id is the ticket id, except for a re-close: the n-th close (n ≥ 2) uses
//! `{ticket}#{n}` so every close is kept. A reopened ticket keeps its first acknowledge/respond times.

use std::collections::BTreeMap;
use std::fmt;

use crate::aggregates::{count, observe, TICKET_BUCKETS};
use crate::model::{Disposition, HistoryEntry, Ticket, TicketStatus, Timestamp};
use crate::ports::{AggregateWrite, Sample};

pub const TTA_METRIC: &str = "vigil_ticket_time_to_acknowledge_seconds";
pub const TTR_METRIC: &str = "vigil_ticket_time_to_respond_seconds";
pub const TTC_METRIC: &str = "vigil_ticket_time_to_close_seconds";
pub const CLOSED_METRIC: &str = "vigil_tickets_closed_total";
pub const ESCALATED_METRIC: &str = "vigil_tickets_escalated_total";

/// Longest accepted note (characters); notes are kept forever in the ticket's history.
pub const MAX_NOTE_CHARS: usize = 4000;
/// Longest accepted assignee name (characters).
pub const MAX_ASSIGNEE_CHARS: usize = 256;

/// The actions an analyst can take on a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Acknowledge,
    Respond,
    Assign,
    Escalate,
    Close,
    Reopen,
}

impl Action {
    pub const ALL: [Action; 6] =
        [Action::Acknowledge, Action::Respond, Action::Assign, Action::Escalate, Action::Close, Action::Reopen];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Respond => "respond",
            Action::Assign => "assign",
            Action::Escalate => "escalate",
            Action::Close => "close",
            Action::Reopen => "reopen",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The request fields this action takes (besides none at all).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Action::Acknowledge | Action::Respond | Action::Escalate | Action::Reopen => &["note"],
            Action::Assign => &["assignee", "note"],
            Action::Close => &["disposition", "note"],
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The dispositions a close accepts, as clients write them.
pub const DISPOSITIONS: [&str; 4] = ["true_positive", "false_positive", "benign", "duplicate"];

pub fn parse_disposition(s: &str) -> Option<Disposition> {
    Some(match s {
        "true_positive" => Disposition::TruePositive,
        "false_positive" => Disposition::FalsePositive,
        "benign" => Disposition::Benign,
        "duplicate" => Disposition::Duplicate,
        _ => return None,
    })
}

/// A validated action with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Acknowledge { note: Option<String> },
    Respond { note: String },
    Assign { assignee: String, note: Option<String> },
    Escalate { note: Option<String> },
    Close { disposition: Disposition, note: Option<String> },
    Reopen { note: String },
}

/// The raw arguments of a request, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandInput {
    pub note: Option<String>,
    pub assignee: Option<String>,
    pub disposition: Option<Disposition>,
}

/// Why arguments were refused (a 400): the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

fn clean(field: &'static str, value: Option<String>, max: usize) -> Result<Option<String>, InvalidInput> {
    let Some(v) = value else { return Ok(None) };
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > max {
        return Err(InvalidInput { field, message: format!("longer than {max} characters") });
    }
    Ok(Some(v.to_string()))
}

fn required(field: &'static str, value: Option<String>, action: Action) -> Result<String, InvalidInput> {
    value.ok_or_else(|| InvalidInput { field, message: format!("{action} needs a non-empty {field}") })
}

impl Command {
    /// Validates the arguments of `action`: `respond` and `reopen` need a note, `assign` an assignee, `close`
    /// a disposition. Notes and assignees are trimmed (blank counts as missing) and bounded in length.
    /// Arguments an action does not take are refused.
    pub fn new(action: Action, input: CommandInput) -> Result<Command, InvalidInput> {
        let takes = action.fields();
        for (field, present) in [("assignee", input.assignee.is_some()), ("disposition", input.disposition.is_some())] {
            if present && !takes.contains(&field) {
                return Err(InvalidInput { field, message: format!("{action} does not take {field}") });
            }
        }
        let note = clean("note", input.note, MAX_NOTE_CHARS)?;
        Ok(match action {
            Action::Acknowledge => Command::Acknowledge { note },
            Action::Respond => Command::Respond { note: required("note", note, action)? },
            Action::Assign => Command::Assign {
                assignee: required("assignee", clean("assignee", input.assignee, MAX_ASSIGNEE_CHARS)?, action)?,
                note,
            },
            Action::Escalate => Command::Escalate { note },
            Action::Close => Command::Close {
                disposition: input.disposition.ok_or_else(|| InvalidInput {
                    field: "disposition",
                    message: format!("close needs a disposition: one of {}", DISPOSITIONS.join(", ")),
                })?,
                note,
            },
            Action::Reopen => Command::Reopen { note: required("note", note, action)? },
        })
    }

    pub fn action(&self) -> Action {
        match self {
            Command::Acknowledge { .. } => Action::Acknowledge,
            Command::Respond { .. } => Action::Respond,
            Command::Assign { .. } => Action::Assign,
            Command::Escalate { .. } => Action::Escalate,
            Command::Close { .. } => Action::Close,
            Command::Reopen { .. } => Action::Reopen,
        }
    }
}

/// An action the ticket's current state does not allow (a 409), with that state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} this ticket: {reason}")]
pub struct IllegalTransition {
    pub action: Action,
    pub status: TicketStatus,
    pub escalated: bool,
    pub version: u64,
    pub reason: String,
}

impl IllegalTransition {
    /// The current state, as the API reports it.
    pub fn state_json(&self) -> serde_json::Value {
        serde_json::json!({ "status": self.status.as_str(), "escalated": self.escalated, "version": self.version })
    }
}

/// Whether the ticket's state allows the action, and why not.
pub fn check(ticket: &Ticket, action: Action) -> Result<(), IllegalTransition> {
    use TicketStatus::*;
    let closed = ticket.status == Closed;
    let reason = match action {
        Action::Acknowledge => match ticket.status {
            New => None,
            Closed => Some("it is closed".to_string()),
            s => Some(format!("it is already acknowledged (status {})", s.as_str())),
        },
        Action::Respond => match ticket.status {
            Acknowledged | InProgress => None,
            New => Some("it is not acknowledged yet; acknowledge it first".to_string()),
            Closed => Some("it is closed; reopen it first".to_string()),
        },
        Action::Assign => closed.then(|| "it is closed; reopen it first".to_string()),
        Action::Escalate if closed => Some("it is closed".to_string()),
        Action::Escalate => ticket.escalated.then(|| "it is already escalated".to_string()),
        Action::Close => closed.then(|| "it is already closed".to_string()),
        Action::Reopen => (!closed).then(|| format!("it is not closed (status {})", ticket.status.as_str())),
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(IllegalTransition {
            action,
            status: ticket.status,
            escalated: ticket.escalated,
            version: ticket.version,
            reason,
        }),
    }
}

fn seconds_since(from: Timestamp, to: Timestamp) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

/// A histogram observation plus the sample behind exact percentiles.
fn measure(
    writes: &mut Vec<AggregateWrite>,
    ticket: &Ticket,
    actor: &str,
    metric: &str,
    kind: &str,
    id: String,
    now: Timestamp,
) {
    let value = seconds_since(ticket.created_at, now);
    let severity = ticket.severity.as_str();
    writes.extend(observe(metric, &[("severity", severity)], value, &TICKET_BUCKETS, now));
    let labels: BTreeMap<String, String> = [("severity", severity), ("rule", ticket.rule.as_str()), ("actor", actor)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    writes.push(AggregateWrite::Sample(Sample { kind: kind.to_string(), id, at: now, value, labels }));
}

fn joined(head: String, note: Option<&String>) -> String {
    match note {
        Some(n) => format!("{head}: {n}"),
        None => head,
    }
}

/// Applies the command to the ticket: checks it is legal, changes the ticket (status, timestamps, history,
/// version) and returns the aggregate writes the change implies. On error the ticket is left untouched.
pub fn apply(
    ticket: &mut Ticket,
    command: &Command,
    actor: &str,
    now: Timestamp,
) -> Result<Vec<AggregateWrite>, IllegalTransition> {
    let action = command.action();
    check(ticket, action)?;
    let from = ticket.status;
    let mut writes = Vec::new();
    let note = match command {
        Command::Acknowledge { note } => {
            ticket.status = TicketStatus::Acknowledged;
            if ticket.acknowledged_at.is_none() {
                ticket.acknowledged_at = Some(now);
                measure(&mut writes, ticket, actor, TTA_METRIC, "tta", ticket.id.clone(), now);
            }
            note.clone()
        }
        Command::Respond { note } => {
            ticket.status = TicketStatus::InProgress;
            if ticket.responded_at.is_none() {
                ticket.responded_at = Some(now);
                measure(&mut writes, ticket, actor, TTR_METRIC, "ttr", ticket.id.clone(), now);
            }
            Some(note.clone())
        }
        Command::Assign { assignee, note } => {
            ticket.assignee = Some(assignee.clone());
            Some(joined(format!("assigned to {assignee}"), note.as_ref()))
        }
        Command::Escalate { note } => {
            ticket.escalated = true;
            writes.push(count(ESCALATED_METRIC, &[("severity", ticket.severity.as_str())], now, 1));
            note.clone()
        }
        Command::Close { disposition, note } => {
            if ticket.acknowledged_at.is_none() {
                ticket.acknowledged_at = Some(now);
                measure(&mut writes, ticket, actor, TTA_METRIC, "tta", ticket.id.clone(), now);
            }
            ticket.status = TicketStatus::Closed;
            ticket.closed_at = Some(now);
            ticket.disposition = Some(*disposition);
            let n = ticket.history.iter().filter(|h| h.action == Action::Close.as_str()).count() + 1;
            let id = if n == 1 { ticket.id.clone() } else { format!("{}#{n}", ticket.id) };
            measure(&mut writes, ticket, actor, TTC_METRIC, "ttc", id, now);
            writes.push(count(
                CLOSED_METRIC,
                &[("rule", ticket.rule.as_str()), ("disposition", disposition.as_str())],
                now,
                1,
            ));
            Some(joined(format!("closed as {}", disposition.as_str()), note.as_ref()))
        }
        Command::Reopen { note } => {
            ticket.status = TicketStatus::InProgress;
            ticket.closed_at = None;
            ticket.disposition = None;
            Some(note.clone())
        }
    };
    ticket.history.push(HistoryEntry {
        at: now,
        actor: actor.to_string(),
        action: action.as_str().to_string(),
        from: Some(from),
        to: ticket.status,
        note,
    });
    ticket.version += 1;
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::aggregates::CounterName;
    use crate::model::Severity;

    fn t0() -> Timestamp {
        Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
    }

    fn ticket() -> Ticket {
        Ticket {
            id: "T1".into(),
            tenant: "acme".into(),
            alert_id: "A1".into(),
            rule: "ssh_brute_force".into(),
            title: "SSH brute force: src_ip=203.0.113.7".into(),
            entity: "src_ip=203.0.113.7".into(),
            severity: Severity::High,
            status: TicketStatus::New,
            escalated: false,
            assignee: None,
            disposition: None,
            source_time: t0() - Duration::minutes(1),
            created_at: t0(),
            acknowledged_at: None,
            responded_at: None,
            closed_at: None,
            acknowledge_by: t0() + Duration::hours(1),
            close_by: t0() + Duration::hours(24),
            version: 1,
            history: vec![HistoryEntry {
                at: t0(),
                actor: "vigil".into(),
                action: "open".into(),
                from: None,
                to: TicketStatus::New,
                note: None,
            }],
        }
    }

    fn cmd(action: Action) -> Command {
        let input = CommandInput {
            note: Some("looked at it".into()),
            assignee: (action == Action::Assign).then(|| "bob".to_string()),
            disposition: (action == Action::Close).then_some(Disposition::TruePositive),
        };
        Command::new(action, input).expect("valid command")
    }

    /// A ticket in the given state, reached through legal transitions.
    fn in_state(status: TicketStatus, escalated: bool) -> Ticket {
        let mut t = ticket();
        let path: &[Action] = match status {
            TicketStatus::New => &[],
            TicketStatus::Acknowledged => &[Action::Acknowledge],
            TicketStatus::InProgress => &[Action::Acknowledge, Action::Respond],
            TicketStatus::Closed => &[Action::Close],
        };
        if escalated {
            apply(&mut t, &cmd(Action::Escalate), "alice", t0()).expect("escalate");
        }
        for a in path {
            apply(&mut t, &cmd(*a), "alice", t0()).expect("path");
        }
        t
    }

    fn counts(writes: &[AggregateWrite]) -> Vec<(String, i64)> {
        writes
            .iter()
            .filter_map(|w| match w {
                AggregateWrite::Count { name, delta, .. } => Some((name.clone(), *delta)),
                AggregateWrite::Sample(_) => None,
            })
            .collect()
    }

    fn samples(writes: &[AggregateWrite]) -> Vec<Sample> {
        writes
            .iter()
            .filter_map(|w| match w {
                AggregateWrite::Sample(s) => Some(s.clone()),
                AggregateWrite::Count { .. } => None,
            })
            .collect()
    }

    fn metrics(writes: &[AggregateWrite]) -> std::collections::BTreeSet<String> {
        counts(writes).into_iter().filter_map(|(n, _)| CounterName::parse(&n).map(|c| c.metric)).collect()
    }

    const STATES: [TicketStatus; 4] =
        [TicketStatus::New, TicketStatus::Acknowledged, TicketStatus::InProgress, TicketStatus::Closed];

    /// The transition table: (action, from, escalated) → Some(to) when legal.
    fn expected(action: Action, from: TicketStatus, escalated: bool) -> Option<TicketStatus> {
        use TicketStatus::*;
        match (action, from) {
            (Action::Acknowledge, New) => Some(Acknowledged),
            (Action::Respond, Acknowledged | InProgress) => Some(InProgress),
            (Action::Assign, s) if s != Closed => Some(s),
            (Action::Escalate, s) if s != Closed && !escalated => Some(s),
            (Action::Close, s) if s != Closed => Some(Closed),
            (Action::Reopen, Closed) => Some(InProgress),
            _ => None,
        }
    }

    #[test]
    fn every_action_from_every_state_follows_the_table() {
        for action in Action::ALL {
            for from in STATES {
                for escalated in [false, true] {
                    let mut t = in_state(from, escalated);
                    let before = t.clone();
                    let later = t0() + Duration::minutes(10);
                    let result = apply(&mut t, &cmd(action), "carol", later);
                    match expected(action, from, escalated) {
                        Some(to) => {
                            assert!(result.is_ok(), "{action} from {from:?} (escalated {escalated}): {result:?}");
                            assert_eq!(t.status, to, "{action} from {from:?}");
                            assert_eq!(t.version, before.version + 1);
                            assert_eq!(t.history.len(), before.history.len() + 1);
                            let h = t.history.last().expect("entry");
                            assert_eq!((h.actor.as_str(), h.at, h.from, h.to), ("carol", later, Some(from), to));
                            assert_eq!(h.action, action.as_str());
                            assert!(h.note.as_deref().is_some_and(|n| n.contains("looked at it")), "{h:?}");
                        }
                        None => {
                            let e = result
                                .expect_err(&format!("{action} from {from:?} (escalated {escalated}) must be illegal"));
                            assert_eq!(
                                (e.action, e.status, e.escalated, e.version),
                                (action, from, escalated, before.version)
                            );
                            assert_eq!(
                                e.state_json(),
                                serde_json::json!({"status": from.as_str(), "escalated": escalated, "version": before.version})
                            );
                            assert_eq!(t, before, "an illegal transition leaves the ticket untouched");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn acknowledge_sets_the_time_and_observes_tta_once() {
        let mut t = ticket();
        let at = t0() + Duration::seconds(240);
        let w = apply(&mut t, &cmd(Action::Acknowledge), "alice", at).expect("ack");
        assert_eq!(t.acknowledged_at, Some(at));
        assert_eq!(
            metrics(&w),
            [format!("{TTA_METRIC}_bucket"), format!("{TTA_METRIC}_count"), format!("{TTA_METRIC}_sum_ms")].into()
        );
        let c = counts(&w);
        assert!(c.contains(&(format!("{TTA_METRIC}_bucket{{le=\"300\",severity=\"high\"}}"), 1)), "{c:?}");
        assert!(!c.iter().any(|(n, _)| n.contains("le=\"60\"")), "240 s is above the 60 s bucket");
        assert!(c.contains(&(format!("{TTA_METRIC}_sum_ms{{severity=\"high\"}}"), 240_000)));
        assert!(c.contains(&(format!("{TTA_METRIC}_count{{severity=\"high\"}}"), 1)));
        let s = samples(&w);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].kind.as_str(), s[0].id.as_str(), s[0].at, s[0].value), ("tta", "T1", at, 240.0));
        assert_eq!(s[0].labels.get("severity").map(String::as_str), Some("high"));
        assert_eq!(s[0].labels.get("rule").map(String::as_str), Some("ssh_brute_force"));
        assert_eq!(s[0].labels.get("actor").map(String::as_str), Some("alice"));
        assert!(w.iter().all(|w| match w {
            AggregateWrite::Count { at: a, .. } => *a == at,
            AggregateWrite::Sample(s) => s.at == at,
        }));
    }

    #[test]
    fn respond_observes_ttr_only_the_first_time() {
        let mut t = in_state(TicketStatus::Acknowledged, false);
        let first = t0() + Duration::minutes(20);
        let w = apply(&mut t, &cmd(Action::Respond), "bob", first).expect("respond");
        assert_eq!((t.status, t.responded_at), (TicketStatus::InProgress, Some(first)));
        assert_eq!(
            metrics(&w),
            [format!("{TTR_METRIC}_bucket"), format!("{TTR_METRIC}_count"), format!("{TTR_METRIC}_sum_ms")].into()
        );
        let s = samples(&w);
        assert_eq!((s.len(), s[0].kind.as_str(), s[0].value, s[0].labels["actor"].as_str()), (1, "ttr", 1200.0, "bob"));
        let w = apply(&mut t, &cmd(Action::Respond), "bob", first + Duration::minutes(5)).expect("respond again");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.responded_at, Some(first));
        assert_eq!(t.history.last().map(|h| h.from), Some(Some(TicketStatus::InProgress)));
    }

    #[test]
    fn assign_sets_the_assignee_and_writes_nothing() {
        let mut t = ticket();
        let w = apply(&mut t, &cmd(Action::Assign), "alice", t0()).expect("assign");
        assert!(w.is_empty());
        assert_eq!((t.assignee.as_deref(), t.status), (Some("bob"), TicketStatus::New));
        assert_eq!(t.history.last().and_then(|h| h.note.clone()).as_deref(), Some("assigned to bob: looked at it"));
        let reassign =
            Command::new(Action::Assign, CommandInput { assignee: Some(" dave ".into()), ..Default::default() })
                .expect("valid");
        apply(&mut t, &reassign, "alice", t0()).expect("reassign");
        assert_eq!(t.assignee.as_deref(), Some("dave"));
        assert_eq!(t.history.last().and_then(|h| h.note.clone()).as_deref(), Some("assigned to dave"));
    }

    #[test]
    fn escalate_counts_by_severity_once() {
        let mut t = in_state(TicketStatus::Acknowledged, false);
        let w = apply(&mut t, &cmd(Action::Escalate), "alice", t0()).expect("escalate");
        assert!(t.escalated);
        assert_eq!(t.status, TicketStatus::Acknowledged);
        assert_eq!(counts(&w), vec![(format!("{ESCALATED_METRIC}{{severity=\"high\"}}"), 1)]);
        assert!(samples(&w).is_empty());
        let e = apply(&mut t, &cmd(Action::Escalate), "alice", t0()).expect_err("twice");
        assert!(e.escalated);
        assert!(e.to_string().contains("already escalated"), "{e}");
    }

    #[test]
    fn closing_an_unacknowledged_ticket_acknowledges_it_and_observes_both() {
        let mut t = ticket();
        let at = t0() + Duration::hours(2);
        let cmd = Command::new(
            Action::Close,
            CommandInput { disposition: Some(Disposition::FalsePositive), ..Default::default() },
        )
        .expect("valid");
        let w = apply(&mut t, &cmd, "alice", at).expect("close");
        assert_eq!(
            (t.status, t.acknowledged_at, t.closed_at, t.disposition),
            (TicketStatus::Closed, Some(at), Some(at), Some(Disposition::FalsePositive))
        );
        assert_eq!(t.responded_at, None);
        let m = metrics(&w);
        for metric in [TTA_METRIC, TTC_METRIC] {
            assert!(m.contains(&format!("{metric}_count")), "{m:?}");
        }
        assert!(!m.iter().any(|n| n.starts_with(TTR_METRIC)));
        assert!(counts(&w)
            .contains(&(format!("{CLOSED_METRIC}{{disposition=\"false_positive\",rule=\"ssh_brute_force\"}}"), 1)));
        let kinds: Vec<(String, String, f64)> = samples(&w).into_iter().map(|s| (s.kind, s.id, s.value)).collect();
        assert_eq!(kinds, vec![("tta".into(), "T1".into(), 7200.0), ("ttc".into(), "T1".into(), 7200.0)]);
        assert_eq!(t.history.last().and_then(|h| h.note.clone()).as_deref(), Some("closed as false_positive"));
    }

    #[test]
    fn closing_an_acknowledged_ticket_keeps_its_acknowledge_time() {
        let mut t = in_state(TicketStatus::InProgress, false);
        let acked = t.acknowledged_at;
        let w = apply(&mut t, &cmd(Action::Close), "alice", t0() + Duration::hours(1)).expect("close");
        assert_eq!(t.acknowledged_at, acked);
        let m = metrics(&w);
        assert!(!m.iter().any(|n| n.starts_with(TTA_METRIC)), "{m:?}");
        assert_eq!(samples(&w).iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), vec!["ttc"]);
        assert!(counts(&w)
            .contains(&(format!("{CLOSED_METRIC}{{disposition=\"true_positive\",rule=\"ssh_brute_force\"}}"), 1)));
        assert!(counts(&w).contains(&(format!("{TTC_METRIC}_sum_ms{{severity=\"high\"}}"), 3_600_000)));
    }

    #[test]
    fn reopen_clears_the_close_and_a_second_close_is_kept_apart() {
        let mut t = in_state(TicketStatus::Closed, false);
        let (acked, responded) = (t.acknowledged_at, t.responded_at);
        let w = apply(&mut t, &cmd(Action::Reopen), "alice", t0() + Duration::hours(1)).expect("reopen");
        assert!(w.is_empty());
        assert_eq!((t.status, t.closed_at, t.disposition), (TicketStatus::InProgress, None, None));
        assert_eq!((t.acknowledged_at, t.responded_at), (acked, responded));
        let w = apply(&mut t, &cmd(Action::Close), "bob", t0() + Duration::hours(3)).expect("close again");
        let s = samples(&w);
        assert_eq!(
            s.iter().map(|s| (s.kind.as_str(), s.id.as_str(), s.value)).collect::<Vec<_>>(),
            vec![("ttc", "T1#2", 10800.0)]
        );
        assert!(metrics(&w).contains(&format!("{TTC_METRIC}_count")));
        apply(&mut t, &cmd(Action::Reopen), "alice", t0() + Duration::hours(4)).expect("reopen");
        let w = apply(&mut t, &cmd(Action::Close), "bob", t0() + Duration::hours(5)).expect("third close");
        assert_eq!(samples(&w)[0].id, "T1#3");
        // Reopened, it cannot be acknowledged again; its first response is observed once, whenever it comes.
        apply(&mut t, &cmd(Action::Reopen), "alice", t0() + Duration::hours(6)).expect("reopen");
        assert!(apply(&mut t, &cmd(Action::Acknowledge), "alice", t0()).is_err());
        let w = apply(&mut t, &cmd(Action::Respond), "alice", t0() + Duration::hours(7)).expect("respond");
        assert_eq!(samples(&w).iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), vec!["ttr"]);
        let first_close = apply(&mut t, &cmd(Action::Close), "bob", t0() + Duration::hours(8)).expect("close");
        assert_eq!(samples(&first_close)[0].id, "T1#4");
        apply(&mut t, &cmd(Action::Reopen), "alice", t0() + Duration::hours(9)).expect("reopen");
        assert!(apply(&mut t, &cmd(Action::Respond), "alice", t0() + Duration::hours(10)).expect("respond").is_empty());
        assert_eq!(t.responded_at, Some(t0() + Duration::hours(7)));
    }

    #[test]
    fn times_before_creation_count_as_zero() {
        let mut t = ticket();
        let w = apply(&mut t, &cmd(Action::Acknowledge), "alice", t0() - Duration::seconds(5)).expect("ack");
        assert_eq!(samples(&w)[0].value, 0.0);
        assert!(counts(&w).contains(&(format!("{TTA_METRIC}_bucket{{le=\"60\",severity=\"high\"}}"), 1)));
    }

    #[test]
    fn arguments_are_validated_per_action() {
        let none = CommandInput::default();
        assert_eq!(Command::new(Action::Acknowledge, none.clone()), Ok(Command::Acknowledge { note: None }));
        assert_eq!(Command::new(Action::Escalate, none.clone()), Ok(Command::Escalate { note: None }));
        assert_eq!(Command::new(Action::Respond, none.clone()).map_err(|e| e.field), Err("note"));
        let blank = CommandInput { note: Some("   ".into()), ..Default::default() };
        assert_eq!(Command::new(Action::Respond, blank.clone()).map_err(|e| e.field), Err("note"));
        assert_eq!(Command::new(Action::Reopen, blank).map_err(|e| e.field), Err("note"));
        assert_eq!(Command::new(Action::Assign, none.clone()).map_err(|e| e.field), Err("assignee"));
        assert_eq!(Command::new(Action::Close, none.clone()).map_err(|e| e.field), Err("disposition"));
        let long = CommandInput { note: Some("x".repeat(MAX_NOTE_CHARS + 1)), ..Default::default() };
        assert_eq!(Command::new(Action::Acknowledge, long).map_err(|e| e.field), Err("note"));
        let stray = CommandInput { assignee: Some("bob".into()), ..Default::default() };
        assert_eq!(Command::new(Action::Acknowledge, stray).map_err(|e| e.field), Err("assignee"));
        let stray =
            CommandInput { disposition: Some(Disposition::Benign), assignee: Some("bob".into()), ..Default::default() };
        assert_eq!(Command::new(Action::Assign, stray).map_err(|e| e.field), Err("disposition"));
        assert_eq!(
            Command::new(Action::Respond, CommandInput { note: Some(" contained host ".into()), ..Default::default() }),
            Ok(Command::Respond { note: "contained host".into() })
        );
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        for d in DISPOSITIONS {
            assert_eq!(parse_disposition(d).map(Disposition::as_str), Some(d));
        }
        assert_eq!(parse_disposition("maybe"), None);
    }
}

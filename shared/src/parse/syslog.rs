//! Syslog lines (RFC 3164 and RFC 5424) via `syslog_loose`, the parser Vector uses.

use std::sync::LazyLock;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use regex::Regex;
use syslog_loose::{IncompleteDate, Message, Variant};

use super::{add_sender_label, blank_event, BodyError, Collector, Draft, ParseContext, Parsed};
use crate::model::{Event, Severity, Timestamp};

/// rsyslog's repeated-message reduction expands back into at most this many events.
const MAX_REPEAT: usize = 1000;

/// The parts of a line that parsed as syslog.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyslogLine {
    pub timestamp: Option<Timestamp>,
    pub host: Option<String>,
    pub program: Option<String>,
    /// From the PRI; `None` when the line had none.
    pub severity: Option<Severity>,
    /// pid, facility, msgid and RFC 5424 structured data (`SD-ID.PARAM`).
    pub labels: Vec<(String, String)>,
    pub message: String,
}

/// Parses one line as RFC 5424 or RFC 3164, or `None` if it is not syslog at all. Year-less dates resolve to the
/// most recent past date relative to `received_at`; dates without a zone are UTC.
pub(crate) fn parse_line(line: &str, received_at: Timestamp) -> Option<SyslogLine> {
    let get_year = move |date: IncompleteDate| resolve_year(date, received_at);
    let msg: Message<&str> =
        syslog_loose::parse_message_with_year_exact_tz(line, get_year, Some(Utc), Variant::Either).ok()?;
    let mut labels = Vec::new();
    if let Some(pid) = &msg.procid {
        labels.push(("pid".to_string(), pid.to_string()));
    }
    if let Some(facility) = msg.facility {
        labels.push(("facility".to_string(), facility.as_str().to_string()));
    }
    if let Some(msgid) = msg.msgid {
        labels.push(("msgid".to_string(), msgid.to_string()));
    }
    for element in &msg.structured_data {
        for (name, value) in element.params() {
            labels.push((format!("{}.{}", element.id, name), value));
        }
    }
    let text = msg.msg.trim_start_matches('\u{feff}').trim();
    Some(SyslogLine {
        timestamp: msg.timestamp.map(|t| t.with_timezone(&Utc)),
        host: msg.hostname.filter(|h| !h.is_empty()).map(str::to_string),
        program: msg.appname.filter(|a| !a.is_empty()).map(str::to_string),
        severity: msg.severity.map(|s| Severity::from_syslog(s as u8)),
        labels,
        message: text.to_string(),
    })
}

/// The year for a year-less RFC 3164 date: received_at's year, unless that puts the date more than a day after
/// received_at (a Dec 31 line received on Jan 1), then the year before. Feb 29 goes back to the last leap year.
fn resolve_year((month, day, hour, minute, second): IncompleteDate, received_at: Timestamp) -> i32 {
    let limit = received_at + Duration::days(1);
    let year = received_at.year();
    for candidate in (year - 8..=year).rev() {
        let at = NaiveDate::from_ymd_opt(candidate, month, day).and_then(|d| d.and_hms_opt(hour, minute, second));
        if let Some(at) = at {
            if at.and_utc() <= limit {
                return candidate;
            }
        }
    }
    year
}

/// An event from one line: syslog if it parses as syslog, else the whole line as the message.
pub(crate) fn event_from_line(line: &str, ctx: &ParseContext, default_source: &str) -> Event {
    let mut event = blank_event(ctx, ctx.source.unwrap_or(default_source));
    match parse_line(line, ctx.received_at) {
        Some(parsed) => apply(&mut event, parsed, Keep::default()),
        None => event.message = Some(line.to_string()),
    }
    event
}

/// Which fields of an event the sender set itself, so a syslog line inside it does not replace them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Keep {
    pub host: bool,
    pub timestamp: bool,
    pub severity: bool,
}

/// Copies a parsed syslog line into an event. The line's host, timestamp and severity replace defaults but not what
/// the sender set (`keep`); the program is only filled; labels are only added.
pub(crate) fn apply(event: &mut Event, line: SyslogLine, keep: Keep) {
    if let (Some(host), false) = (line.host, keep.host) {
        event.host = Some(host);
    }
    if event.program.is_none() {
        event.program = line.program;
    }
    if let (Some(ts), false) = (line.timestamp, keep.timestamp) {
        event.timestamp = ts;
    }
    if !keep.severity {
        event.severity = line.severity.unwrap_or(Severity::Info);
    }
    for (name, value) in line.labels {
        add_sender_label(&mut event.labels, &name, value);
    }
    event.message = Some(line.message);
}

static REPEATED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^message repeated ([0-9]+) times: \[\s*(.*?)\s*\]$").expect("static regex compiles"));

/// rsyslog's `message repeated N times: [ msg ]`: the count and the inner message.
pub(crate) fn repeated(message: &str) -> Option<(usize, &str)> {
    let caps = REPEATED.captures(message)?;
    let count = caps.get(1)?.as_str().parse::<usize>().unwrap_or(MAX_REPEAT).clamp(1, MAX_REPEAT);
    Some((count, caps.get(2)?.as_str()))
}

/// POST /v1/syslog: one RFC 3164 or RFC 5424 line per line (blank lines skipped; index = 0-based line number).
pub fn parse_syslog_lines(body: &str, ctx: &ParseContext) -> Result<Parsed, BodyError> {
    parse_lines(body, ctx, "syslog")
}

/// One event per non-blank line, each tried as syslog then taken as a plain message. Shared with HEC raw.
pub(crate) fn parse_lines(body: &str, ctx: &ParseContext, default_source: &str) -> Result<Parsed, BodyError> {
    let total = body.lines().filter(|l| !l.trim().is_empty()).count();
    if total == 0 {
        return Err(BodyError::empty());
    }
    if total > ctx.max_events {
        return Err(BodyError::TooManyEvents { limit: ctx.max_events });
    }
    let mut out = Collector::new(ctx);
    let mut remaining = total;
    for (index, line) in body.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        remaining -= 1;
        if out.reject_oversize(index, line) {
            continue;
        }
        let event = event_from_line(line, ctx, default_source);
        let expansion = event.message.as_deref().and_then(repeated).map(|(n, inner)| (n, inner.to_string()));
        match expansion {
            Some((count, inner)) => {
                // Keep room for the lines still to come, so the expansion never makes the body too big.
                let budget = ctx.max_events.saturating_sub(out.count() + remaining).max(1);
                let mut event = event;
                event.message = Some(inner);
                for _ in 0..count.min(budget) {
                    out.accept(index, line, Draft { event: event.clone(), id: None });
                }
            }
            None => out.accept(index, line, Draft { event, id: None }),
        }
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use crate::model::Outcome;

    #[test]
    fn rfc3164_line_fills_host_program_pid_severity_and_time() {
        let body =
            "<38>Jun 15 11:59:58 bastion sshd[4242]: Failed password for root from 203.0.113.7 port 52144 ssh2\n";
        let parsed = parse_syslog_lines(body, &ctx()).unwrap();
        assert!(parsed.rejected.is_empty());
        let e = &parsed.events[0];
        assert_eq!(e.tenant, "acme");
        assert_eq!(e.source, "syslog");
        assert_eq!(e.host.as_deref(), Some("bastion"));
        assert_eq!(e.program.as_deref(), Some("sshd"));
        assert_eq!(e.labels.get("pid").map(String::as_str), Some("4242"));
        assert_eq!(e.labels.get("facility").map(String::as_str), Some("auth"));
        assert_eq!(e.severity, Severity::Info); // 38 = auth.info
        assert_eq!(e.timestamp, at(2024, 6, 15, 11, 59, 58));
        assert_eq!(e.received_at, ctx().received_at);
        assert_eq!(e.raw.as_deref(), Some(body.trim()));
        assert_eq!(e.message.as_deref(), Some("Failed password for root from 203.0.113.7 port 52144 ssh2"));
        // normalised
        assert_eq!(e.category.as_deref(), Some("authentication"));
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user.as_deref(), Some("root"));
        assert_eq!(e.src_ip, "203.0.113.7".parse().ok());
        assert_eq!(e.src_port, Some(52144));
    }

    #[test]
    fn pri_maps_to_severity_and_no_pri_is_info() {
        let c = ctx();
        let parsed = parse_syslog_lines(
            "<34>Jun 15 11:00:00 h app: crit\n<27>Jun 15 11:00:00 h app: err\nJun 15 11:00:00 h app: none",
            &c,
        )
        .unwrap();
        let sev: Vec<Severity> = parsed.events.iter().map(|e| e.severity).collect();
        assert_eq!(sev, vec![Severity::High, Severity::Medium, Severity::Info]);
    }

    #[test]
    fn year_less_dates_resolve_to_the_most_recent_past() {
        // Dec 31 lines received on Jan 1 belong to the previous year.
        let mut c = ctx();
        c.received_at = at(2025, 1, 1, 0, 5, 0);
        let parsed =
            parse_syslog_lines("<13>Dec 31 23:59:50 h app: late\n<13>Jan  1 00:04:59 h app: early", &c).unwrap();
        assert_eq!(parsed.events[0].timestamp, at(2024, 12, 31, 23, 59, 50));
        assert_eq!(parsed.events[1].timestamp, at(2025, 1, 1, 0, 4, 59));

        // A clock a little behind the sender (within a day) stays in the current year.
        c.received_at = at(2024, 6, 15, 12, 0, 0);
        let parsed =
            parse_syslog_lines("<13>Jun 16 08:00:00 h app: skewed\n<13>Jul 20 08:00:00 h app: old", &c).unwrap();
        assert_eq!(parsed.events[0].timestamp, at(2024, 6, 16, 8, 0, 0));
        assert_eq!(parsed.events[1].timestamp, at(2023, 7, 20, 8, 0, 0));

        // Feb 29 received in a non-leap year goes back to the last leap year.
        c.received_at = at(2025, 3, 1, 0, 0, 0);
        let parsed = parse_syslog_lines("<13>Feb 29 10:00:00 h app: leap", &c).unwrap();
        assert_eq!(parsed.events[0].timestamp, at(2024, 2, 29, 10, 0, 0));
    }

    #[test]
    fn rfc3164_with_year_and_rfc3339_timestamps() {
        let parsed = parse_syslog_lines(
            "<13>Dec 28 2008 16:49:07 h app: with year\n<13>2024-06-15T10:00:00+02:00 h app[7]: iso",
            &ctx(),
        )
        .unwrap();
        assert_eq!(parsed.events[0].timestamp, at(2008, 12, 28, 16, 49, 7));
        assert_eq!(parsed.events[1].timestamp, at(2024, 6, 15, 8, 0, 0));
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let line = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 \
                    [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event";
        let parsed = parse_syslog_lines(line, &ctx()).unwrap();
        let e = &parsed.events[0];
        assert_eq!(e.host.as_deref(), Some("mymachine.example.com"));
        assert_eq!(e.program.as_deref(), Some("evntslog"));
        assert_eq!(e.severity, Severity::Info); // 165 = local4.notice
        assert_eq!(e.labels.get("msgid").map(String::as_str), Some("ID47"));
        assert_eq!(e.labels.get("exampleSDID@32473.eventID").map(String::as_str), Some("1011"));
        assert_eq!(e.labels.get("exampleSDID@32473.iut").map(String::as_str), Some("3"));
        assert_eq!(e.message.as_deref(), Some("An application event"));
        assert_eq!(e.timestamp, at(2003, 10, 11, 22, 14, 15) + Duration::milliseconds(3));
        assert!(!e.labels.contains_key("pid"));
    }

    #[test]
    fn rfc5424_nil_values_and_pid() {
        let parsed = parse_syslog_lines(
            "<86>1 2024-06-15T11:00:00Z bastion sshd 991 - - Accepted password for bob from 192.0.2.9 port 4000 ssh2",
            &ctx(),
        )
        .unwrap();
        let e = &parsed.events[0];
        assert_eq!(e.labels.get("pid").map(String::as_str), Some("991"));
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.user.as_deref(), Some("bob"));
    }

    #[test]
    fn non_syslog_lines_are_kept_as_messages_and_oversize_lines_rejected() {
        let mut c = ctx();
        c.max_event_bytes = 300;
        c.host = Some("default-host");
        let long = "x".repeat(301);
        let body = format!("just some text\n\n{long}\nfoo");
        let parsed = parse_syslog_lines(&body, &c).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[0].message.as_deref(), Some("just some text"));
        assert_eq!(parsed.events[0].source, "syslog");
        assert_eq!(parsed.events[0].host.as_deref(), Some("default-host"));
        assert_eq!(parsed.events[0].timestamp, c.received_at);
        assert_eq!(parsed.rejected.len(), 1);
        assert_eq!(parsed.rejected[0].index, 2);
        assert!(parsed.rejected[0].error.contains("limit of 300 bytes"), "{}", parsed.rejected[0].error);
    }

    #[test]
    fn encoded_size_counts_not_only_the_line() {
        // The line fits, but the stored event (raw + message + fields) does not: rejected, never truncated.
        let mut c = ctx();
        c.max_event_bytes = 200;
        let line = format!("<13>Jun 15 11:00:00 h app: {}", "y".repeat(120));
        let parsed = parse_syslog_lines(&line, &c).unwrap();
        assert!(parsed.events.is_empty());
        assert!(parsed.rejected[0].error.contains("as stored"));
    }

    #[test]
    fn message_repeated_expands_with_distinct_ids() {
        let body = "<38>Jun 15 11:59:58 bastion sshd[4242]: message repeated 3 times: [ Failed password for root from 203.0.113.7 port 52144 ssh2]";
        let parsed = parse_syslog_lines(body, &ctx()).unwrap();
        assert_eq!(parsed.events.len(), 3);
        for e in &parsed.events {
            assert_eq!(e.message.as_deref(), Some("Failed password for root from 203.0.113.7 port 52144 ssh2"));
            assert_eq!(e.outcome, Outcome::Failure);
            assert_eq!(e.raw.as_deref(), Some(body));
        }
        let mut ids: Vec<&str> = parsed.events.iter().map(|e| e.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn message_repeated_is_capped_by_1000_and_the_budget() {
        let line = "<13>Jun 15 11:00:00 h app: message repeated 5000 times: [ hi ]";
        let mut c = ctx();
        c.max_events = 20_000;
        assert_eq!(parse_syslog_lines(line, &c).unwrap().events.len(), 1000);
        // Budget 10 with one more line after it: the expansion leaves room for that line.
        c.max_events = 10;
        let body = format!("{line}\n<13>Jun 15 11:00:01 h app: after");
        let parsed = parse_syslog_lines(&body, &c).unwrap();
        assert_eq!(parsed.events.len(), 10);
        assert_eq!(parsed.events[9].message.as_deref(), Some("after"));
    }

    #[test]
    fn too_many_lines_and_empty_bodies() {
        let mut c = ctx();
        c.max_events = 2;
        assert_eq!(parse_syslog_lines("a\nb\n\nc", &c), Err(BodyError::TooManyEvents { limit: 2 }));
        assert!(parse_syslog_lines("a\n\nb\n", &c).is_ok());
        assert_eq!(parse_syslog_lines("", &c), Err(BodyError::empty()));
        assert_eq!(parse_syslog_lines(" \r\n\n", &c), Err(BodyError::empty()));
    }

    #[test]
    fn identical_lines_get_distinct_ids_and_reparsing_gives_the_same_ids() {
        let body = "<13>Jun 15 11:00:00 h app: same\n<13>Jun 15 11:00:00 h app: same\n<13>Jun 15 11:00:00 h app: other";
        let a = parse_syslog_lines(body, &ctx()).unwrap();
        let b = parse_syslog_lines(body, &ctx()).unwrap();
        let ids = |p: &Parsed| p.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(a.events[0].id, a.events[1].id);
        assert_eq!(a.events[0].id, crate::parse::stable_id("acme", "<13>Jun 15 11:00:00 h app: same", 0));
        assert_eq!(a.events[1].id, crate::parse::stable_id("acme", "<13>Jun 15 11:00:00 h app: same", 1));
        // Another tenant: other ids.
        let mut c = ctx();
        c.tenant = "globex";
        let other = parse_syslog_lines(body, &c).unwrap();
        assert_ne!(ids(&a), ids(&other));
        assert_eq!(other.events[0].tenant, "globex");
    }

    #[test]
    fn crlf_lines_and_context_source() {
        let mut c = ctx();
        c.source = Some("firewall");
        let parsed =
            parse_syslog_lines("<13>Jun 15 11:00:00 h app: one\r\n<13>Jun 15 11:00:00 h app: two\r\n", &c).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[0].message.as_deref(), Some("one"));
        assert_eq!(parsed.events[1].source, "firewall");
    }

    #[test]
    fn line_without_host_from_dev_log() {
        let parsed = parse_syslog_lines(
            "<86>Jun 15 11:00:00 sudo[12]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
            &ctx(),
        )
        .unwrap();
        let e = &parsed.events[0];
        assert_eq!(e.program.as_deref(), Some("sudo"));
        assert_eq!(e.host, None);
        assert_eq!(e.action.as_deref(), Some("sudo"));
        assert_eq!(e.user.as_deref(), Some("alice"));
    }
}

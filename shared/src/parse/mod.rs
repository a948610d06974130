//! Turning what log senders POST into normalised [`Event`]s. Pure code: no I/O, no clock (the caller injects
//! `received_at`), no panics on any input.
//!
//! * [`parse_json_events`]: one JSON object, a JSON array of objects, or NDJSON (`POST /v1/events`).
//! * [`parse_syslog_lines`]: RFC 3164 / RFC 5424 lines (`POST /v1/syslog`).
//! * [`parse_hec_events`] / [`parse_hec_raw`]: Splunk HTTP Event Collector bodies.
//! * [`normalize`]: fills category/action/outcome/user/src_ip/... from the program and message
//!   (sshd, sudo, su, PAM, Apache/Nginx access logs).
//!
//! Every produced event carries the caller's tenant (never the payload's), `received_at`, its original text in
//! `raw`, and an id: the sender's, or [`stable_id`] over the content, so a retried request yields the same ids.

mod auth_log;
mod body;
mod syslog;
mod web;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{Event, Outcome, Timestamp};

pub use body::{
    parse_hec_events, parse_hec_raw, parse_json_events, HEC_EVENT_BLANK, HEC_EVENT_REQUIRED, HEC_FIELDS_INVALID,
};
pub use syslog::parse_syslog_lines;

/// What a parser needs to know about the request besides its body.
#[derive(Clone, Copy, Debug)]
pub struct ParseContext<'a> {
    /// From the caller's token: always the event's tenant; a `tenant` field in the payload is ignored.
    pub tenant: &'a str,
    /// Injected clock; also the reference for year-less syslog dates.
    pub received_at: Timestamp,
    /// An event whose JSON encoding is larger is rejected individually.
    pub max_event_bytes: usize,
    /// More events than this in one body is [`BodyError::TooManyEvents`].
    pub max_events: usize,
    /// Default `source` (HEC `source`/`sourcetype` query parameters etc.).
    pub source: Option<&'a str>,
    /// Default host (HEC `host` query parameter).
    pub host: Option<&'a str>,
}

/// One event of a body that could not be accepted; the others still are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// 0-based position: array index, NDJSON line number, syslog line number or HEC object number.
    pub index: usize,
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub events: Vec<Event>,
    pub rejected: Vec<Rejection>,
}

/// The body as a whole cannot be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// The body cannot be read at all (400, naming where; `line`/`column` are 1-based).
    #[error("{error}")]
    Malformed { error: String, line: Option<usize>, column: Option<usize> },
    /// More events than the per-request limit (413).
    #[error("too many events in one request: the limit is {limit}")]
    TooManyEvents { limit: usize },
}

impl BodyError {
    pub(crate) fn empty() -> BodyError {
        BodyError::Malformed { error: "empty body".into(), line: None, column: None }
    }
}

/// Hex of SHA-256 over the tenant, the content and its occurrence number in the body; 32 hex chars.
/// Each part is length-prefixed, so no two different inputs share an encoding.
pub fn stable_id(tenant: &str, content: &str, occurrence: usize) -> String {
    let mut h = Sha256::new();
    h.update((tenant.len() as u64).to_be_bytes());
    h.update(tenant.as_bytes());
    h.update((content.len() as u64).to_be_bytes());
    h.update(content.as_bytes());
    h.update((occurrence as u64).to_be_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Fills category/action/outcome/user/src_ip/src_port/labels from the program and message.
///
/// Only the program that owns a message format is trusted with it: an `sshd` line is read as sshd, but the same
/// text logged by `logger` (or inside a sudo `COMMAND=`) is not an authentication event. Idempotent, and never
/// overwrites a field that is already set (an `Unknown` outcome counts as unset; labels are only added).
pub fn normalize(event: &mut Event) {
    let Some(message) = event.message.clone() else { return };
    let program = event.program.as_deref().map(program_name);
    match program.as_deref() {
        Some("sshd" | "sshd-session" | "sshd-auth") => auth_log::sshd(event, &message),
        Some("sudo") => auth_log::sudo(event, &message),
        Some("su") => auth_log::su(event, &message),
        _ => web::access_log(event, &message),
    }
}

/// `/usr/sbin/sshd` → `sshd`.
fn program_name(p: &str) -> String {
    p.trim().rsplit('/').next().unwrap_or("").to_ascii_lowercase()
}

// ---- helpers shared by the parsers -------------------------------------------------------------------------

/// At most this many labels come from the sender (its `labels`, unknown fields, HEC `fields`, structured data).
pub(crate) const MAX_SENDER_LABELS: usize = 32;
/// Longer label names from the sender are dropped.
pub(crate) const MAX_LABEL_NAME: usize = 64;

/// Adds a sender-provided label unless the bounds are reached; existing labels win.
pub(crate) fn add_sender_label(labels: &mut BTreeMap<String, String>, name: &str, value: String) {
    if name.is_empty() || name.chars().count() > MAX_LABEL_NAME || labels.len() >= MAX_SENDER_LABELS {
        return;
    }
    labels.entry(name.to_string()).or_insert(value);
}

/// A sender's event id: 1..=128 characters of `[A-Za-z0-9._:-]`.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// An IP address as logs write it: bare, `[v6]`, or v6 with a `%zone`. IPv4-mapped v6 becomes plain v4, so one
/// client is one entity however it was logged.
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let (addr, zone) = s.split_once('%')?;
            if zone.is_empty() {
                return None;
            }
            addr.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)?
        }
    };
    Some(ip.to_canonical())
}

/// Shortens a value quoted in an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
}

pub(crate) fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

pub(crate) fn fill_str(slot: &mut Option<String>, value: &str) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value.to_string());
    }
}

pub(crate) fn fill_outcome(event: &mut Event, outcome: Outcome) {
    if event.outcome == Outcome::Unknown {
        event.outcome = outcome;
    }
}

pub(crate) fn fill_label(event: &mut Event, name: &str, value: &str) {
    if !value.is_empty() {
        event.labels.entry(name.to_string()).or_insert_with(|| value.to_string());
    }
}

/// A client address from a log line: an IP fills `src_ip`; a name (UseDNS, `rhost=host.example`) goes to
/// `labels["src_host"]` and leaves `src_ip` empty.
pub(crate) fn fill_source(event: &mut Event, addr: &str) {
    let addr = addr.trim();
    if addr.is_empty() || addr == "-" {
        return;
    }
    match parse_ip(addr) {
        Some(ip) => fill(&mut event.src_ip, Some(ip)),
        None => fill_label(event, "src_host", addr),
    }
}

/// A parsed event before the common finishing steps, with the sender's (already validated) id if any.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub event: Event,
    pub id: Option<String>,
}

/// A blank event stamped with the request's tenant and arrival time.
pub(crate) fn blank_event(ctx: &ParseContext, source: &str) -> Event {
    Event {
        tenant: ctx.tenant.to_string(),
        timestamp: ctx.received_at,
        received_at: ctx.received_at,
        source: source.to_string(),
        host: ctx.host.filter(|h| !h.is_empty()).map(str::to_string),
        ..Event::default()
    }
}

/// Collects the events of one body: finishes each (tenant, raw, normalize, id, size check) and counts identical
/// contents so repeated lines get distinct, yet reproducible, ids.
pub(crate) struct Collector<'b, 'c> {
    ctx: &'c ParseContext<'c>,
    seen: HashMap<&'b str, usize>,
    out: Parsed,
}

impl<'b, 'c> Collector<'b, 'c> {
    pub fn new(ctx: &'c ParseContext<'c>) -> Self {
        Collector { ctx, seen: HashMap::new(), out: Parsed::default() }
    }

    /// Events accepted and rejected so far.
    pub fn count(&self) -> usize {
        self.out.events.len() + self.out.rejected.len()
    }

    pub fn reject(&mut self, index: usize, error: impl Into<String>) {
        self.out.rejected.push(Rejection { index, error: error.into() });
    }

    /// Rejects `raw` if it alone is over the event size limit (checked before parsing it).
    pub fn reject_oversize(&mut self, index: usize, raw: &str) -> bool {
        if raw.len() > self.ctx.max_event_bytes {
            let limit = self.ctx.max_event_bytes;
            self.reject(index, format!("event is {} bytes, over the limit of {limit} bytes", raw.len()));
            true
        } else {
            false
        }
    }

    pub fn accept(&mut self, index: usize, raw: &'b str, draft: Draft) {
        let Draft { mut event, id } = draft;
        event.tenant = self.ctx.tenant.to_string();
        event.received_at = self.ctx.received_at;
        event.raw = Some(raw.to_string());
        normalize(&mut event);
        let seen = self.seen.entry(raw).or_insert(0);
        let occurrence = *seen;
        *seen += 1;
        event.id = id.unwrap_or_else(|| stable_id(self.ctx.tenant, raw, occurrence));
        let size = serde_json::to_vec(&event).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > self.ctx.max_event_bytes {
            let limit = self.ctx.max_event_bytes;
            self.reject(index, format!("event is {size} bytes as stored, over the limit of {limit} bytes"));
            return;
        }
        self.out.events.push(event);
    }

    pub fn finish(self) -> Parsed {
        self.out
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use chrono::TimeZone;

    use super::*;

    pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Timestamp {
        chrono::Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap_or_default()
    }

    pub fn ctx() -> ParseContext<'static> {
        ParseContext {
            tenant: "acme",
            received_at: at(2024, 6, 15, 12, 0, 0),
            max_event_bytes: 32 * 1024,
            max_events: 1000,
            source: None,
            host: None,
        }
    }

    /// An event carrying only a program and a message, normalised.
    pub fn normalized(program: Option<&str>, message: &str) -> Event {
        let mut e = Event {
            program: program.map(str::to_string),
            message: Some(message.to_string()),
            timestamp: at(2024, 6, 15, 12, 0, 0),
            received_at: at(2024, 6, 15, 12, 0, 0),
            ..Event::default()
        };
        normalize(&mut e);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn stable_id_is_32_hex_and_depends_on_every_part() {
        let id = stable_id("acme", "line", 0);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, stable_id("acme", "line", 0));
        assert_ne!(id, stable_id("acme", "line", 1));
        assert_ne!(id, stable_id("other", "line", 0));
        assert_ne!(id, stable_id("acme", "line2", 0));
        // Length prefixes keep the boundary between tenant and content.
        assert_ne!(stable_id("ab", "c", 0), stable_id("a", "bc", 0));
    }

    #[test]
    fn sender_ids_are_checked_for_charset_and_length() {
        assert!(valid_id("evt-1.a_b:c"));
        assert!(valid_id(&"x".repeat(128)));
        assert!(!valid_id(&"x".repeat(129)));
        assert!(!valid_id(""));
        assert!(!valid_id("has space"));
        assert!(!valid_id("slash/no"));
        assert!(!valid_id("é"));
    }

    #[test]
    fn ip_addresses_parse_in_the_forms_logs_use() {
        assert_eq!(parse_ip("203.0.113.7"), "203.0.113.7".parse().ok());
        assert_eq!(parse_ip("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("[2001:db8::1]"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("::ffff:10.0.0.1"), "10.0.0.1".parse().ok());
        assert_eq!(parse_ip("fe80::1%eth0"), "fe80::1".parse().ok());
        assert_eq!(parse_ip("host.example"), None);
        assert_eq!(parse_ip("999.1.1.1"), None);
        assert_eq!(parse_ip("%"), None);
    }

    #[test]
    fn line_col_counts_lines_and_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("abc\nde", 5), (2, 2));
        assert_eq!(line_col("é\nx", 1), (1, 1)); // inside a char: moved back to its start
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn normalize_never_overwrites_and_is_idempotent() {
        let mut e = Event {
            program: Some("sshd".into()),
            message: Some("Failed password for root from 203.0.113.7 port 22 ssh2".into()),
            category: Some("custom".into()),
            user: Some("given".into()),
            ..Event::default()
        };
        normalize(&mut e);
        assert_eq!(e.category.as_deref(), Some("custom"));
        assert_eq!(e.user.as_deref(), Some("given"));
        assert_eq!(e.action.as_deref(), Some("login"));
        assert_eq!(e.outcome, Outcome::Failure);
        let once = e.clone();
        normalize(&mut e);
        assert_eq!(e, once);

        let mut e = Event {
            program: Some("sshd".into()),
            message: Some("Failed password for root from 203.0.113.7 port 22 ssh2".into()),
            outcome: Outcome::Success,
            ..Event::default()
        };
        normalize(&mut e);
        assert_eq!(e.outcome, Outcome::Success);
    }

    #[test]
    fn normalize_reads_the_program_name_from_a_path() {
        let e = normalized(Some("/usr/sbin/sshd"), "Accepted publickey for alice from 10.0.0.5 port 50000 ssh2");
        assert_eq!(e.outcome, Outcome::Success);
        let e = normalized(None, "Accepted publickey for alice from 10.0.0.5 port 50000 ssh2");
        assert_eq!(e.category, None);
    }
}

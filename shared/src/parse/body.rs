//! Request bodies: JSON events (object, array, NDJSON) and Splunk HEC (event and raw endpoints).

use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::IgnoredAny;
use serde_json::{Deserializer, Map, Value};

use super::syslog::{self, Keep};
use super::{
    add_sender_label, blank_event, parse_ip, shorten, valid_id, BodyError, Collector, Draft, ParseContext, Parsed,
};
use crate::model::{Event, Outcome, Severity, Timestamp};

/// Fields with a meaning of their own: never copied into labels. (`tenant` comes from the token; the scoring
/// fields and `raw`/`received_at` are Vigil's to set.)
const KNOWN: &[&str] = &[
    "id",
    "tenant",
    "timestamp",
    "@timestamp",
    "time",
    "host",
    "source",
    "program",
    "app",
    "appname",
    "category",
    "action",
    "outcome",
    "severity",
    "src_ip",
    "source_ip",
    "client_ip",
    "ip",
    "src_port",
    "source_port",
    "user",
    "username",
    "dst_ip",
    "dest_ip",
    "destination_ip",
    "message",
    "msg",
    "log",
    "labels",
    "raw",
    "received_at",
    "score",
    "risk",
    "reasons",
    "rules",
    "mitre",
];

// ---- POST /v1/events ------------------------------------------------------------------------------------------

/// One JSON object, a JSON array of objects, or NDJSON (autodetected; blank lines skipped).
pub fn parse_json_events(body: &str, ctx: &ParseContext) -> Result<Parsed, BodyError> {
    let start = body.len() - body.trim_start().len();
    if body.trim().is_empty() {
        return Err(BodyError::empty());
    }
    if body[start..].starts_with('[') {
        return parse_array(body, start, ctx);
    }
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(obj)) => {
            if ctx.max_events < 1 {
                return Err(BodyError::TooManyEvents { limit: ctx.max_events });
            }
            let mut out = Collector::new(ctx);
            object_event(&mut out, 0, body.trim(), &obj, ctx);
            Ok(out.finish())
        }
        Ok(_) => {
            let (line, column) = super::line_col(body, start);
            Err(BodyError::Malformed {
                error: "body must be a JSON object, an array of objects, or NDJSON".into(),
                line: Some(line),
                column: Some(column),
            })
        }
        Err(whole) => parse_ndjson(body, ctx, &whole),
    }
}

/// A JSON array, read element by element so each event's `raw` is its own text.
fn parse_array(body: &str, open: usize, ctx: &ParseContext) -> Result<Parsed, BodyError> {
    let mut out = Collector::new(ctx);
    let mut pos = open + 1;
    let mut index = 0;
    loop {
        pos = skip_ws(body, pos);
        if index == 0 && body[pos..].starts_with(']') {
            pos += 1;
            break;
        }
        if index >= ctx.max_events {
            return Err(BodyError::TooManyEvents { limit: ctx.max_events });
        }
        let mut stream = Deserializer::from_str(&body[pos..]).into_iter::<Value>();
        let Some(Ok(value)) = stream.next() else { return Err(whole_body_error(body)) };
        let end = pos + stream.byte_offset();
        let raw = &body[pos..end];
        match value {
            Value::Object(obj) => object_event(&mut out, index, raw, &obj, ctx),
            other => out.reject(index, format!("element {index} is not a JSON object (found {})", kind(&other))),
        }
        index += 1;
        pos = skip_ws(body, end);
        match body[pos..].chars().next() {
            Some(',') => pos += 1,
            Some(']') => {
                pos += 1;
                break;
            }
            _ => return Err(whole_body_error(body)),
        }
    }
    if !body[pos..].trim().is_empty() {
        return Err(whole_body_error(body));
    }
    Ok(out.finish())
}

/// Newline-delimited JSON: bad lines are rejected one by one (index = 0-based line number, blank lines counted).
/// A body none of whose lines is JSON is not NDJSON but malformed, reported where the whole body first fails.
fn parse_ndjson(body: &str, ctx: &ParseContext, whole: &serde_json::Error) -> Result<Parsed, BodyError> {
    let lines: Vec<(usize, &str)> =
        body.split('\n').map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()).collect();
    if lines.len() < 2 {
        return Err(malformed(whole));
    }
    if lines.len() > ctx.max_events {
        return Err(BodyError::TooManyEvents { limit: ctx.max_events });
    }
    let values: Vec<(usize, &str, Result<Value, serde_json::Error>)> =
        lines.into_iter().map(|(i, l)| (i, l, serde_json::from_str::<Value>(l))).collect();
    if values.iter().all(|(_, _, v)| v.is_err()) {
        return Err(malformed(whole));
    }
    let mut out = Collector::new(ctx);
    for (index, line, value) in values {
        match value {
            Ok(Value::Object(obj)) => object_event(&mut out, index, line, &obj, ctx),
            Ok(other) => out.reject(index, format!("line {index} is not a JSON object (found {})", kind(&other))),
            Err(e) => out.reject(index, format!("line {index} is not valid JSON: {}", error_text(&e))),
        }
    }
    Ok(out.finish())
}

fn object_event<'b>(
    out: &mut Collector<'b, '_>,
    index: usize,
    raw: &'b str,
    obj: &Map<String, Value>,
    ctx: &ParseContext,
) {
    if out.reject_oversize(index, raw) {
        return;
    }
    match event_from_object(obj, ctx, "json") {
        Ok(draft) => out.accept(index, raw, draft),
        Err(error) => out.reject(index, error),
    }
}

/// Maps a JSON object onto an event. Errors name the offending field.
pub(crate) fn event_from_object(
    obj: &Map<String, Value>,
    ctx: &ParseContext,
    default_source: &str,
) -> Result<Draft, String> {
    let mut e: Event = blank_event(ctx, ctx.source.unwrap_or(default_source));
    let mut keep = Keep::default();

    let id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::String(_) | Value::Number(_))) => {
            let id = scalar(v).unwrap_or_default();
            if !valid_id(&id) {
                return Err(format!("id: {} must be 1-128 characters of A-Z a-z 0-9 . _ : -", shorten_json(v)));
            }
            Some(id)
        }
        Some(_) => return Err("id: must be a string".into()),
    };
    if let Some((field, v)) = first(obj, &["timestamp", "@timestamp", "time"]) {
        e.timestamp = parse_time(field, v)?;
        keep.timestamp = true;
    }
    if let Some(host) = ident(obj, &["host"])? {
        e.host = Some(host);
        keep.host = true;
    }
    if let Some(source) = ident(obj, &["source"])? {
        e.source = source;
    }
    e.program = ident(obj, &["program", "app", "appname"])?;
    e.category = ident(obj, &["category"])?;
    e.action = ident(obj, &["action"])?;
    if let Some((field, v)) = first(obj, &["outcome"]) {
        e.outcome = parse_outcome(v)
            .ok_or_else(|| format!("{field}: {} is not an outcome (success, failure or unknown)", shorten_json(v)))?;
    }
    if let Some((field, v)) = first(obj, &["severity"]) {
        e.severity = scalar(v).as_deref().and_then(Severity::parse_loose).ok_or_else(|| {
            format!(
                "{field}: {} is not a severity (info, low, medium, high, critical, a syslog keyword or 0-7)",
                shorten_json(v)
            )
        })?;
        keep.severity = true;
    }
    if let Some((field, v)) = first(obj, &["src_ip", "source_ip", "client_ip", "ip"]) {
        if let Some((ip, port)) = parse_addr(field, v)? {
            e.src_ip = Some(ip);
            e.src_port = port;
        }
    }
    if let Some((field, v)) = first(obj, &["src_port", "source_port"]) {
        e.src_port = Some(parse_port(field, v)?);
    }
    e.user = ident(obj, &["user", "username"])?;
    if let Some((field, v)) = first(obj, &["dst_ip", "dest_ip", "destination_ip"]) {
        e.dst_ip = parse_addr(field, v)?.map(|(ip, _)| ip);
    }
    if let Some((_, v)) = first(obj, &["message", "msg", "log"]) {
        e.message = Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    match obj.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (name, value) in labels {
                if let Some(value) = label_value(value) {
                    add_sender_label(&mut e.labels, name, value);
                }
            }
        }
        Some(_) => return Err("labels: must be an object".into()),
    }
    for (name, value) in obj {
        if !KNOWN.contains(&name.as_str()) {
            if let Some(value) = scalar(value) {
                add_sender_label(&mut e.labels, name, value);
            }
        }
    }
    // Vector / Fluent Bit ship the raw syslog line in `message`: read it when the sender named no program.
    if e.program.is_none() {
        if let Some(line) = e.message.as_deref().and_then(|m| syslog::parse_line(m, ctx.received_at)) {
            syslog::apply(&mut e, line, keep);
        }
    }
    Ok(Draft { event: e, id })
}

// ---- Splunk HEC -----------------------------------------------------------------------------------------------

/// POST /services/collector/event: concatenated JSON objects (whitespace between them optional), each
/// `{"event": string|object, "time", "host", "source", "sourcetype", "index", "fields": {..}}`.
/// The envelope's metadata wins over the event object's, which wins over the query parameters (`ctx`).
/// A JSON syntax error anywhere makes the body unreadable past it: the whole body is malformed (as Splunk does).
pub fn parse_hec_events(body: &str, ctx: &ParseContext) -> Result<Parsed, BodyError> {
    if body.trim().is_empty() {
        return Err(BodyError::empty());
    }
    let mut out = Collector::new(ctx);
    let mut stream = Deserializer::from_str(body).into_iter::<Value>();
    let mut start = 0;
    let mut index = 0;
    while let Some(item) = stream.next() {
        let value = item.map_err(|e| malformed(&e))?;
        if index >= ctx.max_events {
            return Err(BodyError::TooManyEvents { limit: ctx.max_events });
        }
        let end = stream.byte_offset();
        let raw = body[start..end].trim();
        start = end;
        if !out.reject_oversize(index, raw) {
            match value {
                Value::Object(envelope) => match hec_event(&envelope, ctx) {
                    Ok(draft) => out.accept(index, raw, draft),
                    Err(error) => out.reject(index, error),
                },
                other => out.reject(index, format!("HEC object {index} is not a JSON object (found {})", kind(&other))),
            }
        }
        index += 1;
    }
    Ok(out.finish())
}

/// The rejection texts that HEC answers with their own Splunk codes (12, 13, 15; see [`crate::hec`]).
pub const HEC_EVENT_REQUIRED: &str = "event: field is required";
pub const HEC_EVENT_BLANK: &str = "event: must not be blank";
pub const HEC_FIELDS_INVALID: &str = "fields: must be an object";

fn hec_event(envelope: &Map<String, Value>, ctx: &ParseContext) -> Result<Draft, String> {
    let mut draft = match envelope.get("event") {
        None | Some(Value::Null) => return Err(HEC_EVENT_REQUIRED.into()),
        Some(Value::Object(obj)) => event_from_object(obj, ctx, "hec")?,
        Some(Value::String(s)) if s.trim().is_empty() => return Err(HEC_EVENT_BLANK.into()),
        Some(Value::String(s)) => Draft { event: syslog::event_from_line(s.trim(), ctx, "hec"), id: None },
        Some(other) => Draft { event: syslog::event_from_line(&other.to_string(), ctx, "hec"), id: None },
    };
    let e = &mut draft.event;
    if let Some((field, v)) = first(envelope, &["time"]) {
        e.timestamp = parse_time(field, v)?;
    }
    if let Some(host) = ident(envelope, &["host"])? {
        e.host = Some(host);
    }
    let sourcetype = ident(envelope, &["sourcetype"])?;
    if let Some(source) = ident(envelope, &["source"])?.or_else(|| sourcetype.clone()) {
        e.source = source;
    }
    if let Some(st) = sourcetype {
        e.labels.entry("sourcetype".into()).or_insert(st);
    }
    if let Some(index) = ident(envelope, &["index"])? {
        e.labels.entry("index".into()).or_insert(index);
    }
    match envelope.get("fields") {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            for (name, value) in fields {
                if let Some(value) = label_value(value) {
                    add_sender_label(&mut e.labels, name, value);
                }
            }
        }
        Some(_) => return Err(HEC_FIELDS_INVALID.into()),
    }
    Ok(draft)
}

/// POST /services/collector/raw: one event per line, each tried as syslog then taken as a plain message.
pub fn parse_hec_raw(body: &str, ctx: &ParseContext) -> Result<Parsed, BodyError> {
    syslog::parse_lines(body, ctx, "hec")
}

// ---- field values ---------------------------------------------------------------------------------------------

/// The first of `keys` present with a non-null value.
fn first<'v>(obj: &'v Map<String, Value>, keys: &[&'static str]) -> Option<(&'static str, &'v Value)> {
    keys.iter().find_map(|k| obj.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
}

/// A string-like field (numbers and booleans as text); blank means absent.
fn ident(obj: &Map<String, Value>, keys: &[&'static str]) -> Result<Option<String>, String> {
    let Some((field, v)) = first(obj, keys) else { return Ok(None) };
    match scalar(v) {
        Some(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        None => Err(format!("{field}: must be a string")),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A label value: scalars as text, arrays/objects as compact JSON, null dropped.
fn label_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
        other => scalar(other),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn shorten_json(v: &Value) -> String {
    shorten(&v.to_string())
}

fn parse_time(field: &str, v: &Value) -> Result<Timestamp, String> {
    let parsed = match v {
        Value::String(s) => parse_time_str(s),
        Value::Number(n) => parse_epoch(&n.to_string()),
        _ => None,
    };
    parsed.ok_or_else(|| format!("{field}: {} is not an RFC 3339 time or epoch seconds/milliseconds", shorten_json(v)))
}

/// RFC 3339 (also with a space for `T`, or without a zone = UTC), RFC 2822, or epoch digits.
pub(crate) fn parse_time_str(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(t) = parse_epoch(s) {
        return Some(t);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    DateTime::parse_from_rfc2822(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Epoch time, told apart by magnitude: seconds below 1e11 (year 5138), then milliseconds, microseconds and
/// nanoseconds. Decimal text is read exactly (no float rounding); negative times are refused.
pub(crate) fn parse_epoch(s: &str) -> Option<Timestamp> {
    const NS: i128 = 1_000_000_000;
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let unit = |whole: f64| -> (i128, usize) {
        if whole < 1e11 {
            (NS, 9)
        } else if whole < 1e14 {
            (1_000_000, 6)
        } else if whole < 1e17 {
            (1_000, 3)
        } else {
            (1, 0)
        }
    };
    let total_ns: i128 = if !int.is_empty() && int.len() <= 20 && digits(int) && digits(frac) {
        let whole: i128 = int.parse().ok()?;
        let (unit_ns, places) = unit(whole as f64);
        let mut scale = unit_ns;
        let mut frac_ns = 0i128;
        for d in frac.bytes().take(places) {
            scale /= 10;
            frac_ns += i128::from(d - b'0') * scale;
        }
        whole.checked_mul(unit_ns)?.checked_add(frac_ns)?
    } else {
        let f: f64 = s.parse().ok()?;
        if !f.is_finite() || f < 0.0 {
            return None;
        }
        let (unit_ns, _) = unit(f);
        (f * unit_ns as f64) as i128
    };
    let secs = i64::try_from(total_ns / NS).ok()?;
    let nanos = u32::try_from(total_ns % NS).ok()?;
    DateTime::from_timestamp(secs, nanos)
}

fn parse_outcome(v: &Value) -> Option<Outcome> {
    let s = match v {
        Value::Bool(true) => return Some(Outcome::Success),
        Value::Bool(false) => return Some(Outcome::Failure),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        _ => return None,
    };
    Some(match s.as_str() {
        "success" | "succeeded" | "successful" | "succeed" | "ok" | "pass" | "passed" | "allow" | "allowed"
        | "accept" | "accepted" | "granted" | "true" | "yes" => Outcome::Success,
        "failure" | "failed" | "fail" | "failures" | "error" | "err" | "denied" | "deny" | "reject" | "rejected"
        | "refused" | "blocked" | "block" | "false" | "no" => Outcome::Failure,
        "unknown" | "" | "-" | "none" | "n/a" => Outcome::Unknown,
        _ => return None,
    })
}

/// An IP field: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`, or with a port (`1.2.3.4:5678`, `[v6]:port`).
/// Blank or `-` is absent.
fn parse_addr(field: &str, v: &Value) -> Result<Option<(IpAddr, Option<u16>)>, String> {
    let Value::String(s) = v else { return Err(format!("{field}: must be a string")) };
    let s = s.trim();
    if s.is_empty() || s == "-" {
        return Ok(None);
    }
    if let Some(ip) = parse_ip(s) {
        return Ok(Some((ip, None)));
    }
    match s.parse::<SocketAddr>() {
        Ok(sa) => Ok(Some((sa.ip().to_canonical(), Some(sa.port())))),
        Err(_) => Err(format!("{field}: {} is not an IP address", shorten_json(v))),
    }
}

fn parse_port(field: &str, v: &Value) -> Result<u16, String> {
    let port = match v {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse::<u16>().ok(),
        _ => None,
    };
    port.ok_or_else(|| format!("{field}: {} is not a port number (0-65535)", shorten_json(v)))
}

// ---- errors ---------------------------------------------------------------------------------------------------

fn skip_ws(body: &str, pos: usize) -> usize {
    let rest = body.get(pos..).unwrap_or("");
    body.len() - rest.trim_start().len()
}

/// serde_json's message without its " at line L column C" suffix (we report positions ourselves).
fn error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((msg, _)) => msg.to_string(),
        None => text,
    }
}

fn malformed(e: &serde_json::Error) -> BodyError {
    if e.line() == 0 {
        return BodyError::Malformed { error: format!("body is not valid JSON: {e}"), line: None, column: None };
    }
    BodyError::Malformed {
        error: format!("body is not valid JSON: {} at line {} column {}", error_text(e), e.line(), e.column()),
        line: Some(e.line()),
        column: Some(e.column()),
    }
}

/// Where the body as a whole first fails to be JSON.
fn whole_body_error(body: &str) -> BodyError {
    match serde_json::from_str::<IgnoredAny>(body) {
        Err(e) => malformed(&e),
        Ok(_) => BodyError::Malformed { error: "body is not valid JSON".into(), line: None, column: None },
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, ctx};
    use super::*;
    use chrono::Duration;

    fn label<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.labels.get(k).map(String::as_str)
    }

    fn ids(p: &Parsed) -> Vec<String> {
        p.events.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn single_object_with_every_field_and_the_payload_tenant_ignored() {
        let body = r#"{"id":"evt-1","tenant":"evil","@timestamp":"2024-06-15T10:00:00+02:00","host":"web1",
            "source":"app-logs","app":"billing","category":"authentication","action":"login","outcome":"failed",
            "severity":"warning","client_ip":"2001:db8::1","src_port":"4242","username":"alice","dst_ip":"10.0.0.1",
            "msg":"bad password","labels":{"env":"prod","n":3,"nil":null},"team":"blue","retries":2,"nested":{"x":1}}"#;
        let parsed = parse_json_events(body, &ctx()).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let e = &parsed.events[0];
        assert_eq!(e.id, "evt-1");
        assert_eq!(e.tenant, "acme");
        assert_eq!(e.timestamp, at(2024, 6, 15, 8, 0, 0));
        assert_eq!(e.received_at, ctx().received_at);
        assert_eq!(e.host.as_deref(), Some("web1"));
        assert_eq!(e.source, "app-logs");
        assert_eq!(e.program.as_deref(), Some("billing"));
        assert_eq!(e.category.as_deref(), Some("authentication"));
        assert_eq!(e.action.as_deref(), Some("login"));
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.severity, Severity::Low);
        assert_eq!(e.src_ip, "2001:db8::1".parse().ok());
        assert_eq!(e.src_port, Some(4242));
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(e.dst_ip, "10.0.0.1".parse().ok());
        assert_eq!(e.message.as_deref(), Some("bad password"));
        assert_eq!(e.raw.as_deref(), Some(body));
        assert_eq!(label(e, "env"), Some("prod"));
        assert_eq!(label(e, "n"), Some("3"));
        assert_eq!(label(e, "team"), Some("blue"));
        assert_eq!(label(e, "retries"), Some("2"));
        assert_eq!(label(e, "nil"), None);
        assert_eq!(label(e, "nested"), None); // unknown non-scalars stay in raw only
        assert_eq!(label(e, "tenant"), None);
    }

    #[test]
    fn defaults_missing_timestamp_and_context_source_and_host() {
        let mut c = ctx();
        c.source = Some("vector");
        c.host = Some("collector-1");
        let parsed = parse_json_events(r#"{"message":"hello"}"#, &c).unwrap();
        let e = &parsed.events[0];
        assert_eq!(e.timestamp, c.received_at);
        assert_eq!(e.source, "vector");
        assert_eq!(e.host.as_deref(), Some("collector-1"));
        assert_eq!(e.severity, Severity::Info);
        let parsed = parse_json_events(r#"{"message":"hello"}"#, &ctx()).unwrap();
        assert_eq!(parsed.events[0].source, "json");
        assert_eq!(parsed.events[0].host, None);
    }

    #[test]
    fn timestamps_in_every_accepted_form() {
        let cases = [
            (r#""2024-06-15T10:00:00Z""#, at(2024, 6, 15, 10, 0, 0)),
            (r#""2024-06-15 10:00:00""#, at(2024, 6, 15, 10, 0, 0)),
            (r#""2024-06-15T10:00:00.250""#, at(2024, 6, 15, 10, 0, 0) + Duration::milliseconds(250)),
            ("1718445600", at(2024, 6, 15, 10, 0, 0)),
            ("1718445600.5", at(2024, 6, 15, 10, 0, 0) + Duration::milliseconds(500)),
            ("1718445600123", at(2024, 6, 15, 10, 0, 0) + Duration::milliseconds(123)),
            (r#""1718445600""#, at(2024, 6, 15, 10, 0, 0)),
            ("1718445600123456", at(2024, 6, 15, 10, 0, 0) + Duration::microseconds(123456)),
            ("1.7184456e9", at(2024, 6, 15, 10, 0, 0)),
        ];
        for (ts, want) in cases {
            for field in ["timestamp", "@timestamp", "time"] {
                let body = format!(r#"{{"{field}":{ts},"message":"m"}}"#);
                let parsed = parse_json_events(&body, &ctx()).unwrap();
                assert_eq!(parsed.events.len(), 1, "{body}: {:?}", parsed.rejected);
                assert_eq!(parsed.events[0].timestamp, want, "{body}");
            }
        }
    }

    #[test]
    fn bad_field_values_reject_that_event_naming_the_field() {
        let body = [
            r#"{"message":"ok"}"#,
            r#"{"timestamp":"yesterday-ish","message":"m"}"#,
            r#"{"client_ip":"999.1.1.1","message":"m"}"#,
            r#"{"src_port":70000}"#,
            r#"{"outcome":"maybe"}"#,
            r#"{"severity":"loud"}"#,
            r#"{"id":"has space"}"#,
            r#"{"labels":"x=1"}"#,
            r#"{"timestamp":-5}"#,
            r#"{"user":{"name":"x"}}"#,
            r#"{"id":["a"]}"#,
        ]
        .join("\n");
        let parsed = parse_json_events(&body, &ctx()).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let errors: Vec<(usize, &str)> = parsed.rejected.iter().map(|r| (r.index, r.error.as_str())).collect();
        let expect_prefix = [
            "timestamp:",
            "client_ip:",
            "src_port:",
            "outcome:",
            "severity:",
            "id:",
            "labels:",
            "timestamp:",
            "user:",
            "id:",
        ];
        assert_eq!(errors.len(), expect_prefix.len());
        for ((index, error), (i, prefix)) in errors.iter().zip(expect_prefix.iter().enumerate()) {
            assert_eq!(*index, i + 1);
            assert!(error.starts_with(prefix), "{error} should start with {prefix}");
        }
    }

    #[test]
    fn outcome_spellings_and_numeric_severity() {
        for (v, want) in [
            (r#""succeeded""#, Outcome::Success),
            (r#""OK""#, Outcome::Success),
            ("true", Outcome::Success),
            (r#""Failed""#, Outcome::Failure),
            (r#""denied""#, Outcome::Failure),
            (r#""unknown""#, Outcome::Unknown),
        ] {
            let parsed = parse_json_events(&format!(r#"{{"outcome":{v}}}"#), &ctx()).unwrap();
            assert_eq!(parsed.events[0].outcome, want, "{v}");
        }
        for (v, want) in [("2", Severity::High), (r#""3""#, Severity::Medium), (r#""critical""#, Severity::Critical)] {
            let parsed = parse_json_events(&format!(r#"{{"severity":{v}}}"#), &ctx()).unwrap();
            assert_eq!(parsed.events[0].severity, want, "{v}");
        }
    }

    #[test]
    fn ip_with_port_and_mapped_v6() {
        let parsed = parse_json_events(r#"{"ip":"[2001:db8::2]:8443"}"#, &ctx()).unwrap();
        assert_eq!(parsed.events[0].src_ip, "2001:db8::2".parse().ok());
        assert_eq!(parsed.events[0].src_port, Some(8443));
        let parsed = parse_json_events(r#"{"source_ip":"::ffff:192.0.2.1","src_port":22}"#, &ctx()).unwrap();
        assert_eq!(parsed.events[0].src_ip, "192.0.2.1".parse().ok());
        assert_eq!(parsed.events[0].src_port, Some(22));
        let parsed = parse_json_events(r#"{"src_ip":"-","dst_ip":""}"#, &ctx()).unwrap();
        assert_eq!((parsed.events[0].src_ip, parsed.events[0].dst_ip), (None, None));
    }

    #[test]
    fn array_with_non_object_elements() {
        let body = r#"[ {"message":"a"}, 42, "str", {"message":"b"} , [1], null ]"#;
        let parsed = parse_json_events(body, &ctx()).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[0].raw.as_deref(), Some(r#"{"message":"a"}"#));
        assert_eq!(parsed.events[1].message.as_deref(), Some("b"));
        let rejected: Vec<usize> = parsed.rejected.iter().map(|r| r.index).collect();
        assert_eq!(rejected, vec![1, 2, 4, 5]);
        assert!(parsed.rejected[0].error.contains("not a JSON object"));
        assert!(parse_json_events("[]", &ctx()).unwrap().events.is_empty());
    }

    #[test]
    fn broken_arrays_and_non_json_are_malformed_with_position() {
        for (body, line, column) in [
            ("[{\"a\":1},\n {\"b\":}]", 2, 7),
            ("[{\"a\":1},]", 1, 10),
            ("[{\"a\":1}] x", 1, 11),
            ("[{\"a\":1}", 1, 8),
            ("hello world", 1, 1),
            ("{\n  \"a\": 1,\n  \"b\": \n}", 4, 1),
        ] {
            match parse_json_events(body, &ctx()) {
                Err(BodyError::Malformed { line: l, column: c, error }) => {
                    assert_eq!((l, c), (Some(line), Some(column)), "{body:?}: {error}");
                    assert!(error.contains("not valid JSON"), "{error}");
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
        assert!(matches!(parse_json_events("42", &ctx()), Err(BodyError::Malformed { .. })));
    }

    #[test]
    fn empty_body() {
        for body in ["", "  \n\t\n"] {
            for parse in [parse_json_events, parse_hec_events, parse_hec_raw, syslog::parse_syslog_lines] {
                match parse(body, &ctx()) {
                    Err(BodyError::Malformed { error, .. }) => assert_eq!(error, "empty body"),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn ndjson_with_bad_lines() {
        let body = "{\"message\":\"one\"}\n\nnot json\n{\"message\":\"two\"}\r\n[1,2]\n{\"message\":\n";
        let parsed = parse_json_events(body, &ctx()).unwrap();
        let messages: Vec<&str> = parsed.events.iter().filter_map(|e| e.message.as_deref()).collect();
        assert_eq!(messages, vec!["one", "two"]);
        assert_eq!(parsed.events[1].raw.as_deref(), Some("{\"message\":\"two\"}"));
        let rejected: Vec<usize> = parsed.rejected.iter().map(|r| r.index).collect();
        assert_eq!(rejected, vec![2, 4, 5]);
        assert!(parsed.rejected[0].error.starts_with("line 2 is not valid JSON"), "{}", parsed.rejected[0].error);
        assert!(parsed.rejected[1].error.contains("not a JSON object"));
    }

    #[test]
    fn too_many_events() {
        let mut c = ctx();
        c.max_events = 2;
        let array = r#"[{"a":1},{"a":2},{"a":3}]"#;
        assert_eq!(parse_json_events(array, &c), Err(BodyError::TooManyEvents { limit: 2 }));
        let ndjson = "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}";
        assert_eq!(parse_json_events(ndjson, &c), Err(BodyError::TooManyEvents { limit: 2 }));
        assert_eq!(parse_json_events(r#"[{"a":1},{"a":2}]"#, &c).map(|p| p.events.len()), Ok(2));
        let hec = r#"{"event":"a"}{"event":"b"}{"event":"c"}"#;
        assert_eq!(parse_hec_events(hec, &c), Err(BodyError::TooManyEvents { limit: 2 }));
        assert_eq!(parse_hec_raw("a\nb\nc", &c), Err(BodyError::TooManyEvents { limit: 2 }));
        let err = parse_json_events(array, &c).unwrap_err();
        assert_eq!(err.to_string(), "too many events in one request: the limit is 2");
    }

    #[test]
    fn oversize_events_are_rejected_individually() {
        let mut c = ctx();
        c.max_event_bytes = 400;
        let big = "z".repeat(500);
        let body = format!(r#"[{{"message":"small"}},{{"message":"{big}"}},{{"message":"{}"}}]"#, "q".repeat(180));
        let parsed = parse_json_events(&body, &c).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let rejected: Vec<usize> = parsed.rejected.iter().map(|r| r.index).collect();
        assert_eq!(rejected, vec![1, 2]); // the third fits as text but not as stored (raw + message)
        assert!(parsed.rejected.iter().all(|r| r.error.contains("over the limit of 400 bytes")));
    }

    #[test]
    fn sender_ids_versus_content_ids() {
        let body = "{\"id\":\"abc-1\",\"message\":\"x\"}\n{\"message\":\"x\"}\n{\"message\":\"x\"}\n{\"id\":42}";
        let a = parse_json_events(body, &ctx()).unwrap();
        assert_eq!(a.events[0].id, "abc-1");
        assert_eq!(a.events[3].id, "42");
        assert_eq!(a.events[1].id, crate::parse::stable_id("acme", "{\"message\":\"x\"}", 0));
        assert_eq!(a.events[2].id, crate::parse::stable_id("acme", "{\"message\":\"x\"}", 1));
        assert_ne!(a.events[1].id, a.events[2].id);
        let b = parse_json_events(body, &ctx()).unwrap();
        assert_eq!(ids(&a), ids(&b));
    }

    #[test]
    fn syslog_line_inside_message_is_read_when_no_program_given() {
        let body = r#"{"message":"<38>Jun 15 11:59:58 bastion sshd[77]: Failed password for root from 203.0.113.7 port 2200 ssh2","source":"vector"}"#;
        let e = &parse_json_events(body, &ctx()).unwrap().events[0];
        assert_eq!(e.host.as_deref(), Some("bastion"));
        assert_eq!(e.program.as_deref(), Some("sshd"));
        assert_eq!(e.timestamp, at(2024, 6, 15, 11, 59, 58));
        assert_eq!(e.message.as_deref(), Some("Failed password for root from 203.0.113.7 port 2200 ssh2"));
        assert_eq!(label(e, "pid"), Some("77"));
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.src_ip, "203.0.113.7".parse().ok());

        // The sender's own host, time and severity win over the embedded line's.
        let body = r#"{"host":"h2","timestamp":"2024-06-15T11:00:00Z","severity":"high","message":"<38>Jun 15 11:59:58 bastion sshd[77]: x"}"#;
        let e = &parse_json_events(body, &ctx()).unwrap().events[0];
        assert_eq!(
            (e.host.as_deref(), e.timestamp, e.severity),
            (Some("h2"), at(2024, 6, 15, 11, 0, 0), Severity::High)
        );
        assert_eq!(e.program.as_deref(), Some("sshd"));

        // With a program given, the message is left alone.
        let body = r#"{"program":"relay","message":"<38>Jun 15 11:59:58 bastion sshd[77]: Failed password for root from 203.0.113.7 port 2200 ssh2"}"#;
        let e = &parse_json_events(body, &ctx()).unwrap().events[0];
        assert_eq!((e.program.as_deref(), e.host.as_deref(), e.outcome), (Some("relay"), None, Outcome::Unknown));
    }

    #[test]
    fn web_log_inside_message_takes_its_own_time() {
        let body = r#"{"log":"198.51.100.2 - - [15/Jun/2024:09:30:00 +0000] \"GET /admin HTTP/1.1\" 403 12 \"-\" \"sqlmap/1.7\""}"#;
        let e = &parse_json_events(body, &ctx()).unwrap().events[0];
        assert_eq!(e.category.as_deref(), Some("web"));
        assert_eq!(e.timestamp, at(2024, 6, 15, 9, 30, 0));
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(label(e, "user_agent"), Some("sqlmap/1.7"));
    }

    #[test]
    fn sender_labels_are_bounded() {
        let mut obj = Map::new();
        for i in 0..40 {
            obj.insert(format!("field{i:02}"), Value::from(i));
        }
        obj.insert("x".repeat(65), Value::from("long name"));
        let body = Value::Object(obj).to_string();
        let e = &parse_json_events(&body, &ctx()).unwrap().events[0];
        assert_eq!(e.labels.len(), 32);
        assert!(e.labels.keys().all(|k| k.len() <= 64));
    }

    #[test]
    fn hec_concatenated_objects_with_and_without_newlines() {
        let body = concat!(
            r#"{"event":"first","time":1718445600.25,"host":"h1","source":"app","sourcetype":"st","index":"main","fields":{"env":"prod","n":1}}"#,
            r#"{"event":{"message":"second","user":"bob","tenant":"evil"},"time":"1718445601"}"#,
            "\n\n  ",
            r#"{"event":"<38>Jun 15 11:59:58 bastion sshd[77]: Accepted password for carol from 10.1.1.1 port 5 ssh2"}"#,
            "\n"
        );
        let mut c = ctx();
        c.host = Some("query-host");
        let parsed = parse_hec_events(body, &c).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let [a, b, s] = &parsed.events[..] else { panic!("{parsed:?}") };
        assert_eq!(a.message.as_deref(), Some("first"));
        assert_eq!(a.timestamp, at(2024, 6, 15, 10, 0, 0) + Duration::milliseconds(250));
        assert_eq!((a.host.as_deref(), a.source.as_str()), (Some("h1"), "app"));
        assert_eq!((label(a, "sourcetype"), label(a, "index")), (Some("st"), Some("main")));
        assert_eq!((label(a, "env"), label(a, "n")), (Some("prod"), Some("1")));
        assert!(a.raw.as_deref().unwrap_or("").starts_with(r#"{"event":"first""#));
        assert_eq!((b.message.as_deref(), b.user.as_deref()), (Some("second"), Some("bob")));
        assert_eq!(b.tenant, "acme");
        assert_eq!(b.timestamp, at(2024, 6, 15, 10, 0, 1));
        assert_eq!((b.host.as_deref(), b.source.as_str()), (Some("query-host"), "hec"));
        assert_eq!(
            (s.program.as_deref(), s.host.as_deref(), s.outcome),
            (Some("sshd"), Some("bastion"), Outcome::Success)
        );
        assert_eq!(
            s.raw.as_deref(),
            Some(
                r#"{"event":"<38>Jun 15 11:59:58 bastion sshd[77]: Accepted password for carol from 10.1.1.1 port 5 ssh2"}"#
            )
        );
        // Same body again: same ids.
        assert_eq!(ids(&parsed), ids(&parse_hec_events(body, &c).unwrap()));
    }

    #[test]
    fn hec_bad_objects_are_rejected_and_bad_json_is_malformed() {
        let body =
            r#"{"event":"ok"} {"time":1} {"event":"  "} [1] {"event":"x","time":"soon"} {"event":"y","fields":[1]}"#;
        let parsed = parse_hec_events(body, &ctx()).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let errors: Vec<(usize, &str)> = parsed.rejected.iter().map(|r| (r.index, r.error.as_str())).collect();
        assert_eq!(errors[0], (1, "event: field is required"));
        assert_eq!(errors[1], (2, "event: must not be blank"));
        assert_eq!(errors[2].0, 3);
        assert!(errors[3].1.starts_with("time:"));
        assert!(errors[4].1.starts_with("fields:"));
        match parse_hec_events("{\"event\":\"a\"}\n{\"event\": oops}", &ctx()) {
            Err(BodyError::Malformed { line, column, .. }) => assert_eq!((line, column), (Some(2), Some(11))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hec_raw_lines_are_syslog_or_plain() {
        let mut c = ctx();
        c.source = Some("raw-src");
        let body = "<86>Jun 15 11:00:00 bastion su[9]: FAILED SU (to root) mallory on pts/3\nplain text line\n";
        let parsed = parse_hec_raw(body, &c).unwrap();
        assert_eq!(parsed.events.len(), 2);
        assert_eq!(parsed.events[0].outcome, Outcome::Failure);
        assert_eq!(parsed.events[0].action.as_deref(), Some("su"));
        assert_eq!(parsed.events[1].message.as_deref(), Some("plain text line"));
        assert_eq!(parsed.events[1].source, "raw-src");
        assert_eq!(parse_hec_raw("x", &ctx()).unwrap().events[0].source, "hec");
    }

    /// A tiny deterministic generator (xorshift) so the test needs no extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn random_and_truncated_input_never_panics() {
        let samples = [
            "<38>Jun 15 11:59:58 bastion sshd[4242]: message repeated 3 times: [ Failed password for invalid user a from 2001:db8::1 port 22 ssh2]",
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\"] msg",
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a?b HTTP/1.0" 200 2326 "http://x/" "Mozilla/4.08""#,
            r#"[{"timestamp":1718445600.5,"src_ip":"::ffff:1.2.3.4","labels":{"a":1},"message":"<13>Feb 29 00:00:00 h sudo: alice : 3 incorrect password attempts ; TTY=pts/0 ; USER=root ; COMMAND=/x"}]"#,
            r#"{"event":{"message":"x"},"time":"1e3","fields":{"k":[1]}}{"event":"Jun 15 11:00:00 h su: (to root) a on pts/0"}"#,
            "<86>Jun 15 11:00:00 h sshd[1]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=h.example  user=root",
        ];
        let alphabet: Vec<char> =
            "<>[]{}()\":,;=.-_/ \n\r\t0123456789abcxyzJunDecFailedpasswordforfromport\\é€\u{feff}\0".chars().collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut c = ctx();
        c.max_events = 50;
        c.max_event_bytes = 2048;
        let mut inputs: Vec<String> = Vec::new();
        for s in samples {
            let cut: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
            for &i in &cut {
                inputs.push(s[..i].to_string());
            }
            // A few mutations of each sample.
            for _ in 0..50 {
                let mut chars: Vec<char> = s.chars().collect();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(chars.len());
                    chars[at] = alphabet[rng.below(alphabet.len())];
                }
                inputs.push(chars.into_iter().collect());
            }
        }
        for _ in 0..300 {
            let len = rng.below(120);
            inputs.push((0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect());
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            inputs.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        for input in &inputs {
            for parse in [parse_json_events, parse_hec_events, parse_hec_raw, syslog::parse_syslog_lines] {
                if let Ok(parsed) = parse(input, &c) {
                    for e in &parsed.events {
                        assert_eq!(e.tenant, "acme");
                        assert!(e.raw.is_some());
                        assert!(!e.id.is_empty());
                    }
                }
            }
            for program in [None, Some("sshd"), Some("sudo"), Some("su"), Some("nginx")] {
                let mut e =
                    Event { program: program.map(str::to_string), message: Some(input.clone()), ..Event::default() };
                crate::parse::normalize(&mut e);
                let once = e.clone();
                crate::parse::normalize(&mut e);
                assert_eq!(e, once, "normalize is idempotent on {input:?}");
            }
        }
    }
}

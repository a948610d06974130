//! Apache / Nginx access logs: the common log format and the combined format (plus any trailing fields).
//!
//! `CLIENT IDENT USER [10/Oct/2000:13:55:36 -0700] "GET /path?q HTTP/1.1" STATUS BYTES ["REFERER" "USER-AGENT"] ...`
//! → category `web`, action = method, src_ip = client (or `labels["src_host"]` for a name), user unless `-`,
//! outcome success below 400 and failure from 400, labels status/path/query/protocol/bytes/referer/user_agent.
//! The log's own time becomes the event time only when the event had none of its own (its timestamp still equals
//! `received_at`, i.e. the line was not syslog-wrapped and the sender gave no time).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

use super::{fill_label, fill_outcome, fill_source, fill_str};
use crate::model::{Event, Outcome};

static ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" ([0-9]{3}) ([0-9]+|-)(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?(?:\s.*)?$"#,
    )
    .expect("static regex compiles")
});

pub(crate) fn access_log(e: &mut Event, message: &str) {
    let Some(c) = ACCESS.captures(message.trim()) else { return };
    let Ok(time) = DateTime::parse_from_str(&c[4], "%d/%b/%Y:%H:%M:%S %z") else { return };
    let Ok(status) = c[6].parse::<u16>() else { return };
    let client = &c[1];
    if !client.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_' | b'[' | b']' | b'%'))
    {
        return;
    }
    fill_str(&mut e.category, "web");
    let request = unescape(&c[5]);
    let mut parts = request.split_whitespace();
    let (method, target, protocol) = (parts.next(), parts.next(), parts.next());
    if let Some(m) = method.filter(|m| (1..=16).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_uppercase())) {
        fill_str(&mut e.action, m);
        if let Some(target) = target {
            let (path, query) = target.split_once('?').map_or((target, None), |(p, q)| (p, Some(q)));
            fill_label(e, "path", path);
            fill_label(e, "query", query.unwrap_or(""));
        }
        fill_label(e, "protocol", protocol.unwrap_or(""));
    } else if request != "-" {
        fill_label(e, "request", &request);
    }
    fill_source(e, client);
    if &c[3] != "-" {
        fill_str(&mut e.user, &c[3]);
    }
    fill_outcome(e, if status < 400 { Outcome::Success } else { Outcome::Failure });
    fill_label(e, "status", &c[6]);
    if &c[7] != "-" {
        fill_label(e, "bytes", &c[7]);
    }
    for (i, name) in [(8, "referer"), (9, "user_agent")] {
        if let Some(v) = c.get(i).map(|m| unescape(m.as_str())).filter(|v| v != "-") {
            fill_label(e, name, &v);
        }
    }
    if e.timestamp == e.received_at {
        e.timestamp = time.with_timezone(&Utc);
    }
}

/// Apache writes `\"` and `\\` inside quoted fields.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match (ch, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{at, normalized};
    use super::*;

    fn label<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.labels.get(k).map(String::as_str)
    }

    #[test]
    fn combined_log_format() {
        let e = normalized(
            None,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
        );
        assert_eq!(e.category.as_deref(), Some("web"));
        assert_eq!(e.action.as_deref(), Some("GET"));
        assert_eq!(e.src_ip, "127.0.0.1".parse().ok());
        assert_eq!(e.user.as_deref(), Some("frank"));
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(label(&e, "status"), Some("200"));
        assert_eq!(label(&e, "path"), Some("/apache_pb.gif"));
        assert_eq!(label(&e, "query"), Some("x=1"));
        assert_eq!(label(&e, "bytes"), Some("2326"));
        assert_eq!(label(&e, "referer"), Some("http://www.example.com/start.html"));
        assert_eq!(label(&e, "user_agent"), Some("Mozilla/4.08 [en] (Win98; I ;Nav)"));
        assert_eq!(e.timestamp, at(2000, 10, 10, 20, 55, 36));
    }

    #[test]
    fn common_log_format_failure_and_no_user() {
        let e =
            normalized(Some("nginx"), r#"2001:db8::5 - - [15/Jun/2024:11:00:00 +0000] "POST /login HTTP/1.1" 401 -"#);
        assert_eq!(e.action.as_deref(), Some("POST"));
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user, None);
        assert_eq!(e.src_ip, "2001:db8::5".parse().ok());
        assert_eq!(label(&e, "bytes"), None);
        assert_eq!(label(&e, "user_agent"), None);
    }

    #[test]
    fn nginx_with_trailing_fields_and_escaped_quotes() {
        let e = normalized(
            Some("nginx"),
            r#"203.0.113.7 - - [15/Jun/2024:11:00:00 +0000] "GET /../../etc/passwd HTTP/1.1" 404 153 "-" "curl \"x\"/8.0" "-" rt=0.001"#,
        );
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(label(&e, "path"), Some("/../../etc/passwd"));
        assert_eq!(label(&e, "referer"), None);
        assert_eq!(label(&e, "user_agent"), Some(r#"curl "x"/8.0"#));
    }

    #[test]
    fn a_syslog_wrapped_line_keeps_the_syslog_time() {
        let mut e = Event {
            program: Some("apache".into()),
            message: Some(r#"crawler.example.org - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01" 400 0"#.into()),
            timestamp: at(2024, 6, 15, 11, 0, 0),
            received_at: at(2024, 6, 15, 12, 0, 0),
            ..Event::default()
        };
        crate::parse::normalize(&mut e);
        assert_eq!(e.timestamp, at(2024, 6, 15, 11, 0, 0));
        assert_eq!(e.category.as_deref(), Some("web"));
        assert_eq!(e.action, None);
        assert_eq!(label(&e, "request"), Some(r"\x16\x03\x01"));
        assert_eq!(label(&e, "src_host"), Some("crawler.example.org"));
        assert_eq!(e.src_ip, None);
    }

    #[test]
    fn raw_access_log_lines_posted_as_syslog_are_web_events_at_their_own_time() {
        let body = concat!(
            r#"198.51.100.50 - - [15/Jun/2024:11:58:01 +0000] "GET /admin.php HTTP/1.1" 404 153 "-" "Nikto/2.5""#,
            "\n",
            r#"2001:db8::7 - bob [15/Jun/2024:11:58:02 +0200] "POST /login HTTP/1.1" 302 0 "https://example.com/" "Mozilla/5.0""#,
        );
        let parsed = crate::parse::parse_syslog_lines(body, &super::super::test_support::ctx()).unwrap();
        assert_eq!(parsed.events.len(), 2);
        let (a, b) = (&parsed.events[0], &parsed.events[1]);
        assert_eq!(a.category.as_deref(), Some("web"));
        assert_eq!(a.src_ip, "198.51.100.50".parse().ok());
        assert_eq!(label(a, "status"), Some("404"));
        assert_eq!(label(a, "path"), Some("/admin.php"));
        assert_eq!(a.timestamp, at(2024, 6, 15, 11, 58, 1));
        assert_eq!(b.src_ip, "2001:db8::7".parse().ok());
        assert_eq!(b.user.as_deref(), Some("bob"));
        assert_eq!(b.timestamp, at(2024, 6, 15, 9, 58, 2));
    }

    #[test]
    fn not_access_logs() {
        for msg in [
            "GET /index.html 200",
            r#"127.0.0.1 - - [not a date] "GET / HTTP/1.1" 200 1"#,
            r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 2000 1"#,
        ] {
            let e = normalized(None, msg);
            assert_eq!(e.category, None, "{msg}");
        }
        // sshd owns its lines: never read as web.
        let e = normalized(Some("sshd"), r#"127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1"#);
        assert_eq!(e.category, None);
    }
}

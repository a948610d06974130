//! Splunk HEC as real senders use it, against `vigil serve` (the real HTTP server, embedded backend):
//!
//! * Splunk's own Node logging library (npm `splunk-logging`, which sends `application/x-www-form-urlencoded`
//!   and `Authorization: Splunk`): the walk-through's brute force, sent as HEC events, raises the alerts;
//! * curl as Splunk documents it (`-d` without a content type: form-urlencoded), with Basic auth (`-u x:TOKEN`),
//!   and indexer acknowledgement (`X-Splunk-Request-Channel`, `ackId`, `POST /services/collector/ack`);
//! * Debian's syslog-ng with its `http()` destination and no content-type header (Basic auth, batched lines to
//!   `/services/collector/raw`).
//!
//! node + tests/clients, curl and syslog-ng (packages syslog-ng-core, syslog-ng-mod-http) are installed by
//! tests/run; without them these tests fail, never skip.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil::auth::Role;
use vigil::config::Config;
use vigil_tests::scenario;
use vigil_tests::served::{self, Served};

const SECRET: &str = "hec-clients-test-secret-0123456789abcdef";

fn auth_log() -> Vec<String> {
    let base = chrono::Utc::now() - chrono::Duration::seconds(60);
    scenario::brute_force("203.0.113.7", "web-1", true, |s| {
        (base + chrono::Duration::seconds(s)).format("%b %e %H:%M:%S").to_string()
    })
}

/// Waits until `tenant` has both of the walk-through's alerts (brute force, success after failures).
async fn wait_for_alerts(server: &Served, tenant: &str) -> Value {
    let viewer = scenario::token(SECRET, tenant, Role::Viewer, "test");
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        let v: Value = http
            .get(format!("{}/v1/alerts", server.base))
            .bearer_auth(&viewer)
            .send()
            .await
            .expect("alerts")
            .json()
            .await
            .expect("json");
        let rules: Vec<&str> = v["items"].as_array().into_iter().flatten().filter_map(|a| a["rule"].as_str()).collect();
        if rules.contains(&"ssh_brute_force") && rules.contains(&"success_after_failures") {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no alerts for {tenant}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn curl(args: &[&str]) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}"]).args(args);
    let out = served::run(cmd).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunks_node_logging_library_sends_the_walk_through_and_it_alerts() {
    served::require(&["node"]);
    let clients = served::node_clients();
    let server = served::serve(&Config::default(), SECRET).await;
    let token = scenario::token(SECRET, "nodehec", Role::Sender, "splunk-logging");
    let mut node = Command::new("node");
    node.arg(clients.join("hec.mjs"))
        .arg(&server.base)
        .arg(&token)
        .arg("splunk-logging")
        .current_dir(&clients)
        .stdin(Stdio::piped());
    let input = auth_log().join("\n");
    let out = tokio::task::spawn_blocking(move || {
        let mut child = node.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("node");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), input.as_bytes()).expect("write");
        child.wait_with_output().expect("node output")
    })
    .await
    .expect("node task");
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "hec.mjs failed:\n{report}");
    let answers: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(answers.len(), 2, "{report}");
    let accepted: u64 = answers
        .iter()
        .map(|a| {
            let body = match &a["body"] {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            assert_eq!((body["code"].as_u64(), body["text"].as_str()), (Some(0), Some("Success")), "{a}");
            body["accepted"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!(accepted, 21, "{report}");
    let alerts = wait_for_alerts(&server, "nodehec").await;
    assert!(
        alerts["items"].as_array().is_some_and(|a| a.iter().all(|x| x["entity"] == "src_ip=203.0.113.7")),
        "{alerts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_as_splunk_documents_it_with_basic_auth_and_indexer_acknowledgement() {
    served::require(&["curl"]);
    let server = served::serve(&Config::default(), SECRET).await;
    let token = scenario::token(SECRET, "curl", Role::Sender, "curl");
    let event = format!("{}/services/collector/event", server.base);
    // Splunk's example: -d without a content type, so curl sends application/x-www-form-urlencoded.
    let splunk = format!("Authorization: Splunk {token}");
    let (status, body) =
        curl(&["-H", &splunk, "-d", r#"{"event": "hello world", "sourcetype": "manual"}"#, &event]).await;
    assert_eq!((status, body["code"].as_u64(), body["text"].as_str()), (200, Some(0), Some("Success")), "{body}");
    let basic = format!("x:{token}");
    let (status, body) = curl(&["-u", &basic, "-d", r#"{"event": "with basic auth"}"#, &event]).await;
    assert_eq!((status, body["code"].as_u64()), (200, Some(0)), "{body}");
    let (status, body) = curl(&["-d", r#"{"event": "no token"}"#, &event]).await;
    assert_eq!((status, body["code"].as_u64(), body["text"].as_str()), (401, Some(2), Some("Token is required")));
    let (status, body) = curl(&["-H", &splunk, "-d", r#"{"time": 1}"#, &event]).await;
    assert_eq!(
        (status, body["code"].as_u64(), body["text"].as_str()),
        (400, Some(12), Some("Event field is required"))
    );
    let bad = "Authorization: Splunk not-a-token";
    let (status, body) = curl(&["-H", bad, "-d", r#"{"event": "x"}"#, &event]).await;
    assert_eq!((status, body["code"].as_u64(), body["text"].as_str()), (403, Some(4), Some("Invalid token")));

    // Indexer acknowledgement, as clients with it enabled do it.
    let channel = "X-Splunk-Request-Channel: 6F0D6A3E-4C4B-4E0C-9F62-0C5C8B2E7A11";
    let mut acks = Vec::new();
    for line in auth_log() {
        let body = serde_json::json!({ "event": line, "host": "web-1" }).to_string();
        let (status, answer) = curl(&["-H", &splunk, "-H", channel, "-d", &body, &event]).await;
        assert_eq!(status, 200, "{answer}");
        acks.push(answer["ackId"].as_u64().unwrap_or_else(|| panic!("an ackId: {answer}")));
    }
    let query = serde_json::json!({ "acks": acks }).to_string();
    let ack_url = format!("{}/services/collector/ack", server.base);
    let (status, answer) = curl(&["-H", &splunk, "-H", channel, "-d", &query, &ack_url]).await;
    assert_eq!(status, 200, "{answer}");
    for id in &acks {
        assert_eq!(answer["acks"][id.to_string()], true, "ack {id}: {answer}");
    }
    let other = "X-Splunk-Request-Channel: 11111111-2222-3333-4444-555555555555";
    let (_, answer) = curl(&["-H", &splunk, "-H", other, "-d", &query, &ack_url]).await;
    assert!(acks.iter().all(|id| answer["acks"][id.to_string()] == false), "another channel: {answer}");
    let (status, answer) = curl(&["-H", &splunk, "-d", &query, &ack_url]).await;
    assert_eq!((status, answer["code"].as_u64()), (400, Some(10)), "no channel: {answer}");
    wait_for_alerts(&server, "curl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_http_destination_without_a_content_type_ships_the_walk_through() {
    served::require(&["syslog-ng"]);
    let server = served::serve(&Config::default(), SECRET).await;
    let token = scenario::token(SECRET, "syslogng", Role::Sender, "syslog-ng");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("auth.log");
    std::fs::write(&input, "").expect("input");
    let conf = dir.path().join("syslog-ng.conf");
    // No headers(): syslog-ng (libcurl) sends its default content type. Basic auth: user x, the token as password.
    std::fs::write(
        &conf,
        format!(
            r#"@version: 3.35
options {{ keep-hostname(yes); stats-freq(0); }};
source s_auth {{ file("{input}" flags(no-parse) follow-freq(0.2)); }};
destination d_vigil {{
    http(url("{base}/services/collector/raw") method("POST") user("x") password("{token}")
         body("${{MESSAGE}}") delimiter("\n") batch-lines(50) batch-timeout(300));
}};
log {{ source(s_auth); destination(d_vigil); }};
"#,
            input = input.display(),
            base = server.base,
        ),
    )
    .expect("config");
    let d = dir.path();
    let mut child = Command::new("syslog-ng")
        .args(["-F", "--no-caps", "-f"])
        .arg(&conf)
        .arg("-R")
        .arg(d.join("persist"))
        .arg("-p")
        .arg(d.join("pid"))
        .arg("-c")
        .arg(d.join("ctl"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start syslog-ng");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::write(&input, auth_log().join("\n") + "\n").expect("append the log");
    let alerts = tokio::time::timeout(Duration::from_secs(40), wait_for_alerts(&server, "syslogng")).await;
    let _ = child.kill();
    let out = child.wait_with_output().expect("syslog-ng output");
    assert!(alerts.is_ok(), "no alerts from syslog-ng's lines; its output:\n{}", String::from_utf8_lossy(&out.stderr));
}

//! The triage console in a real browser: `vigil serve` (the real HTTP server, embedded backend) with a brute
//! force sent over HTTP, then tests/clients/console.mjs drives Debian's Chromium headless through Playwright —
//! sign-in with a token, the queue sorted by SLA deadline and filtered, the alert view (reasons, MITRE
//! techniques, evidence events, history), and every transition clicked — and the API confirms what it did.
//!
//! Screenshots go to target/console-screenshots; with VIGIL_UPDATE_SCREENSHOTS=1 they also replace
//! docs/console-queue.png and docs/console-alert.png. Needs chromium and node with tests/clients installed
//! (tests/run installs them); fails, never skips, without.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use vigil::auth::Role;
use vigil::config::Config;
use vigil_tests::{scenario, served};

const SECRET: &str = "console-test-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_triages_in_the_console_in_headless_chromium() {
    served::require(&["node", "chromium"]);
    let clients = served::node_clients();
    let server = served::serve(&Config::default(), SECRET).await;
    let http = reqwest::Client::new();
    let sender = scenario::token(SECRET, "acme", Role::Sender, "shipper");
    let analyst = scenario::token(SECRET, "acme", Role::Analyst, "alice");
    let base = chrono::Utc::now() - chrono::Duration::seconds(60);
    let stamp = |s: i64| (base + chrono::Duration::seconds(s)).format("%b %e %H:%M:%S").to_string();
    // Three attackers: five tickets in the queue (two critical, three high).
    let mut lines = scenario::brute_force("203.0.113.7", "web-1", true, stamp);
    lines.extend(scenario::brute_force("198.51.100.9", "web-2", true, stamp));
    lines.extend(scenario::brute_force("192.0.2.33", "web-3", false, stamp));
    let resp = http
        .post(format!("{}/v1/syslog", server.base))
        .bearer_auth(&sender)
        .body(lines.join("\n"))
        .send()
        .await
        .expect("send logs");
    assert_eq!(resp.status().as_u16(), 202);
    let mut open = 0;
    for _ in 0..150 {
        let v: Value = http
            .get(format!("{}/v1/tickets", server.base))
            .bearer_auth(&analyst)
            .send()
            .await
            .expect("tickets")
            .json()
            .await
            .expect("json");
        open = v["items"].as_array().map(Vec::len).unwrap_or(0);
        if open == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(open, 5, "five tickets before the console opens");

    let out_dir = served::repo_root().join("target/console-screenshots");
    let mut node = Command::new("node");
    node.arg(clients.join("console.mjs")).arg(&server.base).arg(&analyst).arg(&out_dir).current_dir(&clients);
    let out = served::run(node).await;
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "console.mjs failed:\n{report}");

    let result: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("result.json")).expect("result.json")).expect("result JSON");
    let ticket = result["ticket"].as_str().expect("the ticket the console worked");
    let t: Value = http
        .get(format!("{}/v1/tickets/{ticket}", server.base))
        .bearer_auth(&analyst)
        .send()
        .await
        .expect("ticket")
        .json()
        .await
        .expect("json");
    let history: Vec<(&str, &str)> = t["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["action"].as_str().unwrap_or(""), h["actor"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        history,
        [
            ("open", "vigil"),
            ("acknowledge", "alice"),
            ("respond", "alice"),
            ("assign", "alice"),
            ("escalate", "alice"),
            ("close", "alice"),
            ("reopen", "alice")
        ],
        "{t}"
    );
    assert_eq!((t["assignee"].as_str(), t["status"].as_str()), (Some("bob"), Some("in_progress")));
    for name in ["queue.png", "alert.png"] {
        let png = std::fs::read(out_dir.join(name)).expect(name);
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name} is a real screenshot");
        if std::env::var("VIGIL_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
            std::fs::write(served::repo_root().join("docs").join(format!("console-{name}")), png).expect("docs");
        }
    }
}

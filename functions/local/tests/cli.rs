//! The `vigil` CLI as an analyst and an operator use it, against the real `vigil serve` binary: tokens from the
//! server's own key, `send` from standard input, alerts and tickets listed, shown and worked through every
//! transition, `status`, and the hints for the usual mistakes (a key from another data directory, nothing
//! listening, an address already in use).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `vigil serve --addr ADDR` in `cwd` (its own key in `cwd/.vigil`), once it accepts connections on `port`.
fn start_server(cwd: &Path, addr: &str, port: u16, env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(["serve", "--addr", addr])
        .current_dir(cwd)
        .env_remove("VIGIL_JWT_SECRET")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let server = Server(cmd.spawn().expect("spawn vigil serve"));
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "vigil serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// `vigil ARGS` in `cwd`, without the caller's VIGIL_* settings.
fn vigil(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "VIGIL_ADDR",
        "VIGIL_URL",
        "VIGIL_TOKEN",
        "VIGIL_TENANT",
        "VIGIL_DATA_DIR",
        "VIGIL_JWT_SECRET",
        "VIGIL_LOG_FORMAT",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("spawn vigil");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("vigil output")
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{what}: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

fn failed(out: &Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} should fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn json(out: &Output, what: &str) -> Value {
    serde_json::from_str(&ok(out, what)).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"))
}

fn auth_log() -> String {
    let now = chrono::Utc::now() - chrono::Duration::seconds(60);
    let stamp = |s: i64| (now + chrono::Duration::seconds(s)).format("%b %e %H:%M:%S").to_string();
    let mut lines: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "<38>{} web-1 sshd[{}]: Failed password for root from 203.0.113.7 port {} ssh2",
                stamp(i),
                1000 + i,
                4000 + i
            )
        })
        .collect();
    lines.push(format!(
        "<38>{} web-1 sshd[2000]: Accepted password for root from 203.0.113.7 port 4100 ssh2",
        stamp(30)
    ));
    lines.join("\n") + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_works_alerts_and_tickets_from_the_cli() {
    let work = tempfile::tempdir().expect("tempdir");
    let cwd = work.path();
    let port = free_port();
    let addr = format!("localhost:{port}");

    // Before the server ever ran there is no key: token says where it looked instead of making one up.
    let err = failed(&vigil(cwd, &["token", "--tenant", "acme"], None), "token without a key");
    assert!(err.contains("jwt-secret") && err.contains("vigil serve") && err.contains("--data-dir"), "{err}");
    assert!(!cwd.join(".vigil").exists(), "no key was created");
    // Nothing listening: the hint says what to do.
    let err = failed(&vigil(cwd, &["status", "--addr", &addr, "--token", "x"], None), "status, nothing listening");
    assert!(err.contains("nothing is listening") && err.contains("vigil serve"), "{err}");

    let mut server = start_server(cwd, &addr, port, &[]);

    // A second server on the same address fails without ever claiming to listen.
    let second = vigil(cwd, &["serve", "--addr", &addr, "--data-dir", "other"], None);
    let err = failed(&second, "a second serve on the same address");
    assert!(err.contains("in use") && !err.contains("listening on"), "{err}");

    // send: standard input, VIGIL_ADDR-style host:port, a token minted from the server's key.
    let sent =
        ok(&vigil(cwd, &["send", "--tenant", "acme", "--addr", &addr, "--quiet", "-"], Some(&auth_log())), "send -");
    assert!(sent.contains("21 accepted, 0 rejected"), "{sent}");

    let api = ["--tenant", "acme", "--addr", &addr];
    let mut tickets = Value::Null;
    for _ in 0..100 {
        tickets = json(&vigil(cwd, &[&["tickets", "list", "-o", "json"][..], &api].concat(), None), "tickets list");
        if tickets.as_array().map(Vec::len) == Some(2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let items = tickets.as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{tickets}");
    assert_eq!(items[0]["severity"], "critical", "the most urgent (earliest acknowledge deadline) first: {tickets}");
    let brute = items.iter().find(|t| t["rule"] == "ssh_brute_force").expect("brute-force ticket");
    let id = brute["id"].as_str().expect("id").to_string();

    let table = ok(&vigil(cwd, &[&["tickets", "list"][..], &api].concat(), None), "tickets list (table)");
    assert!(table.starts_with("ID ") && table.contains("ssh_brute_force") && table.contains("ack by"), "{table}");
    let high = json(
        &vigil(cwd, &[&["tickets", "list", "--severity", "high", "-o", "json"][..], &api].concat(), None),
        "filter",
    );
    assert_eq!(high.as_array().map(Vec::len), Some(1), "{high}");

    let alerts = ok(&vigil(cwd, &[&["alerts", "list"][..], &api].concat(), None), "alerts list");
    assert!(alerts.contains("success_after_failures") && alerts.contains("src_ip=203.0.113.7"), "{alerts}");
    let alert_id = brute["alert_id"].as_str().expect("alert id");
    let shown = ok(&vigil(cwd, &[&["alerts", "show", alert_id][..], &api].concat(), None), "alerts show");
    assert!(shown.contains("T1110.001") && shown.contains("Reasons") && shown.contains("Evidence"), "{shown}");

    for (args, status) in [
        (vec!["ack", &id], "acknowledged"),
        (vec!["respond", &id, "--note", "blocked at the firewall"], "in_progress"),
        (vec!["assign", &id, "bob"], "in_progress"),
        (vec!["escalate", &id, "--note", "root login"], "in_progress"),
        (vec!["close", &id, "--disposition", "true_positive"], "closed"),
        (vec!["reopen", &id, "--note", "seen again"], "in_progress"),
    ] {
        let cmd = [&["tickets"][..], &args, &["-o", "json"], &api].concat();
        let t = json(&vigil(cwd, &cmd, None), &args.join(" "));
        assert_eq!(t["status"], status, "{args:?}: {t}");
    }
    let t = json(&vigil(cwd, &[&["tickets", "show", &id, "-o", "json"][..], &api].concat(), None), "tickets show");
    let actions: Vec<&str> =
        t["history"].as_array().expect("history").iter().filter_map(|h| h["action"].as_str()).collect();
    assert_eq!(actions, ["open", "acknowledge", "respond", "assign", "escalate", "close", "reopen"], "{t}");
    assert_eq!((t["assignee"].as_str(), t["escalated"].as_bool()), (Some("bob"), Some(true)));
    let illegal = failed(&vigil(cwd, &[&["tickets", "ack", &id][..], &api].concat(), None), "ack twice");
    assert!(illegal.contains("409"), "{illegal}");

    let status = json(&vigil(cwd, &[&["status", "-o", "json"][..], &api].concat(), None), "status");
    assert_eq!(status["server_version"], env!("CARGO_PKG_VERSION"));
    assert!(status["rules_loaded"].as_u64().is_some_and(|n| n >= 5), "{status}");
    assert_eq!(status["queues"]["events"], 0.0, "{status}");
    assert_eq!(status["dead_letters"]["events"], 0.0, "{status}");
    let status = ok(&vigil(cwd, &[&["status"][..], &api].concat(), None), "status (table)");
    assert!(status.contains("rules loaded") && status.contains("DEAD LETTERS"), "{status}");

    // A key from another data directory: the server refuses the signature, and the hint says why and where.
    let other = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(other.path().join(".vigil")).expect("mkdir");
    std::fs::write(other.path().join(".vigil/jwt-secret"), "another-key-another-key-another-key-0123").expect("key");
    let err =
        failed(&vigil(other.path(), &["tickets", "list", "--tenant", "acme", "--addr", &addr], None), "wrong key");
    assert!(err.contains("signature") && err.contains("different key") && err.contains("jwt-secret"), "{err}");
    let err = failed(&vigil(other.path(), &["send", "--addr", &addr, "--quiet", "-"], Some("x\n")), "send, wrong key");
    assert!(err.contains("different key") && err.contains("--data-dir"), "{err}");

    let _ = server.0.kill();
}

/// A chunk the server refuses as too large (413) is halved until it fits: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_halves_chunks_the_server_finds_too_large() {
    let work = tempfile::tempdir().expect("tempdir");
    let cwd = work.path();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _server = start_server(cwd, &addr, port, &[("VIGIL_MAX_BODY_BYTES", "4096")]);
    let lines: String = (0..400).map(|i| format!("{{\"message\":\"event {i:04} {}\"}}\n", "x".repeat(60))).collect();
    assert!(lines.len() > 30_000);
    let file = cwd.join("events.ndjson");
    std::fs::write(&file, &lines).expect("write");
    let out = vigil(cwd, &["send", "--addr", &addr, "--quiet", "events.ndjson"], None);
    let text = ok(&out, "send with a small server limit");
    assert!(text.starts_with("400 accepted, 0 rejected in "), "{text}");
    let requests: u64 =
        text.split(" in ").nth(1).and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).expect("requests");
    assert!(requests > 8, "chunks were split: {text}");
}

//! `kill -9` of `vigil serve` right after it answered 202: a restart processes every accepted event, once.
//! This runs the real binary, so it covers the durable queues, the mappings and recovery on open together.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil::auth::{mint_hs256, Claims, Role};
use vigil::ports::PageRequest;

const SECRET: &str = "crash-test-secret-0123456789abcdef01";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn spawn(data_dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env("VIGIL_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vigil serve")
}

fn token(role: Role) -> String {
    let exp = (chrono::Utc::now().timestamp() + 3600) as u64;
    mint_hs256(
        SECRET,
        &Claims { sub: "crash".into(), tenant: "acme".into(), role, exp, iss: None, aud: None, scope: None },
    )
    .expect("mint")
}

/// Polls `GET /healthz` until `done` holds for its body (bounded; the server is doing real work meanwhile).
async fn wait_for(client: &reqwest::Client, base: &str, limit: Duration, done: impl Fn(&serde_json::Value) -> bool) {
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                if done(&v) {
                    return;
                }
            }
        }
        assert!(start.elapsed() < limit, "server did not reach the expected state within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn idle(v: &serde_json::Value) -> bool {
    ["events", "detections"].iter().all(|q| v["queues"][q]["visible"] == 0 && v["queues"][q]["in_flight"] == 0)
}

/// 40 requests of 250 lines: a brute force from 203.0.113.7 hidden among logins from many other addresses.
fn request_body(r: usize) -> String {
    (0..250)
        .map(|i| {
            let n = r * 250 + i;
            let (sec, min) = (n % 60, (n / 60) % 60);
            if i % 10 == 0 {
                format!("<38>Mar 10 10:{min:02}:{sec:02} web-1 sshd[{n}]: Failed password for root from 203.0.113.7 port {} ssh2", 1024 + n)
            } else {
                format!("<38>Mar 10 10:{min:02}:{sec:02} web-1 sshd[{n}]: Accepted publickey for deploy from 10.1.{}.{} port {} ssh2", n / 250 % 250, n % 250, 1024 + n)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_202_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let sender = token(Role::Sender);

    let mut first = spawn(dir.path(), port);
    wait_for(&client, &base, Duration::from_secs(60), |v| v["status"] == "ok").await;
    let mut accepted: Vec<String> = Vec::new();
    for r in 0..40 {
        let resp = client
            .post(format!("{base}/v1/syslog"))
            .bearer_auth(&sender)
            .header("content-type", "text/plain")
            .body(request_body(r))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 202);
        let v: serde_json::Value = resp.json().await.expect("json");
        accepted.extend(v["ids"].as_array().expect("ids").iter().map(|i| i.as_str().unwrap_or_default().to_string()));
    }
    // SIGKILL straight after the last 202: no chance to finish or flush anything.
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    assert_eq!(accepted.len(), 10_000);
    assert_eq!(accepted.iter().collect::<HashSet<_>>().len(), 10_000, "ids are distinct");

    {
        // The kill came with work outstanding, or this test would prove nothing.
        let backend = vigil::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(vigil::clock::SystemClock))
            .expect("open");
        let pending = backend.ports().events_receiver.depth().await.expect("depth");
        assert!(pending.visible > 0, "every event was processed before the kill: {pending:?}");
    }
    let mut second = spawn(dir.path(), port);
    wait_for(&client, &base, Duration::from_secs(300), idle).await;
    let status = Command::new("kill").args(["-TERM", &second.id().to_string()]).status().expect("kill -TERM");
    assert!(status.success());
    second.wait().expect("graceful exit");

    // The database is free again: look inside with the same adapter the server used.
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(vigil::clock::SystemClock))
        .expect("reopen");
    let ports = backend.ports();
    for id in &accepted {
        assert!(ports.events.get("acme", id).await.expect("get").is_some(), "accepted event {id} was lost");
    }
    let mut alerts = Vec::new();
    let mut page = PageRequest { limit: 500, cursor: None };
    loop {
        let p = ports.alerts.list_alerts("acme", &page).await.expect("list");
        alerts.extend(p.items);
        match p.next {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let brute: Vec<_> =
        alerts.iter().filter(|a| a.rule == "ssh_brute_force" && a.entity.contains("203.0.113.7")).collect();
    assert!(!brute.is_empty(), "the brute force was detected: {alerts:?}");
    // The whole attack lies within one suppression period (60 min of event time): exactly one alert.
    assert_eq!(brute.len(), 1, "no doubled alerts: {brute:?}");
    let dead = ports.events_dead_letters.depth().await.expect("depth");
    assert_eq!(dead.visible, 0, "nothing dead-lettered");
}

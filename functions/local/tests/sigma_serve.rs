//! Sigma rules on `vigil serve`: SigmaHQ's webserver rules (from the corpus), the project's own Sigma rules and
//! two Sigma correlations (one over SigmaHQ rules, one chained over the project's), loaded through a rules
//! file's `[sigma]` table. Web access lines with SQL injection, path traversal and a scanner's user agent, and
//! an SSH brute force ending in a login, are POSTed to the running binary; the alerts must name the Sigma rules
//! and carry what they tell the analyst.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vigil::auth::{mint_hs256, Claims, Role};

const SECRET: &str = "sigma-serve-test-secret-0123456789abcdef";

/// `<repo root>/../shared/corpus/sigma`, or `None` (and one line saying so) outside CI when it is absent.
fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/sigma");
    if dir.join("rules/web/webserver_generic").is_dir() {
        return Some(dir);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "the SigmaHQ corpus is missing at {}", dir.display());
    println!("skipped: needs the SigmaHQ corpus at {}", dir.display());
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn token(role: Role) -> String {
    let exp = (chrono::Utc::now().timestamp() + 3600) as u64;
    mint_hs256(
        SECRET,
        &Claims { sub: "sigma".into(), tenant: "acme".into(), role, exp, iss: None, aud: None, scope: None },
    )
    .expect("mint")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

/// A combined-format access line at `at`.
fn access(at: chrono::DateTime<chrono::Utc>, client: &str, request: &str, status: u16, agent: &str) -> String {
    format!(r#"{client} - - [{}] "{request}" {status} 612 "-" "{agent}""#, at.format("%d/%b/%Y:%H:%M:%S +0000"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigma_rules_and_correlations_alert_on_vigil_serve() {
    let Some(corpus) = corpus() else { return };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = [
        corpus.join("rules/web/webserver_generic"),
        repo.join("examples/sigma/with-sigmahq"),
        repo.join("examples/sigma/own"),
    ];
    let listed: Vec<String> = paths.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, format!("[sigma]\npaths = [{}]\nstrict = true\n", listed.join(", "))).expect("rules file");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path().join("data"))
            .env("VIGIL_JWT_SECRET", SECRET)
            .env("VIGIL_RULES_FILE", &rules)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vigil serve"),
    );
    let client = reqwest::Client::new();
    wait_for(&client, &base, Duration::from_secs(60), |v| v["status"] == "ok").await;

    let t0 = chrono::Utc::now() - chrono::Duration::minutes(20);
    let min = |m: i64| t0 + chrono::Duration::minutes(m);
    let browser = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0";
    let mut lines = vec![
        access(min(0), "192.0.2.20", "GET /index.html HTTP/1.1", 200, browser),
        access(
            min(1),
            "203.0.113.50",
            "GET / HTTP/1.1",
            200,
            "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
        ),
        access(
            min(3),
            "203.0.113.50",
            "GET /products.php?id=1%20UNION%20SELECT%20username,password%20FROM%20users HTTP/1.1",
            200,
            browser,
        ),
        access(min(4), "198.51.100.77", "GET /static/../../../etc/passwd HTTP/1.1", 400, "curl/8.5.0"),
        access(min(5), "192.0.2.99", "GET /.env HTTP/1.1", 404, "python-requests/2.31"),
    ];
    // An SSH brute force against one account that ends in a login, as syslog lines.
    let syslog_time = |s: i64| (min(6) + chrono::Duration::seconds(s)).format("%b %e %H:%M:%S").to_string();
    for i in 0..10 {
        lines.push(format!(
            "<38>{} bastion sshd[{}]: Failed password for deploy from 203.0.113.{} port {} ssh2",
            syslog_time(i * 15),
            900 + i,
            60 + i,
            41_000 + i
        ));
    }
    lines.push(format!(
        "<38>{} bastion sshd[990]: Accepted password for deploy from 203.0.113.99 port 41999 ssh2",
        syslog_time(200)
    ));
    let resp = client
        .post(format!("{base}/v1/syslog"))
        .bearer_auth(token(Role::Sender))
        .header("content-type", "text/plain")
        .body(lines.join("\n"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 202);
    let accepted: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(accepted["accepted"], lines.len(), "{accepted}");
    wait_for(&client, &base, Duration::from_secs(120), idle).await;

    let alerts: serde_json::Value = client
        .get(format!("{base}/v1/alerts?limit=100"))
        .bearer_auth(token(Role::Viewer))
        .send()
        .await
        .expect("alerts")
        .json()
        .await
        .expect("alerts json");
    let items = alerts["items"].as_array().expect("items");
    let described: Vec<String> =
        items.iter().map(|a| format!("{} {} {}", a["rule"], a["entity"], a["rule_name"])).collect();
    let find = |rule: &str, entity: &str| {
        items
            .iter()
            .find(|a| a["rule"] == rule && a["entity"] == entity)
            .unwrap_or_else(|| panic!("no alert of {rule} for {entity}: {described:#?}"))
    };

    let sqli = find("sigma-5513deaf-f49a-46c2-a6c8-3f111b5cb453", "src_ip=203.0.113.50");
    assert_eq!(sqli["rule_name"], "SQL Injection Strings In URI");
    assert_eq!(sqli["severity"], "high");
    assert!(sqli["mitre"].as_array().unwrap().iter().any(|t| t == "T1190"), "{sqli}");
    assert!(
        sqli["falsepositives"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "User searches in search boxes of the respective website"),
        "{sqli}"
    );
    assert!(sqli["runbook"].as_str().unwrap().contains("SQL injection"), "{sqli}");
    assert!(sqli["references"].as_array().is_some_and(|r| !r.is_empty()), "{sqli}");
    let traversal = find("sigma-7745c2ea-24a5-4290-b680-04359cb84b35", "src_ip=198.51.100.77");
    assert_eq!(traversal["rule_name"], "Path Traversal Exploitation Attempts");
    let scanner = find("sigma-19aa4f58-94ca-45ff-bc34-92e533c0994a", "src_ip=203.0.113.50");
    assert_eq!(scanner["severity"], "medium");
    find("sigma-3c9e6a44-5f0b-4e8e-9a51-7d2f1b0c6e21", "src_ip=192.0.2.99");

    // The correlation over two SigmaHQ rules, and the chained one over the project's.
    let chain = find("sigma-e4a1c2b3-9d8f-4e7a-b6c5-0f1e2d3c4b5a", "src_ip=203.0.113.50");
    assert_eq!(chain["severity"], "critical");
    assert!(chain["reasons"][0].as_str().unwrap().contains("in order"), "{chain}");
    let ssh = find("sigma-5b1f0e2c-7d64-4c1e-b0a9-2e6f9d8c4a17", "user=deploy");
    assert_eq!((ssh["severity"].as_str(), ssh["count"].as_u64()), (Some("high"), Some(1)));

    assert!(!items.iter().any(|a| a["entity"] == "src_ip=192.0.2.20"), "the browser raised an alert: {described:#?}");
    assert!(
        !items.iter().any(|a| a["rule"] == "sigma-7e2a9c10-4b3d-4f5e-8a6b-1c2d3e4f5a6b"),
        "a rule used only by a correlation alerted on its own"
    );
}

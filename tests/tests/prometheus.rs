//! The dashboards against a real Prometheus scraping a real Vigil: the local host behind the real HTTP server
//! (`vigil_local::serve::run`, the code `vigil serve` runs) on a free port, a scenario replayed over HTTP
//! (brute-force traffic, tickets worked through the ticket API: acknowledged, responded, escalated, closed,
//! reopened and closed again, some left open past their SLA), then:
//!
//! * `promtool check metrics` on the `/metrics` page;
//! * Prometheus (tests/dashboards/run_prometheus.sh) scraping `/metrics` with ONE operator token (role viewer,
//!   scope `metrics:all-tenants`, as the README's Prometheus steps mint it), and tests/dashboards/eval_queries.py
//!   evaluating every panel query of every dashboard for tenant acme — each must return data — with the key
//!   panels' values expected to equal what the JSON analytics API answers;
//! * a second tenant, globex, sending 10,000 events with 10,000 distinct sources: its series are in the same
//!   scrape, and its `source` label stays within the bound (top 50 + `other`), summing to every event.
//!
//! Prometheus, promtool and python3 are required: `tests/run` installs them. Without them this test fails
//! (it never skips).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use vigil::auth::{Role, SCOPE_ALL_TENANTS};
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::metrics::{DEFAULT_SOURCES, MAX_SOURCE_SERIES};
use vigil_local::host::MappingSettings;
use vigil_tests::scenario;

const SECRET: &str = "prometheus-test-secret-0123456789abcdef";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

fn token_for(tenant: &str, role: Role, sub: &str) -> String {
    scenario::token(SECRET, tenant, role, sub)
}

/// Fails — never skips — when a tool the test needs is missing.
fn require_tools() {
    for tool in ["prometheus", "promtool", "python3"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is not installed: run tests/run, which installs what the tests need (Debian package prometheus \
             for prometheus and promtool), or install it yourself"
        );
    }
}

/// Stops the Prometheus server started by run_prometheus.sh, whatever happens to the test.
struct PrometheusGuard {
    state: PathBuf,
}

impl Drop for PrometheusGuard {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("tests/dashboards/run_prometheus.sh"))
            .arg("stop")
            .env("VIGIL_PROMETHEUS_STATE_DIR", &self.state)
            .status();
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path: &str, token: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"));
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = resp.status();
        let answer: Value = resp.json().await.unwrap_or_else(|e| panic!("POST {path}: not JSON: {e}"));
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }
}

/// Twenty failed logins from `ip` within 20 seconds, a minute ago, then optionally a success.
fn brute_force(ip: &str, host: &str, success: bool) -> Vec<String> {
    let base = Utc::now() - chrono::Duration::seconds(60);
    scenario::brute_force(ip, host, success, |s| {
        (base + chrono::Duration::seconds(s)).format("%b %e %H:%M:%S").to_string()
    })
}

fn ticket_id(tickets: &Value, rule: &str, ip: &str) -> String {
    tickets["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|t| t["rule"] == rule && t["entity"].as_str().is_some_and(|e| e.contains(ip)))
        })
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no {rule} ticket for {ip} in {tickets}"))
        .to_string()
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {v}"))
}

/// A query-string value, percent-encoded.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn run_blocking(mut cmd: Command) -> std::process::Output {
    let shown = format!("{cmd:?}");
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("command task")
        .unwrap_or_else(|e| panic!("running {shown}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_has_data_in_a_real_prometheus_scraping_vigil() {
    require_tools();
    let root = repo_root();
    let dir = tempfile::tempdir().expect("tempdir");

    // ------------------------------------------------------------------ Vigil, served for real
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(&dir.path().join("data"), Arc::new(SystemClock))
        .expect("open");
    // High tickets are due at once, so open ones are past their SLA without waiting.
    let config = Config::from_lookup(|k| match k {
        "VIGIL_SLA_ACK_HIGH_MINUTES" | "VIGIL_SLA_CLOSE_HIGH_MINUTES" => Some("0".into()),
        "VIGIL_PRECISION_MIN_CLOSED" => Some("1".into()),
        _ => None,
    })
    .expect("config");
    let host = scenario::host(backend.ports(), &config, SECRET, Arc::new(SystemClock));
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let settings = MappingSettings { wait: Duration::from_millis(200), ..MappingSettings::default() };
    let server = tokio::spawn(vigil_local::serve::run(host, addr, config.limits.max_body_bytes, settings));
    let c = Client { http: reqwest::Client::new(), base: format!("http://{addr}") };
    let mut up = false;
    for _ in 0..100 {
        if c.http.get(format!("{}/healthz", c.base)).send().await.is_ok_and(|r| r.status().is_success()) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "vigil did not come up on {addr}");

    // ------------------------------------------------------------------ the scenario, over HTTP
    let sender = token_for("acme", Role::Sender, "shipper");
    let viewer = token_for("acme", Role::Viewer, "grafana");
    let (alice, bob) = (token_for("acme", Role::Analyst, "alice"), token_for("acme", Role::Analyst, "bob"));
    let (ip1, ip2, ip3) = ("203.0.113.7", "198.51.100.9", "192.0.2.33");
    let mut lines = brute_force(ip1, "web-1", true);
    lines.extend(brute_force(ip2, "web-2", true));
    lines.extend(brute_force(ip3, "web-3", false));
    let resp = c
        .http
        .post(format!("{}/v1/syslog", c.base))
        .bearer_auth(&sender)
        .header("content-type", "text/plain")
        .body(lines.join("\n"))
        .send()
        .await
        .expect("send logs");
    assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text().await);

    let mut tickets = json!({});
    for _ in 0..150 {
        tickets = c.get("/v1/tickets?limit=500", &viewer).await;
        if tickets["items"].as_array().map(Vec::len) == Some(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(tickets["items"].as_array().map(Vec::len), Some(5), "five tickets: {tickets}");
    let (bf1, saf1) = (ticket_id(&tickets, "ssh_brute_force", ip1), ticket_id(&tickets, "success_after_failures", ip1));
    let (bf2, saf2) = (ticket_id(&tickets, "ssh_brute_force", ip2), ticket_id(&tickets, "success_after_failures", ip2));
    let bf3 = ticket_id(&tickets, "ssh_brute_force", ip3);
    let act = |id: &str, action: &str| format!("/v1/tickets/{id}/{action}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.post(&act(&bf1, "acknowledge"), &alice, json!({})).await;
    c.post(&act(&saf1, "acknowledge"), &bob, json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.post(&act(&bf1, "respond"), &alice, json!({ "note": "blocked at the firewall" })).await;
    c.post(&act(&saf2, "acknowledge"), &bob, json!({})).await;
    c.post(&act(&bf2, "acknowledge"), &bob, json!({})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.post(&act(&bf1, "close"), &alice, json!({ "disposition": "true_positive" })).await;
    c.post(&act(&saf1, "close"), &bob, json!({ "disposition": "false_positive" })).await;
    c.post(&act(&saf2, "close"), &bob, json!({ "disposition": "true_positive" })).await;
    c.post(&act(&bf3, "escalate"), &alice, json!({ "note": "nobody on it" })).await;
    c.post(&act(&saf2, "reopen"), &alice, json!({ "note": "seen again" })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.post(&act(&saf2, "close"), &alice, json!({ "disposition": "benign" })).await;
    // Left open: bf2 (acknowledged) and bf3 (never acknowledged, escalated), both past their deadlines.

    // ------------------------------------------------------------------ another tenant, 10,000 distinct sources
    let globex = token_for("globex", Role::Sender, "globex-shipper");
    let ndjson: String =
        (0..10_000).map(|i| format!("{{\"message\":\"ping {i}\",\"source\":\"app-{i:05}\"}}\n")).collect();
    let resp = c
        .http
        .post(format!("{}/v1/events", c.base))
        .bearer_auth(&globex)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .expect("send globex events");
    assert_eq!(resp.status().as_u16(), 202, "{:?}", resp.text().await);
    // The operator's token: one tenant in its claims, every tenant's series in its scrape.
    let operator = scenario::token_with_scope(SECRET, "ops", Role::Viewer, "prometheus", SCOPE_ALL_TENANTS);
    let mut page = String::new();
    for _ in 0..300 {
        let resp = c.http.get(format!("{}/metrics", c.base)).bearer_auth(&operator).send().await.expect("scrape");
        page = resp.text().await.expect("metrics text");
        let globex_events: f64 = page
            .lines()
            .filter(|l| l.starts_with("vigil_events_ingested_total{") && l.contains(r#"tenant="globex""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if globex_events >= 10_000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let globex_sources = page
        .lines()
        .filter(|l| l.starts_with("vigil_events_ingested_total{") && l.contains(r#"tenant="globex""#))
        .count();
    assert!(
        (MAX_SOURCE_SERIES..=MAX_SOURCE_SERIES + DEFAULT_SOURCES.len() + 1).contains(&globex_sources),
        "10,000 sources stay within the bound: {globex_sources} series"
    );
    assert!(page.contains(r#"vigil_events_ingested_total{source="other",tenant="globex"}"#));
    assert!(page.contains(r#"tenant="acme""#), "the operator's scrape holds acme too");
    assert!(
        !page.contains(r#"tenant="ops""#)
            || page.contains(r#"vigil_tickets_open{age_bucket="<1h",severity="high",tenant="ops"} 0"#)
    );
    let own = c.http.get(format!("{}/metrics", c.base)).bearer_auth(&viewer).send().await.expect("scrape");
    assert!(!own.text().await.expect("text").contains("globex"), "a tenant's own token sees only its tenant");

    // ------------------------------------------------------------------ /metrics through promtool
    let resp = c.http.get(format!("{}/metrics", c.base)).bearer_auth(&operator).send().await.expect("scrape");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/plain; version=0.0.4"));
    let page = resp.text().await.expect("metrics text");
    let page_file = dir.path().join("metrics.txt");
    std::fs::write(&page_file, &page).expect("write metrics");
    let mut promtool = Command::new("sh");
    promtool.arg("-c").arg(format!("promtool check metrics < '{}'", page_file.display()));
    let out = run_blocking(promtool).await;
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n{page}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // ------------------------------------------------------------------ expected panel values, from the JSON API
    let rt = c.get("/v1/analytics/response-times", &viewer).await;
    let de = c.get("/v1/analytics/detection-efficacy", &viewer).await;
    let ta = c.get("/v1/analytics/ticket-aging", &viewer).await;
    let vo = c.get("/v1/analytics/volume", &viewer).await;
    let sc = c.get("/v1/analytics/severity-count", &viewer).await;
    let precision_of = |rule: &str| {
        de["rules"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["rule"] == rule))
            .map(|x| num(&x["precision"], rule))
            .unwrap_or_else(|| panic!("{rule} in {de}"))
    };
    let sum = |v: &Value| v.as_object().map(|o| o.values().filter_map(Value::as_f64).sum::<f64>()).unwrap_or(0.0);
    let oldest = num(&ta["open"]["by_severity"]["high"]["oldest_age_seconds"], "oldest high");
    let expect = json!({
        "vigil-response-times/MTTA (mean)": num(&rt["metrics"]["mtta"]["all"]["mean_seconds"], "MTTA"),
        "vigil-response-times/MTTR (mean)": num(&rt["metrics"]["mttr"]["all"]["mean_seconds"], "MTTR"),
        "vigil-response-times/MTTC (mean)": num(&rt["metrics"]["mttc"]["all"]["mean_seconds"], "MTTC"),
        "vigil-response-times/Response times by severity#G{severity=\"critical\"}": num(&rt["metrics"]["mttc"]["by_severity"]["critical"]["mean_seconds"], "MTTC critical"),
        "vigil-detection-efficacy/Precision": num(&de["totals"]["precision"], "precision"),
        "vigil-detection-efficacy/Precision by rule{rule=\"ssh_brute_force\"}": precision_of("ssh_brute_force"),
        "vigil-detection-efficacy/Precision by rule{rule=\"success_after_failures\"}": precision_of("success_after_failures"),
        "vigil-detection-efficacy/Closed tickets": num(&de["totals"]["closed"], "closed"),
        "vigil-detection-efficacy/Alerts": sum(&sc["alerts"]),
        "vigil-detection-efficacy/Detections": sum(&sc["detections"]),
        "vigil-ticket-aging/Open tickets": num(&ta["open"]["total"], "open"),
        "vigil-ticket-aging/SLA breaches": num(&ta["sla_breaches"]["total"], "breaches"),
        "vigil-ticket-aging/SLA breaches by kind{kind=\"acknowledge\"}": num(&ta["sla_breaches"]["acknowledge"]["total"], "ack breaches"),
        "vigil-ticket-aging/Escalations": num(&ta["escalations"]["in_period"]["total"], "escalations"),
        "vigil-ticket-aging/Oldest open ticket": [oldest, oldest + 600.0],
        "vigil-pipeline-health/Events ingested": num(&vo["totals"]["events"], "events"),
        "vigil-pipeline-health/Queue depth": 0,
        "vigil-pipeline-health/Dead letters": 0,
        "vigil-pipeline-health/Scrape": 1,
        "vigil-pipeline-health/Rules loaded": vigil::detect::DetectionEngine::builtin().rules().iter().filter(|r| r.enabled).count(),
    });
    // The scenario's own numbers, so the expectations are not vacuous.
    assert_eq!(
        (expect["vigil-ticket-aging/Open tickets"].as_f64(), expect["vigil-ticket-aging/SLA breaches"].as_f64()),
        (Some(2.0), Some(3.0))
    );
    assert_eq!(expect["vigil-detection-efficacy/Closed tickets"].as_f64(), Some(4.0));
    assert_eq!(expect["vigil-detection-efficacy/Precision"].as_f64(), Some(0.5));
    assert_eq!(expect["vigil-pipeline-health/Events ingested"].as_f64(), Some(62.0));
    assert!(expect["vigil-response-times/MTTA (mean)"].as_f64().is_some_and(|v| v >= 1.0), "{rt}");
    let expect_file = dir.path().join("expect.json");
    std::fs::write(&expect_file, serde_json::to_vec_pretty(&expect).expect("json")).expect("write expectations");

    // ------------------------------------------------------------------ Prometheus scraping it
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &operator).expect("write token");
    let state = dir.path().join("prometheus-state");
    let _guard = PrometheusGuard { state: state.clone() };
    let mut start = Command::new("bash");
    start
        .arg(root.join("tests/dashboards/run_prometheus.sh"))
        .arg("start")
        .arg(addr.to_string())
        .arg(&token_file)
        .env("VIGIL_PROMETHEUS_STATE_DIR", &state);
    let out = run_blocking(start).await;
    assert!(out.status.success(), "run_prometheus.sh start: {}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    assert!(url.starts_with("http://"), "run_prometheus.sh printed no URL: {url:?}");

    let mut eval = Command::new("python3");
    eval.arg(root.join("tests/dashboards/eval_queries.py"))
        .arg(&url)
        .arg("--tenant")
        .arg("acme")
        .arg("--expect")
        .arg(&expect_file)
        .arg("--wait")
        .arg("90");
    let out = run_blocking(eval).await;
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "eval_queries.py failed:\n{report}");
    assert!(report.contains("every query returned data"), "{report}");

    // Prometheus itself holds both tenants, globex within the bound and every event counted.
    let query = |q: &'static str| {
        let http = c.http.clone();
        let url = url.clone();
        async move {
            let v: Value = http
                .get(format!("{url}/api/v1/query?query={}", percent_encode(q)))
                .send()
                .await
                .expect("query prometheus")
                .json()
                .await
                .expect("json");
            v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN)
        }
    };
    assert!(query(r#"count(vigil_events_ingested_total{tenant="globex"})"#).await <= (MAX_SOURCE_SERIES + 4) as f64);
    assert_eq!(query(r#"sum(vigil_events_ingested_total{tenant="globex"})"#).await, 10_000.0);
    assert_eq!(query(r#"count(count by (tenant) (vigil_events_scored_total))"#).await, 3.0, "acme, globex, ops");

    server.abort();
}

//! The core scenario, end to end through the local host's HTTP routing and queue mappings, on both backends
//! with the same handler code: 20 failed sshd logins from one IP within a minute, then a success, give a
//! brute-force alert and a success-after-failures alert, each with a ticket, visible over HTTP.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use http::{Method, StatusCode};
use serde_json::Value;
use vigil::api::HttpRequest;
use vigil::auth::{mint_hs256, Authenticator, Claims, Role};
use vigil::clock::{Clock, ManualClock};
use vigil::config::{AuthConfig, Config};
use vigil::detect::DetectionEngine;
use vigil::ports::Ports;
use vigil_local::host::{Host, MappingSettings};

const SECRET: &str = "pipeline-test-secret-0123456789abcdef";

fn token(tenant: &str, role: Role) -> String {
    let claims = Claims {
        sub: "tester".into(),
        tenant: tenant.into(),
        role,
        exp: (Utc::now().timestamp() + 3600) as u64,
        iss: None,
        aud: None,
    };
    mint_hs256(SECRET, &claims).expect("mint")
}

fn request(method: Method, path: &str, token: &str, content_type: &str, body: impl Into<Bytes>) -> HttpRequest {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(body.into())
        .expect("request")
}

async fn call(host: &Host, req: HttpRequest) -> (StatusCode, Value) {
    let resp = host.handle_http(req).await;
    let status = resp.status();
    let body: Value = serde_json::from_slice(resp.body()).expect("every answer is JSON");
    (status, body)
}

/// Twenty failures from 203.0.113.7 within 20 seconds, then a success from it.
fn brute_force_then_success() -> String {
    let mut lines: Vec<String> = (0..20)
        .map(|i| format!("<38>Mar 10 11:59:{i:02} web-1 sshd[{}]: Failed password for root from 203.0.113.7 port {} ssh2", 1000 + i, 40000 + i))
        .collect();
    lines.push("<38>Mar 10 11:59:30 web-1 sshd[2000]: Accepted password for root from 203.0.113.7 port 40100 ssh2".into());
    lines.join("\n")
}

fn host_for(ports: Ports) -> (Arc<Host>, ManualClock) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());
    let auth = Arc::new(Authenticator::from_config(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap());
    let host = Host::new(ports, &Config::default(), auth, Arc::new(DetectionEngine::builtin()), Arc::new(clock.clone()) as Arc<dyn Clock>);
    (host, clock)
}

async fn scenario(ports: Ports) {
    let (host, _clock) = host_for(ports);
    let settings = MappingSettings { wait: std::time::Duration::ZERO, ..MappingSettings::default() };
    let sender = token("acme", Role::Sender);
    let viewer = token("acme", Role::Viewer);

    let (status, body) = call(&host, request(Method::POST, "/v1/syslog", &sender, "text/plain", brute_force_then_success())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 21);
    assert_eq!(body["rejected"], serde_json::json!([]));
    host.drain(settings).await.expect("drain");

    let (status, alerts) = call(&host, request(Method::GET, "/v1/alerts", &viewer, "application/json", "")).await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    let items = alerts["items"].as_array().expect("items");
    let mut rules: Vec<&str> = items.iter().map(|a| a["rule"].as_str().unwrap_or_default()).collect();
    rules.sort();
    assert_eq!(rules, vec!["ssh_brute_force", "success_after_failures"], "{alerts}");
    for a in items {
        assert_eq!(a["entity"].as_str().map(|e| e.contains("203.0.113.7")), Some(true), "{a}");
        let ticket_id = a["ticket_id"].as_str().expect("ticket id");
        let (status, t) = call(&host, request(Method::GET, &format!("/v1/tickets/{ticket_id}"), &viewer, "application/json", "")).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        assert_eq!(t["status"], "new");
        assert_eq!(t["alert_id"], a["id"]);
        assert!(!t["history"].as_array().expect("history").is_empty());
    }
    let (_, tickets) = call(&host, request(Method::GET, "/v1/tickets?status=new", &viewer, "application/json", "")).await;
    assert_eq!(tickets["items"].as_array().map(Vec::len), Some(2), "{tickets}");
    let counts: Vec<Value> = items.iter().map(|a| a["count"].clone()).collect();

    // A sender retrying the same request changes nothing downstream: same ids, no new alert, no new roll-up.
    let (status, again) = call(&host, request(Method::POST, "/v1/syslog", &sender, "text/plain", brute_force_then_success())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["ids"], body["ids"]);
    host.drain(settings).await.expect("drain");
    let (_, after) = call(&host, request(Method::GET, "/v1/alerts", &viewer, "application/json", "")).await;
    let after_items = after["items"].as_array().expect("items");
    assert_eq!(after_items.len(), 2, "{after}");
    assert_eq!(after_items.iter().map(|a| a["count"].clone()).collect::<Vec<_>>(), counts);

    // Another tenant sees none of it, not even by id.
    let other = token("globex", Role::Admin);
    let (_, theirs) = call(&host, request(Method::GET, "/v1/alerts", &other, "application/json", "")).await;
    assert_eq!(theirs["items"], serde_json::json!([]));
    let id = items[0]["ticket_id"].as_str().unwrap_or_default();
    let (status, _) = call(&host, request(Method::GET, &format!("/v1/tickets/{id}"), &other, "application/json", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A sender may not read.
    let (status, _) = call(&host, request(Method::GET, "/v1/alerts", &sender, "application/json", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn brute_force_and_compromise_on_the_embedded_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(vigil::clock::SystemClock)).expect("open");
    scenario(backend.ports()).await;
}

#[tokio::test]
async fn brute_force_and_compromise_on_the_aws_backend_against_moto() {
    let (backend, _config) = vigil_tests::moto::fresh_backend().await;
    scenario(backend.ports()).await;
}

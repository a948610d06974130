//! What the HTTP scenarios share: tokens, requests with bearer auth, calls through the local host's routing,
//! the brute-force syslog traffic, a host built with an HS256 authenticator, and the core scenario itself.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use http::{Method, StatusCode};
use serde_json::Value;
use vigil::api::HttpRequest;
use vigil::auth::{mint_hs256, Authenticator, Claims, Role};
use vigil::clock::{Clock, ManualClock};
use vigil::config::{AuthConfig, Config};
use vigil::detect::DetectionEngine;
use vigil::ports::Ports;
use vigil_local::host::{Host, MappingSettings};

/// 2026-03-10 12:00:00 UTC: where the manual clocks of the scenarios start.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap()
}

/// An HS256 token signed with `secret` for `sub`, holding `role` in `tenant`, valid for an hour.
pub fn token(secret: &str, tenant: &str, role: Role, sub: &str) -> String {
    mint(secret, tenant, role, sub, None)
}

/// As [`token`], with a `scope` claim (e.g. [`vigil::auth::SCOPE_ALL_TENANTS`]).
pub fn token_with_scope(secret: &str, tenant: &str, role: Role, sub: &str, scope: &str) -> String {
    mint(secret, tenant, role, sub, Some(scope))
}

fn mint(secret: &str, tenant: &str, role: Role, sub: &str, scope: Option<&str>) -> String {
    let claims = Claims {
        sub: sub.into(),
        tenant: tenant.into(),
        role,
        exp: (Utc::now().timestamp() + 3600) as u64,
        iss: None,
        aud: None,
        scope: scope.map(str::to_string),
    };
    mint_hs256(secret, &claims).expect("mint")
}

/// A request with the given content type and, when there is a token, bearer auth.
pub fn request(
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<Bytes>,
) -> HttpRequest {
    let mut b = http::Request::builder().method(method).uri(path).header("content-type", content_type);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(body.into()).expect("request")
}

/// The request through the host's routing: status and JSON answer.
pub async fn call(host: &Host, req: HttpRequest) -> (StatusCode, Value) {
    let resp = host.handle_http(req).await;
    let status = resp.status();
    let body: Value = serde_json::from_slice(resp.body())
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(resp.body())));
    (status, body)
}

/// `GET path` with bearer auth through the host's routing: status and JSON answer.
pub async fn get(host: &Host, path: &str, token: &str) -> (StatusCode, Value) {
    call(host, request(Method::GET, path, Some(token), "application/json", "")).await
}

/// Twenty failed sshd logins for root from `ip` on `host`, at `stamp(0..20)` seconds, then optionally a success
/// at `stamp(30)`.
pub fn brute_force(ip: &str, host: &str, success: bool, stamp: impl Fn(i64) -> String) -> Vec<String> {
    let mut lines: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "<38>{} {host} sshd[{}]: Failed password for root from {ip} port {} ssh2",
                stamp(i),
                1000 + i,
                40000 + i
            )
        })
        .collect();
    if success {
        lines
            .push(format!("<38>{} {host} sshd[2000]: Accepted password for root from {ip} port 40100 ssh2", stamp(30)));
    }
    lines
}

/// Twenty failures from 203.0.113.7 within 20 seconds, then a success from it.
pub fn brute_force_then_success() -> String {
    brute_force("203.0.113.7", "web-1", true, |s| format!("Mar 10 11:59:{s:02}")).join("\n")
}

/// An HS256 authenticator for `secret`.
pub fn authenticator(secret: &str) -> Arc<Authenticator> {
    Arc::new(
        Authenticator::from_config(&AuthConfig { secret: Some(secret.into()), ..Default::default() }).expect("auth"),
    )
}

/// A host over `ports` with the builtin rules, `secret`'s authenticator and `clock`.
pub fn host(ports: Ports, config: &Config, secret: &str, clock: Arc<dyn Clock>) -> Arc<Host> {
    Host::new(ports, config, authenticator(secret), Arc::new(DetectionEngine::builtin()), clock)
}

/// A host as [`host`] with a manual clock set to `at`, and the clock.
pub fn host_at(ports: Ports, config: &Config, secret: &str, at: DateTime<Utc>) -> (Arc<Host>, ManualClock) {
    let clock = ManualClock::new(at);
    (host(ports, config, secret, Arc::new(clock.clone()) as Arc<dyn Clock>), clock)
}

/// The core scenario on `host`: [`brute_force_then_success`] sent by `tenant`'s sender gives a brute-force and a
/// success-after-failures alert, each with a new ticket; a retry changes nothing; `other_tenant` sees none of it;
/// a sender may not read. `first_drain` checks how many messages the first drain handled.
pub async fn brute_force_and_compromise(
    host: &Host,
    secret: &str,
    tenant: &str,
    other_tenant: &str,
    first_drain: impl FnOnce(usize),
) {
    let settings = MappingSettings { wait: std::time::Duration::ZERO, ..MappingSettings::default() };
    let sender = token(secret, tenant, Role::Sender, "tester");
    let viewer = token(secret, tenant, Role::Viewer, "tester");
    let get = |path: String, token: &str| request(Method::GET, &path, Some(token), "application/json", "");

    let (status, body) =
        call(host, request(Method::POST, "/v1/syslog", Some(&sender), "text/plain", brute_force_then_success())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 21);
    assert_eq!(body["rejected"], serde_json::json!([]));
    first_drain(host.drain(settings).await.expect("drain"));

    let (status, alerts) = call(host, get("/v1/alerts".into(), &viewer)).await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    let items = alerts["items"].as_array().expect("items");
    let mut rules: Vec<&str> = items.iter().map(|a| a["rule"].as_str().unwrap_or_default()).collect();
    rules.sort();
    assert_eq!(rules, vec!["ssh_brute_force", "success_after_failures"], "{alerts}");
    for a in items {
        assert_eq!(a["entity"].as_str().map(|e| e.contains("203.0.113.7")), Some(true), "{a}");
        let ticket_id = a["ticket_id"].as_str().expect("ticket id");
        let (status, t) = call(host, get(format!("/v1/tickets/{ticket_id}"), &viewer)).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        assert_eq!(t["status"], "new");
        assert_eq!(t["alert_id"], a["id"]);
        assert!(!t["history"].as_array().expect("history").is_empty());
    }
    let (_, tickets) = call(host, get("/v1/tickets?status=new".into(), &viewer)).await;
    assert_eq!(tickets["items"].as_array().map(Vec::len), Some(2), "{tickets}");
    let counts: Vec<Value> = items.iter().map(|a| a["count"].clone()).collect();

    // A sender retrying the same request changes nothing downstream: same ids, no new alert, no new roll-up.
    let (status, again) =
        call(host, request(Method::POST, "/v1/syslog", Some(&sender), "text/plain", brute_force_then_success())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["ids"], body["ids"]);
    host.drain(settings).await.expect("drain");
    let (_, after) = call(host, get("/v1/alerts".into(), &viewer)).await;
    let after_items = after["items"].as_array().expect("items");
    assert_eq!(after_items.len(), 2, "{after}");
    assert_eq!(after_items.iter().map(|a| a["count"].clone()).collect::<Vec<_>>(), counts);

    // Another tenant sees none of it, not even by id; a sender may not read.
    let other = token(secret, other_tenant, Role::Admin, "tester");
    let (_, theirs) = call(host, get("/v1/alerts".into(), &other)).await;
    assert_eq!(theirs["items"], serde_json::json!([]));
    let id = items[0]["ticket_id"].as_str().unwrap_or_default();
    let (status, _) = call(host, get(format!("/v1/tickets/{id}"), &other)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(host, get("/v1/alerts".into(), &sender)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

//! The core scenario on LocalStack run on the host (no Docker): SQS in LocalStack (`python -m
//! localstack.runtime.main`), DynamoDB in moto, on the tables and queues that LocalStack's READY hook
//! (localstack/init/ready.d/bootstrap.sh, from infra/template.yaml) created — `bootstrap` is not called.
//!
//! The endpoints and the template's NamePrefix the hook used come from VIGIL_TEST_LOCALSTACK_SQS,
//! VIGIL_TEST_LOCALSTACK_DYNAMODB and VIGIL_TEST_LOCALSTACK_PREFIX, as printed by `tests/support/localstack.sh
//! start`. When they are unset the test runs that script itself (installing LocalStack into .venv-localstack on
//! first use) and stops the LocalStack it started afterwards. A LocalStack that cannot be installed or started
//! fails the test; it is never skipped.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use http::{Method, StatusCode};
use serde_json::Value;
use vigil::adapters::aws::AwsBackend;
use vigil::api::HttpRequest;
use vigil::auth::{mint_hs256, Authenticator, Claims, Role};
use vigil::clock::{Clock, ManualClock};
use vigil::config::{AuthConfig, Config};
use vigil::detect::DetectionEngine;
use vigil::schema::{EVENTS_QUEUE, QUEUES, TABLES};
use vigil_local::host::{Host, MappingSettings};

const SECRET: &str = "localstack-test-secret-0123456789abcdef";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/support/localstack.sh");

// ------------------------------------------------------------------------------------------ the emulators

/// LocalStack (SQS) and moto (DynamoDB), with the resources the init hook created under `prefix`.
struct Emulators {
    sqs: String,
    dynamodb: String,
    prefix: String,
    /// This test started LocalStack, so it stops it again.
    stop_on_drop: bool,
}

impl Emulators {
    fn get() -> Emulators {
        let var = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(sqs) = var("VIGIL_TEST_LOCALSTACK_SQS") {
            let need = |k: &str| {
                var(k).unwrap_or_else(|| {
                    panic!("VIGIL_TEST_LOCALSTACK_SQS is set but {k} is not: export all the lines `{SCRIPT} start` prints")
                })
            };
            return Emulators {
                sqs,
                dynamodb: need("VIGIL_TEST_LOCALSTACK_DYNAMODB"),
                prefix: need("VIGIL_TEST_LOCALSTACK_PREFIX"),
                stop_on_drop: false,
            };
        }

        let started = Instant::now();
        let out = Command::new("bash")
            .arg(SCRIPT)
            .arg("start")
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("LocalStack could not be started on this machine: running `bash {SCRIPT} start`: {e}"));
        assert!(
            out.status.success(),
            "LocalStack could not be installed or started on this machine: `bash {SCRIPT} start` failed ({}); \
             what it said is above",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let vars: HashMap<&str, &str> = stdout.lines().filter_map(|l| l.trim().split_once('=')).collect();
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.to_string())
                .unwrap_or_else(|| panic!("`bash {SCRIPT} start` printed no {k}; it printed:\n{stdout}"))
        };
        let emulators = Emulators {
            sqs: get("VIGIL_TEST_LOCALSTACK_SQS"),
            dynamodb: get("VIGIL_TEST_LOCALSTACK_DYNAMODB"),
            prefix: get("VIGIL_TEST_LOCALSTACK_PREFIX"),
            stop_on_drop: get("VIGIL_TEST_LOCALSTACK_STARTED") == "1",
        };
        eprintln!(
            "LocalStack (SQS) at {}, moto (DynamoDB) at {}, resources {}-*: ready after {:.1?}",
            emulators.sqs,
            emulators.dynamodb,
            emulators.prefix,
            started.elapsed()
        );
        emulators
    }

    /// An SDK configuration with SQS at LocalStack and DynamoDB at moto, through a services section of an
    /// in-memory config profile: the per-service endpoint settings that `AWS_ENDPOINT_URL_SQS` /
    /// `AWS_ENDPOINT_URL_DYNAMODB` give a deployed `vigil serve --backend aws`, without touching this process's
    /// environment.
    #[allow(deprecated)] // aws-config re-exports the profile-file types only under these (deprecated) names
    async fn sdk_config(&self) -> aws_config::SdkConfig {
        use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
        let profile = format!(
            "[profile vigil-localstack]\nservices = vigil-localstack\n\n\
             [services vigil-localstack]\nsqs =\n  endpoint_url = {}\ndynamodb =\n  endpoint_url = {}\n",
            self.sqs, self.dynamodb
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "vigil-localstack"))
            .profile_files(ProfileFiles::builder().with_contents(ProfileFileKind::Config, profile).build())
            .profile_name("vigil-localstack")
            .load()
            .await
    }

    /// The names the hook gave the tables and queues: the template's `!Sub "${NamePrefix}-events"` etc., whose
    /// default prefix `vigil` gives exactly the schema's default names.
    fn config(&self) -> Config {
        let name = |default: &str| {
            let rest = default.strip_prefix("vigil").expect("schema default names start with the template's default NamePrefix");
            format!("{}{rest}", self.prefix)
        };
        let mut cfg = Config::default();
        for t in TABLES {
            cfg.tables.insert(t.logical, name(t.default_name));
        }
        for q in QUEUES {
            cfg.queues.insert(q.logical, name(q.default_name));
        }
        cfg
    }
}

impl Drop for Emulators {
    fn drop(&mut self) {
        if self.stop_on_drop {
            let _ = Command::new("bash").arg(SCRIPT).arg("stop").stdout(Stdio::null()).status();
        }
    }
}

/// What the hook created is where it should be: every table in moto (LocalStack runs SQS only), the queues in
/// LocalStack with the template's redrive policy.
async fn check_hook_resources(sdk: &aws_config::SdkConfig, cfg: &Config, backend: &AwsBackend, emulators: &Emulators) {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    for t in TABLES {
        let name = cfg.table(&t);
        let table = ddb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("table {name} (created by the init hook) in moto at {}: {e:?}", emulators.dynamodb));
        let status = table.table().and_then(|t| t.table_status()).map(|s| s.as_str().to_string());
        assert_eq!(status.as_deref(), Some("ACTIVE"), "table {name}");
    }
    let (events_url, detections_url) = backend.queue_urls();
    for url in [events_url, detections_url] {
        assert!(url.starts_with(&emulators.sqs), "queue {url} is not in LocalStack at {}", emulators.sqs);
    }
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(events_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .expect("events queue attributes");
    let redrive = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
        .cloned()
        .unwrap_or_default();
    assert!(
        redrive.contains(&format!("{}-dlq", cfg.queue(&EVENTS_QUEUE))),
        "the hook gives the events queue the template's dead-letter queue: {redrive:?}"
    );
}

// ------------------------------------------------------------------------------------------- the scenario

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

#[tokio::test]
async fn brute_force_and_compromise_on_localstack_sqs_and_moto_dynamodb() {
    let emulators = Emulators::get();
    let sdk = emulators.sdk_config().await;
    let cfg = emulators.config();
    let backend = AwsBackend::connect(&sdk, &cfg).await.unwrap_or_else(|e| {
        panic!("connect to the queues the init hook created in LocalStack at {}: {e}", emulators.sqs)
    });
    check_hook_resources(&sdk, &cfg, &backend, &emulators).await;

    // Tenants of their own, so a LocalStack (and moto) reused from an earlier run holds nothing of theirs.
    let run = format!("{:x}", Utc::now().timestamp_nanos_opt().unwrap_or_default());
    let (tenant, other_tenant) = (format!("acme-{run}"), format!("globex-{run}"));

    let started = Instant::now();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());
    let auth = Arc::new(Authenticator::from_config(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap());
    let host = Host::new(backend.ports(), &cfg, auth, Arc::new(DetectionEngine::builtin()), Arc::new(clock.clone()) as Arc<dyn Clock>);
    let settings = MappingSettings { wait: std::time::Duration::ZERO, ..MappingSettings::default() };
    let sender = token(&tenant, Role::Sender);
    let viewer = token(&tenant, Role::Viewer);

    let (status, body) = call(&host, request(Method::POST, "/v1/syslog", &sender, "text/plain", brute_force_then_success())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"], 21);
    assert_eq!(body["rejected"], serde_json::json!([]));
    let handled = host.drain(settings).await.expect("drain");
    assert!(handled > 0, "the score and alert mappings received nothing from LocalStack");

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

    // Another tenant sees none of it, not even by id; a sender may not read.
    let other = token(&other_tenant, Role::Admin);
    let (_, theirs) = call(&host, request(Method::GET, "/v1/alerts", &other, "application/json", "")).await;
    assert_eq!(theirs["items"], serde_json::json!([]));
    let id = items[0]["ticket_id"].as_str().unwrap_or_default();
    let (status, _) = call(&host, request(Method::GET, &format!("/v1/tickets/{id}"), &other, "application/json", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&host, request(Method::GET, "/v1/alerts", &sender, "application/json", "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Nothing is left behind in LocalStack's queues.
    assert_eq!(host.drain(settings).await.expect("drain"), 0);
    eprintln!("scenario on LocalStack + moto: {:.1?}", started.elapsed());
}

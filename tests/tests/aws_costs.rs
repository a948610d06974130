//! What 1,000 events cost on the aws backend: SQS requests and DynamoDB write requests, counted by the adapter
//! while the whole pipeline (ingest → score → alert) runs against moto. Bounds guard against regressions
//! (one request per event would blow them); `cargo test -p vigil-tests --test aws_costs -- --nocapture`
//! prints the figures quoted in docs/benchmarks.md.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use vigil::auth::{mint_hs256, Authenticator, Claims, Role};
use vigil::clock::{Clock, ManualClock};
use vigil::config::AuthConfig;
use vigil::detect::DetectionEngine;
use vigil_local::host::{Host, MappingSettings};

const SECRET: &str = "aws-costs-test-secret-0123456789abcdef";

/// A realistic hour of auth log: mostly accepted logins from many hosts, scattered failures, sudo and su, and
/// one brute-force source.
fn auth_log(lines: usize) -> String {
    (0..lines)
        .map(|n| {
            let (m, s) = (n / 60 % 60, n % 60);
            let msg = match n % 20 {
                0..=13 => format!(
                    "sshd[{n}]: Accepted publickey for user{} from 10.0.{}.{} port {} ssh2",
                    n % 40,
                    n % 7,
                    n % 250,
                    2000 + n
                ),
                14..=16 => format!(
                    "sshd[{n}]: Failed password for user{} from 198.51.100.{} port {} ssh2",
                    n % 40,
                    n % 150,
                    2000 + n
                ),
                17 => format!("sudo[{n}]:   user{} : TTY=pts/1 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls", n % 40),
                18 => format!("su[{n}]: (to root) user{} on pts/2", n % 40),
                _ => format!("sshd[{n}]: Failed password for root from 203.0.113.9 port {} ssh2", 2000 + n),
            };
            format!("<38>Mar 10 10:{m:02}:{s:02} web-{} {msg}", n % 5)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_thousand_events_cost_few_sqs_and_dynamodb_requests() {
    let (backend, config) = vigil_tests::moto::fresh_backend().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 10, 11, 0, 0).unwrap());
    let auth = Arc::new(
        Authenticator::from_config(&AuthConfig { secret: Some(SECRET.into()), ..Default::default() }).unwrap(),
    );
    let host = Host::new(
        backend.ports(),
        &config,
        auth,
        Arc::new(DetectionEngine::builtin()),
        Arc::new(clock) as Arc<dyn Clock>,
    );
    let token = mint_hs256(
        SECRET,
        &Claims {
            sub: "t".into(),
            tenant: "acme".into(),
            role: Role::Sender,
            exp: (Utc::now().timestamp() + 600) as u64,
            iss: None,
            aud: None,
            scope: None,
        },
    )
    .unwrap();
    let before = backend.request_counts();
    let req = http::Request::builder()
        .method("POST")
        .uri("/v1/syslog")
        .header("authorization", format!("Bearer {token}"))
        .body(Bytes::from(auth_log(1000)))
        .unwrap();
    let resp = host.handle_http(req).await;
    assert_eq!(resp.status(), 202, "{:?}", resp.body());
    let after_ingest = backend.request_counts();
    host.drain(MappingSettings { wait: std::time::Duration::ZERO, ..MappingSettings::default() }).await.expect("drain");
    let after = backend.request_counts();

    let ingest_sends = after_ingest.sqs_send_requests - before.sqs_send_requests;
    let sqs = after.sqs_requests - before.sqs_requests;
    let writes = after.dynamodb_write_requests - before.dynamodb_write_requests;
    let items = after.dynamodb_items_written - before.dynamodb_items_written;
    let reads = after.dynamodb_read_requests - before.dynamodb_read_requests;
    println!("per 1,000 events: ingest SendMessageBatch {ingest_sends}; all SQS requests {sqs}; DynamoDB write requests {writes} ({items} items); DynamoDB reads {reads}");
    assert!(ingest_sends <= 3, "ingest packs 1,000 events into a few 256 KiB messages: {ingest_sends}");
    assert!(sqs <= 40, "SQS requests for 1,000 events: {sqs}");
    // Window state costs one UpdateItem per (rule, entity) per batch; this log has ~1,000 distinct
    // (rule, entity) pairs. One write per event and rule would be ~8,000.
    assert!(writes <= 4000, "DynamoDB write requests for 1,000 events: {writes}");
}

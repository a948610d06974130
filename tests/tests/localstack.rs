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
use std::time::Instant;

use chrono::Utc;
use vigil::adapters::aws::AwsBackend;
use vigil::config::Config;
use vigil::schema::{EVENTS_QUEUE, QUEUES, TABLES};
use vigil_local::host::MappingSettings;
use vigil_tests::scenario;

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
                    panic!(
                        "VIGIL_TEST_LOCALSTACK_SQS is set but {k} is not: export all the lines `{SCRIPT} start` prints"
                    )
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
        let out = Command::new("bash").arg(SCRIPT).arg("start").stderr(Stdio::inherit()).output().unwrap_or_else(|e| {
            panic!("LocalStack could not be started on this machine: running `bash {SCRIPT} start`: {e}")
        });
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
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "test",
                None,
                None,
                "vigil-localstack",
            ))
            .profile_files(ProfileFiles::builder().with_contents(ProfileFileKind::Config, profile).build())
            .profile_name("vigil-localstack")
            .load()
            .await
    }

    /// The names the hook gave the tables and queues: the template's `!Sub "${NamePrefix}-events"` etc., whose
    /// default prefix `vigil` gives exactly the schema's default names.
    fn config(&self) -> Config {
        let name = |default: &str| {
            let rest = default
                .strip_prefix("vigil")
                .expect("schema default names start with the template's default NamePrefix");
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
        let table = ddb.describe_table().table_name(name).send().await.unwrap_or_else(|e| {
            panic!("table {name} (created by the init hook) in moto at {}: {e:?}", emulators.dynamodb)
        });
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
    let (host, _clock) = scenario::host_at(backend.ports(), &cfg, SECRET, scenario::start());
    scenario::brute_force_and_compromise(&host, SECRET, &tenant, &other_tenant, |handled| {
        assert!(handled > 0, "the score and alert mappings received nothing from LocalStack");
    })
    .await;

    // Nothing is left behind in LocalStack's queues.
    let settings = MappingSettings { wait: std::time::Duration::ZERO, ..MappingSettings::default() };
    assert_eq!(host.drain(settings).await.expect("drain"), 0);
    eprintln!("scenario on LocalStack + moto: {:.1?}", started.elapsed());
}

//! The moto emulator for tests of the AWS backend: a real DynamoDB and SQS API over HTTP.
//!
//! [`endpoint`] is `VIGIL_TEST_AWS_ENDPOINT` when set; otherwise `tests/support/moto.sh start` runs once per
//! test process (installing moto into `.venv` if needed, reusing a server that is already up). Every
//! [`fresh_backend`] gets its own tables and queues, so tests never share state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;
use vigil::adapters::aws::{bootstrap, local_sdk_config, AwsBackend};
use vigil::config::Config;
use vigil::schema::{QUEUES, TABLES};

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

/// The emulator's endpoint URL, starting moto if needed.
pub async fn endpoint() -> String {
    if let Ok(url) = std::env::var("VIGIL_TEST_AWS_ENDPOINT") {
        if !url.trim().is_empty() {
            return url.trim().to_string();
        }
    }
    ENDPOINT
        .get_or_init(|| async { tokio::task::spawn_blocking(start_moto).await.expect("moto start task panicked") })
        .await
        .clone()
}

fn start_moto() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/moto.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg("start")
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    assert!(out.status.success(), "{script} start failed ({})", out.status);
    let url = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    assert!(url.starts_with("http"), "{script} start printed no endpoint: {url:?}");
    url
}

/// A suffix no other test in any process uses at the same time.
pub fn unique_suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{:x}{n}", (nanos as u64) & 0xffff_ffff_ffff, std::process::id())
}

/// A config whose every table and queue name carries `suffix`.
pub fn config_with_suffix(suffix: &str) -> Config {
    let mut cfg = Config::default();
    for t in TABLES {
        cfg.tables.insert(t.logical, format!("{}-{suffix}", t.default_name));
    }
    for q in QUEUES {
        cfg.queues.insert(q.logical, format!("{}-{suffix}", q.default_name));
    }
    cfg
}

/// The SDK configuration for the emulator.
pub async fn sdk_config() -> aws_config::SdkConfig {
    local_sdk_config(&endpoint().await).await
}

/// A backend on its own freshly bootstrapped tables and queues.
pub async fn fresh_backend() -> (AwsBackend, Config) {
    let cfg = config_with_suffix(&unique_suffix());
    let sdk = sdk_config().await;
    bootstrap(&sdk, &cfg).await.expect("bootstrap on moto");
    let backend = AwsBackend::connect(&sdk, &cfg).await.expect("connect to moto");
    (backend, cfg)
}

//! `vigil serve` for real in a test: the local host behind the real HTTP server (`vigil_local::serve::serve`,
//! the code the binary runs) on a free loopback port, with the system clock and an embedded backend in a
//! temporary directory; and the real clients the tests drive (Node packages in tests/clients, Debian tools).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil_local::host::{Host, MappingSettings};

use crate::scenario;

/// A running server; it stops when dropped.
pub struct Served {
    pub addr: SocketAddr,
    pub base: String,
    pub host: Arc<Host>,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves a fresh embedded backend with `config`, tokens signed with `secret`; returns once `/healthz` answers.
pub async fn serve(config: &Config, secret: &str) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(&dir.path().join("data"), Arc::new(SystemClock))
        .expect("open the embedded backend");
    let host = scenario::host(backend.ports(), config, secret, Arc::new(SystemClock));
    let listener = vigil_local::serve::bind("127.0.0.1:0").await.expect("bind a free port");
    let addr = listener.local_addr().expect("bound address");
    let settings = MappingSettings { wait: Duration::from_millis(100), ..MappingSettings::default() };
    let task = tokio::spawn(vigil_local::serve::serve(host.clone(), listener, config.limits.max_body_bytes, settings));
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Served { addr, base, host, task, _dir: dir };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("vigil did not come up on {addr}");
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

/// tests/clients with its Node packages installed (tests/run installs them); fails, never skips, without.
pub fn node_clients() -> PathBuf {
    let dir = repo_root().join("tests/clients");
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && dir.join("node_modules/splunk-logging").is_dir(),
        "the Node test clients are not installed: run tests/run (or `npm ci` in {})",
        dir.display()
    );
    dir
}

/// Fails — never skips — when a program the test needs is missing.
pub fn require(programs: &[&str]) {
    for p in programs {
        let found =
            Command::new("sh").arg("-c").arg(format!("command -v {p}")).output().is_ok_and(|o| o.status.success());
        assert!(found, "{p} is not installed: run tests/run, which installs what the tests need");
    }
}

/// Runs a command to completion off the async runtime.
pub async fn run(mut cmd: Command) -> std::process::Output {
    let shown = format!("{cmd:?}");
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("command task")
        .unwrap_or_else(|e| panic!("running {shown}: {e}"))
}

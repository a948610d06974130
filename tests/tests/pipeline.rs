//! The core scenario, end to end through the local host's HTTP routing and queue mappings, on both backends
//! with the same handler code: 20 failed sshd logins from one IP within a minute, then a success, give a
//! brute-force alert and a success-after-failures alert, each with a ticket, visible over HTTP.

use std::sync::Arc;

use vigil::config::Config;
use vigil::ports::Ports;
use vigil_tests::scenario;

const SECRET: &str = "pipeline-test-secret-0123456789abcdef";

async fn run(ports: Ports) {
    let (host, _clock) = scenario::host_at(ports, &Config::default(), SECRET, scenario::start());
    scenario::brute_force_and_compromise(&host, SECRET, "acme", "globex", |_| {}).await;
}

#[tokio::test]
async fn brute_force_and_compromise_on_the_embedded_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = vigil::adapters::embedded::EmbeddedBackend::open(dir.path(), Arc::new(vigil::clock::SystemClock))
        .expect("open");
    run(backend.ports()).await;
}

#[tokio::test]
async fn brute_force_and_compromise_on_the_aws_backend_against_moto() {
    let (backend, _config) = vigil_tests::moto::fresh_backend().await;
    run(backend.ports()).await;
}

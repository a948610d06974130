//! `vigil serve`: the HTTP front (axum) and the queue mappings around one [`Host`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use tokio::sync::watch;
use vigil::api::ApiError;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::ports::Ports;

use crate::host::{Host, MappingSettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// redb in the data directory: no external service.
    Embedded,
    /// DynamoDB + SQS at AWS_ENDPOINT_URL (LocalStack) or in your AWS account.
    Aws,
}

/// Opens the chosen backend's ports.
pub async fn open_ports(backend: Backend, data_dir: &Path, config: &Config) -> anyhow::Result<Ports> {
    Ok(match backend {
        Backend::Embedded => vigil::adapters::embedded::EmbeddedBackend::open(data_dir, Arc::new(SystemClock))
            .with_context(|| format!("opening the embedded database in {}", data_dir.display()))?
            .ports(),
        Backend::Aws => {
            let sdk = aws_config::load_from_env().await;
            vigil::adapters::aws::AwsBackend::connect(&sdk, config)
                .await
                .context("connecting to DynamoDB/SQS (run `vigil bootstrap` first against LocalStack)")?
                .ports()
        }
    })
}

struct AppState {
    host: Arc<Host>,
    max_body: usize,
}

async fn front(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, state.max_body).await {
        Ok(b) => b,
        Err(_) => {
            let e = ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", state.max_body),
            )
            .with_detail(serde_json::json!({ "limit": state.max_body }));
            return e.into_response().map(Body::from);
        }
    };
    state.host.handle_http(http::Request::from_parts(parts, bytes)).await.map(Body::from)
}

/// Binds `addr`: `host:port` with a name (`localhost:8080`) or an address (`0.0.0.0:8080`, `[::1]:8080`).
pub async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("--addr {addr:?} is not host:port (e.g. 127.0.0.1:8080 or localhost:8080)"))?
        .collect();
    let mut last = None;
    for a in &addrs {
        match tokio::net::TcpListener::bind(a).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some((a, e)),
        }
    }
    match last {
        Some((a, e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
            anyhow::bail!(
                "cannot listen on {a}: the address is in use (another vigil serve?); choose another with --addr"
            )
        }
        Some((a, e)) => Err(anyhow::Error::new(e).context(format!("cannot listen on {a}"))),
        None => anyhow::bail!("--addr {addr:?} resolves to no address"),
    }
}

/// Serves until Ctrl-C / SIGTERM, then lets batches in progress finish.
pub async fn run(host: Arc<Host>, addr: SocketAddr, max_body: usize, settings: MappingSettings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    serve(host, listener, max_body, settings).await
}

/// Serves on a bound listener (see [`bind`]) until Ctrl-C / SIGTERM.
pub async fn serve(
    host: Arc<Host>,
    listener: tokio::net::TcpListener,
    max_body: usize,
    settings: MappingSettings,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mappings = host.spawn_mappings(settings, stop_rx);
    let app = axum::Router::new().fallback(front).with_state(Arc::new(AppState { host, max_body }));
    tracing::info!(addr = %listener.local_addr()?, "vigil serving");
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    for m in mappings {
        let _ = m.await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

//! The moto emulator for tests of the AWS backend: a real DynamoDB and SQS API over HTTP.
//!
//! The emulator is `VIGIL_TEST_AWS_ENDPOINT` when set; otherwise `tests/support/moto.sh start` runs once per
//! test process (installing moto into `.venv` if needed, reusing a server that is already up). Every
//! [`fresh_backend`] gets its own tables and queues, so tests never share state.
//!
//! [`endpoint`] is not the emulator itself but a small proxy in front of it (one per test process) that
//! passes DynamoDB requests on ONE AT A TIME. moto's `TransactWriteItems` is not isolated from concurrent
//! requests: it checks conditions and writes item by item, and a cancelled transaction restores a copy of
//! each table taken when it began, undoing whatever other requests wrote to that table meanwhile. DynamoDB
//! itself serialises transactions, and the concurrency checks of the contract suite (ten updates of one
//! ticket at once: exactly one wins; concurrent counter increments lose nothing) test the adapter against
//! that guarantee, not moto's threading. Tables are per test, so serialising within a process is enough.
//! SQS requests (long polls) pass through concurrently. `VIGIL_TEST_AWS_DIRECT=1` bypasses the proxy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OnceCell};
use vigil::adapters::aws::{bootstrap, local_sdk_config, AwsBackend};
use vigil::config::Config;
use vigil::schema::{QUEUES, TABLES};

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

/// The endpoint URL the tests use: the serialising proxy in front of the emulator (starting moto if needed).
pub async fn endpoint() -> String {
    ENDPOINT
        .get_or_init(|| async {
            let upstream = emulator().await;
            if std::env::var("VIGIL_TEST_AWS_DIRECT").is_ok_and(|v| v == "1") {
                return upstream;
            }
            tokio::task::spawn_blocking(move || start_proxy(upstream)).await.expect("proxy start task panicked")
        })
        .await
        .clone()
}

/// The emulator's own endpoint URL, starting moto if needed.
pub async fn emulator() -> String {
    if let Ok(url) = std::env::var("VIGIL_TEST_AWS_ENDPOINT") {
        if !url.trim().is_empty() {
            return url.trim().to_string();
        }
    }
    tokio::task::spawn_blocking(start_moto).await.expect("moto start task panicked")
}

// ------------------------------------------------------------------------------------------------ proxy

/// Starts the proxy on its own thread and runtime (tests each have their own runtime, which ends with the
/// test) and returns its URL.
fn start_proxy(upstream: String) -> String {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the moto proxy");
    std_listener.set_nonblocking(true).expect("non-blocking listener");
    let addr = std_listener.local_addr().expect("proxy address");
    std::thread::Builder::new()
        .name("moto-proxy".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("proxy listener");
                let client = reqwest::Client::builder().no_proxy().build().expect("proxy HTTP client");
                let upstream = Arc::new(upstream.trim_end_matches('/').to_string());
                let dynamodb = Arc::new(Mutex::new(()));
                loop {
                    let Ok((socket, _)) = listener.accept().await else { continue };
                    let (client, upstream, dynamodb) = (client.clone(), upstream.clone(), dynamodb.clone());
                    tokio::spawn(async move {
                        if let Err(e) = proxy_connection(socket, &client, &upstream, &dynamodb).await {
                            eprintln!("moto proxy: {e}");
                        }
                    });
                }
            })
        })
        .expect("spawn the moto proxy thread");
    format!("http://{addr}")
}

/// Serves HTTP/1.1 requests on one connection (keep-alive) by forwarding each to `upstream`.
async fn proxy_connection(
    socket: TcpStream,
    client: &reqwest::Client,
    upstream: &str,
    dynamodb: &Mutex<()>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Err(std::io::Error::other(format!("bad request line {line:?}")));
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            if let Some((name, value)) = h.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        if header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            write.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        let body = if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            read_chunked(&mut reader).await?
        } else {
            let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).await?;
            body
        };
        let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let serialise = header("x-amz-target").is_some_and(|t| t.starts_with("DynamoDB_"));

        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(std::io::Error::other)?;
        let mut request = client.request(method, format!("{upstream}{target}")).body(body);
        for (name, value) in &headers {
            if !matches!(name.as_str(), "host" | "content-length" | "transfer-encoding" | "connection" | "expect") {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        let response = {
            let _turn = if serialise { Some(dynamodb.lock().await) } else { None };
            match request.send().await {
                Ok(r) => {
                    let status = r.status();
                    let headers = r.headers().clone();
                    r.bytes().await.map(|b| (status, headers, b))
                }
                Err(e) => Err(e),
            }
        };
        let mut out = Vec::new();
        match response {
            Ok((status, headers, body)) => {
                out.extend_from_slice(
                    format!("HTTP/1.1 {} {}\r\n", status.as_u16(), status.canonical_reason().unwrap_or("")).as_bytes(),
                );
                for (name, value) in &headers {
                    if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
                        out.extend_from_slice(name.as_str().as_bytes());
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(value.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                }
                out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
            }
            Err(e) => {
                let msg = format!("moto proxy: {e}");
                out.extend_from_slice(
                    format!("HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\n\r\n{msg}", msg.len()).as_bytes(),
                );
            }
        }
        write.write_all(&out).await?;
        write.flush().await?;
        if close {
            return Ok(());
        }
    }
}

/// A chunked request body, decoded.
async fn read_chunked<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).await?;
        let size = size.trim().split(';').next().unwrap_or_default();
        let n = usize::from_str_radix(size, 16).map_err(std::io::Error::other)?;
        if n == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t).await? == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + n, 0);
        reader.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).await?;
    }
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

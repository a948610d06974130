//! `vigil send`: ships syslog or NDJSON files (or standard input, `-`) to ingest in chunks, with a progress bar
//! and retries. Memory stays bounded: one chunk at a time is read, sent, and dropped. A chunk the server finds
//! too large (413) is split in half and sent again, down to single lines.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::client::{refusal, unreachable, KeySource};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// NDJSON if the first non-empty line starts with `{`, else syslog.
    Auto,
    Syslog,
    Ndjson,
}

pub struct SendOptions {
    /// The API's base URL (see [`crate::client::base_url`]).
    pub url: String,
    pub token: String,
    /// Where the token came from, for the hint when the server refuses its signature.
    pub key: KeySource,
    pub format: Format,
    pub chunk_lines: usize,
    pub chunk_bytes: usize,
    pub quiet: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendTotals {
    pub accepted: u64,
    pub rejected: u64,
    pub requests: u64,
}

/// `-` is standard input.
fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if is_stdin(path) {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Box::new(BufReader::new(f)))
}

/// The format of a file from its first non-empty line (which stays in the returned reader).
fn detect(first_line: &str) -> Format {
    if first_line.trim_start().starts_with('{') {
        Format::Ndjson
    } else {
        Format::Syslog
    }
}

pub async fn send_files(files: &[PathBuf], opts: &SendOptions) -> anyhow::Result<SendTotals> {
    let total_bytes: u64 =
        files.iter().filter(|p| !is_stdin(p)).filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = if opts.quiet { ProgressBar::hidden() } else { ProgressBar::new(total_bytes) };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let mut totals = SendTotals::default();
    for path in files {
        let mut reader = open(path)?;
        let shown = if is_stdin(path) { "standard input".to_string() } else { path.display().to_string() };
        let mut pending: Vec<String> = Vec::new();
        let mut format = opts.format;
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).with_context(|| format!("reading {shown}"))?;
            if n > 0 {
                if format == Format::Auto && !line.trim().is_empty() {
                    format = detect(&line);
                }
                if !line.ends_with('\n') {
                    line.push('\n');
                }
                pending.push(line);
            }
            let bytes: usize = pending.iter().map(String::len).sum();
            if (n == 0 && !pending.is_empty()) || pending.len() >= opts.chunk_lines || bytes >= opts.chunk_bytes {
                let lines = std::mem::take(&mut pending);
                let (route, content_type) = match format {
                    Format::Ndjson => ("/v1/events", "application/x-ndjson"),
                    _ => ("/v1/syslog", "text/plain"),
                };
                let endpoint = format!("{}{route}", opts.url);
                let sent = post_halving(&client, &endpoint, opts, content_type, lines).await?;
                totals.accepted += sent.accepted;
                totals.rejected += sent.rejected;
                totals.requests += sent.requests;
                bar.inc(bytes as u64);
                bar.set_message(format!("{} accepted, {} rejected", totals.accepted, totals.rejected));
            }
            if n == 0 {
                break;
            }
        }
    }
    bar.finish();
    Ok(totals)
}

/// What one post answered.
enum Posted {
    Done { accepted: u64, rejected: u64 },
    TooLarge,
}

/// Posts `lines`; on 413 splits them in half and posts each half (a single line too large is rejected).
async fn post_halving(
    client: &reqwest::Client,
    url: &str,
    opts: &SendOptions,
    content_type: &str,
    lines: Vec<String>,
) -> anyhow::Result<SendTotals> {
    let mut totals = SendTotals::default();
    let mut stack = vec![lines];
    while let Some(chunk) = stack.pop() {
        totals.requests += 1;
        match post(client, url, opts, content_type, chunk.concat()).await? {
            Posted::Done { accepted, rejected } => {
                totals.accepted += accepted;
                totals.rejected += rejected;
            }
            Posted::TooLarge if chunk.len() > 1 => {
                let mut first = chunk;
                let second = first.split_off(first.len() / 2);
                tracing::info!(lines = first.len() + second.len(), "ingest said 413; sending the chunk in halves");
                // The first half goes first: lines keep their order.
                stack.push(second);
                stack.push(first);
            }
            Posted::TooLarge => {
                tracing::warn!(bytes = chunk.concat().len(), "one line is larger than ingest accepts; skipped");
                totals.rejected += 1;
            }
        }
    }
    Ok(totals)
}

/// Posts one chunk, retrying what a sender should retry (connection errors, 429, 5xx) with backoff.
async fn post(
    client: &reqwest::Client,
    url: &str,
    opts: &SendOptions,
    content_type: &str,
    body: String,
) -> anyhow::Result<Posted> {
    let base = url.rsplit_once("/v1/").map(|(b, _)| b).unwrap_or(url);
    let mut delay = Duration::from_millis(250);
    let mut last_error = String::new();
    for attempt in 1..=6 {
        let result = client
            .post(url)
            .bearer_auth(&opts.token)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                let accepted = v["accepted"].as_u64().unwrap_or(0);
                let rejected = v["rejected"].as_array().map(|a| a.len() as u64).unwrap_or(0);
                return Ok(Posted::Done { accepted, rejected });
            }
            Ok(resp) if resp.status().as_u16() == 413 => return Ok(Posted::TooLarge),
            Ok(resp) if resp.status().as_u16() == 429 || resp.status().is_server_error() => {
                last_error = format!("{}", resp.status());
                tracing::warn!(status = resp.status().as_u16(), attempt, "ingest busy; retrying");
            }
            Ok(resp) if resp.status().as_u16() == 400 => {
                // A chunk with no valid line is reported, not fatal: the rest of the file still goes.
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                let rejected = v["detail"]["rejected"].as_array().map(|a| a.len() as u64).unwrap_or(0);
                tracing::warn!(error = %v["error"], "ingest rejected a chunk");
                return Ok(Posted::Done { accepted: 0, rejected });
            }
            Ok(resp) => return Err(refusal(resp, &opts.key).await.context(format!("ingest at {url} refused a chunk"))),
            Err(e) if e.is_connect() && attempt == 6 => return Err(unreachable(base, &e)),
            Err(e) => {
                last_error = e.to_string();
                tracing::warn!(error = %e, attempt, "ingest unreachable; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(8));
    }
    anyhow::bail!("ingest at {url} did not accept a chunk after 6 attempts ({last_error})")
}

//! `vigil send`: ships syslog or NDJSON files to ingest in chunks, with a progress bar and retries. Memory
//! stays bounded: one chunk at a time is read, sent, and dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// NDJSON if the first non-empty line starts with `{`, else syslog.
    Auto,
    Syslog,
    Ndjson,
}

pub struct SendOptions {
    pub url: String,
    pub token: String,
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

fn detect(path: &PathBuf) -> anyhow::Result<Format> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for line in BufReader::new(f).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let t = line.trim_start();
        if !t.is_empty() {
            return Ok(if t.starts_with('{') { Format::Ndjson } else { Format::Syslog });
        }
    }
    Ok(Format::Syslog)
}

pub async fn send_files(files: &[PathBuf], opts: &SendOptions) -> anyhow::Result<SendTotals> {
    let total_bytes: u64 = files.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let bar = if opts.quiet { ProgressBar::hidden() } else { ProgressBar::new(total_bytes) };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let mut totals = SendTotals::default();
    for path in files {
        let format = match opts.format {
            Format::Auto => detect(path)?,
            f => f,
        };
        let (route, content_type) = match format {
            Format::Ndjson => ("/v1/events", "application/x-ndjson"),
            _ => ("/v1/syslog", "text/plain"),
        };
        let endpoint = format!("{}{}", opts.url.trim_end_matches('/'), route);
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = BufReader::new(f);
        let mut chunk = String::new();
        let mut lines = 0usize;
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).with_context(|| format!("reading {}", path.display()))?;
            if n > 0 {
                chunk.push_str(&line);
                if !line.ends_with('\n') {
                    chunk.push('\n');
                }
                lines += 1;
            }
            if (n == 0 && !chunk.is_empty()) || lines >= opts.chunk_lines || chunk.len() >= opts.chunk_bytes {
                let body = std::mem::take(&mut chunk);
                let sent = body.len() as u64;
                let (accepted, rejected) = post(&client, &endpoint, &opts.token, content_type, body).await?;
                totals.accepted += accepted;
                totals.rejected += rejected;
                totals.requests += 1;
                lines = 0;
                bar.inc(sent);
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

/// Posts one chunk, retrying what a sender should retry (connection errors, 429, 5xx) with backoff.
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    content_type: &str,
    body: String,
) -> anyhow::Result<(u64, u64)> {
    let mut delay = Duration::from_millis(250);
    for attempt in 1..=6 {
        let result =
            client.post(url).bearer_auth(token).header("content-type", content_type).body(body.clone()).send().await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                let accepted = v["accepted"].as_u64().unwrap_or(0);
                let rejected = v["rejected"].as_array().map(|a| a.len() as u64).unwrap_or(0);
                return Ok((accepted, rejected));
            }
            Ok(resp) if resp.status().as_u16() == 429 || resp.status().is_server_error() => {
                tracing::warn!(status = resp.status().as_u16(), attempt, "ingest busy; retrying");
            }
            Ok(resp) if resp.status().as_u16() == 400 => {
                // A chunk with no valid line is reported, not fatal: the rest of the file still goes.
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                let rejected = v["detail"]["rejected"].as_array().map(|a| a.len() as u64).unwrap_or(0);
                tracing::warn!(error = %v["error"], "ingest rejected a chunk");
                return Ok((0, rejected));
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                anyhow::bail!("ingest refused a chunk ({status}): {text}");
            }
            Err(e) => tracing::warn!(error = %e, attempt, "ingest unreachable; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(8));
    }
    anyhow::bail!("ingest at {url} did not accept a chunk after 6 attempts")
}

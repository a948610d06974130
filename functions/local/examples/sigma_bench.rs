//! What Sigma rules cost the detection engine: `vigil simulate`'s web + auth + JSON traffic evaluated by the
//! built-in rules alone and with Sigma rules added, side by side in one run (rounds interleaved, medians
//! compared). `--store memory` (the default) keeps window state in memory, so the engine's own work is all
//! that is measured; `--store embedded` uses `vigil serve`'s redb window store (in a temporary directory,
//! on /dev/shm when there is one). Run it with `bench/sigma_engine.sh` (release build).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use std::sync::Arc;

use vigil::adapters::embedded::EmbeddedBackend;
use vigil::clock::SystemClock;
use vigil::detect::ruletest::MemoryWindows;
use vigil::detect::DetectionEngine;
use vigil::model::Event;
use vigil::parse::{parse_json_events, parse_syslog_lines, ParseContext};
use vigil::ports::WindowStore;
use vigil_local::eval::{load_lines, load_truth};
use vigil_local::simulate::{simulate, Scenario, SimOptions};

#[derive(Parser)]
struct Args {
    /// `vigil simulate` scale (1.0 is about 30,000 events a day).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Rounds per configuration (interleaved); the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Events per `evaluate` call (a queue message's worth).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// A configuration to compare with the built-in rules: `NAME=PATH[,PATH...]` (Sigma files or directories).
    #[arg(long = "sigma", required = true)]
    configs: Vec<String>,
    /// Window store: memory or embedded.
    #[arg(long, default_value = "memory")]
    store: String,
    /// Also print, per Sigma rule of the last configuration, how many events it matches and what testing one
    /// event costs.
    #[arg(long)]
    per_rule: bool,
}

fn engine_with(paths: &[PathBuf]) -> anyhow::Result<(DetectionEngine, Duration)> {
    let listed: Vec<String> = paths.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    let text = format!("[sigma]\npaths = [{}]\nstrict = true\n", listed.join(", "));
    let start = Instant::now();
    let engine = DetectionEngine::builtin().with_overrides(&text, "bench.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((engine, start.elapsed()))
}

/// Evaluates every batch once against a fresh store; returns the time taken and the detections found.
async fn pass(engine: &DetectionEngine, batches: &[Vec<Event>], store: &str) -> anyhow::Result<(Duration, usize)> {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm)? } else { tempfile::tempdir()? };
    let windows: Arc<dyn WindowStore> = match store {
        "memory" => Arc::new(MemoryWindows::default()),
        "embedded" => EmbeddedBackend::open(dir.path(), Arc::new(SystemClock))?.ports().windows,
        other => anyhow::bail!("unknown store {other} (memory or embedded)"),
    };
    let mut detections = 0;
    let start = Instant::now();
    for batch in batches {
        let mut events = batch.clone();
        let now = events.iter().map(|e| e.timestamp).max().unwrap_or_default();
        detections += engine.evaluate(windows.as_ref(), &mut events, now).await?.len();
    }
    Ok((start.elapsed(), detections))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = tempfile::tempdir()?;
    let opts = SimOptions { seed: 7, scale: args.scale, days: 1, scenario: Scenario::Mixed };
    simulate(&opts, data.path())?;
    let truth = load_truth(data.path())?;
    let lines = load_lines(data.path(), &truth)?;
    let ctx = ParseContext {
        tenant: &truth.tenant,
        received_at: truth.end + chrono::Duration::hours(1),
        max_event_bytes: 1 << 20,
        max_events: usize::MAX,
        source: None,
        host: None,
    };
    let mut events: Vec<Event> = Vec::with_capacity(lines.len());
    for line in &lines {
        let parsed =
            if line.ndjson { parse_json_events(&line.text, &ctx) } else { parse_syslog_lines(&line.text, &ctx) };
        events.extend(parsed.map_err(|e| anyhow::anyhow!("{e}"))?.events);
    }
    for (i, e) in events.iter_mut().enumerate() {
        e.id = format!("{i:08}");
    }
    let web = events.iter().filter(|e| e.category.as_deref() == Some("web")).count();
    let batches: Vec<Vec<Event>> = events.chunks(args.batch.max(1)).map(<[Event]>::to_vec).collect();
    println!(
        "{} events ({web} web), {} batches of {}, {} rounds, {} window store",
        events.len(),
        batches.len(),
        args.batch,
        args.rounds,
        args.store
    );

    let mut configs: Vec<(String, DetectionEngine)> = vec![("built-in".to_string(), DetectionEngine::builtin())];
    for spec in &args.configs {
        let (name, paths) = spec.split_once('=').unwrap_or(("sigma", spec));
        let paths: Vec<PathBuf> = paths.split(',').map(PathBuf::from).collect();
        let (engine, load) = engine_with(&paths)?;
        let sigma = engine.rules().iter().filter(|r| r.sigma.is_some()).count();
        println!("{name}: {sigma} Sigma rules loaded and compiled in {:.1} ms", load.as_secs_f64() * 1000.0);
        configs.push((name.to_string(), engine));
    }

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
    let mut found = vec![0usize; configs.len()];
    pass(&configs[0].1, &batches, &args.store).await?; // warm-up
    for _ in 0..args.rounds {
        for (i, (_, engine)) in configs.iter().enumerate() {
            let (t, d) = pass(engine, &batches, &args.store).await?;
            times[i].push(t);
            found[i] = d;
        }
    }
    let base = median(times[0].clone());
    println!("\n| rules | median time | events/s | detections | time vs built-in |\n| --- | --- | --- | --- | --- |");
    for (i, (name, engine)) in configs.iter().enumerate() {
        let t = median(times[i].clone());
        println!(
            "| {name} ({} rules) | {:.0} ms | {:.0} | {} | {:.3} |",
            engine.rules().iter().filter(|r| r.enabled).count(),
            t.as_secs_f64() * 1000.0,
            events.len() as f64 / t.as_secs_f64(),
            found[i],
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
    if args.per_rule {
        let (_, engine) = &configs[configs.len() - 1];
        let sample: Vec<&Event> = events.iter().filter(|e| e.category.as_deref() == Some("web")).take(200).collect();
        println!("\n| Sigma rule | matching events | ns per web event (200 events, in cache) |\n| --- | --- | --- |");
        for rule in engine.rules().iter().filter(|r| r.sigma.is_some()) {
            let matched = events.iter().filter(|e| rule.applies(e)).count();
            let start = Instant::now();
            let mut hits = 0usize;
            for _ in 0..200 {
                hits += sample.iter().filter(|e| rule.applies(e)).count();
            }
            let ns = start.elapsed().as_nanos() as f64 / (200 * sample.len()) as f64;
            println!("| {} | {matched} | {ns:.0} ({hits}) |", rule.name);
        }
    }
    Ok(())
}

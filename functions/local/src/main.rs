//! `vigil`: run the whole pipeline in one process, mint tokens, ship log files, work alerts and tickets,
//! bootstrap AWS resources. Each subcommand lives in its own module; this file only wires.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigil::auth::Authenticator;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::telemetry::LogFormat;
use vigil_local::alerts_cmd::{self, AlertsCommand};
use vigil_local::client::{base_url, resolve_token, Api, ApiArgs, Output};
use vigil_local::host::{Host, MappingSettings};
use vigil_local::send::{send_files, Format, SendOptions};
use vigil_local::serve::{bind, open_ports, serve, Backend};
use vigil_local::tickets_cmd::{self, TicketsCommand};
use vigil_local::{eval, rules_cmd, simulate, status_cmd, token};

#[derive(Parser)]
#[command(name = "vigil", version, about = "Vigil SOC pipeline: ingest → score → alert, locally or on AWS")]
struct Cli {
    /// Log lines as text or as JSON objects (for log pipelines).
    #[arg(long, global = true, env = "VIGIL_LOG_FORMAT", value_parser = parse_log_format, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    LogFormat::parse(s).ok_or_else(|| format!("{s:?} is not text or json"))
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, score and alert (and the read API) in one process.
    Serve {
        /// host:port to listen on (`localhost:8080`, `0.0.0.0:8080` to be reachable from containers).
        #[arg(long, default_value = "127.0.0.1:8080", env = "VIGIL_ADDR")]
        addr: String,
        #[arg(long, default_value = ".vigil", env = "VIGIL_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long, value_enum, default_value = "embedded", env = "VIGIL_BACKEND")]
        backend: Backend,
        /// Messages per handler invocation, as on a Lambda SQS trigger.
        #[arg(long, default_value_t = 10)]
        batch_size: usize,
        /// Seconds a received message stays invisible before it is delivered again.
        #[arg(long, default_value_t = 180)]
        visibility_timeout: u64,
    },
    /// Mint a token with the configured key (or the data directory's secret, which `vigil serve` creates).
    Token {
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long, default_value = "sender")]
        role: String,
        #[arg(long, default_value = "vigil-cli")]
        sub: String,
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
        /// Let the token scrape /metrics of every tenant (an operator's Prometheus; role viewer or above).
        #[arg(long)]
        all_tenants: bool,
        #[arg(long, default_value = ".vigil", env = "VIGIL_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Ship syslog or NDJSON files (or standard input: `-`) to ingest.
    Send {
        files: Vec<PathBuf>,
        /// The API's URL (deprecated spelling of --addr; VIGIL_URL).
        #[arg(long, env = "VIGIL_URL", hide = true)]
        url: Option<String>,
        #[arg(long, value_enum, default_value = "auto")]
        format: Format,
        #[arg(long, default_value_t = 5000)]
        chunk_lines: usize,
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Alerts of the tenant: list, show.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Tickets of the tenant: list, show, ack, respond, assign, escalate, close, reopen.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Version, rules loaded, queue and dead-letter depths of the API.
    Status {
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Create the DynamoDB tables and SQS queues at AWS_ENDPOINT_URL (e.g. LocalStack).
    Bootstrap,
    /// Generate a labelled benchmark: auth.log, access.log, events.ndjson and their ground truth, truth.json.
    Simulate {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Directory to write the files into (created if needed).
        #[arg(long)]
        out: PathBuf,
        /// Benign volume and attacks per kind (3 at scale 1) multiply by this.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Days with attacks, after one benign day.
        #[arg(long, default_value_t = 1)]
        days: u32,
        #[arg(long, value_enum, default_value = "mixed")]
        scenario: simulate::Scenario,
    },
    /// Replay a data set through the real pipeline (embedded backend, clock from the data) and score the
    /// alerts against its ground truth: per-rule precision, recall, F1, false alarms, detection delay.
    Eval {
        /// A directory written by `vigil simulate`.
        dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds of event time replayed per step (per ingest request and queue drain).
        #[arg(long, default_value_t = 60)]
        step: u64,
        /// Deliver every line up to this many minutes late, in shuffled order.
        #[arg(long, default_value_t = 0)]
        shuffle_minutes: u64,
        /// A rules file layered over the built-in rules (default: VIGIL_RULES_FILE).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Keep the database here (default: a temporary directory, removed afterwards).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Exit with status 1 if a rule's precision is below this.
        #[arg(long)]
        min_precision: Option<f64>,
        /// Exit with status 1 if a rule's recall is below this.
        #[arg(long)]
        min_recall: Option<f64>,
    },
    /// Rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Run the [[rule.test]] entries of the built-in rules and of FILE (layered over them as
    /// VIGIL_RULES_FILE is) through the real engine; exit 1 if any fails.
    Test { file: Option<PathBuf> },
    /// Compile the Sigma rules under DIR and report, per document, whether it loaded or why it was
    /// skipped (unsupported logsource, unmapped field, pipe, ...). Exit 1 with --strict if any was skipped.
    ImportSigma {
        dir: PathBuf,
        /// A rules file whose [sigma] table extends the field mapping (default: VIGIL_RULES_FILE).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        strict: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    vigil::telemetry::init_with(cli.log_format);
    let config = Config::from_env()?;
    match cli.command {
        Command::Serve { addr, data_dir, backend, batch_size, visibility_timeout } => {
            let auth = token::effective_auth(&config.auth, &data_dir)?;
            let authenticator = Arc::new(Authenticator::from_config(&auth).map_err(anyhow::Error::msg)?);
            let engine = Arc::new(vigil::score::load_engine(&config).map_err(anyhow::Error::msg)?);
            let ports = open_ports(backend, &data_dir, &config).await?;
            let host = Host::new(ports, &config, authenticator, engine, Arc::new(SystemClock));
            let settings = MappingSettings {
                batch_size: batch_size.clamp(1, 10),
                visibility: Duration::from_secs(visibility_timeout),
                ..MappingSettings::default()
            };
            let listener = bind(&addr).await?;
            let bound = listener.local_addr()?;
            // Only now that the address is ours: a failed bind never prints "listening".
            eprintln!("vigil: {backend:?} backend, data in {}; listening on http://{bound}", data_dir.display());
            eprintln!("vigil: console at http://{bound}/console/ ; mint a token with `vigil token --role analyst`");
            serve(host, listener, config.limits.max_body_bytes, settings).await
        }
        Command::Token { tenant, role, sub, ttl_hours, all_tenants, data_dir } => {
            let (auth, _) = token::existing_auth(&config.auth, &data_dir)?;
            let mint = token::Mint { tenant: &tenant, role: &role, sub: &sub, ttl_hours, all_tenants };
            println!("{}", token::mint(&auth, &mint)?);
            Ok(())
        }
        Command::Send { files, url, format, chunk_lines, quiet, api } => {
            anyhow::ensure!(!files.is_empty(), "name at least one file to send, or - for standard input");
            let (token, key) = resolve_token(&api, &config.auth, "sender")?;
            let opts = SendOptions {
                url: base_url(url.as_deref().unwrap_or(&api.addr)),
                token,
                key,
                format,
                chunk_lines: chunk_lines.max(1),
                chunk_bytes: 4 * 1024 * 1024,
                quiet,
            };
            let totals = send_files(&files, &opts).await?;
            println!("{} accepted, {} rejected in {} requests", totals.accepted, totals.rejected, totals.requests);
            Ok(())
        }
        Command::Alerts { command, api } => {
            alerts_cmd::run(&Api::from_args(&api, &config.auth, "viewer")?, command).await
        }
        Command::Tickets { command, api } => {
            let role = if command.changes() { "analyst" } else { "viewer" };
            tickets_cmd::run(&Api::from_args(&api, &config.auth, role)?, command).await
        }
        Command::Status { output, api } => {
            status_cmd::run(&Api::from_args(&api, &config.auth, "viewer")?, output).await
        }
        Command::Simulate { seed, out, scale, days, scenario } => {
            let opts = simulate::SimOptions { seed, scale, days, scenario };
            let truth = simulate::simulate(&opts, &out)?;
            println!(
                "{}: {} events ({} benign, {} attack), {} attacks, {} – {}",
                out.display(),
                truth.events.total,
                truth.events.benign,
                truth.events.attack,
                truth.attacks.len(),
                truth.start,
                truth.end
            );
            Ok(())
        }
        Command::Eval { dir, json, step, shuffle_minutes, rules, data_dir, min_precision, min_recall } => {
            let mut config = config;
            if rules.is_some() {
                config.rules_path = rules;
            }
            let engine = Arc::new(vigil::score::load_engine(&config).map_err(anyhow::Error::msg)?);
            let opts = eval::EvalOptions {
                step: Duration::from_secs(step.max(1)),
                shuffle_minutes,
                data_dir,
                ..eval::EvalOptions::new(dir)
            };
            let report = eval::run(&opts, engine).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", eval::render(&report));
            }
            let short = eval::shortfalls(&report.scores, min_precision.unwrap_or(0.0), min_recall.unwrap_or(0.0));
            if !short.is_empty() {
                for s in &short {
                    eprintln!("vigil eval: {s}");
                }
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Rules { command: RulesCommand::Test { file } } => {
            let (out, ok) = rules_cmd::rules_test(file.as_deref()).await?;
            print!("{out}");
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Rules { command: RulesCommand::ImportSigma { dir, rules, json, strict } } => {
            let rules = rules.or(config.rules_path);
            let (out, complete) = rules_cmd::import_sigma(&dir, rules.as_deref(), json)?;
            print!("{out}");
            if strict && !complete {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bootstrap => {
            let sdk = aws_config::load_from_env().await;
            let created = vigil::adapters::aws::bootstrap(&sdk, &config).await.context("bootstrap failed")?;
            if created.is_empty() {
                println!("everything exists already");
            }
            for c in created {
                println!("created {c}");
            }
            Ok(())
        }
    }
}

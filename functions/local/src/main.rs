//! `vigil`: run the whole pipeline in one process, mint tokens, ship log files, bootstrap AWS resources.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigil::auth::Authenticator;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil_local::host::{Host, MappingSettings};
use vigil_local::send::{send_files, Format, SendOptions};
use vigil_local::serve::{open_ports, run, Backend};
use vigil_local::token;
use vigil_local::{eval, rules_cmd, simulate};

#[derive(Parser)]
#[command(name = "vigil", version, about = "Vigil SOC pipeline: ingest → score → alert, locally or on AWS")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, score and alert (and the read API) in one process.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080", env = "VIGIL_ADDR")]
        addr: SocketAddr,
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
    /// Mint a token with the configured key (or the data directory's local secret).
    Token {
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long, default_value = "sender")]
        role: String,
        #[arg(long, default_value = "vigil-cli")]
        sub: String,
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
        #[arg(long, default_value = ".vigil", env = "VIGIL_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Ship syslog or NDJSON files to ingest.
    Send {
        files: Vec<PathBuf>,
        #[arg(long, default_value = "http://127.0.0.1:8080", env = "VIGIL_URL")]
        url: String,
        /// A sender token; by default one is minted for --tenant from the local key.
        #[arg(long, env = "VIGIL_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long, value_enum, default_value = "auto")]
        format: Format,
        #[arg(long, default_value_t = 5000)]
        chunk_lines: usize,
        #[arg(long, default_value = ".vigil", env = "VIGIL_DATA_DIR")]
        data_dir: PathBuf,
        #[arg(long)]
        quiet: bool,
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
    vigil::telemetry::init();
    let cli = Cli::parse();
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
            eprintln!("vigil: {backend:?} backend, data in {}; listening on http://{addr}", data_dir.display());
            eprintln!("vigil: mint a token with `vigil token --role analyst`");
            run(host, addr, config.limits.max_body_bytes, settings).await
        }
        Command::Token { tenant, role, sub, ttl_hours, data_dir } => {
            let auth = token::effective_auth(&config.auth, &data_dir)?;
            println!("{}", token::mint(&auth, &tenant, &role, &sub, ttl_hours)?);
            Ok(())
        }
        Command::Send { files, url, token: tok, tenant, format, chunk_lines, data_dir, quiet } => {
            anyhow::ensure!(!files.is_empty(), "name at least one file to send");
            let token = match tok {
                Some(t) => t,
                None => {
                    token::mint(&token::effective_auth(&config.auth, &data_dir)?, &tenant, "sender", "vigil-send", 24)?
                }
            };
            let opts = SendOptions {
                url,
                token,
                format,
                chunk_lines: chunk_lines.max(1),
                chunk_bytes: 4 * 1024 * 1024,
                quiet,
            };
            let totals = send_files(&files, &opts).await?;
            println!("{} accepted, {} rejected in {} requests", totals.accepted, totals.rejected, totals.requests);
            Ok(())
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

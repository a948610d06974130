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
                None => token::mint(&token::effective_auth(&config.auth, &data_dir)?, &tenant, "sender", "vigil-send", 24)?,
            };
            let opts = SendOptions { url, token, format, chunk_lines: chunk_lines.max(1), chunk_bytes: 4 * 1024 * 1024, quiet };
            let totals = send_files(&files, &opts).await?;
            println!("{} accepted, {} rejected in {} requests", totals.accepted, totals.rejected, totals.requests);
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

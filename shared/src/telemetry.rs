//! Logging set-up: JSON lines in Lambda (CloudWatch) or when asked for (`vigil --log-format json`,
//! `VIGIL_LOG_FORMAT=json`, for log pipelines), readable text on a terminal otherwise. `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (fields, and the request span's route, tenant and method).
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Lambda's set-up: JSON in Lambda, else `VIGIL_LOG_FORMAT` (text by default).
pub fn init() {
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let from_env = std::env::var("VIGIL_LOG_FORMAT").ok().and_then(|v| LogFormat::parse(&v));
    init_with(if in_lambda { LogFormat::Json } else { from_env.unwrap_or(LogFormat::Text) });
}

pub fn init_with(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    // try_init: a second call (tests, embedding) keeps the first subscriber instead of panicking.
    let _ = match (format, in_lambda) {
        (LogFormat::Json, true) => builder.json().without_time().try_init(),
        (LogFormat::Json, false) => builder.json().try_init(),
        (LogFormat::Text, _) => builder.try_init(),
    };
}

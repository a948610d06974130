//! Lambda `ingest`: the sender-facing HTTP routes (JSON, NDJSON, syslog, Splunk HEC) onto the events queue.

use std::sync::Arc;

use lambda_http::Error;
use vigil::adapters::aws::AwsBackend;
use vigil::auth::Authenticator;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::ingest::IngestHandler;
use vigil::lambda::serve_http;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::telemetry::init();
    let config = Config::from_env()?;
    let auth = Arc::new(Authenticator::from_config(&config.auth)?);
    let backend = AwsBackend::connect(&aws_config::load_from_env().await, &config).await?;
    let handler = Arc::new(
        IngestHandler::new(backend.ports().events_queue, auth, config.limits.clone(), Arc::new(SystemClock))
            .with_hec(config.hec.clone()),
    );
    serve_http(move |req| {
        let handler = handler.clone();
        async move { handler.handle(req).await }
    })
    .await
}

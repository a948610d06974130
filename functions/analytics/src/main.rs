//! Lambda `analytics`: SOC analytics (`GET /v1/analytics/*`) and the Prometheus scrape (`GET /metrics`) for the
//! caller's tenant, from the stored aggregates, the open tickets and the queue depths.

use std::sync::Arc;

use lambda_http::Error;
use vigil::adapters::aws::AwsBackend;
use vigil::analytics::{AnalyticsHandler, AnalyticsPorts};
use vigil::auth::Authenticator;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::lambda::serve_http;
use vigil::metrics::KnownLabels;
use vigil::score::load_engine;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::telemetry::init();
    let config = Config::from_env()?;
    let auth = Arc::new(Authenticator::from_config(&config.auth)?);
    let backend = AwsBackend::connect(&aws_config::load_from_env().await, &config).await?;
    let ports = AnalyticsPorts::from_ports(&backend.ports());
    // The rules, so /metrics exposes every rule's series at 0 from the start.
    let known = KnownLabels::from_engine(&load_engine(&config)?);
    let handler = Arc::new(
        AnalyticsHandler::new(ports, auth, Arc::new(SystemClock), config.analytics.clone()).with_known_labels(known),
    );
    serve_http(move |req| {
        let handler = handler.clone();
        async move { handler.handle(req).await }
    })
    .await
}

//! Lambda `tickets`: the analyst-facing HTTP routes — alerts and tickets of the caller's tenant, and ticket
//! transitions (acknowledge, respond, assign, escalate, close, reopen) with their aggregate writes.

use std::sync::Arc;

use lambda_http::Error;
use vigil::adapters::aws::AwsBackend;
use vigil::auth::Authenticator;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::lambda::serve_http;
use vigil::tickets::TicketsHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::telemetry::init();
    let config = Config::from_env()?;
    let auth = Arc::new(Authenticator::from_config(&config.auth)?);
    let backend = AwsBackend::connect(&aws_config::load_from_env().await, &config).await?;
    let ports = backend.ports();
    let handler = Arc::new(TicketsHandler::new(ports.alerts, auth, Arc::new(SystemClock)).with_events(ports.events));
    serve_http(move |req| {
        let handler = handler.clone();
        async move { handler.handle(req).await }
    })
    .await
}

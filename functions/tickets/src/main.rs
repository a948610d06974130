//! Lambda `tickets`: the analyst-facing HTTP routes — alerts and tickets of the caller's tenant, and ticket
//! transitions (acknowledge, respond, assign, escalate, close, reopen) with their aggregate writes.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use vigil::adapters::aws::AwsBackend;
use vigil::auth::Authenticator;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::lambda::{http_request, http_response};
use vigil::tickets::TicketsHandler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::telemetry::init();
    let config = Config::from_env()?;
    let auth = Arc::new(Authenticator::from_config(&config.auth)?);
    let backend = AwsBackend::connect(&aws_config::load_from_env().await, &config).await?;
    let handler = Arc::new(TicketsHandler::new(backend.ports().alerts, auth, Arc::new(SystemClock)));
    run(service_fn(move |req: Request| {
        let handler = handler.clone();
        async move { Ok::<_, Error>(http_response(handler.handle(http_request(req)).await)) }
    }))
    .await
}

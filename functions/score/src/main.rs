//! Lambda `score`: events-queue batches → normalised, scored, stored events and queued detections.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use vigil::adapters::aws::AwsBackend;
use vigil::aggregates::TenantRegistry;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::lambda::{batch_response, inbound};
use vigil::score::{load_engine, Scorer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::telemetry::init();
    let config = Config::from_env()?;
    let ports = AwsBackend::connect(&aws_config::load_from_env().await, &config).await?.ports();
    let scorer = Arc::new(Scorer {
        events: ports.events,
        windows: ports.windows,
        detections: ports.detections_queue,
        engine: Arc::new(load_engine(&config)?),
        clock: Arc::new(SystemClock),
        retention: config.event_retention,
        // Registers each tenant once per instance, so an all-tenants /metrics scrape finds it.
        aggregates: Arc::new(TenantRegistry::new(ports.aggregates)),
    });
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let scorer = scorer.clone();
        async move { Ok::<_, Error>(batch_response(scorer.handle_batch(&inbound(event.payload)).await)) }
    }))
    .await
}

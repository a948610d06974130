//! Lambda `alert`: detections-queue batches → deduplicated alerts, tickets and webhook notifications.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use vigil::adapters::aws::AwsBackend;
use vigil::alert::Alerter;
use vigil::clock::SystemClock;
use vigil::config::Config;
use vigil::lambda::{batch_response, inbound};
use vigil::notify::Notifier;
use vigil::score::load_engine;

#[tokio::main]
async fn main() -> Result<(), Error> {
    vigil::telemetry::init();
    let config = Config::from_env()?;
    let ports = AwsBackend::connect(&aws_config::load_from_env().await, &config).await?.ports();
    let alerter = Arc::new(Alerter {
        store: ports.alerts,
        engine: Arc::new(load_engine(&config)?),
        sla: config.sla.clone(),
        notifier: Notifier::new(config.webhooks.clone()).map(Arc::new),
        clock: Arc::new(SystemClock),
        aggregates: ports.aggregates,
    });
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let alerter = alerter.clone();
        async move { Ok::<_, Error>(batch_response(alerter.handle_batch(&inbound(event.payload)).await)) }
    }))
    .await
}

//! The AWS backend: DynamoDB for events, windows, alerts and tickets; SQS for the two queues and their
//! dead-letter queues. Table and queue shapes come from [`crate::schema`]; physical names from [`Config`].
//!
//! Every request the adapter makes is counted (see [`AwsBackend::request_counts`]), so tests and the cost
//! model can state requests per 1,000 events from measurement rather than from reading the code.

mod aggregate_plan;
mod aggregates;
mod alerts;
mod bootstrap;
mod events;
mod item;
mod sqs;
mod store;
mod windows;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::config::Config;
use crate::error::{StoreError, StoreResult};
use crate::ports::Ports;
use crate::schema::{DETECTIONS_QUEUE, EVENTS_QUEUE};

pub use bootstrap::bootstrap;

/// Requests made through one [`AwsBackend`] (and its clones) since it was connected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `PutItem`, `UpdateItem`, `TransactWriteItems` calls.
    pub dynamodb_write_requests: u64,
    /// Items written by those calls (a transaction of 3 puts counts 3; DynamoDB bills transactional writes twice).
    pub dynamodb_items_written: u64,
    /// `GetItem` and `Query` calls.
    pub dynamodb_read_requests: u64,
    /// Every SQS call: send, receive, delete, change visibility, attributes, queue URL look-ups.
    pub sqs_requests: u64,
    /// Of those, `SendMessageBatch` calls.
    pub sqs_send_requests: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    ddb_writes: AtomicU64,
    ddb_items: AtomicU64,
    ddb_reads: AtomicU64,
    sqs: AtomicU64,
    sqs_sends: AtomicU64,
}

impl Counters {
    pub(crate) fn ddb_write(&self, items: usize) {
        self.ddb_writes.fetch_add(1, Ordering::Relaxed);
        self.ddb_items.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub(crate) fn ddb_read(&self) {
        self.ddb_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sqs(&self) {
        self.sqs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sqs_send(&self) {
        self.sqs.fetch_add(1, Ordering::Relaxed);
        self.sqs_sends.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            dynamodb_write_requests: self.ddb_writes.load(Ordering::Relaxed),
            dynamodb_items_written: self.ddb_items.load(Ordering::Relaxed),
            dynamodb_read_requests: self.ddb_reads.load(Ordering::Relaxed),
            sqs_requests: self.sqs.load(Ordering::Relaxed),
            sqs_send_requests: self.sqs_sends.load(Ordering::Relaxed),
        }
    }
}

/// DynamoDB and SQS clients plus resolved table names and queue URLs. Cheap to clone.
#[derive(Clone)]
pub struct AwsBackend {
    ddb: aws_sdk_dynamodb::Client,
    events_queue: Arc<sqs::SqsQueue>,
    detections_queue: Arc<sqs::SqsQueue>,
    tables: store::Tables,
    counters: Arc<Counters>,
}

impl AwsBackend {
    /// Builds the clients from `sdk` (endpoint overrides such as `AWS_ENDPOINT_URL` are honoured by
    /// aws-config) and resolves the queue URLs once: a configured value that is already an `http(s)://` URL is
    /// used as is, a name is looked up with `GetQueueUrl`. Dead-letter queue URLs are resolved on first use.
    pub async fn connect(sdk: &aws_config::SdkConfig, cfg: &Config) -> Result<AwsBackend, StoreError> {
        let counters = Arc::new(Counters::default());
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let sqs_client = aws_sdk_sqs::Client::new(sdk);
        let events_url = sqs::resolve_queue_url(&sqs_client, &counters, cfg.queue(&EVENTS_QUEUE)).await?;
        let detections_url = sqs::resolve_queue_url(&sqs_client, &counters, cfg.queue(&DETECTIONS_QUEUE)).await?;
        Ok(AwsBackend {
            events_queue: Arc::new(sqs::SqsQueue::new(sqs_client.clone(), events_url, counters.clone())),
            detections_queue: Arc::new(sqs::SqsQueue::new(sqs_client, detections_url, counters.clone())),
            tables: store::Tables::from_config(cfg),
            ddb,
            counters,
        })
    }

    pub fn ports(&self) -> Ports {
        let store = Arc::new(store::DynamoStore::new(self.ddb.clone(), self.tables.clone(), self.counters.clone()));
        Ports {
            events_queue: self.events_queue.clone(),
            events_receiver: self.events_queue.clone(),
            events_dead_letters: Arc::new(self.events_queue.dead_letters()),
            detections_queue: self.detections_queue.clone(),
            detections_receiver: self.detections_queue.clone(),
            detections_dead_letters: Arc::new(self.detections_queue.dead_letters()),
            events: store.clone(),
            windows: store.clone(),
            alerts: store.clone(),
            aggregates: store,
        }
    }

    /// Requests made so far by this backend and every port it handed out.
    pub fn request_counts(&self) -> RequestCounts {
        self.counters.snapshot()
    }

    /// The resolved URL of the events queue and of the detections queue.
    pub fn queue_urls(&self) -> (&str, &str) {
        (self.events_queue.url(), self.detections_queue.url())
    }
}

/// An `SdkConfig` for a local emulator (moto, LocalStack, DynamoDB Local): the endpoint, region us-east-1 and
/// static test credentials.
pub async fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "vigil-local"))
        .load()
        .await
}

/// Maps an SDK error onto the port error kinds: throttling, 5xx, timeouts and dispatch failures are
/// transient; condition failures are conflicts; anything else the service rejected is permanent.
pub(crate) fn sdk_error<E>(op: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let msg = format!("{op}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ConstructionFailure(_) => StoreError::Permanent(msg),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Transient(msg)
        }
        SdkError::ServiceError(ctx) => {
            classify_code(ctx.err().code().unwrap_or_default(), ctx.raw().status().as_u16(), msg)
        }
        _ => StoreError::Transient(msg),
    }
}

pub(crate) fn classify_code(code: &str, status: u16, msg: String) -> StoreError {
    const TRANSIENT: &[&str] = &[
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
        "LimitExceededException",
        "RequestThrottled",
        "AWS.SimpleQueueService.RequestThrottled",
        "KmsThrottled",
        "OverLimit",
        "RequestTimeout",
        "RequestTimeoutException",
    ];
    if code == "ConditionalCheckFailedException" {
        StoreError::Conflict(msg)
    } else if status >= 500 || status == 429 || TRANSIENT.contains(&code) {
        StoreError::Transient(msg)
    } else {
        StoreError::Permanent(msg)
    }
}

/// Backoff before retry `attempt` (0-based): 25 ms doubling, capped at 1 s, with jitter.
pub(crate) async fn backoff(attempt: u32) {
    let base = 25u64.saturating_mul(1u64 << attempt.min(6)).min(1000);
    let jitter = rand::random::<u64>() % (base / 2 + 1);
    tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
}

/// Runs `f` over `items` with at most `limit` in flight, returning results in input order; the first error
/// wins (the rest still finish, their results dropped).
pub(crate) async fn bounded<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> StoreResult<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = StoreResult<R>> + Send + 'static,
{
    let n = items.len();
    let mut results: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let mut set = tokio::task::JoinSet::new();
    let mut first_err = None;
    let mut pending = items.into_iter().enumerate();
    loop {
        while first_err.is_none() && set.len() < limit.max(1) {
            match pending.next() {
                Some((i, item)) => {
                    let fut = f(item);
                    set.spawn(async move { (i, fut.await) });
                }
                None => break,
            }
        }
        match set.join_next().await {
            None => break,
            Some(Ok((i, Ok(r)))) => results[i] = Some(r),
            Some(Ok((_, Err(e)))) => {
                first_err.get_or_insert(e);
            }
            Some(Err(join)) => {
                first_err.get_or_insert(StoreError::Transient(format!("request task failed: {join}")));
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    results
        .into_iter()
        .map(|r| r.ok_or_else(|| StoreError::Transient("request task produced no result".into())))
        .collect()
}

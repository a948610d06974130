//! Creates the tables and queues of [`crate::schema`] (for `vigil bootstrap` against an emulator or an account
//! without the CloudFormation stack, and for tests). Idempotent: what exists is left as it is.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::sdk_error;
use super::sqs::queue_name;
use crate::config::Config;
use crate::error::{StoreError, StoreResult};
use crate::schema::{KeySpec, QueueSpec, TableSpec, DEAD_LETTER_RETENTION_SECONDS, QUEUES, TABLES};

/// How long to wait for a new table to become active.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(300);

/// Creates exactly the tables (keys, indexes, TTL, on-demand billing) and queues (dead-letter queues, redrive
/// policy, visibility timeout, retention) of [`crate::schema`], named as `cfg` says. Existing tables and queues
/// are left as they are. Returns what it created, e.g. `table vigil-events`, `queue vigil-events-dlq`.
pub async fn bootstrap(sdk: &aws_config::SdkConfig, cfg: &Config) -> Result<Vec<String>, StoreError> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut created = Vec::new();
    for spec in &TABLES {
        let name = cfg.table(spec);
        if create_table(&ddb, spec, name).await? {
            created.push(format!("table {name}"));
        }
    }
    for spec in &QUEUES {
        let name = queue_name(cfg.queue(spec)).to_string();
        let dlq_name = dead_letter_name(spec, &name);
        let (dlq_url, dlq_created) = ensure_queue(&sqs, &dlq_name, |b| {
            b.attributes(QueueAttributeName::MessageRetentionPeriod, DEAD_LETTER_RETENTION_SECONDS.to_string())
        })
        .await?;
        if dlq_created {
            created.push(format!("queue {dlq_name}"));
        }
        if queue_exists(&sqs, &name).await? {
            continue;
        }
        let dlq_arn = queue_arn(&sqs, &dlq_url).await?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": spec.max_receive_count,
        })
        .to_string();
        let (_, main_created) = ensure_queue(&sqs, &name, |b| {
            b.attributes(QueueAttributeName::VisibilityTimeout, spec.visibility_timeout_seconds.to_string())
                .attributes(QueueAttributeName::MessageRetentionPeriod, spec.retention_seconds.to_string())
                .attributes(QueueAttributeName::RedrivePolicy, redrive.clone())
        })
        .await?;
        if main_created {
            created.push(format!("queue {name}"));
        }
    }
    if !created.is_empty() {
        tracing::info!(created = ?created, "bootstrap created resources");
    }
    Ok(created)
}

/// The dead-letter queue of the queue named `name`: the schema's name for the default queue, `<name>-dlq`
/// otherwise.
pub(crate) fn dead_letter_name(spec: &QueueSpec, name: &str) -> String {
    if name == spec.default_name {
        spec.dead_letter_name.to_string()
    } else {
        format!("{name}-dlq")
    }
}

fn key_schema(key: &KeySpec) -> StoreResult<Vec<KeySchemaElement>> {
    let mut elements = vec![key_element(key.hash, KeyType::Hash)?];
    if let Some(range) = key.range {
        elements.push(key_element(range, KeyType::Range)?);
    }
    Ok(elements)
}

fn key_element(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| StoreError::Permanent(format!("building key schema: {e}")))
}

/// Creates the table if it does not exist; `true` if it did not.
async fn create_table(ddb: &aws_sdk_dynamodb::Client, spec: &TableSpec, name: &str) -> StoreResult<bool> {
    match ddb.describe_table().table_name(name).send().await {
        Ok(out) => {
            // Left as it is; but a table from before an index was added to the schema cannot serve the lists
            // that need it, so say which are missing (add them with UpdateTable, or recreate the table).
            let have: Vec<&str> = out
                .table()
                .map(|t| t.global_secondary_indexes().iter().filter_map(|g| g.index_name()).collect())
                .unwrap_or_default();
            let missing: Vec<&str> = spec.indexes.iter().map(|i| i.name).filter(|i| !have.contains(i)).collect();
            if !missing.is_empty() {
                tracing::warn!(table = name, ?missing, "existing table lacks global secondary indexes of the schema");
            }
            return Ok(false);
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => return Err(sdk_error(&format!("DescribeTable {name}"), e)),
    }
    // Every Vigil key attribute is a string; define each once.
    let mut attributes: Vec<&str> = Vec::new();
    for key in std::iter::once(&spec.key).chain(spec.indexes.iter().map(|i| &i.key)) {
        for attr in std::iter::once(key.hash).chain(key.range) {
            if !attributes.contains(&attr) {
                attributes.push(attr);
            }
        }
    }
    let definitions = attributes
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(*a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Permanent(format!("building attribute definition: {e}")))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let indexes = spec
        .indexes
        .iter()
        .map(|i| {
            GlobalSecondaryIndex::builder()
                .index_name(i.name)
                .set_key_schema(Some(key_schema(&i.key)?))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| StoreError::Permanent(format!("building index {}: {e}", i.name)))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let res = ddb
        .create_table()
        .table_name(name)
        .set_key_schema(Some(key_schema(&spec.key)?))
        .set_attribute_definitions(Some(definitions))
        .set_global_secondary_indexes(if indexes.is_empty() { None } else { Some(indexes) })
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match res {
        Ok(_) => {}
        // Created concurrently by someone else: theirs stands.
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(false),
        Err(e) => return Err(sdk_error(&format!("CreateTable {name}"), e)),
    }
    ddb.wait_until_table_exists()
        .table_name(name)
        .wait(TABLE_ACTIVE_WAIT)
        .await
        .map_err(|e| StoreError::Transient(format!("waiting for table {name}: {}", DisplayErrorContext(&e))))?;
    if let Some(ttl) = spec.ttl {
        let ttl_spec = TimeToLiveSpecification::builder()
            .attribute_name(ttl)
            .enabled(true)
            .build()
            .map_err(|e| StoreError::Permanent(format!("building TTL specification: {e}")))?;
        ddb.update_time_to_live()
            .table_name(name)
            .time_to_live_specification(ttl_spec)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("UpdateTimeToLive {name}"), e))?;
    }
    Ok(true)
}

async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> StoreResult<Option<String>> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_string)),
        Err(e)
            if e.as_service_error().is_some_and(|se| {
                se.is_queue_does_not_exist()
                    || aws_sdk_sqs::error::ProvideErrorMetadata::code(se)
                        .is_some_and(|c| c.contains("NonExistentQueue") || c.contains("QueueDoesNotExist"))
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_error(&format!("GetQueueUrl {name}"), e)),
    }
}

async fn queue_exists(sqs: &aws_sdk_sqs::Client, name: &str) -> StoreResult<bool> {
    Ok(queue_url(sqs, name).await?.is_some())
}

/// The URL of the named queue, creating it with `attributes` if it does not exist (`true` if created).
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: impl FnOnce(
        aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder,
    ) -> aws_sdk_sqs::operation::create_queue::builders::CreateQueueFluentBuilder,
) -> StoreResult<(String, bool)> {
    if let Some(url) = queue_url(sqs, name).await? {
        return Ok((url, false));
    }
    let out = attributes(sqs.create_queue().queue_name(name))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("CreateQueue {name}"), e))?;
    let url =
        out.queue_url().ok_or_else(|| StoreError::Permanent(format!("CreateQueue {name}: no URL in the response")))?;
    Ok((url.to_string(), true))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> StoreResult<String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_error("GetQueueAttributes", e))?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| StoreError::Permanent(format!("queue {url} has no QueueArn")))
}

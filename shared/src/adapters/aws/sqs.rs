//! The queue ports on SQS. Sends pack bodies into `SendMessageBatch` requests (≤ 10 entries, ≤ 256 KiB of
//! payload each) and retry only the entries SQS reports as failed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use tokio::sync::OnceCell;

use super::{backoff, bounded, sdk_error, Counters};
use crate::error::{StoreError, StoreResult};
use crate::ports::{
    QueueDepth, QueueReceiver, QueueSender, ReceivedMessage, MAX_QUEUE_BATCH_ENTRIES, MAX_QUEUE_MESSAGE_BYTES,
};

/// Retries of the entries a batch call reports as failed (not counting the first attempt).
const ENTRY_RETRIES: u32 = 4;
/// Batch requests in flight at once for one `send`.
const SEND_CONCURRENCY: usize = 4;
const MAX_VISIBILITY_SECONDS: u64 = 12 * 3600;
const MAX_WAIT_SECONDS: u64 = 20;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The queue name in a queue URL (`https://sqs.…/123456789012/name`) or the name itself.
pub(crate) fn queue_name(name_or_url: &str) -> &str {
    if is_url(name_or_url) {
        name_or_url.trim_end_matches('/').rsplit('/').next().unwrap_or(name_or_url)
    } else {
        name_or_url
    }
}

/// A configured queue URL as is, or the URL of the named queue.
pub(crate) async fn resolve_queue_url(client: &Client, counters: &Counters, name_or_url: &str) -> StoreResult<String> {
    if is_url(name_or_url) {
        return Ok(name_or_url.to_string());
    }
    get_queue_url(client, counters, name_or_url, None).await
}

pub(crate) async fn get_queue_url(
    client: &Client,
    counters: &Counters,
    name: &str,
    owner: Option<&str>,
) -> StoreResult<String> {
    counters.sqs();
    let out = client
        .get_queue_url()
        .queue_name(name)
        .set_queue_owner_aws_account_id(owner.map(str::to_string))
        .send()
        .await
        .map_err(|e| sdk_error(&format!("GetQueueUrl {name}"), e))?;
    out.queue_url()
        .map(str::to_string)
        .ok_or_else(|| StoreError::Permanent(format!("GetQueueUrl {name}: no URL in the response")))
}

#[derive(Clone)]
struct Conn {
    client: Client,
    counters: Arc<Counters>,
}

/// One SQS queue: the sending and the receiving side.
pub(crate) struct SqsQueue {
    conn: Conn,
    url: String,
    dead_letter_url: Arc<OnceCell<String>>,
}

impl SqsQueue {
    pub(crate) fn new(client: Client, url: String, counters: Arc<Counters>) -> SqsQueue {
        SqsQueue { conn: Conn { client, counters }, url, dead_letter_url: Arc::new(OnceCell::new()) }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The receiving side of this queue's dead-letter queue, found on first use from the queue's
    /// `RedrivePolicy` (or, without one, as `<name>-dlq`).
    pub(crate) fn dead_letters(&self) -> DeadLetters {
        DeadLetters { conn: self.conn.clone(), source_url: self.url.clone(), url: self.dead_letter_url.clone() }
    }
}

#[async_trait]
impl QueueSender for SqsQueue {
    async fn send(&self, bodies: &[String]) -> StoreResult<()> {
        if let Some(big) = bodies.iter().find(|b| b.len() > MAX_QUEUE_MESSAGE_BYTES) {
            return Err(StoreError::Permanent(format!(
                "message of {} bytes exceeds the SQS limit of {MAX_QUEUE_MESSAGE_BYTES}",
                big.len()
            )));
        }
        let batches = pack(bodies);
        let conn = self.conn.clone();
        let url = self.url.clone();
        bounded(batches, SEND_CONCURRENCY, move |batch| send_batch(conn.clone(), url.clone(), batch)).await?;
        Ok(())
    }
}

/// Groups bodies, in order, into batches of at most 10 entries and 256 KiB.
fn pack(bodies: &[String]) -> Vec<Vec<String>> {
    let mut batches = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut bytes = 0usize;
    for body in bodies {
        if !current.is_empty()
            && (current.len() >= MAX_QUEUE_BATCH_ENTRIES || bytes + body.len() > MAX_QUEUE_MESSAGE_BYTES)
        {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += body.len();
        current.push(body.clone());
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

async fn send_batch(conn: Conn, url: String, bodies: Vec<String>) -> StoreResult<()> {
    // Entry ids are the index in `bodies`; only the failed ones are sent again.
    let mut pending: Vec<usize> = (0..bodies.len()).collect();
    let mut attempt = 0;
    loop {
        let entries = pending
            .iter()
            .map(|&i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(bodies[i].clone())
                    .build()
                    .map_err(|e| StoreError::Permanent(format!("SendMessageBatch entry: {e}")))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        conn.counters.sqs_send();
        let out = conn
            .client
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error("SendMessageBatch", e))?;
        let failed = out.failed();
        if failed.is_empty() {
            return Ok(());
        }
        if let Some(f) = failed.iter().find(|f| f.sender_fault()) {
            return Err(StoreError::Permanent(format!(
                "SendMessageBatch rejected a message: {} {}",
                f.code(),
                f.message().unwrap_or_default()
            )));
        }
        let mut retry: Vec<usize> = failed.iter().filter_map(|f| f.id().parse().ok()).collect();
        retry.retain(|i| pending.contains(i));
        if retry.is_empty() || attempt >= ENTRY_RETRIES {
            let f = &failed[0];
            return Err(StoreError::Transient(format!(
                "SendMessageBatch: {} of {} messages not sent: {} {}",
                failed.len(),
                bodies.len(),
                f.code(),
                f.message().unwrap_or_default()
            )));
        }
        tracing::debug!(failed = retry.len(), attempt, "retrying failed SendMessageBatch entries");
        pending = retry;
        backoff(attempt).await;
        attempt += 1;
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn round_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_millis() >= 500)
}

impl Conn {
    async fn receive(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<ReceivedMessage>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.counters.sqs();
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.min(MAX_QUEUE_BATCH_ENTRIES) as i32)
            .visibility_timeout(ceil_secs(visibility).min(MAX_VISIBILITY_SECONDS) as i32)
            .wait_time_seconds(round_secs(wait).min(MAX_WAIT_SECONDS) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage", e))?;
        out.messages()
            .iter()
            .map(|m| {
                let receipt = m
                    .receipt_handle()
                    .ok_or_else(|| StoreError::Permanent("ReceiveMessage: a message without receipt handle".into()))?;
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Ok(ReceivedMessage {
                    message_id: m.message_id().unwrap_or_default().to_string(),
                    receipt: receipt.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    receive_count,
                })
            })
            .collect()
    }

    async fn delete(&self, url: &str, receipts: &[String]) -> StoreResult<()> {
        for chunk in receipts.chunks(MAX_QUEUE_BATCH_ENTRIES) {
            let mut pending: Vec<usize> = (0..chunk.len()).collect();
            let mut attempt = 0;
            loop {
                let entries = pending
                    .iter()
                    .map(|&i| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(&chunk[i])
                            .build()
                            .map_err(|e| StoreError::Permanent(format!("DeleteMessageBatch entry: {e}")))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                self.counters.sqs();
                let out = self
                    .client
                    .delete_message_batch()
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteMessageBatch", e))?;
                let failed = out.failed();
                if failed.is_empty() {
                    break;
                }
                if let Some(f) = failed.iter().find(|f| f.sender_fault()) {
                    return Err(StoreError::Permanent(format!(
                        "DeleteMessageBatch: {} {}",
                        f.code(),
                        f.message().unwrap_or_default()
                    )));
                }
                if attempt >= ENTRY_RETRIES {
                    return Err(StoreError::Transient(format!(
                        "DeleteMessageBatch: {} receipts not deleted: {}",
                        failed.len(),
                        failed[0].code()
                    )));
                }
                pending = failed.iter().filter_map(|f| f.id().parse().ok()).collect();
                backoff(attempt).await;
                attempt += 1;
            }
        }
        Ok(())
    }

    async fn release(&self, url: &str, receipt: &str, delay: Duration) -> StoreResult<()> {
        self.counters.sqs();
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(ceil_secs(delay).min(MAX_VISIBILITY_SECONDS) as i32)
            .send()
            .await
            .map_err(|e| sdk_error("ChangeMessageVisibility", e))?;
        Ok(())
    }

    async fn depth(&self, url: &str) -> StoreResult<QueueDepth> {
        self.counters.sqs();
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sdk_error("GetQueueAttributes", e))?;
        let get = |name: QueueAttributeName| {
            out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        Ok(QueueDepth {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    /// The URL of the dead-letter queue that `source_url`'s redrive policy names.
    async fn dead_letter_url(&self, source_url: &str) -> StoreResult<String> {
        self.counters.sqs();
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(source_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| sdk_error("GetQueueAttributes", e))?;
        let target = out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("deadLetterTargetArn").and_then(|a| a.as_str()).map(str::to_string));
        match target {
            // arn:aws:sqs:region:account:name
            Some(arn) => {
                let mut parts = arn.rsplitn(3, ':');
                let name = parts.next().unwrap_or_default();
                let account = parts.next().filter(|a| !a.is_empty());
                get_queue_url(&self.client, &self.counters, name, account).await
            }
            None => {
                let name = format!("{}-dlq", queue_name(source_url));
                get_queue_url(&self.client, &self.counters, &name, None).await
            }
        }
    }
}

#[async_trait]
impl QueueReceiver for SqsQueue {
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> StoreResult<Vec<ReceivedMessage>> {
        self.conn.receive(&self.url, max, visibility, wait).await
    }

    async fn delete(&self, receipts: &[String]) -> StoreResult<()> {
        self.conn.delete(&self.url, receipts).await
    }

    async fn release(&self, receipt: &str, delay: Duration) -> StoreResult<()> {
        self.conn.release(&self.url, receipt, delay).await
    }

    async fn depth(&self) -> StoreResult<QueueDepth> {
        self.conn.depth(&self.url).await
    }
}

/// A queue's dead-letter queue, read like any queue.
pub(crate) struct DeadLetters {
    conn: Conn,
    source_url: String,
    url: Arc<OnceCell<String>>,
}

impl DeadLetters {
    async fn url(&self) -> StoreResult<&str> {
        self.url.get_or_try_init(|| self.conn.dead_letter_url(&self.source_url)).await.map(String::as_str)
    }
}

#[async_trait]
impl QueueReceiver for DeadLetters {
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> StoreResult<Vec<ReceivedMessage>> {
        let url = self.url().await?;
        self.conn.receive(url, max, visibility, wait).await
    }

    async fn delete(&self, receipts: &[String]) -> StoreResult<()> {
        let url = self.url().await?;
        self.conn.delete(url, receipts).await
    }

    async fn release(&self, receipt: &str, delay: Duration) -> StoreResult<()> {
        let url = self.url().await?;
        self.conn.release(url, receipt, delay).await
    }

    async fn depth(&self) -> StoreResult<QueueDepth> {
        let url = self.url().await?;
        self.conn.depth(url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_by_count_and_bytes() {
        let small: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
        let batches = pack(&small);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);

        let big = "x".repeat(250 * 1024);
        let batches = pack(&[big.clone(), "a".into(), big.clone(), "b".into(), "c".into()]);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 3]);
        assert!(batches.iter().all(|b| b.iter().map(String::len).sum::<usize>() <= MAX_QUEUE_MESSAGE_BYTES));

        let full = "y".repeat(MAX_QUEUE_MESSAGE_BYTES);
        assert_eq!(pack(&[full.clone(), full]).len(), 2);
        assert!(pack(&[]).is_empty());
    }

    #[test]
    fn queue_names_from_urls() {
        assert_eq!(queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/vigil-events"), "vigil-events");
        assert_eq!(queue_name("vigil-events"), "vigil-events");
    }
}

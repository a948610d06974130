//! [`EventStore`] on the events table: conditional puts in transactions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

use super::{backoff, bounded, sdk_error, Counters};
use crate::error::{StoreError, StoreResult};
use crate::model::{Event, Timestamp};
use crate::ports::EventStore;
use crate::schema::EVENTS_TABLE;

use super::item::*;
use super::store::*;

/// Transactions in flight at once for one `put_new`.
const EVENT_CONCURRENCY: usize = 4;
/// Kept under DynamoDB's 4 MB per transaction.
const MAX_TRANSACT_BYTES: usize = 3 * 1024 * 1024;

/// Conditionally puts `items` (input index, item) in transactions and returns which were new.
async fn put_events_chunk(
    client: Client,
    table: String,
    counters: Arc<Counters>,
    items: Vec<(usize, Item)>,
) -> StoreResult<Vec<(usize, bool)>> {
    let mut results = Vec::with_capacity(items.len());
    let mut pending = items;
    let mut stalled = 0;
    while !pending.is_empty() {
        let actions = pending
            .iter()
            .map(|(_, item)| {
                let put = Put::builder()
                    .table_name(&table)
                    .set_item(Some(item.clone()))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(build_err)?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        counters.ddb_write(actions.len());
        let err = match client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => {
                results.extend(pending.iter().map(|(i, _)| (*i, true)));
                break;
            }
            Err(err) => err,
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(sdk_error("TransactWriteItems", err));
        };
        if codes.len() != pending.len() {
            return Err(StoreError::Transient(format!(
                "TransactWriteItems cancelled with {} reasons for {} items",
                codes.len(),
                pending.len()
            )));
        }
        if let Some(code) = codes.iter().find(|c| c.as_str() == "ValidationError") {
            return Err(StoreError::Permanent(format!("TransactWriteItems {table}: {code}")));
        }
        let before = pending.len();
        let mut retry = Vec::with_capacity(before);
        for ((i, item), code) in pending.into_iter().zip(&codes) {
            if code == CONDITIONAL_CHECK_FAILED {
                results.push((i, false));
            } else {
                retry.push((i, item));
            }
        }
        if retry.len() == before {
            // Nothing already existed: a conflict with another transaction, or throttling.
            if stalled >= MAX_CONTENDED_ATTEMPTS {
                return Err(StoreError::Transient(format!("TransactWriteItems {table}: cancelled: {codes:?}")));
            }
            backoff(stalled).await;
            stalled += 1;
        }
        pending = retry;
    }
    Ok(results)
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn put_new(&self, events: &[Event], expires_at: Timestamp) -> StoreResult<Vec<bool>> {
        let mut new = vec![false; events.len()];
        // One transaction may not touch an item twice; a repeated id is not new the second time anyway.
        let mut seen = HashSet::new();
        let mut chunks: Vec<Vec<(usize, Item)>> = Vec::new();
        let mut chunk: Vec<(usize, Item)> = Vec::new();
        let mut chunk_bytes = 0;
        for (i, event) in events.iter().enumerate() {
            let pk = format!("{}#{}", event.tenant, event.id);
            if !seen.insert(pk.clone()) {
                continue;
            }
            let json = to_json("event", event)?;
            let size = json.len() + pk.len() + event.tenant.len() + event.id.len() + 64;
            if !chunk.is_empty() && (chunk.len() >= MAX_TRANSACT_ITEMS || chunk_bytes + size > MAX_TRANSACT_BYTES) {
                chunks.push(std::mem::take(&mut chunk));
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            chunk.push((
                i,
                HashMap::from([
                    ("pk".to_string(), s(pk)),
                    ("tenant".to_string(), s(&event.tenant)),
                    ("id".to_string(), s(&event.id)),
                    ("event".to_string(), s(json)),
                    (EVENTS_TABLE.ttl.unwrap_or("expires_at").to_string(), n(epoch_secs(expires_at))),
                ]),
            ));
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        let (client, table, counters) = (self.client.clone(), self.tables.events.clone(), self.counters.clone());
        let done = bounded(chunks, EVENT_CONCURRENCY, move |items| {
            put_events_chunk(client.clone(), table.clone(), counters.clone(), items)
        })
        .await?;
        for (i, is_new) in done.into_iter().flatten() {
            new[i] = is_new;
        }
        Ok(new)
    }

    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>> {
        let key = HashMap::from([("pk".to_string(), s(format!("{tenant}#{id}")))]);
        match self.get_item(&self.tables.events, key).await? {
            Some(item) => from_item(&item, "event").map(Some),
            None => Ok(None),
        }
    }
}

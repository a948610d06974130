//! [`WindowStore`] on the state table: one item per window key, entries as a string set.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{bounded, sdk_error};
use crate::error::{StoreError, StoreResult};
use crate::model::Timestamp;
use crate::ports::{WindowEntry, WindowStore, WindowUpdate};
use crate::schema::STATE_TABLE;

use super::item::*;
use super::store::*;

/// `UpdateItem`s in flight at once for one merge or prune.
const WINDOW_CONCURRENCY: usize = 8;

fn window_key(key: &str) -> Item {
    HashMap::from([("pk".to_string(), s(format!("W#{key}"))), ("sk".to_string(), s("W"))])
}

fn decode_entries(item: Option<&Item>) -> Vec<WindowEntry> {
    let Some(item) = item else { return Vec::new() };
    get_ss(item, "entries")
        .iter()
        .filter_map(|e| {
            let decoded = WindowEntry::decode(e);
            if decoded.is_none() {
                tracing::warn!("skipping a window entry that does not decode");
            }
            decoded
        })
        .collect()
}

/// Updates grouped by key (first-seen order), entries de-duplicated, and for each update its group.
fn group_updates(updates: &[WindowUpdate]) -> (Vec<(String, BTreeSet<String>)>, Vec<usize>) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(String, BTreeSet<String>)> = Vec::new();
    let mut of_update = Vec::with_capacity(updates.len());
    for u in updates {
        let g = *index.entry(u.key.as_str()).or_insert_with(|| {
            groups.push((u.key.clone(), BTreeSet::new()));
            groups.len() - 1
        });
        groups[g].1.extend(u.entries.iter().map(WindowEntry::encode));
        of_update.push(g);
    }
    (groups, of_update)
}

#[async_trait]
impl WindowStore for DynamoStore {
    async fn merge(&self, updates: &[WindowUpdate], expires_at: Timestamp) -> StoreResult<Vec<Vec<WindowEntry>>> {
        let (groups, of_update) = group_updates(updates);
        let (client, table, counters) = (self.client.clone(), self.tables.state.clone(), self.counters.clone());
        let ttl = STATE_TABLE.ttl.unwrap_or("expires_at");
        let expires = epoch_secs(expires_at);
        let merged = bounded(groups, WINDOW_CONCURRENCY, move |(key, entries)| {
            let (client, table, counters) = (client.clone(), table.clone(), counters.clone());
            async move {
                if entries.is_empty() {
                    // DynamoDB sets cannot be empty: nothing to add, so just read what the key holds.
                    counters.ddb_read();
                    let out = client
                        .get_item()
                        .table_name(&table)
                        .set_key(Some(window_key(&key)))
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(|e| sdk_error(&format!("GetItem {table}"), e))?;
                    return Ok(decode_entries(out.item()));
                }
                counters.ddb_write(1);
                let out = client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(window_key(&key)))
                    .update_expression("ADD #entries :entries SET #ttl = :ttl")
                    .expression_attribute_names("#entries", "entries")
                    .expression_attribute_names("#ttl", ttl)
                    .expression_attribute_values(":entries", AttributeValue::Ss(entries.into_iter().collect()))
                    .expression_attribute_values(":ttl", n(expires))
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&format!("UpdateItem {table}"), e))?;
                Ok(decode_entries(out.attributes()))
            }
        })
        .await?;
        Ok(of_update.into_iter().map(|g| merged[g].clone()).collect())
    }

    async fn prune(&self, removals: &[WindowUpdate]) -> StoreResult<()> {
        let (groups, _) = group_updates(removals);
        let groups: Vec<_> = groups.into_iter().filter(|(_, e)| !e.is_empty()).collect();
        let (client, table, counters) = (self.client.clone(), self.tables.state.clone(), self.counters.clone());
        bounded(groups, WINDOW_CONCURRENCY, move |(key, entries)| {
            let (client, table, counters) = (client.clone(), table.clone(), counters.clone());
            async move {
                counters.ddb_write(1);
                // The condition keeps a prune of a window that is gone from creating an empty item.
                let res = client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(window_key(&key)))
                    .update_expression("DELETE #entries :entries")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_names("#entries", "entries")
                    .expression_attribute_values(":entries", AttributeValue::Ss(entries.into_iter().collect()))
                    .send()
                    .await;
                match res {
                    Ok(_) => Ok(()),
                    Err(e) => match sdk_error(&format!("UpdateItem {table}"), e) {
                        StoreError::Conflict(_) => Ok(()),
                        other => Err(other),
                    },
                }
            }
        })
        .await?;
        Ok(())
    }
}

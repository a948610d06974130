//! The per-tenant aggregates on DynamoDB, in the state table (no table of their own):
//!
//! - totals: `pk = AGG#tenant`, `sk = counter name`, `n` (number, changed only with `ADD`);
//! - hourly: `pk = AGGH#tenant`, `sk = YYYYMMDDHH#counter name` (UTC hour), `n`, `hour` (epoch s);
//! - samples: `pk = SMP#tenant#kind`, `sk = {at ms:013}#{id}`, `sample` (JSON);
//! - sample pointers: `pk = SMPI#tenant#kind`, `sk = id`, `at_ms`: where the sample of (kind, id) is, so
//!   recording it again with another time replaces it instead of adding a second one.
//!
//! Totals are one `Query` of one partition; hourly counters and samples are `Query`s on a sort-key range.
//! Writes are transactions ([`AggOp`]s become `TransactWriteItems` actions, at most 100 per transaction);
//! the same actions join a ticket update or an alert record so that both commit together.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use chrono::DateTime;

use super::aggregate_plan::*;
use super::backoff;
use super::item::*;
use super::store::DynamoStore;
use crate::error::{StoreError, StoreResult};
use crate::model::Timestamp;
use crate::ports::{AggregateWrite, Aggregates, HourlyCount, Sample};

/// Attempts of one aggregate transaction cancelled by contention (hot counters conflict under load).
const MAX_AGGREGATE_ATTEMPTS: u32 = 12;

impl DynamoStore {
    /// The transaction actions of `ops`. A sample's pointer put is conditional on where the pointer said the
    /// sample was, so a concurrent change cancels the transaction. With `read_pointers` false (a first
    /// attempt) every sample is assumed new, which it almost always is: no read, and if the sample did exist
    /// the condition cancels the transaction and the retry reads the pointers (consistently).
    pub(super) async fn aggregate_actions(
        &self,
        ops: &[AggOp],
        read_pointers: bool,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let table = self.tables.state.as_str();
        let mut actions = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                AggOp::Add { pk, sk, delta, hour } => {
                    let mut update = Update::builder()
                        .table_name(table)
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .expression_attribute_names("#n", "n")
                        .expression_attribute_values(":d", n(*delta));
                    update = match hour {
                        Some(h) => update
                            .update_expression("ADD #n :d SET #h = :h")
                            .expression_attribute_names("#h", "hour")
                            .expression_attribute_values(":h", n(*h)),
                        None => update.update_expression("ADD #n :d"),
                    };
                    actions.push(TransactWriteItem::builder().update(update.build().map_err(build_err)?).build());
                }
                AggOp::Sample { tenant, kind, id, at_ms, json } => {
                    let pointer_key: Item =
                        [("pk".to_string(), s(format!("SMPI#{tenant}#{kind}"))), ("sk".to_string(), s(id))]
                            .into_iter()
                            .collect();
                    let old = if read_pointers {
                        self.get_item(table, pointer_key.clone()).await?.and_then(|i| get_n(&i, "at_ms"))
                    } else {
                        None
                    };
                    let mut pointer = pointer_key;
                    pointer.insert("at_ms".into(), n(*at_ms));
                    let put_pointer = Put::builder().table_name(table).set_item(Some(pointer));
                    let put_pointer = match old {
                        None => put_pointer.condition_expression("attribute_not_exists(pk)"),
                        Some(old) => put_pointer
                            .condition_expression("#at = :old")
                            .expression_attribute_names("#at", "at_ms")
                            .expression_attribute_values(":old", n(old)),
                    };
                    actions.push(TransactWriteItem::builder().put(put_pointer.build().map_err(build_err)?).build());
                    let sample_pk = format!("SMP#{tenant}#{kind}");
                    let (old_sk, new_sk) = (old.map(|o| sample_sk(o, id)), sample_sk(*at_ms, id));
                    if let Some(old_sk) = old_sk.filter(|o| *o != new_sk) {
                        let delete =
                            Delete::builder().table_name(table).key("pk", s(&sample_pk)).key("sk", s(old_sk)).build();
                        actions.push(TransactWriteItem::builder().delete(delete.map_err(build_err)?).build());
                    }
                    let item: Item = [
                        ("pk".to_string(), s(sample_pk)),
                        ("sk".to_string(), s(new_sk)),
                        ("sample".to_string(), s(json)),
                    ]
                    .into_iter()
                    .collect();
                    let put = Put::builder().table_name(table).set_item(Some(item)).build().map_err(build_err)?;
                    actions.push(TransactWriteItem::builder().put(put).build());
                }
            }
        }
        Ok(actions)
    }

    /// Applies `ops` (at most 100 actions) in one transaction, retrying cancellations by contention.
    pub(super) async fn apply_chunk(&self, ops: &[AggOp]) -> StoreResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        for attempt in 0..MAX_AGGREGATE_ATTEMPTS {
            let actions = self.aggregate_actions(ops, attempt > 0).await?;
            match self.transact(actions).await? {
                Ok(()) => return Ok(()),
                // A sample pointer moved under us, or another transaction held an item: read again, retry.
                Err(TransactFailure { codes }) => {
                    tracing::debug!(?codes, attempt, "aggregate transaction cancelled; retrying");
                    backoff(attempt).await;
                }
            }
        }
        Err(StoreError::Transient("aggregate write: too much contention".into()))
    }

    /// Every item of one partition (`Query`, consistent), optionally limited to a sort-key range.
    async fn query_partition(&self, pk: &str, between: Option<(String, String)>) -> StoreResult<Vec<Item>> {
        let table = self.tables.state.as_str();
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            self.counters.ddb_read();
            let mut q = self
                .client
                .query()
                .table_name(table)
                .consistent_read(true)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start.take());
            q = match &between {
                Some((lo, hi)) => q
                    .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":lo", s(lo))
                    .expression_attribute_values(":hi", s(hi)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let page = q.send().await.map_err(|e| super::sdk_error(&format!("Query {table}"), e))?;
            out.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl Aggregates for DynamoStore {
    /// One `TransactWriteItems` per 100 actions (atomic per transaction).
    async fn apply(&self, tenant: &str, writes: &[AggregateWrite]) -> StoreResult<()> {
        for ops in chunk(plan(tenant, writes)?, MAX_TRANSACT_ITEMS) {
            self.apply_chunk(&ops).await?;
        }
        Ok(())
    }

    async fn totals(&self, tenant: &str) -> StoreResult<Vec<(String, i64)>> {
        let items = self.query_partition(&format!("AGG#{tenant}"), None).await?;
        Ok(items.iter().filter_map(|i| Some((get_s(i, "sk")?.to_string(), get_n(i, "n").unwrap_or(0)))).collect())
    }

    async fn hourly(&self, tenant: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<HourlyCount>> {
        let on_the_hour = from.timestamp().rem_euclid(3600) == 0 && from.timestamp_subsec_nanos() == 0;
        let first = if on_the_hour { from.timestamp() } else { hour_start(from.timestamp()) + 3600 };
        // The last bucket starts before `to`.
        let end = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
        if first >= end {
            return Ok(Vec::new());
        }
        let last = hour_start(end - 1);
        // `#` sorts before `$`: every `YYYYMMDDHH#name` of the last hour is below `YYYYMMDDHH$`.
        let range = (hour_label(first), format!("{}$", hour_label(last)));
        let items = self.query_partition(&format!("AGGH#{tenant}"), Some(range)).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let sk = get_s(item, "sk").unwrap_or_default();
            let Some((_, name)) = sk.split_once('#') else {
                continue;
            };
            let hour = get_n(item, "hour")
                .and_then(|h| DateTime::from_timestamp(h, 0))
                .ok_or_else(|| StoreError::Permanent(format!("hourly counter {sk} has no valid hour")))?;
            out.push(HourlyCount { hour, name: name.to_string(), value: get_n(item, "n").unwrap_or(0) });
        }
        Ok(out)
    }

    async fn samples(&self, tenant: &str, kind: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<Sample>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let lo = format!("{:013}", from.timestamp_millis().max(0));
        let hi = format!("{:013}$", to.timestamp_millis().max(0));
        let items = self.query_partition(&format!("SMP#{tenant}#{kind}"), Some((lo, hi))).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let json =
                get_s(item, "sample").ok_or_else(|| StoreError::Permanent("stored sample has no body".into()))?;
            let sample: Sample = serde_json::from_str(json)
                .map_err(|e| StoreError::Permanent(format!("stored sample is not valid: {e}")))?;
            // Milliseconds bound the key range; the exact `[from, to)` test is on the stored time.
            if sample.at >= from && sample.at < to {
                out.push(sample);
            }
        }
        Ok(out)
    }
}

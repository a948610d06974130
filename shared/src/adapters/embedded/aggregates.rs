//! The per-tenant aggregates (counters and samples) in the embedded database.
//!
//! | table              | key                                | value                  |
//! |--------------------|------------------------------------|------------------------|
//! | `agg_totals`       | (tenant, counter name)             | all-time total         |
//! | `agg_hourly`       | (tenant, hour start s, name)       | the hour's count       |
//! | `agg_samples`      | (tenant, kind, at ms, sample id)   | sample JSON            |
//! | `agg_sample_at`    | (tenant, kind, sample id)          | at ms of its sample    |
//!
//! Writes go through [`apply_in`], inside the caller's write transaction, so a ticket update or an alert
//! record and its aggregate writes commit (or not) together.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::DateTime;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::store::EmbeddedStore;
use super::{corrupt, db_err, Shared};
use crate::error::{StoreError, StoreResult};
use crate::model::Timestamp;
use crate::ports::{AggregateWrite, Aggregates, HourlyCount, Sample};

pub(crate) const AGG_TOTALS: TableDefinition<(&str, &str), i64> = TableDefinition::new("agg_totals");
pub(crate) const AGG_HOURLY: TableDefinition<(&str, i64, &str), i64> = TableDefinition::new("agg_hourly");
pub(crate) const AGG_SAMPLES: TableDefinition<(&str, &str, i64, &str), &[u8]> = TableDefinition::new("agg_samples");
pub(crate) const AGG_SAMPLE_AT: TableDefinition<(&str, &str, &str), i64> = TableDefinition::new("agg_sample_at");

/// Creates the aggregate tables (called once when the database opens).
pub(crate) fn create(tx: &WriteTransaction) -> StoreResult<()> {
    tx.open_table(AGG_TOTALS).map_err(db_err)?;
    tx.open_table(AGG_HOURLY).map_err(db_err)?;
    tx.open_table(AGG_SAMPLES).map_err(db_err)?;
    tx.open_table(AGG_SAMPLE_AT).map_err(db_err)?;
    Ok(())
}

/// Start of the UTC hour of `at`, in seconds since the epoch.
fn hour_of(at: Timestamp) -> i64 {
    at.timestamp().div_euclid(3600) * 3600
}

/// Applies `writes` to `tenant`'s aggregates inside `tx` (committed by the caller). Counter deltas to the
/// same total or hour are added up first; of two samples with the same (kind, id) the later one wins, and a
/// sample recorded again replaces the earlier one wherever its time put it.
pub(crate) fn apply_in(tx: &WriteTransaction, tenant: &str, writes: &[AggregateWrite]) -> StoreResult<()> {
    if writes.is_empty() {
        return Ok(());
    }
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    let mut hourly: BTreeMap<(i64, &str), i64> = BTreeMap::new();
    let mut samples: BTreeMap<(&str, &str), &Sample> = BTreeMap::new();
    for w in writes {
        match w {
            AggregateWrite::Count { name, at, delta } => {
                *totals.entry(name.as_str()).or_default() += delta;
                *hourly.entry((hour_of(*at), name.as_str())).or_default() += delta;
            }
            AggregateWrite::Sample(s) => {
                samples.insert((s.kind.as_str(), s.id.as_str()), s);
            }
        }
    }
    {
        let mut table = tx.open_table(AGG_TOTALS).map_err(db_err)?;
        for (name, delta) in totals {
            let old = table.get((tenant, name)).map_err(db_err)?.map(|g| g.value()).unwrap_or(0);
            table.insert((tenant, name), old.saturating_add(delta)).map_err(db_err)?;
        }
    }
    {
        let mut table = tx.open_table(AGG_HOURLY).map_err(db_err)?;
        for ((hour, name), delta) in hourly {
            let old = table.get((tenant, hour, name)).map_err(db_err)?.map(|g| g.value()).unwrap_or(0);
            table.insert((tenant, hour, name), old.saturating_add(delta)).map_err(db_err)?;
        }
    }
    if !samples.is_empty() {
        let mut stored = tx.open_table(AGG_SAMPLES).map_err(db_err)?;
        let mut at_of = tx.open_table(AGG_SAMPLE_AT).map_err(db_err)?;
        for ((kind, id), sample) in samples {
            let json =
                serde_json::to_vec(sample).map_err(|e| StoreError::Permanent(format!("encoding sample: {e}")))?;
            let at_ms = sample.at.timestamp_millis();
            if let Some(old) = at_of.get((tenant, kind, id)).map_err(db_err)?.map(|g| g.value()) {
                stored.remove((tenant, kind, old, id)).map_err(db_err)?;
            }
            stored.insert((tenant, kind, at_ms, id), json.as_slice()).map_err(db_err)?;
            at_of.insert((tenant, kind, id), at_ms).map_err(db_err)?;
        }
    }
    Ok(())
}

fn timestamp(secs: i64) -> StoreResult<Timestamp> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| corrupt("hourly counter", format!("hour {secs} out of range")))
}

#[async_trait]
impl Aggregates for EmbeddedStore {
    /// One durable write transaction: all or nothing, and serialised with every other writer.
    async fn apply(&self, tenant: &str, writes: &[AggregateWrite]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let (tenant, writes) = (tenant.to_string(), writes.to_vec());
        self.shared
            .run(move |s: &Shared| {
                let tx = s.db.begin_write().map_err(db_err)?;
                apply_in(&tx, &tenant, &writes)?;
                tx.commit().map_err(db_err)
            })
            .await
    }

    async fn totals(&self, tenant: &str) -> StoreResult<Vec<(String, i64)>> {
        let tenant = tenant.to_string();
        self.shared
            .run(move |s: &Shared| {
                let tx = s.db.begin_read().map_err(db_err)?;
                let table = tx.open_table(AGG_TOTALS).map_err(db_err)?;
                let past = format!("{tenant}\0");
                let mut out = Vec::new();
                for item in table.range((tenant.as_str(), "")..(past.as_str(), "")).map_err(db_err)? {
                    let (k, v) = item.map_err(db_err)?;
                    out.push((k.value().1.to_string(), v.value()));
                }
                Ok(out)
            })
            .await
    }

    async fn hourly(&self, tenant: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<HourlyCount>> {
        // Buckets start on the hour: the first one at or after `from`, up to the last one before `to`.
        let on_the_hour = from.timestamp().rem_euclid(3600) == 0 && from.timestamp_subsec_nanos() == 0;
        let first = if on_the_hour { from.timestamp() } else { hour_of(from) + 3600 };
        let end = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
        let tenant = tenant.to_string();
        if first >= end {
            return Ok(Vec::new());
        }
        self.shared
            .run(move |s: &Shared| {
                let tx = s.db.begin_read().map_err(db_err)?;
                let table = tx.open_table(AGG_HOURLY).map_err(db_err)?;
                let mut out = Vec::new();
                for item in table.range((tenant.as_str(), first, "")..(tenant.as_str(), end, "")).map_err(db_err)? {
                    let (k, v) = item.map_err(db_err)?;
                    let (_, hour, name) = k.value();
                    out.push(HourlyCount { hour: timestamp(hour)?, name: name.to_string(), value: v.value() });
                }
                Ok(out)
            })
            .await
    }

    async fn samples(&self, tenant: &str, kind: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<Sample>> {
        let (tenant, kind) = (tenant.to_string(), kind.to_string());
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        if from_ms > to_ms {
            return Ok(Vec::new());
        }
        self.shared
            .run(move |s: &Shared| {
                let tx = s.db.begin_read().map_err(db_err)?;
                let table = tx.open_table(AGG_SAMPLES).map_err(db_err)?;
                let range = table
                    .range(
                        (tenant.as_str(), kind.as_str(), from_ms, "")
                            ..(tenant.as_str(), kind.as_str(), to_ms.saturating_add(1), ""),
                    )
                    .map_err(db_err)?;
                let mut out = Vec::new();
                for item in range {
                    let (_, v) = item.map_err(db_err)?;
                    let sample: Sample = serde_json::from_slice(v.value()).map_err(|e| corrupt("sample", e))?;
                    // Milliseconds bound the key range; the exact `[from, to)` test is on the stored time.
                    if sample.at >= from && sample.at < to {
                        out.push(sample);
                    }
                }
                Ok(out)
            })
            .await
    }
}

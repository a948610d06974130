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

use chrono::DateTime;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{corrupt, db_err, Shared};
use crate::error::{StoreError, StoreResult};
use crate::model::Timestamp;
use crate::ports::{AggregateWrite, HourlyCount, Sample};

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

/// Every counter's all-time total for `tenant`.
pub(crate) fn totals_in(s: &Shared, tenant: &str) -> StoreResult<Vec<(String, i64)>> {
    let tx = s.db.begin_read().map_err(db_err)?;
    let table = tx.open_table(AGG_TOTALS).map_err(db_err)?;
    let past = format!("{tenant}\0");
    let mut out = Vec::new();
    for item in table.range((tenant, "")..(past.as_str(), "")).map_err(db_err)? {
        let (k, v) = item.map_err(db_err)?;
        out.push((k.value().1.to_string(), v.value()));
    }
    Ok(out)
}

/// The hourly buckets of `tenant` from `from` (inclusive) to `to` (exclusive): buckets start on the hour, the
/// first one at or after `from`, up to the last one before `to`.
pub(crate) fn hourly_in(s: &Shared, tenant: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<HourlyCount>> {
    let on_the_hour = from.timestamp().rem_euclid(3600) == 0 && from.timestamp_subsec_nanos() == 0;
    let first = if on_the_hour { from.timestamp() } else { hour_of(from) + 3600 };
    let end = to.timestamp() + i64::from(to.timestamp_subsec_nanos() > 0);
    if first >= end {
        return Ok(Vec::new());
    }
    let tx = s.db.begin_read().map_err(db_err)?;
    let table = tx.open_table(AGG_HOURLY).map_err(db_err)?;
    let mut out = Vec::new();
    for item in table.range((tenant, first, "")..(tenant, end, "")).map_err(db_err)? {
        let (k, v) = item.map_err(db_err)?;
        let (_, hour, name) = k.value();
        out.push(HourlyCount { hour: timestamp(hour)?, name: name.to_string(), value: v.value() });
    }
    Ok(out)
}

/// The samples of `kind` whose time lies in `[from, to)`.
pub(crate) fn samples_in(
    s: &Shared,
    tenant: &str,
    kind: &str,
    from: Timestamp,
    to: Timestamp,
) -> StoreResult<Vec<Sample>> {
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    if from_ms > to_ms {
        return Ok(Vec::new());
    }
    let tx = s.db.begin_read().map_err(db_err)?;
    let table = tx.open_table(AGG_SAMPLES).map_err(db_err)?;
    let range =
        table.range((tenant, kind, from_ms, "")..(tenant, kind, to_ms.saturating_add(1), "")).map_err(db_err)?;
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
}

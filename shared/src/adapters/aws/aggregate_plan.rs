//! Planning aggregate writes: which state-table items a write set changes ([`AggOp`]) and how they are cut
//! into transactions. Used by the aggregates port and by alert records and ticket updates that carry writes.

use std::collections::BTreeMap;

use chrono::DateTime;

use super::item::MAX_TRANSACT_ITEMS;
use crate::error::{StoreError, StoreResult};
use crate::ports::{AggregateWrite, Sample};

/// One item an aggregate write set changes.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum AggOp {
    /// `ADD n :delta` on a total (`hour: None`) or an hourly counter.
    Add { pk: String, sk: String, delta: i64, hour: Option<i64> },
    /// Puts the sample and its pointer, deleting the sample's earlier copy if it was stored at another time.
    Sample { tenant: String, kind: String, id: String, at_ms: i64, json: String },
}

impl AggOp {
    /// Transaction actions it may take.
    pub(super) fn actions(&self) -> usize {
        match self {
            AggOp::Add { .. } => 1,
            AggOp::Sample { .. } => 3,
        }
    }
}

pub(super) fn hour_start(secs: i64) -> i64 {
    secs.div_euclid(3600) * 3600
}

pub(super) fn hour_label(hour: i64) -> String {
    DateTime::from_timestamp(hour, 0).map(|t| t.format("%Y%m%d%H").to_string()).unwrap_or_else(|| format!("{hour}"))
}

pub(super) fn sample_sk(at_ms: i64, id: &str) -> String {
    format!("{:013}#{id}", at_ms.max(0))
}

/// The items `writes` change for `tenant`: deltas to the same item added up (zero sums dropped), the last of
/// several samples with one (kind, id).
pub(super) fn plan<'a>(tenant: &str, writes: impl IntoIterator<Item = &'a AggregateWrite>) -> StoreResult<Vec<AggOp>> {
    let mut adds: BTreeMap<(String, String), (i64, Option<i64>)> = BTreeMap::new();
    let mut samples: BTreeMap<(String, String), &Sample> = BTreeMap::new();
    for w in writes {
        match w {
            AggregateWrite::Count { name, at, delta } => {
                let total = adds.entry((format!("AGG#{tenant}"), name.clone())).or_insert((0, None));
                total.0 = total.0.saturating_add(*delta);
                let hour = hour_start(at.timestamp());
                let hourly = adds
                    .entry((format!("AGGH#{tenant}"), format!("{}#{name}", hour_label(hour))))
                    .or_insert((0, Some(hour)));
                hourly.0 = hourly.0.saturating_add(*delta);
            }
            AggregateWrite::Sample(sample) => {
                samples.insert((sample.kind.clone(), sample.id.clone()), sample);
            }
        }
    }
    let mut ops: Vec<AggOp> = adds
        .into_iter()
        .filter(|(_, (delta, _))| *delta != 0)
        .map(|((pk, sk), (delta, hour))| AggOp::Add { pk, sk, delta, hour })
        .collect();
    for ((kind, id), sample) in samples {
        let json = serde_json::to_string(sample).map_err(|e| StoreError::Permanent(format!("encoding sample: {e}")))?;
        ops.push(AggOp::Sample { tenant: tenant.to_string(), kind, id, at_ms: sample.at.timestamp_millis(), json });
    }
    Ok(ops)
}

/// Splits `ops` into transactions: the first with room for `first_room` actions, the others for 100.
pub(super) fn chunk(ops: Vec<AggOp>, first_room: usize) -> Vec<Vec<AggOp>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let (mut used, mut room) = (0, first_room);
    for op in ops {
        if used + op.actions() > room {
            chunks.push(std::mem::take(&mut current));
            used = 0;
            room = MAX_TRANSACT_ITEMS;
        }
        used += op.actions();
        current.push(op);
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::aggregates::count;

    #[test]
    fn plan_merges_items_and_keeps_hours_apart() {
        let at = |h, m| chrono::Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0).unwrap();
        let ops = plan(
            "acme",
            &[count("c", &[], at(12, 1), 2), count("c", &[], at(12, 59), 3), count("c", &[], at(13, 0), 1)],
        )
        .expect("plan");
        let adds: Vec<(String, String, i64)> = ops
            .iter()
            .filter_map(|o| match o {
                AggOp::Add { pk, sk, delta, .. } => Some((pk.clone(), sk.clone(), *delta)),
                AggOp::Sample { .. } => None,
            })
            .collect();
        assert_eq!(
            adds,
            vec![
                ("AGG#acme".into(), "c".into(), 6),
                ("AGGH#acme".into(), "2026031012#c".into(), 5),
                ("AGGH#acme".into(), "2026031013#c".into(), 1),
            ]
        );
    }

    #[test]
    fn chunks_respect_the_first_room_and_the_limit() {
        let op = |i: usize| AggOp::Add { pk: "p".into(), sk: format!("{i}"), delta: 1, hour: None };
        let chunks = chunk((0..250).map(op).collect(), 97);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![97, 100, 53]);
        assert_eq!(chunk(Vec::new(), 97), vec![Vec::<AggOp>::new()]);
    }
}

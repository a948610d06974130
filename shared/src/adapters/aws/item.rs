//! The attribute codec shared by every DynamoDB port implementation: item type, attribute builders and
//! getters, JSON attributes, transaction limits and cancellation reasons.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{StoreError, StoreResult};
use crate::model::Timestamp;

/// DynamoDB's limit on actions in one `TransactWriteItems`.
pub(super) const MAX_TRANSACT_ITEMS: usize = 100;
/// Attempts that make no progress (conflicts, throttling) before giving up with a transient error.
pub(super) const MAX_CONTENDED_ATTEMPTS: u32 = 8;

pub(super) const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(super) fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub(super) fn get_ss<'a>(item: &'a Item, name: &str) -> &'a [String] {
    item.get(name).and_then(|v| v.as_ss().ok()).map(Vec::as_slice).unwrap_or_default()
}

pub(super) fn to_json<T: Serialize>(what: &str, v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Permanent(format!("encoding {what}: {e}")))
}

pub(super) fn from_item<T: DeserializeOwned>(item: &Item, attr: &str) -> StoreResult<T> {
    let json = get_s(item, attr).ok_or_else(|| StoreError::Permanent(format!("stored item has no {attr:?}")))?;
    serde_json::from_str(json).map_err(|e| StoreError::Permanent(format!("stored {attr} is not valid: {e}")))
}

pub(super) fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Permanent(format!("building request: {e}"))
}

pub(super) fn epoch_secs(t: Timestamp) -> i64 {
    t.timestamp()
}

/// Why a transaction was cancelled, per action, or `None` if the error was not a cancellation.
pub(super) fn cancellation_codes<R>(
    err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
) -> Option<Vec<String>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(tce) => {
            Some(tce.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect())
        }
        _ => None,
    }
}

/// A transaction cancelled by DynamoDB: why, per action (`ConditionalCheckFailed`, `TransactionConflict`,
/// `None`, ...).
#[derive(Debug)]
pub(super) struct TransactFailure {
    pub(super) codes: Vec<String>,
}

/// Whether a cancellation came from the conditional check of action `i`.
pub(super) fn failed_check(codes: &[String], i: usize) -> bool {
    codes.get(i).is_some_and(|c| c == CONDITIONAL_CHECK_FAILED)
}

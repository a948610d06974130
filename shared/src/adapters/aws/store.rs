//! The store ports on DynamoDB.
//!
//! Items (key names from [`crate::schema`]):
//! - events table: `pk = tenant#id`, `tenant`, `id`, `event` (the event as JSON), `expires_at` (TTL, epoch s).
//! - state table, windows: `pk = W#<window key>`, `sk = W`, `entries` (string set of [`WindowEntry::encode`]),
//!   `expires_at`.
//! - state table, alert heads: `pk = H#tenant#rule#entity`, `sk = H`, `alert_id`, `suppress_until` (epoch ms),
//!   `expires_at` (a week after `suppress_until`: a head that has passed no longer suppresses anything).
//! - alerts table: `pk = tenant`, `sk = alert id`, `alert` (JSON), `version`, `detection_ids` (string set).
//! - tickets table: `pk = tenant`, `sk = ticket id`, `ticket` (JSON), `version`, and the keys of its global
//!   secondary indexes (see [`crate::schema::TICKETS_TABLE`]): `status_key = tenant#status`,
//!   `severity_key = tenant#severity`, `rule_key = tenant#rule`, `assignee_key = tenant#assignee` (only when
//!   assigned), each with sort key `sk`, so a filtered list queries one index partition newest first.
//! - state table, aggregates: see `aggregates.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_dynamodb::Client;

use super::{sdk_error, Counters};
use crate::config::Config;
use crate::error::{StoreError, StoreResult};
use crate::schema::{ALERTS_TABLE, EVENTS_TABLE, STATE_TABLE, TICKETS_TABLE};

use super::item::*;

#[derive(Clone, Debug)]
pub(crate) struct Tables {
    pub(super) events: String,
    pub(super) state: String,
    pub(super) alerts: String,
    pub(super) tickets: String,
}

impl Tables {
    pub(crate) fn from_config(cfg: &Config) -> Tables {
        Tables {
            events: cfg.table(&EVENTS_TABLE).to_string(),
            state: cfg.table(&STATE_TABLE).to_string(),
            alerts: cfg.table(&ALERTS_TABLE).to_string(),
            tickets: cfg.table(&TICKETS_TABLE).to_string(),
        }
    }
}

/// Every store port on the four tables.
pub(crate) struct DynamoStore {
    pub(super) client: Client,
    pub(super) tables: Tables,
    pub(super) counters: Arc<Counters>,
}

impl DynamoStore {
    pub(crate) fn new(client: Client, tables: Tables, counters: Arc<Counters>) -> DynamoStore {
        DynamoStore { client, tables, counters }
    }

    /// Runs one `TransactWriteItems`. `Ok(Err(_))` is a cancellation (conditions, conflicts, throttling) the
    /// caller decides about; a cancellation for invalid input is a permanent error.
    pub(super) async fn transact(&self, actions: Vec<TransactWriteItem>) -> StoreResult<Result<(), TransactFailure>> {
        if actions.is_empty() {
            return Ok(Ok(()));
        }
        self.counters.ddb_write(actions.len());
        let err = match self.client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => return Ok(Ok(())),
            Err(err) => err,
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(sdk_error("TransactWriteItems", err));
        };
        if codes.iter().any(|c| c == "ValidationError") {
            return Err(StoreError::Permanent(format!("TransactWriteItems: cancelled: {codes:?}")));
        }
        Ok(Err(TransactFailure { codes }))
    }

    pub(super) async fn get_item(&self, table: &str, key: Item) -> StoreResult<Option<Item>> {
        self.counters.ddb_read();
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("GetItem {table}"), e))?;
        Ok(out.item().cloned())
    }

    pub(super) fn tenant_key(tenant: &str, sk: &str) -> Item {
        HashMap::from([("pk".to_string(), s(tenant)), ("sk".to_string(), s(sk))])
    }
}

//! The store ports on DynamoDB.
//!
//! Items (key names from [`crate::schema`]):
//! - events table: `pk = tenant#id`, `tenant`, `id`, `event` (the event as JSON), `expires_at` (TTL, epoch s).
//! - state table, windows: `pk = W#<window key>`, `sk = W`, `entries` (string set of [`WindowEntry::encode`]),
//!   `expires_at`.
//! - state table, alert heads: `pk = H#tenant#rule#entity`, `sk = H`, `alert_id`, `suppress_until` (epoch ms),
//!   `expires_at` (a week after `suppress_until`: a head that has passed no longer suppresses anything).
//! - alerts table: `pk = tenant`, `sk = alert id`, `alert` (JSON), `version`, `detection_ids` (string set).
//! - tickets table: `pk = tenant`, `sk = ticket id`, `ticket` (JSON), `version`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{backoff, bounded, sdk_error, Counters};
use crate::config::Config;
use crate::error::{StoreError, StoreResult};
use crate::model::{Alert, Event, Ticket, Timestamp};
use crate::ports::{
    roll_up, AlertCandidate, AlertStore, EventStore, Page, PageRequest, RecordOutcome, TicketFilter, WindowEntry,
    WindowStore, WindowUpdate, ALERT_DETECTION_IDS_CAP,
};
use crate::schema::{ALERTS_TABLE, EVENTS_TABLE, STATE_TABLE, TICKETS_TABLE};

/// DynamoDB's limit on actions in one `TransactWriteItems`.
const MAX_TRANSACT_ITEMS: usize = 100;
/// Kept under DynamoDB's 4 MB per transaction.
const MAX_TRANSACT_BYTES: usize = 3 * 1024 * 1024;
/// `UpdateItem`s in flight at once for one merge or prune.
const WINDOW_CONCURRENCY: usize = 8;
/// Transactions in flight at once for one `put_new`.
const EVENT_CONCURRENCY: usize = 4;
/// Attempts that make no progress (conflicts, throttling) before giving up with a transient error.
const MAX_CONTENDED_ATTEMPTS: u32 = 8;
/// Page size of a list request with limit 0, and the largest page a list returns.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;
/// How long an alert head is kept after its suppression ends.
const HEAD_TTL_AFTER_SUPPRESSION_SECS: i64 = 7 * 24 * 3600;

const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";

#[derive(Clone, Debug)]
pub(crate) struct Tables {
    events: String,
    state: String,
    alerts: String,
    tickets: String,
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

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn get_ss<'a>(item: &'a Item, name: &str) -> &'a [String] {
    item.get(name).and_then(|v| v.as_ss().ok()).map(Vec::as_slice).unwrap_or_default()
}

fn to_json<T: Serialize>(what: &str, v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Permanent(format!("encoding {what}: {e}")))
}

fn from_item<T: DeserializeOwned>(item: &Item, attr: &str) -> StoreResult<T> {
    let json = get_s(item, attr).ok_or_else(|| StoreError::Permanent(format!("stored item has no {attr:?}")))?;
    serde_json::from_str(json).map_err(|e| StoreError::Permanent(format!("stored {attr} is not valid: {e}")))
}

fn build_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Permanent(format!("building request: {e}"))
}

fn epoch_secs(t: Timestamp) -> i64 {
    t.timestamp()
}

/// Why a transaction was cancelled, per action, or `None` if the error was not a cancellation.
fn cancellation_codes<R>(err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>) -> Option<Vec<String>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(tce) => {
            Some(tce.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_string()).collect())
        }
        _ => None,
    }
}

/// Every store port on the four tables.
pub(crate) struct DynamoStore {
    client: Client,
    tables: Tables,
    counters: Arc<Counters>,
}

impl DynamoStore {
    pub(crate) fn new(client: Client, tables: Tables, counters: Arc<Counters>) -> DynamoStore {
        DynamoStore { client, tables, counters }
    }

    async fn get_item(&self, table: &str, key: Item) -> StoreResult<Option<Item>> {
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

    fn tenant_key(tenant: &str, sk: &str) -> Item {
        HashMap::from([("pk".to_string(), s(tenant)), ("sk".to_string(), s(sk))])
    }
}

// ---------------------------------------------------------------------------------------------------------
// Events

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

// ---------------------------------------------------------------------------------------------------------
// Windows

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

// ---------------------------------------------------------------------------------------------------------
// Alerts and tickets

enum OpenAttempt {
    Opened,
    /// An alert with the candidate's id exists: this detection opened it before.
    AlertExists,
    /// An alert for (tenant, rule, entity) is open at the detection's time.
    HeadHeld,
    /// Cancelled by a concurrent transaction or throttling: try again.
    Contended,
}

impl DynamoStore {
    fn head_key(c: &AlertCandidate) -> Item {
        let d = &c.detection;
        HashMap::from([
            ("pk".to_string(), s(format!("H#{}#{}#{}", d.tenant, d.rule, d.entity))),
            ("sk".to_string(), s("H")),
        ])
    }

    async fn try_open(&self, c: &AlertCandidate) -> StoreResult<OpenAttempt> {
        let suppress_ms = c.alert.suppress_until.timestamp_millis();
        let mut head = Self::head_key(c);
        head.insert("alert_id".into(), s(&c.alert.id));
        head.insert("suppress_until".into(), n(suppress_ms));
        head.insert(
            STATE_TABLE.ttl.unwrap_or("expires_at").into(),
            n(suppress_ms / 1000 + HEAD_TTL_AFTER_SUPPRESSION_SECS),
        );
        let head_put = Put::builder()
            .table_name(&self.tables.state)
            .set_item(Some(head))
            .condition_expression("attribute_not_exists(pk) OR #su <= :last_seen")
            .expression_attribute_names("#su", "suppress_until")
            .expression_attribute_values(":last_seen", n(c.detection.last_seen.timestamp_millis()))
            .build()
            .map_err(build_err)?;

        let mut alert = Self::tenant_key(&c.alert.tenant, &c.alert.id);
        alert.insert("alert".into(), s(to_json("alert", &c.alert)?));
        alert.insert("version".into(), n(0));
        alert.insert("detection_ids".into(), AttributeValue::Ss(vec![c.detection.id.clone()]));
        let alert_put = Put::builder()
            .table_name(&self.tables.alerts)
            .set_item(Some(alert))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;

        let mut ticket = Self::tenant_key(&c.ticket.tenant, &c.ticket.id);
        ticket.insert("ticket".into(), s(to_json("ticket", &c.ticket)?));
        ticket.insert("version".into(), n(c.ticket.version as i64));
        let ticket_put = Put::builder()
            .table_name(&self.tables.tickets)
            .set_item(Some(ticket))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;

        self.counters.ddb_write(3);
        let res = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(head_put).build())
            .transact_items(TransactWriteItem::builder().put(alert_put).build())
            .transact_items(TransactWriteItem::builder().put(ticket_put).build())
            .send()
            .await;
        let err = match res {
            Ok(_) => return Ok(OpenAttempt::Opened),
            Err(err) => err,
        };
        let Some(codes) = cancellation_codes(&err) else {
            return Err(sdk_error("TransactWriteItems", err));
        };
        let code = |i: usize| codes.get(i).map(String::as_str).unwrap_or("None");
        if code(0) == CONDITIONAL_CHECK_FAILED {
            Ok(OpenAttempt::HeadHeld)
        } else if code(1) == CONDITIONAL_CHECK_FAILED {
            Ok(OpenAttempt::AlertExists)
        } else if code(2) == CONDITIONAL_CHECK_FAILED {
            Err(StoreError::Conflict(format!("ticket {} exists without its alert", c.ticket.id)))
        } else if codes.iter().any(|c| c == "ValidationError") {
            Err(StoreError::Permanent(format!("TransactWriteItems: cancelled: {codes:?}")))
        } else {
            Ok(OpenAttempt::Contended)
        }
    }

    /// Rolls the detection into the alert the head names. `None` if the head is gone or no longer covers
    /// the detection (the caller tries to open again).
    async fn roll_into_open(&self, c: &AlertCandidate) -> StoreResult<Option<RecordOutcome>> {
        let d = &c.detection;
        let Some(head) = self.get_item(&self.tables.state, Self::head_key(c)).await? else {
            return Ok(None);
        };
        let suppress_until = get_n(&head, "suppress_until").unwrap_or(i64::MIN);
        if suppress_until <= d.last_seen.timestamp_millis() {
            return Ok(None);
        }
        let alert_id = get_s(&head, "alert_id")
            .ok_or_else(|| StoreError::Permanent("alert head without alert_id".into()))?
            .to_string();
        let tenant = &c.alert.tenant;
        for attempt in 0..MAX_CONTENDED_ATTEMPTS {
            let item = self
                .get_item(&self.tables.alerts, Self::tenant_key(tenant, &alert_id))
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("alert {alert_id} named by its head does not exist")))?;
            let mut ids = get_ss(&item, "detection_ids").to_vec();
            if ids.contains(&d.id) {
                return Ok(Some(RecordOutcome::AlreadyRecorded { alert_id }));
            }
            let version = get_n(&item, "version").unwrap_or(0);
            let mut alert: Alert = from_item(&item, "alert")?;
            roll_up(&mut alert, d, c.alert.updated_at);
            if ids.len() >= ALERT_DETECTION_IDS_CAP {
                ids.sort();
                ids.drain(..=ids.len() - ALERT_DETECTION_IDS_CAP);
            }
            ids.push(d.id.clone());

            let mut updated = Self::tenant_key(tenant, &alert_id);
            updated.insert("alert".into(), s(to_json("alert", &alert)?));
            updated.insert("version".into(), n(version + 1));
            updated.insert("detection_ids".into(), AttributeValue::Ss(ids));
            self.counters.ddb_write(1);
            let res = self
                .client
                .put_item()
                .table_name(&self.tables.alerts)
                .set_item(Some(updated))
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(version))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(Some(RecordOutcome::RolledUp { alert_id })),
                Err(e) => match sdk_error(&format!("PutItem {}", self.tables.alerts), e) {
                    StoreError::Conflict(_) => backoff(attempt).await,
                    other => return Err(other),
                },
            }
        }
        Err(StoreError::Transient(format!("alert {alert_id}: too many concurrent roll-ups")))
    }

    /// A page of `T`s (stored as JSON in `attr`) from a tenant's partition, newest first, keeping those
    /// `keep` accepts. Queries until the page is full or the partition ends.
    async fn list_page<T: DeserializeOwned>(
        &self,
        table: &str,
        tenant: &str,
        attr: &str,
        page: &PageRequest,
        filtered: bool,
        keep: impl Fn(&T) -> bool,
    ) -> StoreResult<Page<T>> {
        let limit = if page.limit == 0 { DEFAULT_PAGE } else { page.limit.min(MAX_PAGE) };
        let mut start = match &page.cursor {
            Some(c) if !c.is_empty() => {
                let sk = URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| StoreError::Permanent("invalid page cursor".into()))?;
                Some(Self::tenant_key(tenant, &sk))
            }
            _ => None,
        };
        // One more than the page, to know whether another page follows.
        let mut found: Vec<(String, T)> = Vec::new();
        loop {
            let want = limit + 1 - found.len();
            let query_limit = if filtered { want.max(100) } else { want };
            self.counters.ddb_read();
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(tenant))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(query_limit.min(MAX_PAGE + 1) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&format!("Query {table}"), e))?;
            for item in out.items() {
                let value: T = from_item(item, attr)?;
                if keep(&value) {
                    let sk = get_s(item, "sk").unwrap_or_default().to_string();
                    found.push((sk, value));
                    if found.len() > limit {
                        break;
                    }
                }
            }
            if found.len() > limit {
                break;
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(sk, _)| URL_SAFE_NO_PAD.encode(sk))
        } else {
            None
        };
        Ok(Page { items: found.into_iter().map(|(_, v)| v).collect(), next })
    }
}

#[async_trait]
impl AlertStore for DynamoStore {
    async fn record(&self, candidate: &AlertCandidate) -> StoreResult<RecordOutcome> {
        let alert_id = candidate.alert.id.clone();
        let ticket_id = candidate.ticket.id.clone();
        for attempt in 0..MAX_CONTENDED_ATTEMPTS {
            match self.try_open(candidate).await? {
                OpenAttempt::Opened => return Ok(RecordOutcome::Opened { alert_id, ticket_id }),
                OpenAttempt::AlertExists => return Ok(RecordOutcome::AlreadyRecorded { alert_id }),
                OpenAttempt::HeadHeld => {
                    if let Some(outcome) = self.roll_into_open(candidate).await? {
                        return Ok(outcome);
                    }
                }
                OpenAttempt::Contended => backoff(attempt).await,
            }
        }
        Err(StoreError::Transient(format!("recording detection {}: too much contention", candidate.detection.id)))
    }

    async fn get_alert(&self, tenant: &str, id: &str) -> StoreResult<Option<Alert>> {
        match self.get_item(&self.tables.alerts, Self::tenant_key(tenant, id)).await? {
            Some(item) => from_item(&item, "alert").map(Some),
            None => Ok(None),
        }
    }

    async fn list_alerts(&self, tenant: &str, page: &PageRequest) -> StoreResult<Page<Alert>> {
        self.list_page(&self.tables.alerts, tenant, "alert", page, false, |_: &Alert| true).await
    }

    async fn get_ticket(&self, tenant: &str, id: &str) -> StoreResult<Option<Ticket>> {
        match self.get_item(&self.tables.tickets, Self::tenant_key(tenant, id)).await? {
            Some(item) => from_item(&item, "ticket").map(Some),
            None => Ok(None),
        }
    }

    async fn list_tickets(&self, tenant: &str, filter: &TicketFilter, page: &PageRequest) -> StoreResult<Page<Ticket>> {
        let filtered = *filter != TicketFilter::default();
        self.list_page(&self.tables.tickets, tenant, "ticket", page, filtered, |t: &Ticket| filter.matches(t)).await
    }
}

//! The embedded backend: every port of [`Ports`] in ONE redb database file (`vigil.redb` in a data directory),
//! for `vigil serve` on a laptop. It does with redb what the `aws` adapter does with DynamoDB and SQS.
//!
//! # Tables
//!
//! | table                | key                                   | value                                   |
//! |----------------------|---------------------------------------|-----------------------------------------|
//! | `events`             | (tenant, event id)                    | expires_at ms (8 bytes BE) + event JSON |
//! | `events_ttl`         | (expires_at ms, tenant, event id)     | ()                                      |
//! | `windows`            | window key (`tenant#rule#entity`)     | expires_at ms                           |
//! | `window_entries`     | (window key, `WindowEntry::encode`)   | ()                                      |
//! | `windows_ttl`        | (expires_at ms, window key)           | ()                                      |
//! | `alerts`             | (tenant, alert id)                    | alert JSON                              |
//! | `tickets`            | (tenant, ticket id)                   | ticket JSON                             |
//! | `tickets_by_status`  | (tenant, status, ticket id)           | () — likewise `tickets_by_assignee`,    |
//! |                      |                                       | `_by_rule`, `_by_severity`              |
//! | `alert_heads`        | (tenant, rule, entity)                | id of the latest alert                  |
//! | `alert_detections`   | (tenant, rule, entity, detection id)  | id of the alert it was recorded on      |
//! | `agg_*`              | see `aggregates.rs`                   | counters and samples                    |
//! | `queue_seq`          | queue name                            | last sequence number given out          |
//! | `queue.<name>.meta`  | sequence number (send order)          | visibility, receive count, receipt, id  |
//! | `queue.<name>.body`  | sequence number                       | message body                            |
//!
//! # Threads
//!
//! redb is synchronous and a write transaction waits for the previous one and for its `fsync`, so every
//! transaction runs in [`tokio::task::spawn_blocking`]: the async workers never block on the disk or on the
//! writer lock. Reads use MVCC read transactions and never wait for writers.
//!
//! # Durability
//!
//! Every commit is durable ([`Durability::Immediate`]: `fsync` before `Ok`) except the window merges and
//! prunes, which commit with [`Durability::None`]. redb persists a non-durable commit with the next durable
//! commit (commits are totally ordered), and a clean close promotes it too. That is safe because window state
//! only ever changes while a consumer handles an events-queue message, and that message is deleted, durably,
//! only after the merge: the scorer merges, then stores the events (a durable `put_new`) and sends the
//! detections (a durable `send`), then the mapping deletes the message (a durable `delete`). If the process
//! dies before one of those, the lost merges belong to a message that is still on the queue, and its
//! redelivery merges them again (merges are set unions, so repeating one is harmless). A detection computed
//! from a non-durable merge is itself sent by a durable commit, which persists that merge first. A lost prune
//! only keeps entries that are outside every window anyway.
//!
//! Queue receives are durable too, although a lost receive only causes a redelivery: the receive count must
//! survive a crash, or a message that kills the process would never reach its dead-letter queue.

mod aggregates;
mod queue;
mod store;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, TableDefinition};

use crate::clock::Clock;
use crate::error::{StoreError, StoreResult};
use crate::ports::Ports;
use crate::schema::{QueueSpec, DEAD_LETTER_RETENTION_SECONDS, DETECTIONS_QUEUE, EVENTS_QUEUE};

pub(crate) use queue::EmbeddedQueue;
pub(crate) use store::EmbeddedStore;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "vigil.redb";

pub(crate) const EVENTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("events");
pub(crate) const EVENTS_TTL: TableDefinition<(i64, &str, &str), ()> = TableDefinition::new("events_ttl");
pub(crate) const WINDOWS: TableDefinition<&str, i64> = TableDefinition::new("windows");
pub(crate) const WINDOW_ENTRIES: TableDefinition<(&str, &str), ()> = TableDefinition::new("window_entries");
pub(crate) const WINDOWS_TTL: TableDefinition<(i64, &str), ()> = TableDefinition::new("windows_ttl");
pub(crate) const ALERTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("alerts");
pub(crate) const TICKETS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("tickets");
pub(crate) const ALERT_HEADS: TableDefinition<(&str, &str, &str), &str> = TableDefinition::new("alert_heads");
pub(crate) const ALERT_DETECTIONS: TableDefinition<(&str, &str, &str, &str), &str> =
    TableDefinition::new("alert_detections");
pub(crate) const TICKETS_BY_STATUS: TableDefinition<(&str, &str, &str), ()> = TableDefinition::new("tickets_by_status");
pub(crate) const TICKETS_BY_ASSIGNEE: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("tickets_by_assignee");
pub(crate) const TICKETS_BY_RULE: TableDefinition<(&str, &str, &str), ()> = TableDefinition::new("tickets_by_rule");
pub(crate) const TICKETS_BY_SEVERITY: TableDefinition<(&str, &str, &str), ()> =
    TableDefinition::new("tickets_by_severity");
pub(crate) const QUEUE_SEQ: TableDefinition<&str, u64> = TableDefinition::new("queue_seq");

/// What every adapter object shares: the database and the clock.
pub(crate) struct Shared {
    pub(crate) db: Database,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Runs a (blocking) database operation on the blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> StoreResult<T> + Send + 'static,
    {
        let shared = Arc::clone(self);
        match tokio::task::spawn_blocking(move || f(&shared)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(StoreError::Permanent(format!("embedded database operation panicked: {e}"))),
            Err(e) => Err(StoreError::Transient(format!("embedded database operation cancelled: {e}"))),
        }
    }
}

/// Maps a redb error onto the port's error kinds: I/O and lock trouble may pass, the rest will not.
pub(crate) fn db_err(e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Io(_)
        | redb::Error::PreviousIo
        | redb::Error::DatabaseClosed
        | redb::Error::DatabaseAlreadyOpen
        | redb::Error::TransactionInProgress
        | redb::Error::WouldBlock
        | redb::Error::LockPoisoned(_) => StoreError::Transient(format!("embedded database: {e}")),
        other => StoreError::Permanent(format!("embedded database: {other}")),
    }
}

/// Data read from disk that does not decode: retrying will not fix it.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Permanent(format!("embedded database: corrupt {what}: {detail}"))
}

/// Prefixes a value with its expiry (milliseconds since the epoch, big-endian).
pub(crate) fn with_expiry(expires_ms: i64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&expires_ms.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Splits a value written by [`with_expiry`].
pub(crate) fn split_expiry<'a>(what: &str, v: &'a [u8]) -> StoreResult<(i64, &'a [u8])> {
    let Some((head, rest)) = v.split_first_chunk::<8>() else {
        return Err(corrupt(what, format!("record of {} bytes is too short", v.len())));
    };
    Ok((i64::from_be_bytes(*head), rest))
}

/// The embedded backend. Cheap to clone: everything is behind `Arc`s, and every clone (and every [`Ports`]
/// bundle it hands out) shares the one database and the queues' wake-ups.
#[derive(Clone)]
pub struct EmbeddedBackend {
    shared: Arc<Shared>,
    events_queue: Arc<EmbeddedQueue>,
    events_dead_letters: Arc<EmbeddedQueue>,
    detections_queue: Arc<EmbeddedQueue>,
    detections_dead_letters: Arc<EmbeddedQueue>,
    store: Arc<EmbeddedStore>,
}

impl std::fmt::Debug for EmbeddedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBackend").finish_non_exhaustive()
    }
}

impl EmbeddedBackend {
    /// Opens (creating it and the directory if needed) `dir/vigil.redb`. The clock drives queue visibility,
    /// message retention and record expiry. Another process holding the database open is a transient error.
    pub fn open(dir: &Path, clock: Arc<dyn Clock>) -> Result<EmbeddedBackend, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Transient(format!("creating data directory {}: {e}", dir.display())))?;
        let path = dir.join(DATABASE_FILE);
        let db = Database::create(&path).map_err(|e| match db_err(e) {
            StoreError::Transient(m) => StoreError::Transient(format!("{}: {m}", path.display())),
            StoreError::Permanent(m) => StoreError::Permanent(format!("{}: {m}", path.display())),
            other => other,
        })?;
        let shared = Arc::new(Shared { db, clock });

        let events_dead_letters = Arc::new(EmbeddedQueue::dead_letter(&shared, &EVENTS_QUEUE));
        let detections_dead_letters = Arc::new(EmbeddedQueue::dead_letter(&shared, &DETECTIONS_QUEUE));
        let events_queue = Arc::new(EmbeddedQueue::source(&shared, &EVENTS_QUEUE, &events_dead_letters));
        let detections_queue = Arc::new(EmbeddedQueue::source(&shared, &DETECTIONS_QUEUE, &detections_dead_letters));
        let backend = EmbeddedBackend {
            store: Arc::new(EmbeddedStore::new(&shared)),
            shared,
            events_queue,
            events_dead_letters,
            detections_queue,
            detections_dead_letters,
        };
        backend.create_tables()?;
        Ok(backend)
    }

    /// Creates every table up front, so read transactions never meet a missing one.
    fn create_tables(&self) -> StoreResult<()> {
        let tx = self.shared.db.begin_write().map_err(db_err)?;
        tx.open_table(EVENTS).map_err(db_err)?;
        tx.open_table(EVENTS_TTL).map_err(db_err)?;
        tx.open_table(WINDOWS).map_err(db_err)?;
        tx.open_table(WINDOW_ENTRIES).map_err(db_err)?;
        tx.open_table(WINDOWS_TTL).map_err(db_err)?;
        tx.open_table(ALERTS).map_err(db_err)?;
        tx.open_table(TICKETS).map_err(db_err)?;
        tx.open_table(ALERT_HEADS).map_err(db_err)?;
        tx.open_table(ALERT_DETECTIONS).map_err(db_err)?;
        tx.open_table(QUEUE_SEQ).map_err(db_err)?;
        tx.open_table(TICKETS_BY_STATUS).map_err(db_err)?;
        tx.open_table(TICKETS_BY_ASSIGNEE).map_err(db_err)?;
        tx.open_table(TICKETS_BY_RULE).map_err(db_err)?;
        tx.open_table(TICKETS_BY_SEVERITY).map_err(db_err)?;
        store::rebuild_ticket_indexes(&tx)?;
        aggregates::create(&tx)?;
        let now = self.shared.now_ms();
        for q in [&self.events_queue, &self.events_dead_letters, &self.detections_queue, &self.detections_dead_letters]
        {
            q.tables().create(&tx)?;
            let recovered = q.tables().recover_in_flight(&tx, now)?;
            if recovered > 0 {
                tracing::info!(recovered, "messages in flight at the last shutdown are visible again");
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Every port of the bundle, backed by this database.
    pub fn ports(&self) -> Ports {
        Ports {
            events_queue: self.events_queue.clone(),
            events_receiver: self.events_queue.clone(),
            events_dead_letters: self.events_dead_letters.clone(),
            detections_queue: self.detections_queue.clone(),
            detections_receiver: self.detections_queue.clone(),
            detections_dead_letters: self.detections_dead_letters.clone(),
            events: self.store.clone(),
            windows: self.store.clone(),
            alerts: self.store.clone(),
            aggregates: self.store.clone(),
        }
    }
}

/// Message retention of a queue spec's main queue and of its dead-letter queue, in milliseconds.
pub(crate) fn retention_ms(spec: &QueueSpec, dead_letter: bool) -> i64 {
    let seconds = if dead_letter { DEAD_LETTER_RETENTION_SECONDS } else { spec.retention_seconds };
    i64::from(seconds) * 1000
}

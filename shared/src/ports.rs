//! The narrow ports the handlers need. Every port has an AWS adapter (DynamoDB, SQS) and an embedded adapter
//! (redb), and `contract` holds the one test suite both must pass.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;
use crate::model::{Alert, Detection, Event, Severity, Ticket, TicketStatus, Timestamp};

/// SQS's limit on one message body (and on one `SendMessageBatch` payload).
pub const MAX_QUEUE_MESSAGE_BYTES: usize = 256 * 1024;
/// SQS's limit on entries in one `SendMessageBatch`.
pub const MAX_QUEUE_BATCH_ENTRIES: usize = 10;

/// The sending side of a queue.
#[async_trait]
pub trait QueueSender: Send + Sync {
    /// Enqueues every body (each at most [`MAX_QUEUE_MESSAGE_BYTES`]). `Ok` means the queue holds all of them;
    /// on `Err` some may have been enqueued, which is safe because consumers are idempotent.
    async fn send(&self, bodies: &[String]) -> StoreResult<()>;
}

/// A message handed to a consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Opaque handle for `delete` and `release`.
    pub receipt: String,
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// Approximate queue depth, for `vigil_queue_messages`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDepth {
    pub visible: u64,
    pub in_flight: u64,
}

/// The receiving side of a queue, as an event-source mapping uses it. A received message stays invisible for
/// `visibility`; if it is not deleted by then it is received again. A message received more than the queue's
/// maximum receive count moves to its dead-letter queue instead.
#[async_trait]
pub trait QueueReceiver: Send + Sync {
    async fn receive(&self, max: usize, visibility: Duration, wait: Duration) -> StoreResult<Vec<ReceivedMessage>>;
    async fn delete(&self, receipts: &[String]) -> StoreResult<()>;
    /// Makes a message that failed visible again after `delay` (a retry without waiting for the full timeout).
    async fn release(&self, receipt: &str, delay: Duration) -> StoreResult<()>;
    async fn depth(&self) -> StoreResult<QueueDepth>;
}

/// Scored events, kept for the retention period.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the events whose id is not stored yet (a conditional write per event) and returns, per input
    /// event, whether it was new. Storing the same events again changes nothing and returns all `false`.
    async fn put_new(&self, events: &[Event], expires_at: Timestamp) -> StoreResult<Vec<bool>>;
    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Event>>;
}

/// One event's mark in a detection window. Entries are a set: the same event merged twice counts once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowEntry {
    /// Event time, milliseconds since the epoch.
    pub at_ms: i64,
    pub event_id: String,
    /// What the rule needs besides the time: an outcome, a user name, a status code.
    pub tag: String,
}

impl WindowEntry {
    /// `at_ms|event_id|tag`, the form stored in DynamoDB string sets and redb values.
    pub fn encode(&self) -> String {
        format!("{}|{}|{}", self.at_ms, self.event_id, self.tag)
    }

    pub fn decode(s: &str) -> Option<WindowEntry> {
        let mut parts = s.splitn(3, '|');
        let at_ms = parts.next()?.parse().ok()?;
        let event_id = parts.next()?.to_string();
        let tag = parts.next()?.to_string();
        Some(WindowEntry { at_ms, event_id, tag })
    }
}

/// New entries for one window key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// `tenant#rule#entity`: the tenant is always part of the key.
    pub key: String,
    pub entries: Vec<WindowEntry>,
}

/// Windowed detection state, expiring with a TTL.
#[async_trait]
pub trait WindowStore: Send + Sync {
    /// Adds each update's entries to the set under its key atomically (concurrent merges never lose an entry)
    /// and returns, per update and in the same order, every entry that key's set now holds (any order).
    async fn merge(&self, updates: &[WindowUpdate], expires_at: Timestamp) -> StoreResult<Vec<Vec<WindowEntry>>>;
    /// Removes entries that have fallen out of every window.
    async fn prune(&self, removals: &[WindowUpdate]) -> StoreResult<()>;
}

/// What the alert stage asks the store to record: the detection, and the alert and ticket to open if no alert
/// for (tenant, rule, entity) is open at the detection's time, plus the aggregate writes that count it.
///
/// The aggregate writes go to the tenant of `alert` (the detection's), in the same atomic write as the
/// record itself, so a retried detection is never counted twice (on DynamoDB, as long as they fit in that
/// transaction: up to about 97 counter items, see [`Aggregates::apply`]; more follow in further transactions).
/// Tenant-less series ([`GLOBAL_TENANT`]) cannot be written here; use [`Aggregates::apply`].
#[derive(Clone, Debug)]
pub struct AlertCandidate {
    pub detection: Detection,
    pub alert: Alert,
    pub ticket: Ticket,
    /// Applied iff the outcome is [`RecordOutcome::Opened`] (e.g. `vigil_alerts_total`).
    pub on_open: Vec<AggregateWrite>,
    /// Applied iff the outcome is [`RecordOutcome::Opened`] or [`RecordOutcome::RolledUp`], never on
    /// [`RecordOutcome::AlreadyRecorded`] (e.g. `vigil_detections_total`).
    pub on_detection: Vec<AggregateWrite>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RecordOutcome {
    /// A new alert and its ticket were stored.
    Opened { alert_id: String, ticket_id: String },
    /// The detection rolled up into the open alert (count, last seen, evidence).
    RolledUp { alert_id: String },
    /// This detection id was recorded before (a retry): nothing changed.
    AlreadyRecorded { alert_id: String },
}

/// How the message of the `Permanent` error of [`AlertStore::update_ticket`] for an unknown ticket begins.
pub const TICKET_NOT_FOUND: &str = "ticket not found";

/// How many alert evidence ids and detection ids an alert keeps (bounded item size).
pub const ALERT_EVIDENCE_CAP: usize = 50;
pub const ALERT_DETECTION_IDS_CAP: usize = 500;

/// A page of results and the cursor for the next one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct PageRequest {
    pub limit: usize,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub severity: Option<Severity>,
    pub assignee: Option<String>,
    pub rule: Option<String>,
}

impl TicketFilter {
    pub fn matches(&self, t: &Ticket) -> bool {
        self.status.is_none_or(|s| s == t.status)
            && self.severity.is_none_or(|s| s == t.severity)
            && self.assignee.as_deref().is_none_or(|a| t.assignee.as_deref() == Some(a))
            && self.rule.as_deref().is_none_or(|r| r == t.rule)
    }
}

/// Alerts and their tickets.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Dedups the detection into alerts by (tenant, rule, entity): if no alert is open for it at
    /// `detection.last_seen` (none yet, or the last one's `suppress_until` has passed) the candidate alert and
    /// ticket are stored together; otherwise the detection rolls up into the open alert. Atomic with respect to
    /// concurrent calls, and idempotent per detection id.
    async fn record(&self, candidate: &AlertCandidate) -> StoreResult<RecordOutcome>;
    async fn get_alert(&self, tenant: &str, id: &str) -> StoreResult<Option<Alert>>;
    /// Newest first.
    async fn list_alerts(&self, tenant: &str, page: &PageRequest) -> StoreResult<Page<Alert>>;
    async fn get_ticket(&self, tenant: &str, id: &str) -> StoreResult<Option<Ticket>>;
    /// Replaces the stored ticket (`ticket.tenant`, `ticket.id`) with `ticket` if, and only if, the stored one
    /// has version `expected_version`; `ticket.version` must be `expected_version + 1`. In the same atomic
    /// write, `writes` are applied to `ticket.tenant`'s aggregates (so they happen exactly once per version;
    /// on DynamoDB items beyond the 99 that fit in the ticket's transaction follow in further transactions).
    ///
    /// Errors: [`StoreError::Conflict`](crate::error::StoreError::Conflict) when the stored version differs
    /// (someone else changed the ticket: re-read and retry; never last-writer-wins);
    /// [`StoreError::Permanent`](crate::error::StoreError::Permanent) starting with [`TICKET_NOT_FOUND`]
    /// when the tenant has no ticket with that id (another tenant's id included), and `Permanent` when
    /// `ticket.version != expected_version + 1`.
    async fn update_ticket(&self, ticket: &Ticket, expected_version: u64, writes: &[AggregateWrite])
        -> StoreResult<()>;
    /// Newest first. Served from a secondary index on the most selective filter (no scan of the tenant's
    /// tickets); the other filters are applied while filling the page. On DynamoDB the indexes are global
    /// secondary indexes, which lag a write by a moment: a filtered list right after `update_ticket` may
    /// still show the ticket's previous state (`get_ticket` never does).
    async fn list_tickets(&self, tenant: &str, filter: &TicketFilter, page: &PageRequest) -> StoreResult<Page<Ticket>>;
}

/// Merges a detection into an open alert: the rule every adapter applies on roll-up.
pub fn roll_up(alert: &mut Alert, detection: &Detection, now: Timestamp) {
    alert.count += 1;
    alert.first_seen = alert.first_seen.min(detection.first_seen);
    alert.last_seen = alert.last_seen.max(detection.last_seen);
    alert.score = alert.score.max(detection.score);
    alert.severity = alert.severity.max(detection.severity);
    for id in &detection.evidence {
        if alert.evidence.len() >= ALERT_EVIDENCE_CAP {
            break;
        }
        if !alert.evidence.contains(id) {
            alert.evidence.push(id.clone());
        }
    }
    alert.updated_at = now;
}

/// Every port a Vigil process needs, from one backend. Each function takes only the ports it uses.
#[derive(Clone)]
pub struct Ports {
    pub events_queue: Arc<dyn QueueSender>,
    pub events_receiver: Arc<dyn QueueReceiver>,
    pub events_dead_letters: Arc<dyn QueueReceiver>,
    pub detections_queue: Arc<dyn QueueSender>,
    pub detections_receiver: Arc<dyn QueueReceiver>,
    pub detections_dead_letters: Arc<dyn QueueReceiver>,
    pub events: Arc<dyn EventStore>,
    pub windows: Arc<dyn WindowStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub aggregates: Arc<dyn Aggregates>,
}

/// One write to the per-tenant aggregates that analytics and `/metrics` read, so their cost never grows with
/// the number of stored events.
#[derive(Clone, Debug, PartialEq)]
pub enum AggregateWrite {
    /// Adds `delta` to the counter `name` (a [`crate::aggregates::CounterName`] in its canonical text form),
    /// both to its all-time total and to its bucket for the UTC hour of `at`.
    Count { name: String, at: Timestamp, delta: i64 },
    /// One observation (e.g. a ticket's time to acknowledge), kept in the hour of `at` for exact percentiles.
    /// Idempotent per (`kind`, `id`): recording the same sample again replaces it.
    Sample(Sample),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// What is measured: `tta`, `ttr`, `ttc`, `ttd` (seconds).
    pub kind: String,
    /// The ticket (or other subject) the sample belongs to.
    pub id: String,
    pub at: Timestamp,
    pub value: f64,
    /// Bounded dimensions: severity, rule, actor, shift.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A counter's value in one UTC hour.
#[derive(Clone, Debug, PartialEq)]
pub struct HourlyCount {
    pub hour: Timestamp,
    pub name: String,
    pub value: i64,
}

/// Per-tenant counters and samples. Tenants are kept apart by key; `GLOBAL_TENANT` holds tenant-less series.
#[async_trait]
pub trait Aggregates: Send + Sync {
    /// Applies every write atomically (all or nothing). On DynamoDB one transaction holds at most 100 items
    /// (a counter write touches 2, its total and its hour; a sample up to 3); a larger set is split into
    /// several transactions and is then atomic per transaction only, so callers coalesce their writes
    /// ([`crate::aggregates::coalesce`]).
    async fn apply(&self, tenant: &str, writes: &[AggregateWrite]) -> StoreResult<()>;
    /// Every counter's all-time total for the tenant.
    async fn totals(&self, tenant: &str) -> StoreResult<Vec<(String, i64)>>;
    /// Hourly buckets with `from <= hour < to`.
    async fn hourly(&self, tenant: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<HourlyCount>>;
    /// Samples of `kind` whose `at` lies in `[from, to)`.
    async fn samples(&self, tenant: &str, kind: &str, from: Timestamp, to: Timestamp) -> StoreResult<Vec<Sample>>;
}

/// The pseudo-tenant of series that belong to no tenant (pipeline latency). Real tenants cannot start with `_`.
pub const GLOBAL_TENANT: &str = "_global";

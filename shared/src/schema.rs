//! The one definition of Vigil's tables and queues. `vigil bootstrap` creates exactly these, the AWS adapter
//! uses their key names, and a test checks that `infra/template.yaml` declares the same.

/// A DynamoDB key attribute; every Vigil key attribute is a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub hash: &'static str,
    pub range: Option<&'static str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub key: KeySpec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// Logical name: the resource name in the template, and the key of the table-name setting.
    pub logical: &'static str,
    /// Environment variable that overrides the physical name.
    pub env: &'static str,
    pub default_name: &'static str,
    pub key: KeySpec,
    pub indexes: &'static [IndexSpec],
    /// TTL attribute (epoch seconds).
    pub ttl: Option<&'static str>,
}

/// Scored events: `pk = tenant#event_id`.
pub const EVENTS_TABLE: TableSpec = TableSpec {
    logical: "EventsTable",
    env: "VIGIL_EVENTS_TABLE",
    default_name: "vigil-events",
    key: KeySpec { hash: "pk", range: None },
    indexes: &[],
    ttl: Some("expires_at"),
};

/// Detection windows, alert heads, aggregates (counters and samples) and other small state: `pk = kind#tenant…`,
/// `sk` by kind.
pub const STATE_TABLE: TableSpec = TableSpec {
    logical: "StateTable",
    env: "VIGIL_STATE_TABLE",
    default_name: "vigil-state",
    key: KeySpec { hash: "pk", range: Some("sk") },
    indexes: &[],
    ttl: Some("expires_at"),
};

/// Alerts: `pk = tenant`, `sk = alert id` (ids sort by creation time).
pub const ALERTS_TABLE: TableSpec = TableSpec {
    logical: "AlertsTable",
    env: "VIGIL_ALERTS_TABLE",
    default_name: "vigil-alerts",
    key: KeySpec { hash: "pk", range: Some("sk") },
    indexes: &[],
    ttl: None,
};

/// Tickets by status: `status_key = tenant#status`, newest first by `sk` (the ticket id).
pub const TICKETS_BY_STATUS: IndexSpec =
    IndexSpec { name: "by_status", key: KeySpec { hash: "status_key", range: Some("sk") } };
/// Tickets by assignee: `assignee_key = tenant#assignee`, only on assigned tickets (a sparse index).
pub const TICKETS_BY_ASSIGNEE: IndexSpec =
    IndexSpec { name: "by_assignee", key: KeySpec { hash: "assignee_key", range: Some("sk") } };
/// Tickets by rule: `rule_key = tenant#rule`.
pub const TICKETS_BY_RULE: IndexSpec =
    IndexSpec { name: "by_rule", key: KeySpec { hash: "rule_key", range: Some("sk") } };
/// Tickets by severity: `severity_key = tenant#severity`.
pub const TICKETS_BY_SEVERITY: IndexSpec =
    IndexSpec { name: "by_severity", key: KeySpec { hash: "severity_key", range: Some("sk") } };

/// Tickets: `pk = tenant`, `sk = ticket id` (ids sort by creation time), and one global secondary index per
/// list filter (every index projects all attributes, so a filtered list reads nothing else).
pub const TICKETS_TABLE: TableSpec = TableSpec {
    logical: "TicketsTable",
    env: "VIGIL_TICKETS_TABLE",
    default_name: "vigil-tickets",
    key: KeySpec { hash: "pk", range: Some("sk") },
    indexes: &[TICKETS_BY_STATUS, TICKETS_BY_ASSIGNEE, TICKETS_BY_RULE, TICKETS_BY_SEVERITY],
    ttl: None,
};

pub const TABLES: [TableSpec; 4] = [EVENTS_TABLE, STATE_TABLE, ALERTS_TABLE, TICKETS_TABLE];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    pub logical: &'static str,
    /// Environment variable that overrides the queue name or URL.
    pub env: &'static str,
    pub default_name: &'static str,
    pub dead_letter_name: &'static str,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// Well above the consumer's timeout, so a slow batch is not delivered twice.
    pub visibility_timeout_seconds: u32,
    pub retention_seconds: u32,
}

pub const EVENTS_QUEUE: QueueSpec = QueueSpec {
    logical: "EventsQueue",
    env: "VIGIL_EVENTS_QUEUE",
    default_name: "vigil-events",
    dead_letter_name: "vigil-events-dlq",
    max_receive_count: 5,
    visibility_timeout_seconds: 180,
    retention_seconds: 4 * 24 * 3600,
};

pub const DETECTIONS_QUEUE: QueueSpec = QueueSpec {
    logical: "DetectionsQueue",
    env: "VIGIL_DETECTIONS_QUEUE",
    default_name: "vigil-detections",
    dead_letter_name: "vigil-detections-dlq",
    max_receive_count: 5,
    visibility_timeout_seconds: 180,
    retention_seconds: 4 * 24 * 3600,
};

pub const QUEUES: [QueueSpec; 2] = [EVENTS_QUEUE, DETECTIONS_QUEUE];

/// Dead-letter queues keep messages for the SQS maximum, 14 days.
pub const DEAD_LETTER_RETENTION_SECONDS: u32 = 14 * 24 * 3600;

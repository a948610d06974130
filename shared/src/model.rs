//! The domain model shared by every function: events, detections, alerts and tickets.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub type Timestamp = DateTime<Utc>;

/// Outcome of the action an event records (a login, a sudo, a request).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    #[default]
    Unknown,
}

/// Severity of an event, a detection, an alert or a ticket.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the names senders use: ours, syslog's keywords and numeric syslog severities (0 = emergency).
    pub fn parse_loose(s: &str) -> Option<Severity> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "info" | "informational" | "information" | "debug" | "notice" | "5" | "6" | "7" => Severity::Info,
            "low" | "warning" | "warn" | "4" => Severity::Low,
            "medium" | "error" | "err" | "3" => Severity::Medium,
            "high" | "crit" | "2" => Severity::High,
            "critical" | "alert" | "emerg" | "emergency" | "fatal" | "0" | "1" => Severity::Critical,
            _ => return None,
        })
    }

    /// Maps a syslog severity (0 emergency … 7 debug) onto ours.
    pub fn from_syslog(level: u8) -> Severity {
        match level {
            0 | 1 => Severity::Critical,
            2 => Severity::High,
            3 => Severity::Medium,
            4 => Severity::Low,
            _ => Severity::Info,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Risk band of a scored event, derived from its 0–100 score.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    #[default]
    Low,
    Medium,
    High,
    Critical,
}

impl Risk {
    pub const ALL: [Risk; 4] = [Risk::Low, Risk::Medium, Risk::High, Risk::Critical];

    pub fn from_score(score: u8) -> Risk {
        match score {
            0..=29 => Risk::Low,
            30..=59 => Risk::Medium,
            60..=84 => Risk::High,
            _ => Risk::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::Critical => "critical",
        }
    }
}

/// A normalised security event. The scoring fields are empty until the score stage fills them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: String,
    pub tenant: String,
    /// Event time: when it happened at the source. Detection windows use this, never arrival time.
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
    /// How it reached Vigil (`json`, `syslog`, `hec`, or the sender's own source name).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default)]
    pub outcome: Outcome,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<String>,
}

/// What the events queue carries: many events packed into one SQS message.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EventBatch {
    pub events: Vec<Event>,
}

/// A rule firing for one entity over one window of event time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Detection {
    /// Stable: the same evidence detected twice gives the same id, so retries roll up once.
    pub id: String,
    pub tenant: String,
    pub rule: String,
    pub rule_name: String,
    /// What the rule groups by, e.g. `src_ip=203.0.113.7`.
    pub entity: String,
    pub window_seconds: u64,
    pub count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub evidence: Vec<String>,
    pub score: u8,
    pub severity: Severity,
    pub mitre: Vec<String>,
    pub reasons: Vec<String>,
    /// When the score stage produced it (for pipeline latency).
    pub detected_at: Timestamp,
}

/// Detections deduplicated by (tenant, rule, entity) within the rule's suppression period.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub id: String,
    pub tenant: String,
    pub rule: String,
    pub rule_name: String,
    pub entity: String,
    pub severity: Severity,
    pub score: u8,
    pub mitre: Vec<String>,
    pub reasons: Vec<String>,
    /// Number of distinct detections rolled into this alert.
    pub count: u64,
    /// Event time of the first and last evidence.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Detections with event time before this roll into this alert; later ones open a new one.
    pub suppress_until: Timestamp,
    /// Bounded sample of evidence event ids.
    pub evidence: Vec<String>,
    pub ticket_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// What the analyst should do: the rule's runbook (a Sigma rule's description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// Known benign causes (a Sigma rule's `falsepositives`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub falsepositives: Vec<String>,
    /// Where the detection comes from (a Sigma rule's `references`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Acknowledged,
    InProgress,
    Closed,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Acknowledged => "acknowledged",
            TicketStatus::InProgress => "in_progress",
            TicketStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<TicketStatus> {
        Some(match s {
            "new" => TicketStatus::New,
            "acknowledged" => TicketStatus::Acknowledged,
            "in_progress" => TicketStatus::InProgress,
            "closed" => TicketStatus::Closed,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    TruePositive,
    FalsePositive,
    Benign,
    Duplicate,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::TruePositive => "true_positive",
            Disposition::FalsePositive => "false_positive",
            Disposition::Benign => "benign",
            Disposition::Duplicate => "duplicate",
        }
    }
}

/// One transition of a ticket, kept forever in its history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<TicketStatus>,
    pub to: TicketStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The analyst's unit of work, opened for each new alert.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub tenant: String,
    pub alert_id: String,
    pub rule: String,
    pub title: String,
    pub entity: String,
    pub severity: Severity,
    pub status: TicketStatus,
    #[serde(default)]
    pub escalated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Event time of the first evidence (MTTD = created_at − source_time).
    pub source_time: Timestamp,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    pub acknowledge_by: Timestamp,
    pub close_by: Timestamp,
    /// Optimistic-concurrency version; every change increments it.
    pub version: u64,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

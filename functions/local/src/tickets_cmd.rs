//! `vigil tickets list|show|ack|respond|assign|escalate|close|reopen`: the tenant's tickets and their
//! transitions through the tickets API (role analyst for the transitions), as a table or JSON.

use serde_json::{json, Map, Value};

use crate::alerts_cmd::encode;
use crate::client::{Api, Output};
use crate::output::{cell, print, table};

#[derive(Clone, Debug, clap::Subcommand)]
pub enum TicketsCommand {
    /// Tickets, the most urgent first (open ones by acknowledge deadline, then closed ones).
    List {
        /// new, acknowledged, in_progress or closed.
        #[arg(long)]
        status: Option<String>,
        /// info, low, medium, high or critical.
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long)]
        rule: Option<String>,
        /// Tickets to read (1-500).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// One ticket with its history.
    Show {
        id: String,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// Acknowledge a new ticket.
    Ack {
        id: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// Record a response action (a note is required).
    Respond {
        id: String,
        #[arg(long)]
        note: String,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// Assign to an analyst.
    Assign {
        id: String,
        assignee: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// Escalate.
    Escalate {
        id: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// Close with a disposition: true_positive, false_positive, benign or duplicate.
    Close {
        id: String,
        #[arg(long)]
        disposition: String,
        #[arg(long)]
        note: Option<String>,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// Reopen a closed ticket (a note is required).
    Reopen {
        id: String,
        #[arg(long)]
        note: String,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
}

impl TicketsCommand {
    /// Whether the command changes a ticket (so its minted token needs role analyst).
    pub fn changes(&self) -> bool {
        !matches!(self, TicketsCommand::List { .. } | TicketsCommand::Show { .. })
    }
}

pub async fn run(api: &Api, cmd: TicketsCommand) -> anyhow::Result<()> {
    let (id, action, body, output) = match cmd {
        TicketsCommand::List { status, severity, assignee, rule, limit, output } => {
            anyhow::ensure!((1..=500).contains(&limit), "--limit must be from 1 to 500");
            let mut query = format!("limit={limit}");
            for (k, v) in [("status", status), ("severity", severity), ("assignee", assignee), ("rule", rule)] {
                if let Some(v) = v {
                    query.push_str(&format!("&{k}={}", encode(&v)));
                }
            }
            let page = api.get(&format!("/v1/tickets?{query}")).await?;
            let mut items = page["items"].as_array().cloned().unwrap_or_default();
            items.sort_by_key(urgency);
            print(output, &Value::Array(items), list_table);
            return Ok(());
        }
        TicketsCommand::Show { id, output } => {
            let ticket = api.get(&format!("/v1/tickets/{}", encode(&id))).await?;
            print(output, &ticket, show);
            return Ok(());
        }
        TicketsCommand::Ack { id, note, output } => (id, "acknowledge", body(&[("note", note)]), output),
        TicketsCommand::Respond { id, note, output } => (id, "respond", body(&[("note", Some(note))]), output),
        TicketsCommand::Assign { id, assignee, note, output } => {
            (id, "assign", body(&[("assignee", Some(assignee)), ("note", note)]), output)
        }
        TicketsCommand::Escalate { id, note, output } => (id, "escalate", body(&[("note", note)]), output),
        TicketsCommand::Close { id, disposition, note, output } => {
            (id, "close", body(&[("disposition", Some(disposition)), ("note", note)]), output)
        }
        TicketsCommand::Reopen { id, note, output } => (id, "reopen", body(&[("note", Some(note))]), output),
    };
    let ticket = api.post(&format!("/v1/tickets/{}/{action}", encode(&id)), &body).await?;
    print(output, &ticket, |t| {
        format!(
            "{} {action}: status {}, escalated {}, version {}\n",
            cell(&t["id"]),
            cell(&t["status"]),
            cell(&t["escalated"]),
            cell(&t["version"])
        )
    });
    Ok(())
}

fn body(fields: &[(&str, Option<String>)]) -> Value {
    let m: Map<String, Value> =
        fields.iter().filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), json!(v)))).collect();
    Value::Object(m)
}

/// Open tickets first, by acknowledge deadline (then close deadline); closed ones last, newest first.
fn urgency(t: &Value) -> (bool, String, String) {
    let closed = t["status"] == "closed";
    let deadline = if t["acknowledged_at"].is_null() { cell(&t["acknowledge_by"]) } else { cell(&t["close_by"]) };
    let newest_first: String = cell(&t["created_at"])
        .chars()
        .map(|c| if c.is_ascii_digit() { (b'9' - c as u8 + b'0') as char } else { c })
        .collect();
    (closed, if closed { String::new() } else { deadline }, newest_first)
}

fn list_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|t| {
                    let due = if t["status"] == "closed" {
                        "-".to_string()
                    } else if t["acknowledged_at"].is_null() {
                        format!("ack by {}", cell(&t["acknowledge_by"]))
                    } else {
                        format!("close by {}", cell(&t["close_by"]))
                    };
                    vec![
                        cell(&t["id"]),
                        cell(&t["severity"]),
                        cell(&t["status"]),
                        if t["escalated"] == true { "yes".into() } else { "-".into() },
                        cell(&t["assignee"]),
                        cell(&t["rule"]),
                        cell(&t["entity"]),
                        due,
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["ID", "SEVERITY", "STATUS", "ESCALATED", "ASSIGNEE", "RULE", "ENTITY", "DUE"], &rows)
}

fn show(t: &Value) -> String {
    let mut out = String::new();
    for (label, key) in [
        ("Ticket", "id"),
        ("Title", "title"),
        ("Alert", "alert_id"),
        ("Rule", "rule"),
        ("Entity", "entity"),
        ("Severity", "severity"),
        ("Status", "status"),
        ("Escalated", "escalated"),
        ("Assignee", "assignee"),
        ("Disposition", "disposition"),
        ("Created", "created_at"),
        ("Ack by", "acknowledge_by"),
        ("Close by", "close_by"),
        ("Version", "version"),
    ] {
        out.push_str(&format!("{label:<13}{}\n", cell(&t[key])));
    }
    out.push_str("History\n");
    let rows: Vec<Vec<String>> = t["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| ["at", "actor", "action", "from", "to", "note"].iter().map(|k| cell(&h[*k])).collect())
        .collect();
    for line in table(&["AT", "ACTOR", "ACTION", "FROM", "TO", "NOTE"], &rows).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

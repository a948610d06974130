//! `vigil alerts list|show`: the tenant's alerts, newest first, as a table or JSON.

use serde_json::Value;

use crate::client::{Api, Output};
use crate::output::{cell, print, table};

#[derive(Clone, Debug, clap::Subcommand)]
pub enum AlertsCommand {
    /// Alerts, newest first.
    List {
        /// Alerts to show (1-500).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only this severity or above (info, low, medium, high, critical).
        #[arg(long)]
        min_severity: Option<String>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
    /// One alert with its reasons, MITRE techniques and evidence.
    Show {
        id: String,
        #[arg(long, short, value_enum, default_value = "table")]
        output: Output,
    },
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn rank(severity: &str) -> Option<usize> {
    SEVERITIES.iter().position(|s| *s == severity)
}

pub async fn run(api: &Api, cmd: AlertsCommand) -> anyhow::Result<()> {
    match cmd {
        AlertsCommand::List { limit, min_severity, rule, output } => {
            anyhow::ensure!((1..=500).contains(&limit), "--limit must be from 1 to 500");
            let floor = match min_severity.as_deref() {
                Some(s) => {
                    Some(rank(s).ok_or_else(|| anyhow::anyhow!("--min-severity must be one of {SEVERITIES:?}"))?)
                }
                None => None,
            };
            let page = api.get(&format!("/v1/alerts?limit={limit}")).await?;
            let items: Vec<Value> = page["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| floor.is_none_or(|f| a["severity"].as_str().and_then(rank).is_some_and(|r| r >= f)))
                .filter(|a| rule.as_deref().is_none_or(|r| a["rule"] == r))
                .collect();
            print(output, &Value::Array(items), |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .map(|a| {
                                ["id", "severity", "rule", "entity", "count", "last_seen", "ticket_id"]
                                    .iter()
                                    .map(|k| cell(&a[*k]))
                                    .collect()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(&["ID", "SEVERITY", "RULE", "ENTITY", "COUNT", "LAST SEEN", "TICKET"], &rows)
            });
        }
        AlertsCommand::Show { id, output } => {
            let alert = api.get(&format!("/v1/alerts/{}", encode(&id))).await?;
            print(output, &alert, show);
        }
    }
    Ok(())
}

fn show(a: &Value) -> String {
    let mut out = String::new();
    for (label, key) in [
        ("Alert", "id"),
        ("Rule", "rule"),
        ("Name", "rule_name"),
        ("Entity", "entity"),
        ("Severity", "severity"),
        ("Score", "score"),
        ("Detections", "count"),
        ("First seen", "first_seen"),
        ("Last seen", "last_seen"),
        ("Ticket", "ticket_id"),
        ("MITRE", "mitre"),
    ] {
        out.push_str(&format!("{label:<12}{}\n", cell(&a[key])));
    }
    out.push_str("Reasons\n");
    for r in a["reasons"].as_array().into_iter().flatten() {
        out.push_str(&format!("  - {}\n", cell(r)));
    }
    out.push_str("Evidence\n");
    for e in a["evidence"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {}\n", cell(e)));
    }
    out
}

/// A path segment, percent-encoded.
pub fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

//! `vigil status`: what an operator checks first — the server's version, the rules loaded, and the depth of
//! every queue and dead-letter queue — read from `/metrics`, so it works against `vigil serve` and a deployed
//! stack alike (role viewer).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::client::{Api, Output};
use crate::output::{print, table};

/// The status of the API at `api`.
pub async fn status(api: &Api) -> anyhow::Result<Value> {
    let page = api.get_text("/metrics").await?;
    let mut queues: BTreeMap<String, f64> = BTreeMap::new();
    let (mut rules, mut server_version) = (None, None);
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        if let Some(labels) = series.strip_prefix("vigil_queue_messages{") {
            if let Some(q) = label(labels, "queue") {
                queues.insert(q, value);
            }
        } else if series == "vigil_rules_loaded" {
            rules = Some(value as u64);
        } else if let Some(labels) = series.strip_prefix("vigil_build_info{") {
            server_version = label(labels, "version");
        }
    }
    Ok(json!({
        "api": api.base(),
        "server_version": server_version,
        "client_version": env!("CARGO_PKG_VERSION"),
        "rules_loaded": rules,
        "queues": queues.iter().filter(|(q, _)| !q.ends_with("-dlq")).map(|(q, v)| (q.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "dead_letters": queues.iter().filter(|(q, _)| q.ends_with("-dlq")).map(|(q, v)| (q.trim_end_matches("-dlq").to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
    }))
}

/// A depth as a whole number (`-` when unknown).
fn count(v: &Value) -> String {
    v.as_f64().map(|n| format!("{n:.0}")).unwrap_or_else(|| "-".into())
}

/// A label's value in `name="value",…}`.
fn label(labels: &str, name: &str) -> Option<String> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(rest[..rest.find('"')?].to_string())
}

pub async fn run(api: &Api, output: Output) -> anyhow::Result<()> {
    let s = status(api).await?;
    print(output, &s, |s| {
        let mut out = format!(
            "API           {}\nserver        vigil {}\nclient        vigil {}\nrules loaded  {}\n\n",
            s["api"].as_str().unwrap_or("-"),
            s["server_version"].as_str().unwrap_or("unknown"),
            s["client_version"].as_str().unwrap_or("-"),
            s["rules_loaded"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "unknown".into()),
        );
        let rows: Vec<Vec<String>> = s["queues"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(q, v)| vec![q.clone(), count(v), count(&s["dead_letters"][q])])
            .collect();
        out.push_str(&table(&["QUEUE", "MESSAGES", "DEAD LETTERS"], &rows));
        out
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_from_a_series() {
        assert_eq!(label(r#"queue="events-dlq"}"#, "queue").as_deref(), Some("events-dlq"));
        assert_eq!(label(r#"version="0.1.0"}"#, "queue"), None);
    }
}

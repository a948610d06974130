//! Outbound webhooks for new alerts: generic JSON or Slack-compatible, HMAC-SHA256 signed, retried with backoff.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{WebhookConfig, WebhookFormat};
use crate::model::{Alert, Ticket};

/// Attempts per webhook, and the pause before each retry.
const BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];

pub struct Notifier {
    client: reqwest::Client,
    hooks: Vec<WebhookConfig>,
}

/// `X-Vigil-Signature: sha256=<hex>` over `<timestamp>.<body>`; receivers check it and reject old timestamps.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body a webhook receives.
pub fn payload(format: WebhookFormat, alert: &Alert, ticket: &Ticket) -> serde_json::Value {
    match format {
        WebhookFormat::Json => serde_json::json!({ "type": "alert.opened", "alert": alert, "ticket": ticket }),
        WebhookFormat::Slack => serde_json::json!({
            "text": format!(
                ":rotating_light: [{}] {} — {} (score {}, ticket {})\n{}",
                alert.severity, alert.rule_name, alert.entity, alert.score, ticket.id, alert.reasons.join(" ")
            )
        }),
    }
}

impl Notifier {
    pub fn new(hooks: Vec<WebhookConfig>) -> Option<Notifier> {
        if hooks.is_empty() {
            return None;
        }
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
        Some(Notifier { client, hooks })
    }

    /// Delivers to every webhook; returns how many accepted it. Failures are logged (without secrets or URLs'
    /// query strings) and never propagate: the alert is already stored.
    pub async fn notify(&self, alert: &Alert, ticket: &Ticket) -> usize {
        let mut delivered = 0;
        for hook in &self.hooks {
            let body = match serde_json::to_vec(&payload(hook.format, alert, ticket)) {
                Ok(b) => b,
                Err(_) => continue,
            };
            if self.deliver(hook, &body).await {
                delivered += 1;
            }
        }
        delivered
    }

    async fn deliver(&self, hook: &WebhookConfig, body: &[u8]) -> bool {
        let target = hook.url.split('?').next().unwrap_or_default().to_string();
        for attempt in 0..=BACKOFF.len() {
            let ts = chrono::Utc::now().timestamp();
            let mut req = self
                .client
                .post(&hook.url)
                .header("content-type", "application/json")
                .header("x-vigil-timestamp", ts.to_string())
                .body(body.to_vec());
            if let Some(secret) = &hook.secret {
                req = req.header("x-vigil-signature", signature(secret, ts, body));
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    tracing::warn!(webhook = %target, status = r.status().as_u16(), "webhook refused the alert");
                    return false;
                }
                Ok(r) => tracing::warn!(webhook = %target, status = r.status().as_u16(), attempt, "webhook failed"),
                Err(e) => tracing::warn!(webhook = %target, error = %e.without_url(), attempt, "webhook unreachable"),
            }
            if let Some(pause) = BACKOFF.get(attempt) {
                tokio::time::sleep(*pause).await;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Known answer computed independently: printf '1700000000.{}' | openssl dgst -sha256 -hmac k
        let s = signature("k", 1_700_000_000, b"{}");
        assert_eq!(s, "sha256=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146");
        assert_ne!(s, signature("k", 1_700_000_001, b"{}"));
        assert_ne!(s, signature("k2", 1_700_000_000, b"{}"));
    }
}

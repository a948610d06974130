//! The alert function: dedups detections into alerts by (tenant, rule, entity), opens a ticket for each new
//! alert, and notifies webhooks. The store makes the open-or-roll-up decision atomically.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::clock::Clock;
use crate::config::SlaPolicy;
use crate::detect::DetectionEngine;
use crate::model::{Alert, Detection, HistoryEntry, Ticket, TicketStatus, Timestamp};
use crate::notify::Notifier;
use crate::ports::{AlertCandidate, AlertStore, RecordOutcome, ALERT_EVIDENCE_CAP};
use crate::score::{DetectionBatch, InboundMessage, MessageError};

pub struct Alerter<A: ?Sized> {
    pub store: Arc<A>,
    pub engine: Arc<DetectionEngine>,
    pub sla: SlaPolicy,
    pub notifier: Option<Arc<Notifier>>,
    pub clock: Arc<dyn Clock>,
}

/// Ids sort by the detection's event time, so listing by id is newest first; the hash makes them unique and
/// stable for the same detection.
fn ids_for(d: &Detection) -> (String, String) {
    let mut h = Sha256::new();
    for part in [d.tenant.as_str(), d.rule.as_str(), d.entity.as_str(), d.id.as_str()] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let suffix = hex::encode(&h.finalize()[..6]);
    let ms = d.last_seen.timestamp_millis().max(0);
    (format!("A{ms:013}{suffix}"), format!("T{ms:013}{suffix}"))
}

fn chrono_dur(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(3650))
}

/// The alert and ticket a detection opens when no alert for its (tenant, rule, entity) is open.
pub fn candidate(d: &Detection, suppression: std::time::Duration, sla: &SlaPolicy, now: Timestamp) -> AlertCandidate {
    let (alert_id, ticket_id) = ids_for(d);
    let alert = Alert {
        id: alert_id.clone(),
        tenant: d.tenant.clone(),
        rule: d.rule.clone(),
        rule_name: d.rule_name.clone(),
        entity: d.entity.clone(),
        severity: d.severity,
        score: d.score,
        mitre: d.mitre.clone(),
        reasons: d.reasons.clone(),
        count: 1,
        first_seen: d.first_seen,
        last_seen: d.last_seen,
        suppress_until: d.last_seen + chrono_dur(suppression),
        evidence: d.evidence.iter().take(ALERT_EVIDENCE_CAP).cloned().collect(),
        ticket_id: ticket_id.clone(),
        created_at: now,
        updated_at: now,
    };
    let ticket = Ticket {
        id: ticket_id,
        tenant: d.tenant.clone(),
        alert_id,
        rule: d.rule.clone(),
        title: format!("{}: {}", d.rule_name, d.entity),
        entity: d.entity.clone(),
        severity: d.severity,
        status: TicketStatus::New,
        escalated: false,
        assignee: None,
        disposition: None,
        source_time: d.first_seen,
        created_at: now,
        acknowledged_at: None,
        responded_at: None,
        closed_at: None,
        acknowledge_by: now + chrono_dur(sla.acknowledge_within(d.severity)),
        close_by: now + chrono_dur(sla.close_within(d.severity)),
        version: 1,
        history: vec![HistoryEntry {
            at: now,
            actor: "vigil".into(),
            action: "open".into(),
            from: None,
            to: TicketStatus::New,
            note: Some(d.reasons.join(" ")),
        }],
    };
    AlertCandidate { detection: d.clone(), alert, ticket }
}

impl<A: AlertStore + ?Sized> Alerter<A> {
    pub async fn handle_message(&self, body: &str) -> Result<Vec<RecordOutcome>, MessageError> {
        let batch: DetectionBatch = serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let now = self.clock.now();
        let mut outcomes = Vec::with_capacity(batch.detections.len());
        for d in &batch.detections {
            if !crate::auth::valid_tenant(&d.tenant) {
                return Err(MessageError::Malformed(format!("detection {:?} has no valid tenant", d.id)));
            }
            let c = candidate(d, self.engine.suppression(&d.rule), &self.sla, now);
            let outcome = self.store.record(&c).await?;
            if let (RecordOutcome::Opened { .. }, Some(n)) = (&outcome, &self.notifier) {
                // The alert and ticket are stored; a notification failure is logged and never loses them.
                n.notify(&c.alert, &c.ticket).await;
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Handles a batch and returns the ids of the messages that failed (SQS partial batch failure).
    pub async fn handle_batch(&self, messages: &[InboundMessage]) -> Vec<String> {
        let mut failed = Vec::new();
        for m in messages {
            let span = tracing::info_span!("alert", message_id = %m.id);
            match self.handle_message(&m.body).instrument(span).await {
                Ok(outcomes) => tracing::debug!(detections = outcomes.len(), "recorded"),
                Err(e) => {
                    tracing::warn!(error = %e, "message failed; it will be retried");
                    failed.push(m.id.clone());
                }
            }
        }
        failed
    }
}

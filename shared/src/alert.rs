//! The alert function: dedups detections into alerts by (tenant, rule, entity), opens a ticket for each new
//! alert, and notifies webhooks. The store makes the open-or-roll-up decision atomically.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::aggregates::{coalesce, count, observe, LATENCY_BUCKETS};
use crate::clock::Clock;
use crate::config::SlaPolicy;
use crate::detect::DetectionEngine;
use crate::messages::{DetectionBatch, InboundMessage, MessageError};
use crate::model::{Alert, Detection, HistoryEntry, Ticket, TicketStatus, Timestamp};
use crate::notify::Notifier;
use crate::ports::{
    AggregateWrite, Aggregates, AlertCandidate, AlertStore, RecordOutcome, Sample, ALERT_EVIDENCE_CAP, GLOBAL_TENANT,
};
use crate::score::LATENCY_METRIC;

/// Alerts opened, after dedup (documented metric).
pub const ALERTS_METRIC: &str = "vigil_alerts_total";
/// Distinct detections (documented metric).
pub const DETECTIONS_METRIC: &str = "vigil_detections_total";
/// The sample kind of time to detect: ticket `created_at − source_time`, seconds.
pub const TTD_SAMPLE: &str = "ttd";

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

/// What the store applies when the candidate opens a new alert: `vigil_alerts_total{rule,severity}` and the
/// `ttd` sample (id = ticket id; labels severity, rule).
pub fn open_writes(d: &Detection, ticket: &Ticket) -> Vec<AggregateWrite> {
    let severity = d.severity.as_str();
    let labels = [("severity", severity), ("rule", d.rule.as_str())];
    vec![
        count(ALERTS_METRIC, &[("rule", &d.rule), ("severity", severity)], ticket.created_at, 1),
        AggregateWrite::Sample(Sample {
            kind: TTD_SAMPLE.to_string(),
            id: ticket.id.clone(),
            at: ticket.created_at,
            value: seconds_between(ticket.source_time, ticket.created_at),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }),
    ]
}

/// What the store applies for every detection it records for the first time (opened or rolled up):
/// `vigil_detections_total{rule,severity}`.
pub fn detection_writes(d: &Detection, now: Timestamp) -> Vec<AggregateWrite> {
    vec![count(DETECTIONS_METRIC, &[("rule", &d.rule), ("severity", d.severity.as_str())], now, 1)]
}

/// The tenant-less `scored_to_alerted` latency of a detection recorded now.
pub fn latency_writes(d: &Detection, now: Timestamp) -> Vec<AggregateWrite> {
    observe(
        LATENCY_METRIC,
        &[("stage", "scored_to_alerted")],
        seconds_between(d.detected_at, now),
        &LATENCY_BUCKETS,
        now,
    )
}

pub struct Alerter<A: ?Sized> {
    pub store: Arc<A>,
    pub engine: Arc<DetectionEngine>,
    pub sla: SlaPolicy,
    pub notifier: Option<Arc<Notifier>>,
    pub clock: Arc<dyn Clock>,
    /// For the tenant-less `scored_to_alerted` latency (the per-tenant counters go with the record).
    pub aggregates: Arc<dyn Aggregates>,
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
        runbook: None,
        falsepositives: vec![],
        references: vec![],
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
    let on_open = open_writes(d, &ticket);
    let on_detection = detection_writes(d, now);
    AlertCandidate { detection: d.clone(), alert, ticket, on_open, on_detection }
}

/// What the rule tells the analyst: its runbook and, for a Sigma rule, its known false positives and references.
pub fn annotate(alert: &mut Alert, rule: &crate::detect::Rule) {
    alert.runbook = rule.runbook.clone();
    alert.falsepositives = rule.sigma.as_ref().map(|s| s.falsepositives.clone()).unwrap_or_default();
    alert.references = rule.sigma.as_ref().map(|s| s.references.clone()).unwrap_or_default();
}

impl<A: AlertStore + ?Sized> Alerter<A> {
    pub async fn handle_message(&self, body: &str) -> Result<Vec<RecordOutcome>, MessageError> {
        let batch: DetectionBatch = serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let now = self.clock.now();
        if let Some(bad) = batch.detections.iter().find(|d| !crate::auth::valid_tenant(&d.tenant)) {
            return Err(MessageError::Malformed(format!("detection {:?} has no valid tenant", bad.id)));
        }
        let mut outcomes = Vec::with_capacity(batch.detections.len());
        let mut latency = Vec::new();
        let mut failure = None;
        for d in &batch.detections {
            let mut c = candidate(d, self.engine.suppression(&d.rule), &self.sla, now);
            if let Some(rule) = self.engine.rule(&d.rule) {
                annotate(&mut c.alert, rule);
            }
            let outcome = match self.store.record(&c).await {
                Ok(o) => o,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if matches!(outcome, RecordOutcome::Opened { .. } | RecordOutcome::RolledUp { .. }) {
                // Observed once per detection: a redelivered one is AlreadyRecorded.
                latency.extend(latency_writes(d, now));
            }
            if let (RecordOutcome::Opened { .. }, Some(n)) = (&outcome, &self.notifier) {
                // The alert and ticket are stored; a notification failure is logged and never loses them.
                n.notify(&c.alert, &c.ticket).await;
            }
            outcomes.push(outcome);
        }
        // The latencies of the detections recorded so far are written even when a later one failed: the
        // redelivery finds those recorded and does not observe them again.
        if !latency.is_empty() {
            self.aggregates.apply(GLOBAL_TENANT, &coalesce(latency)).await?;
        }
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(outcomes),
        }
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::model::Severity;

    fn detection(now: Timestamp) -> Detection {
        Detection {
            id: "D1".into(),
            tenant: "acme".into(),
            rule: "ssh_brute_force".into(),
            rule_name: "SSH brute force".into(),
            entity: "src_ip=203.0.113.7".into(),
            window_seconds: 60,
            count: 20,
            first_seen: now - Duration::seconds(90),
            last_seen: now - Duration::seconds(30),
            evidence: vec!["e1".into()],
            score: 70,
            severity: Severity::High,
            mitre: vec![],
            reasons: vec![],
            detected_at: now - Duration::milliseconds(1500),
        }
    }

    #[test]
    fn the_candidate_carries_its_counts_and_time_to_detect() {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let d = detection(now);
        let c = candidate(&d, std::time::Duration::from_secs(600), &SlaPolicy::default(), now);
        let names: Vec<String> = c
            .on_open
            .iter()
            .chain(&c.on_detection)
            .map(|w| match w {
                AggregateWrite::Count { name, delta, .. } => format!("{name}+{delta}"),
                AggregateWrite::Sample(s) => format!("{}:{}={}:{:?}", s.kind, s.id, s.value, s.labels.get("severity")),
            })
            .collect();
        assert_eq!(
            names,
            vec![
                r#"vigil_alerts_total{rule="ssh_brute_force",severity="high"}+1"#.to_string(),
                format!("ttd:{}=90:Some(\"high\")", c.ticket.id),
                r#"vigil_detections_total{rule="ssh_brute_force",severity="high"}+1"#.to_string(),
            ]
        );
        assert_eq!((c.alert.runbook.as_ref(), c.alert.falsepositives.len()), (None, 0));
        let l = latency_writes(&d, now);
        assert!(l.iter().any(|w| matches!(w, AggregateWrite::Count { name, delta: 1500, .. } if name == r#"vigil_pipeline_latency_seconds_sum_ms{stage="scored_to_alerted"}"#)));
        assert!(l.iter().any(|w| matches!(w, AggregateWrite::Count { name, .. } if name == r#"vigil_pipeline_latency_seconds_bucket{le="2.5",stage="scored_to_alerted"}"#)));
    }

    #[test]
    fn an_alert_shows_what_the_rule_tells_the_analyst() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = "title: Scanner\nid: 2f0d6a1e-0000-4000-8000-00000000abcd\ndescription: Block the scanner.\n\
                    references:\n    - https://example.org/scanners\nlogsource:\n    category: webserver\n\
                    detection:\n    sel:\n        cs-user-agent|contains: 'Nikto'\n    condition: sel\n\
                    falsepositives:\n    - Our own weekly scan\nlevel: medium\n";
        std::fs::write(dir.path().join("scanner.yml"), yaml).unwrap();
        let rules = format!("[sigma]\npaths = [{:?}]\n", dir.path().join("scanner.yml").display().to_string());
        let engine = DetectionEngine::builtin().with_overrides(&rules, "rules.toml").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let mut alert =
            candidate(&detection(now), std::time::Duration::from_secs(60), &SlaPolicy::default(), now).alert;
        annotate(&mut alert, engine.rule("sigma-2f0d6a1e-0000-4000-8000-00000000abcd").unwrap());
        assert_eq!(alert.runbook.as_deref(), Some("Block the scanner."));
        assert_eq!(alert.falsepositives, vec!["Our own weekly scan".to_string()]);
        assert_eq!(alert.references, vec!["https://example.org/scanners".to_string()]);
        annotate(&mut alert, engine.rule("ssh_brute_force").unwrap());
        assert!(alert.runbook.as_deref().unwrap().contains("fail2ban"), "TOML rules' runbooks reach alerts too");
        assert!(alert.falsepositives.is_empty() && alert.references.is_empty());
    }
}

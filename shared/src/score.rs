//! The score function: normalises queued events, runs the detection engine, stores every scored event once,
//! and queues the detections. Safe to run twice on the same message: every step is idempotent.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::clock::Clock;
use crate::detect::DetectionEngine;
use crate::error::StoreError;
use crate::model::{Detection, EventBatch};
use crate::pack::pack;
use crate::parse::normalize;
use crate::ports::{EventStore, QueueSender, WindowStore, MAX_QUEUE_MESSAGE_BYTES};

/// One queue message as a consumer sees it, whatever the transport (SQS event, embedded queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundMessage {
    pub id: String,
    pub body: String,
}

/// What the detections queue carries.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DetectionBatch {
    pub detections: Vec<Detection>,
}

/// Why a message could not be handled. Either way it is reported as failed: transient failures succeed on a
/// later delivery, malformed messages end in the dead-letter queue after the queue's maximum receives.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScoreSummary {
    pub events: usize,
    pub new_events: usize,
    pub detections: usize,
}

pub struct Scorer<E: ?Sized, W: ?Sized, Q: ?Sized> {
    pub events: Arc<E>,
    pub windows: Arc<W>,
    pub detections: Arc<Q>,
    pub engine: Arc<DetectionEngine>,
    pub clock: Arc<dyn Clock>,
    pub retention: std::time::Duration,
}

impl<E, W, Q> Scorer<E, W, Q>
where
    E: EventStore + ?Sized,
    W: WindowStore + ?Sized,
    Q: QueueSender + ?Sized,
{
    /// Handles one events-queue message.
    pub async fn handle_message(&self, body: &str) -> Result<ScoreSummary, MessageError> {
        let batch: EventBatch = serde_json::from_str(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
        let mut events = batch.events;
        if let Some(bad) = events.iter().find(|e| !crate::auth::valid_tenant(&e.tenant) || e.id.is_empty()) {
            return Err(MessageError::Malformed(format!("event {:?} has no valid tenant or id", bad.id)));
        }
        for e in events.iter_mut() {
            normalize(e);
        }
        let now = self.clock.now();
        let detections = self.engine.evaluate(&*self.windows, &mut events, now).await?;
        let expires_at = now + chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::days(30));
        let inserted = self.events.put_new(&events, expires_at).await?;
        // Detections are sent even when every event was stored before: a retry must finish what a failed attempt
        // began, and the alert stage recognises detection ids it has seen.
        if !detections.is_empty() {
            let bodies = pack(&detections, "detections", MAX_QUEUE_MESSAGE_BYTES)
                .map_err(|i| MessageError::Malformed(format!("detection {i} does not fit in a queue message")))?;
            self.detections.send(&bodies).await?;
        }
        Ok(ScoreSummary {
            events: events.len(),
            new_events: inserted.iter().filter(|n| **n).count(),
            detections: detections.len(),
        })
    }

    /// Handles a batch and returns the ids of the messages that failed (SQS partial batch failure).
    pub async fn handle_batch(&self, messages: &[InboundMessage]) -> Vec<String> {
        let mut failed = Vec::new();
        for m in messages {
            let span = tracing::info_span!("score", message_id = %m.id);
            match self.handle_message(&m.body).instrument(span).await {
                Ok(s) => tracing::debug!(events = s.events, new = s.new_events, detections = s.detections, "scored"),
                Err(e) => {
                    tracing::warn!(error = %e, "message failed; it will be retried");
                    failed.push(m.id.clone());
                }
            }
        }
        failed
    }
}

/// The built-in rules plus the user's rules file (`VIGIL_RULES_FILE`), if any. Errors name the file and rule.
pub fn load_engine(config: &crate::config::Config) -> Result<DetectionEngine, String> {
    let engine = DetectionEngine::builtin();
    match &config.rules_path {
        None => Ok(engine),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            engine.with_overrides(&text, &path.display().to_string()).map_err(|e| e.to_string())
        }
    }
}

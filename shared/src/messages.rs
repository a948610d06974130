//! What the queues between the stages carry, and why a consumer may fail to handle a message. Shared by the
//! score and alert handlers and by every transport that feeds them (SQS events in Lambda, `vigil serve`).

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::model::Detection;

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

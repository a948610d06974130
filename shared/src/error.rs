//! Errors of the ports: callers decide between retrying and giving up from the kind alone.

/// What went wrong talking to a backend (DynamoDB, SQS, the embedded database).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, I/O: the same call may succeed later (SQS redelivers, senders retry on 5xx).
    #[error("backend unavailable: {0}")]
    Transient(String),
    /// The request itself is wrong (missing table, bad item): retrying will not help.
    #[error("backend rejected the request: {0}")]
    Permanent(String),
    /// An optimistic-concurrency or uniqueness condition failed.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

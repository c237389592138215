use buzzer_store::StoreError;
use buzzer_types::Invalid;

/// Everything an engine operation can answer besides success. The server maps each variant to
/// one HTTP status: `Invalid` 422, `NotFound` 404, `Conflict`/`LeaseLost` 409,
/// `Unavailable` 503, `Internal` 500.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// What was not found, e.g. "job 0000000000001" or "queue emails".
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the lease on this job was lost: it expired and was handed to another worker, or the job was finished or cancelled"
    )]
    LeaseLost,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(#[source] StoreError),
}

impl EngineError {
    /// Turns a store error about one thing into an engine error that names it.
    pub(crate) fn from_store(e: StoreError, what: impl FnOnce() -> String) -> Self {
        match e {
            StoreError::NotFound => EngineError::NotFound(what()),
            other => other.into(),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => EngineError::NotFound("resource".into()),
            StoreError::Conflict(m) => EngineError::Conflict(m),
            StoreError::LeaseLost => EngineError::LeaseLost,
            StoreError::Unavailable(m) => EngineError::Unavailable(m),
            e @ StoreError::Backend(_) => EngineError::Internal(e),
        }
    }
}

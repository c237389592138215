/// What a store call can fail with. Callers map these to HTTP statuses:
/// `NotFound` 404, `Conflict` and `LeaseLost` 409, `Unavailable` 503, `Backend` 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The operation does not apply to the job's current state; the message says why.
    #[error("{0}")]
    Conflict(String),
    /// The lease token is stale or the job is no longer running: nothing was changed.
    #[error("the lease on this job was lost (stale lease_token or the job is no longer running)")]
    LeaseLost,
    /// The database cannot be reached or is shutting down; the caller may try again.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

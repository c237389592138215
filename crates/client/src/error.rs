use buzzer_engine::EngineError;
use buzzer_types::{ErrorEntry, JobId};

/// Everything a Buzzer call can fail with, the same whether the client is embedded or remote,
/// so code that matches on it moves between the two unchanged.
///
/// ```
/// # async fn demo(buzzer: buzzer::Buzzer, id: buzzer::JobId) {
/// use buzzer::Error;
///
/// match buzzer.handle::<Resize>(id).wait().await {
///     Ok(thumbnail) => println!("done: {thumbnail}"),
///     Err(Error::JobDead { errors, .. }) => eprintln!("gave up after {} attempts", errors.len()),
///     Err(Error::NotFound(what)) => eprintln!("{what} is gone (pruned?)"),
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Resize;
/// # impl buzzer::Job for Resize { const QUEUE: &'static str = "resize"; type Output = String; }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// What was not found, e.g. "job 0000000000001".
    #[error("{0} not found")]
    NotFound(String),
    /// A worker's lease on a job is gone: it expired and the job went to another worker, or
    /// the job was finished or cancelled. Nothing was changed.
    #[error("the lease on this job was lost (it expired, or the job was finished or cancelled)")]
    LeaseLost,
    /// The job's state does not allow the operation, e.g. cancelling a finished job.
    #[error("{0}")]
    Conflict(String),
    /// A request field breaks a rule; `field` names it (`priority`, `jobs[3].tags[0]`, …).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The store or server cannot take the request now (shutting down, overloaded); try again.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The server wants a valid API key (`Buzzer::connect_with`).
    #[error("the server refused the API key (or none was given)")]
    Unauthorized,
    /// The job ran out of attempts or was failed as fatal; `errors` holds one entry per failed
    /// attempt, oldest first.
    #[error("job {id} is dead: {}", last_message(.errors))]
    JobDead { id: JobId, errors: Vec<ErrorEntry> },
    /// The job was cancelled before it finished.
    #[error("job {id} was cancelled")]
    JobCancelled { id: JobId },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the Buzzer server: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A payload, result or answer did not (de)serialize as its type.
    #[error("serialization: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The server answered with a status not listed above (a 500, or a proxy's 502).
    #[error("server error {status}: {detail}")]
    Server { status: u16, detail: String },
    /// The embedded store failed: a damaged or foreign database, a failed migration, a
    /// database error.
    #[error("store error: {0}")]
    Store(String),
}

fn last_message(errors: &[ErrorEntry]) -> &str {
    errors
        .last()
        .map_or("no error was recorded", |e| e.message.as_str())
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(i) => Error::Invalid {
                field: i.field,
                message: i.message,
            },
            EngineError::NotFound(what) => Error::NotFound(what),
            EngineError::Conflict(m) => Error::Conflict(m),
            EngineError::LeaseLost => Error::LeaseLost,
            EngineError::Unavailable(m) => Error::Unavailable(m),
            EngineError::Internal(cause) => Error::Store(cause.to_string()),
        }
    }
}

impl From<buzzer_store::StoreError> for Error {
    fn from(e: buzzer_store::StoreError) -> Self {
        EngineError::from(e).into()
    }
}

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn closed() -> Self {
        Error::Unavailable("this Buzzer has been shut down".into())
    }
}

impl From<buzzer_types::ParseJobIdError> for Error {
    fn from(e: buzzer_types::ParseJobIdError) -> Self {
        Error::invalid("id", e.to_string())
    }
}

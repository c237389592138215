use std::{fmt, time::Duration};

/// Why a handler did not produce an output, and what should happen to the job.
///
/// | made with | the job becomes |
/// |---|---|
/// | [`retry`](JobError::retry), or `?` on any error | `retryable` after its backoff (or `dead` when out of attempts) |
/// | [`retry_in`](JobError::retry_in) | `retryable`, due after the given delay |
/// | [`fatal`](JobError::fatal) | `dead` at once, whatever attempts are left |
/// | [`cancelled`](JobError::cancelled) | `cancelled` |
///
/// Any [`std::error::Error`] converts into a retry, so `?` works in handlers; like
/// `anyhow::Error`, `JobError` itself is not a `std::error::Error`, which is what makes that
/// conversion possible.
///
/// ```
/// use std::time::Duration;
/// use buzzer::{JobContext, JobError};
///
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Fetch { url: String }
/// # impl buzzer::Job for Fetch { const QUEUE: &'static str = "fetch"; type Output = usize; }
/// async fn fetch(_ctx: JobContext, job: Fetch) -> Result<usize, JobError> {
///     if !job.url.starts_with("https://") {
///         return Err(JobError::fatal("only https URLs are fetched")); // retrying cannot help
///     }
///     let port: u16 = "443".parse()?; // any error: retried with backoff
///     if port == 0 {
///         return Err(JobError::retry_in("rate limited", Duration::from_secs(30)));
///     }
///     Ok(job.url.len())
/// }
/// ```
pub struct JobError {
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Retry,
    RetryIn(Duration),
    Fatal,
    Cancelled,
}

impl JobError {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        JobError {
            kind,
            message: message.into(),
        }
    }

    /// A failed attempt: the job is retried after its backoff while attempts remain.
    pub fn retry(message: impl Into<String>) -> Self {
        JobError::new(Kind::Retry, message)
    }

    /// A failed attempt to retry after `delay` instead of the backoff (a rate limit's
    /// `Retry-After`, say).
    pub fn retry_in(message: impl Into<String>, delay: Duration) -> Self {
        JobError::new(Kind::RetryIn(delay), message)
    }

    /// A failure that retrying cannot fix: the job goes to the dead-letter queue at once.
    pub fn fatal(message: impl Into<String>) -> Self {
        JobError::new(Kind::Fatal, message)
    }

    /// The handler stopped because the job was cancelled
    /// ([`JobContext::cancelled`](crate::JobContext::cancelled)): the job becomes `cancelled`.
    pub fn cancelled() -> Self {
        JobError::new(Kind::Cancelled, "cancelled")
    }

    /// The message recorded in the job's `errors`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// True for [`JobError::fatal`].
    pub fn is_fatal(&self) -> bool {
        self.kind == Kind::Fatal
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

/// Any error is a retry; its message carries the chain of causes, e.g.
/// `"request failed: connection refused"`.
impl<E: std::error::Error> From<E> for JobError {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            // Some errors repeat their source in their own message.
            let text = cause.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        JobError::retry(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn question_mark_retries_with_the_whole_chain() {
        let e: JobError = Outer(std::io::Error::other("connection refused")).into();
        assert_eq!(e.kind, Kind::Retry);
        assert_eq!(e.message(), "request failed: connection refused");
        let parse: JobError = "x".parse::<u8>().unwrap_err().into();
        assert_eq!(parse.message(), "invalid digit found in string");
    }
}

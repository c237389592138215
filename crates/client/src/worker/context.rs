use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use buzzer_types::{HeartbeatRequest, JobId, RawValue};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::{Buzzer, Error, job::to_raw};

/// What a handler knows about the attempt it runs, and its line back to Buzzer: progress
/// reports and cancellation. Cheap to clone.
///
/// ```
/// use buzzer::{JobContext, JobError};
///
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Import { rows: u32 }
/// # impl buzzer::Job for Import { const QUEUE: &'static str = "imports"; type Output = u32; }
/// async fn import(ctx: JobContext, job: Import) -> Result<u32, JobError> {
///     for row in 0..job.rows {
///         if ctx.is_cancelled() {
///             return Err(JobError::cancelled());
///         }
///         if row % 1000 == 0 {
///             ctx.progress(serde_json::json!({ "row": row, "of": job.rows })).await?;
///         }
///         // … import the row …
///     }
///     Ok(job.rows)
/// }
/// ```
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    buzzer: Buzzer,
    id: JobId,
    queue: String,
    attempt: u32,
    lease_token: String,
    lease_ms: u64,
    metadata: Map<String, Value>,
    traceparent: Option<String>,
    /// Cancelled when a heartbeat answers `cancel_requested`, or the lease is lost.
    cancel: CancellationToken,
    lease_lost: AtomicBool,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.inner.id)
            .field("queue", &self.inner.queue)
            .field("attempt", &self.inner.attempt)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// The fetched job's facts a context is made of.
pub(crate) struct Attempt {
    pub id: JobId,
    pub queue: String,
    pub attempt: i32,
    pub lease_token: String,
    pub lease_ms: u64,
    pub metadata: Map<String, Value>,
    /// The job's trace with the attempt's span as the parent (see `trace.rs`).
    pub traceparent: Option<String>,
}

impl JobContext {
    pub(crate) fn new(buzzer: Buzzer, attempt: Attempt) -> Self {
        JobContext {
            inner: Arc::new(Inner {
                buzzer,
                id: attempt.id,
                queue: attempt.queue,
                attempt: u32::try_from(attempt.attempt).unwrap_or(0),
                lease_token: attempt.lease_token,
                lease_ms: attempt.lease_ms,
                metadata: attempt.metadata,
                traceparent: attempt.traceparent,
                cancel: CancellationToken::new(),
                lease_lost: AtomicBool::new(false),
            }),
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.inner.id
    }

    /// The queue the job came from.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// Which attempt this is: 1 on the first run.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The job's metadata (for a pub/sub delivery, its `topic` and `event_id`).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.inner.metadata
    }

    /// The W3C `traceparent` to send onward (e.g. on HTTP calls the handler makes) when the
    /// job was enqueued with one: the producer's trace id, this attempt's span as the parent.
    /// Jobs the handler enqueues carry it on their own.
    pub fn traceparent(&self) -> Option<&str> {
        self.inner.traceparent.as_deref()
    }

    /// A client of the same Buzzer, e.g. to enqueue follow-up jobs.
    pub fn buzzer(&self) -> &Buzzer {
        &self.inner.buzzer
    }

    /// Records `progress` on the job (shown with it, replacing the last report) and extends
    /// the lease. The answer also brings news of a cancellation.
    ///
    /// Fails with [`Error::LeaseLost`] when the job is no longer this worker's: stop working
    /// on it, its result will not count.
    pub async fn progress(&self, progress: impl Serialize) -> Result<(), Error> {
        self.beat(Some(to_raw(&progress)?)).await
    }

    /// True once cancellation of the job was requested (seen on a heartbeat or progress
    /// report), or the worker lost the job's lease. A handler that sees it should stop and
    /// return [`JobError::cancelled`](crate::JobError::cancelled).
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Resolves once [`is_cancelled`](Self::is_cancelled) turns true: the worker's automatic
    /// heartbeats (every third of the lease) carry the news.
    ///
    /// ```
    /// # use buzzer::{JobContext, JobError};
    /// # async fn long_call() -> u64 { 1 }
    /// async fn handler(ctx: JobContext) -> Result<u64, JobError> {
    ///     tokio::select! {
    ///         n = long_call() => Ok(n),
    ///         () = ctx.cancelled() => Err(JobError::cancelled()),
    ///     }
    /// }
    /// ```
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await;
    }

    pub(crate) fn lease_lost(&self) -> bool {
        self.inner.lease_lost.load(Ordering::Acquire)
    }

    pub(crate) fn lease_token(&self) -> &str {
        &self.inner.lease_token
    }

    /// One heartbeat: extends the lease, records progress, learns of a cancellation.
    pub(crate) async fn beat(&self, progress: Option<Box<RawValue>>) -> Result<(), Error> {
        let inner = &self.inner;
        let req = HeartbeatRequest {
            lease_token: inner.lease_token.clone(),
            lease_ms: Some(inner.lease_ms),
            progress,
        };
        match inner.buzzer.transport().heartbeat(inner.id, req).await {
            Ok(answer) => {
                if answer.cancel_requested {
                    inner.cancel.cancel();
                }
                Ok(())
            }
            Err(Error::LeaseLost) => {
                inner.lease_lost.store(true, Ordering::Release);
                inner.cancel.cancel();
                Err(Error::LeaseLost)
            }
            Err(e) => Err(e),
        }
    }
}

use std::{marker::PhantomData, time::Duration};

use buzzer_types::JobId;
use tokio::time::Instant;

use crate::{Buzzer, Error, Job, JobRecord, job::settle};

/// How long one wait request lasts before [`JobHandle::wait`] asks again.
const WAIT_CHUNK: Duration = Duration::from_secs(30);

/// A job of type `J` that was enqueued: follow it, wait for its output, or cancel it.
///
/// Cheap to clone; it holds the job's id and a client. Make one from an id with
/// [`Buzzer::handle`].
///
/// ```no_run
/// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Report { month: u8 }
/// # impl buzzer::Job for Report { const QUEUE: &'static str = "reports"; type Output = String; }
/// use std::time::Duration;
///
/// let handle = buzzer.enqueue(Report { month: 11 }).await?;
/// println!("{:?}", handle.status().await?.state);
/// match handle.wait_for(Duration::from_secs(5)).await? {
///     Some(url) => println!("report at {url}"),
///     None => {
///         handle.cancel().await?;
///     }
/// }
/// # Ok(()) }
/// ```
pub struct JobHandle<J> {
    buzzer: Buzzer,
    id: JobId,
    _job: PhantomData<fn() -> J>,
}

impl<J> Clone for JobHandle<J> {
    fn clone(&self) -> Self {
        JobHandle {
            buzzer: self.buzzer.clone(),
            id: self.id,
            _job: PhantomData,
        }
    }
}

impl<J> std::fmt::Debug for JobHandle<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle")
            .field("id", &self.id)
            .field("job", &std::any::type_name::<J>())
            .finish()
    }
}

impl<J: Job> JobHandle<J> {
    pub(crate) fn new(buzzer: Buzzer, id: JobId) -> Self {
        JobHandle {
            buzzer,
            id,
            _job: PhantomData,
        }
    }

    /// The job's id: 13 characters that sort by creation time.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The job as it is now: state, attempt, errors, progress, result (as JSON), ….
    pub async fn status(&self) -> Result<JobRecord, Error> {
        self.buzzer.transport().get(self.id).await
    }

    /// Waits until the job is finished and returns its output. A job that died is an
    /// [`Error::JobDead`] carrying its errors; a cancelled one an [`Error::JobCancelled`].
    /// Woken by the job's own change, not by polling.
    pub async fn wait(&self) -> Result<J::Output, Error> {
        loop {
            if let Some(output) = self.wait_chunk(WAIT_CHUNK).await? {
                return Ok(output);
            }
        }
    }

    /// Like [`wait`](Self::wait), for at most `timeout`: `None` when the job has not finished
    /// by then.
    pub async fn wait_for(&self, timeout: Duration) -> Result<Option<J::Output>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(output) = self.wait_chunk(left.min(WAIT_CHUNK)).await? {
                return Ok(Some(output));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    async fn wait_chunk(&self, wait: Duration) -> Result<Option<J::Output>, Error> {
        let transport = self.buzzer.transport();
        if transport.is_closed() {
            return Err(Error::closed());
        }
        let job = transport.wait_terminal(self.id, wait).await?;
        if job.state.is_terminal() {
            return settle::<J>(job).map(Some);
        }
        // A closing engine answers waits at once: do not spin on it.
        if transport.is_closed() {
            return Err(Error::closed());
        }
        Ok(None)
    }

    /// Cancels the job: at once if it is not running; a running job's worker sees it on its
    /// next heartbeat ([`JobContext::cancelled`](crate::JobContext::cancelled)). A job that
    /// already finished is an [`Error::Conflict`]. Returns the job as it is after the request.
    pub async fn cancel(&self) -> Result<JobRecord, Error> {
        self.buzzer.transport().cancel(self.id).await
    }
}

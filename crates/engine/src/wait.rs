use std::time::Duration;

use buzzer_types::{Job, JobId};
use tokio::time::Instant;

use crate::{Engine, EngineError, JobWatch};

impl Engine {
    /// Waits up to `timeout` for a job to reach a terminal state and returns it as it is then
    /// (terminal or not). Woken by the job's own changes, not by polling.
    pub async fn wait_terminal(&self, id: JobId, timeout: Duration) -> Result<Job, EngineError> {
        let deadline = Instant::now() + timeout;
        // Watch before reading, so a change between the read and the wait is not missed.
        let watch = self.watch(id);
        let job = self.get(id).await?;
        self.wait_watched(watch, job, deadline).await
    }

    /// Follows `watch` from `job` (the job as it was when the watch began, or later) until the
    /// job is terminal or the deadline passes.
    pub(crate) async fn wait_watched(
        &self,
        mut watch: JobWatch,
        mut job: Job,
        deadline: Instant,
    ) -> Result<Job, EngineError> {
        let id = job.id;
        while !job.state.is_terminal() {
            tokio::select! {
                changed = watch.changed() => match changed {
                    Some(snapshot) => job = (*snapshot).clone(),
                    // Lagged behind: read the job as it is now.
                    None => job = self.get(id).await?,
                },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = self.inner.closing.cancelled() => break,
            }
        }
        Ok(job)
    }
}

/// What is left until `deadline`, zero once it has passed.
pub(crate) fn timeout_left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

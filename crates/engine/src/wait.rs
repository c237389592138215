use std::time::Duration;

use buzzer_types::{Job, JobId};
use tokio::time::Instant;

use crate::{Engine, EngineError};

impl Engine {
    /// Waits up to `timeout` for a job to reach a terminal state and returns it as it is then
    /// (terminal or not). Woken by the job's own changes, not by polling.
    pub async fn wait_terminal(&self, id: JobId, timeout: Duration) -> Result<Job, EngineError> {
        let deadline = Instant::now() + timeout;
        // Watch before reading, so a change between the read and the wait is not missed.
        let mut watch = self.watch(id);
        let mut job = self.get(id).await?;
        while !job.state.is_terminal() {
            tokio::select! {
                changed = watch.changed() => match changed {
                    Some(snapshot) => job = (*snapshot).clone(),
                    None => job = self.get(id).await?,
                },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = self.inner.closing.cancelled() => break,
            }
        }
        Ok(job)
    }
}

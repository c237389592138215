//! Reads and operator actions: get, list, cancel, retry, delete, DLQ replay, queues, pause.

use buzzer_store::{JobList, JobRetryDead};
use buzzer_types::{
    DeadRetryRequest, Invalid, Job, JobId, JobListResponse, QueueInfo, validate_name,
};

use crate::{Engine, EngineError};

/// Page size of a list that names none, and the most one page may hold.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 1_000;
/// Dead jobs replayed per store transaction, so a large DLQ replay never holds the writer long.
const REPLAY_BATCH: u32 = 1_000;

fn check_name(field: &str, name: &str) -> Result<(), EngineError> {
    validate_name(name).map_err(|m| Invalid::new(field, m).into())
}

impl Engine {
    pub async fn get(&self, id: JobId) -> Result<Job, EngineError> {
        self.inner
            .store
            .job_get(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("job {id}")))
    }

    /// Jobs newest first. `params.before` is the cursor of the previous page.
    pub async fn list(&self, mut params: JobList) -> Result<JobListResponse, EngineError> {
        if let Some(q) = &params.queue {
            check_name("queue", q)?;
        }
        if params.limit == 0 {
            params.limit = DEFAULT_PAGE;
        }
        if params.limit > MAX_PAGE {
            return Err(Invalid::new("limit", format!("must be at most {MAX_PAGE}")).into());
        }
        let limit = params.limit as usize;
        let jobs = self.inner.store.job_list(params).await?;
        let next_cursor = (jobs.len() == limit)
            .then(|| jobs.last().map(|j| j.id.to_string()))
            .flatten();
        Ok(JobListResponse { jobs, next_cursor })
    }

    /// Cancels a job; a running one gets `cancel_requested` and finishes when its worker
    /// reports or its lease expires.
    pub async fn cancel(&self, id: JobId) -> Result<Job, EngineError> {
        let job = self
            .inner
            .store
            .job_cancel(id)
            .await
            .map_err(|e| EngineError::from_store(e, || format!("job {id}")))?;
        self.after_change(&job);
        Ok(job)
    }

    /// Operator retry of a dead or cancelled job.
    pub async fn retry(&self, id: JobId) -> Result<Job, EngineError> {
        let job = self
            .inner
            .store
            .job_retry(id)
            .await
            .map_err(|e| EngineError::from_store(e, || format!("job {id}")))?;
        self.after_change(&job);
        Ok(job)
    }

    /// Deletes a job that no worker holds and returns it as it was; a running job is a
    /// conflict (cancel it first). Watchers of the job (a hybrid wait, an SSE stream) are not
    /// told: they see the job as it was until their own deadline.
    pub async fn delete(&self, id: JobId) -> Result<Job, EngineError> {
        let job = self
            .inner
            .store
            .job_delete(id)
            .await
            .map_err(|e| EngineError::from_store(e, || format!("job {id}")))?;
        if job.ordering_key.is_some() {
            // The next job of its key may have become fetchable.
            self.inner.notifier.wake_queue(&job.queue);
        }
        Ok(job)
    }

    /// Replays a queue's dead-letter queue in batches; `progress` hears the running total.
    pub async fn retry_dead(
        &self,
        queue: &str,
        req: DeadRetryRequest,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, EngineError> {
        self.queue(queue).await?;
        if let Some(tag) = &req.tag
            && tag.is_empty()
        {
            return Err(Invalid::new("tag", "must not be empty").into());
        }
        let mut remaining = req.limit.map(u64::from);
        let mut total = 0;
        loop {
            let batch = remaining.map_or(REPLAY_BATCH, |r| r.min(REPLAY_BATCH as u64) as u32);
            if batch == 0 {
                break;
            }
            let moved = self
                .inner
                .store
                .job_retry_dead(JobRetryDead {
                    queue: queue.to_owned(),
                    tag: req.tag.clone(),
                    ids: req.ids.clone(),
                    limit: batch,
                })
                .await?;
            total += moved;
            remaining = remaining.map(|r| r - moved);
            if moved > 0 {
                self.inner.notifier.wake_queue(queue);
                progress(total);
            }
            if moved < batch as u64 {
                break;
            }
        }
        Ok(total)
    }

    pub async fn queues(&self) -> Result<Vec<QueueInfo>, EngineError> {
        Ok(self.inner.store.queue_list().await?)
    }

    pub async fn queue(&self, name: &str) -> Result<QueueInfo, EngineError> {
        check_name("queue", name)?;
        self.inner
            .store
            .queue_get(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("queue {name}")))
    }

    /// Pauses (`true`) or resumes a queue. Resuming wakes its waiting fetchers.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<QueueInfo, EngineError> {
        check_name("queue", name)?;
        let info = self
            .inner
            .store
            .queue_set_paused(name, paused)
            .await
            .map_err(|e| EngineError::from_store(e, || format!("queue {name}")))?;
        if !paused {
            self.inner.notifier.wake_queue(name);
        }
        Ok(info)
    }
}

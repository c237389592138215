//! "Why isn't it running?": one reason per unfinished job, from its state, its queue and its
//! ordering key, for `GET /v1/jobs/{id}` and the dashboard's job page.

use buzzer_types::{Job, JobState, WaitingKind, WaitingReason};

use crate::{Engine, EngineError};

impl Engine {
    /// Why `job` is not running now, or what holds it while it runs; `None` once it has
    /// finished. Reads its queue and, for a job with an ordering key, the key's head, so the
    /// answer is as current as those reads.
    pub async fn waiting_reason(&self, job: &Job) -> Result<Option<WaitingReason>, EngineError> {
        let reason = match job.state {
            JobState::Completed | JobState::Dead | JobState::Cancelled => return Ok(None),
            JobState::Running => leased(job),
            JobState::Scheduled | JobState::Retryable => scheduled(job),
            JobState::Available => self.available(job).await?,
        };
        Ok(Some(reason))
    }

    /// An available job waits for, in this order: its queue to be resumed, the job ahead of
    /// it on its ordering key, a worker.
    async fn available(&self, job: &Job) -> Result<WaitingReason, EngineError> {
        let paused = self
            .inner
            .store
            .queue_get(&job.queue)
            .await?
            .is_some_and(|q| q.paused);
        if paused {
            return Ok(WaitingReason::new(
                WaitingKind::QueuePaused,
                format!(
                    "Queue {} is paused: it keeps jobs but hands none out until it is resumed.",
                    job.queue
                ),
            ));
        }
        if let Some(key) = &job.ordering_key
            && let Some(head) = self.inner.store.job_ordering_head(&job.queue, key).await?
            && head != job.id
        {
            return Ok(WaitingReason {
                ahead_job_id: Some(head),
                ..WaitingReason::new(
                    WaitingKind::OrderingKey,
                    format!("Waiting behind job {head}, which holds ordering key {key}."),
                )
            });
        }
        Ok(WaitingReason::new(
            WaitingKind::NoWorker,
            format!(
                "Ready to run: waiting for a worker to fetch from queue {}.",
                job.queue
            ),
        ))
    }
}

fn leased(job: &Job) -> WaitingReason {
    let worker = job.worker_id.as_deref().unwrap_or("an unnamed worker");
    let mut message = match job.lease_expires_at {
        Some(until) => format!("Running: leased by worker {worker} until {until}."),
        None => format!("Running: leased by worker {worker}."),
    };
    if job.cancel_requested {
        message.push_str(" Cancellation was requested; the worker sees it on its next heartbeat.");
    }
    WaitingReason {
        worker_id: job.worker_id.clone(),
        lease_expires_at: job.lease_expires_at,
        ..WaitingReason::new(WaitingKind::Leased, message)
    }
}

fn scheduled(job: &Job) -> WaitingReason {
    let at = job.scheduled_at;
    let message = if job.state == JobState::Retryable {
        format!(
            "Attempt {} failed; the next attempt is due at {at} (backoff).",
            job.attempt
        )
    } else {
        format!("Scheduled to run at {at}.")
    };
    WaitingReason {
        until: Some(at),
        ..WaitingReason::new(WaitingKind::Scheduled, message)
    }
}

use buzzer_store::{Inserted, JobInsert, RunAt};
use buzzer_types::{EnqueueRequest, Invalid, Job, JobState, Limits, validate_name};

use crate::{Engine, EngineError};

impl Engine {
    /// Enqueues one job. `created` is false when an existing job with the same idempotency key
    /// was returned instead.
    pub async fn enqueue(&self, queue: &str, req: EnqueueRequest) -> Result<Inserted, EngineError> {
        let mut inserted = self.enqueue_many(queue, vec![req]).await?;
        inserted
            .pop()
            .ok_or_else(|| EngineError::Unavailable("the store returned no job".into()))
    }

    /// Enqueues many jobs into one queue, all or none.
    pub async fn enqueue_many(
        &self,
        queue: &str,
        reqs: Vec<EnqueueRequest>,
    ) -> Result<Vec<Inserted>, EngineError> {
        validate_name(queue).map_err(|m| Invalid::new("queue", m))?;
        if reqs.len() > Limits::MAX_JOBS_PER_BATCH {
            return Err(Invalid::new(
                "jobs",
                format!("at most {} jobs per batch", Limits::MAX_JOBS_PER_BATCH),
            )
            .into());
        }
        let single = reqs.len() == 1;
        let inserts = reqs
            .into_iter()
            .enumerate()
            .map(|(i, req)| {
                req.validate().map_err(|e| {
                    if single {
                        e
                    } else {
                        e.within(&format!("jobs[{i}]"))
                    }
                })?;
                Ok(self.to_insert(queue, req))
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        if inserts.is_empty() {
            return Ok(Vec::new());
        }
        let inserted = self.inner.store.job_insert_many(inserts).await?;
        self.after_insert(inserted.iter().filter(|i| i.created).map(|i| &i.job));
        Ok(inserted)
    }

    pub(crate) fn to_insert(&self, queue: &str, req: EnqueueRequest) -> JobInsert {
        let config = &self.inner.config;
        let mut backoff = config.default_backoff;
        if let Some(spec) = req.backoff {
            backoff.initial_ms = spec.initial_ms.unwrap_or(backoff.initial_ms);
            backoff.max_ms = spec
                .max_ms
                .unwrap_or(backoff.max_ms)
                .max(backoff.initial_ms);
            backoff.factor = spec.factor.unwrap_or(backoff.factor);
        }
        let run_at = match (req.run_at, req.delay_ms) {
            (Some(at), _) => RunAt::At(at),
            (None, Some(ms)) if ms > 0 => RunAt::Delay { ms },
            _ => RunAt::Now,
        };
        JobInsert {
            queue: queue.to_owned(),
            payload: req.payload,
            priority: req.priority.unwrap_or(0),
            run_at,
            max_attempts: req.max_attempts.unwrap_or(config.default_max_attempts),
            backoff,
            timeout_ms: req.timeout_ms,
            idempotency_key: req.idempotency_key,
            ordering_key: req.ordering_key,
            tags: req.tags.unwrap_or_default(),
            metadata: req.metadata.unwrap_or_default(),
            traceparent: req.traceparent,
        }
    }

    /// Wakes the fetchers of each queue that got an available job (jobs come grouped by
    /// queue, so waking on each change of queue is enough) and the scheduler for the rest.
    pub(crate) fn after_insert<'a>(&self, created: impl Iterator<Item = &'a Job>) {
        let mut woke: Option<&str> = None;
        let mut scheduled = false;
        for job in created {
            match job.state {
                JobState::Available if woke != Some(job.queue.as_str()) => {
                    self.inner.notifier.wake_queue(&job.queue);
                    woke = Some(&job.queue);
                }
                JobState::Scheduled => scheduled = true,
                _ => {}
            }
        }
        if scheduled {
            self.inner.scheduler_nudge.notify_one();
        }
    }
}

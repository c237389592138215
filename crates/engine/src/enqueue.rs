use std::time::Duration;

use buzzer_store::{Inserted, InsertedAndFetched, JobInsert, RunAt, Urgency};
use buzzer_types::{EnqueueRequest, Invalid, Job, JobState, Limits, validate_name};
use tokio::time::Instant;

use crate::{
    Engine, EngineError, JobWatch, Outcome, finish_on_drop::FinishOnDrop, handoff::Taken,
    wait::timeout_left,
};

impl Engine {
    /// Enqueues one job. `created` is false when an existing job with the same idempotency key
    /// was returned instead.
    ///
    /// A job due now, enqueued while a fetcher of its queue waits, is leased to that fetcher
    /// in the same commit (see `handoff.rs`); the job that comes back is then `running`.
    pub async fn enqueue(&self, queue: &str, req: EnqueueRequest) -> Result<Inserted, EngineError> {
        Ok(self.enqueue_watching(queue, req, false).await?.0)
    }

    /// The hybrid call: enqueues one job, then waits up to `timeout` for it to reach a
    /// terminal state, and returns it as it is then (terminal or not).
    pub async fn enqueue_wait(
        &self,
        queue: &str,
        req: EnqueueRequest,
        timeout: Duration,
    ) -> Result<Inserted, EngineError> {
        let deadline = Instant::now() + timeout;
        let (Inserted { job, created }, watch) = self.enqueue_watching(queue, req, true).await?;
        let job = match watch {
            // Watched since before any worker had it: every change since is in the watch.
            Some(watch) => self.wait_watched(watch, job, deadline).await?,
            None if job.state.is_terminal() => job,
            None => self.wait_terminal(job.id, timeout_left(deadline)).await?,
        };
        Ok(Inserted { job, created })
    }

    /// Enqueues one job; with `watch`, also returns a watch of it when one could be set up
    /// before any worker got the job (the hand-off), so no change can be missed.
    async fn enqueue_watching(
        &self,
        queue: &str,
        req: EnqueueRequest,
        watch: bool,
    ) -> Result<(Inserted, Option<JobWatch>), EngineError> {
        let mut inserts = self.to_inserts(queue, vec![req])?;
        let insert = inserts
            .pop()
            .ok_or_else(|| EngineError::Unavailable("no job to enqueue".into()))?;
        if insert.run_at == RunAt::Now
            && let Some(taken) = self.inner.handoff.take(queue)
        {
            // Finished even if the caller goes away mid-way (a closed request), so no jobs are
            // left leased to the fetcher but never handed to it.
            let engine = self.clone();
            return FinishOnDrop::new(async move {
                engine.enqueue_handing_off(insert, taken, watch).await
            })
            .await;
        }
        let mut inserted = self.inner.store.job_insert_many(vec![insert]).await?;
        self.after_insert(inserted.iter().filter(|i| i.created).map(|i| &i.job));
        let inserted = inserted
            .pop()
            .ok_or_else(|| EngineError::Unavailable("the store returned no job".into()))?;
        Ok((inserted, None))
    }

    async fn enqueue_handing_off(
        &self,
        insert: JobInsert,
        taken: Taken,
        watch: bool,
    ) -> Result<(Inserted, Option<JobWatch>), EngineError> {
        let lease_ms = taken.fetch.lease_ms;
        // A hybrid call's job goes to the fetcher before the enqueue is durable, and the
        // enqueue's commit and sync may wait for the result's (the caller waits for that
        // anyway): one of each per call, not two in a row. A plain enqueue hands off once
        // durable, since its result would commit during the enqueue's sync and start a sync
        // of its own that the producer's next enqueue then waits behind (W2 measured slower
        // that way).
        // On error `taken` is dropped, and the fetcher looks again by itself.
        let urgency = if watch {
            Urgency::WithNext
        } else {
            Urgency::Now
        };
        let (
            InsertedAndFetched {
                mut inserted,
                fetched,
            },
            mut durable,
        ) = self
            .inner
            .store
            .job_insert_and_fetch_early(insert, taken.fetch.clone(), urgency)
            .await?;
        if !watch {
            durable.wait().await?;
        }
        if let Some(leased) = fetched.iter().find(|j| j.id == inserted.job.id) {
            inserted.job = Job {
                lease_token: None,
                ..leased.clone()
            };
        }
        let watch = watch.then(|| self.watch(inserted.job.id));
        if !fetched.is_empty() {
            self.after_fetch(&fetched, lease_ms);
        }
        if let Err(unwanted) = taken.hand(fetched) {
            self.hand_back(unwanted).await;
        }
        if inserted.created {
            self.after_insert(std::iter::once(&inserted.job));
        }
        // A hybrid call's fetcher already has the job; its caller hears of it only once it is
        // on disk.
        durable.wait().await?;
        Ok((inserted, watch))
    }

    /// Releases jobs leased for a fetcher that stopped waiting before it got them.
    pub(crate) async fn hand_back(&self, jobs: Vec<Job>) {
        let items = jobs
            .into_iter()
            .filter_map(|j| Some((j.id, j.lease_token?, Outcome::Released)))
            .collect::<Vec<_>>();
        if items.is_empty() {
            return;
        }
        match self.finish_many_brief(items).await {
            Ok(results) => {
                for e in results.into_iter().filter_map(Result::err) {
                    tracing::warn!(error = %e, "a job leased for a departed fetcher was not handed back; it runs once its lease expires");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "jobs leased for a departed fetcher were not handed back; they run once their leases expire");
            }
        }
    }

    /// Enqueues many jobs into one queue, all or none.
    pub async fn enqueue_many(
        &self,
        queue: &str,
        reqs: Vec<EnqueueRequest>,
    ) -> Result<Vec<Inserted>, EngineError> {
        let inserts = self.to_inserts(queue, reqs)?;
        if inserts.is_empty() {
            return Ok(Vec::new());
        }
        let inserted = self.inner.store.job_insert_many(inserts).await?;
        self.after_insert(inserted.iter().filter(|i| i.created).map(|i| &i.job));
        Ok(inserted)
    }

    /// Validates a batch (errors name the field, within `jobs[i]` for a batch of several).
    fn to_inserts(
        &self,
        queue: &str,
        reqs: Vec<EnqueueRequest>,
    ) -> Result<Vec<JobInsert>, EngineError> {
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
        Ok(inserts)
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

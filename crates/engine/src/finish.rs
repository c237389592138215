//! The worker's side: fetch, heartbeat, complete, fail and batched acks.

use std::{pin::Pin, time::Duration};

use buzzer_store::{Finished, JobFetch, JobFinish, JobHeartbeat, StoreError};
use buzzer_types::{
    Ack, CompleteRequest, FailRequest, FetchRequest, HeartbeatRequest, HeartbeatResponse, Job,
    JobId, JobState,
};
use tokio::{sync::futures::Notified, time::Instant};

use crate::{Engine, EngineError, Outcome, RetryRequest, retry_transition};

fn job_name(id: JobId) -> impl FnOnce() -> String {
    move || format!("job {id}")
}

impl Engine {
    /// Leases available jobs. With `wait_ms`, waits until a job arrives or the time is up;
    /// an empty answer is not an error.
    pub async fn fetch(&self, req: FetchRequest) -> Result<Vec<Job>, EngineError> {
        req.validate()?;
        let wait = Duration::from_millis(req.wait_ms.unwrap_or(0));
        let params = JobFetch {
            lease_ms: req.lease_ms.unwrap_or(self.inner.config.default_lease_ms),
            max_jobs: req.max_jobs.unwrap_or(1),
            worker_id: req.worker_id,
            queues: req.queues,
        };
        let deadline = Instant::now() + wait;
        loop {
            // Register for wake-ups before looking, so a job enqueued between the look and the
            // wait is not missed.
            let notifies: Vec<_> = if wait.is_zero() {
                Vec::new()
            } else {
                params
                    .queues
                    .iter()
                    .map(|q| self.inner.notifier.queue(q))
                    .collect()
            };
            let mut waits: Vec<Pin<Box<Notified<'_>>>> =
                notifies.iter().map(|n| Box::pin(n.notified())).collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            let jobs = self.inner.store.job_fetch(params.clone()).await?;
            if !jobs.is_empty() {
                self.after_fetch(&jobs, params.lease_ms);
                return Ok(jobs);
            }
            if waits.is_empty() || Instant::now() >= deadline || self.is_shutting_down() {
                return Ok(jobs);
            }
            // Parked only now: a job enqueued since the look above has woken `waits`.
            let engine = self.clone();
            let mut parked = self.inner.handoff.park(&params, move |jobs| {
                // Handed jobs whose fetch went away before reading them: back at once.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move { engine.hand_back(jobs).await });
                }
            });
            tokio::select! {
                handed = parked.handed() => match handed {
                    Some(jobs) if !jobs.is_empty() => return Ok(jobs),
                    _ => continue,
                },
                _ = futures::future::select_all(waits) => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = self.inner.closing.cancelled() => {}
            }
            // An enqueue that took this fetcher has leased jobs to it: they must not be left
            // to sit out their lease.
            if !parked.leave()
                && let Some(jobs) = parked.handed().await
                && !jobs.is_empty()
            {
                return Ok(jobs);
            }
            if Instant::now() >= deadline || self.is_shutting_down() {
                return Ok(Vec::new());
            }
        }
    }

    pub(crate) fn after_fetch(&self, jobs: &[Job], lease_ms: u64) {
        for job in jobs {
            self.inner.notifier.publish(job);
        }
        self.services_lease_granted(lease_ms);
    }

    /// Completes a running job; `LeaseLost` if the token is stale.
    pub async fn complete(&self, id: JobId, req: CompleteRequest) -> Result<Job, EngineError> {
        let outcome = Outcome::Completed { result: req.result };
        self.finish(id, req.lease_token, outcome).await
    }

    /// Records a failed attempt: the job becomes `retryable`, or `dead` when attempts are
    /// exhausted or `retry` is false.
    pub async fn fail(&self, id: JobId, req: FailRequest) -> Result<Job, EngineError> {
        let outcome = fail_outcome(req.error, req.retry, req.retry_in_ms);
        self.finish(id, req.lease_token, outcome).await
    }

    /// Hands a leased job back without counting the attempt, for a worker that is shutting
    /// down: the job is `available` again at once instead of sitting out its lease.
    pub async fn release(&self, id: JobId, lease_token: String) -> Result<Job, EngineError> {
        self.finish(id, lease_token, Outcome::Released).await
    }

    /// Applies a worker's outcome to one leased job.
    pub async fn finish(
        &self,
        id: JobId,
        lease_token: String,
        outcome: Outcome,
    ) -> Result<Job, EngineError> {
        let mut results = self.finish_many(vec![(id, lease_token, outcome)]).await?;
        results.pop().unwrap_or_else(|| {
            Err(EngineError::Unavailable(
                "the store returned nothing".into(),
            ))
        })
    }

    /// Many completes and fails in one store call; one result per ack, in order. Each ack
    /// stands alone: one that fails (a lost lease) does not undo the others.
    pub async fn ack_many(
        &self,
        acks: Vec<Ack>,
    ) -> Result<Vec<Result<Finished, EngineError>>, EngineError> {
        let items = acks
            .into_iter()
            .map(|a| {
                let outcome = match a.error {
                    Some(error) => fail_outcome(error, a.retry, a.retry_in_ms),
                    None => Outcome::Completed { result: a.result },
                };
                (a.id, a.lease_token, outcome)
            })
            .collect();
        self.finish_many_brief(items).await
    }

    /// The one path every finished attempt takes: resolve the outcome against the job's retry
    /// policy, apply it under the lease guard, then wake whoever waits on the change.
    pub async fn finish_many(
        &self,
        items: Vec<(JobId, String, Outcome)>,
    ) -> Result<Vec<Result<Job, EngineError>>, EngineError> {
        let store = &self.inner.store;
        self.apply(
            items,
            |f| store.job_finish_many(f),
            |job| self.after_change(job),
        )
        .await
    }

    /// [`finish_many`](Engine::finish_many) for callers that need only where each job ended
    /// up (acknowledgements): the store need not read the jobs back. A batch naming a job
    /// someone watches (a hybrid call waiting for its result) takes the full path, since the
    /// watcher is sent the whole job.
    pub async fn finish_many_brief(
        &self,
        items: Vec<(JobId, String, Outcome)>,
    ) -> Result<Vec<Result<Finished, EngineError>>, EngineError> {
        let watched = !self
            .inner
            .notifier
            .watched_ids(items.iter().map(|(id, _, _)| *id))
            .is_empty();
        if watched {
            return Ok(self
                .finish_many(items)
                .await?
                .into_iter()
                .map(|r| r.map(|job| Finished::of(&job)))
                .collect());
        }
        let store = &self.inner.store;
        let wake = |done: &Finished| {
            self.wake_after(done.state, &done.queue, done.ordering_key.is_some());
        };
        let results = self
            .apply(items, |f| store.job_finish_many_brief(f), wake)
            .await?;
        // A watch taken while the batch ran read the job before this commit and waits for
        // the change: read it now and send it. One taken later reads the job as committed.
        let done = results.iter().filter_map(|r| r.as_ref().ok().map(|d| d.id));
        // The acknowledgements are committed whatever happens here, so a failed read must not
        // fail them: the watcher reads the job again when its wait runs out.
        for id in self.inner.notifier.watched_ids(done) {
            match self.inner.store.job_get(id).await {
                Ok(Some(job)) => self.inner.notifier.publish(&job),
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    job = %id, %error,
                    "a watcher of a finished job was not sent the change; it reads the job later"
                ),
            }
        }
        Ok(results)
    }

    /// Settles the outcomes, applies them with `store_call` (skipped when nothing is left to
    /// apply), and answers per item in request order, passing each applied item to
    /// `applied_ok`.
    async fn apply<T, Fut>(
        &self,
        items: Vec<(JobId, String, Outcome)>,
        store_call: impl FnOnce(Vec<JobFinish>) -> Fut,
        applied_ok: impl FnMut(&T),
    ) -> Result<Vec<Result<T, EngineError>>, EngineError>
    where
        Fut: Future<Output = Result<Vec<Result<T, StoreError>>, StoreError>>,
    {
        let (finishes, early) = self.settle(items).await?;
        let ids: Vec<JobId> = finishes.iter().map(|f| f.id).collect();
        let applied = if finishes.is_empty() {
            Vec::new()
        } else {
            store_call(finishes).await?
        };
        Ok(answer(early, applied, ids, applied_ok))
    }

    /// Turns each outcome into the store's transition; `early` holds, per item, the error
    /// that stopped it before the store (or `None` for an item in `finishes`, in order).
    async fn settle(
        &self,
        items: Vec<(JobId, String, Outcome)>,
    ) -> Result<(Vec<JobFinish>, Vec<Option<EngineError>>), EngineError> {
        let mut finishes = Vec::with_capacity(items.len());
        // Completions need nothing from the job; failures need its attempt count and backoff,
        // read once here. A concurrent change cannot matter: the lease guard decides.
        let mut early: Vec<Option<EngineError>> = Vec::with_capacity(items.len());
        for (id, lease_token, outcome) in items {
            let transition = match outcome.settle() {
                Ok(t) => Some(t),
                Err(retry) => match self.inner.store.job_get(id).await? {
                    Some(job) if job.state == JobState::Running => {
                        Some(retry_transition(&job, retry))
                    }
                    Some(_) => None,
                    None => {
                        early.push(Some(EngineError::NotFound(format!("job {id}"))));
                        continue;
                    }
                },
            };
            match transition {
                Some(transition) => {
                    early.push(None);
                    finishes.push(JobFinish {
                        id,
                        lease_token,
                        transition,
                        require_lease_expired: false,
                    });
                }
                None => early.push(Some(EngineError::LeaseLost)),
            }
        }
        Ok((finishes, early))
    }

    /// Extends a lease; tells the worker whether cancellation was requested.
    pub async fn heartbeat(
        &self,
        id: JobId,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, EngineError> {
        req.validate()?;
        let lease_ms = req.lease_ms.unwrap_or(self.inner.config.default_lease_ms);
        let hb = self
            .inner
            .store
            .job_heartbeat(JobHeartbeat {
                id,
                lease_token: req.lease_token,
                lease_ms,
                progress: req.progress,
            })
            .await
            .map_err(|e| EngineError::from_store(e, job_name(id)))?;
        self.services_lease_granted(lease_ms);
        Ok(HeartbeatResponse {
            lease_expires_at: hb.lease_expires_at,
            cancel_requested: hb.cancel_requested,
        })
    }

    /// Wakes whoever waits on what just happened to this job.
    pub(crate) fn after_change(&self, job: &Job) {
        self.inner.notifier.publish(job);
        self.wake_after(job.state, &job.queue, job.ordering_key.is_some());
    }

    /// Wakes fetchers and the scheduler for a job now in `state`.
    fn wake_after(&self, state: JobState, queue: &str, keyed: bool) {
        let notifier = &self.inner.notifier;
        match state {
            JobState::Available => notifier.wake_queue(queue),
            JobState::Retryable | JobState::Scheduled => self.inner.scheduler_nudge.notify_one(),
            // A finished head of an ordering key lets the next job of that key be fetched.
            s if s.is_terminal() && keyed => notifier.wake_queue(queue),
            _ => {}
        }
    }
}

/// One result per item in request order: the early error where there is one, else the
/// store's answer for the next applied item (passed to `applied_ok` when it succeeded).
fn answer<T>(
    early: Vec<Option<EngineError>>,
    applied: Vec<Result<T, StoreError>>,
    ids: Vec<JobId>,
    mut applied_ok: impl FnMut(&T),
) -> Vec<Result<T, EngineError>> {
    let mut applied = applied.into_iter().zip(ids);
    let mut out = Vec::with_capacity(early.len());
    for e in early {
        match e {
            Some(err) => out.push(Err(err)),
            None => match applied.next() {
                Some((Ok(done), _)) => {
                    applied_ok(&done);
                    out.push(Ok(done));
                }
                Some((Err(e), id)) => out.push(Err(EngineError::from_store(e, job_name(id)))),
                None => out.push(Err(EngineError::Unavailable(
                    "the store returned fewer results than asked".into(),
                ))),
            },
        }
    }
    out
}

fn fail_outcome(
    error: buzzer_types::ErrorInput,
    retry: Option<bool>,
    retry_in_ms: Option<u64>,
) -> Outcome {
    if retry == Some(false) {
        Outcome::Dead { error }
    } else {
        Outcome::Retry(RetryRequest { error, retry_in_ms })
    }
}

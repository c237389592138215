//! The one place the engine is instrumented: a [`Store`] wrapper the engine puts around its
//! store. Every store call gets a `store` span (with the job id and queue where the call names
//! them) and a duration in `buzzer_store_call_duration_seconds`; every transition it sees bumps
//! the per-queue job counters and the wait and run time histograms ([`EngineMetrics`]).
//!
//! Counting at the store boundary means each change is counted exactly once, by what the store
//! says happened (the job it returns), whoever asked for it: an HTTP handler, the rescuer, or
//! the library in-process.
//!
//! Every method of the trait is forwarded, the provided ones too: a default left in place
//! here would hide the inner store's own implementation (its change feed, its leader
//! election). A method added to [`Store`] must be added here. The one exception is
//! `job_insert_and_fetch`, which no store implements: it waits on the early form, forwarded
//! here.

use std::{future::Future, sync::Arc, time::Instant};

use async_trait::async_trait;
use buzzer_store::{
    Change, Durable, Finished, Heartbeat, Inserted, InsertedAndFetched, JobFetch, JobFinish,
    JobHeartbeat, JobInsert, JobList, JobPrune, JobRetryDead, LeaderElect, Promoted, Published,
    ScheduleClaimTick, SchedulePut, Store, StoreError, SubscriptionDelivery, SubscriptionPut,
    SubscriptionSetDisabled, TopicEventPrune, TopicPublish, Transition, Upserted, Urgency,
};
use buzzer_types::{Job, JobId, JobState, QueueInfo, Schedule, Subscription};
use jiff::Timestamp;
use tracing::{Instrument, Span, field::Empty};

use crate::metrics::{EngineMetrics, TimeFamily};

#[derive(Debug)]
pub(crate) struct Metered {
    inner: Arc<dyn Store>,
    metrics: Arc<EngineMetrics>,
}

impl Metered {
    pub(crate) fn new(inner: Arc<dyn Store>, metrics: Arc<EngineMetrics>) -> Self {
        Metered { inner, metrics }
    }

    /// Runs one store call inside `span` and records its duration and outcome.
    async fn call<T>(
        &self,
        op: &'static str,
        span: Span,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let result = call.instrument(span.clone()).await;
        let outcome = outcome(&result);
        span.record("outcome", outcome);
        self.metrics
            .observe_store_call(op, outcome, start.elapsed());
        result
    }

    /// Each leased job's wait, from when it was due to when it started.
    fn observe_waits(&self, jobs: &[Job]) {
        let waits = jobs
            .iter()
            .filter_map(|j| {
                Some((
                    j.queue.as_str(),
                    seconds_between(j.scheduled_at, j.started_at?),
                ))
            })
            .collect();
        observe_by_queue(&self.metrics.wait, waits);
    }

    /// Runs a batch of finishes and counts what each applied item ended as.
    async fn finish_counted<T>(
        &self,
        span: Span,
        kinds: Vec<(bool, bool)>,
        call: impl Future<Output = Result<Vec<Result<T, StoreError>>, StoreError>>,
        ended: fn(&T) -> (&str, JobState, Option<f64>),
    ) -> Result<Vec<Result<T, StoreError>>, StoreError> {
        let results = self.call("job_finish_many", span, call).await?;
        self.count_finishes(&kinds, results.iter().map(|r| r.as_ref().ok().map(ended)));
        Ok(results)
    }

    /// Counts each applied finish by where its job ended up, and observes its run time.
    /// `kinds` says, per item, whether the attempt ended with an error and whether it was a
    /// release (not a run).
    fn count_finishes<'a>(
        &self,
        kinds: &[(bool, bool)],
        ended: impl Iterator<Item = Option<(&'a str, JobState, Option<f64>)>>,
    ) {
        let m = &self.metrics;
        let mut runs = Vec::new();
        for (&(with_error, released), ended) in kinds.iter().zip(ended) {
            let Some((queue, state, run)) = ended else {
                continue;
            };
            if with_error {
                EngineMetrics::inc(&m.failed, queue, 1);
            }
            let family = match state {
                JobState::Completed => &m.completed,
                JobState::Retryable => &m.retried,
                JobState::Dead => &m.dead,
                JobState::Cancelled => &m.cancelled,
                _ => continue,
            };
            EngineMetrics::inc(family, queue, 1);
            if !released && let Some(secs) = run {
                runs.push((queue, secs));
            }
        }
        observe_by_queue(&m.run, runs);
    }
}

/// Per item: whether the attempt ended with an error, and whether it was a release.
fn finish_kinds(finishes: &[JobFinish]) -> Vec<(bool, bool)> {
    finishes
        .iter()
        .map(|f| match &f.transition {
            Transition::Retry { .. } | Transition::Dead { .. } => (true, false),
            Transition::Cancel { error } => (error.is_some(), false),
            Transition::Complete { .. } => (false, false),
            Transition::Release => (false, true),
        })
        .collect()
}

/// A finished job's queue, state and run time, for [`Metered::count_finishes`].
fn job_ended(job: &Job) -> (&str, JobState, Option<f64>) {
    let ended = job.finished_at.or_else(|| job.errors.last().map(|e| e.at));
    (&job.queue, job.state, run_seconds(job.started_at, ended))
}

fn finished_ended(done: &Finished) -> (&str, JobState, Option<f64>) {
    let run = run_seconds(done.started_at, done.ended_at);
    (&done.queue, done.state, run)
}

fn finish_span(finishes: &[JobFinish]) -> Span {
    let span = span("job_finish_many");
    span.record("count", finishes.len());
    if let [only] = finishes {
        span.record("job.id", tracing::field::display(only.id));
    }
    span
}

/// Seconds from the attempt's start to its end: `finished_at`, or for a job sent to retry
/// (which has none) the time its error was recorded.
fn run_seconds(started: Option<Timestamp>, ended: Option<Timestamp>) -> Option<f64> {
    Some(seconds_between(started?, ended?))
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_microsecond() - from.as_microsecond()).max(0) as f64 / 1e6
}

/// Observes values grouped by queue, so a batch looks each queue's histogram up once.
fn observe_by_queue(family: &TimeFamily, mut values: Vec<(&str, f64)>) {
    values.sort_by(|a, b| a.0.cmp(b.0));
    for group in values.chunk_by(|a, b| a.0 == b.0) {
        family.observe(group[0].0, group.iter().map(|(_, v)| *v));
    }
}

fn outcome<T>(result: &Result<T, StoreError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(StoreError::NotFound) => "not_found",
        Err(StoreError::Conflict(_)) => "conflict",
        Err(StoreError::LeaseLost) => "lease_lost",
        Err(StoreError::Unavailable(_)) => "unavailable",
        Err(StoreError::Backend(_)) => "error",
    }
}

/// The span of one store call; the fields a call does not know stay empty.
fn span(op: &'static str) -> Span {
    tracing::info_span!(
        "store",
        op,
        job.id = Empty,
        queue = Empty,
        count = Empty,
        outcome = Empty
    )
}

fn job_span(op: &'static str, id: JobId) -> Span {
    let span = span(op);
    span.record("job.id", tracing::field::display(id));
    span
}

fn queue_span(op: &'static str, queue: &str) -> Span {
    let span = span(op);
    span.record("queue", queue);
    span
}

#[async_trait]
impl Store for Metered {
    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<Inserted>, StoreError> {
        let span = span("job_insert_many");
        span.record("count", jobs.len());
        if let Some(first) = jobs.first() {
            span.record("queue", first.queue.as_str());
        }
        let inserted = self
            .call("job_insert_many", span, self.inner.job_insert_many(jobs))
            .await?;
        let mut created: Vec<&str> = inserted
            .iter()
            .filter(|i| i.created)
            .map(|i| i.job.queue.as_str())
            .collect();
        created.sort_unstable();
        for group in created.chunk_by(|a, b| a == b) {
            EngineMetrics::inc(&self.metrics.enqueued, group[0], group.len() as u64);
        }
        Ok(inserted)
    }

    async fn job_fetch(&self, params: JobFetch) -> Result<Vec<Job>, StoreError> {
        let span = span("job_fetch");
        span.record("queue", tracing::field::debug(&params.queues));
        let jobs = self
            .call("job_fetch", span.clone(), self.inner.job_fetch(params))
            .await?;
        span.record("count", jobs.len());
        self.observe_waits(&jobs);
        Ok(jobs)
    }

    async fn job_insert_and_fetch_early(
        &self,
        job: JobInsert,
        fetch: JobFetch,
        urgency: Urgency,
    ) -> Result<(InsertedAndFetched, Durable), StoreError> {
        let span = span("job_insert_and_fetch");
        span.record("queue", job.queue.as_str());
        let (done, durable) = self
            .call(
                "job_insert_and_fetch",
                span.clone(),
                self.inner.job_insert_and_fetch_early(job, fetch, urgency),
            )
            .await?;
        span.record("count", done.fetched.len());
        if done.inserted.created {
            EngineMetrics::inc(&self.metrics.enqueued, &done.inserted.job.queue, 1);
        }
        self.observe_waits(&done.fetched);
        Ok((done, durable))
    }

    async fn job_finish_many(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Job, StoreError>>, StoreError> {
        let (span, kinds) = (finish_span(&finishes), finish_kinds(&finishes));
        self.finish_counted(span, kinds, self.inner.job_finish_many(finishes), job_ended)
            .await
    }

    async fn job_finish_many_brief(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Finished, StoreError>>, StoreError> {
        let (span, kinds) = (finish_span(&finishes), finish_kinds(&finishes));
        let call = self.inner.job_finish_many_brief(finishes);
        self.finish_counted(span, kinds, call, finished_ended).await
    }

    async fn job_heartbeat(&self, params: JobHeartbeat) -> Result<Heartbeat, StoreError> {
        let span = job_span("job_heartbeat", params.id);
        self.call("job_heartbeat", span, self.inner.job_heartbeat(params))
            .await
    }

    async fn job_cancel(&self, id: JobId) -> Result<Job, StoreError> {
        let job = self
            .call(
                "job_cancel",
                job_span("job_cancel", id),
                self.inner.job_cancel(id),
            )
            .await?;
        // A running job only gets `cancel_requested`; it is counted when it ends cancelled.
        if job.state == JobState::Cancelled {
            EngineMetrics::inc(&self.metrics.cancelled, &job.queue, 1);
        }
        Ok(job)
    }

    async fn job_retry(&self, id: JobId) -> Result<Job, StoreError> {
        let job = self
            .call(
                "job_retry",
                job_span("job_retry", id),
                self.inner.job_retry(id),
            )
            .await?;
        EngineMetrics::inc(&self.metrics.requeued, &job.queue, 1);
        Ok(job)
    }

    async fn job_retry_dead(&self, params: JobRetryDead) -> Result<u64, StoreError> {
        let queue = params.queue.clone();
        let span = queue_span("job_retry_dead", &queue);
        let moved = self
            .call("job_retry_dead", span, self.inner.job_retry_dead(params))
            .await?;
        EngineMetrics::inc(&self.metrics.requeued, &queue, moved);
        Ok(moved)
    }

    async fn job_delete(&self, id: JobId) -> Result<Job, StoreError> {
        self.call(
            "job_delete",
            job_span("job_delete", id),
            self.inner.job_delete(id),
        )
        .await
    }

    async fn job_ordering_head(
        &self,
        queue: &str,
        ordering_key: &str,
    ) -> Result<Option<JobId>, StoreError> {
        let op = "job_ordering_head";
        self.call(
            op,
            queue_span(op, queue),
            self.inner.job_ordering_head(queue, ordering_key),
        )
        .await
    }

    async fn job_get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.call("job_get", job_span("job_get", id), self.inner.job_get(id))
            .await
    }

    async fn job_list(&self, params: JobList) -> Result<Vec<Job>, StoreError> {
        let span = span("job_list");
        if let Some(q) = &params.queue {
            span.record("queue", q.as_str());
        }
        self.call("job_list", span, self.inner.job_list(params))
            .await
    }

    async fn job_list_lease_expired(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        let op = "job_list_lease_expired";
        self.call(op, span(op), self.inner.job_list_lease_expired(limit))
            .await
    }

    async fn job_next_lease_expiry(&self) -> Result<Option<Timestamp>, StoreError> {
        let op = "job_next_lease_expiry";
        self.call(op, span(op), self.inner.job_next_lease_expiry())
            .await
    }

    async fn job_promote_due(&self, limit: u32) -> Result<Vec<Promoted>, StoreError> {
        let op = "job_promote_due";
        self.call(op, span(op), self.inner.job_promote_due(limit))
            .await
    }

    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let op = "job_next_due_at";
        self.call(op, span(op), self.inner.job_next_due_at()).await
    }

    async fn job_prune(&self, params: JobPrune) -> Result<u64, StoreError> {
        let op = "job_prune";
        self.call(op, span(op), self.inner.job_prune(params)).await
    }

    async fn queue_list(&self) -> Result<Vec<QueueInfo>, StoreError> {
        let op = "queue_list";
        self.call(op, span(op), self.inner.queue_list()).await
    }

    async fn queue_get(&self, name: &str) -> Result<Option<QueueInfo>, StoreError> {
        let op = "queue_get";
        self.call(op, queue_span(op, name), self.inner.queue_get(name))
            .await
    }

    async fn queue_set_paused(&self, name: &str, paused: bool) -> Result<QueueInfo, StoreError> {
        let op = "queue_set_paused";
        self.call(
            op,
            queue_span(op, name),
            self.inner.queue_set_paused(name, paused),
        )
        .await
    }

    async fn subscription_put(
        &self,
        params: SubscriptionPut,
    ) -> Result<Upserted<Subscription>, StoreError> {
        let op = "subscription_put";
        self.call(op, span(op), self.inner.subscription_put(params))
            .await
    }

    async fn subscription_get(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let op = "subscription_get";
        self.call(op, span(op), self.inner.subscription_get(topic, name))
            .await
    }

    async fn subscription_list(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        let op = "subscription_list";
        self.call(op, span(op), self.inner.subscription_list(topic))
            .await
    }

    async fn subscription_delete(&self, topic: &str, name: &str) -> Result<bool, StoreError> {
        let op = "subscription_delete";
        self.call(op, span(op), self.inner.subscription_delete(topic, name))
            .await
    }

    async fn subscription_set_disabled(
        &self,
        params: SubscriptionSetDisabled,
    ) -> Result<Subscription, StoreError> {
        let op = "subscription_set_disabled";
        self.call(op, span(op), self.inner.subscription_set_disabled(params))
            .await
    }

    async fn subscription_record_delivery(
        &self,
        params: SubscriptionDelivery,
    ) -> Result<(), StoreError> {
        let op = "subscription_record_delivery";
        self.call(
            op,
            span(op),
            self.inner.subscription_record_delivery(params),
        )
        .await
    }

    async fn topic_publish(&self, params: TopicPublish) -> Result<Published, StoreError> {
        let op = "topic_publish";
        let span = span(op);
        span.record("queue", params.topic.as_str());
        let published = self
            .call(op, span.clone(), self.inner.topic_publish(params))
            .await?;
        span.record("count", published.jobs.len());
        let mut created: Vec<&str> = published.jobs.iter().map(|j| j.queue.as_str()).collect();
        created.sort_unstable();
        for group in created.chunk_by(|a, b| a == b) {
            EngineMetrics::inc(&self.metrics.enqueued, group[0], group.len() as u64);
        }
        Ok(published)
    }

    async fn topic_event_prune(&self, params: TopicEventPrune) -> Result<u64, StoreError> {
        let op = "topic_event_prune";
        self.call(op, span(op), self.inner.topic_event_prune(params))
            .await
    }

    async fn schedule_put(&self, params: SchedulePut) -> Result<Upserted<Schedule>, StoreError> {
        let op = "schedule_put";
        self.call(op, span(op), self.inner.schedule_put(params))
            .await
    }

    async fn schedule_get(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        let op = "schedule_get";
        self.call(op, span(op), self.inner.schedule_get(name)).await
    }

    async fn schedule_list(&self) -> Result<Vec<Schedule>, StoreError> {
        let op = "schedule_list";
        self.call(op, span(op), self.inner.schedule_list()).await
    }

    async fn schedule_delete(&self, name: &str) -> Result<bool, StoreError> {
        let op = "schedule_delete";
        self.call(op, span(op), self.inner.schedule_delete(name))
            .await
    }

    async fn schedule_claim_tick(&self, params: ScheduleClaimTick) -> Result<bool, StoreError> {
        let op = "schedule_claim_tick";
        self.call(op, span(op), self.inner.schedule_claim_tick(params))
            .await
    }

    async fn now(&self) -> Result<Timestamp, StoreError> {
        self.call("now", span("now"), self.inner.now()).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.call("close", span("close"), self.inner.close()).await
    }

    async fn leader_attempt_elect(&self, params: LeaderElect) -> Result<bool, StoreError> {
        let op = "leader_attempt_elect";
        self.call(op, span(op), self.inner.leader_attempt_elect(params))
            .await
    }

    async fn leader_resign(&self, node_id: &str) -> Result<(), StoreError> {
        let op = "leader_resign";
        self.call(op, span(op), self.inner.leader_resign(node_id))
            .await
    }

    fn change_feed(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        self.inner.change_feed()
    }
}

//! The `Store` trait: everything the job lifecycle needs from a database, and nothing more.
//!
//! The queue logic (retry policy, wake-ups, background services) lives once, above this trait,
//! in `buzzer-engine`; a store only persists and selects. Every store runs the same conformance
//! suite (`buzzer-store-tests`).
//!
//! Rules every implementation keeps:
//! - **Time** is the store's own clock (the database's `now()` where there is a server), never a
//!   caller's: params carry durations, not instants, wherever the store must add to "now".
//! - **Every transition out of `running` is guarded** by the lease token in the same statement;
//!   nothing leaves a terminal state except [`Store::job_retry`] / [`Store::job_retry_dead`].
//! - **Atomicity**: each method is all-or-nothing, except where it returns per-item results.

mod durable;
mod error;
mod params;
mod topics;

pub use durable::{Durable, Urgency};
pub use error::StoreError;
pub use params::*;
pub use topics::*;

use async_trait::async_trait;
use buzzer_types::{Job, JobId, QueueInfo, Schedule, Subscription};
use jiff::Timestamp;

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts the jobs in one transaction: all or none. A job whose `idempotency_key` is
    /// already held by a job in its queue (including an earlier job of the same call) is not
    /// inserted; that existing job comes back with `created = false`.
    ///
    /// A job with an `ordering_key` that has an unfinished predecessor in its queue waits for
    /// it (see [`JobFetch`]). Queues named by the jobs start to exist.
    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<Inserted>, StoreError>;

    /// Leases up to `max_jobs` available jobs (see [`JobFetch`] for the selection rules):
    /// each becomes `running`, its `attempt` goes up by one and it gets a fresh `lease_token`.
    async fn job_fetch(&self, params: JobFetch) -> Result<Vec<Job>, StoreError>;

    /// Inserts one job, then leases for `fetch` what [`Store::job_fetch`] would lease at that
    /// moment: the hand-off to a fetcher that is already waiting, so the new job can be running
    /// one commit after it was enqueued instead of two. The lease follows every rule of
    /// [`JobFetch`]; the new job is leased only if a plain fetch would have picked it.
    ///
    /// Answers once the change is durable. Stores implement
    /// [`job_insert_and_fetch_early`](Store::job_insert_and_fetch_early), not this.
    async fn job_insert_and_fetch(
        &self,
        job: JobInsert,
        fetch: JobFetch,
    ) -> Result<InsertedAndFetched, StoreError> {
        let (done, mut durable) = self
            .job_insert_and_fetch_early(job, fetch, Urgency::Now)
            .await?;
        durable.wait().await?;
        Ok(done)
    }

    /// [`job_insert_and_fetch`](Store::job_insert_and_fetch), answered as soon as the change
    /// is committed, before it is necessarily durable: the hand-off gives the leased jobs to
    /// their fetcher while the store makes the change durable, and the enqueue's caller is
    /// answered only once [`Durable`] resolves. A fetcher running the job earlier is safe: if
    /// the change is lost, the job and its lease are lost together, and no caller was told
    /// the job was accepted.
    ///
    /// For [`Urgency::WithNext`] a store may answer before it commits and hold the commit or
    /// the sync back briefly, for the caller's next write to share (SQLite holds the
    /// transaction open for the hybrid call's result); if that commit then fails, [`Durable`]
    /// carries the error. One whose commit is already durable answers with [`Durable::done`].
    ///
    /// A store that can should insert and lease in one transaction (either both happen or
    /// neither). The default runs them one after the other, each durable when it answers, and
    /// a failed fetch leases nothing rather than failing the insert, which has already
    /// committed.
    async fn job_insert_and_fetch_early(
        &self,
        job: JobInsert,
        fetch: JobFetch,
        _urgency: Urgency,
    ) -> Result<(InsertedAndFetched, Durable), StoreError> {
        let inserted = self
            .job_insert_many(vec![job])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Unavailable("the store inserted nothing".into()))?;
        let fetched = self.job_fetch(fetch).await.unwrap_or_default();
        Ok((InsertedAndFetched { inserted, fetched }, Durable::done()))
    }

    /// Applies each transition if the job is still `running` under the given lease token (and,
    /// with `require_lease_expired`, only if that lease has expired). The result per item is
    /// the updated job, [`StoreError::LeaseLost`] when the guard failed, or
    /// [`StoreError::NotFound`]. Items are independent: each item's change is atomic, but a
    /// store may apply a batch in more than one transaction (PostgreSQL commits plain
    /// completions in one statement of their own), so an error may come per item while others
    /// of the batch were applied.
    ///
    /// A failure transition records `{attempt, at, message, ..details}` in `errors` (detail
    /// fields named `attempt`, `at` or `message` are dropped). A `Retry` or `Release` of a job
    /// whose cancellation was requested cancels it instead. When a job with an `ordering_key`
    /// reaches a terminal state, the next job of its key becomes fetchable.
    async fn job_finish_many(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Job, StoreError>>, StoreError>;

    /// [`job_finish_many`](Store::job_finish_many), answering each item with where its job
    /// ended up instead of the whole job: the acknowledgement path needs no more, and a store
    /// that would have to read each job back to answer with it can skip that read.
    async fn job_finish_many_brief(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Finished, StoreError>>, StoreError> {
        Ok(self
            .job_finish_many(finishes)
            .await?
            .into_iter()
            .map(|r| r.map(|job| Finished::of(&job)))
            .collect())
    }

    /// Extends a lease by `lease_ms` from now and records progress, if the token still holds.
    async fn job_heartbeat(&self, params: JobHeartbeat) -> Result<Heartbeat, StoreError>;

    /// Cancels a non-terminal job. A `running` job is not stopped: it gets
    /// `cancel_requested = true` and stays `running` until its worker reports or its lease
    /// expires. Cancelling a terminal job is a [`StoreError::Conflict`].
    async fn job_cancel(&self, id: JobId) -> Result<Job, StoreError>;

    /// Operator retry: a `dead` or `cancelled` job goes back to `available` (attempt counter
    /// and errors kept, `cancel_requested` cleared). Any other state is a
    /// [`StoreError::Conflict`].
    async fn job_retry(&self, id: JobId) -> Result<Job, StoreError>;

    /// Moves up to `limit` dead jobs of a queue (optionally only those with a tag or in a set
    /// of ids) back to `available`, oldest first. Returns how many moved.
    async fn job_retry_dead(&self, params: JobRetryDead) -> Result<u64, StoreError>;

    /// Deletes a job that no worker holds, whatever its state, and returns it as it was. A
    /// `running` job is a [`StoreError::Conflict`] (its worker would report on a job that is
    /// gone): cancel it first. Deleting the job that holds its ordering key lets the next job of
    /// the key run, as its finishing would.
    async fn job_delete(&self, id: JobId) -> Result<Job, StoreError>;

    /// The job that currently holds an ordering key of a queue: the unfinished job of that key
    /// that is not waiting behind another. `None` when no job of the key is unfinished.
    async fn job_ordering_head(
        &self,
        queue: &str,
        ordering_key: &str,
    ) -> Result<Option<JobId>, StoreError>;

    /// One job, without its lease token.
    async fn job_get(&self, id: JobId) -> Result<Option<Job>, StoreError>;

    /// Jobs newest first, filtered; `before` pages (ids strictly older than it).
    async fn job_list(&self, params: JobList) -> Result<Vec<Job>, StoreError>;

    /// Running jobs whose lease has expired, oldest expiry first, with their lease tokens, so
    /// the rescuer can finish them through [`Store::job_finish_many`] with
    /// `require_lease_expired`.
    async fn job_list_lease_expired(&self, limit: u32) -> Result<Vec<Job>, StoreError>;

    /// The earliest lease expiry among running jobs.
    async fn job_next_lease_expiry(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Makes up to `limit` `scheduled`/`retryable` jobs whose time has come `available`.
    async fn job_promote_due(&self, limit: u32) -> Result<Vec<Promoted>, StoreError>;

    /// The earliest `scheduled_at` among `scheduled` and `retryable` jobs.
    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Deletes up to `limit` terminal jobs past their retention. Returns how many went.
    async fn job_prune(&self, params: JobPrune) -> Result<u64, StoreError>;

    /// Every queue with its counts.
    async fn queue_list(&self) -> Result<Vec<QueueInfo>, StoreError>;

    async fn queue_get(&self, name: &str) -> Result<Option<QueueInfo>, StoreError>;

    /// Pauses or resumes a queue that exists ([`StoreError::NotFound`] otherwise). A paused
    /// queue accepts jobs but [`Store::job_fetch`] hands none out.
    async fn queue_set_paused(&self, name: &str, paused: bool) -> Result<QueueInfo, StoreError>;

    /// Creates or replaces a subscription (see [`SubscriptionPut`]); `created` says which.
    async fn subscription_put(
        &self,
        params: SubscriptionPut,
    ) -> Result<Upserted<Subscription>, StoreError>;

    async fn subscription_get(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<Option<Subscription>, StoreError>;

    /// The subscriptions of one topic, or of every topic, by topic then name.
    async fn subscription_list(&self, topic: Option<&str>)
    -> Result<Vec<Subscription>, StoreError>;

    /// Deletes a subscription; `false` when there was none. Deliveries already made stay.
    async fn subscription_delete(&self, topic: &str, name: &str) -> Result<bool, StoreError>;

    /// Disables or re-enables a subscription; [`StoreError::NotFound`] when there is none.
    async fn subscription_set_disabled(
        &self,
        params: SubscriptionSetDisabled,
    ) -> Result<Subscription, StoreError>;

    /// Records one webhook delivery attempt in the subscription's delivery health. A
    /// subscription deleted meanwhile is not an error: there is nothing to record it on.
    async fn subscription_record_delivery(
        &self,
        params: SubscriptionDelivery,
    ) -> Result<(), StoreError>;

    /// Publishes an event (see [`TopicPublish`]): every delivery job, and the event's
    /// idempotency record, in one transaction. A repeat of a keyed publish changes nothing and
    /// answers the first publish's `event_id` and `deliveries` with `created = false`; of
    /// concurrent publishes with one key, exactly one makes deliveries.
    async fn topic_publish(&self, params: TopicPublish) -> Result<Published, StoreError>;

    /// Deletes up to `limit` idempotency records of old keyed publishes (see
    /// [`TopicEventPrune`]); returns how many went.
    async fn topic_event_prune(&self, params: TopicEventPrune) -> Result<u64, StoreError>;

    /// Creates or replaces a schedule (see [`SchedulePut`]); `created` says which.
    async fn schedule_put(&self, params: SchedulePut) -> Result<Upserted<Schedule>, StoreError>;

    async fn schedule_get(&self, name: &str) -> Result<Option<Schedule>, StoreError>;

    /// Every schedule, by name.
    async fn schedule_list(&self) -> Result<Vec<Schedule>, StoreError>;

    /// Deletes a schedule; `false` when there was none.
    async fn schedule_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Moves the schedule's `last_tick` to `tick` if it is behind it (compare-and-set);
    /// `false` when another claim got there first or the schedule is gone.
    async fn schedule_claim_tick(&self, params: ScheduleClaimTick) -> Result<bool, StoreError>;

    /// The store's clock.
    async fn now(&self) -> Result<Timestamp, StoreError>;

    /// Flushes and closes; later calls answer [`StoreError::Unavailable`].
    async fn close(&self) -> Result<(), StoreError>;

    /// Tries to become, or stay, the one node that runs the background services (scheduler,
    /// rescuer, pruner, cron) for `ttl_ms`. A store that serves a single process is always
    /// the leader.
    async fn leader_attempt_elect(&self, params: LeaderElect) -> Result<bool, StoreError> {
        let _ = params;
        Ok(true)
    }

    /// Gives leadership up at shutdown, so another node takes over at once instead of after
    /// the ttl.
    async fn leader_resign(&self, node_id: &str) -> Result<(), StoreError> {
        let _ = node_id;
        Ok(())
    }

    /// Changes committed by other processes sharing this database (PostgreSQL's
    /// `LISTEN/NOTIFY`), so long-polls, hybrid waits and SSE streams here wake for them. A
    /// store that serves a single process has none: the engine sees every change itself.
    fn change_feed(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }
}

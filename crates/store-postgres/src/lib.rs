//! Buzzer's multi-node store: many `buzzer serve` processes and workers on one PostgreSQL.
//!
//! - **Fetch** leases with `FOR UPDATE SKIP LOCKED`, walking a partial index per queue, in
//!   one round trip for a whole batch; concurrent fetchers on any node step over each other's
//!   rows instead of waiting.
//! - **Wake-ups across nodes**: every transaction that changes job states sends a compact
//!   `NOTIFY` on commit; each store `LISTEN`s on a dedicated connection and offers the changes
//!   as [`Store::change_feed`], which the engine turns into local wake-ups (long-polls, hybrid
//!   waits, SSE streams).
//! - **Leader election**: a `buzzer_leader` row with a ttl on the database's clock decides
//!   which node runs the scheduler, rescuer and pruner.
//! - **Transactional enqueue**: [`enqueue_in_transaction`] inserts jobs inside the caller's own
//!   transaction; they exist (and workers hear of them) only if it commits.
//! - **Time** is the database's `now()` (one instant per transaction), in whole milliseconds.
//! - **Migrations** are embedded (`migrations/*.sql`), recorded in `buzzer_migrations`, and
//!   applied under an advisory lock, so nodes starting together are safe.
//!
//! ```no_run
//! # async fn demo() -> Result<(), buzzer_store::StoreError> {
//! use buzzer_store::Store;
//! use buzzer_store_postgres::{PgOptions, PgStore};
//!
//! let store = PgStore::connect("postgres://buzzer@db.internal/app", PgOptions::default()).await?;
//! println!("{:?}", store.queue_list().await?);
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

mod announce;
mod checkpoint;
mod clock;
mod connect;
mod db;
mod error;
mod jobs;
mod leader;
mod listen;
mod migrate;
mod notify;
mod options;
mod queues;
mod row;
mod schedules;
mod subscriptions;
mod topics;

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use buzzer_store::{
    Change, Durable, Finished, Heartbeat, Inserted, InsertedAndFetched, JobFetch, JobFinish,
    JobHeartbeat, JobInsert, JobList, JobPrune, JobRetryDead, LeaderElect, Promoted, Published,
    ScheduleClaimTick, SchedulePut, Store, StoreError, SubscriptionDelivery, SubscriptionPut,
    SubscriptionSetDisabled, TopicEventPrune, TopicPublish, Upserted, Urgency,
};
use buzzer_types::{Job, JobId, QueueInfo, Schedule, Subscription};
use deadpool_postgres::{Object, Pool};
use jiff::Timestamp;
use tokio::sync::broadcast;

pub use checkpoint::checkpoint;
pub use connect::ConnectError;
pub use migrate::{MIGRATIONS, MigrateProgress, MigrateReport, Migration, latest};
pub use options::PgOptions;
/// The driver this crate speaks, so [`enqueue_in_transaction`] callers use the same version.
pub use tokio_postgres;

use crate::{announce::Announcer, db::Db, listen::Listener};

/// The PostgreSQL [`Store`]: a connection pool, a change listener and the SQL. Connect one per
/// process and share it (e.g. in an `Arc`); any number of processes may connect to the same
/// database and schema.
pub struct PgStore {
    pool: Pool,
    feed: broadcast::Sender<Change>,
    listener: Listener,
    /// Announces fetches' leases once they have committed.
    announcer: Announcer,
    /// `buzzer_changes:<schema>`.
    channel: String,
    /// Sent with this store's notifications, so its listener skips them: the engine above this
    /// store has already seen those changes.
    origin: String,
    schema: String,
    shown: String,
    closed: AtomicBool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .field("schema", &self.schema)
            .field("origin", &self.origin)
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`, with any
    /// parameter the driver knows, e.g. `options=-csearch_path%3Dbuzzer`, plus Buzzer's own
    /// `schema=NAME`), applies pending migrations (see [`PgOptions::migrate`]) and starts
    /// listening for changes made by other nodes.
    ///
    /// Fails with [`StoreError::Unavailable`] when the database cannot be reached, and with
    /// [`StoreError::Backend`] (a [`ConnectError`] naming the cause) for a bad URL or schema
    /// name, a failed migration, or a schema written by a newer Buzzer. Connections are
    /// unencrypted (`NoTls`): use a private network or a local TLS tunnel.
    ///
    /// ```no_run
    /// use buzzer_store_postgres::{PgOptions, PgStore};
    /// # async fn demo() -> Result<(), buzzer_store::StoreError> {
    /// let opts = PgOptions { schema: Some("buzzer".into()), ..PgOptions::default() };
    /// let store = PgStore::connect("postgres://buzzer@127.0.0.1/app", opts).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, opts: PgOptions) -> Result<PgStore, StoreError> {
        let target = connect::target(url, &opts)?;
        let origin = format!("{:016x}", rand::random::<u64>());
        let session = target.session(&origin);
        let pool = connect::pool(session.clone(), &opts)?;
        let named = |e: StoreError| named(&target.shown, e);
        let mut client = pool.get().await.map_err(|e| named(error::pool(e)))?;
        if opts.migrate {
            migrate::migrate(&mut client, target.schema.as_deref(), &mut |_| {})
                .await
                .map_err(|e| named(e.into()))?;
        } else {
            migrate::check(&client).await.map_err(|e| named(e.into()))?;
        }
        let schema = migrate::resolved_schema(&**client)
            .await
            .map_err(|e| named(e.into()))?;
        connect::check_schema(&schema).map_err(|m| {
            named(StoreError::backend(ConnectError(format!(
                "Buzzer's schema {schema:?}: {m}"
            ))))
        })?;
        warn_without_autovacuum(&client).await;
        drop(client);
        let channel = listen::channel(&schema);
        let (feed, _) = broadcast::channel(listen::FEED_CAPACITY);
        let listener = Listener::start(
            session,
            channel.clone(),
            origin.clone(),
            feed.clone(),
            opts.listener_check,
        )
        .await
        .map_err(|e| named(error::pg(e)))?;
        tracing::debug!(url = %target.shown, %schema, "PostgreSQL store connected");
        Ok(PgStore {
            announcer: Announcer::start(pool.clone()),
            pool,
            feed,
            listener,
            channel,
            origin,
            schema,
            shown: target.shown,
            closed: AtomicBool::new(false),
        })
    }

    /// The schema that holds Buzzer's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    async fn client(&self) -> Result<Object, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(error::closed());
        }
        self.pool.get().await.map_err(error::pool)
    }
}

/// Applies pending migrations to the database at `url` (see [`PgStore::connect`] for the URL
/// and [`PgOptions::schema`]), reporting each step to `progress`: what `buzzer migrate` runs.
/// Safe while other nodes run or start: migrations take an advisory lock.
///
/// ```no_run
/// # async fn demo() -> Result<(), buzzer_store::StoreError> {
/// use buzzer_store_postgres::{MigrateProgress, PgOptions, migrate};
///
/// let report = migrate("postgres://buzzer@127.0.0.1/app", &PgOptions::default(), |p| {
///     if let MigrateProgress::Applying(m) = p {
///         println!("applying {:04}_{}", m.version, m.name);
///     }
/// })
/// .await?;
/// println!("schema {} at version {}", report.schema, report.to);
/// # Ok(()) }
/// ```
pub async fn migrate(
    url: &str,
    opts: &PgOptions,
    mut progress: impl FnMut(MigrateProgress) + Send,
) -> Result<MigrateReport, StoreError> {
    let target = connect::target(url, opts)?;
    let (mut client, connection) = target
        .session("migrate")
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| named(&target.shown, error::pg(e)))?;
    let driver = tokio::spawn(connection);
    let report = migrate::migrate(&mut client, target.schema.as_deref(), &mut progress)
        .await
        .map_err(|e| named(&target.shown, e.into()));
    drop(client);
    let _ = driver.await;
    report
}

/// Inserts jobs inside the caller's own transaction: they exist only if that transaction
/// commits, and only then does PostgreSQL deliver the notification that wakes waiting
/// fetchers on every node (the outbox pattern, without an outbox). Same rules as
/// [`Store::job_insert_many`]: idempotency keys answer the existing job (`created = false`),
/// ordering keys queue behind their unfinished predecessors.
///
/// The transaction's connection must resolve Buzzer's tables through its `search_path` (the
/// default `public`, or e.g. `SET LOCAL search_path = buzzer` for a separate schema), and the
/// schema must be migrated. The jobs are taken as given: queue names, priorities and sizes are
/// not validated here (the engine validates requests before they become [`JobInsert`]s). A
/// job with an ordering key takes that key's advisory lock until the transaction ends.
///
/// ```no_run
/// # async fn demo(order_id: i64) -> Result<(), Box<dyn std::error::Error>> {
/// use buzzer_store::{JobInsert, RunAt};
/// use buzzer_store_postgres::{enqueue_in_transaction, tokio_postgres};
/// use buzzer_types::{Backoff, RawValue};
///
/// let (mut client, connection) =
///     tokio_postgres::connect("postgres://app@127.0.0.1/app", tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
///
/// let tx = client.transaction().await?;
/// tx.execute("UPDATE orders SET status = 'paid' WHERE id = $1", &[&order_id]).await?;
/// let receipt = JobInsert {
///     queue: "receipts".into(),
///     payload: RawValue::from_string(format!(r#"{{"order": {order_id}}}"#))?,
///     priority: 0,
///     run_at: RunAt::Now,
///     max_attempts: 20,
///     backoff: Backoff::default(),
///     timeout_ms: None,
///     idempotency_key: Some(format!("receipt-{order_id}")),
///     ordering_key: None,
///     tags: vec![],
///     metadata: Default::default(),
///     traceparent: None,
/// };
/// let inserted = enqueue_in_transaction(&tx, vec![receipt]).await?;
/// tx.commit().await?; // the order and its receipt job, or neither
/// println!("job {}", inserted[0].job.id);
/// # Ok(()) }
/// ```
pub async fn enqueue_in_transaction(
    tx: &tokio_postgres::Transaction<'_>,
    jobs: Vec<JobInsert>,
) -> Result<Vec<Inserted>, StoreError> {
    Ok(jobs::insert_many(tx, jobs).await?)
}

/// The jobs table lives on vacuum: every job that leaves `available` leaves a dead entry in the
/// fetch index, which each fetch walks over until vacuum removes it. Without autovacuum,
/// fetches slow down steadily; say so once, loudly, at start.
async fn warn_without_autovacuum(client: &Object) {
    let on = client
        .rows("SELECT current_setting('autovacuum') = 'on'", &[])
        .await
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r.try_get::<_, bool>(0).ok()));
    if on == Some(false) {
        tracing::warn!(
            "autovacuum is off on this PostgreSQL server: dead rows of finished jobs will pile up \
             in the fetch index and fetches will slow down until someone runs VACUUM buzzer_jobs"
        );
    }
}

/// Names the database in a connect-time error.
fn named(shown: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => {
            StoreError::Unavailable(format!("cannot reach PostgreSQL at {shown}: {m}"))
        }
        StoreError::Backend(inner) => {
            StoreError::backend(ConnectError(format!("PostgreSQL at {shown}: {inner}")))
        }
        other => other,
    }
}

/// The hot statements with names, for the plan checks in `tests/plans.rs`. Not a stable API.
#[doc(hidden)]
pub fn hot_statements() -> Vec<(&'static str, &'static str)> {
    use jobs::statements::*;
    vec![
        ("fetch", FETCH),
        ("fetch_notifying", FETCH_NOTIFYING),
        ("complete_many", COMPLETE_MANY),
        ("complete_many_brief", COMPLETE_MANY_BRIEF),
        ("promote", PROMOTE),
        ("prune_finished", PRUNE_FINISHED),
        ("prune_dead", PRUNE_DEAD),
        ("release_next", RELEASE_NEXT),
        ("lease_expired", LEASE_EXPIRED),
        ("next_due", NEXT_DUE),
        ("next_lease_expiry", NEXT_LEASE_EXPIRY),
    ]
}

/// The operator's reads with names, for the plan checks in `tests/plans.rs`: a queue's counts,
/// its dead jobs, and its jobs in each state (plain, and with a cursor and a tag). Their
/// parameters: the queue first, the limit last. Not a stable API.
#[doc(hidden)]
pub fn read_statements() -> Vec<(String, String)> {
    use buzzer_types::JobState;
    let mut out = vec![
        ("queue_counts".to_owned(), queues::GET.to_owned()),
        (
            "dead_of_queue".to_owned(),
            jobs::statements::DEAD_OF_QUEUE.to_owned(),
        ),
    ];
    for state in JobState::ALL {
        for (suffix, more) in [("", false), ("_before_tag", true)] {
            let filters = jobs::ListFilters {
                queue: true,
                state: Some(state),
                before: more,
                tag: more,
            };
            out.push((format!("list_{state}{suffix}"), jobs::list_sql(filters)));
        }
    }
    out
}

#[async_trait]
impl Store for PgStore {
    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<Inserted>, StoreError> {
        let mut client = self.client().await?;
        if jobs.iter().any(|j| j.ordering_key.is_some()) {
            // Key locks, insert and head hand-over belong in one transaction.
            let tx = client.transaction().await.map_err(error::pg)?;
            let inserted = jobs::insert_many(&tx, jobs).await?;
            tx.commit().await.map_err(error::pg)?;
            Ok(inserted)
        } else {
            // One statement: its own transaction.
            Ok(jobs::insert_many(&*client, jobs).await?)
        }
    }

    async fn job_fetch(&self, params: JobFetch) -> Result<Vec<Job>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::fetch(&*client, &self.announcer, params).await?)
    }

    /// One transaction, so one commit for the insert and the lease, durable when it answers.
    async fn job_insert_and_fetch_early(
        &self,
        job: JobInsert,
        fetch: JobFetch,
        _urgency: Urgency,
    ) -> Result<(InsertedAndFetched, Durable), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(error::pg)?;
        let inserted = jobs::insert_many(&tx, vec![job])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Unavailable("the store inserted nothing".into()))?;
        let fetched = jobs::fetch_in(&tx, fetch).await?;
        tx.commit().await.map_err(error::pg)?;
        Ok((InsertedAndFetched { inserted, fetched }, Durable::done()))
    }

    async fn job_finish_many(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Job, StoreError>>, StoreError> {
        let mut client = self.client().await?;
        // Other nodes hear of a lease before they hear of its job's finish.
        self.announcer.flush().await;
        Ok(jobs::finish_many(&mut client, finishes).await?)
    }

    /// Plain completions answer from the batch statement's own few columns, read back from
    /// nothing; the other items are read whole and answered like
    /// [`job_finish_many`](Store::job_finish_many).
    async fn job_finish_many_brief(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Finished, StoreError>>, StoreError> {
        let mut client = self.client().await?;
        self.announcer.flush().await;
        Ok(jobs::finish_many(&mut client, finishes).await?)
    }

    async fn job_heartbeat(&self, params: JobHeartbeat) -> Result<Heartbeat, StoreError> {
        let client = self.client().await?;
        Ok(jobs::heartbeat(&*client, params).await?)
    }

    async fn job_cancel(&self, id: JobId) -> Result<Job, StoreError> {
        let mut client = self.client().await?;
        Ok(jobs::cancel(&mut client, id).await?)
    }

    async fn job_retry(&self, id: JobId) -> Result<Job, StoreError> {
        let mut client = self.client().await?;
        Ok(jobs::retry(&mut client, id).await?)
    }

    async fn job_retry_dead(&self, params: JobRetryDead) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        Ok(jobs::retry_dead(&mut client, params).await?)
    }

    async fn job_delete(&self, id: JobId) -> Result<Job, StoreError> {
        let mut client = self.client().await?;
        Ok(jobs::delete(&mut client, id).await?)
    }

    async fn job_ordering_head(
        &self,
        queue: &str,
        ordering_key: &str,
    ) -> Result<Option<JobId>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::ordering_head(&*client, queue, ordering_key).await?)
    }

    async fn job_get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::get(&*client, id).await?)
    }

    async fn job_list(&self, params: JobList) -> Result<Vec<Job>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::list(&*client, params).await?)
    }

    async fn job_list_lease_expired(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::list_lease_expired(&*client, limit).await?)
    }

    async fn job_next_lease_expiry(&self) -> Result<Option<Timestamp>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::next_lease_expiry(&*client).await?)
    }

    async fn job_promote_due(&self, limit: u32) -> Result<Vec<Promoted>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::promote_due(&*client, limit).await?)
    }

    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let client = self.client().await?;
        Ok(jobs::next_due_at(&*client).await?)
    }

    async fn job_prune(&self, params: JobPrune) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(jobs::prune(&*client, params).await?)
    }

    async fn queue_list(&self) -> Result<Vec<QueueInfo>, StoreError> {
        let client = self.client().await?;
        Ok(queues::list(&*client).await?)
    }

    async fn queue_get(&self, name: &str) -> Result<Option<QueueInfo>, StoreError> {
        let client = self.client().await?;
        Ok(queues::get(&*client, name).await?)
    }

    /// A resume is announced, so fetchers waiting on other nodes look again.
    async fn queue_set_paused(&self, name: &str, paused: bool) -> Result<QueueInfo, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(error::pg)?;
        if !queues::set_paused(&tx, name, paused).await? {
            return Err(StoreError::NotFound);
        }
        if !paused {
            notify::queue_ready(&tx, &self.channel, &self.origin, name).await?;
        }
        let info = queues::get(&tx, name).await?;
        tx.commit().await.map_err(error::pg)?;
        info.ok_or(StoreError::NotFound)
    }

    async fn subscription_put(
        &self,
        params: SubscriptionPut,
    ) -> Result<Upserted<Subscription>, StoreError> {
        let client = self.client().await?;
        Ok(subscriptions::put(&*client, params).await?)
    }

    async fn subscription_get(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let client = self.client().await?;
        Ok(subscriptions::get(&*client, topic, name).await?)
    }

    async fn subscription_list(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        let client = self.client().await?;
        Ok(subscriptions::list(&*client, topic).await?)
    }

    async fn subscription_delete(&self, topic: &str, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(subscriptions::delete(&*client, topic, name).await?)
    }

    async fn subscription_set_disabled(
        &self,
        params: SubscriptionSetDisabled,
    ) -> Result<Subscription, StoreError> {
        let client = self.client().await?;
        Ok(subscriptions::set_disabled(&*client, params).await?)
    }

    async fn subscription_record_delivery(
        &self,
        params: SubscriptionDelivery,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        Ok(subscriptions::record_delivery(&*client, params).await?)
    }

    async fn topic_publish(&self, params: TopicPublish) -> Result<Published, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(error::pg)?;
        let published = topics::publish(&tx, params).await?;
        tx.commit().await.map_err(error::pg)?;
        Ok(published)
    }

    async fn topic_event_prune(&self, params: TopicEventPrune) -> Result<u64, StoreError> {
        let client = self.client().await?;
        Ok(topics::prune_events(&*client, params).await?)
    }

    async fn schedule_put(&self, params: SchedulePut) -> Result<Upserted<Schedule>, StoreError> {
        let client = self.client().await?;
        Ok(schedules::put(&*client, params).await?)
    }

    async fn schedule_get(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        let client = self.client().await?;
        Ok(schedules::get(&*client, name).await?)
    }

    async fn schedule_list(&self) -> Result<Vec<Schedule>, StoreError> {
        let client = self.client().await?;
        Ok(schedules::list(&*client).await?)
    }

    async fn schedule_delete(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(schedules::delete(&*client, name).await?)
    }

    async fn schedule_claim_tick(&self, params: ScheduleClaimTick) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(schedules::claim_tick(&*client, params).await?)
    }

    async fn now(&self) -> Result<Timestamp, StoreError> {
        let client = self.client().await?;
        let rows = client
            .rows(concat!("SELECT ", clock::now!()), &[])
            .await
            .map_err(error::pg)?;
        let row = rows.first().ok_or(StoreError::NotFound)?;
        row.try_get(0).map_err(error::pg)
    }

    /// Stops the listener, announces the leases not yet announced and closes the pool; later
    /// calls answer [`StoreError::Unavailable`]. Calls already holding a connection finish.
    /// Calling it again does nothing.
    async fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        self.listener.stop();
        self.announcer.flush().await;
        self.pool.close();
        Ok(())
    }

    async fn leader_attempt_elect(&self, params: LeaderElect) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(leader::attempt_elect(&*client, &params).await?)
    }

    async fn leader_resign(&self, node_id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        Ok(leader::resign(&*client, node_id).await?)
    }

    fn change_feed(&self) -> Option<broadcast::Receiver<Change>> {
        Some(self.feed.subscribe())
    }
}

//! Buzzer's embedded store: one SQLite file in WAL mode.
//!
//! - **Writes** go to one writer thread that group-commits: it runs every queued command in
//!   one transaction with a savepoint each and answers each caller only after the commit
//!   (with `synchronous=FULL`, after the fsync). See `writer.rs`.
//! - **Reads** run on a few separate connections and never wait for the writer.
//! - **Open** takes an exclusive lock on `<db>.lock`, checks the file, and applies the
//!   embedded migrations (`migrations/*.sql`, version in `PRAGMA user_version`).
//! - **Time** is this process's clock, in integer milliseconds in the database.
//!
//! ```no_run
//! # async fn demo() -> Result<(), buzzer_store::StoreError> {
//! use buzzer_store::Store;
//! use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
//!
//! let store = SqliteStore::open("buzzer.db", SqliteOptions::default())?;
//! println!("{:?}", store.queue_list().await?);
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

mod checkpointer;
mod clock;
mod error;
mod jobs;
mod migrate;
mod open;
mod options;
mod queues;
mod readers;
mod row;
mod schedules;
mod state;
mod subscriptions;
mod topics;
mod writer;

#[cfg(test)]
mod engine_tests;

use std::{
    fs::File,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use buzzer_store::{
    Durable, Finished, Heartbeat, Inserted, InsertedAndFetched, JobFetch, JobFinish, JobHeartbeat,
    JobInsert, JobList, JobPrune, JobRetryDead, Promoted, Published, ScheduleClaimTick,
    SchedulePut, Store, StoreError, SubscriptionDelivery, SubscriptionPut, SubscriptionSetDisabled,
    TopicEventPrune, TopicPublish, Upserted, Urgency,
};
use buzzer_types::{Job, JobId, QueueInfo, Schedule, Subscription, ms_to_timestamp};
use jiff::Timestamp;
use rusqlite::Connection;

pub use error::OpenError;
pub use migrate::MigrateProgress;
pub use options::{SqliteOptions, Synchronous};
pub use writer::WriterStats;

use crate::{
    checkpointer::Checkpointer,
    clock::Clock,
    error::Error,
    readers::Readers,
    writer::{SyncFn, Writer},
};

/// The SQLite [`Store`]. Open one per database file and share it (e.g. in an `Arc`); a second
/// open of the same file, in this process or another, fails while this one is open.
pub struct SqliteStore {
    // Field order is drop order: background checkpoints stop first, then the writer finishes
    // its queue and closes (checkpointing the WAL itself), and the lock on the file goes last.
    checkpointer: Mutex<Option<Checkpointer>>,
    writer: Writer,
    readers: Arc<Readers>,
    clock: Arc<Clock>,
    path: PathBuf,
    lock: Mutex<Option<File>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("writer", &self.writer)
            .field("readers", &self.readers)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    ///
    /// Fails, with a message naming the file and the cause, when the file is not a SQLite
    /// database or is damaged, belongs to another application, comes from a newer Buzzer
    /// (schema version above this build's), cannot be created or written, or is already open
    /// in another Buzzer store ([`StoreError::Unavailable`]: "the database is in use by another
    /// process"). Blocks while it checks and migrates; call it before serving.
    ///
    /// ```no_run
    /// use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
    /// let store = SqliteStore::open("/var/lib/buzzer/buzzer.db", SqliteOptions::default())?;
    /// # Ok::<(), buzzer_store::StoreError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, opts: SqliteOptions) -> Result<SqliteStore, StoreError> {
        Self::open_syncing(path.as_ref(), opts, |wal| Box::new(move || wal.sync_data()))
    }

    /// Brings the schema of the database at `path` (creating it if need be) up to this
    /// build's version and closes it, telling `progress` each step (`buzzer migrate`);
    /// [`open`](Self::open) does the same, logging the steps. Returns the versions before and
    /// after. Fails as `open` does, and leaves the file as it was if a migration fails.
    pub fn migrate(
        path: impl AsRef<Path>,
        mut progress: impl FnMut(MigrateProgress),
    ) -> Result<(i64, i64), StoreError> {
        open::migrate_file(path.as_ref(), &mut progress)
    }

    /// `open`, with `sync` standing in for the WAL's `fdatasync` (under `Synchronous::Full`):
    /// tests hold it to see what waits for the disk.
    #[cfg(test)]
    pub(crate) fn open_with_sync(path: &Path, sync: SyncFn) -> Result<SqliteStore, StoreError> {
        Self::open_syncing(path, SqliteOptions::default(), |_| sync)
    }

    fn open_syncing(
        path: &Path,
        opts: SqliteOptions,
        sync: impl FnOnce(File) -> SyncFn,
    ) -> Result<SqliteStore, StoreError> {
        let opened = open::open(path, &opts)?;
        let clock = Arc::new(Clock::default());
        let sync = match opts.synchronous {
            Synchronous::Full => Some(sync(opened.wal)),
            Synchronous::Normal => None,
        };
        let (checkpointer, nudge) = Checkpointer::spawn(opened.checkpoint).map_err(|e| {
            OpenError::new(path, format!("cannot start the checkpoint thread: {e}")).into_store()
        })?;
        let writer =
            Writer::spawn(opened.writer, Arc::clone(&clock), sync, Some(nudge)).map_err(|e| {
                OpenError::new(path, format!("cannot start the writer thread: {e}")).into_store()
            })?;
        tracing::debug!(path = %path.display(), synchronous = ?opts.synchronous, "SQLite store open");
        Ok(SqliteStore {
            checkpointer: Mutex::new(Some(checkpointer)),
            writer,
            readers: Readers::new(opened.readers),
            clock,
            path: path.to_owned(),
            lock: Mutex::new(Some(opened.lock)),
        })
    }

    /// The database file this store serves.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Counters of the writer thread, e.g. how many commands shared each commit.
    pub fn stats(&self) -> WriterStats {
        self.writer.stats()
    }

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
    {
        self.writer.submit(work).await
    }

    /// A fetch's jobs whole: a large batch's bodies are read here, on a read connection, once
    /// its lease is committed (see src/jobs/leased.rs).
    async fn whole(&self, fetched: jobs::Fetched) -> Result<Vec<Job>, StoreError> {
        match fetched {
            jobs::Fetched::Whole(jobs) => Ok(jobs),
            jobs::Fetched::Hot(leased) => {
                self.read(move |conn, _| jobs::with_bodies(conn, leased))
                    .await
            }
        }
    }

    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
    {
        let clock = Arc::clone(&self.clock);
        self.readers
            .read(move |conn| read(conn, clock.now_ms()))
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn job_insert_many(&self, jobs: Vec<JobInsert>) -> Result<Vec<Inserted>, StoreError> {
        self.write(move |conn, now| jobs::insert_many(conn, now, jobs))
            .await
    }

    async fn job_fetch(&self, params: JobFetch) -> Result<Vec<Job>, StoreError> {
        let fetched = self
            .write(move |conn, now| jobs::fetch(conn, now, params))
            .await?;
        self.whole(fetched).await
    }

    /// One command, so one transaction and one commit for both.
    /// Answered with the commit: the fetcher gets its jobs while the sync runs.
    async fn job_insert_and_fetch_early(
        &self,
        job: JobInsert,
        fetch: JobFetch,
        urgency: Urgency,
    ) -> Result<(InsertedAndFetched, Durable), StoreError> {
        let ((inserted, fetched), durable) = self
            .writer
            .submit_early(urgency, move |conn, now| {
                let inserted = jobs::insert_many(conn, now, vec![job])?
                    .pop()
                    .ok_or_else(|| StoreError::Unavailable("the store inserted nothing".into()))?;
                let fetched = jobs::fetch_after_insert(conn, now, fetch, &inserted)?;
                Ok((inserted, fetched))
            })
            .await?;
        let fetched = self.whole(fetched).await?;
        Ok((InsertedAndFetched { inserted, fetched }, durable))
    }

    async fn job_finish_many(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Job, StoreError>>, StoreError> {
        self.write(move |conn, now| jobs::finish_many(conn, now, finishes))
            .await
    }

    /// Plain completions answer from the batch statement itself: no job is read back.
    async fn job_finish_many_brief(
        &self,
        finishes: Vec<JobFinish>,
    ) -> Result<Vec<Result<Finished, StoreError>>, StoreError> {
        self.write(move |conn, now| jobs::finish_many_brief(conn, now, finishes))
            .await
    }

    async fn job_heartbeat(&self, params: JobHeartbeat) -> Result<Heartbeat, StoreError> {
        self.write(move |conn, now| jobs::heartbeat(conn, now, params))
            .await
    }

    async fn job_cancel(&self, id: JobId) -> Result<Job, StoreError> {
        self.write(move |conn, now| jobs::cancel(conn, now, id))
            .await
    }

    async fn job_retry(&self, id: JobId) -> Result<Job, StoreError> {
        self.write(move |conn, now| jobs::retry(conn, now, id))
            .await
    }

    async fn job_retry_dead(&self, params: JobRetryDead) -> Result<u64, StoreError> {
        self.write(move |conn, now| jobs::retry_dead(conn, now, params))
            .await
    }

    async fn job_delete(&self, id: JobId) -> Result<Job, StoreError> {
        self.write(move |conn, _| jobs::delete(conn, id)).await
    }

    async fn job_ordering_head(
        &self,
        queue: &str,
        ordering_key: &str,
    ) -> Result<Option<JobId>, StoreError> {
        let (queue, key) = (queue.to_owned(), ordering_key.to_owned());
        self.read(move |conn, _| jobs::ordering_head(conn, &queue, &key))
            .await
    }

    async fn job_get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.read(move |conn, _| jobs::get(conn, id)).await
    }

    async fn job_list(&self, params: JobList) -> Result<Vec<Job>, StoreError> {
        self.read(move |conn, _| jobs::list(conn, params)).await
    }

    async fn job_list_lease_expired(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.read(move |conn, now| jobs::list_lease_expired(conn, now, limit))
            .await
    }

    async fn job_next_lease_expiry(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn, _| jobs::next_lease_expiry(conn)).await
    }

    async fn job_promote_due(&self, limit: u32) -> Result<Vec<Promoted>, StoreError> {
        self.write(move |conn, now| jobs::promote_due(conn, now, limit))
            .await
    }

    async fn job_next_due_at(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn, _| jobs::next_due_at(conn)).await
    }

    async fn job_prune(&self, params: JobPrune) -> Result<u64, StoreError> {
        self.write(move |conn, now| jobs::prune(conn, now, params))
            .await
    }

    async fn queue_list(&self) -> Result<Vec<QueueInfo>, StoreError> {
        self.read(queues::list).await
    }

    async fn queue_get(&self, name: &str) -> Result<Option<QueueInfo>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn, now| queues::get(conn, now, &name))
            .await
    }

    async fn queue_set_paused(&self, name: &str, paused: bool) -> Result<QueueInfo, StoreError> {
        let name = name.to_owned();
        self.write(move |conn, now| queues::set_paused(conn, now, &name, paused))
            .await
    }

    async fn subscription_put(
        &self,
        params: SubscriptionPut,
    ) -> Result<Upserted<Subscription>, StoreError> {
        self.write(move |conn, now| subscriptions::put(conn, now, params))
            .await
    }

    async fn subscription_get(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let (topic, name) = (topic.to_owned(), name.to_owned());
        self.read(move |conn, _| subscriptions::get(conn, &topic, &name))
            .await
    }

    async fn subscription_list(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        let topic = topic.map(str::to_owned);
        self.read(move |conn, _| subscriptions::list(conn, topic.as_deref()))
            .await
    }

    async fn subscription_delete(&self, topic: &str, name: &str) -> Result<bool, StoreError> {
        let (topic, name) = (topic.to_owned(), name.to_owned());
        self.write(move |conn, _| subscriptions::delete(conn, &topic, &name))
            .await
    }

    async fn subscription_set_disabled(
        &self,
        params: SubscriptionSetDisabled,
    ) -> Result<Subscription, StoreError> {
        self.write(move |conn, now| subscriptions::set_disabled(conn, now, params))
            .await
    }

    async fn subscription_record_delivery(
        &self,
        params: SubscriptionDelivery,
    ) -> Result<(), StoreError> {
        self.write(move |conn, now| subscriptions::record_delivery(conn, now, params))
            .await
    }

    async fn topic_publish(&self, params: TopicPublish) -> Result<Published, StoreError> {
        self.write(move |conn, now| topics::publish(conn, now, params))
            .await
    }

    async fn topic_event_prune(&self, params: TopicEventPrune) -> Result<u64, StoreError> {
        self.write(move |conn, now| topics::prune_events(conn, now, params))
            .await
    }

    async fn schedule_put(&self, params: SchedulePut) -> Result<Upserted<Schedule>, StoreError> {
        self.write(move |conn, now| schedules::put(conn, now, params))
            .await
    }

    async fn schedule_get(&self, name: &str) -> Result<Option<Schedule>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn, _| schedules::get(conn, &name)).await
    }

    async fn schedule_list(&self) -> Result<Vec<Schedule>, StoreError> {
        self.read(|conn, _| schedules::list(conn)).await
    }

    async fn schedule_delete(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write(move |conn, _| schedules::delete(conn, &name))
            .await
    }

    async fn schedule_claim_tick(&self, params: ScheduleClaimTick) -> Result<bool, StoreError> {
        self.write(move |conn, _| schedules::claim_tick(conn, params))
            .await
    }

    async fn now(&self) -> Result<Timestamp, StoreError> {
        if self.writer.is_closed() {
            return Err(error::closed());
        }
        Ok(ms_to_timestamp(self.clock.now_ms()))
    }

    /// Lets the writer commit what is queued, checkpoints the WAL into the database file,
    /// closes every connection and releases the file. Calling it again does nothing.
    async fn close(&self) -> Result<(), StoreError> {
        // Stopped first, so that the writer's own checkpoint at its close waits for no other.
        let checkpointer = self
            .checkpointer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut checkpointer) = checkpointer {
            tokio::task::spawn_blocking(move || checkpointer.stop())
                .await
                .map_err(|e| StoreError::Unavailable(format!("closing failed: {e}")))?;
        }
        let thread = self.writer.close();
        self.readers.close();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| StoreError::Unavailable(format!("closing failed: {e}")))?
                .map_err(|_| StoreError::Unavailable("the SQLite writer thread panicked".into()))?;
        }
        drop(
            self.lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        Ok(())
    }
}

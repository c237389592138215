//! The one writer thread and its group commit.
//!
//! Every write is a command sent over a channel. The thread waits for the first command
//! (looking for a moment before it blocks, see [`soon`]), takes whatever else is already
//! queued, runs them all in one transaction with a savepoint each (a failing command rolls
//! back only itself), commits once (one fsync for the whole group), and only then answers
//! every caller. Under load, groups grow and fsyncs are shared; alone, a command commits at
//! once. No caller hears "done" before its change is durable.
//! With [`SyncFn`] given, the fsync runs on a second thread (see [`sync`]) while this one
//! runs the next group. A command sent with [`Writer::submit_early`] also hears its result at
//! the commit, for work that may go on while the sync runs (a hybrid call's hand-off); its
//! caller is told it is done only by the [`Durable`] that follows. A hybrid call's enqueue
//! hears it even before: its transaction is held open for the call's result to commit with it
//! (see [`held`]).

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use buzzer_store::{Durable, StoreError, Urgency};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::{
    checkpointer::Nudge,
    clock::Clock,
    error::{Error, closed},
};

mod command;
mod ends;
mod held;
mod soon;
mod sync;
use command::{Command, Pending, Staged};
use ends::Ends;
use held::Held;
pub(crate) use sync::SyncFn;
use sync::{Broken, Commands, Group, Syncer};

/// The most commands one transaction takes, so one group's latency stays bounded while a
/// flood is queued behind it.
const MAX_GROUP: usize = 512;

/// What the writer has done so far; see [`SqliteStore::stats`](crate::SqliteStore::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Commands run (each store write is one command).
    pub commands: u64,
    /// Transactions committed. Fewer than `commands` means group commit shared fsyncs.
    pub commits: u64,
    /// Groups whose transaction failed as a whole (each of their commands got the error).
    pub failed_groups: u64,
    /// fsyncs of the WAL by the sync thread. Fewer than `commits` means one sync covered
    /// several groups; 0 when the store does not wait for the disk.
    pub syncs: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commands: AtomicU64,
    commits: AtomicU64,
    failed_groups: AtomicU64,
    syncs: AtomicU64,
}

/// The handle the store keeps: sends commands and, on close, stops the thread.
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Box<dyn Command>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer on `conn`. With `sync`, callers are answered only after it has run
    /// once their group committed (the connection then commits without syncing itself);
    /// without, as soon as the commit returns.
    pub(crate) fn spawn(
        conn: Connection,
        clock: Arc<Clock>,
        sync: Option<SyncFn>,
        checkpoints: Option<Nudge>,
    ) -> std::io::Result<Writer> {
        Writer::spawn_holding(conn, clock, sync, checkpoints, held::HOLD)
    }

    /// [`spawn`](Writer::spawn), holding a hybrid call's transaction open up to `hold` (see
    /// [`held`]).
    fn spawn_holding(
        conn: Connection,
        clock: Arc<Clock>,
        sync: Option<SyncFn>,
        checkpoints: Option<Nudge>,
        hold: Duration,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let broken = Broken::default();
        let syncer = sync
            .map(|sync| Syncer::spawn(sync, Arc::clone(&counters), Arc::clone(&broken)))
            .transpose()?;
        let stages = Stages {
            clock,
            counters: Arc::clone(&counters),
            syncer,
            checkpoints,
            broken,
            hold,
        };
        let thread = std::thread::Builder::new()
            .name("buzzer-sqlite-writer".into())
            .spawn(move || run(conn, rx, stages))?;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// Runs `work(conn, now_ms)` in the next group and answers once that group is durable.
    /// The work must not commit or roll back itself. A caller that stops waiting does not
    /// cancel the command.
    pub(crate) async fn submit<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Box::new(Pending::new(work, reply)))?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `work` like [`submit`](Writer::submit), but answers with its result as soon as its
    /// group commits, and with [`Durable`] for the sync that follows. With
    /// [`Urgency::WithNext`] (a hybrid call's enqueue) it answers even before the commit, as the
    /// transaction is held open for the call's result (see [`held`]).
    pub(crate) async fn submit_early<T, F>(
        &self,
        urgency: Urgency,
        work: F,
    ) -> Result<(T, Durable), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
    {
        let (committed, answer) = oneshot::channel();
        let (durable, durable_answer) = oneshot::channel();
        self.send(Box::new(Staged::new(work, urgency, committed, durable)))?;
        let value = answer.await.map_err(|_| stopped())??;
        Ok((value, Durable::pending(durable_answer)))
    }

    fn send(&self, command: Box<dyn Command>) -> Result<(), StoreError> {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = tx.as_ref().ok_or_else(closed)?;
        tx.send(command).map_err(|_| stopped())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Stops taking commands, lets the thread finish the queued ones and checkpoint, and
    /// returns the thread to join (`None` if already closed).
    pub(crate) fn close(&self) -> Option<JoinHandle<()>> {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    pub(crate) fn stats(&self) -> WriterStats {
        WriterStats {
            commands: self.counters.commands.load(Ordering::Relaxed),
            commits: self.counters.commits.load(Ordering::Relaxed),
            failed_groups: self.counters.failed_groups.load(Ordering::Relaxed),
            syncs: self.counters.syncs.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Writer {
    /// Waits for queued commands to commit, so dropping a store loses no acknowledged write
    /// and releases the file before the next open.
    fn drop(&mut self) {
        if let Some(thread) = self.close()
            && thread.join().is_err()
        {
            tracing::error!("the SQLite writer thread panicked");
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the SQLite writer has stopped".into())
}

/// What the writer thread works with besides its connection and its commands.
struct Stages {
    clock: Arc<Clock>,
    counters: Arc<Counters>,
    syncer: Option<Syncer>,
    checkpoints: Option<Nudge>,
    broken: Broken,
    /// How long a hybrid call's transaction is held open (see [`held`]).
    hold: Duration,
}

fn run(conn: Connection, rx: mpsc::Receiver<Box<dyn Command>>, stages: Stages) {
    let Stages {
        clock,
        counters,
        syncer,
        mut checkpoints,
        broken,
        hold,
    } = stages;
    if let Some(checkpoints) = &checkpoints {
        checkpoints.install(&conn);
    }
    let mut ends = Ends {
        counters: &counters,
        syncer: syncer.as_ref(),
        checkpoints: checkpoints.as_mut(),
    };
    let mut open: Option<Held> = None;
    while let Some(first) = next(&rx, &conn, &mut open, &mut ends) {
        let mut group: Commands = Vec::with_capacity(16);
        group.push(first);
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(command) => group.push(command),
                Err(_) => break,
            }
        }
        if let Some(cause) = broken.get() {
            let message = format!("the store stopped writing after a failed sync: {cause}");
            let held = open.take().map(|held| held.commands).unwrap_or_default();
            ends.fail(&conn, held.into_iter().chain(group), &message);
            continue;
        }
        counters
            .commands
            .fetch_add(group.len() as u64, Ordering::Relaxed);
        let before = conn.total_changes();
        let held = open.take();
        let ran = run_group(&conn, &mut group, &clock, held.is_some());
        let wrote = conn.total_changes() != before;
        let urgent = wrote && group.iter().any(|c| c.urgency() == Urgency::Now);
        let until = match ran {
            Ok(true) if !urgent => {
                held::until(&group, wrote, held.as_ref().map(|held| held.until), hold)
            }
            _ => None,
        };
        let (mut commands, changes) = match held {
            Some(mut held) => {
                held.commands.append(&mut group);
                (held.commands, held.changes)
            }
            None => (group, before),
        };
        match (ran, until) {
            (Ok(true), Some(until)) => {
                commands.iter_mut().for_each(|c| c.committed());
                open = Some(Held {
                    commands,
                    changes,
                    until,
                });
            }
            (Ok(true), _) => ends.commit(&conn, commands, changes, urgent),
            (ran, _) => ends.finish(&conn, commands, ran, changes, urgent),
        }
    }
    if let Some(syncer) = syncer {
        syncer.finish();
    }
    // Fold the WAL into the database so the next open starts from a small WAL.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "SQLite checkpoint at close failed");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite write connection failed");
    }
}

/// The next command, `None` once every sender is gone and the queue is drained (close drains
/// first). A held transaction whose wait runs out first is committed.
fn next(
    rx: &mpsc::Receiver<Box<dyn Command>>,
    conn: &Connection,
    open: &mut Option<Held>,
    ends: &mut Ends<'_>,
) -> Option<Box<dyn Command>> {
    loop {
        let Some(held) = open else {
            return soon::recv_soon(rx).ok();
        };
        if let Some(command) = soon::recv_soon_until(rx, held.until) {
            return Some(command);
        }
        // Nobody in a hurry came: the sync thread may still hold it back for the result.
        if let Some(held) = open.take() {
            ends.commit(conn, held.commands, held.changes, false);
        }
    }
}

/// Runs a group in a new transaction, or in the held one (`in_txn`), and leaves it open;
/// `Ok(false)` when its one command failed and nothing was left to commit. An `Err` means the
/// transaction itself failed (begin, a savepoint), not one command: none of it may commit.
///
/// A lone command in a new transaction, the usual group under a steady load (a worker's fetch,
/// then its batch of results), runs without a savepoint: its transaction is all the savepoint
/// would have covered, so a failure rolls that back instead. A savepoint copies every page the
/// command first touches into the statement journal, in case it has to be restored; with the
/// hot statements needing no journal of their own (see `jobs::fetch`), a lone fetch or batch
/// of results now copies no page at all.
fn run_group(
    conn: &Connection,
    group: &mut [Box<dyn Command>],
    clock: &Clock,
    in_txn: bool,
) -> rusqlite::Result<bool> {
    if !in_txn {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        if let [command] = group {
            if command.run(conn, clock.now_ms()) {
                return Ok(true);
            }
            // Already rolled back if SQLite ended the transaction itself (an I/O error, a full
            // disk); either way the command's own error is its answer.
            if !conn.is_autocommit() {
                conn.prepare_cached("ROLLBACK")?.execute([])?;
            }
            return Ok(false);
        }
    }
    for command in group.iter_mut() {
        conn.prepare_cached("SAVEPOINT command")?.execute([])?;
        if !command.run(conn, clock.now_ms()) {
            // Fails if SQLite already rolled back the whole transaction (an I/O error, a full
            // disk): then the earlier commands are lost too, and the group must fail.
            conn.prepare_cached("ROLLBACK TO command")?.execute([])?;
        }
        conn.prepare_cached("RELEASE command")?.execute([])?;
    }
    Ok(true)
}

#[cfg(test)]
mod early_tests;
#[cfg(test)]
mod held_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
mod tests;

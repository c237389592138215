//! The sync stage: makes committed groups durable, then answers their callers.
//!
//! SQLite's `synchronous=FULL` fsyncs the WAL inside `COMMIT`, on the writer thread, so the
//! writer sat idle for the whole fsync before it could start the next group; on a disk whose
//! fsync takes milliseconds that wait, not SQLite's work, set the pace. Here SQLite runs with
//! `synchronous=NORMAL` (a commit writes its WAL frames to the OS and returns), the writer hands
//! each committed group to this thread and goes on with the next, and this thread runs
//! `fdatasync` on the WAL and only then answers. A caller still hears "done" only after its
//! change is on disk: `fdatasync` flushes every frame written before it was called, so one sync
//! covers every group committed before it started, and while it runs the next groups queue up
//! to share the sync after it. A group whose callers are in no hurry (a hybrid call's enqueue,
//! whose caller waits for the job's result anyway) waits up to [`LAZY_WAIT`] for one that is,
//! so that one sync serves both; a group that changed nothing is not synced at all.
//!
//! Why this is as safe as `FULL`: checkpoints still sync the WAL before copying it into the
//! database and sync the database after (SQLite does that at `NORMAL` too), and a restarted WAL
//! syncs its new header before any frame follows it. A crash before a group's sync can lose
//! that group and the ones after it, none of them answered; WAL recovery stops at the first
//! frame whose checksum chain breaks, so it never keeps a later group without an earlier one.
//! What a reader connection sees is the committed state, which may include a group whose sync
//! is still running: a crash in that window loses what the reader saw, and the change's own
//! caller never heard "done".

use std::{
    io,
    sync::{Arc, OnceLock, atomic::Ordering, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use buzzer_store::StoreError;

use super::{Command, Counters};

/// Makes everything written to the WAL so far durable.
pub(crate) type SyncFn = Box<dyn FnMut() -> io::Result<()> + Send>;

/// The first failed sync, kept: after a failed `fsync` the kernel may have dropped the dirty
/// pages and report the next `fsync` as a success, so no later write can be trusted to be
/// durable. The store refuses every write from then on; reopening it runs SQLite's recovery.
pub(super) type Broken = Arc<OnceLock<String>>;

/// The commands of one transaction.
pub(super) type Commands = Vec<Box<dyn Command>>;

/// A committed transaction on its way to its callers.
pub(super) struct Group {
    pub(super) commands: Commands,
    /// Whether it changed anything. One that did not has nothing to make durable, but its
    /// answers may rest on earlier groups' changes (an idempotent enqueue that found the job
    /// an earlier group inserted), so it is still answered only after those are synced.
    pub(super) wrote: bool,
    /// Whether a caller waits for it to be on disk: it ended with a group that changed something
    /// for a caller answered only once durable. The writer knows, as a transaction held open
    /// for a hybrid call may also hold commands that changed nothing. Others wait up to
    /// [`LAZY_WAIT`] for an urgent one to share its sync. A group that changed nothing does not
    /// hurry a sync: it waits for the earlier groups it may rest on, and a hybrid call's worker,
    /// fetching again with an empty queue while its call's enqueue is held back, would
    /// otherwise force the sync that the call's result should share.
    pub(super) urgent: bool,
}

pub(super) struct Syncer {
    tx: mpsc::Sender<Group>,
    thread: JoinHandle<()>,
}

impl Syncer {
    pub(super) fn spawn(
        sync: SyncFn,
        counters: Arc<Counters>,
        broken: Broken,
    ) -> io::Result<Syncer> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("buzzer-sqlite-sync".into())
            .spawn(move || run(rx, sync, &counters, &broken))?;
        Ok(Syncer { tx, thread })
    }

    /// Queues a committed group; its callers are answered once it is durable.
    pub(super) fn push(&self, group: Group) {
        if let Err(mpsc::SendError(group)) = self.tx.send(group) {
            // The thread is gone (it panicked): nothing will sync these.
            fail_all(
                group.commands,
                "the write was committed but the sync thread has stopped",
            );
        }
    }

    /// Lets the thread sync and answer everything queued, then waits for it.
    pub(super) fn finish(self) {
        drop(self.tx);
        if self.thread.join().is_err() {
            tracing::error!("the SQLite sync thread panicked");
        }
    }
}

fn run(rx: mpsc::Receiver<Group>, mut sync: SyncFn, counters: &Counters, broken: &Broken) {
    while let Ok(first) = super::soon::recv_soon(&rx) {
        let mut groups = vec![first];
        groups.extend(rx.try_iter());
        // Held back only to share a sync: a round with nothing to sync answers at once (and
        // gathers nothing, so `wrote` holds for the whole round).
        let wrote = groups.iter().any(|g| g.wrote);
        if wrote && !groups.iter().any(|g| g.urgent) {
            gather_urgent(&rx, &mut groups);
        }
        let outcome = match broken.get() {
            Some(cause) => Err(cause.clone()),
            // Every group before these was synced in an earlier round: nothing to wait for.
            None if !wrote => Ok(()),
            None => {
                let synced = sync().map_err(|e| e.to_string());
                if synced.is_ok() {
                    counters.syncs.fetch_add(1, Ordering::Relaxed);
                }
                synced
            }
        };
        match outcome {
            Ok(()) => groups
                .into_iter()
                .flat_map(|g| g.commands)
                .for_each(|c| c.reply()),
            Err(cause) => {
                if broken.set(cause.clone()).is_ok() {
                    tracing::error!(error = %cause, "syncing the SQLite WAL failed; the store refuses writes until it is reopened");
                }
                fail_all(
                    groups.into_iter().flat_map(|g| g.commands),
                    &format!("the write was committed but could not be made durable: {cause}"),
                );
            }
        }
    }
}

/// How long groups that nobody is in a hurry for wait for one that is, to share its sync.
///
/// A hybrid call's enqueue is the case in point: its job is handed to a waiting worker at the
/// commit, the worker's result commits a moment later and is synced at once (its caller is
/// waiting), and that one sync makes both durable. Synced on its own, the enqueue would hold
/// the result's sync up behind it. Short, so a result that takes longer costs little.
pub(super) const LAZY_WAIT: Duration = Duration::from_millis(1);

/// Adds to `groups` what commits within [`LAZY_WAIT`], until an urgent group arrives or the
/// writer closes.
fn gather_urgent(rx: &mpsc::Receiver<Group>, groups: &mut Vec<Group>) {
    let deadline = Instant::now() + LAZY_WAIT;
    while let Ok(group) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let arrived = groups.len();
        groups.push(group);
        groups.extend(rx.try_iter());
        if groups[arrived..].iter().any(|g| g.urgent) {
            return;
        }
    }
}

/// Fails every command with `message`.
pub(super) fn fail_all(commands: impl IntoIterator<Item = Box<dyn Command>>, message: &str) {
    for command in commands {
        command.fail(StoreError::Unavailable(message.to_owned()));
    }
}

//! The background checkpoint: copies the WAL into the database file on a thread of its own.
//!
//! SQLite checkpoints on the connection that commits, once the WAL holds 1,000 pages. That
//! connection is the writer's, so every ~4 MiB of commits the writer copied the WAL's pages
//! into the database file and waited for two fsyncs (the WAL's, then the database's) before it
//! could run the next group; a drain writes that much several times a second. Here the
//! writer notes the WAL's size after each commit and, every [`CHECKPOINT_PAGES`] written by
//! large commits, nudges a thread with a connection of its own, which runs a `PASSIVE`
//! checkpoint: one that takes no lock a writer or a reader waits for. After small commits the
//! writer still checkpoints by itself (see [`Nudge::committed`]). W1 in-process, alternating
//! with the writer doing every checkpoint (10 pairs): 59,400 against 57,700 jobs/s drained and
//! 159,900 against 150,000 enqueued, better in 9 and 8 of the pairs.
//!
//! The WAL starts over from its beginning only when a write transaction begins with every
//! frame already copied, which a checkpoint running beside a steady stream of commits seldom
//! leaves behind it. So once the WAL reaches [`BACKSTOP_PAGES`] the writer copies the rest
//! itself, and its next transaction starts the WAL over. It waits for the thread to leave
//! that rest small first (see [`Nudge::backstop`]): copying a whole thread's worth of pages
//! on the writer held a W1 drain up for up to 20 ms at a time. It also checkpoints by itself
//! if the thread has stopped.
//!
//! A checkpoint syncs the WAL before it copies any of it (the connection runs at `NORMAL`, as
//! the writer's does), so no frame reaches the database file before it is durable in the WAL:
//! the argument of src/writer/sync.rs holds as it did.

use std::{
    cell::Cell,
    io,
    os::raw::c_int,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
        mpsc::{self, SyncSender, TrySendError},
    },
    thread::JoinHandle,
};

use rusqlite::{Connection, hooks::Wal};

/// The WAL growth, in pages, that starts a background checkpoint: SQLite's own threshold.
const CHECKPOINT_PAGES: i64 = 1_000;

/// The pages a commit writes on average, over the last [`CHECKPOINT_PAGES`], for its
/// checkpoint to go to the thread: a W1 drain's fetches and batches of results write tens to
/// hundreds, a hybrid call's commits about five.
const LARGE_COMMIT_PAGES: i64 = 20;

/// The WAL size, in pages, from which the writer makes it start over (16 MiB at 4 KiB). At
/// 64 MiB the drain measured slower (63,900 against 69,200 jobs/s, 6 pairs): until it first
/// starts over the WAL grows, and each sync then also commits the file's new size.
const BACKSTOP_PAGES: i64 = 4_096;

/// Past the backstop, the most pages the thread may leave uncopied for the writer to copy
/// itself. Each of the thread's passes copies what was committed during the one before, so
/// a few passes bring the rest down to what commits in one pass's two syncs.
const BACKSTOP_REST: i64 = 128;

/// The WAL size at which the writer copies the rest itself however large it is: the thread
/// cannot keep up, or a reader holds the WAL back. 64 MiB, the size the WAL is cut back to
/// when it starts over (`journal_size_limit`), so a WAL the thread cannot keep small still
/// starts over at a size it has had before.
const BACKSTOP_LIMIT: i64 = 4 * BACKSTOP_PAGES;

/// The checkpoint thread. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    nudge: SyncSender<()>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The writer's side: tells the checkpoint thread when the WAL has grown enough.
#[derive(Debug)]
pub(crate) struct Nudge {
    nudge: SyncSender<()>,
    /// The WAL's pages the last checkpoint left copied, by the thread or the writer.
    copied: Arc<AtomicI64>,
    /// The WAL's size after the last commit: a smaller one means it started over.
    pages: i64,
    /// The WAL's size at the last nudge or checkpoint by the writer; 0 after it started over.
    nudged_at: i64,
    /// Commits since then, this one included.
    commits: i64,
}

impl Checkpointer {
    /// Starts the thread on `conn`; the [`Nudge`] goes to the writer's thread.
    pub(crate) fn spawn(conn: Connection) -> io::Result<(Checkpointer, Nudge)> {
        // One nudge waiting is enough: a checkpoint copies whatever is there when it runs.
        let (nudge, nudged) = mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let copied = Arc::new(AtomicI64::new(0));
        let thread_copied = Arc::clone(&copied);
        let thread = std::thread::Builder::new()
            .name("buzzer-sqlite-checkpoint".into())
            .spawn(move || {
                while nudged.recv().is_ok() && !stopping.load(Ordering::Acquire) {
                    match checkpoint(&conn) {
                        Ok(Some(pages)) => thread_copied.store(pages, Ordering::Release),
                        // The writer's own checkpoint was running: it reports for both.
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "a background checkpoint of the SQLite WAL failed; the writer checkpoints by itself once the WAL is large"),
                    }
                }
            })?;
        let writer_side = Nudge {
            nudge: nudge.clone(),
            copied,
            pages: 0,
            nudged_at: 0,
            commits: 0,
        };
        let checkpointer = Checkpointer {
            nudge,
            stop,
            thread: Some(thread),
        };
        Ok((checkpointer, writer_side))
    }

    /// Stops the thread after the checkpoint in progress, if any, and waits for it.
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Full means a nudge is already waiting, which wakes the thread as well.
        let _ = self.nudge.try_send(());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the SQLite checkpoint thread panicked");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

thread_local! {
    /// The WAL's size in pages after the last commit on this thread's connection.
    static WAL_PAGES: Cell<i64> = const { Cell::new(0) };
}

/// SQLite calls it after every commit on the connection it is registered on, on the
/// committing thread.
fn note_wal_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(i64::from(pages)));
    Ok(())
}

impl Nudge {
    /// Takes over the checkpoints of `conn`, the writer's connection, which from now on must
    /// only be used on the calling thread. Turns SQLite's own automatic checkpoint off.
    pub(crate) fn install(&self, conn: &Connection) {
        conn.wal_hook(Some(note_wal_pages));
    }

    /// After a commit on the installed connection, every [`CHECKPOINT_PAGES`] of WAL: wakes
    /// the checkpoint thread if large commits filled them, and otherwise checkpoints on `conn`
    /// itself, as SQLite would have; so does it when the thread is gone. Past
    /// [`BACKSTOP_PAGES`] see [`Nudge::backstop`].
    ///
    /// Large commits are a drain's or a burst's, whose pace is the writer's. Small ones are
    /// lone calls', whose pace is their round trips: a checkpoint between them delays few,
    /// and lets the WAL start over at the next transaction, to be overwritten in place. One in
    /// the background, beside a steady stream of small commits, seldom finds the WAL all
    /// copied when the writer begins, so the WAL grew instead, and a sync that makes a file
    /// longer costs more: W3 in-process measured 6% slower with every checkpoint in the
    /// background, and the same as before with the small commits' checkpoints on the writer.
    pub(crate) fn committed(&mut self, conn: &Connection) {
        self.commits += 1;
        let pages = WAL_PAGES.with(Cell::get);
        let last = std::mem::replace(&mut self.pages, pages);
        if pages < last {
            // The WAL started over: its pages are this commit's alone. A pass of the thread
            // that ends after this may store its count from the old WAL; the worst that does
            // is one large copy on the writer, as before the rest was watched.
            self.nudged_at = 0;
            self.commits = 1;
            self.copied.store(0, Ordering::Release);
        }
        if pages >= BACKSTOP_PAGES {
            self.backstop(conn, pages);
            return;
        }
        if pages - self.nudged_at < CHECKPOINT_PAGES {
            return;
        }
        let large = (pages - self.nudged_at) / self.commits >= LARGE_COMMIT_PAGES;
        self.nudged_at = pages;
        self.commits = 0;
        // Should the thread's pass be running, it copies as much; the next try is 1,000 pages on.
        if !(large && self.hand_over()) {
            self.copy_here(conn);
        }
    }

    /// With the WAL at the backstop: copies the rest on `conn` if the thread has left little
    /// (or the WAL has reached [`BACKSTOP_LIMIT`], or the thread is gone), and otherwise keeps
    /// the thread copying, one pass after another, until it has.
    fn backstop(&mut self, conn: &Connection, pages: i64) {
        let rest = pages - self.copied.load(Ordering::Acquire);
        if rest > BACKSTOP_REST && pages < BACKSTOP_LIMIT && self.hand_over() {
            return;
        }
        // The WAL starts over at the next transaction unless a reader still reads from it; then
        // each copy would cost its two syncs for a few pages, so it waits for as many pages as
        // the rest may hold.
        if pages - self.nudged_at < BACKSTOP_REST {
            return;
        }
        if self.copy_here(conn) {
            self.nudged_at = pages;
            self.commits = 0;
        }
    }

    /// Wakes the thread (a nudge already waiting does as well); `false` if it is gone.
    fn hand_over(&self) -> bool {
        !matches!(self.nudge.try_send(()), Err(TrySendError::Disconnected(())))
    }

    /// Checkpoints on the writer's connection and notes what is copied; `false` if the
    /// thread's pass was running (a `PASSIVE` checkpoint does not wait for another), so that
    /// the next commit tries again. A failed checkpoint is logged and counts as done: trying
    /// again at every commit would only repeat the failure.
    fn copy_here(&self, conn: &Connection) -> bool {
        match checkpoint(conn) {
            Ok(Some(pages)) => {
                self.copied.store(pages, Ordering::Release);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "checkpointing the SQLite WAL failed");
                true
            }
        }
    }
}

/// Copies what it can of the WAL into the database file; returns how many of the WAL's pages
/// are copied now (counted from its start), or `None` if another checkpoint was running.
fn checkpoint(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let busy: i64 = r.get(0)?;
        (busy == 0).then(|| r.get(2)).transpose()
    })
}

#[cfg(test)]
mod tests;

//! The commands the writer runs, and how each answers its caller.

use buzzer_store::{StoreError, Urgency};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::Error;

/// A unit of work on the write connection, with the caller waiting for its answer.
pub(super) trait Command: Send {
    /// Runs inside the group's transaction; `false` if the command failed (its savepoint is
    /// then rolled back).
    fn run(&mut self, conn: &Connection, now_ms: i64) -> bool;
    /// How soon the caller needs its group on disk.
    fn urgency(&self) -> Urgency {
        Urgency::Now
    }
    /// Its group committed; the sync may still be to come.
    fn committed(&mut self) {}
    /// Its group committed and is durable.
    fn reply(self: Box<Self>);
    /// Sends `error` instead: its group did not commit, or could not be made durable.
    fn fail(self: Box<Self>, error: StoreError);
}

/// A command's work, then its outcome.
struct Work<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, Error>>,
}

impl<T, F> Work<T, F>
where
    F: FnOnce(&Connection, i64) -> Result<T, Error>,
{
    fn new(work: F) -> Work<T, F> {
        Work {
            work: Some(work),
            outcome: None,
        }
    }

    fn run(&mut self, conn: &Connection, now_ms: i64) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn, now_ms);
        let ok = result.is_ok();
        self.outcome = Some(result);
        ok
    }

    fn answer(&mut self) -> Result<T, StoreError> {
        match self.outcome.take() {
            Some(outcome) => outcome.map_err(StoreError::from),
            None => Err(StoreError::Unavailable("the command did not run".into())),
        }
    }
}

/// Answered once its group is durable.
pub(super) struct Pending<T, F> {
    work: Work<T, F>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Pending<T, F>
where
    F: FnOnce(&Connection, i64) -> Result<T, Error>,
{
    pub(super) fn new(work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Pending<T, F> {
        Pending {
            work: Work::new(work),
            reply,
        }
    }
}

impl<T, F> Command for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
{
    fn run(&mut self, conn: &Connection, now_ms: i64) -> bool {
        self.work.run(conn, now_ms)
    }

    fn reply(mut self: Box<Self>) {
        // A caller that stopped waiting still had its change committed; nobody to tell.
        let _ = self.reply.send(self.work.answer());
    }

    fn fail(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

/// Answered twice: with its result once its group commits, then once that group is durable.
pub(super) struct Staged<T, F> {
    work: Work<T, F>,
    urgency: Urgency,
    /// Taken at the commit; still here if the group never committed.
    committed: Option<oneshot::Sender<Result<T, StoreError>>>,
    durable: oneshot::Sender<Result<(), StoreError>>,
}

impl<T, F> Staged<T, F>
where
    F: FnOnce(&Connection, i64) -> Result<T, Error>,
{
    pub(super) fn new(
        work: F,
        urgency: Urgency,
        committed: oneshot::Sender<Result<T, StoreError>>,
        durable: oneshot::Sender<Result<(), StoreError>>,
    ) -> Staged<T, F> {
        Staged {
            work: Work::new(work),
            urgency,
            committed: Some(committed),
            durable,
        }
    }
}

impl<T, F> Command for Staged<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, i64) -> Result<T, Error> + Send + 'static,
{
    fn run(&mut self, conn: &Connection, now_ms: i64) -> bool {
        self.work.run(conn, now_ms)
    }

    fn urgency(&self) -> Urgency {
        self.urgency
    }

    fn committed(&mut self) {
        if let Some(committed) = self.committed.take() {
            let _ = committed.send(self.work.answer());
        }
    }

    fn reply(self: Box<Self>) {
        let _ = self.durable.send(Ok(()));
    }

    fn fail(self: Box<Self>, error: StoreError) {
        match self.committed {
            Some(committed) => {
                let _ = committed.send(Err(error));
            }
            None => {
                let _ = self.durable.send(Err(error));
            }
        }
    }
}

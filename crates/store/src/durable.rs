use tokio::sync::oneshot;

use crate::StoreError;

/// The durability of a write whose result was answered before it was on disk: resolves
/// once the change is committed and on disk (see
/// [`Store::job_insert_and_fetch_early`](crate::Store::job_insert_and_fetch_early)).
///
/// A store whose commit is already durable (PostgreSQL with `synchronous_commit = on`) hands
/// out [`Durable::done`].
#[derive(Debug)]
pub struct Durable(Option<oneshot::Receiver<Result<(), StoreError>>>);

impl Durable {
    /// The write is already on disk.
    pub fn done() -> Durable {
        Durable(None)
    }

    /// The write is on disk once `answer` says so; a dropped sender means the store stopped
    /// before it could tell, which is not durable.
    pub fn pending(answer: oneshot::Receiver<Result<(), StoreError>>) -> Durable {
        Durable(Some(answer))
    }

    /// Waits until the write is durable, or for the reason it cannot be. Once it has
    /// answered `Ok`, later waits answer at once.
    pub async fn wait(&mut self) -> Result<(), StoreError> {
        match self.0.take() {
            None => Ok(()),
            Some(answer) => answer.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the store stopped before the write was made durable".into(),
                ))
            }),
        }
    }
}

/// How soon the caller of an early-answered write needs it on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// As soon as it commits: the caller's answer waits on this write alone.
    Now,
    /// The caller also waits for a later write (a hybrid call waits for its job's result),
    /// whose commit and sync make this one durable too, so a store may hold this one's commit
    /// or sync back briefly for that write to share.
    WithNext,
}

//! A hybrid call's transaction, held open for its result.
//!
//! A hybrid call's enqueue ([`Urgency::WithNext`]) is handed to its worker as soon as it has
//! run, and its caller waits for the job's result anyway, which is usually the writer's next
//! command. Committed on its own, the enqueue wrote the job's pages to the WAL only for the
//! result's commit to write most of them again a moment later. Instead the writer leaves the
//! transaction open after such a group: the result runs in it, and one commit writes both.
//!
//! Nothing is promised earlier than before: an early answer says only that the command ran,
//! and its [`Durable`](buzzer_store::Durable) resolves once the commit that holds it is synced,
//! or carries the error if that commit fails. What other connections see is still only what
//! committed; held work shows once it commits. The wait is bounded: a group that changes
//! something for a caller who is answered only once durable (a result, an ordinary enqueue)
//! commits at once and takes the held work with it, and with none the transaction commits
//! [`HOLD`] after it was opened.

use std::time::{Duration, Instant};

use buzzer_store::Urgency;

use super::{Command, Commands};

/// How long a hybrid call's transaction waits for its result, as long as the sync thread holds
/// a lazy group back for the same reason (`sync::LAZY_WAIT`).
pub(super) const HOLD: Duration = super::sync::LAZY_WAIT;

/// A transaction left open after its commands ran.
pub(super) struct Held {
    /// Every command run in it so far, each already told [`Command::committed`].
    pub(super) commands: Commands,
    /// `total_changes` when it began.
    pub(super) changes: u64,
    /// When it commits even if no result has come.
    pub(super) until: Instant,
}

/// Until when to leave the transaction open after `group`, which nobody is in a hurry for,
/// ran in it (`wrote`: whether the group changed anything), if at all: a group with a hybrid
/// call's enqueue opens the wait, and later groups keep it open until `held_until`.
///
/// A group that changed nothing keeps the wait (the call's worker fetching again with an
/// empty queue): its caller is answered once the held work is durable too, as its answer may
/// rest on that work.
pub(super) fn until(
    group: &[Box<dyn Command>],
    wrote: bool,
    held_until: Option<Instant>,
    hold: Duration,
) -> Option<Instant> {
    // Only a transaction with something in it is worth holding open.
    let until = held_until.or_else(|| {
        (wrote && group.iter().any(|c| c.urgency() == Urgency::WithNext))
            .then(|| Instant::now() + hold)
    })?;
    (Instant::now() < until).then_some(until)
}

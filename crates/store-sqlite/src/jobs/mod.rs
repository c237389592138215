//! The job SQL, one file per part of the lifecycle. Each function runs on a connection handed
//! to it (the writer's, inside its group transaction, or a reader's) and takes the store's
//! `now` in milliseconds from the caller, so one command sees one instant.

mod complete;
pub(crate) mod completed;
mod fetch;
mod finish;
mod handoff;
mod insert;
mod leased;
mod maintain;
mod operator;
mod ordering;
mod read;

pub(crate) use complete::{finish_many, finish_many_brief};
pub(crate) use fetch::fetch;
pub(crate) use finish::heartbeat;
pub(crate) use handoff::fetch_after_insert;
pub(crate) use insert::insert_many;
pub(crate) use leased::{Fetched, with_bodies};
pub(crate) use maintain::{promote_due, prune};
pub(crate) use operator::{cancel, delete, retry, retry_dead};
pub(crate) use ordering::head as ordering_head;
pub(crate) use read::{get, list, list_lease_expired, next_due_at, next_lease_expiry};

/// "The job still holds its ordering key", spelled exactly as in the `jobs_ordering` index's
/// WHERE, which SQLite matches term by term. An OR, not an IN list: see migration 7.
macro_rules! unfinished {
    () => {
        "(state = 0 /*scheduled*/ OR state = 1 /*available*/ OR state = 2 /*running*/ \
         OR state = 3 /*retryable*/)"
    };
}
pub(crate) use unfinished;

/// Reads full jobs back by id, after a statement changed their hot rows: `RETURNING` sees
/// only the table it changes, and the full job joins in the body (the `job_rows` view).
mod rows;

#[cfg(test)]
mod plan_tests;

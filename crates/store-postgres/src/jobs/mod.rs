//! The job SQL, one file per part of the lifecycle. Each function runs on the connection it is
//! handed ([`crate::db::Db`]: a pooled client, a transaction, or an application's transaction)
//! and takes the time from the database (`now()`, see [`crate::clock`]).

mod answer;
mod complete;
mod fetch;
mod finish;
mod insert;
mod list;
mod maintain;
mod operator;
mod ordering;
mod read;

pub(crate) use fetch::{fetch, fetch_in};
pub(crate) use finish::{finish_many, heartbeat};
pub(crate) use insert::insert_many;
pub(crate) use list::{ListFilters, list, list_sql};
pub(crate) use maintain::{promote_due, prune};
pub(crate) use operator::{cancel, delete, retry, retry_dead};
pub(crate) use ordering::head as ordering_head;
pub(crate) use read::{get, list_lease_expired, next_due_at, next_lease_expiry};

/// The hot statements, for the plan checks (`tests/plans.rs` through [`crate::explain`]).
pub(crate) mod statements {
    pub(crate) use super::complete::{COMPLETE_MANY, COMPLETE_MANY_BRIEF};
    pub(crate) use super::fetch::{FETCH, FETCH_NOTIFYING};
    pub(crate) use super::maintain::{PROMOTE, PRUNE_DEAD, PRUNE_FINISHED};
    pub(crate) use super::operator::DEAD_OF_QUEUE;
    pub(crate) use super::ordering::RELEASE_NEXT;
    pub(crate) use super::read::{LEASE_EXPIRED, NEXT_DUE, NEXT_LEASE_EXPIRY};
}

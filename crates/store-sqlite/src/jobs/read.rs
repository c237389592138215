//! Reads, on the read connections. Jobs come back without their lease token, except to the
//! rescuer, which needs it to finish an expired lease under the guard.

use buzzer_store::JobList;
use buzzer_types::{Job, JobId, ms_to_timestamp};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter, types::Value};

use crate::{
    error::Error,
    row::{self, job_columns},
    state::Stored,
};

pub(super) const LEASE_EXPIRED: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM job_rows WHERE state = 2 /*running*/ AND lease_expires_at <= ?1 \
     ORDER BY lease_expires_at LIMIT ?2"
);

pub(super) const NEXT_LEASE_EXPIRY: &str =
    "SELECT MIN(lease_expires_at) FROM jobs WHERE state = 2 /*running*/";

pub(super) const NEXT_DUE: &str =
    "SELECT MIN(scheduled_at) FROM jobs WHERE state IN (0 /*scheduled*/, 3 /*retryable*/)";

pub(crate) fn get(conn: &Connection, id: JobId) -> Result<Option<Job>, Error> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT ",
            job_columns!(),
            " FROM job_rows WHERE id = ?1"
        ))?
        .query_row([id.0], row::job_without_lease)
        .optional()?)
}

/// Newest first. The SQL names only the filters given, so SQLite can pick the index that fits
/// them (a catch-all `?1 IS NULL OR …` form would hide every index from the planner).
pub(crate) fn list(conn: &Connection, params: JobList) -> Result<Vec<Job>, Error> {
    let mut sql = String::from(concat!(
        "SELECT ",
        job_columns!(),
        " FROM job_rows WHERE 1 = 1"
    ));
    let mut args: Vec<Value> = Vec::new();
    if let Some(queue) = params.queue {
        sql.push_str(" AND queue = ?");
        args.push(Value::Text(queue));
    }
    if let Some(state) = params.state {
        sql.push_str(" AND state = ?");
        args.push(Value::Integer(Stored(state).code()));
    }
    if let Some(before) = params.before {
        sql.push_str(" AND id < ?");
        args.push(Value::Integer(before.0));
    }
    if let Some(tag) = params.tag {
        sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(job_rows.tags) WHERE value = ?)");
        args.push(Value::Text(tag));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(Value::Integer(i64::from(params.limit)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let jobs = stmt
        .query_map(params_from_iter(args), row::job_without_lease)?
        .collect::<Result<_, _>>()?;
    Ok(jobs)
}

pub(crate) fn list_lease_expired(
    conn: &Connection,
    now: i64,
    limit: u32,
) -> Result<Vec<Job>, Error> {
    let jobs = conn
        .prepare_cached(LEASE_EXPIRED)?
        .query_map(params![now, limit], row::job)?
        .collect::<Result<_, _>>()?;
    Ok(jobs)
}

pub(crate) fn next_lease_expiry(conn: &Connection) -> Result<Option<Timestamp>, Error> {
    min(conn, NEXT_LEASE_EXPIRY)
}

pub(crate) fn next_due_at(conn: &Connection) -> Result<Option<Timestamp>, Error> {
    min(conn, NEXT_DUE)
}

fn min(conn: &Connection, sql: &str) -> Result<Option<Timestamp>, Error> {
    let ms: Option<i64> = conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
    Ok(ms.map(ms_to_timestamp))
}

//! Reads. Jobs come back without their lease token, except to the rescuer, which needs it to
//! finish an expired lease under the guard.

use buzzer_store::JobList;
use buzzer_types::{Job, JobId};
use jiff::Timestamp;
use tokio_postgres::types::ToSql;

use crate::{
    clock::now,
    db::Db,
    error::Error,
    row::{self, job_columns},
};

const GET: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM buzzer_jobs j WHERE j.id = $1"
);

pub(crate) const LEASE_EXPIRED: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM buzzer_jobs j WHERE j.state = 'running' AND j.lease_expires_at <= ",
    now!(),
    " ORDER BY j.lease_expires_at LIMIT $1"
);

pub(crate) const NEXT_LEASE_EXPIRY: &str =
    "SELECT min(j.lease_expires_at) FROM buzzer_jobs j WHERE j.state = 'running'";

pub(crate) const NEXT_DUE: &str = "SELECT min(j.scheduled_at) FROM buzzer_jobs j \
    WHERE j.state IN ('scheduled', 'retryable')";

pub(crate) async fn get(db: &impl Db, id: JobId) -> Result<Option<Job>, Error> {
    db.rows(GET, &[&id.0])
        .await?
        .first()
        .map(row::job_without_lease)
        .transpose()
}

/// Newest first. The SQL names only the filters given, so the planner can pick the index that
/// fits them (a catch-all `$1 IS NULL OR …` form would hide the indexes from it).
pub(crate) async fn list(db: &impl Db, params: JobList) -> Result<Vec<Job>, Error> {
    let mut sql = String::from(concat!(
        "SELECT ",
        job_columns!(),
        " FROM buzzer_jobs j WHERE true"
    ));
    let state = params.state.map(|s| s.as_str());
    let before = params.before.map(|b| b.0);
    let limit = i64::from(params.limit);
    let mut args: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(queue) = &params.queue {
        args.push(queue);
        sql.push_str(&format!(" AND j.queue = ${}", args.len()));
    }
    if let Some(state) = &state {
        args.push(state);
        sql.push_str(&format!(" AND j.state = ${}", args.len()));
    }
    if let Some(before) = &before {
        args.push(before);
        sql.push_str(&format!(" AND j.id < ${}", args.len()));
    }
    if let Some(tag) = &params.tag {
        args.push(tag);
        sql.push_str(&format!(" AND ${}::text = ANY(j.tags)", args.len()));
    }
    args.push(&limit);
    sql.push_str(&format!(" ORDER BY j.id DESC LIMIT ${}", args.len()));
    db.rows(&sql, &args)
        .await?
        .iter()
        .map(row::job_without_lease)
        .collect()
}

pub(crate) async fn list_lease_expired(db: &impl Db, limit: u32) -> Result<Vec<Job>, Error> {
    db.rows(LEASE_EXPIRED, &[&i64::from(limit)])
        .await?
        .iter()
        .map(row::job)
        .collect()
}

pub(crate) async fn next_lease_expiry(db: &impl Db) -> Result<Option<Timestamp>, Error> {
    min(db, NEXT_LEASE_EXPIRY).await
}

pub(crate) async fn next_due_at(db: &impl Db) -> Result<Option<Timestamp>, Error> {
    min(db, NEXT_DUE).await
}

async fn min(db: &impl Db, sql: &str) -> Result<Option<Timestamp>, Error> {
    let rows = db.rows(sql, &[]).await?;
    Ok(match rows.first() {
        Some(row) => row.try_get(0)?,
        None => None,
    })
}

//! Reads. Jobs come back without their lease token, except to the rescuer, which needs it to
//! finish an expired lease under the guard.

use buzzer_types::{Job, JobId};
use jiff::Timestamp;

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

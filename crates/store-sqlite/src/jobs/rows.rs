use buzzer_types::{Job, JobId};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::{error::Error, row::job_columns};

type Map = fn(&Row<'_>) -> rusqlite::Result<Job>;

pub(super) const BY_IDS: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM job_rows WHERE id IN (SELECT value FROM json_each(?1))"
);

pub(super) const BY_ID: &str = concat!("SELECT ", job_columns!(), " FROM job_rows WHERE id = ?1");

/// The jobs of `ids`, in no particular order; an id with no job is skipped.
pub(super) fn by_ids(conn: &Connection, ids: &[i64], map: Map) -> Result<Vec<Job>, Error> {
    // One id, the latency path: by rowid, without a JSON list and the temporary table its
    // `IN` builds.
    match ids {
        [] => return Ok(Vec::new()),
        [id] => {
            let job = conn
                .prepare_cached(BY_ID)?
                .query_row([id], map)
                .optional()?;
            return Ok(job.into_iter().collect());
        }
        _ => {}
    }
    let jobs = conn
        .prepare_cached(BY_IDS)?
        .query_map([serde_json::to_string(ids)?], map)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(jobs)
}

/// The job `id`, which the caller knows exists (it just changed it).
pub(super) fn by_id(conn: &Connection, id: JobId, map: Map) -> rusqlite::Result<Job> {
    conn.prepare_cached(BY_ID)?.query_row([id.0], map)
}

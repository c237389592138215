//! What a batch of finishes answers each item with: the whole job ([`Job`], for callers that
//! show it) or only where it ended up ([`Finished`], for acknowledgements). The batch
//! completion returns just the columns its answer reads, so an acknowledgement does not carry
//! every completed job's payload and result back over the wire.

use buzzer_store::Finished;
use buzzer_types::{Job, JobId, JobState};
use tokio_postgres::Row;

use super::complete::{COMPLETE_MANY, COMPLETE_MANY_BRIEF};
use crate::{error::Error, row};

pub(crate) trait Answer: Sized + Send {
    /// The batch completion ([`super::complete`]), returning the columns [`Answer::completed`]
    /// reads.
    const COMPLETE_MANY: &'static str;

    /// A row of [`Answer::COMPLETE_MANY`].
    fn completed(row: &Row) -> Result<Self, Error>;

    /// A job another path finished and read whole.
    fn of(job: Job) -> Self;

    fn id(&self) -> i64;
}

impl Answer for Job {
    const COMPLETE_MANY: &'static str = COMPLETE_MANY;

    fn completed(row: &Row) -> Result<Job, Error> {
        row::job(row)
    }

    fn of(job: Job) -> Job {
        job
    }

    fn id(&self) -> i64 {
        self.id.0
    }
}

impl Answer for Finished {
    const COMPLETE_MANY: &'static str = COMPLETE_MANY_BRIEF;

    /// The batch completes only jobs without an ordering key, and ends each at `finished_at`.
    fn completed(row: &Row) -> Result<Finished, Error> {
        Ok(Finished {
            id: JobId(row.try_get(0)?),
            queue: row.try_get(1)?,
            state: JobState::Completed,
            ordering_key: None,
            started_at: row.try_get(2)?,
            ended_at: row.try_get(3)?,
        })
    }

    fn of(job: Job) -> Finished {
        Finished::of(&job)
    }

    fn id(&self) -> i64 {
        self.id.0
    }
}

//! Lists of jobs, newest first, by any mix of queue, state, tag and cursor.

use buzzer_store::JobList;
use buzzer_types::{Job, JobState};
use tokio_postgres::types::{ToSql, Type};

use crate::{
    db::Db,
    error::Error,
    row::{self, job_columns},
};

/// Which filters a list names; each combination is its own SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListFilters {
    pub(crate) queue: bool,
    pub(crate) state: Option<JobState>,
    pub(crate) before: bool,
    pub(crate) tag: bool,
}

/// The SQL for `filters`, its parameters numbered in the order queue, cursor, tag, limit (the
/// ones named). The SQL names only the filters given, so the planner can pick the index that
/// fits them (a catch-all `$1 IS NULL OR …` form would hide the indexes from it), and the state
/// is a literal, so that even a generic plan sees which partial index can serve it (a state is
/// one of a fixed set of words: nothing to quote). Sent unnamed ([`Db::rows_planned`]), so each
/// list is planned for its own queue: a generic plan can only assume the average queue, and
/// for a few big queues walks the primary key for a small one.
///
/// A queue's available jobs are in no single index in id order: `buzzer_jobs_queue_state`
/// holds only the blocked ones and `buzzer_jobs_fetch` the others, by priority (see
/// migrations/0005). So that list takes the ids from each part (bounded by the queue's
/// available jobs) and keeps the newest; asked as one `state = 'available'` filter, the
/// planner walks the primary key down from the newest job, through every newer job of other
/// queues and states, and through all of them when the queue has none.
pub(crate) fn list_sql(filters: ListFilters) -> String {
    let mut n = 0;
    let mut param = || {
        n += 1;
        format!("${n}")
    };
    let mut conditions = String::new();
    let queue = filters.queue.then(&mut param);
    if let Some(queue) = &queue {
        conditions.push_str(&format!(" AND j.queue = {queue}"));
    }
    if let Some(state) = filters.state {
        conditions.push_str(&format!(" AND j.state = '{}'", state.as_str()));
    }
    if filters.before {
        conditions.push_str(&format!(" AND j.id < {}", param()));
    }
    if filters.tag {
        conditions.push_str(&format!(" AND {}::text = ANY(j.tags)", param()));
    }
    let limit = param();
    if queue.is_some() && filters.state == Some(JobState::Available) {
        format!(
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM buzzer_jobs j WHERE j.id = ANY(ARRAY(SELECT u.id FROM (\
                   SELECT j.id FROM buzzer_jobs j WHERE NOT j.blocked{c} \
                   UNION ALL SELECT j.id FROM buzzer_jobs j WHERE j.blocked{c}) u \
                 ORDER BY u.id DESC LIMIT {limit})) ORDER BY j.id DESC"
            ),
            c = conditions,
            limit = limit
        )
    } else {
        format!(
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM buzzer_jobs j WHERE true{c} ORDER BY j.id DESC LIMIT {limit}"
            ),
            c = conditions,
            limit = limit
        )
    }
}

pub(crate) async fn list(db: &impl Db, params: JobList) -> Result<Vec<Job>, Error> {
    let sql = list_sql(ListFilters {
        queue: params.queue.is_some(),
        state: params.state,
        before: params.before.is_some(),
        tag: params.tag.is_some(),
    });
    let before = params.before.map(|b| b.0);
    let limit = i64::from(params.limit);
    let mut args: Vec<(&(dyn ToSql + Sync), Type)> = Vec::new();
    if let Some(queue) = &params.queue {
        args.push((queue, Type::TEXT));
    }
    if let Some(before) = &before {
        args.push((before, Type::INT8));
    }
    if let Some(tag) = &params.tag {
        args.push((tag, Type::TEXT));
    }
    args.push((&limit, Type::INT8));
    db.rows_planned(&sql, &args)
        .await?
        .iter()
        .map(row::job_without_lease)
        .collect()
}

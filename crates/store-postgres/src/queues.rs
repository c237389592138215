//! Queues: their paused flag and the counts the API shows.

use buzzer_types::{QueueInfo, StateCounts};
use jiff::Timestamp;
use tokio_postgres::{Row, types::Type};

use crate::{clock::now, db::Db, error::Error, row};

/// One statement, so counts and flags come from one snapshot. Each job is counted from exactly
/// one index (see migrations/0005): cold states and blocked jobs from
/// `buzzer_jobs_queue_state`, unblocked available jobs from `buzzer_jobs_fetch`, running jobs
/// from `buzzer_jobs_lease`. Available jobs come in two rows (blocked and not), which
/// [`infos`] adds up. `OFFSET 0` keeps the oldest available job a per-queue subquery; folded
/// into the outer query, it was computed again for each state's row.
macro_rules! info_sql {
    ($queue:literal, $where:literal) => {
        concat!(
            "SELECT q.name, q.paused, c.state, c.n, ",
            now!(),
            ", o.oldest FROM buzzer_queues q \
             CROSS JOIN LATERAL (SELECT least(\
               (SELECT min(a.scheduled_at) FROM buzzer_jobs a WHERE a.queue = ",
            $queue,
            " AND a.state = 'available' AND NOT a.blocked), \
               (SELECT min(b.scheduled_at) FROM buzzer_jobs b WHERE b.queue = ",
            $queue,
            " AND b.state = 'available' AND b.blocked)) AS oldest OFFSET 0) o \
             CROSS JOIN LATERAL (\
               SELECT s.state, count(*) AS n FROM buzzer_jobs s WHERE s.queue = ",
            $queue,
            " AND (s.state NOT IN ('available', 'running') OR s.blocked) GROUP BY s.state \
               UNION ALL SELECT 'available', count(*) FROM buzzer_jobs f WHERE f.queue = ",
            $queue,
            " AND f.state = 'available' AND NOT f.blocked \
               UNION ALL SELECT 'running', count(*) FROM buzzer_jobs r WHERE r.queue = ",
            $queue,
            " AND r.state = 'running' AND NOT r.blocked) c ",
            $where,
            " ORDER BY q.name"
        )
    };
}

/// Counts every job of every queue: whichever way it reads them is fine.
const LIST: &str = info_sql!("q.name", "");

/// One queue: its name as the argument itself, not the joined row's, so the planner knows how
/// many jobs it has and walks the indexes for a small queue (for `q.name` it can only assume
/// the average queue, and for a few big queues that means reading the table). Sent unnamed
/// ([`Db::rows_planned`]), so every call is planned for its queue.
pub(crate) const GET: &str = info_sql!("$1", "WHERE q.name = $1");
const SET_PAUSED: &str = "UPDATE buzzer_queues SET paused = $2 WHERE name = $1";

/// Every queue, by name.
pub(crate) async fn list(db: &impl Db) -> Result<Vec<QueueInfo>, Error> {
    infos(&db.rows(LIST, &[]).await?)
}

pub(crate) async fn get(db: &impl Db, name: &str) -> Result<Option<QueueInfo>, Error> {
    Ok(infos(&db.rows_planned(GET, &[(&name, Type::TEXT)]).await?)?.pop())
}

/// Pauses or resumes; `false` when the queue does not exist.
pub(crate) async fn set_paused(db: &impl Db, name: &str, paused: bool) -> Result<bool, Error> {
    Ok(db.exec(SET_PAUSED, &[&name, &paused]).await? > 0)
}

/// Folds the rows (per queue: one per cold state present, two for available, one for running)
/// into one info per queue.
fn infos(rows: &[Row]) -> Result<Vec<QueueInfo>, Error> {
    let mut out: Vec<QueueInfo> = Vec::new();
    for r in rows {
        let name: String = r.try_get(0)?;
        if out.last().is_none_or(|q| q.name != name) {
            let now: Timestamp = r.try_get(4)?;
            let oldest: Option<Timestamp> = r.try_get(5)?;
            let age = oldest.map_or(0, |at| {
                u64::try_from(now.as_millisecond().saturating_sub(at.as_millisecond())).unwrap_or(0)
            });
            out.push(QueueInfo {
                name,
                paused: r.try_get(1)?,
                counts: StateCounts::default(),
                oldest_available_age_ms: age,
            });
        }
        if let (Some(state), Some(info)) = (r.try_get::<_, Option<&str>>(2)?, out.last_mut()) {
            let n: i64 = r.try_get(3)?;
            *info.counts.get_mut(row::state(state)?) += u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(out)
}

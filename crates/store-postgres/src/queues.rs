//! Queues: their paused flag and the counts the API shows.

use buzzer_types::{QueueInfo, StateCounts};
use jiff::Timestamp;
use tokio_postgres::Row;

use crate::{clock::now, db::Db, error::Error, row};

/// One statement, so counts and flags come from one snapshot. Counts walk the
/// `buzzer_jobs_queue_state` index.
macro_rules! info_sql {
    ($where:literal) => {
        concat!(
            "SELECT q.name, q.paused, c.state, c.n, ",
            now!(),
            ", o.oldest FROM buzzer_queues q \
             CROSS JOIN LATERAL (SELECT min(a.scheduled_at) AS oldest FROM buzzer_jobs a \
                WHERE a.queue = q.name AND a.state = 'available') o \
             LEFT JOIN LATERAL (\
               SELECT s.state, count(*) AS n FROM buzzer_jobs s WHERE s.queue = q.name \
               GROUP BY s.state) c ON true ",
            $where,
            " ORDER BY q.name"
        )
    };
}

const LIST: &str = info_sql!("");
const GET: &str = info_sql!("WHERE q.name = $1");
const SET_PAUSED: &str = "UPDATE buzzer_queues SET paused = $2 WHERE name = $1";

/// Every queue, by name.
pub(crate) async fn list(db: &impl Db) -> Result<Vec<QueueInfo>, Error> {
    infos(&db.rows(LIST, &[]).await?)
}

pub(crate) async fn get(db: &impl Db, name: &str) -> Result<Option<QueueInfo>, Error> {
    Ok(infos(&db.rows(GET, &[&name]).await?)?.pop())
}

/// Pauses or resumes; `false` when the queue does not exist.
pub(crate) async fn set_paused(db: &impl Db, name: &str, paused: bool) -> Result<bool, Error> {
    Ok(db.exec(SET_PAUSED, &[&name, &paused]).await? > 0)
}

/// Folds the rows (one per queue and state present) into one info per queue.
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
            *info.counts.get_mut(row::state(state)?) = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok(out)
}

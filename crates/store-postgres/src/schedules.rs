//! Cron schedules: upsert, reads, and the compare-and-set that claims a tick.

use buzzer_store::{ScheduleClaimTick, SchedulePut, StoreError, Upserted};
use buzzer_types::{RawValue, Schedule, ScheduleJobOptions};
use tokio_postgres::Row;

use crate::{
    clock::{now, whole_ms},
    db::Db,
    error::Error,
};

macro_rules! columns {
    () => {
        "c.name, c.cron, c.timezone, c.queue, c.payload::text, c.options::text, c.last_tick, \
         c.created_at, c.updated_at"
    };
}

/// A replaced schedule keeps `created_at` and `last_tick`; `xmax = 0` tells an inserted row
/// from an updated one.
const PUT: &str = concat!(
    "INSERT INTO buzzer_schedules AS c (name, cron, timezone, queue, payload, options, \
       created_at, updated_at) VALUES ($1, $2, $3, $4, $5::text::json, $6::text::jsonb, ",
    now!(),
    ", ",
    now!(),
    ") ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, \
       queue = excluded.queue, payload = excluded.payload, options = excluded.options, \
       updated_at = excluded.updated_at \
     RETURNING ",
    columns!(),
    ", (c.xmax = 0) AS created"
);

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM buzzer_schedules c WHERE c.name = $1"
);

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM buzzer_schedules c ORDER BY c.name"
);

const DELETE: &str = "DELETE FROM buzzer_schedules WHERE name = $1";

/// The row lock serialises two claims of one tick; the second sees the first's `last_tick`.
const CLAIM_TICK: &str = "UPDATE buzzer_schedules SET last_tick = $2 \
    WHERE name = $1 AND (last_tick IS NULL OR last_tick < $2)";

pub(crate) async fn put(db: &impl Db, p: SchedulePut) -> Result<Upserted<Schedule>, Error> {
    let options = (p.options != ScheduleJobOptions::default())
        .then(|| serde_json::to_string(&p.options))
        .transpose()?;
    let rows = db
        .rows(
            PUT,
            &[
                &p.name,
                &p.cron,
                &p.timezone,
                &p.queue,
                &p.payload.get(),
                &options,
            ],
        )
        .await?;
    let row = rows.first().ok_or(StoreError::NotFound)?;
    Ok(Upserted {
        value: schedule(row)?,
        created: row.try_get(9)?,
    })
}

pub(crate) async fn get(db: &impl Db, name: &str) -> Result<Option<Schedule>, Error> {
    db.rows(GET, &[&name])
        .await?
        .first()
        .map(schedule)
        .transpose()
}

pub(crate) async fn list(db: &impl Db) -> Result<Vec<Schedule>, Error> {
    db.rows(LIST, &[]).await?.iter().map(schedule).collect()
}

pub(crate) async fn delete(db: &impl Db, name: &str) -> Result<bool, Error> {
    Ok(db.exec(DELETE, &[&name]).await? > 0)
}

pub(crate) async fn claim_tick(db: &impl Db, p: ScheduleClaimTick) -> Result<bool, Error> {
    Ok(db.exec(CLAIM_TICK, &[&p.name, &whole_ms(p.tick)]).await? > 0)
}

fn schedule(row: &Row) -> Result<Schedule, Error> {
    let options: Option<&str> = row.try_get(5)?;
    Ok(Schedule {
        name: row.try_get(0)?,
        cron: row.try_get(1)?,
        timezone: row.try_get(2)?,
        queue: row.try_get(3)?,
        payload: RawValue::from_string(row.try_get(4)?)?,
        options: options
            .map(serde_json::from_str)
            .transpose()?
            .unwrap_or_default(),
        last_tick: row.try_get(6)?,
        created_at: row.try_get(7)?,
        updated_at: row.try_get(8)?,
    })
}

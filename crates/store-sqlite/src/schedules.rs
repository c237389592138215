//! Cron schedules: upsert, reads, and the compare-and-set that claims a tick.

use buzzer_store::{ScheduleClaimTick, SchedulePut, StoreError, Upserted};
use buzzer_types::{RawValue, Schedule, ScheduleJobOptions, ms_to_timestamp, timestamp_to_ms};
use rusqlite::{Connection, OptionalExtension, Row, params, types::Type};

use crate::error::Error;

const COLUMNS: &str =
    "name, cron, timezone, queue, payload, options, last_tick, created_at, updated_at";

/// Runs on the writer. A replaced schedule keeps `created_at` and `last_tick`.
pub(crate) fn put(
    conn: &Connection,
    now: i64,
    p: SchedulePut,
) -> Result<Upserted<Schedule>, Error> {
    let existed = get(conn, &p.name)?.is_some();
    let options = (p.options != ScheduleJobOptions::default())
        .then(|| serde_json::to_string(&p.options))
        .transpose()?;
    conn.prepare_cached(
        "INSERT INTO schedules (name, cron, timezone, queue, payload, options, created_at, \
           updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
         ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, \
           queue = excluded.queue, payload = excluded.payload, options = excluded.options, \
           updated_at = excluded.updated_at",
    )?
    .execute(params![
        p.name,
        p.cron,
        p.timezone,
        p.queue,
        p.payload.get(),
        options,
        now
    ])?;
    let value = get(conn, &p.name)?.ok_or(StoreError::NotFound)?;
    Ok(Upserted {
        value,
        created: !existed,
    })
}

pub(crate) fn get(conn: &Connection, name: &str) -> Result<Option<Schedule>, Error> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1"))?
        .query_row([name], schedule)
        .optional()?)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Schedule>, Error> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))?;
    let rows = stmt.query_map([], schedule)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delete(conn: &Connection, name: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM schedules WHERE name = ?1")?
        .execute([name])?
        > 0)
}

pub(crate) fn claim_tick(conn: &Connection, p: ScheduleClaimTick) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "UPDATE schedules SET last_tick = ?2 \
             WHERE name = ?1 AND (last_tick IS NULL OR last_tick < ?2)",
        )?
        .execute(params![p.name, timestamp_to_ms(p.tick)])?
        > 0)
}

fn schedule(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    let conversion = |idx, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
    };
    let payload = RawValue::from_string(row.get(4)?).map_err(|e| conversion(4, e))?;
    let options = row
        .get::<_, Option<String>>(5)?
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| conversion(5, e))?
        .unwrap_or_default();
    Ok(Schedule {
        name: row.get(0)?,
        cron: row.get(1)?,
        timezone: row.get(2)?,
        queue: row.get(3)?,
        payload,
        options,
        last_tick: row.get::<_, Option<i64>>(6)?.map(ms_to_timestamp),
        created_at: ms_to_timestamp(row.get(7)?),
        updated_at: ms_to_timestamp(row.get(8)?),
    })
}

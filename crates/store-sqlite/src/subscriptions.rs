//! Topics' subscriptions: upsert, reads, disable, delivery health.

use buzzer_store::{
    StoreError, SubscriptionDelivery, SubscriptionPut, SubscriptionSetDisabled, Upserted,
};
use buzzer_types::{
    DeliveryHealth, PreviousSecret, Subscription, SubscriptionTarget, WebhookTarget,
    ms_to_timestamp, timestamp_to_ms,
};
use rusqlite::{Connection, OptionalExtension, Row, params, types::Type};

use crate::error::Error;

const COLUMNS: &str = "topic, name, kind, queue, url, secret, previous_secret, \
    previous_secret_until, filter, disabled, disabled_reason, last_status, last_attempt_at, \
    last_success_at, failures_in_row, created_at, updated_at";

/// Runs on the writer. A replaced subscription keeps `created_at` and its delivery health and
/// is enabled again.
pub(crate) fn put(
    conn: &Connection,
    now: i64,
    p: SubscriptionPut,
) -> Result<Upserted<Subscription>, Error> {
    let existed = get(conn, &p.topic, &p.name)?.is_some();
    let (kind, queue, url, secret, previous, previous_until) = match &p.target {
        SubscriptionTarget::Queue { queue } => {
            ("queue", Some(queue.as_str()), None, None, None, None)
        }
        SubscriptionTarget::Webhook(w) => (
            "webhook",
            None,
            Some(w.url.as_str()),
            Some(w.secret.as_str()),
            w.previous_secret.as_ref().map(|s| s.secret.as_str()),
            w.previous_secret.as_ref().map(|s| timestamp_to_ms(s.until)),
        ),
    };
    let filter = p.filter.as_ref().map(serde_json::to_string).transpose()?;
    conn.prepare_cached(
        "INSERT INTO subscriptions (topic, name, kind, queue, url, secret, previous_secret, \
           previous_secret_until, filter, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
         ON CONFLICT (topic, name) DO UPDATE SET kind = excluded.kind, queue = excluded.queue, \
           url = excluded.url, secret = excluded.secret, \
           previous_secret = excluded.previous_secret, \
           previous_secret_until = excluded.previous_secret_until, filter = excluded.filter, \
           disabled = 0, disabled_reason = NULL, updated_at = excluded.updated_at",
    )?
    .execute(params![
        p.topic,
        p.name,
        kind,
        queue,
        url,
        secret,
        previous,
        previous_until,
        filter,
        now
    ])?;
    if let Some(queue) = queue {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO queues (name, paused, created_at) VALUES (?1, 0, ?2)",
        )?
        .execute(params![queue, now])?;
    }
    let value = get(conn, &p.topic, &p.name)?.ok_or(StoreError::NotFound)?;
    Ok(Upserted {
        value,
        created: !existed,
    })
}

pub(crate) fn get(
    conn: &Connection,
    topic: &str,
    name: &str,
) -> Result<Option<Subscription>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE topic = ?1 AND name = ?2"
        ))?
        .query_row(params![topic, name], subscription)
        .optional()?)
}

pub(crate) fn list(conn: &Connection, topic: Option<&str>) -> Result<Vec<Subscription>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE ?1 IS NULL OR topic = ?1 ORDER BY topic, name"
    ))?;
    let rows = stmt.query_map([topic], subscription)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn delete(conn: &Connection, topic: &str, name: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM subscriptions WHERE topic = ?1 AND name = ?2")?
        .execute(params![topic, name])?
        > 0)
}

pub(crate) fn set_disabled(
    conn: &Connection,
    now: i64,
    p: SubscriptionSetDisabled,
) -> Result<Subscription, Error> {
    let reason = if p.disabled { p.reason } else { None };
    let changed = conn
        .prepare_cached(
            "UPDATE subscriptions SET disabled = ?3, disabled_reason = ?4, updated_at = ?5 \
             WHERE topic = ?1 AND name = ?2",
        )?
        .execute(params![p.topic, p.name, p.disabled, reason, now])?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    get(conn, &p.topic, &p.name)?.ok_or_else(|| StoreError::NotFound.into())
}

pub(crate) fn record_delivery(
    conn: &Connection,
    now: i64,
    p: SubscriptionDelivery,
) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE subscriptions SET last_status = ?3, last_attempt_at = ?5, \
           last_success_at = CASE WHEN ?4 THEN ?5 ELSE last_success_at END, \
           failures_in_row = CASE WHEN ?4 THEN 0 ELSE failures_in_row + 1 END \
         WHERE topic = ?1 AND name = ?2",
    )?
    .execute(params![p.topic, p.name, p.status, p.success, now])?;
    Ok(())
}

fn subscription(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let kind: String = row.get(2)?;
    let target = match kind.as_str() {
        "queue" => SubscriptionTarget::Queue { queue: row.get(3)? },
        _ => SubscriptionTarget::Webhook(WebhookTarget {
            url: row.get(4)?,
            secret: row.get(5)?,
            previous_secret: match (
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<i64>>(7)?,
            ) {
                (Some(secret), Some(until)) => Some(PreviousSecret {
                    secret,
                    until: ms_to_timestamp(until),
                }),
                _ => None,
            },
        }),
    };
    let filter = row
        .get::<_, Option<String>>(8)?
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(8, Type::Text, Box::new(e)))?;
    Ok(Subscription {
        topic: row.get(0)?,
        name: row.get(1)?,
        target,
        filter,
        disabled: row.get(9)?,
        disabled_reason: row.get(10)?,
        delivery: DeliveryHealth {
            last_status: row.get(11)?,
            last_attempt_at: row.get::<_, Option<i64>>(12)?.map(ms_to_timestamp),
            last_success_at: row.get::<_, Option<i64>>(13)?.map(ms_to_timestamp),
            failures_in_row: u32::try_from(row.get::<_, i64>(14)?).unwrap_or(u32::MAX),
        },
        created_at: ms_to_timestamp(row.get(15)?),
        updated_at: ms_to_timestamp(row.get(16)?),
    })
}

//! Publishing: an event's deliveries and its idempotency record, in one writer command.

use buzzer_store::{Published, TopicEventPrune, TopicPublish};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::{clock::ms, error::Error, jobs, subscriptions};

/// Runs on the writer, so the whole publish is one savepoint of one commit: all deliveries or
/// none. The writer serialises commands, so two publishes of one key cannot both miss the
/// record.
pub(crate) fn publish(conn: &Connection, now: i64, p: TopicPublish) -> Result<Published, Error> {
    if let Some(key) = &p.idempotency_key {
        let earlier = conn
            .prepare_cached(
                "SELECT event_id, deliveries FROM topic_events \
                 WHERE topic = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![p.topic, key], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?;
        if let Some((event_id, deliveries)) = earlier {
            return Ok(Published {
                event_id,
                deliveries: u32::try_from(deliveries).unwrap_or(u32::MAX),
                created: false,
                jobs: Vec::new(),
            });
        }
    }
    let subs = subscriptions::list(conn, Some(&p.topic))?;
    let payload = if subs.iter().any(|s| s.filter.is_some()) {
        p.payload_value()?
    } else {
        Value::Null
    };
    let inserts: Vec<_> = subs
        .iter()
        .filter_map(|s| p.delivery_for(s, &payload))
        .collect();
    let jobs: Vec<_> = jobs::insert_many(conn, now, inserts)?
        .into_iter()
        .map(|i| i.job)
        .collect();
    let deliveries = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
    if let Some(key) = &p.idempotency_key {
        conn.prepare_cached(
            "INSERT INTO topic_events (topic, idempotency_key, event_id, deliveries, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![p.topic, key, p.event_id, deliveries, now])?;
    }
    Ok(Published {
        event_id: p.event_id,
        deliveries,
        created: true,
        jobs,
    })
}

pub(crate) fn prune_events(conn: &Connection, now: i64, p: TopicEventPrune) -> Result<u64, Error> {
    let before = now.saturating_sub(ms(p.older_than_ms));
    let n = conn
        .prepare_cached(
            "DELETE FROM topic_events WHERE (topic, idempotency_key) IN (SELECT topic, \
             idempotency_key FROM topic_events WHERE created_at <= ?1 LIMIT ?2)",
        )?
        .execute(params![before, p.limit])?;
    Ok(n as u64)
}

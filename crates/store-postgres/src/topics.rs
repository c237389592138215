//! Publishing: an event's deliveries and its idempotency record, in one transaction.

use buzzer_store::{Published, TopicEventPrune, TopicPublish};
use serde_json::Value;

use crate::{
    clock::{ms, now},
    db::Db,
    error::Error,
    jobs, subscriptions,
};

/// Claims the key first: a concurrent publish of the same key waits on the primary key until
/// this transaction ends, then finds the record (or, after a rollback, claims it itself).
const CLAIM: &str = concat!(
    "INSERT INTO buzzer_topic_events (topic, idempotency_key, event_id, deliveries, created_at) \
     VALUES ($1, $2, $3, 0, ",
    now!(),
    ") ON CONFLICT (topic, idempotency_key) DO NOTHING RETURNING 1"
);

const EARLIER: &str = "SELECT event_id, deliveries FROM buzzer_topic_events \
    WHERE topic = $1 AND idempotency_key = $2";

const COUNT: &str = "UPDATE buzzer_topic_events SET deliveries = $3 \
    WHERE topic = $1 AND idempotency_key = $2";

const PRUNE: &str = concat!(
    "DELETE FROM buzzer_topic_events WHERE (topic, idempotency_key) IN (\
       SELECT topic, idempotency_key FROM buzzer_topic_events \
       WHERE created_at <= ",
    now!(),
    " - $1::int8 * interval '1 millisecond' LIMIT $2 FOR UPDATE SKIP LOCKED)"
);

/// `tx` must be a transaction: the claim, the deliveries (announced on commit by the insert)
/// and the count commit together or not at all.
pub(crate) async fn publish(tx: &impl Db, p: TopicPublish) -> Result<Published, Error> {
    if let Some(key) = &p.idempotency_key
        && tx
            .rows(CLAIM, &[&p.topic, key, &p.event_id])
            .await?
            .is_empty()
    {
        let rows = tx.rows(EARLIER, &[&p.topic, key]).await?;
        if let Some(row) = rows.first() {
            return Ok(Published {
                event_id: row.try_get(0)?,
                deliveries: u32::try_from(row.try_get::<_, i32>(1)?).unwrap_or(0),
                created: false,
                jobs: Vec::new(),
            });
        }
    }
    let subs = subscriptions::list(tx, Some(&p.topic)).await?;
    let payload = if subs.iter().any(|s| s.filter.is_some()) {
        p.payload_value()?
    } else {
        Value::Null
    };
    let inserts: Vec<_> = subs
        .iter()
        .filter_map(|s| p.delivery_for(s, &payload))
        .collect();
    let jobs: Vec<_> = jobs::insert_many(tx, inserts)
        .await?
        .into_iter()
        .map(|i| i.job)
        .collect();
    let deliveries = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
    if let Some(key) = &p.idempotency_key {
        let count = i32::try_from(deliveries).unwrap_or(i32::MAX);
        tx.exec(COUNT, &[&p.topic, key, &count]).await?;
    }
    Ok(Published {
        event_id: p.event_id,
        deliveries,
        created: true,
        jobs,
    })
}

pub(crate) async fn prune_events(db: &impl Db, p: TopicEventPrune) -> Result<u64, Error> {
    Ok(db
        .exec(PRUNE, &[&ms(p.older_than_ms), &i64::from(p.limit)])
        .await?)
}

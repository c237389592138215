//! Topics' subscriptions: upsert, reads, disable, delivery health.

use buzzer_store::{
    StoreError, SubscriptionDelivery, SubscriptionPut, SubscriptionSetDisabled, Upserted,
};
use buzzer_types::{
    DeliveryHealth, PreviousSecret, Subscription, SubscriptionTarget, WebhookTarget,
};
use jiff::Timestamp;
use tokio_postgres::Row;

use crate::{
    clock::{now, whole_ms},
    db::Db,
    error::Error,
};

/// The columns [`subscription`] reads, of the table aliased `s`.
macro_rules! columns {
    () => {
        "s.topic, s.name, s.kind, s.queue, s.url, s.secret, s.previous_secret, \
         s.previous_secret_until, s.filter::text, s.disabled, s.disabled_reason, s.last_status, \
         s.last_attempt_at, s.last_success_at, s.failures_in_row, s.created_at, s.updated_at"
    };
}

/// One statement: the upsert and, for a queue target, the queue it names. `xmax = 0` tells an
/// inserted row from an updated one. A replaced subscription keeps `created_at` and its
/// delivery health and is enabled again.
const PUT: &str = concat!(
    "WITH up AS (\
       INSERT INTO buzzer_subscriptions AS s (topic, name, kind, queue, url, secret, \
         previous_secret, previous_secret_until, filter, created_at, updated_at) \
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, ",
    now!(),
    ", ",
    now!(),
    ") ON CONFLICT (topic, name) DO UPDATE SET kind = excluded.kind, queue = excluded.queue, \
         url = excluded.url, secret = excluded.secret, \
         previous_secret = excluded.previous_secret, \
         previous_secret_until = excluded.previous_secret_until, filter = excluded.filter, \
         disabled = false, disabled_reason = NULL, updated_at = excluded.updated_at \
       RETURNING ",
    columns!(),
    ", (s.xmax = 0) AS created), \
     q AS (\
       INSERT INTO buzzer_queues (name, created_at) SELECT $4, ",
    now!(),
    " WHERE $4::text IS NOT NULL ON CONFLICT (name) DO NOTHING) \
     SELECT * FROM up"
);

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM buzzer_subscriptions s WHERE s.topic = $1 AND s.name = $2"
);

const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM buzzer_subscriptions s WHERE $1::text IS NULL OR s.topic = $1 \
      ORDER BY s.topic, s.name"
);

const DELETE: &str = "DELETE FROM buzzer_subscriptions WHERE topic = $1 AND name = $2";

const SET_DISABLED: &str = concat!(
    "UPDATE buzzer_subscriptions s SET disabled = $3, disabled_reason = $4, updated_at = ",
    now!(),
    " WHERE s.topic = $1 AND s.name = $2 RETURNING ",
    columns!()
);

const RECORD_DELIVERY: &str = concat!(
    "UPDATE buzzer_subscriptions SET last_status = $3, last_attempt_at = ",
    now!(),
    ", last_success_at = CASE WHEN $4 THEN ",
    now!(),
    " ELSE last_success_at END, \
       failures_in_row = CASE WHEN $4 THEN 0 ELSE failures_in_row + 1 END \
     WHERE topic = $1 AND name = $2"
);

pub(crate) async fn put(db: &impl Db, p: SubscriptionPut) -> Result<Upserted<Subscription>, Error> {
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
            w.previous_secret.as_ref().map(|s| whole_ms(s.until)),
        ),
    };
    let filter = p.filter.as_ref().map(serde_json::to_string).transpose()?;
    let rows = db
        .rows(
            PUT,
            &[
                &p.topic,
                &p.name,
                &kind,
                &queue,
                &url,
                &secret,
                &previous,
                &previous_until,
                &filter,
            ],
        )
        .await?;
    let row = rows.first().ok_or(StoreError::NotFound)?;
    Ok(Upserted {
        value: subscription(row)?,
        created: row.try_get(17)?,
    })
}

pub(crate) async fn get(
    db: &impl Db,
    topic: &str,
    name: &str,
) -> Result<Option<Subscription>, Error> {
    db.rows(GET, &[&topic, &name])
        .await?
        .first()
        .map(subscription)
        .transpose()
}

pub(crate) async fn list(db: &impl Db, topic: Option<&str>) -> Result<Vec<Subscription>, Error> {
    db.rows(LIST, &[&topic])
        .await?
        .iter()
        .map(subscription)
        .collect()
}

pub(crate) async fn delete(db: &impl Db, topic: &str, name: &str) -> Result<bool, Error> {
    Ok(db.exec(DELETE, &[&topic, &name]).await? > 0)
}

pub(crate) async fn set_disabled(
    db: &impl Db,
    p: SubscriptionSetDisabled,
) -> Result<Subscription, Error> {
    let reason = if p.disabled { p.reason } else { None };
    let rows = db
        .rows(SET_DISABLED, &[&p.topic, &p.name, &p.disabled, &reason])
        .await?;
    rows.first()
        .map(subscription)
        .transpose()?
        .ok_or_else(|| StoreError::NotFound.into())
}

pub(crate) async fn record_delivery(db: &impl Db, p: SubscriptionDelivery) -> Result<(), Error> {
    let status = p.status.map(i32::from);
    db.exec(RECORD_DELIVERY, &[&p.topic, &p.name, &status, &p.success])
        .await?;
    Ok(())
}

fn subscription(row: &Row) -> Result<Subscription, Error> {
    let kind: &str = row.try_get(2)?;
    let target = if kind == "queue" {
        SubscriptionTarget::Queue {
            queue: row.try_get(3)?,
        }
    } else {
        let previous: Option<String> = row.try_get(6)?;
        let until: Option<Timestamp> = row.try_get(7)?;
        SubscriptionTarget::Webhook(WebhookTarget {
            url: row.try_get(4)?,
            secret: row.try_get(5)?,
            previous_secret: previous
                .zip(until)
                .map(|(secret, until)| PreviousSecret { secret, until }),
        })
    };
    let filter = row
        .try_get::<_, Option<&str>>(8)?
        .map(serde_json::from_str)
        .transpose()?;
    Ok(Subscription {
        topic: row.try_get(0)?,
        name: row.try_get(1)?,
        target,
        filter,
        disabled: row.try_get(9)?,
        disabled_reason: row.try_get(10)?,
        delivery: DeliveryHealth {
            last_status: row
                .try_get::<_, Option<i32>>(11)?
                .and_then(|s| u16::try_from(s).ok()),
            last_attempt_at: row.try_get(12)?,
            last_success_at: row.try_get(13)?,
            failures_in_row: u32::try_from(row.try_get::<_, i32>(14)?).unwrap_or(0),
        },
        created_at: row.try_get(15)?,
        updated_at: row.try_get(16)?,
    })
}

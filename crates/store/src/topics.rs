//! Params of the subscription and schedule methods.

use buzzer_types::{
    Job, RawValue, ScheduleJobOptions, Subscription, SubscriptionTarget, WEBHOOK_QUEUE,
    filter_matches,
};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{JobInsert, StoreError};

/// What an upsert wrote, and whether it made a new row (`false`: it replaced one).
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted<T> {
    pub value: T,
    pub created: bool,
}

/// Creates or replaces the subscription `name` of `topic`. A replaced subscription keeps its
/// `created_at` and delivery health and is enabled again (a `PUT` after a 410 re-arms it).
/// A queue target makes its queue exist.
#[derive(Debug, Clone)]
pub struct SubscriptionPut {
    pub topic: String,
    pub name: String,
    pub target: SubscriptionTarget,
    pub filter: Option<Map<String, Value>>,
}

/// Disables (with a reason) or enables a subscription.
#[derive(Debug, Clone)]
pub struct SubscriptionSetDisabled {
    pub topic: String,
    pub name: String,
    pub disabled: bool,
    pub reason: Option<String>,
}

/// One webhook delivery attempt, for the subscription's delivery health: the store stamps it
/// with its clock, sets `last_status`, and resets `failures_in_row` on success or adds one.
#[derive(Debug, Clone)]
pub struct SubscriptionDelivery {
    pub topic: String,
    pub name: String,
    /// `None` when the attempt got no HTTP answer.
    pub status: Option<u16>,
    pub success: bool,
}

/// Creates or replaces the schedule `name`. A replaced schedule keeps its `created_at` and
/// `last_tick`.
#[derive(Debug, Clone)]
pub struct SchedulePut {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub queue: String,
    pub payload: Box<RawValue>,
    pub options: ScheduleJobOptions,
}

/// Records that the job of `tick` exists: a compare-and-set that moves `last_tick` forward
/// only, so of two nodes claiming one tick exactly one succeeds.
#[derive(Debug, Clone)]
pub struct ScheduleClaimTick {
    pub name: String,
    pub tick: Timestamp,
}

/// Publishes one event to a topic: in one transaction, one job per enabled subscription whose
/// filter matches the payload (see [`TopicPublish::delivery_for`]), and, with an
/// `idempotency_key`, a record of the event so a repeat answers it instead of publishing again.
#[derive(Debug, Clone)]
pub struct TopicPublish {
    pub topic: String,
    /// The id a new event gets (a repeat answers the first event's id instead).
    pub event_id: String,
    /// Held per topic until pruned by [`Store::topic_event_prune`](crate::Store::topic_event_prune).
    pub idempotency_key: Option<String>,
    /// The job each delivery starts from: its payload is the event's, its queue is filled in
    /// per subscription, and its metadata gets `topic`, `event_id` and `subscription`.
    pub delivery: JobInsert,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    pub event_id: String,
    /// Jobs made for the event (for a repeat: the first publish's count).
    pub deliveries: u32,
    /// `false` for a repeat of a keyed publish, which changed nothing.
    pub created: bool,
    /// The jobs this call made (none for a repeat), so the engine can wake their queues.
    pub jobs: Vec<Job>,
}

/// Forgets the idempotency keys of events published more than `older_than_ms` ago, at most
/// `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct TopicEventPrune {
    pub older_than_ms: u64,
    pub limit: u32,
}

impl TopicPublish {
    /// The delivery job of `sub` for this event, or `None` when the subscription is disabled,
    /// belongs to another topic or its filter does not match `payload` (the event's payload,
    /// parsed once by the caller). A webhook subscription's job goes to [`WEBHOOK_QUEUE`],
    /// where the webhook dispatcher takes it.
    pub fn delivery_for(&self, sub: &Subscription, payload: &Value) -> Option<JobInsert> {
        if sub.disabled || sub.topic != self.topic {
            return None;
        }
        if let Some(filter) = &sub.filter
            && !filter_matches(filter, payload)
        {
            return None;
        }
        let queue = match &sub.target {
            SubscriptionTarget::Queue { queue } => queue.clone(),
            SubscriptionTarget::Webhook(_) => WEBHOOK_QUEUE.to_owned(),
        };
        let mut job = self.delivery.clone();
        job.queue = queue;
        // The event's own fields win over caller metadata of the same name.
        job.metadata
            .insert("topic".into(), self.topic.clone().into());
        job.metadata
            .insert("event_id".into(), self.event_id.clone().into());
        job.metadata
            .insert("subscription".into(), sub.name.clone().into());
        Some(job)
    }

    /// The event's payload as a value, for [`TopicPublish::delivery_for`]'s filters.
    pub fn payload_value(&self) -> Result<Value, StoreError> {
        serde_json::from_str(self.delivery.payload.get()).map_err(StoreError::backend)
    }
}

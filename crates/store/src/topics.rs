//! Params of the subscription and schedule methods.

use buzzer_types::{RawValue, ScheduleJobOptions, SubscriptionTarget};
use jiff::Timestamp;
use serde_json::{Map, Value};

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

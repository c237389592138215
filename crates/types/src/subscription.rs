//! Topics and subscriptions: what a subscription is in a store, and how the API shows it.
//!
//! A stored [`Subscription`] holds its webhook secrets; the API shows a
//! [`SubscriptionInfo`], which never carries a secret except in the answer to the `PUT` that
//! created or rotated it.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The reserved queue that holds webhook deliveries: publishing puts one job here per matching
/// webhook subscription, with `topic`, `event_id` and `subscription` in its metadata, and the
/// webhook dispatcher leases them from it. Queue subscriptions cannot name it.
pub const WEBHOOK_QUEUE: &str = "buzzer:webhooks";

/// One subscription of a topic, as a store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub topic: String,
    pub name: String,
    pub target: SubscriptionTarget,
    /// Payload fields an event must have to be delivered; `None` delivers every event.
    pub filter: Option<Map<String, Value>>,
    /// A disabled subscription gets no deliveries (a webhook that answered 410 Gone).
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    /// How the last webhook deliveries went; always empty for a queue subscription.
    pub delivery: DeliveryHealth,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Where a subscription delivers each event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionTarget {
    /// A job in this queue, for the application's own workers.
    Queue { queue: String },
    /// An HTTP POST to a URL, made by the server's webhook dispatcher.
    Webhook(WebhookTarget),
}

/// A webhook endpoint and the secrets its deliveries are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    pub url: String,
    /// `whsec_` + base64 of the key.
    pub secret: String,
    /// The secret before the last rotation, which keeps signing (as a second signature) until
    /// its time is up, so receivers can switch over without missing a delivery.
    pub previous_secret: Option<PreviousSecret>,
}

/// A rotated-out secret and when it stops signing.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret: String,
    pub until: Timestamp,
}

// Secrets never reach a log line through `{:?}`.
impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &secret_prefix(&self.secret))
            .field("previous_secret", &self.previous_secret)
            .finish()
    }
}

impl fmt::Debug for PreviousSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviousSecret")
            .field("secret", &secret_prefix(&self.secret))
            .field("until", &self.until)
            .finish()
    }
}

impl WebhookTarget {
    /// The secrets that sign a delivery made at `now`: the current one, and the previous one
    /// while its overlap lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some(previous) = &self.previous_secret
            && previous.until > now
        {
            secrets.push(previous.secret.as_str());
        }
        secrets
    }
}

/// Enough of a secret to tell two apart, never enough to use: `whsec_` and four more
/// characters.
pub fn secret_prefix(secret: &str) -> String {
    let shown: String = secret.chars().take(10).collect();
    format!("{shown}…")
}

/// How a webhook subscription's deliveries have gone lately, updated after every attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryHealth {
    /// The HTTP status of the last attempt; `None` before any, or when it got no answer
    /// (timeout, refused connection, a refused address).
    pub last_status: Option<u16>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    /// Failed attempts since the last success.
    pub failures_in_row: u32,
}

/// A subscription as the API shows it: `{"queue": q}` or `{"webhook": {…}}`, never with a
/// secret except right after the `PUT` that set one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub topic: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookInfo>,
    #[serde(default)]
    pub filter: Option<Map<String, Value>>,
    pub disabled: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// Webhook subscriptions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryHealth>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookInfo {
    pub url: String,
    /// The start of the secret, to tell which one is in use.
    pub secret_prefix: String,
    /// The whole secret: only in the answer to the `PUT` that created or rotated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// While the previous secret still signs (after a rotation), until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<Timestamp>,
}

impl SubscriptionInfo {
    /// The API view of a stored subscription; `reveal_secret` only for the answer to the `PUT`
    /// that set the secret.
    pub fn of(sub: &Subscription, reveal_secret: bool, now: Timestamp) -> SubscriptionInfo {
        let (queue, webhook, delivery) = match &sub.target {
            SubscriptionTarget::Queue { queue } => (Some(queue.clone()), None, None),
            SubscriptionTarget::Webhook(w) => (
                None,
                Some(WebhookInfo {
                    url: w.url.clone(),
                    secret_prefix: secret_prefix(&w.secret),
                    secret: reveal_secret.then(|| w.secret.clone()),
                    previous_secret_until: w
                        .previous_secret
                        .as_ref()
                        .map(|p| p.until)
                        .filter(|until| *until > now),
                }),
                Some(sub.delivery),
            ),
        };
        SubscriptionInfo {
            topic: sub.topic.clone(),
            name: sub.name.clone(),
            queue,
            webhook,
            filter: sub.filter.clone(),
            disabled: sub.disabled,
            disabled_reason: sub.disabled_reason.clone(),
            delivery,
            created_at: sub.created_at,
            updated_at: sub.updated_at,
        }
    }
}

/// `PUT /v1/topics/{topic}/subscriptions/{name}`: exactly one of `queue` and `webhook`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookRequest>,
    /// Payload field (dotted paths reach into objects) → the value it must equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    pub url: String,
    /// `whsec_` + base64 of 24 to 64 bytes; generated when absent. A new one rotates the
    /// secret: the old one keeps signing for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `POST /v1/topics/{topic}/events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub payload: Box<serde_json::value::RawValue>,
    /// Makes a repeated publish a no-op that answers the first one's `event_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Added to every delivery job's metadata (beside `topic`, `event_id`, `subscription`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// The answer to a publish: `202 {"event_id", "deliveries"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResponse {
    pub event_id: String,
    /// Jobs made for this event, one per matching subscription (0 with no subscriber).
    pub deliveries: u32,
}

/// `GET /v1/topics`: every topic that has a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    pub subscriptions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicListResponse {
    pub topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionListResponse {
    pub subscriptions: Vec<SubscriptionInfo>,
}

impl SubscriptionRequest {
    /// Deliveries as jobs in `queue`.
    pub fn queue(queue: impl Into<String>) -> Self {
        SubscriptionRequest {
            queue: Some(queue.into()),
            ..Default::default()
        }
    }

    /// Deliveries as signed POSTs to `url`, with a generated secret.
    pub fn webhook(url: impl Into<String>) -> Self {
        SubscriptionRequest {
            webhook: Some(WebhookRequest {
                url: url.into(),
                secret: None,
            }),
            ..Default::default()
        }
    }

    /// Signs with `secret` (`whsec_` + base64) instead of a generated one; a webhook
    /// subscription only. A new secret rotates the old one out.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        if let Some(webhook) = &mut self.webhook {
            webhook.secret = Some(secret.into());
        }
        self
    }

    /// Only events whose payload has `field` (a dotted path) equal to `value`; repeat for more.
    pub fn filter(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.filter
            .get_or_insert_with(Map::new)
            .insert(field.into(), value.into());
        self
    }

    /// The rules that need no network or configuration: exactly one target, the queue name,
    /// the secret's format and the filter's shape (the engine checks the webhook URL).
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        use crate::Invalid;
        match (&self.queue, &self.webhook) {
            (Some(_), Some(_)) => {
                return Err(Invalid::new(
                    "webhook",
                    "give either queue or webhook, not both",
                ));
            }
            (None, None) => {
                return Err(Invalid::new("queue", "give either queue or webhook"));
            }
            (Some(queue), None) => {
                crate::validate_name(queue).map_err(|m| Invalid::new("queue", m))?;
                if queue == WEBHOOK_QUEUE {
                    return Err(Invalid::new(
                        "queue",
                        format!("{WEBHOOK_QUEUE} is reserved for webhook deliveries"),
                    ));
                }
            }
            (None, Some(webhook)) => {
                if let Some(secret) = &webhook.secret {
                    crate::webhook_signature::validate_secret(secret)
                        .map_err(|e| Invalid::new("webhook.secret", e.to_string()))?;
                }
            }
        }
        if let Some(filter) = &self.filter {
            crate::validate_filter("filter", filter)?;
        }
        Ok(())
    }
}

impl PublishRequest {
    pub fn validate(&self) -> Result<(), crate::Invalid> {
        if let Some(k) = &self.idempotency_key
            && (k.is_empty() || k.len() > crate::Limits::KEY_MAX_LEN)
        {
            return Err(crate::Invalid::new(
                "idempotency_key",
                format!("must be 1 to {} bytes long", crate::Limits::KEY_MAX_LEN),
            ));
        }
        Ok(())
    }
}

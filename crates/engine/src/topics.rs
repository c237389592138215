//! Topics: subscriptions (queue or webhook targets, secrets, rotation) and publishing.

use std::{collections::BTreeMap, time::Duration};

use buzzer_store::{StoreError, SubscriptionPut, TopicEventPrune, TopicPublish, Upserted};
use buzzer_types::{
    EnqueueRequest, Invalid, PreviousSecret, PublishRequest, PublishResponse, Subscription,
    SubscriptionInfo, SubscriptionRequest, SubscriptionTarget, TopicInfo, WebhookRequest,
    WebhookTarget, validate_name, webhook_signature::encode_secret,
    webhook_url::validate_webhook_url,
};

use jiff::{SignedDuration, Timestamp};

use crate::{Engine, EngineError};

/// How long a rotated-out webhook secret keeps signing beside the new one, so receivers can
/// switch over without rejecting a delivery.
pub const SECRET_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// Bytes of key in a generated webhook secret.
const GENERATED_SECRET_BYTES: usize = 32;

fn check_name(field: &str, name: &str) -> Result<(), EngineError> {
    validate_name(name).map_err(|m| Invalid::new(field, m).into())
}

/// The URL's shape only: which addresses may be reached is the server's policy
/// (`--allow-private-webhooks`), applied to literal addresses when a subscription is made and
/// to every resolved address when a delivery connects.
fn check_webhook_url(url: &str) -> Result<(), Invalid> {
    validate_webhook_url(url, true)
}

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_webhook_secret() -> String {
    encode_secret(&rand::random::<[u8; GENERATED_SECRET_BYTES]>())
}

/// The webhook target a `PUT` makes from `req` over the `existing` one, and whether its answer
/// shows the secret: only a secret this call generated or changed is shown. No secret keeps
/// the current one; a different one rotates it, the old one signing on for
/// [`SECRET_ROTATION_OVERLAP`].
fn webhook_target(
    req: WebhookRequest,
    existing: Option<WebhookTarget>,
    now: Timestamp,
) -> (WebhookTarget, bool) {
    match (req.secret, existing) {
        (None, Some(old)) => (
            WebhookTarget {
                url: req.url,
                ..old
            },
            false,
        ),
        (Some(secret), Some(old)) if secret == old.secret => (
            WebhookTarget {
                url: req.url,
                ..old
            },
            false,
        ),
        (Some(secret), Some(old)) => {
            let overlap =
                SignedDuration::try_from(SECRET_ROTATION_OVERLAP).unwrap_or(SignedDuration::ZERO);
            let previous = PreviousSecret {
                secret: old.secret,
                until: now.checked_add(overlap).unwrap_or(now),
            };
            let target = WebhookTarget {
                url: req.url,
                secret,
                previous_secret: Some(previous),
            };
            (target, true)
        }
        (secret, None) => {
            let target = WebhookTarget {
                url: req.url,
                secret: secret.unwrap_or_else(generate_webhook_secret),
                previous_secret: None,
            };
            (target, true)
        }
    }
}

/// A new event id: `evt_` and 26 Crockford base32 characters of the time in milliseconds and
/// 80 random bits, so ids sort roughly by publish time and never collide in practice.
fn new_event_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let ms = jiff::Timestamp::now().as_millisecond().max(0) as u128;
    let mut v = (ms << 80) | (rand::random::<u128>() >> 48);
    let mut out = [b'0'; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    let text: String = out.iter().map(|&b| char::from(b)).collect();
    format!("evt_{text}")
}

impl Engine {
    /// Creates or replaces a subscription. A webhook without a secret gets a generated one
    /// (or keeps the one it has); a different secret rotates it, and the previous one keeps
    /// signing for [`SECRET_ROTATION_OVERLAP`]. The answer shows the whole secret only when
    /// this call set it.
    pub async fn subscription_put(
        &self,
        topic: &str,
        name: &str,
        req: SubscriptionRequest,
    ) -> Result<Upserted<SubscriptionInfo>, EngineError> {
        check_name("topic", topic)?;
        check_name("name", name)?;
        req.validate()?;
        let store = &self.inner.store;
        let (target, reveal) = match (req.queue, req.webhook) {
            (Some(queue), _) => (SubscriptionTarget::Queue { queue }, false),
            (None, Some(webhook)) => {
                check_webhook_url(&webhook.url)?;
                let existing = match store.subscription_get(topic, name).await? {
                    Some(Subscription {
                        target: SubscriptionTarget::Webhook(w),
                        ..
                    }) => Some(w),
                    _ => None,
                };
                let now = store.now().await?;
                let (target, reveal) = webhook_target(webhook, existing, now);
                (SubscriptionTarget::Webhook(target), reveal)
            }
            (None, None) => {
                return Err(Invalid::new("queue", "give either queue or webhook").into());
            }
        };
        let put = SubscriptionPut {
            topic: topic.to_owned(),
            name: name.to_owned(),
            target,
            filter: req.filter,
        };
        let upserted = store.subscription_put(put).await?;
        let now = store.now().await?;
        Ok(Upserted {
            value: SubscriptionInfo::of(&upserted.value, reveal, now),
            created: upserted.created,
        })
    }

    pub async fn subscription(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<SubscriptionInfo, EngineError> {
        check_name("topic", topic)?;
        check_name("name", name)?;
        let sub = self
            .inner
            .store
            .subscription_get(topic, name)
            .await?
            .ok_or_else(|| {
                EngineError::NotFound(format!("subscription {name} of topic {topic}"))
            })?;
        let now = self.inner.store.now().await?;
        Ok(SubscriptionInfo::of(&sub, false, now))
    }

    /// The subscriptions of one topic (or of all), with their delivery health, never with a
    /// secret.
    pub async fn subscriptions(
        &self,
        topic: Option<&str>,
    ) -> Result<Vec<SubscriptionInfo>, EngineError> {
        if let Some(topic) = topic {
            check_name("topic", topic)?;
        }
        let subs = self.inner.store.subscription_list(topic).await?;
        let now = self.inner.store.now().await?;
        Ok(subs
            .iter()
            .map(|s| SubscriptionInfo::of(s, false, now))
            .collect())
    }

    pub async fn subscription_delete(&self, topic: &str, name: &str) -> Result<(), EngineError> {
        check_name("topic", topic)?;
        check_name("name", name)?;
        if self.inner.store.subscription_delete(topic, name).await? {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!(
                "subscription {name} of topic {topic}"
            )))
        }
    }

    /// Every topic that has a subscription, by name.
    pub async fn topics(&self) -> Result<Vec<TopicInfo>, EngineError> {
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for sub in self.inner.store.subscription_list(None).await? {
            *counts.entry(sub.topic).or_default() += 1;
        }
        Ok(counts
            .into_iter()
            .map(|(name, subscriptions)| TopicInfo {
                name,
                subscriptions,
            })
            .collect())
    }

    /// Publishes an event: one job per matching enabled subscription, all in one store
    /// transaction, and wakes the fetchers of every queue that got one.
    pub async fn publish(
        &self,
        topic: &str,
        req: PublishRequest,
    ) -> Result<PublishResponse, EngineError> {
        self.publish_traced(topic, req, None).await
    }

    /// [`Engine::publish`] with the publisher's W3C `traceparent`, which every delivery job
    /// carries to its worker (checked: `traceparent` names a malformed one).
    pub async fn publish_traced(
        &self,
        topic: &str,
        req: PublishRequest,
        traceparent: Option<String>,
    ) -> Result<PublishResponse, EngineError> {
        check_name("topic", topic)?;
        req.validate()?;
        let template = EnqueueRequest {
            metadata: req.metadata,
            traceparent,
            ..EnqueueRequest::new(req.payload)
        };
        template.validate()?;
        let delivery = self.to_insert("", template);
        let published = self
            .inner
            .store
            .topic_publish(TopicPublish {
                topic: topic.to_owned(),
                event_id: new_event_id(),
                idempotency_key: req.idempotency_key,
                delivery,
            })
            .await?;
        self.after_insert(published.jobs.iter());
        Ok(PublishResponse {
            event_id: published.event_id,
            deliveries: published.deliveries,
        })
    }

    /// Forgets publish idempotency keys older than the finished-job retention, in batches.
    pub(crate) async fn prune_topic_events(&self) -> Result<u64, StoreError> {
        let config = &self.inner.config;
        let params = TopicEventPrune {
            older_than_ms: config.finished_retention.as_millis() as u64,
            limit: config.prune_batch,
        };
        let mut total = 0;
        loop {
            let n = self.inner.store.topic_event_prune(params).await?;
            total += n;
            if n < u64::from(params.limit) {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_distinct_and_prefixed() {
        let a = new_event_id();
        let b = new_event_id();
        assert_ne!(a, b);
        assert!(a.starts_with("evt_") && a.len() == 30, "{a}");
    }

    #[test]
    fn webhook_urls_must_be_absolute_http() {
        assert!(check_webhook_url("https://example.com/hook").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:8080/x").is_ok());
        for bad in [
            "/relative",
            "ftp://example.com/",
            "not a url",
            "mailto:a@b.c",
        ] {
            let e = check_webhook_url(bad).unwrap_err();
            assert_eq!(e.field, "webhook.url", "{bad}");
        }
    }

    #[test]
    fn secrets_are_kept_rotated_or_generated() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let req = |secret: Option<&str>| WebhookRequest {
            url: "https://new.example/".into(),
            secret: secret.map(str::to_owned),
        };
        let old = WebhookTarget {
            url: "https://old.example/".into(),
            secret: "whsec_old".into(),
            previous_secret: None,
        };
        let (kept, shown) = webhook_target(req(None), Some(old.clone()), now);
        assert_eq!(
            (kept.secret.as_str(), kept.url.as_str(), shown),
            ("whsec_old", "https://new.example/", false)
        );
        let (same, shown) = webhook_target(req(Some("whsec_old")), Some(old.clone()), now);
        assert_eq!(
            (same.secret.as_str(), same.previous_secret, shown),
            ("whsec_old", None, false)
        );
        let (rotated, shown) = webhook_target(req(Some("whsec_new")), Some(old), now);
        assert!(shown);
        let previous = rotated.previous_secret.unwrap();
        assert_eq!(previous.secret, "whsec_old");
        assert_eq!(previous.until, now + SignedDuration::from_hours(24));
        let (made, shown) = webhook_target(req(None), None, now);
        assert!(shown && made.secret.starts_with("whsec_"));
    }

    #[test]
    fn generated_secrets_validate() {
        let s = generate_webhook_secret();
        assert!(
            buzzer_types::webhook_signature::validate_secret(&s).is_ok(),
            "{s}"
        );
    }
}

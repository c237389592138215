//! Publish/subscribe: events published to a topic fan out to every subscription, each a
//! queue (a job for a [`Worker`](crate::Worker)) or a webhook the server POSTs to.

use std::future::IntoFuture;

use buzzer_types::{
    PublishRequest, PublishResponse, SubscriptionInfo, SubscriptionRequest, TopicInfo,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Buzzer, Error, enqueue::BoxFuture, job::to_raw};

/// A publish being built by [`Buzzer::publish`]; `.await` sends it and answers the event's id
/// and how many deliveries it made.
#[must_use = "a publish does nothing until awaited"]
#[derive(Debug)]
pub struct Publish {
    buzzer: Buzzer,
    topic: String,
    payload: Result<Box<serde_json::value::RawValue>, Error>,
    idempotency_key: Option<String>,
    metadata: Option<Map<String, Value>>,
}

impl Publish {
    /// Makes a repeat with the same key (per topic) a no-op that answers the first event.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Adds an entry to every delivery job's metadata (beside `topic`, `event_id` and
    /// `subscription`, which it cannot replace).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }
}

impl IntoFuture for Publish {
    type Output = Result<PublishResponse, Error>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let req = PublishRequest {
                payload: self.payload?,
                idempotency_key: self.idempotency_key,
                metadata: self.metadata,
            };
            self.buzzer.transport().publish(&self.topic, req).await
        })
    }
}

impl Buzzer {
    /// Publishes `event` to `topic`: one job per matching subscription, all or none.
    /// Publishing to a topic nobody subscribes to is not an error (`deliveries` is 0).
    ///
    /// ```no_run
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// let published = buzzer
    ///     .publish("orders", &serde_json::json!({"order": 42, "status": "placed"}))
    ///     .idempotency_key("order-42-placed")
    ///     .await?;
    /// println!("event {} made {} deliveries", published.event_id, published.deliveries);
    /// # Ok(()) }
    /// ```
    pub fn publish<T: Serialize + ?Sized>(&self, topic: &str, event: &T) -> Publish {
        Publish {
            buzzer: self.clone(),
            topic: topic.to_owned(),
            payload: to_raw(event),
            idempotency_key: None,
            metadata: None,
        }
    }

    /// Creates or replaces the subscription `name` of `topic`. For a webhook without a secret
    /// the answer carries the generated one (`webhook.secret`), shown this once.
    ///
    /// ```no_run
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// use buzzer::SubscriptionRequest;
    ///
    /// buzzer.subscribe("orders", "email", SubscriptionRequest::queue("emails")).await?;
    /// let hook = buzzer
    ///     .subscribe(
    ///         "orders",
    ///         "analytics",
    ///         SubscriptionRequest::webhook("https://analytics.example.com/in")
    ///             .filter("status", "placed"),
    ///     )
    ///     .await?;
    /// let secret = hook.webhook.and_then(|w| w.secret); // keep it for the receiver
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(
        &self,
        topic: &str,
        name: &str,
        subscription: SubscriptionRequest,
    ) -> Result<SubscriptionInfo, Error> {
        self.transport()
            .subscription_put(topic, name, subscription)
            .await
    }

    /// Deletes a subscription; deliveries already made stay. [`Error::NotFound`] when there is
    /// none.
    pub async fn unsubscribe(&self, topic: &str, name: &str) -> Result<(), Error> {
        self.transport().subscription_delete(topic, name).await
    }

    /// The subscriptions of `topic` (or of every topic), with each webhook's delivery health.
    pub async fn subscriptions(&self, topic: Option<&str>) -> Result<Vec<SubscriptionInfo>, Error> {
        self.transport().subscriptions(topic).await
    }

    /// Every topic that has a subscription.
    pub async fn topics(&self) -> Result<Vec<TopicInfo>, Error> {
        self.transport().topics().await
    }
}

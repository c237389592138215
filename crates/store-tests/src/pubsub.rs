//! Topics and subscriptions: what a store keeps of a subscription, and publishing over it
//! (one job per matching subscription, in one transaction).

use std::time::Duration;

use buzzer_store::{
    JobInsert, StoreError, SubscriptionDelivery, SubscriptionPut, SubscriptionSetDisabled,
    TopicEventPrune, TopicPublish,
};
use buzzer_types::{
    PreviousSecret, PublishRequest, Subscription, SubscriptionRequest, SubscriptionTarget,
    WEBHOOK_QUEUE, WebhookTarget,
};
use serde_json::{Map, Value, json};

use crate::{
    StoreFactory, TestContext, job_insert,
    support::{fetch_req, ms_between, raw, within},
};

fn queue_put(topic: &str, name: &str, queue: &str) -> SubscriptionPut {
    SubscriptionPut {
        topic: topic.into(),
        name: name.into(),
        target: SubscriptionTarget::Queue {
            queue: queue.into(),
        },
        filter: None,
    }
}

fn webhook(url: &str, secret: &str) -> SubscriptionTarget {
    SubscriptionTarget::Webhook(WebhookTarget {
        url: url.into(),
        secret: secret.into(),
        previous_secret: None,
    })
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

async fn sub<F: StoreFactory>(ctx: &TestContext<F>, topic: &str, name: &str) -> Subscription {
    ctx.store()
        .subscription_get(topic, name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("subscription {topic}/{name}"))
}

pub async fn subscription_put_creates_then_replaces<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let before = ctx.now().await;
    let first = ctx
        .store()
        .subscription_put(queue_put("orders", "email", "emails"))
        .await
        .unwrap();
    assert!(first.created);
    let made = first.value;
    assert_eq!(
        (made.topic.as_str(), made.name.as_str()),
        ("orders", "email")
    );
    assert!(ms_between(before, made.created_at) >= 0);
    assert_eq!(made.created_at, made.updated_at);
    assert!(!made.disabled);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut replace = queue_put("orders", "email", "emails-v2");
    replace.filter = Some(object(json!({"status": "paid"})));
    let second = ctx.store().subscription_put(replace).await.unwrap();
    assert!(!second.created, "a second put replaces");
    assert_eq!(second.value.created_at, made.created_at);
    assert!(second.value.updated_at > made.updated_at);
    assert_eq!(
        second.value.target,
        SubscriptionTarget::Queue {
            queue: "emails-v2".into()
        }
    );
    assert_eq!(second.value, sub(&ctx, "orders", "email").await);
    assert_eq!(ctx.store().subscription_list(None).await.unwrap().len(), 1);
}

pub async fn subscription_fields_round_trip_exactly<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let until = ctx.now().await + jiff::SignedDuration::from_hours(24);
    let target = SubscriptionTarget::Webhook(WebhookTarget {
        url: "https://hooks.example.com/in?x=1&y=é".into(),
        secret: "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        previous_secret: Some(PreviousSecret {
            secret: "whsec_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB".into(),
            until,
        }),
    });
    let filter = object(json!({"customer.tier": "gold", "total": 30, "tags": ["a", {"b": null}]}));
    let put = SubscriptionPut {
        topic: "orders.v1:eu".into(),
        name: "analytics_1".into(),
        target: target.clone(),
        filter: Some(filter.clone()),
    };
    let stored = ctx.store().subscription_put(put).await.unwrap().value;
    let expected_until = jiff::Timestamp::from_millisecond(until.as_millisecond()).unwrap();
    let SubscriptionTarget::Webhook(w) = &stored.target else {
        panic!("a webhook target: {stored:?}");
    };
    assert_eq!(w.url, "https://hooks.example.com/in?x=1&y=é");
    assert_eq!(w.secret, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let previous = w.previous_secret.as_ref().unwrap();
    assert_eq!(previous.secret, "whsec_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
    assert_eq!(previous.until, expected_until, "kept to the millisecond");
    assert_eq!(stored.filter.as_ref(), Some(&filter));
    assert_eq!(stored.delivery, Default::default());
    assert_eq!(stored, sub(&ctx, "orders.v1:eu", "analytics_1").await);
}

pub async fn subscription_to_a_queue_makes_the_queue_exist<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    assert!(ctx.engine().queue("emails").await.is_err());
    ctx.store()
        .subscription_put(queue_put("orders", "email", "emails"))
        .await
        .unwrap();
    let queue = ctx.engine().queue("emails").await.unwrap();
    assert_eq!(queue.counts, Default::default());
}

pub async fn subscription_list_by_topic_is_sorted<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    for (topic, name) in [("b", "z"), ("a", "y"), ("b", "a"), ("a", "x")] {
        ctx.store()
            .subscription_put(queue_put(topic, name, "q"))
            .await
            .unwrap();
    }
    let names = |subs: Vec<Subscription>| -> Vec<String> {
        subs.into_iter()
            .map(|s| format!("{}/{}", s.topic, s.name))
            .collect()
    };
    let all = ctx.store().subscription_list(None).await.unwrap();
    assert_eq!(names(all), ["a/x", "a/y", "b/a", "b/z"]);
    let b = ctx.store().subscription_list(Some("b")).await.unwrap();
    assert_eq!(names(b), ["b/a", "b/z"]);
    assert!(
        ctx.store()
            .subscription_list(Some("none"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn subscription_delete_says_whether_it_existed<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.store()
        .subscription_put(queue_put("t", "s", "q"))
        .await
        .unwrap();
    assert!(ctx.store().subscription_delete("t", "s").await.unwrap());
    assert!(!ctx.store().subscription_delete("t", "s").await.unwrap());
    assert!(
        ctx.store()
            .subscription_get("t", "s")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn subscription_disable_and_a_new_put_enables_it<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let put = SubscriptionPut {
        topic: "t".into(),
        name: "hook".into(),
        target: webhook("https://example.com/a", secret),
        filter: None,
    };
    ctx.store().subscription_put(put.clone()).await.unwrap();
    let disabled = ctx
        .store()
        .subscription_set_disabled(SubscriptionSetDisabled {
            topic: "t".into(),
            name: "hook".into(),
            disabled: true,
            reason: Some("410 Gone".into()),
        })
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("410 Gone"));
    assert_eq!(disabled, sub(&ctx, "t", "hook").await);

    let enabled = ctx
        .store()
        .subscription_set_disabled(SubscriptionSetDisabled {
            topic: "t".into(),
            name: "hook".into(),
            disabled: false,
            reason: Some("ignored".into()),
        })
        .await
        .unwrap();
    assert!(!enabled.disabled);
    assert_eq!(enabled.disabled_reason, None);

    let unknown = ctx
        .store()
        .subscription_set_disabled(SubscriptionSetDisabled {
            topic: "t".into(),
            name: "nope".into(),
            disabled: true,
            reason: None,
        })
        .await;
    assert!(
        matches!(unknown, Err(buzzer_store::StoreError::NotFound)),
        "{unknown:?}"
    );

    ctx.store()
        .subscription_set_disabled(SubscriptionSetDisabled {
            topic: "t".into(),
            name: "hook".into(),
            disabled: true,
            reason: Some("410 Gone".into()),
        })
        .await
        .unwrap();
    let again = ctx.store().subscription_put(put).await.unwrap().value;
    assert!(!again.disabled, "a put re-arms a disabled subscription");
    assert_eq!(again.disabled_reason, None);
}

pub async fn delivery_health_counts_failures_in_a_row<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    ctx.store()
        .subscription_put(SubscriptionPut {
            topic: "t".into(),
            name: "hook".into(),
            target: webhook("https://example.com/a", secret),
            filter: None,
        })
        .await
        .unwrap();
    let record = |status: Option<u16>, success: bool| SubscriptionDelivery {
        topic: "t".into(),
        name: "hook".into(),
        status,
        success,
    };
    let before = ctx.now().await;
    ctx.store()
        .subscription_record_delivery(record(Some(500), false))
        .await
        .unwrap();
    ctx.store()
        .subscription_record_delivery(record(None, false))
        .await
        .unwrap();
    let health = sub(&ctx, "t", "hook").await.delivery;
    assert_eq!(health.failures_in_row, 2);
    assert_eq!(health.last_status, None, "the last attempt got no answer");
    assert_eq!(health.last_success_at, None);
    let attempted = health.last_attempt_at.unwrap();
    assert!(ms_between(before, attempted) >= 0);

    ctx.store()
        .subscription_record_delivery(record(Some(204), true))
        .await
        .unwrap();
    let health = sub(&ctx, "t", "hook").await.delivery;
    assert_eq!(health.failures_in_row, 0);
    assert_eq!(health.last_status, Some(204));
    assert_eq!(health.last_success_at, health.last_attempt_at);

    // A replace keeps the health; a deleted subscription records nothing, without an error.
    ctx.store()
        .subscription_put(SubscriptionPut {
            topic: "t".into(),
            name: "hook".into(),
            target: webhook("https://example.com/b", secret),
            filter: None,
        })
        .await
        .unwrap();
    assert_eq!(sub(&ctx, "t", "hook").await.delivery.last_status, Some(204));
    ctx.store().subscription_delete("t", "hook").await.unwrap();
    ctx.store()
        .subscription_record_delivery(record(Some(500), false))
        .await
        .unwrap();
}

pub async fn subscriptions_survive_reopen<F: StoreFactory>(factory: F) {
    let mut ctx = TestContext::new(factory).await;
    let mut put = queue_put("t", "s", "q");
    put.filter = Some(object(json!({"a": 1})));
    let before = ctx.store().subscription_put(put).await.unwrap().value;
    ctx.reopen().await;
    assert_eq!(sub(&ctx, "t", "s").await, before);
}

fn publish(payload: Value) -> PublishRequest {
    PublishRequest {
        payload: raw(payload),
        idempotency_key: None,
        metadata: None,
    }
}

async fn subscribe_queue<F: StoreFactory>(
    ctx: &TestContext<F>,
    topic: &str,
    name: &str,
    queue: &str,
    filter: Option<Value>,
) {
    let req = SubscriptionRequest {
        queue: Some(queue.into()),
        webhook: None,
        filter: filter.map(object),
    };
    ctx.engine()
        .subscription_put(topic, name, req)
        .await
        .unwrap();
}

pub async fn publish_makes_one_job_per_matching_subscription<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    subscribe_queue(&ctx, "orders", "email", "emails", None).await;
    subscribe_queue(
        &ctx,
        "orders",
        "gold",
        "vip",
        Some(json!({"customer.tier": "gold"})),
    )
    .await;
    subscribe_queue(
        &ctx,
        "orders",
        "refunds",
        "refunds",
        Some(json!({"kind": "refund"})),
    )
    .await;
    subscribe_queue(&ctx, "other", "x", "elsewhere", None).await;

    let mut req = publish(json!({"kind": "order", "customer": {"tier": "gold"}}));
    req.metadata = Some(object(json!({"trace": "t-1", "topic": "spoofed"})));
    let published = ctx.engine().publish("orders", req).await.unwrap();
    assert_eq!(published.deliveries, 2);
    assert!(!published.event_id.is_empty());

    for (queue, subscription) in [("emails", "email"), ("vip", "gold")] {
        let job = ctx.fetch_one(queue).await;
        let payload: Value = serde_json::from_str(job.payload.get()).unwrap();
        assert_eq!(
            payload,
            json!({"kind": "order", "customer": {"tier": "gold"}})
        );
        assert_eq!(
            job.metadata["topic"], "orders",
            "the event's own fields win"
        );
        assert_eq!(job.metadata["event_id"], published.event_id.as_str());
        assert_eq!(job.metadata["subscription"], subscription);
        assert_eq!(job.metadata["trace"], "t-1");
    }
    ctx.assert_nothing_to_fetch("refunds").await;
    ctx.assert_nothing_to_fetch("elsewhere").await;
}

pub async fn publish_without_subscribers_delivers_nothing<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let published = ctx
        .engine()
        .publish("nobody-listens", publish(json!({})))
        .await
        .unwrap();
    assert_eq!(published.deliveries, 0);
    assert!(ctx.engine().queues().await.unwrap().is_empty());
}

pub async fn publish_skips_disabled_subscriptions<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    subscribe_queue(&ctx, "t", "on", "on", None).await;
    subscribe_queue(&ctx, "t", "off", "off", None).await;
    ctx.store()
        .subscription_set_disabled(SubscriptionSetDisabled {
            topic: "t".into(),
            name: "off".into(),
            disabled: true,
            reason: Some("test".into()),
        })
        .await
        .unwrap();
    let published = ctx.engine().publish("t", publish(json!(1))).await.unwrap();
    assert_eq!(published.deliveries, 1);
    ctx.fetch_one("on").await;
    ctx.assert_nothing_to_fetch("off").await;
}

pub async fn repeated_publish_with_a_key_is_a_no_op<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    subscribe_queue(&ctx, "t", "a", "qa", None).await;
    subscribe_queue(&ctx, "t", "b", "qb", None).await;
    let keyed = |v: i64| PublishRequest {
        idempotency_key: Some("order-42".into()),
        ..publish(json!({"v": v}))
    };
    let first = ctx.engine().publish("t", keyed(1)).await.unwrap();
    let again = ctx.engine().publish("t", keyed(2)).await.unwrap();
    assert_eq!(again, first, "the original event id and deliveries");
    assert_eq!(ctx.counts("qa").await.available, 1);
    assert_eq!(ctx.counts("qb").await.available, 1);
    let job = ctx.fetch_one("qa").await;
    assert_eq!(job.payload.get(), r#"{"v":1}"#);
    assert_eq!(job.metadata["event_id"], first.event_id.as_str());
    assert_eq!(
        job.idempotency_key, None,
        "the event's key is the topic's, not the job's"
    );

    // Another key is another event.
    let other = PublishRequest {
        idempotency_key: Some("order-43".into()),
        ..publish(json!({"v": 3}))
    };
    let third = ctx.engine().publish("t", other).await.unwrap();
    assert_ne!(third.event_id, first.event_id);
    assert_eq!(ctx.counts("qb").await.available, 2);
}

pub async fn concurrent_publishes_with_one_key_deliver_once<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    subscribe_queue(&ctx, "t", "a", "qa", None).await;
    subscribe_queue(&ctx, "t", "b", "qb", None).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let engine = ctx.engine().clone();
            tokio::spawn(async move {
                let req = PublishRequest {
                    idempotency_key: Some("k".into()),
                    ..publish(json!({"i": i}))
                };
                engine.publish("t", req).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(within("publishes", t).await.unwrap().unwrap().event_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the one event: {ids:?}");
    assert_eq!(ctx.counts("qa").await.available, 1);
    assert_eq!(ctx.counts("qb").await.available, 1);
}

pub async fn webhook_subscriptions_queue_a_delivery_for_the_dispatcher<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    let req = SubscriptionRequest {
        queue: None,
        webhook: Some(buzzer_types::WebhookRequest {
            url: "https://hooks.example.com/orders".into(),
            secret: None,
        }),
        filter: None,
    };
    ctx.engine()
        .subscription_put("orders", "analytics", req)
        .await
        .unwrap();
    let published = ctx
        .engine()
        .publish("orders", publish(json!({"id": 7})))
        .await
        .unwrap();
    assert_eq!(published.deliveries, 1);
    let job = ctx.fetch_one(WEBHOOK_QUEUE).await;
    assert_eq!(job.payload.get(), r#"{"id":7}"#);
    assert_eq!(
        Value::Object(job.metadata.clone()),
        json!({"topic": "orders", "event_id": published.event_id, "subscription": "analytics"})
    );
}

/// A store that fails part-way through a publish keeps nothing of it: no job, and no record
/// of its key (a retry with the same key publishes for real).
pub async fn failed_publish_leaves_nothing_behind<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    subscribe_queue(&ctx, "t", "a", "qa", None).await;
    subscribe_queue(&ctx, "t", "b", "qb", None).await;
    let publish = |max_attempts: i32, event_id: &str| TopicPublish {
        topic: "t".into(),
        event_id: event_id.into(),
        idempotency_key: Some("k".into()),
        delivery: JobInsert {
            // The schema refuses 0 attempts: the insert of the deliveries fails.
            max_attempts,
            ..job_insert("", raw(json!({"n": 1})))
        },
    };
    let failed = ctx.store().topic_publish(publish(0, "evt_failed")).await;
    assert!(matches!(failed, Err(StoreError::Backend(_))), "{failed:?}");
    assert_eq!(ctx.counts("qa").await.available, 0);
    assert_eq!(ctx.counts("qb").await.available, 0);

    let ok = ctx
        .store()
        .topic_publish(publish(5, "evt_ok"))
        .await
        .unwrap();
    assert!(ok.created);
    assert_eq!((ok.event_id.as_str(), ok.deliveries), ("evt_ok", 2));
    assert_eq!(ok.jobs.len(), 2);
    assert_eq!(ctx.counts("qa").await.available, 1);
    assert_eq!(ctx.counts("qb").await.available, 1);
}

pub async fn long_poll_fetch_wakes_on_publish<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    subscribe_queue(&ctx, "t", "a", "qa", None).await;
    let engine = ctx.engine().clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req(&["qa"], 1, 5_000)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    let published = ctx.engine().publish("t", publish(json!(1))).await.unwrap();
    let got = within("the waiting fetch", waiter).await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].metadata["event_id"], published.event_id.as_str());
    let gap = ms_between(got[0].created_at, got[0].started_at.unwrap());
    assert!(
        (0..=100).contains(&gap),
        "leased {gap} ms after the publish"
    );
}

pub async fn publish_keys_are_forgotten_when_pruned<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    subscribe_queue(&ctx, "t", "a", "qa", None).await;
    let keyed = || PublishRequest {
        idempotency_key: Some("k".into()),
        ..publish(json!({}))
    };
    let first = ctx.engine().publish("t", keyed()).await.unwrap();
    let prune = |older_than_ms| TopicEventPrune {
        older_than_ms,
        limit: 10,
    };
    assert_eq!(
        ctx.store()
            .topic_event_prune(prune(3_600_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(ctx.engine().publish("t", keyed()).await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(ctx.store().topic_event_prune(prune(0)).await.unwrap(), 1);
    let again = ctx.engine().publish("t", keyed()).await.unwrap();
    assert_ne!(again.event_id, first.event_id);
    assert_eq!(ctx.counts("qa").await.available, 2);
}

pub async fn subscription_requests_are_validated_naming_the_field<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let cases = [
        (json!({"queue": "bad name"}), "queue"),
        (json!({"queue": WEBHOOK_QUEUE}), "queue"),
        (json!({}), "queue"),
        (
            json!({"queue": "q", "webhook": {"url": "https://a.example"}}),
            "webhook",
        ),
        (
            json!({"webhook": {"url": "ftp://a.example/"}}),
            "webhook.url",
        ),
        (json!({"webhook": {"url": "/relative"}}), "webhook.url"),
        (
            json!({"webhook": {"url": "https://a.example", "secret": "nope"}}),
            "webhook.secret",
        ),
    ];
    for (body, field) in cases {
        let req: SubscriptionRequest = serde_json::from_value(body.clone()).unwrap();
        match ctx.engine().subscription_put("t", "s", req).await {
            Err(buzzer_engine::EngineError::Invalid(e)) => assert_eq!(e.field, field, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    assert!(
        ctx.store()
            .subscription_list(None)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn webhook_secrets_are_generated_kept_and_rotated<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let put = |secret: Option<&str>| SubscriptionRequest {
        queue: None,
        webhook: Some(buzzer_types::WebhookRequest {
            url: "https://hooks.example.com/a".into(),
            secret: secret.map(str::to_owned),
        }),
        filter: None,
    };
    let made = ctx
        .engine()
        .subscription_put("t", "h", put(None))
        .await
        .unwrap();
    assert!(made.created);
    let hook = made.value.webhook.unwrap();
    let generated = hook.secret.expect("a generated secret is shown once");
    assert!(generated.starts_with("whsec_"));
    buzzer_types::webhook_signature::validate_secret(&generated).unwrap();
    assert!(hook.previous_secret_until.is_none());

    let read = ctx.engine().subscription("t", "h").await.unwrap();
    assert_eq!(
        read.webhook.as_ref().unwrap().secret,
        None,
        "never shown again"
    );

    let kept = ctx
        .engine()
        .subscription_put("t", "h", put(None))
        .await
        .unwrap();
    assert_eq!(kept.value.webhook.unwrap().secret, None);
    let SubscriptionTarget::Webhook(w) = sub(&ctx, "t", "h").await.target else {
        panic!("webhook")
    };
    assert_eq!(w.secret, generated, "a put without a secret keeps it");

    let new = "whsec_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC";
    let rotated = ctx
        .engine()
        .subscription_put("t", "h", put(Some(new)))
        .await
        .unwrap();
    let hook = rotated.value.webhook.unwrap();
    assert_eq!(hook.secret.as_deref(), Some(new));
    assert!(hook.previous_secret_until.is_some());
    let SubscriptionTarget::Webhook(w) = sub(&ctx, "t", "h").await.target else {
        panic!("webhook")
    };
    let now = ctx.now().await;
    assert_eq!(w.signing_secrets(now), vec![new, generated.as_str()]);
}

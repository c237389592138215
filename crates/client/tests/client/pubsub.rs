//! Publishing, subscribing handlers and cron schedules through the client.

use std::time::Duration;

use buzzer::{Error, Job, JobContext, JobError, SubscriptionRequest, Worker};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::harness::{Echo, Harness, PATIENCE};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderPlaced {
    pub order: u64,
    pub status: String,
}

impl Job for OrderPlaced {
    const QUEUE: &'static str = "order-emails";
    type Output = ();
}

pub async fn a_subscribed_handler_receives_published_events(h: Harness) {
    let (seen, mut events) = mpsc::unbounded_channel();
    let worker = Worker::builder(&h.buzzer)
        .poll_wait(Duration::from_millis(100))
        .subscribe::<OrderPlaced, _>("orders", move |ctx: JobContext, e: OrderPlaced| {
            let seen = seen.clone();
            async move {
                let job = ctx.id();
                seen.send((job, e)).unwrap();
                Ok::<_, JobError>(())
            }
        })
        .await
        .unwrap()
        .build()
        .unwrap()
        .spawn();
    let audit = h
        .buzzer
        .subscribe(
            "orders",
            "audit",
            SubscriptionRequest::queue("audit").filter("status", "paid"),
        )
        .await
        .unwrap();
    assert_eq!(audit.queue.as_deref(), Some("audit"));

    let placed = OrderPlaced {
        order: 42,
        status: "placed".into(),
    };
    let published = h
        .buzzer
        .publish("orders", &placed)
        .idempotency_key("order-42-placed")
        .metadata("trace", "t-9")
        .await
        .unwrap();
    assert_eq!(
        published.deliveries, 1,
        "the audit filter wants paid orders"
    );
    let (job_id, got) = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, placed);
    let job = h.job(job_id).await;
    assert_eq!(job.metadata["topic"], "orders");
    assert_eq!(job.metadata["event_id"], published.event_id.as_str());
    assert_eq!(job.metadata["trace"], "t-9");

    let again = h
        .buzzer
        .publish("orders", &placed)
        .idempotency_key("order-42-placed")
        .await
        .unwrap();
    assert_eq!(again, published, "a repeat is a no-op");

    let topics = h.buzzer.topics().await.unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].subscriptions, 2);
    let subs = h.buzzer.subscriptions(Some("orders")).await.unwrap();
    let names: Vec<_> = subs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["audit", "order-emails"]);
    h.buzzer.unsubscribe("orders", "audit").await.unwrap();
    assert!(matches!(
        h.buzzer.unsubscribe("orders", "audit").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(h.buzzer.subscriptions(None).await.unwrap().len(), 1);
    worker.shutdown().await;
    h.stop().await;
}

pub async fn webhook_subscriptions_show_their_secret_once(h: Harness) {
    let made = h
        .buzzer
        .subscribe(
            "orders",
            "hook",
            SubscriptionRequest::webhook("https://hooks.example.com/orders"),
        )
        .await
        .unwrap();
    let secret = made.webhook.unwrap().secret.unwrap();
    assert!(secret.starts_with("whsec_"));
    let listed = h.buzzer.subscriptions(Some("orders")).await.unwrap();
    assert_eq!(listed[0].webhook.as_ref().unwrap().secret, None);
    let bad = h
        .buzzer
        .subscribe("orders", "hook", SubscriptionRequest::webhook("ftp://x/"))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, Error::Invalid { field, .. } if field == "webhook.url"),
        "{bad:?}"
    );
    h.stop().await;
}

pub async fn schedules_enqueue_typed_jobs(h: Harness) {
    let info = h
        .buzzer
        .schedule("every-second", "* * * * * *", Echo("tick".into()))
        .timezone("Europe/Amsterdam")
        .tag("cron")
        .await
        .unwrap();
    assert_eq!(info.queue, "echo");
    assert_eq!(info.timezone, "Europe/Amsterdam");
    assert_eq!(info.next_fire_times.len(), 5);
    assert_eq!(h.buzzer.schedules().await.unwrap().len(), 1);
    assert_eq!(
        h.buzzer.schedule_info("every-second").await.unwrap().cron,
        "* * * * * *"
    );

    let (done, mut ticks) = mpsc::unbounded_channel();
    let worker = Worker::builder(&h.buzzer)
        .poll_wait(Duration::from_millis(100))
        .register::<Echo, _>(move |_ctx: JobContext, e: Echo| {
            let done = done.clone();
            async move {
                done.send(e.0.clone()).unwrap();
                Ok::<_, JobError>(e.0)
            }
        })
        .build()
        .unwrap()
        .spawn();
    let first = tokio::time::timeout(PATIENCE, ticks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, "tick");
    h.buzzer.delete_schedule("every-second").await.unwrap();
    assert!(matches!(
        h.buzzer.schedule_info("every-second").await,
        Err(Error::NotFound(_))
    ));
    let bad = h
        .buzzer
        .schedule("bad", "every day", Echo("x".into()))
        .await
        .unwrap_err();
    assert!(
        matches!(&bad, Error::Invalid { field, .. } if field == "cron"),
        "{bad:?}"
    );
    worker.shutdown().await;
    h.stop().await;
}

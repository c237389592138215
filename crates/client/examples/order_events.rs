//! Event-driven services in one process: an `orders` topic whose events reach a confirmation
//! mailer (a subscribed handler) and an audit queue that only wants large orders, plus a cron
//! schedule that enqueues a sales report every second.
//!
//! Run it with:
//!
//! ```sh
//! cargo run -p buzzer --example order_events
//! ```
//!
//! It keeps its database in a temporary directory and prints what each consumer sees.

use std::time::Duration;

use buzzer::{Buzzer, Job, JobContext, JobError, SubscriptionRequest, Worker};
use serde::{Deserialize, Serialize};

/// The event: published once, delivered to every subscriber as its own job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderPlaced {
    order: u64,
    total_cents: u64,
}

/// The mailer subscribes itself: every `orders` event becomes a job in this queue.
impl Job for OrderPlaced {
    const QUEUE: &'static str = "order-confirmations";
    type Output = ();
}

/// The audit trail reads the same events from a queue of its own.
#[derive(Debug, Serialize, Deserialize)]
struct Audit(OrderPlaced);

impl Job for Audit {
    const QUEUE: &'static str = "audit";
    type Output = ();
}

#[derive(Debug, Serialize, Deserialize)]
struct SalesReport {
    period: String,
}

impl Job for SalesReport {
    const QUEUE: &'static str = "reports";
    type Output = ();
}

async fn send_confirmation(ctx: JobContext, e: OrderPlaced) -> Result<(), JobError> {
    let event = &ctx.metadata()["event_id"];
    println!("mailer: confirmation for order {} (event {event})", e.order);
    Ok(())
}

async fn audit(_ctx: JobContext, Audit(e): Audit) -> Result<(), JobError> {
    println!("audit:  large order {} of {} cents", e.order, e.total_cents);
    Ok(())
}

async fn report(_ctx: JobContext, r: SalesReport) -> Result<(), JobError> {
    println!("cron:   sales report for the last {}", r.period);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let buzzer = Buzzer::open(dir.path().join("events.db")).await?;

    // The audit subscription filters on the payload: only orders of 100 € and more.
    buzzer
        .subscribe(
            "orders",
            "audit",
            SubscriptionRequest::queue(Audit::QUEUE).filter("large", true),
        )
        .await?;
    buzzer
        .schedule(
            "sales-report",
            "* * * * * *",
            SalesReport {
                period: "second".into(),
            },
        )
        .await?;
    let worker = Worker::builder(&buzzer)
        .poll_wait(Duration::from_millis(200))
        .subscribe::<OrderPlaced, _>("orders", send_confirmation)
        .await?
        .register::<Audit, _>(audit)
        .register::<SalesReport, _>(report)
        .build()?
        .spawn();

    for (order, total_cents) in [(1, 2_500), (2, 18_000), (3, 900)] {
        let mut event = serde_json::to_value(OrderPlaced { order, total_cents })?;
        event["large"] = (total_cents >= 10_000).into();
        let published = buzzer
            .publish("orders", &event)
            .idempotency_key(format!("order-{order}"))
            .await?;
        println!(
            "shop:   published order {order} as {} to {} subscriber(s)",
            published.event_id, published.deliveries
        );
    }

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    worker.shutdown().await;
    buzzer.shutdown().await?;
    Ok(())
}

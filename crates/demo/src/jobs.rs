//! The work the shop hands to Buzzer in the async and hybrid modes, and the worker that runs
//! it by calling the same simulated providers the sync mode calls inline.

use std::time::Duration;

use buzzer::{Buzzer, Job, JobContext, JobError, Worker, WorkerHandle};
use serde::{Deserialize, Serialize};

use crate::providers::{ProviderError, Providers};

/// The order confirmation email.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendConfirmation {
    pub order: u64,
    pub to: String,
}

impl Job for SendConfirmation {
    const QUEUE: &'static str = "emails";
    type Output = ();
}

/// The invoice PDF.
#[derive(Debug, Serialize, Deserialize)]
pub struct RenderInvoice {
    pub order: u64,
    pub cents: u64,
}

impl Job for RenderInvoice {
    const QUEUE: &'static str = "invoices";
    type Output = ();
}

/// The "order placed" analytics event.
#[derive(Debug, Serialize, Deserialize)]
pub struct TrackOrder {
    pub order: u64,
    pub mode: String,
}

impl Job for TrackOrder {
    const QUEUE: &'static str = "analytics";
    type Output = ();
}

/// The queues the demo's worker serves, in the order the page lists them.
pub const QUEUES: [&str; 3] = [
    SendConfirmation::QUEUE,
    RenderInvoice::QUEUE,
    TrackOrder::QUEUE,
];

/// A provider's error is a failed attempt: the job retries with its backoff, and lands in
/// the dead-letter queue when it runs out of attempts.
fn retry(e: ProviderError) -> JobError {
    JobError::retry(e.to_string())
}

/// Starts one worker for the three queues, `concurrency` jobs at a time on each.
pub fn spawn_worker(
    buzzer: &Buzzer,
    providers: &Providers,
    concurrency: usize,
) -> Result<WorkerHandle, buzzer::Error> {
    let email = providers.clone();
    let invoice = providers.clone();
    let analytics = providers.clone();
    Ok(Worker::builder(buzzer)
        .worker_id("demo-worker")
        .register::<SendConfirmation, _>(move |_ctx: JobContext, job: SendConfirmation| {
            let providers = email.clone();
            async move { providers.send_email(job.order).await.map_err(retry) }
        })
        .register::<RenderInvoice, _>(move |_ctx: JobContext, _job: RenderInvoice| {
            let providers = invoice.clone();
            async move { providers.render_invoice().await.map_err(retry) }
        })
        .register::<TrackOrder, _>(move |_ctx: JobContext, _job: TrackOrder| {
            let providers = analytics.clone();
            async move { providers.track().await.map_err(retry) }
        })
        .concurrency::<SendConfirmation>(concurrency)
        .concurrency::<RenderInvoice>(concurrency)
        .concurrency::<TrackOrder>(concurrency)
        // Short fetch polls so the demo stops promptly on Ctrl-C.
        .poll_wait(Duration::from_millis(500))
        .grace(Duration::from_secs(2))
        .build()?
        .spawn())
}

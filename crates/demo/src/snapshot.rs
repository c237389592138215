//! What the demo page shows, gathered in one read: orders and where their emails are, the
//! queues, the worker, the providers and the response times per mode.

use buzzer::{BreakerState, JobState};
use serde::Serialize;

use crate::{
    jobs::{QUEUES, SendConfirmation},
    orders::{Email, Mode, ModeSummary, Order},
    providers::ProviderStats,
    shop::Shop,
};

/// How many orders the page lists.
const LISTED: usize = 25;
/// How many response times per mode the chart plots.
const PLOTTED: usize = 200;

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub outage: bool,
    pub email_latency_ms: u64,
    pub email_failure_rate: f64,
    pub hybrid_budget_ms: u64,
    /// The hybrid call's circuit breaker on the email queue.
    pub email_breaker: &'static str,
    pub emails_delivered: usize,
    pub modes: Vec<ModeSummary>,
    pub orders: Vec<ListedOrder>,
    /// Recent server-side response times per mode, oldest first, for the chart.
    pub times: Vec<(Mode, Vec<f64>)>,
    pub queues: Vec<QueueRow>,
    pub worker: WorkerRow,
    pub providers: Vec<ProviderStats>,
}

#[derive(Debug, Serialize)]
pub struct ListedOrder {
    #[serde(flatten)]
    pub order: Order,
    /// Where the confirmation email is now, in words.
    pub email_now: String,
}

#[derive(Debug, Serialize)]
pub struct QueueRow {
    pub name: String,
    pub scheduled: u64,
    pub available: u64,
    pub running: u64,
    pub retryable: u64,
    pub completed: u64,
    pub dead: u64,
    /// Failed attempts that were retried, since the demo started.
    pub retries: u64,
}

#[derive(Debug, Serialize)]
pub struct WorkerRow {
    pub id: &'static str,
    pub concurrency: usize,
    pub running: u64,
}

impl Shop {
    pub async fn snapshot(&self, worker_concurrency: usize) -> Result<Snapshot, buzzer::Error> {
        let mut orders = Vec::new();
        for order in self.orders.recent(LISTED) {
            let email_now = self.email_now(&order).await?;
            orders.push(ListedOrder { order, email_now });
        }
        let queues = self.queue_rows().await?;
        let running = queues.iter().map(|q| q.running).sum();
        let recent = self.orders.recent(PLOTTED * Mode::ALL.len());
        let times = Mode::ALL
            .into_iter()
            .map(|mode| {
                let mut times: Vec<f64> = recent
                    .iter()
                    .filter(|o| o.mode == mode)
                    .take(PLOTTED)
                    .map(|o| o.server_ms)
                    .collect();
                times.reverse();
                (mode, times)
            })
            .collect();
        let email = self.providers.email().behaviour();
        Ok(Snapshot {
            outage: self.providers.email_outage(),
            email_latency_ms: u64::try_from(email.latency.as_millis()).unwrap_or(u64::MAX),
            email_failure_rate: email.failure_rate,
            hybrid_budget_ms: u64::try_from(self.hybrid_budget.as_millis()).unwrap_or(u64::MAX),
            email_breaker: match self
                .buzzer
                .breaker_state(<SendConfirmation as buzzer::Job>::QUEUE)
            {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half-open",
            },
            emails_delivered: self.providers.emails_delivered(),
            modes: self.orders.summary(),
            orders,
            times,
            queues,
            worker: WorkerRow {
                id: "demo-worker",
                concurrency: worker_concurrency,
                running,
            },
            providers: self.providers.stats(),
        })
    }

    /// The email of an order, as the customer would see it now.
    pub async fn email_now(&self, order: &Order) -> Result<String, buzzer::Error> {
        let job = match order.email {
            Email::Sent => return Ok("sent".into()),
            Email::None => return Ok("not sent".into()),
            Email::Queued(job) => job,
        };
        if self.providers.email_sent_at(order.id).is_some() {
            return Ok("sent".into());
        }
        let job = match self.buzzer.handle::<SendConfirmation>(job).status().await {
            Ok(job) => job,
            // Pruned long after it finished.
            Err(buzzer::Error::NotFound(_)) => return Ok("gone".into()),
            Err(e) => return Err(e),
        };
        Ok(match job.state {
            JobState::Retryable => format!("retrying (attempt {} failed)", job.attempt),
            JobState::Dead => "in the DLQ".into(),
            JobState::Cancelled => "cancelled".into(),
            JobState::Completed => "sent".into(),
            JobState::Scheduled | JobState::Available | JobState::Running => "on its way".into(),
        })
    }

    async fn queue_rows(&self) -> Result<Vec<QueueRow>, buzzer::Error> {
        let Some(engine) = self.buzzer.engine() else {
            return Ok(Vec::new());
        };
        let infos = engine
            .queues()
            .await
            .map_err(|e| buzzer::Error::Unavailable(e.to_string()))?;
        Ok(QUEUES
            .into_iter()
            .map(|name| {
                let info = infos.iter().find(|q| q.name == name);
                let c = info.map(|q| q.counts).unwrap_or_default();
                QueueRow {
                    name: name.to_owned(),
                    scheduled: c.scheduled,
                    available: c.available,
                    running: c.running,
                    retryable: c.retryable,
                    completed: c.completed,
                    dead: c.dead,
                    retries: engine.metrics().queue_totals(name).retried,
                }
            })
            .collect())
    }
}

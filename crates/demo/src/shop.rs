//! The checkout, three ways. Payment and the stock check always happen inline: the customer
//! must know whether the order went through. What differs is the slow, failure-prone rest.

use std::{
    future::IntoFuture,
    time::{Duration, Instant},
};

use buzzer::{Answer, Buzzer, JobId};
use jiff::Timestamp;

use crate::{
    jobs::{RenderInvoice, SendConfirmation, TrackOrder},
    orders::{Email, Mode, Order, OrderBook, Outcome},
    providers::{ProviderError, Providers},
};

/// How queued jobs retry: the email's attempts and backoff decide how long an outage it rides
/// out before landing in the dead-letter queue.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// The shop: its order book, its providers, and Buzzer for the work that can wait.
#[derive(Debug)]
pub struct Shop {
    pub buzzer: Buzzer,
    pub providers: Providers,
    pub orders: OrderBook,
    pub retry: RetryPolicy,
    /// How long a hybrid checkout waits for the email before saying it is on its way.
    pub hybrid_budget: Duration,
}

/// Why a checkout did not confirm the order.
#[derive(Debug)]
pub enum CheckoutError {
    Declined,
    /// A provider failed inline (only sync checkouts call the slow ones inline).
    Provider(ProviderError),
    /// Buzzer did not take the jobs: the order is not confirmed, nothing was charged twice.
    Queue(buzzer::Error),
}

/// A confirmed checkout.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub order: Order,
    /// Hybrid only: whether the email answered within the budget.
    pub email_inline: Option<bool>,
}

impl Shop {
    /// Runs one checkout in `mode`, records it, and says how it went.
    pub async fn checkout(&self, mode: Mode) -> (Order, Result<Receipt, CheckoutError>) {
        let id = self.orders.next_id();
        let placed_at = Timestamp::now();
        let started = Instant::now();
        let result = match mode {
            Mode::Sync => self.sync(id).await,
            Mode::Async => self
                .queued(id, mode)
                .await
                .map(|job| (Email::Queued(job), None)),
            Mode::Hybrid => self.hybrid(id).await,
        };
        let server_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (outcome, email, inline) = match &result {
            Ok((email, inline)) => (Outcome::Confirmed, email.clone(), *inline),
            Err(CheckoutError::Declined) => (Outcome::Declined, Email::None, None),
            Err(CheckoutError::Provider(e)) => (Outcome::Failed(e.to_string()), Email::None, None),
            Err(CheckoutError::Queue(e)) => (Outcome::Failed(e.to_string()), Email::None, None),
        };
        let order = Order {
            id,
            mode,
            placed_at,
            server_ms,
            outcome,
            email,
        };
        self.orders.record(order.clone());
        let result = result.map(|_| Receipt {
            order: order.clone(),
            email_inline: inline,
        });
        (order, result)
    }

    /// The naive checkout: every provider in turn, the customer waiting for all of them.
    async fn sync(&self, id: u64) -> Result<(Email, Option<bool>), CheckoutError> {
        self.charge_and_reserve().await?;
        let p = &self.providers;
        p.send_email(id).await.map_err(CheckoutError::Provider)?;
        p.render_invoice().await.map_err(CheckoutError::Provider)?;
        p.track().await.map_err(CheckoutError::Provider)?;
        Ok((Email::Sent, None))
    }

    /// Charges, reserves, then hands the email, invoice and analytics to Buzzer; answers with
    /// the email's job. The three enqueues go out together so the store's group commit can
    /// make them one fsync. They are three transactions, not one: if one fails the checkout
    /// answers 503 while the others may already be queued.
    async fn queued(&self, id: u64, mode: Mode) -> Result<JobId, CheckoutError> {
        self.charge_and_reserve().await?;
        let email = async {
            self.with_retry(self.buzzer.enqueue(confirmation(id)))
                .idempotency_key(format!("order-{id}-email"))
                .await
                .map_err(CheckoutError::Queue)
        };
        let (email, ()) = tokio::try_join!(email, self.enqueue_rest(id, mode))?;
        Ok(email.id())
    }

    /// As [`Shop::queued`], but the email gets the hybrid call: it is "sent" if the provider
    /// answers within the budget, "on its way" (a job that keeps retrying) otherwise.
    async fn hybrid(&self, id: u64) -> Result<(Email, Option<bool>), CheckoutError> {
        self.charge_and_reserve().await?;
        let call = async {
            let answer = self
                .buzzer
                .call(confirmation(id))
                .max_attempts(self.retry.attempts)
                .backoff(self.retry.backoff_initial, self.retry.backoff_max, 2.0)
                .idempotency_key(format!("order-{id}-email"))
                .within(self.hybrid_budget)
                .await;
            match answer {
                Ok(Answer::Now(())) => Ok((Email::Sent, Some(true))),
                Ok(Answer::Later(job)) => Ok((Email::Queued(job.id()), Some(false))),
                // The email ran out of attempts within the budget: the order stands, the
                // email waits in the dead-letter queue for an operator to replay.
                Err(buzzer::Error::JobDead { id, .. }) => Ok((Email::Queued(id), Some(false))),
                Err(e) => Err(CheckoutError::Queue(e)),
            }
        };
        let (email, ()) = tokio::try_join!(call, self.enqueue_rest(id, Mode::Hybrid))?;
        Ok(email)
    }

    async fn charge_and_reserve(&self) -> Result<(), CheckoutError> {
        self.providers
            .charge()
            .await
            .map_err(|_| CheckoutError::Declined)?;
        self.providers
            .reserve_stock()
            .await
            .map_err(CheckoutError::Provider)
    }

    async fn enqueue_rest(&self, id: u64, mode: Mode) -> Result<(), CheckoutError> {
        let invoice = RenderInvoice {
            order: id,
            cents: 4_200,
        };
        let event = TrackOrder {
            order: id,
            mode: mode.as_str().to_owned(),
        };
        let invoice = self
            .with_retry(self.buzzer.enqueue(invoice))
            .idempotency_key(format!("order-{id}-invoice"));
        let event = self
            .with_retry(self.buzzer.enqueue(event))
            .idempotency_key(format!("order-{id}-analytics"));
        tokio::try_join!(invoice.into_future(), event.into_future())
            .map_err(CheckoutError::Queue)?;
        Ok(())
    }

    fn with_retry<J: buzzer::Job>(&self, enqueue: buzzer::Enqueue<J>) -> buzzer::Enqueue<J> {
        enqueue.max_attempts(self.retry.attempts).backoff(
            self.retry.backoff_initial,
            self.retry.backoff_max,
            2.0,
        )
    }
}

fn confirmation(order: u64) -> SendConfirmation {
    SendConfirmation {
        order,
        to: format!("customer-{order}@example.com"),
    }
}

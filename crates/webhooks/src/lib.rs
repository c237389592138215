//! Buzzer's webhook dispatcher: the service that POSTs topic events to webhook URLs.
//!
//! Publishing to a topic makes, for each webhook subscription, a job in the reserved queue
//! [`QUEUE`] whose payload is the event and whose metadata names the `topic` and
//! `subscription`. The [`WebhookDispatcher`] leases those jobs through the [`Engine`] like any
//! worker, so deliveries get the normal retries, backoff and dead-letter queue, and survive a
//! crash. Each attempt is signed with the Standard Webhooks scheme
//! ([`buzzer_types::webhook_signature`]) and may only reach public addresses unless
//! [`WebhookConfig::allow_private`] is set; the guard runs when the host name is resolved,
//! for every connection, so a name that later resolves elsewhere (DNS rebinding) is caught.
//!
//! | answer                              | the delivery job                                      |
//! |-------------------------------------|-------------------------------------------------------|
//! | 2xx                                 | `completed`; the result keeps status, latency, body   |
//! | 429 or 503 with `Retry-After`       | retried at that time (at most [`WebhookConfig::max_retry_after`]) |
//! | 410 Gone                            | `dead`, and the subscription is disabled              |
//! | other status, timeout, no answer    | a failed attempt: retried with backoff, then `dead`   |
//! | refused address (SSRF guard)        | a failed attempt, like no answer                      |
//! | subscription deleted or disabled    | `cancelled`: there is nobody to deliver to any more   |
//!
//! ```no_run
//! # async fn demo(engine: buzzer_engine::Engine) -> Result<(), buzzer_webhooks::WebhookError> {
//! use buzzer_webhooks::{WebhookConfig, WebhookDispatcher};
//!
//! let dispatcher = WebhookDispatcher::new(engine.clone(), WebhookConfig::default())?.start();
//! // … serve …
//! engine.shutdown(); // the dispatcher hands its leased jobs back
//! dispatcher.join().await;
//! # Ok(()) }
//! ```

mod attempt;
mod config;
mod deliver;
mod dispatcher;
mod guard;
mod retry_after;

pub use buzzer_engine::Engine;
pub use config::WebhookConfig;
pub use dispatcher::{Dispatcher, WebhookDispatcher};
pub use guard::AddressRefused;

/// The reserved queue that holds webhook deliveries (`buzzer:webhooks`).
pub use buzzer_types::WEBHOOK_QUEUE as QUEUE;

/// The dispatcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

//! One delivery job, start to end: find the subscription, make the attempt, record how it
//! went, and turn it into one [`Outcome`] for the engine.

use std::time::Duration;

use buzzer_engine::{Outcome, RetryRequest};
use buzzer_store::{SubscriptionDelivery, SubscriptionSetDisabled};
use buzzer_types::{ErrorInput, Job, RawValue, Subscription, SubscriptionTarget, WebhookTarget};
use reqwest::StatusCode;

use crate::{attempt::Attempt, dispatcher::Context};

/// The subscription a delivery job is for, from its metadata.
struct Addressee<'a> {
    topic: &'a str,
    name: &'a str,
}

impl<'a> Addressee<'a> {
    fn of(job: &'a Job) -> Option<Addressee<'a>> {
        Some(Addressee {
            topic: job.metadata.get("topic")?.as_str()?,
            name: job.metadata.get("subscription")?.as_str()?,
        })
    }
}

impl std::fmt::Display for Addressee<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.name)
    }
}

pub(crate) async fn deliver(ctx: &Context, job: &Job) -> Outcome {
    let Some(to) = Addressee::of(job) else {
        return Outcome::Dead {
            error: ErrorInput::new(
                "not a webhook delivery: metadata.topic and metadata.subscription must name \
                 the subscription",
            ),
        };
    };
    let subscription = match load(ctx, &to).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let target = match webhook_of(&to, &subscription) {
        Ok(t) => t,
        Err(outcome) => return outcome,
    };
    let attempt = crate::attempt::post(&ctx.client, &ctx.config, target, job).await;
    record(ctx, &to, &attempt).await;
    judge(ctx, &to, &attempt).await
}

/// The subscription, or how the job ends when there is none to deliver to.
async fn load(ctx: &Context, to: &Addressee<'_>) -> Result<Subscription, Outcome> {
    match ctx.engine.store().subscription_get(to.topic, to.name).await {
        Ok(Some(s)) if s.disabled => Err(cancelled(disabled_message(to, &s))),
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(cancelled(format!(
            "subscription {to} was deleted; the delivery is dropped"
        ))),
        Err(e) => Err(retry(
            ErrorInput::new(format!("cannot load subscription {to}: {e}")),
            None,
        )),
    }
}

fn webhook_of<'s>(
    to: &Addressee<'_>,
    subscription: &'s Subscription,
) -> Result<&'s WebhookTarget, Outcome> {
    match &subscription.target {
        SubscriptionTarget::Webhook(target) => Ok(target),
        SubscriptionTarget::Queue { queue } => Err(Outcome::Dead {
            error: ErrorInput::new(format!(
                "subscription {to} delivers to the queue {queue}, not to a webhook"
            )),
        }),
    }
}

/// What the attempt's answer (or its absence) means for the job.
async fn judge(ctx: &Context, to: &Addressee<'_>, attempt: &Attempt) -> Outcome {
    let Some(status) = attempt.status else {
        let why = attempt
            .failure
            .clone()
            .unwrap_or_else(|| "no answer".into());
        return retry_with(why, attempt, None);
    };
    if status.is_success() {
        return completed(attempt);
    }
    if status == StatusCode::GONE {
        return gone(ctx, to, attempt).await;
    }
    let asked = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => attempt
            .retry_after
            .map(|d| d.min(ctx.config.max_retry_after)),
        _ => None,
    };
    let mut message = format!("the endpoint answered {status}");
    if let Some(wait) = asked {
        message.push_str(&format!(", Retry-After {} s", wait.as_secs()));
    }
    retry_with(message, attempt, asked)
}

fn disabled_message(to: &Addressee<'_>, subscription: &Subscription) -> String {
    match &subscription.disabled_reason {
        Some(reason) => {
            format!("subscription {to} is disabled ({reason}); the delivery is dropped")
        }
        None => format!("subscription {to} is disabled; the delivery is dropped"),
    }
}

/// The delivery health shown on the subscription; a failure to write it must not change
/// what happens to the job.
async fn record(ctx: &Context, to: &Addressee<'_>, attempt: &Attempt) {
    let params = SubscriptionDelivery {
        topic: to.topic.to_owned(),
        name: to.name.to_owned(),
        status: attempt.status.map(|s| s.as_u16()),
        success: attempt.status.is_some_and(|s| s.is_success()),
    };
    if let Err(e) = ctx
        .engine
        .store()
        .subscription_record_delivery(params)
        .await
    {
        tracing::warn!(subscription = %to, error = %e, "cannot record the delivery health");
    }
}

/// 410 Gone: the receiver asks for no more deliveries. The subscription is disabled (a `PUT`
/// enables it again) and this delivery goes to the dead-letter queue, from which it can be
/// replayed once the subscription is back.
async fn gone(ctx: &Context, to: &Addressee<'_>, attempt: &Attempt) -> Outcome {
    let reason = format!(
        "the endpoint answered 410 Gone at {}",
        jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    let disabled = ctx
        .engine
        .store()
        .subscription_set_disabled(SubscriptionSetDisabled {
            topic: to.topic.to_owned(),
            name: to.name.to_owned(),
            disabled: true,
            reason: Some(reason),
        })
        .await;
    let message = match disabled {
        Ok(_) => {
            tracing::info!(subscription = %to, "webhook answered 410 Gone: subscription disabled");
            format!("the endpoint answered 410 Gone; subscription {to} is now disabled")
        }
        Err(e) => {
            tracing::warn!(subscription = %to, error = %e, "cannot disable the subscription after 410");
            format!("the endpoint answered 410 Gone; disabling subscription {to} failed: {e}")
        }
    };
    let mut error = ErrorInput::new(message);
    error.details = attempt.details();
    Outcome::Dead { error }
}

fn completed(attempt: &Attempt) -> Outcome {
    let text = serde_json::Value::Object(attempt.details()).to_string();
    Outcome::Completed {
        result: RawValue::from_string(text).ok(),
    }
}

fn cancelled(message: String) -> Outcome {
    Outcome::Cancelled {
        error: Some(ErrorInput::new(message)),
    }
}

fn retry(error: ErrorInput, retry_in: Option<Duration>) -> Outcome {
    Outcome::Retry(RetryRequest {
        error,
        retry_in_ms: retry_in.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    })
}

fn retry_with(message: String, attempt: &Attempt, retry_in: Option<Duration>) -> Outcome {
    let mut error = ErrorInput::new(message);
    error.details = attempt.details();
    retry(error, retry_in)
}

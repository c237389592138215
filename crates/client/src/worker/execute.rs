//! One attempt: run the handler in its own task, keep its lease alive, enforce its timeout,
//! and turn however it ended into one [`Outcome`].

use std::{any::Any, sync::Arc, time::Duration};

use buzzer_engine::{Outcome, RetryRequest};
use buzzer_types::{ErrorInput, RawValue};
use tokio::{
    sync::{OwnedSemaphorePermit, SemaphorePermit, mpsc::error::SendError},
    task::JoinError,
    time::{Instant, Interval, MissedTickBehavior},
};

use super::{
    JobError, QueueRun, acker,
    context::{Attempt, JobContext},
    error::Kind,
};
use crate::{
    enqueue::ceil_ms,
    trace,
    transport::{Finish, Leased},
};
use tracing::Instrument;

/// How an attempt ended.
enum Ended {
    Returned(Result<Box<RawValue>, JobError>),
    Panicked(String),
    TimedOut(u64),
    /// The worker is shutting down and the grace period is over.
    Stopped,
}

impl Ended {
    fn joined(joined: Result<Result<Box<RawValue>, JobError>, JoinError>) -> Ended {
        match joined {
            Ok(returned) => Ended::Returned(returned),
            Err(e) if e.is_panic() => Ended::Panicked(panic_message(e.into_panic())),
            // Only a runtime that is going away cancels the task under us.
            Err(_) => Ended::Stopped,
        }
    }

    /// The one place that decides what a finished attempt asks of the store.
    fn outcome(self) -> Outcome {
        let retry = |message: String, retry_in_ms| {
            Outcome::Retry(RetryRequest {
                error: ErrorInput::new(message),
                retry_in_ms,
            })
        };
        match self {
            // A handler with nothing to say (`()`, `None`) leaves no result: the job reads the
            // same (`"result": null`) and its completion does not write one.
            Ended::Returned(Ok(result)) => Outcome::Completed {
                result: (result.get() != "null").then_some(result),
            },
            Ended::Returned(Err(JobError {
                kind: Kind::Retry,
                message,
            })) => retry(message, None),
            Ended::Returned(Err(JobError {
                kind: Kind::RetryIn(delay),
                message,
            })) => retry(message, Some(ceil_ms(delay))),
            Ended::Returned(Err(JobError {
                kind: Kind::Fatal,
                message,
            })) => Outcome::Dead {
                error: ErrorInput::new(message),
            },
            Ended::Returned(Err(JobError {
                kind: Kind::Cancelled,
                message,
            })) => Outcome::Cancelled {
                error: Some(ErrorInput::new(message)),
            },
            Ended::Panicked(message) => retry(format!("the handler panicked: {message}"), None),
            Ended::TimedOut(ms) => retry(format!("timed out after {ms} ms"), None),
            Ended::Stopped => Outcome::Released,
        }
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast_ref::<&'static str>() {
            Some(message) => (*message).to_owned(),
            None => "(a panic without a message)".to_owned(),
        },
    }
}

/// Runs one fetched job to its outcome, once a slot is free, and hands the outcome to the
/// acker. Holds the job's place in the queue's `held` (`_held`) until then. A job still
/// waiting for its slot when the worker stops is handed back unstarted.
pub(super) async fn execute(run: Arc<QueueRun>, job: Leased, _held: OwnedSemaphorePermit) {
    let shared = &run.shared;
    let Some(lease_token) = job.lease_token else {
        tracing::error!(job = %job.id, "a fetched job came without a lease token; skipped");
        return;
    };
    let id = job.id;
    let trace = trace::job_span(id, &job.queue, job.attempt, job.traceparent.as_deref());
    let ctx = JobContext::new(
        shared.buzzer.clone(),
        Attempt {
            id,
            queue: job.queue,
            attempt: job.attempt,
            lease_token,
            lease_ms: shared.config.lease_ms(),
            metadata: job.metadata,
            traceparent: trace.onward.as_ref().map(ToString::to_string),
        },
    );
    // The lease runs from its fetch, not from the handler's start: a job leased ahead keeps
    // it alive while it waits for its slot, however long the jobs before it take.
    let every = shared.config.heartbeat_every();
    let mut beats = tokio::time::interval_at(Instant::now() + every, every);
    beats.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let Some(_slot) = wait_for_slot(&run, &ctx, &mut beats).await else {
        if ctx.lease_lost() {
            tracing::warn!(job = %id, "the lease was lost while the job waited for a slot; not run");
        } else {
            let finish = Finish {
                id,
                lease_token: ctx.lease_token().to_owned(),
                outcome: Outcome::Released,
            };
            send(&run, finish).await;
        }
        return;
    };
    let timeout = job
        .timeout_ms
        .map(Duration::from_millis)
        .or(shared.config.job_timeout);
    // Its own task: a panic stays in it, and a handler that blocks its thread does not stop
    // the heartbeats.
    let handler = trace::with_context(trace.onward, run.handler.run(ctx.clone(), &job.payload));
    let started = Instant::now();
    let task = tokio::spawn(handler.instrument(trace.span.clone()));
    let ended = supervise(task, &ctx, timeout, &mut beats, &run)
        .instrument(trace.span)
        .await;
    run.pace.record_job(started.elapsed());
    let finish = Finish {
        id,
        lease_token: ctx.lease_token().to_owned(),
        outcome: ended.outcome(),
    };
    send(&run, finish).await;
}

/// A free slot, with the lease kept alive meanwhile; `None` when the worker stops first (or
/// the lease is lost). Stopping comes first: a slot freed by a job that ends in the grace
/// period does not start one that waited.
async fn wait_for_slot<'a>(
    run: &'a QueueRun,
    ctx: &JobContext,
    beats: &mut Interval,
) -> Option<SemaphorePermit<'a>> {
    let acquire = run.slots.acquire();
    tokio::pin!(acquire);
    while !ctx.lease_lost() {
        tokio::select! {
            biased;
            () = run.shared.stop.cancelled() => return None,
            slot = &mut acquire => return slot.ok(),
            _ = beats.tick() => beat(ctx).await,
        }
    }
    None
}

async fn beat(ctx: &JobContext) {
    if let Err(e) = ctx.beat(None).await {
        tracing::warn!(job = %ctx.id(), error = %e, "heartbeat failed");
    }
}

async fn send(run: &QueueRun, finish: Finish) {
    if let Err(SendError(finish)) = run.shared.acks.send(finish).await {
        // The acker has stopped (a result after shutdown): record it here.
        acker::record(&run.shared.buzzer, vec![finish]).await;
    }
}

async fn supervise(
    mut task: tokio::task::JoinHandle<Result<Box<RawValue>, JobError>>,
    ctx: &JobContext,
    timeout: Option<Duration>,
    beats: &mut Interval,
    run: &QueueRun,
) -> Ended {
    let shared = &run.shared;
    let expired = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    loop {
        tokio::select! {
            biased;
            joined = &mut task => return Ended::joined(joined),
            () = &mut expired => {
                task.abort();
                return Ended::TimedOut(timeout.map_or(0, ceil_ms));
            }
            () = shared.hard_stop.cancelled() => {
                task.abort();
                return Ended::Stopped;
            }
            _ = beats.tick(), if !ctx.lease_lost() => beat(ctx).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn every_ending_maps_to_one_outcome() {
        let cases: Vec<(Ended, &str)> = vec![
            (Ended::Returned(Ok(raw("1"))), "completed 1"),
            (Ended::Returned(Ok(raw("null"))), "completed None"),
            (Ended::Returned(Err(JobError::retry("x"))), "retry x None"),
            (
                Ended::Returned(Err(JobError::retry_in("x", Duration::from_millis(1500)))),
                "retry x Some(1500)",
            ),
            (Ended::Returned(Err(JobError::fatal("bad"))), "dead bad"),
            (
                Ended::Returned(Err(JobError::cancelled())),
                "cancelled cancelled",
            ),
            (
                Ended::Panicked("boom".into()),
                "retry the handler panicked: boom None",
            ),
            (Ended::TimedOut(200), "retry timed out after 200 ms None"),
            (Ended::Stopped, "released"),
        ];
        for (ended, want) in cases {
            let got = match ended.outcome() {
                Outcome::Completed { result } => match result {
                    Some(result) => format!("completed {}", result.get()),
                    None => "completed None".to_owned(),
                },
                Outcome::Retry(r) => format!("retry {} {:?}", r.error.message, r.retry_in_ms),
                Outcome::Dead { error } => format!("dead {}", error.message),
                Outcome::Cancelled { error } => {
                    format!("cancelled {}", error.map(|e| e.message).unwrap_or_default())
                }
                Outcome::Released => "released".to_owned(),
            };
            assert_eq!(got, want);
        }
    }

    #[test]
    fn panic_messages_come_out_of_both_payload_kinds() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(
            panic_message(Box::new(String::from("formatted 7"))),
            "formatted 7"
        );
        assert_eq!(panic_message(Box::new(7_u8)), "(a panic without a message)");
    }
}

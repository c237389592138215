//! The client and the worker runtime against both transports: every scenario runs embedded
//! (SQLite), over HTTP (an in-process server on a free port) and, with the `postgres` feature,
//! embedded over PostgreSQL, so they stay one API with one behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod pubsub;
mod read_ahead;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use buzzer::{
    Answer, BreakerConfig, BreakerState, Error, JobContext, JobError, JobId, JobState, Timestamp,
    Worker,
};
use harness::{Echo, Harness, Task, echo, task};
use pubsub::{
    a_subscribed_handler_receives_published_events, schedules_enqueue_typed_jobs,
    webhook_subscriptions_show_their_secret_once,
};
use read_ahead::quick_jobs_are_leased_ahead_and_handed_back_unstarted;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Harness::embedded().await).await;
                }
            )*
        }
        mod remote {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Harness::remote().await).await;
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(h) = super::Harness::postgres().await {
                        super::$name(h).await;
                    }
                }
            )*
        }
    };
}

scenarios!(
    enqueue_options_reach_the_job,
    invalid_requests_name_the_field,
    batches_run_within_the_concurrency_limit,
    quick_jobs_are_leased_ahead_and_handed_back_unstarted,
    handler_results_map_to_states,
    a_panic_is_a_failed_attempt_with_its_message,
    timeouts_stop_the_handler,
    cancellation_reaches_the_running_handler,
    graceful_shutdown_hands_unfinished_jobs_back,
    hybrid_call_answers_now_or_later,
    breaker_opens_and_closes,
    handles_by_id_and_context_facts,
    a_payload_that_does_not_decode_is_dead,
    worker_setup_is_checked,
    a_traced_job_continues_its_trace,
    a_subscribed_handler_receives_published_events,
    webhook_subscriptions_show_their_secret_once,
    schedules_enqueue_typed_jobs,
);

/// Shutdown waits for a fetch in flight: short polls keep the tests quick.
const POLL: Duration = Duration::from_millis(100);

fn tasks_worker(h: &Harness) -> buzzer::WorkerBuilder {
    Worker::builder(&h.buzzer)
        .poll_wait(POLL)
        .register::<Task, _>(task)
        .register::<Echo, _>(echo)
}

fn field_of(e: &Error) -> &str {
    match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

async fn enqueue_options_reach_the_job(h: Harness) {
    let b = &h.buzzer;
    let handle = b
        .enqueue(Task::Ok)
        .priority(7)
        .delay(Duration::from_secs(3600))
        .max_attempts(3)
        .backoff(Duration::from_millis(10), Duration::from_secs(1), 3.0)
        .timeout(Duration::from_millis(1500))
        .idempotency_key("k1")
        .ordering_key("o1")
        .tag("a")
        .tags(["b", "c"])
        .metadata("trace", "t-1")
        .metadata("n", 5)
        .await
        .unwrap();
    let job = handle.status().await.unwrap();
    assert_eq!(job.queue, "tasks");
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(job.priority, 7);
    assert_eq!(job.max_attempts, 3);
    assert_eq!(
        (
            job.backoff.initial_ms,
            job.backoff.max_ms,
            job.backoff.factor
        ),
        (10, 1000, 3.0)
    );
    assert_eq!(job.timeout_ms, Some(1500));
    assert_eq!(job.idempotency_key.as_deref(), Some("k1"));
    assert_eq!(job.ordering_key.as_deref(), Some("o1"));
    assert_eq!(job.tags, ["a", "b", "c"]);
    assert_eq!(job.metadata["trace"], "t-1");
    assert_eq!(job.metadata["n"], 5);
    assert!(job.scheduled_at.as_millisecond() > Timestamp::now().as_millisecond() + 3_500_000);

    let again = b.enqueue(Task::Ok).idempotency_key("k1").await.unwrap();
    assert_eq!(
        again.id(),
        handle.id(),
        "an idempotent repeat returns the job"
    );

    let at = Timestamp::from_millisecond(Timestamp::now().as_millisecond() + 7_200_000).unwrap();
    let other = b
        .enqueue(Echo("x".into()))
        .queue("echo.other")
        .run_at(at)
        .await
        .unwrap();
    let job = other.status().await.unwrap();
    assert_eq!(job.queue, "echo.other");
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(job.scheduled_at.as_millisecond(), at.as_millisecond());

    let batch = b
        .enqueue_batch([Echo("1".into()), Echo("2".into())])
        .priority(-3)
        .tag("batch")
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    for handle in &batch {
        let job = handle.status().await.unwrap();
        assert_eq!(
            (job.priority, job.tags.as_slice()),
            (-3, &["batch".to_owned()][..])
        );
    }
    assert!(
        b.enqueue_batch(Vec::<Echo>::new())
            .await
            .unwrap()
            .is_empty()
    );
    h.stop().await;
}

async fn invalid_requests_name_the_field(h: Harness) {
    let b = &h.buzzer;
    let e = b.enqueue(Task::Ok).priority(101).await.unwrap_err();
    assert_eq!(field_of(&e), "priority");
    let e = b.enqueue(Task::Ok).tag("").await.unwrap_err();
    assert_eq!(field_of(&e), "tags[0]");
    let e = b
        .enqueue_batch([Task::Ok, Task::Ok])
        .max_attempts(0)
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "jobs[0].max_attempts");
    let e = b
        .enqueue(Task::Ok)
        .queue("no/such queue")
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "queue");
    let e = b
        .call(Task::Ok)
        .max_attempts(0)
        .within(Duration::from_millis(10))
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "max_attempts");
    let missing = b
        .handle::<Task>(JobId(1_000_000))
        .status()
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
    let e: Error = "not-an-id".parse::<JobId>().unwrap_err().into();
    assert_eq!(field_of(&e), "id");
    h.stop().await;
}

async fn batches_run_within_the_concurrency_limit(h: Harness) {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let worker = Worker::builder(&h.buzzer)
        .register::<Echo, _>(move |_ctx: JobContext, job: Echo| {
            let (running, most) = (r.clone(), m.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, JobError>(job.0)
            }
        })
        .concurrency::<Echo>(3)
        .poll_wait(POLL)
        .build()
        .unwrap()
        .spawn();
    let handles = h
        .buzzer
        .enqueue_batch((0..30).map(|i| Echo(i.to_string())))
        .await
        .unwrap();
    // Bounded: a wait that starts while its job's batch is being acknowledged must still hear
    // of the completion, not sit out a whole wait chunk.
    for (i, handle) in handles.iter().enumerate() {
        let output = handle.wait_for(Duration::from_secs(10)).await.unwrap();
        assert_eq!(output, Some(i.to_string()), "job {i}");
    }
    assert_eq!(most.load(Ordering::SeqCst), 3, "3 at a time, and no more");
    worker.shutdown().await;
    h.stop().await;
}

async fn handler_results_map_to_states(h: Harness) {
    let worker = tasks_worker(&h).build().unwrap().spawn();
    let b = &h.buzzer;
    let slow = Duration::from_secs(3600);
    let retry = b
        .enqueue(Task::Retry("try later".into()))
        .backoff(slow, slow, 2.0)
        .await
        .unwrap();
    let retry_in = b
        .enqueue(Task::RetryIn("rate limited".into(), 600_000))
        .await
        .unwrap();
    let parse = b
        .enqueue(Task::Parse("x".into()))
        .backoff(slow, slow, 2.0)
        .await
        .unwrap();
    let fatal = b.enqueue(Task::Fatal("bad input".into())).await.unwrap();
    let last = b
        .enqueue(Task::Retry("out of attempts".into()))
        .max_attempts(1)
        .await
        .unwrap();
    let ok = b.enqueue(Task::Ok).await.unwrap();

    let job = h
        .until(retry.id(), "retryable", |j| j.state == JobState::Retryable)
        .await;
    assert_eq!(job.errors[0].message, "try later");
    let job = h
        .until(retry_in.id(), "retryable", |j| {
            j.state == JobState::Retryable
        })
        .await;
    assert_eq!(job.errors[0].message, "rate limited");
    let due_in = job.scheduled_at.as_millisecond() - Timestamp::now().as_millisecond();
    assert!((500_000..=600_000).contains(&due_in), "due in {due_in} ms");
    let job = h
        .until(parse.id(), "retryable", |j| j.state == JobState::Retryable)
        .await;
    assert_eq!(job.errors[0].message, "invalid digit found in string");

    match fatal.wait().await.unwrap_err() {
        Error::JobDead { id, errors } => {
            assert_eq!(id, fatal.id());
            assert_eq!(errors.len(), 1, "fatal: no retry");
            assert_eq!(errors[0].message, "bad input");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(last.wait().await, Err(Error::JobDead { .. })));
    assert_eq!(ok.wait().await.unwrap(), "done on attempt 1");
    worker.shutdown().await;
    h.stop().await;
}

async fn a_panic_is_a_failed_attempt_with_its_message(h: Harness) {
    let worker = tasks_worker(&h).build().unwrap().spawn();
    let handle = h
        .buzzer
        .enqueue(Task::PanicOnce("boom 42".into()))
        .backoff(Duration::from_millis(1), Duration::from_millis(1), 1.0)
        .await
        .unwrap();
    assert_eq!(handle.wait().await.unwrap(), "done on attempt 2");
    let job = handle.status().await.unwrap();
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].message, "the handler panicked: boom 42");
    worker.shutdown().await;
    h.stop().await;
}

async fn timeouts_stop_the_handler(h: Harness) {
    let worker = tasks_worker(&h)
        .job_timeout(Duration::from_millis(150))
        .build()
        .unwrap()
        .spawn();
    let fast = Duration::from_millis(1);
    let own = h
        .buzzer
        .enqueue(Task::SleepOnce(60_000))
        .timeout(Duration::from_millis(100))
        .backoff(fast, fast, 1.0)
        .await
        .unwrap();
    let default = h
        .buzzer
        .enqueue(Task::SleepOnce(60_000))
        .backoff(fast, fast, 1.0)
        .await
        .unwrap();
    let start = Instant::now();
    assert_eq!(own.wait().await.unwrap(), "done on attempt 2");
    assert_eq!(default.wait().await.unwrap(), "done on attempt 2");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let errors = |job: buzzer::JobRecord| job.errors[0].message.clone();
    assert_eq!(
        errors(own.status().await.unwrap()),
        "timed out after 100 ms"
    );
    assert_eq!(
        errors(default.status().await.unwrap()),
        "timed out after 150 ms"
    );
    worker.shutdown().await;
    h.stop().await;
}

async fn cancellation_reaches_the_running_handler(h: Harness) {
    // Heartbeats every 100 ms carry the cancellation.
    let worker = tasks_worker(&h)
        .lease(Duration::from_millis(300))
        .build()
        .unwrap()
        .spawn();
    let handle = h.buzzer.enqueue(Task::WaitCancel).await.unwrap();
    let job = h
        .until(handle.id(), "progress", |j| j.progress.is_some())
        .await;
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.progress.unwrap().get(), r#"{"stage":"waiting"}"#);

    let start = Instant::now();
    let asked = handle.cancel().await.unwrap();
    assert_eq!(
        (asked.state, asked.cancel_requested),
        (JobState::Running, true)
    );
    assert!(matches!(
        handle.wait().await,
        Err(Error::JobCancelled { .. })
    ));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "seen after {:?}",
        start.elapsed()
    );
    assert_eq!(h.job(handle.id()).await.state, JobState::Cancelled);
    assert!(matches!(handle.cancel().await, Err(Error::Conflict(_))));
    worker.shutdown().await;
    h.stop().await;
}

async fn graceful_shutdown_hands_unfinished_jobs_back(h: Harness) {
    let quick = h.buzzer.enqueue(Task::Sleep(150)).await.unwrap();
    let stuck = h.buzzer.enqueue(Task::Stubborn(60_000)).await.unwrap();
    // "running" in the store only means leased: the handlers say when they have started.
    let (started, mut starts) = tokio::sync::mpsc::unbounded_channel();
    let grace = Duration::from_millis(400);
    let worker = Worker::builder(&h.buzzer)
        .register::<Task, _>(move |ctx: JobContext, job: Task| {
            let _ = started.send(ctx.id());
            task(ctx, job)
        })
        .concurrency::<Task>(2)
        .grace(grace)
        .poll_wait(POLL)
        .build()
        .unwrap()
        .spawn();
    for _ in 0..2 {
        starts.recv().await.unwrap();
    }
    let start = Instant::now();
    worker.shutdown().await;
    let took = start.elapsed();
    assert!(
        took >= grace && took < grace + Duration::from_secs(1),
        "shutdown took {took:?}"
    );
    let done = h.job(quick.id()).await;
    assert_eq!(
        done.state,
        JobState::Completed,
        "finished within the grace period"
    );
    let back = h.job(stuck.id()).await;
    assert_eq!(back.state, JobState::Available, "handed back at once");
    assert_eq!(back.attempt, 0, "the attempt does not count");
    assert!(back.errors.is_empty());
    h.stop().await;
}

async fn hybrid_call_answers_now_or_later(h: Harness) {
    let worker = tasks_worker(&h).build().unwrap().spawn();
    let b = &h.buzzer;
    let second = Duration::from_secs(5);
    match b.call(Echo("hi".into())).within(second).await.unwrap() {
        Answer::Now(text) => assert_eq!(text, "hi"),
        Answer::Later(handle) => panic!("a 0 ms job missed 5 s: {handle:?}"),
    }
    let answer = b
        .call(Task::Sleep(300))
        .within(Duration::from_millis(30))
        .await
        .unwrap();
    let Answer::Later(handle) = answer else {
        panic!("a 300 ms job made a 30 ms deadline");
    };
    assert_eq!(handle.wait().await.unwrap(), "slept 300");
    let dead = b
        .call(Task::Fatal("no".into()))
        .within(second)
        .await
        .unwrap_err();
    assert!(
        matches!(&dead, Error::JobDead { errors, .. } if errors[0].message == "no"),
        "{dead:?}"
    );
    let first = b
        .call(Echo("once".into()))
        .idempotency_key("same")
        .within(second)
        .await
        .unwrap();
    assert_eq!(first.now().as_deref(), Some("once"));
    let start = Instant::now();
    let again = b
        .call(Echo("twice".into()))
        .idempotency_key("same")
        .within(second)
        .await
        .unwrap();
    assert_eq!(
        again.now().as_deref(),
        Some("once"),
        "the finished job answers"
    );
    assert!(start.elapsed() < Duration::from_secs(1));

    let slow = b.enqueue(Task::Sleep(300)).await.unwrap();
    assert_eq!(
        slow.wait_for(Duration::from_millis(20)).await.unwrap(),
        None
    );
    assert_eq!(
        slow.wait_for(second).await.unwrap().as_deref(),
        Some("slept 300")
    );
    worker.shutdown().await;
    h.stop().await;
}

async fn breaker_opens_and_closes(h: Harness) {
    let cooldown = Duration::from_millis(300);
    let b = h.buzzer.clone().breaker(BreakerConfig {
        window: 10,
        min_calls: 3,
        threshold: 0.5,
        cooldown,
        enabled: true,
    });
    let worker = tasks_worker(&h).build().unwrap().spawn();
    let quick = Duration::from_millis(20);
    let later = |a: Answer<Task>| a.later().is_some();
    for _ in 0..3 {
        assert!(later(b.call(Task::Sleep(250)).within(quick).await.unwrap()));
    }
    assert_eq!(b.breaker_state("tasks"), BreakerState::Open);
    assert_eq!(b.breaker_state("echo"), BreakerState::Closed, "per queue");

    // Open: answers Later without waiting, though the job would have made it.
    let start = Instant::now();
    let answer = b
        .call(Task::Ok)
        .within(Duration::from_secs(5))
        .await
        .unwrap();
    let Answer::Later(skipped) = answer else {
        panic!("an open breaker waited");
    };
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(
        skipped.wait().await.unwrap(),
        "done on attempt 1",
        "still enqueued"
    );

    tokio::time::sleep(cooldown).await;
    assert_eq!(b.breaker_state("tasks"), BreakerState::HalfOpen);
    // A probe that misses opens it again…
    assert!(later(b.call(Task::Sleep(250)).within(quick).await.unwrap()));
    assert_eq!(b.breaker_state("tasks"), BreakerState::Open);
    // …one that makes it closes it.
    tokio::time::sleep(cooldown).await;
    let answer = b
        .call(Task::Ok)
        .within(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.now().is_some());
    assert_eq!(b.breaker_state("tasks"), BreakerState::Closed);
    worker.shutdown().await;
    h.stop().await;
}

async fn handles_by_id_and_context_facts(h: Harness) {
    let worker = Worker::builder(&h.buzzer)
        .register_in::<Echo, _>("facts", |ctx: JobContext, job: Echo| async move {
            // The context knows the attempt and metadata, and can enqueue follow-ups.
            let next = ctx
                .buzzer()
                .enqueue(Echo(format!("after {}", job.0)))
                .await?;
            Ok::<_, JobError>(format!(
                "{} {} {} {}",
                ctx.queue(),
                ctx.attempt(),
                ctx.metadata()["k"],
                next.id()
            ))
        })
        .poll_wait(POLL)
        .build()
        .unwrap()
        .spawn();
    let handle = h
        .buzzer
        .enqueue(Echo("x".into()))
        .queue("facts")
        .metadata("k", "v")
        .await
        .unwrap();
    let out = handle.wait().await.unwrap();
    let parts: Vec<&str> = out.split(' ').collect();
    assert_eq!(&parts[..3], ["facts", "1", "\"v\""]);
    let follow_up: JobId = parts[3].parse().unwrap();
    let same = h.buzzer.handle::<Echo>(follow_up);
    let job = same.status().await.unwrap();
    assert_eq!(
        (job.queue.as_str(), job.payload.get()),
        ("echo", r#""after x""#)
    );
    let by_id = h
        .buzzer
        .handle::<Echo>(handle.id().to_string().parse().unwrap());
    assert_eq!(by_id.wait().await.unwrap(), out);
    worker.shutdown().await;
    h.stop().await;
}

/// A job enqueued with a `traceparent` hands the worker its trace: the handler sees the same
/// trace id with a span of its own as the parent, and the jobs it enqueues carry that on.
async fn a_traced_job_continues_its_trace(h: Harness) {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let producer = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let worker = Worker::builder(&h.buzzer)
        .register_in::<Echo, _>("traced", |ctx: JobContext, _job: Echo| async move {
            let next = ctx.buzzer().enqueue(Echo("next".into())).await?;
            let onward = ctx.traceparent().unwrap_or("none").to_owned();
            Ok::<_, JobError>(format!("{onward} {}", next.id()))
        })
        .poll_wait(POLL)
        .build()
        .unwrap()
        .spawn();
    let handle = h
        .buzzer
        .enqueue(Echo("x".into()))
        .queue("traced")
        .traceparent(&producer)
        .await
        .unwrap();
    assert_eq!(
        handle.status().await.unwrap().traceparent,
        Some(producer.clone())
    );
    let out = handle.wait().await.unwrap();
    let (onward, next) = out.split_once(' ').unwrap();
    let parts: Vec<&str> = onward.split('-').collect();
    assert_eq!(parts.len(), 4, "{onward}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE, "01"),
        "{onward}"
    );
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "the worker's span is the new parent"
    );
    let next = h.buzzer.handle::<Echo>(next.parse().unwrap());
    let follow_up = next.status().await.unwrap();
    assert_eq!(
        follow_up.traceparent.as_deref(),
        Some(onward),
        "carried onward"
    );

    // Outside a handler nothing is inherited, and a bad value is refused naming the field.
    let plain = h
        .buzzer
        .enqueue(Echo("y".into()))
        .queue("plain")
        .await
        .unwrap();
    assert_eq!(plain.status().await.unwrap().traceparent, None);
    let e = h
        .buzzer
        .enqueue(Echo("z".into()))
        .traceparent("00-nope")
        .await
        .unwrap_err();
    assert_eq!(field_of(&e), "traceparent");
    worker.shutdown().await;
    h.stop().await;
}

async fn a_payload_that_does_not_decode_is_dead(h: Harness) {
    let worker = tasks_worker(&h).build().unwrap().spawn();
    let wrong = h
        .buzzer
        .enqueue(Echo("not a task".into()))
        .queue("tasks")
        .await
        .unwrap();
    match wrong.wait().await.unwrap_err() {
        Error::JobDead { errors, .. } => {
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0].message.starts_with("the payload is not a"),
                "{}",
                errors[0].message
            );
        }
        other => panic!("{other:?}"),
    }
    worker.shutdown().await;
    h.stop().await;
}

async fn worker_setup_is_checked(h: Harness) {
    let b = &h.buzzer;
    let e = Worker::builder(b).build().unwrap_err();
    assert_eq!(field_of(&e), "handlers");
    let e = Worker::builder(b)
        .register::<Echo, _>(echo)
        .register_in::<Task, _>("echo", task)
        .build()
        .unwrap_err();
    assert_eq!(field_of(&e), "queue");
    assert!(e.to_string().contains("one job type"), "{e}");
    let e = Worker::builder(b)
        .register::<Echo, _>(echo)
        .queue_concurrency("other", 2)
        .build()
        .unwrap_err();
    assert_eq!(field_of(&e), "concurrency");
    for jobs in [0, 100_001] {
        let e = Worker::builder(b)
            .register::<Echo, _>(echo)
            .concurrency::<Echo>(jobs)
            .build()
            .unwrap_err();
        assert_eq!(field_of(&e), "concurrency");
        assert!(e.to_string().contains("between 1 and 100000"), "{e}");
    }
    let e = Worker::builder(b)
        .register::<Echo, _>(echo)
        .lease(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(field_of(&e), "lease");
    h.stop().await;
}

//! A worker draining quick jobs leases beyond its slots; the jobs leased ahead wait for a
//! slot with their leases kept alive, and go back unstarted when the worker stops.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use buzzer::{JobContext, JobHandle, JobState, Worker, WorkerHandle};

use crate::harness::{Harness, PATIENCE, Task, task};

const SLOTS: usize = 2;
/// Slow jobs take two thirds of it, so the ones leased ahead of them (several per slot)
/// wait longer than the lease for their slot: twelve of them on two slots, up to 2 s.
const LEASE: Duration = Duration::from_millis(600);
const SLOW_MS: u64 = 400;

pub async fn quick_jobs_are_leased_ahead_and_handed_back_unstarted(h: Harness) {
    // A worker of its own per part: what it learnt of the jobs' time does not carry over.
    let most = Arc::new(AtomicUsize::new(0));
    let (worker, slow) = lease_ahead(&h, &most, 12).await;
    for job in &slow {
        let done = h
            .until(job.id(), "completed", |j| j.state == JobState::Completed)
            .await;
        assert_eq!(
            done.attempt, 1,
            "job {} kept its lease while it waited for a slot",
            done.id
        );
    }
    worker.shutdown().await;

    let (worker, slow) = lease_ahead(&h, &most, 20).await;
    let start = Instant::now();
    worker.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the slow jobs running finish within the grace period; the waiting ones do not wait"
    );
    let (mut completed, mut back) = (0, 0);
    for job in &slow {
        let job = h.job(job.id()).await;
        match job.state {
            JobState::Completed => completed += 1,
            JobState::Available => {
                assert_eq!(
                    job.attempt, 0,
                    "a job handed back unstarted keeps its attempt"
                );
                assert!(job.errors.is_empty(), "{:?}", job.errors);
                back += 1;
            }
            other => panic!("job {} left {other:?}", job.id),
        }
    }
    assert!(
        back > 0,
        "the jobs leased ahead went back ({completed} completed)"
    );
    assert_eq!(
        most.load(Ordering::SeqCst),
        SLOTS,
        "never more than the slots"
    );
    h.stop().await;
}

/// Starts a worker on quick jobs followed by `slow` slow ones, and returns once the store
/// shows more of the slow ones leased than the worker has slots.
async fn lease_ahead(
    h: &Harness,
    most: &Arc<AtomicUsize>,
    slow: usize,
) -> (WorkerHandle, Vec<JobHandle<Task>>) {
    let b = &h.buzzer;
    // Quick jobs first, so the worker sees a backlog of jobs that take no time (not even a
    // timer's tick, which would be as long as a fetch in-process); the slow ones
    // behind them then fill its slots, and what it leased ahead of them has to wait.
    b.enqueue_batch((0..40).map(|_| Task::Ok)).await.unwrap();
    let slow = b
        .enqueue_batch((0..slow).map(|_| Task::Sleep(SLOW_MS)))
        .await
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let m = most.clone();
    let worker = Worker::builder(b)
        .register::<Task, _>(move |ctx: JobContext, job: Task| {
            let (running, most) = (running.clone(), m.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let out = task(ctx, job).await;
                running.fetch_sub(1, Ordering::SeqCst);
                out
            }
        })
        .concurrency::<Task>(SLOTS)
        .lease(LEASE)
        .grace(Duration::from_secs(2))
        .poll_wait(Duration::from_millis(100))
        .build()
        .unwrap()
        .spawn();
    // Looked for from the start: under load, waiting for the quick jobs first could miss
    // the second or so in which jobs wait ahead.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut leased = 0;
        for job in &slow {
            if h.job(job.id()).await.state == JobState::Running {
                leased += 1;
            }
        }
        if leased > SLOTS {
            return (worker, slow);
        }
        assert!(
            Instant::now() < deadline,
            "only {leased} leased with {SLOTS} slots"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

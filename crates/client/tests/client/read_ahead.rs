//! A worker draining quick jobs leases beyond its slots; the jobs leased ahead wait for a
//! slot, and go back unstarted when the worker stops.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use buzzer::{JobContext, JobState, Worker};

use crate::harness::{Harness, PATIENCE, Task, task};

const SLOTS: usize = 2;

pub async fn quick_jobs_are_leased_ahead_and_handed_back_unstarted(h: Harness) {
    let b = &h.buzzer;
    // Quick jobs first, so the worker sees a backlog of jobs that take no time; the slow ones
    // behind them then fill its slots, and what it leased ahead of them has to wait.
    let quick = b
        .enqueue_batch((0..40).map(|_| Task::Sleep(0)))
        .await
        .unwrap();
    let slow = b
        .enqueue_batch((0..20).map(|_| Task::Sleep(400)))
        .await
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let worker = Worker::builder(b)
        .register::<Task, _>(move |ctx: JobContext, job: Task| {
            let (running, most) = (r.clone(), m.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let out = task(ctx, job).await;
                running.fetch_sub(1, Ordering::SeqCst);
                out
            }
        })
        .concurrency::<Task>(SLOTS)
        .grace(Duration::from_secs(2))
        .poll_wait(Duration::from_millis(100))
        .build()
        .unwrap()
        .spawn();
    for job in &quick {
        h.until(job.id(), "completed", |j| j.state == JobState::Completed)
            .await;
    }
    // While the first slow jobs run, the store shows more of them leased than there are slots.
    let deadline = Instant::now() + PATIENCE;
    let leased = loop {
        let mut leased = 0;
        for job in &slow {
            if h.job(job.id()).await.state == JobState::Running {
                leased += 1;
            }
        }
        if leased > SLOTS || Instant::now() > deadline {
            break leased;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(leased > SLOTS, "only {leased} leased with {SLOTS} slots");
    let start = Instant::now();
    worker.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the slow jobs running finish within the grace period; the waiting ones do not wait"
    );
    assert_eq!(
        most.load(Ordering::SeqCst),
        SLOTS,
        "never more than the slots"
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
    h.stop().await;
}

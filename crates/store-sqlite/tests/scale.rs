//! Fetch stays fast however many jobs wait for a later time. Ignored by default (it writes
//! a million rows); run it with
//! `cargo test --release -p buzzer-store-sqlite --test scale -- --ignored --nocapture`.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

mod common;

use std::time::{Duration, Instant};

use buzzer_store::{RunAt, Store};
use common::{fetch, job, store};

const SCHEDULED: usize = 1_000_000;
const BATCH: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a million rows; run explicitly"]
async fn fetch_with_a_million_scheduled_jobs() {
    let (_dir, s) = store();
    let started = Instant::now();
    for _ in 0..SCHEDULED / BATCH {
        let batch = (0..BATCH)
            .map(|_| {
                let mut j = job("q");
                j.run_at = RunAt::Delay { ms: 3_600_000 };
                j
            })
            .collect();
        s.job_insert_many(batch).await.unwrap();
    }
    let insert = started.elapsed();
    println!(
        "inserted {SCHEDULED} scheduled jobs in {insert:?} ({:.0} jobs/s)",
        SCHEDULED as f64 / insert.as_secs_f64()
    );

    let mut fetches = Vec::new();
    for _ in 0..200 {
        s.job_insert_many(vec![job("q")]).await.unwrap();
        let t = Instant::now();
        let got = s.job_fetch(fetch(&["q"], 1)).await.unwrap();
        fetches.push(t.elapsed());
        assert_eq!(got.len(), 1);
    }
    let t = Instant::now();
    assert!(s.job_fetch(fetch(&["q"], 1)).await.unwrap().is_empty());
    let empty = t.elapsed();
    let t = Instant::now();
    assert!(s.job_promote_due(1_000).await.unwrap().is_empty());
    let promote = t.elapsed();
    let t = Instant::now();
    assert!(s.job_next_due_at().await.unwrap().is_some());
    let next_due = t.elapsed();
    let t = Instant::now();
    let q = s.queue_get("q").await.unwrap().unwrap();
    let counts = t.elapsed();
    assert_eq!(q.counts.scheduled, SCHEDULED as u64);

    fetches.sort();
    let p50 = fetches[fetches.len() / 2];
    let p99 = fetches[fetches.len() * 99 / 100];
    println!("fetch of 1 available job (incl. its commit): p50 {p50:?}, p99 {p99:?}");
    println!("fetch finding nothing: {empty:?}; promote_due with none due: {promote:?}");
    println!("next_due_at: {next_due:?}; queue_get (counts over 1M rows): {counts:?}");
    println!("{:?}", s.stats());
    let path = s.path().to_owned();
    s.close().await.unwrap();
    let t = Instant::now();
    let s = buzzer_store_sqlite::SqliteStore::open(&path, Default::default()).unwrap();
    println!("reopen with quick_check: {:?}", t.elapsed());
    drop(s);
    // Generous: a scan of the scheduled rows would take hundreds of ms.
    assert!(p50 < Duration::from_millis(50), "{p50:?}");
}

/// W1's shape straight on the store: 100,000 jobs enqueued in batches, then fetched and
/// completed 100 at a time by a few concurrent workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput figures; run explicitly"]
async fn drain_throughput() {
    use std::sync::Arc;

    use buzzer_store::{JobFinish, Transition};

    const JOBS: usize = 100_000;
    let (_dir, s) = store();
    let s = Arc::new(s);
    let started = Instant::now();
    for _ in 0..JOBS / BATCH {
        s.job_insert_many((0..BATCH).map(|_| job("q")).collect())
            .await
            .unwrap();
    }
    let enqueue = started.elapsed();
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let mut done = 0;
                loop {
                    let jobs = s.job_fetch(fetch(&["q"], 100)).await.unwrap();
                    if jobs.is_empty() {
                        return done;
                    }
                    done += jobs.len();
                    let finishes = jobs
                        .into_iter()
                        .map(|j| JobFinish {
                            id: j.id,
                            lease_token: j.lease_token.unwrap(),
                            transition: Transition::Complete { result: None },
                            require_lease_expired: false,
                        })
                        .collect();
                    for r in s.job_finish_many(finishes).await.unwrap() {
                        r.unwrap();
                    }
                }
            })
        })
        .collect();
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap();
    }
    let drain = started.elapsed();
    assert_eq!(done, JOBS);
    println!(
        "enqueue {:.0} jobs/s, fetch+complete {:.0} jobs/s; {:?}",
        JOBS as f64 / enqueue.as_secs_f64(),
        JOBS as f64 / drain.as_secs_f64(),
        s.stats()
    );
}

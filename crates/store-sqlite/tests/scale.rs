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

//! A fixed store-level run, for counting the writer thread's instructions per job:
//! N jobs inserted in batches of 1,000, then fetched and completed in batches of 256, one
//! command at a time (so every run forms the same groups).
//!
//! ```sh
//! cargo build --release -p buzzer-store-sqlite --example cycle
//! valgrind --tool=callgrind --separate-threads=yes target/release/examples/cycle 20000
//! ```
//!
//! Each thread gets its own `callgrind.out.PID-NN`; the writer's is the largest (the sync
//! thread's, spawned just before it, the smallest). Divide its `summary:` line by N.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: any failure is fatal

use std::time::Instant;

use buzzer_store::{JobFetch, JobFinish, Store, Transition};
use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
use buzzer_types::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let jobs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("the first argument is the number of jobs"))
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("cycle.db"), SqliteOptions::default()).unwrap();
    let payload = format!(r#"{{"n": 1, "pad": "{}"}}"#, "x".repeat(64));

    let started = Instant::now();
    for _ in 0..jobs.div_ceil(1000) {
        let batch = (0..1000)
            .map(|_| {
                let payload = RawValue::from_string(payload.clone()).unwrap();
                buzzer_store_tests::job_insert("cycle", payload)
            })
            .collect();
        store.job_insert_many(batch).await.unwrap();
    }
    let inserted = started.elapsed();

    let started = Instant::now();
    let mut done = 0;
    loop {
        let leased = store
            .job_fetch(JobFetch {
                queues: vec!["cycle".into()],
                worker_id: "cycle".into(),
                max_jobs: 256,
                lease_ms: 60_000,
            })
            .await
            .unwrap();
        if leased.is_empty() {
            break;
        }
        let finishes = leased
            .iter()
            .map(|job| JobFinish {
                id: job.id,
                lease_token: job.lease_token.clone().unwrap(),
                transition: Transition::Complete { result: None },
                require_lease_expired: false,
            })
            .collect();
        for finished in store.job_finish_many_brief(finishes).await.unwrap() {
            finished.unwrap();
        }
        done += leased.len();
    }
    let cycled = started.elapsed();
    println!(
        "{jobs} inserted in {inserted:.2?}, {done} fetched and completed in {cycled:.2?}; {:?}",
        store.stats()
    );
}

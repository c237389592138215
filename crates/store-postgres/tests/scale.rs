//! Fetch does not slow down as finished jobs pile up before the pruner removes them. Ignored
//! by default (it writes 200,000 jobs through the store); run it with
//! `cargo test --release -p buzzer-store-postgres --test scale -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use buzzer_store::{JobFinish, Store, Transition};
use buzzer_store_postgres::{PgStore, tokio_postgres::Client};
use common::Schema;

const COMPLETED: usize = 200_000;
const BATCH: usize = 5_000;
const SAMPLES: usize = 500;

/// Enqueue one job, time the fetch that leases it, complete it: the steady state of a queue
/// that keeps up.
async fn fetch_latency(s: &PgStore) -> (Duration, Duration) {
    let mut took = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        s.job_insert_many(vec![common::job("q")]).await.unwrap();
        let t = Instant::now();
        let jobs = s.job_fetch(common::fetch(&["q"], 1)).await.unwrap();
        took.push(t.elapsed());
        assert_eq!(jobs.len(), 1);
        complete(s, &jobs).await;
    }
    took.sort();
    (took[SAMPLES / 2], took[SAMPLES * 99 / 100])
}

async fn complete(s: &PgStore, jobs: &[buzzer_types::Job]) {
    let finishes = jobs
        .iter()
        .map(|j| JobFinish {
            id: j.id,
            lease_token: j.lease_token.clone().unwrap(),
            transition: Transition::Complete { result: None },
            require_lease_expired: false,
        })
        .collect();
    for r in s.job_finish_many(finishes).await.unwrap() {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes 200,000 jobs; run explicitly"]
async fn fetch_latency_with_0_and_200k_completed_jobs() {
    require_postgres!();
    let schema = Schema::create().await;
    let s = schema.store().await;
    let (p50_empty, p99_empty) = fetch_latency(&s).await;
    println!("fetch with 0 completed jobs: p50 {p50_empty:?}, p99 {p99_empty:?}");

    let started = Instant::now();
    for _ in 0..COMPLETED / BATCH {
        s.job_insert_many((0..BATCH).map(|_| common::job("q")).collect())
            .await
            .unwrap();
        for _ in 0..BATCH / 1_000 {
            let jobs = s.job_fetch(common::fetch(&["q"], 1_000)).await.unwrap();
            complete(&s, &jobs).await;
        }
    }
    let piled = started.elapsed();
    let counts = s.queue_get("q").await.unwrap().unwrap().counts;
    assert!(counts.completed >= COMPLETED as u64);
    println!(
        "enqueued, leased and completed {COMPLETED} jobs in {piled:?} ({:.0} jobs/s end to end)",
        COMPLETED as f64 / piled.as_secs_f64()
    );

    let client = common::connect(&schema.url).await;
    client
        .batch_execute(&format!("SET search_path = {}", schema.name))
        .await
        .unwrap();
    table_stats(&client, "after the pile-up").await;
    fetch_plan(&s, &client).await;
    let (p50_dirty, p99_dirty) = fetch_latency(&s).await;
    println!(
        "fetch with {} completed jobs, before any vacuum: p50 {p50_dirty:?}, p99 {p99_dirty:?}",
        counts.completed
    );

    // What autovacuum does once the table crosses its threshold (1% dead rows with this
    // table's settings): dead index entries of jobs that left `available` are removed.
    let t = Instant::now();
    client.batch_execute("VACUUM buzzer_jobs").await.unwrap();
    println!("VACUUM buzzer_jobs took {:?}", t.elapsed());
    table_stats(&client, "after VACUUM").await;
    fetch_plan(&s, &client).await;
    let (p50_full, p99_full) = fetch_latency(&s).await;
    println!(
        "fetch with {} completed jobs, vacuumed: p50 {p50_full:?}, p99 {p99_full:?}",
        counts.completed
    );

    // Generous against noise on a shared machine; a walk over the finished jobs would be
    // orders of magnitude slower.
    assert!(
        p50_full < p50_empty * 3 + Duration::from_millis(1),
        "fetch slowed from {p50_empty:?} to {p50_full:?} with {COMPLETED} completed jobs"
    );
}

async fn table_stats(client: &Client, when: &str) {
    let stats = client
        .query_one(
            "SELECT n_live_tup, n_dead_tup, autovacuum_count, \
             pg_size_pretty(pg_relation_size('buzzer_jobs')), \
             pg_size_pretty(pg_relation_size('buzzer_jobs_fetch')), current_setting('autovacuum') \
             FROM pg_stat_user_tables WHERE relid = 'buzzer_jobs'::regclass",
            &[],
        )
        .await
        .unwrap();
    println!(
        "buzzer_jobs {when}: {} live, {} dead rows, {} autovacuums (autovacuum = {}), heap {}, \
         fetch index {}",
        stats.get::<_, i64>(0),
        stats.get::<_, i64>(1),
        stats.get::<_, i64>(2),
        stats.get::<_, String>(5),
        stats.get::<_, String>(3),
        stats.get::<_, String>(4),
    );
}

/// The fetch's index walk for one available job, with the buffers it touched.
async fn fetch_plan(s: &PgStore, client: &Client) {
    s.job_insert_many(vec![common::job("q")]).await.unwrap();
    let plan = client
        .query(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT f.id FROM buzzer_jobs f \
             WHERE f.queue = 'q' AND f.state = 'available' AND NOT f.blocked \
             ORDER BY f.priority DESC, f.id LIMIT 1 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await
        .unwrap();
    for row in plan {
        println!("  {}", row.get::<_, String>(0));
    }
    let jobs = s.job_fetch(common::fetch(&["q"], 1)).await.unwrap();
    complete(s, &jobs).await;
}

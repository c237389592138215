//! The store's hot paths, one commit (fsync) per call as in production:
//! `cargo bench -p buzzer-store-sqlite --bench hot_paths`.
//!
//! Per-job figures come from the batch forms (`Throughput::Elements`); the single forms show
//! the cost of one durable round trip.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

use std::time::{Duration, Instant};

use buzzer_store::{JobFetch, JobFinish, JobInsert, RunAt, Store, Transition};
use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
use buzzer_types::{Backoff, RawValue};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn job(i: usize) -> JobInsert {
    let payload = format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(64));
    JobInsert {
        queue: "bench".into(),
        payload: RawValue::from_string(payload).unwrap(),
        priority: 0,
        run_at: RunAt::Now,
        max_attempts: 20,
        backoff: Backoff::default(),
        timeout_ms: None,
        idempotency_key: None,
        ordering_key: None,
        tags: Vec::new(),
        metadata: Default::default(),
        traceparent: None,
    }
}

fn fetch(max_jobs: u32) -> JobFetch {
    JobFetch {
        queues: vec!["bench".into()],
        worker_id: "bench".into(),
        max_jobs,
        lease_ms: 60_000,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db"), SqliteOptions::default()).unwrap();
    Fixture { _dir: dir, store }
}

async fn fill(store: &SqliteStore, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        store
            .job_insert_many(chunk.iter().map(|&i| job(i)).collect())
            .await
            .unwrap();
    }
}

fn insert(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("insert");
    for batch in [1usize, 100, 1000] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            let f = fixture();
            b.to_async(rt).iter(|| async {
                f.store
                    .job_insert_many((0..batch).map(job).collect())
                    .await
                    .unwrap()
            });
        });
    }
    group.finish();
}

/// Fetch a batch, then complete it: the worker's whole cycle for `batch` jobs.
fn fetch_complete(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("fetch_complete");
    for batch in [1u32, 100, 1000] {
        group.throughput(Throughput::Elements(u64::from(batch)));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let f = fixture();
                rt.block_on(async {
                    fill(&f.store, iters as usize * batch as usize).await;
                    let start = Instant::now();
                    for _ in 0..iters {
                        let jobs = f.store.job_fetch(fetch(batch)).await.unwrap();
                        let finishes = jobs
                            .into_iter()
                            .map(|j| JobFinish {
                                id: j.id,
                                lease_token: j.lease_token.unwrap(),
                                transition: Transition::Complete { result: None },
                                require_lease_expired: false,
                            })
                            .collect();
                        f.store.job_finish_many(finishes).await.unwrap();
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// The same cycle with 100,000 jobs waiting behind the ones fetched.
fn fetch_complete_deep(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("fetch_complete_deep");
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_of_100k", |b| {
        let f = fixture();
        rt.block_on(fill(&f.store, 100_000));
        b.iter_custom(|iters| {
            rt.block_on(async {
                fill(&f.store, iters as usize * 100).await;
                let start = Instant::now();
                for _ in 0..iters {
                    let jobs = f.store.job_fetch(fetch(100)).await.unwrap();
                    let finishes = jobs
                        .into_iter()
                        .map(|j| JobFinish {
                            id: j.id,
                            lease_token: j.lease_token.unwrap(),
                            transition: Transition::Complete { result: None },
                            require_lease_expired: false,
                        })
                        .collect();
                    f.store.job_finish_many(finishes).await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    insert(c, &rt);
    fetch_complete(c, &rt);
    fetch_complete_deep(c, &rt);
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(hot_paths);

//! The stores' hot paths under criterion, written once and run by every store's
//! `benches/hot_paths.rs` over its [`StoreFactory`]: insert (single and batches), the worker's
//! fetch-then-complete cycle (single and batches), and that cycle with 100,000 jobs waiting.
//! Every call is one commit, durable as in production.
//!
//! Per-job figures come from the batch forms (`Throughput::Elements`); the single forms show
//! the cost of one durable round trip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use buzzer_store::{JobFetch, JobFinish, JobInsert, Store, Transition};
use buzzer_types::RawValue;
use criterion::{BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;

use crate::{StoreFactory, job_insert};

/// W1's payload: `{"n": i, "pad": "<64 x>"}`.
fn job(i: usize) -> JobInsert {
    let payload = format!(r#"{{"n":{i},"pad":"{}"}}"#, "x".repeat(64));
    job_insert("bench", RawValue::from_string(payload).unwrap())
}

fn fetch(max_jobs: u32) -> JobFetch {
    JobFetch {
        queues: vec!["bench".into()],
        worker_id: "bench".into(),
        max_jobs,
        lease_ms: 60_000,
    }
}

/// A store over a database of its own; the database goes when this is dropped.
struct Fixture<F: StoreFactory> {
    store: Arc<dyn Store>,
    _db: F::Database,
}

fn fixture<F: StoreFactory>(rt: &Runtime, factory: &F) -> Fixture<F> {
    rt.block_on(async {
        let db = factory.create().await;
        let store = factory.open(&db).await;
        Fixture { store, _db: db }
    })
}

async fn fill(store: &dyn Store, n: usize) {
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(10_000) {
        store
            .job_insert_many(chunk.iter().map(|&i| job(i)).collect())
            .await
            .unwrap();
    }
}

/// One fetch of up to `batch` jobs, then one commit completing them all.
async fn cycle(store: &dyn Store, batch: u32) {
    let jobs = store.job_fetch(fetch(batch)).await.unwrap();
    let finishes = jobs
        .into_iter()
        .map(|j| JobFinish {
            id: j.id,
            lease_token: j.lease_token.unwrap(),
            transition: Transition::Complete { result: None },
            require_lease_expired: false,
        })
        .collect();
    store.job_finish_many(finishes).await.unwrap();
}

/// Registers every hot-path benchmark for the stores `factory` makes.
pub fn hot_paths<F: StoreFactory>(c: &mut Criterion, factory: F) {
    let rt = Runtime::new().unwrap();
    insert(c, &rt, &factory);
    fetch_complete(c, &rt, &factory);
    fetch_complete_deep(c, &rt, &factory);
}

/// The settings every store's hot-path bench runs with: short, since each sample is durable
/// commits, not nanoseconds.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

fn insert<F: StoreFactory>(c: &mut Criterion, rt: &Runtime, factory: &F) {
    let mut group = c.benchmark_group("insert");
    for batch in [1usize, 100, 1000] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            let f = fixture(rt, factory);
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
fn fetch_complete<F: StoreFactory>(c: &mut Criterion, rt: &Runtime, factory: &F) {
    let mut group = c.benchmark_group("fetch_complete");
    for batch in [1u32, 100, 1000] {
        group.throughput(Throughput::Elements(u64::from(batch)));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let f = fixture(rt, factory);
                rt.block_on(async {
                    fill(&*f.store, iters as usize * batch as usize).await;
                    let start = Instant::now();
                    for _ in 0..iters {
                        cycle(&*f.store, batch).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// The same cycle with 100,000 jobs waiting behind the ones fetched.
fn fetch_complete_deep<F: StoreFactory>(c: &mut Criterion, rt: &Runtime, factory: &F) {
    let mut group = c.benchmark_group("fetch_complete_deep");
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_of_100k", |b| {
        let f = fixture(rt, factory);
        rt.block_on(fill(&*f.store, 100_000));
        b.iter_custom(|iters| {
            rt.block_on(async {
                fill(&*f.store, iters as usize * 100).await;
                let start = Instant::now();
                for _ in 0..iters {
                    cycle(&*f.store, 100).await;
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

//! The PostgreSQL store's hot paths (the shared set in `buzzer_store_tests::bench`), each
//! benchmark in a fresh schema on the server named by `BUZZER_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), with the server's default `synchronous_commit`:
//! `cargo bench -p buzzer-store-postgres --bench hot_paths`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use buzzer_store::Store;
use buzzer_store_tests::StoreFactory;
use common::Schema;
use criterion::{criterion_group, criterion_main};

struct Postgres;

impl StoreFactory for Postgres {
    type Database = Schema;

    async fn create(&self) -> Schema {
        Schema::create().await
    }

    async fn open(&self, schema: &Schema) -> Arc<dyn Store> {
        Arc::new(schema.store().await)
    }
}

fn benches(c: &mut criterion::Criterion) {
    if !common::available() {
        return;
    }
    buzzer_store_tests::bench::hot_paths(c, Postgres);
}

criterion_group! {
    name = hot_paths;
    config = buzzer_store_tests::bench::criterion();
    targets = benches
}
criterion_main!(hot_paths);

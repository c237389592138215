//! The SQLite store's hot paths (the shared set in `buzzer_store_tests::bench`), on a fresh
//! file per benchmark with `synchronous=FULL`:
//! `cargo bench -p buzzer-store-sqlite --bench hot_paths`.

#![allow(clippy::unwrap_used, missing_debug_implementations)]

use std::sync::Arc;

use buzzer_store::Store;
use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
use buzzer_store_tests::StoreFactory;
use criterion::{criterion_group, criterion_main};

struct Sqlite;

impl StoreFactory for Sqlite {
    type Database = tempfile::TempDir;

    async fn create(&self) -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    async fn open(&self, dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let path = dir.path().join("bench.db");
        Arc::new(SqliteStore::open(path, SqliteOptions::default()).unwrap())
    }
}

fn benches(c: &mut criterion::Criterion) {
    buzzer_store_tests::bench::hot_paths(c, Sqlite);
}

criterion_group! {
    name = hot_paths;
    config = buzzer_store_tests::bench::criterion();
    targets = benches
}
criterion_main!(hot_paths);

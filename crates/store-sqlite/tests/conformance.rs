//! The shared store conformance suite (`buzzer-store-tests`), run against SQLite: each test gets
//! its own database file in a temporary directory, opened with the default options
//! (`synchronous=FULL`), as the server opens it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use buzzer_store::Store;
use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
use buzzer_store_tests::StoreFactory;
use tempfile::TempDir;

struct Sqlite;

impl StoreFactory for Sqlite {
    type Database = TempDir;

    async fn create(&self) -> TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    async fn open(&self, dir: &TempDir) -> Arc<dyn Store> {
        let path = dir.path().join("buzzer.db");
        // Open checks and migrates the file synchronously.
        let store =
            tokio::task::spawn_blocking(move || SqliteStore::open(path, SqliteOptions::default()))
                .await
                .unwrap()
                .expect("open the SQLite store");
        Arc::new(store)
    }
}

buzzer_store_tests::conformance_tests!(Sqlite);

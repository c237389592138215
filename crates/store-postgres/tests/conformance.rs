//! The shared store conformance suite (`buzzer-store-tests`), run against PostgreSQL: each
//! test gets a fresh schema on the server named by `BUZZER_TEST_POSTGRES_URL` (see
//! `common/mod.rs`), connected as the server connects (migrations applied at connect).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use buzzer_store::Store;
use buzzer_store_tests::StoreFactory;
use common::Schema;

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

// The factory expression runs first in every test: without a database (and without
// BUZZER_TEST_POSTGRES_REQUIRED) the test returns right there.
buzzer_store_tests::conformance_tests!({
    if !common::available() {
        return;
    }
    Postgres
});

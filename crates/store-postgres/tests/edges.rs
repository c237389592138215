//! Inputs the API accepts but PostgreSQL's types do not hold as they are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use buzzer_store::{JobInsert, RunAt, Store, StoreError};
use buzzer_store_postgres::PgStore;
use buzzer_types::JobState;
use common::Schema;

/// A NUL character is valid in a JSON string but not in PostgreSQL text or jsonb: refused
/// with the reason (409 at the API), never a server fault, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_postgres_cannot_store_is_refused_with_the_reason() {
    require_postgres!();
    let schema = Schema::create().await;
    let store = schema.store().await;
    let metadata: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"note": "a\u0000b"}"#).unwrap();
    for job in [
        JobInsert {
            tags: vec!["a\0b".into()],
            ..common::job("q")
        },
        JobInsert {
            idempotency_key: Some("k\0".into()),
            ..common::job("q")
        },
        JobInsert {
            metadata,
            ..common::job("q")
        },
    ] {
        match store.job_insert_many(vec![common::job("q"), job]).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains("NUL"), "{m}"),
            other => panic!("expected a conflict naming the NUL character, got {other:?}"),
        }
    }
    assert!(
        store.queue_get("q").await.unwrap().is_none(),
        "nothing was stored"
    );
    // In the payload it is fine: `json` keeps the client's text.
    let ins = store
        .job_insert_many(vec![JobInsert {
            payload: common::raw(r#"{"s": "a\u0000b"}"#),
            ..common::job("q")
        }])
        .await
        .unwrap();
    let got = store.job_get(ins[0].job.id).await.unwrap().unwrap();
    assert_eq!(got.payload.get(), r#"{"s": "a\u0000b"}"#);
}

/// jiff reaches back to year -9999, timestamptz to 4713 BC: a job due before then is due now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_at_before_timestamptz_begins_is_due_now() {
    require_postgres!();
    let schema = Schema::create().await;
    let store = schema.store().await;
    let ins = store
        .job_insert_many(vec![JobInsert {
            run_at: RunAt::At(jiff::Timestamp::MIN),
            ..common::job("q")
        }])
        .await
        .unwrap();
    assert_eq!(ins[0].job.state, JobState::Available);
    assert_eq!(
        store
            .job_fetch(common::fetch(&["q"], 1))
            .await
            .unwrap()
            .len(),
        1
    );
}

/// `checkpoint` runs for a role allowed to; a role that is not hears PostgreSQL's reason, with
/// its SQLSTATE, not the driver's bare "db error".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_runs_or_says_why_not() {
    require_postgres!();
    let schema = Schema::create().await;
    buzzer_store_postgres::checkpoint(&schema.url_with_schema())
        .await
        .unwrap();
    // A role without the right.
    let role = format!("{}_nobody", schema.name);
    let admin = common::connect(&schema.url).await;
    admin
        .batch_execute(&format!("CREATE ROLE {role}"))
        .await
        .unwrap();
    let url = acting_as(&schema.url, &role);
    let outcome = buzzer_store_postgres::checkpoint(&url).await;
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
    let message = outcome.unwrap_err().to_string();
    assert!(
        message.contains("42501") && message.contains("CHECKPOINT"),
        "{message}"
    );
}

/// A role that owns its schema but may not create schemas (the least-privilege set-up an
/// operator would give Buzzer) connects, migrates and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_owns_its_schema_needs_no_right_to_create_schemas() {
    require_postgres!();
    let schema = Schema::create().await;
    let role = format!("{}_owner", schema.name);
    let admin = common::connect(&schema.url).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role}; ALTER SCHEMA {} OWNER TO {role}",
            schema.name
        ))
        .await
        .unwrap();
    let url = acting_as(&schema.url, &role);
    let worked = async {
        let store = PgStore::connect(&url, schema.options()).await?;
        store.job_insert_many(vec![common::job("q")]).await?;
        let fetched = store.job_fetch(common::fetch(&["q"], 1)).await?;
        store.close().await?;
        Ok::<_, StoreError>(fetched.len())
    }
    .await;
    admin
        .batch_execute(&format!(
            "DROP SCHEMA {} CASCADE; DROP ROLE {role}",
            schema.name
        ))
        .await
        .unwrap();
    assert_eq!(worked.unwrap(), 1);
}

/// `url`'s login acting as `role` from the start of each session (whatever the server's
/// authentication, which a new login role might not pass).
fn acting_as(url: &str, role: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20role%3D{role}")
}

//! Transactional enqueue: jobs inserted inside the application's own transaction exist only
//! if it commits, and their notification wakes waiting fetchers only then.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use buzzer_engine::{Engine, EngineConfig};
use buzzer_store::{JobInsert, Store};
use buzzer_store_postgres::{enqueue_in_transaction, tokio_postgres};
use buzzer_types::{FetchRequest, JobState};
use common::Schema;
use tokio::time::Instant;

/// The application's connection: its own, not the store's, and Buzzer's schema on its
/// search_path for the transaction.
async fn app_connection(schema: &Schema) -> tokio_postgres::Client {
    let client = common::connect(&schema.url).await;
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {}.orders (id bigint PRIMARY KEY)",
            schema.name
        ))
        .await
        .unwrap();
    client
}

async fn begin<'a>(
    client: &'a mut tokio_postgres::Client,
    schema: &Schema,
) -> tokio_postgres::Transaction<'a> {
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(&format!("SET LOCAL search_path = {}", schema.name))
        .await
        .unwrap();
    tx
}

fn receipt(order: i64) -> JobInsert {
    JobInsert {
        payload: common::raw(&format!(r#"{{"order": {order}}}"#)),
        idempotency_key: Some(format!("receipt-{order}")),
        ..common::job("receipts")
    }
}

fn fetch_req(wait_ms: u64) -> FetchRequest {
    FetchRequest {
        queues: vec!["receipts".into()],
        worker_id: "w".into(),
        max_jobs: Some(10),
        lease_ms: None,
        wait_ms: Some(wait_ms),
        brief: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_transaction_leaves_no_job() {
    require_postgres!();
    let schema = Schema::create().await;
    let store = schema.store().await;
    let mut app = app_connection(&schema).await;
    let tx = begin(&mut app, &schema).await;
    let inserted = enqueue_in_transaction(&tx, vec![receipt(1)]).await.unwrap();
    assert!(inserted[0].created);
    // Visible inside the transaction…
    let inside: i64 = tx
        .query_one("SELECT count(*) FROM buzzer_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inside, 1);
    tx.rollback().await.unwrap();
    // …and gone with it.
    assert!(store.job_get(inserted[0].job.id).await.unwrap().is_none());
    assert!(
        store
            .job_fetch(common::fetch(&["receipts"], 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.queue_get("receipts").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_wakes_a_waiting_fetch_and_hands_out_its_jobs() {
    require_postgres!();
    let schema = Schema::create().await;
    let store: Arc<dyn Store> = Arc::new(schema.store().await);
    let engine = Engine::new(
        store,
        EngineConfig {
            max_idle: Duration::from_secs(30),
            ..EngineConfig::default()
        },
    );
    let _services = engine.start_services();
    let waiting = engine.clone();
    let waiter = tokio::spawn(async move { waiting.fetch(fetch_req(10_000)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut app = app_connection(&schema).await;
    let tx = begin(&mut app, &schema).await;
    tx.execute("INSERT INTO orders (id) VALUES ($1)", &[&7_i64])
        .await
        .unwrap();
    let inserted = enqueue_in_transaction(&tx, vec![receipt(7), receipt(8)])
        .await
        .unwrap();
    // Not before the commit: the notification is held with the transaction.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "nothing is fetchable before the commit"
    );
    let committed = Instant::now();
    tx.commit().await.unwrap();

    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiting fetch was woken")
        .unwrap()
        .unwrap();
    let took = committed.elapsed();
    let mut ids: Vec<_> = got.iter().map(|j| j.id).collect();
    ids.sort();
    assert_eq!(ids, inserted.iter().map(|i| i.job.id).collect::<Vec<_>>());
    assert!(got.iter().all(|j| j.state == JobState::Running));
    assert!(
        took < Duration::from_millis(500),
        "woken {took:?} after the commit"
    );
    engine.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_enqueue_keeps_idempotency_and_ordering_keys() {
    require_postgres!();
    let schema = Schema::create().await;
    let store = schema.store().await;
    let first = store.job_insert_many(vec![receipt(1)]).await.unwrap();

    let mut app = app_connection(&schema).await;
    let tx = begin(&mut app, &schema).await;
    let keyed = |n: u32| JobInsert {
        ordering_key: Some("customer-1".into()),
        payload: common::raw(&format!(r#"{{"n": {n}}}"#)),
        ..common::job("receipts")
    };
    let inserted = enqueue_in_transaction(&tx, vec![receipt(1), keyed(1), keyed(2)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(!inserted[0].created, "the key is already held");
    assert_eq!(inserted[0].job.id, first[0].job.id);
    assert!(inserted[1].created && inserted[2].created);

    // The idempotent one and the head of the key are fetchable; the second of the key waits.
    let got = store
        .job_fetch(common::fetch(&["receipts"], 10))
        .await
        .unwrap();
    let mut ids: Vec<_> = got.iter().map(|j| j.id).collect();
    ids.sort();
    assert_eq!(ids, vec![first[0].job.id, inserted[1].job.id]);
}

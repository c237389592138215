//! The database going away and coming back, played with a proxy (see `common/proxy.rs`):
//! calls fail with `Unavailable` while it is gone (never a success for work not stored), the
//! store recovers by itself when it is back, and nothing acknowledged is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use buzzer_store::{Change, Store, StoreError};
use buzzer_store_postgres::{PgOptions, PgStore};
use common::{Schema, proxy::Proxy};
use tokio::time::Instant;

fn options(schema: &Schema) -> PgOptions {
    PgOptions {
        acquire_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        listener_check: Duration::from_secs(1),
        ..schema.options()
    }
}

async fn through(proxy: &Proxy, schema: &Schema) -> PgStore {
    PgStore::connect(&proxy.url(&schema.url), options(schema))
        .await
        .unwrap()
}

/// Retries `f` until it succeeds, failing the test after `within`.
async fn eventually<T, F, Fut>(within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("not recovered after {within:?}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_unavailable_while_the_database_is_gone_and_recover_after() {
    require_postgres!();
    let schema = Schema::create().await;
    let proxy = Proxy::start(common::proxy::target(&schema.url)).await;
    let store = through(&proxy, &schema).await;
    let before = store.job_insert_many(vec![common::job("q")]).await.unwrap();
    let mut feed = store.change_feed().unwrap();

    proxy.cut();
    let started = Instant::now();
    for attempt in 0..3 {
        match store.job_insert_many(vec![common::job("q")]).await {
            Err(StoreError::Unavailable(m)) => eprintln!("attempt {attempt}: {m}"),
            other => panic!("an insert while the database is gone: {other:?}"),
        }
    }
    assert!(matches!(
        store.job_fetch(common::fetch(&["q"], 1)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(store.now().await, Err(StoreError::Unavailable(_))));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failing took {:?}: calls must not hang while the database is gone",
        started.elapsed()
    );

    proxy.restore();
    let after = eventually(Duration::from_secs(10), || {
        store.job_insert_many(vec![common::job("q")])
    })
    .await;
    // The listener reconnected by itself and told its waiters to look again.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(feed.recv().await, Ok(Change::Resync)) {}
    })
    .await
    .expect("a Resync after the listener reconnected");
    // And it hears other nodes again.
    let other = schema.store().await;
    let theirs = other.job_insert_many(vec![common::job("q")]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Change::Job { id, .. }) = feed.recv().await
                && id == theirs[0].job.id
            {
                return;
            }
        }
    })
    .await
    .expect("the reconnected listener hears other nodes");

    let counts = other.queue_get("q").await.unwrap().unwrap().counts;
    assert_eq!(
        counts.available, 3,
        "before, after and theirs; none of the failed inserts"
    );
    assert!(other.job_get(before[0].job.id).await.unwrap().is_some());
    assert!(other.job_get(after[0].job.id).await.unwrap().is_some());
}

/// Producers enqueue without pause while the database goes away for a second and comes back:
/// every acknowledged job is stored, the failures are all `Unavailable`, and enqueues succeed
/// again afterwards without any help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_load_loses_no_acknowledged_job() {
    require_postgres!();
    const PRODUCERS: usize = 4;
    let schema = Schema::create().await;
    let proxy = Proxy::start(common::proxy::target(&schema.url)).await;
    let store = Arc::new(through(&proxy, &schema).await);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0usize));
    let stop_at = Instant::now() + Duration::from_secs(4);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (store, acked, failed) = (store.clone(), acked.clone(), failed.clone());
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    match store.job_insert_many(vec![common::job("load")]).await {
                        Ok(ins) => acked.lock().unwrap().push((Instant::now(), ins[0].job.id)),
                        Err(StoreError::Unavailable(_)) => {
                            *failed.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => panic!("only Unavailable may fail an enqueue: {e}"),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let restored = Instant::now();
    proxy.restore();
    for p in producers {
        p.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let failed = *failed.lock().unwrap();
    let after_restore = acked.iter().filter(|(at, _)| *at > restored).count();
    eprintln!(
        "{} acknowledged, {failed} refused while down, {after_restore} after the restore",
        acked.len()
    );
    assert!(failed > 0, "the outage was felt");
    assert!(
        after_restore > 0,
        "enqueues succeed again after the restore"
    );

    let direct = schema.store().await;
    let stored = direct
        .queue_get("load")
        .await
        .unwrap()
        .unwrap()
        .counts
        .available as usize;
    for (_, id) in &acked {
        assert!(
            direct.job_get(*id).await.unwrap().is_some(),
            "acknowledged job {id} was lost"
        );
    }
    // An insert cut off mid-commit may be stored without its answer arriving.
    assert!(
        (acked.len()..=acked.len() + PRODUCERS).contains(&stored),
        "{stored} stored for {} acknowledged",
        acked.len()
    );
}

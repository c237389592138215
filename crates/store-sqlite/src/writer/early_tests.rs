//! Answers at the commit, lazy syncs, and groups that changed nothing.

use std::{io, sync::mpsc as std_mpsc, time::Duration};

use super::sync_tests::{gated, until};
use super::tests::{fixture_with, insert, settle};
use super::*;

/// Inserts `x` with [`Writer::submit_early`], as a hybrid call's enqueue.
pub(super) async fn insert_early(writer: &Writer, x: i64) -> Result<((), Durable), StoreError> {
    writer
        .submit_early(Urgency::WithNext, move |conn, _| {
            conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
            Ok(())
        })
        .await
}

/// A sync that counts and always succeeds.
fn counting() -> (SyncFn, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&count);
    let sync: SyncFn = Box::new(move || {
        seen.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    (sync, count)
}

#[tokio::test]
async fn a_lazy_group_alone_is_synced_once_its_wait_runs_out() {
    let (sync, syncs) = counting();
    let f = fixture_with(Some(sync));
    let ((), mut durable) = insert_early(&f.writer, 1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), durable.wait())
        .await
        .expect("synced without another write coming")
        .unwrap();
    assert_eq!(syncs.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_failed_sync_reaches_an_early_command_through_its_durable() {
    let (sync, started, finish) = gated();
    let f = fixture_with(Some(sync));
    let ((), mut durable) = insert_early(&f.writer, 1).await.unwrap();
    until("the sync", || started.try_recv().is_ok()).await;
    finish.send(Err(io::Error::other("disk gone"))).unwrap();
    let outcome = durable.wait().await;
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(ref m)) if m.contains("disk gone")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_early_command_that_fails_hears_its_error_at_once() {
    let (sync, _syncs) = counting();
    let f = fixture_with(Some(sync));
    let outcome = f
        .writer
        .submit_early(Urgency::Now, |conn, _| {
            conn.execute("INSERT INTO nowhere (x) VALUES (1)", [])?;
            Ok(())
        })
        .await;
    assert!(outcome.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn a_group_that_changed_nothing_waits_for_earlier_syncs_but_has_none_of_its_own() {
    let (sync, started, finish) = gated();
    let f = fixture_with(Some(sync));
    let first = insert(&f.writer, 1);
    until("the first sync", || started.try_recv().is_ok()).await;

    // It reads the first insert, which is not on disk yet: its answer must wait for that.
    let w = Arc::clone(&f.writer);
    let read = tokio::spawn(async move {
        w.submit(
            |conn, _| Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?),
        )
        .await
    });
    settle().await;
    assert!(!read.is_finished());

    finish.send(Ok(())).unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(read.await.unwrap().unwrap(), 1);
    assert!(
        matches!(
            started.recv_timeout(Duration::from_millis(200)),
            Err(std_mpsc::RecvTimeoutError::Timeout)
        ),
        "a group that changed nothing started a sync"
    );
    let stats = f.writer.stats();
    assert_eq!((stats.commits, stats.syncs), (2, 1), "{stats:?}");
}

#[tokio::test]
async fn a_group_that_changed_nothing_does_not_hurry_a_held_back_sync() {
    let (sync, started, finish) = gated();
    let f = fixture_with(Some(sync));
    let first = insert(&f.writer, 1);
    until("the first sync", || started.try_recv().is_ok()).await;
    let ((), mut durable) = insert_early(&f.writer, 2).await.unwrap();
    // An empty fetch, say: its caller is waiting, but there is nothing of its own to sync.
    let w = Arc::clone(&f.writer);
    let read = tokio::spawn(async move { w.submit(|_, _| Ok(())).await });
    settle().await;

    let released = std::time::Instant::now();
    finish.send(Ok(())).unwrap();
    first.await.unwrap().unwrap();
    until("the second sync", || started.try_recv().is_ok()).await;
    assert!(
        released.elapsed() >= sync::LAZY_WAIT,
        "the held-back group was synced at once, for a group that changed nothing"
    );
    finish.send(Ok(())).unwrap();
    durable.wait().await.unwrap();
    read.await.unwrap().unwrap();
}

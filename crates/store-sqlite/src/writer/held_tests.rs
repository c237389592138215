//! A hybrid call's transaction held open for its result.

use std::{
    io,
    time::{Duration, Instant},
};

use super::early_tests::insert_early;
use super::sync_tests::{gated, until};
use super::tests::{committed, execute, fixture_holding, insert, settle};
use super::*;

/// Longer than any test: a held transaction then ends only by what the test sends.
const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_enqueue_is_answered_before_its_commit_and_commits_with_the_next_urgent_write() {
    let (sync, started, finish) = gated();
    let f = fixture_holding(Some(sync), LONG);
    let first = insert(&f.writer, 1);
    until("the first sync", || started.try_recv().is_ok()).await;

    // Answered while its transaction is still open: no other connection sees it yet.
    let ((), mut durable) =
        tokio::time::timeout(Duration::from_secs(10), insert_early(&f.writer, 2))
            .await
            .expect("answered once it ran, not after a commit")
            .unwrap();
    assert_eq!(committed(&f.path), vec![1]);
    let durable = tokio::spawn(async move { durable.wait().await });
    let urgent = insert(&f.writer, 3);
    until("the shared commit", || committed(&f.path) == vec![1, 2, 3]).await;
    settle().await;
    assert!(!durable.is_finished() && !urgent.is_finished());

    finish.send(Ok(())).unwrap();
    first.await.unwrap().unwrap();
    until("the second sync", || started.try_recv().is_ok()).await;
    finish.send(Ok(())).unwrap();
    durable.await.unwrap().unwrap();
    urgent.await.unwrap().unwrap();
    let stats = f.writer.stats();
    assert_eq!((stats.commits, stats.syncs), (2, 2), "{stats:?}");
}

#[tokio::test]
async fn a_held_transaction_commits_by_itself_once_its_wait_runs_out() {
    let hold = Duration::from_millis(200);
    let f = fixture_holding(Some(Box::new(|| Ok(()))), hold);
    let start = Instant::now();
    let ((), mut durable) = insert_early(&f.writer, 1).await.unwrap();
    durable.wait().await.unwrap();
    assert!(start.elapsed() >= hold, "committed before its wait ran out");
    assert_eq!(committed(&f.path), vec![1]);
    assert_eq!(f.writer.stats().commits, 1);
}

#[tokio::test]
async fn a_held_transaction_whose_wait_ran_out_does_not_hurry_the_sync() {
    let (synced_tx, synced) = std::sync::mpsc::channel();
    let sync: SyncFn = Box::new(move || {
        let _ = synced_tx.send(Instant::now());
        Ok(())
    });
    let hold = Duration::from_millis(50);
    let f = fixture_holding(Some(sync), hold);
    let start = Instant::now();
    let ((), mut durable) = insert_early(&f.writer, 1).await.unwrap();
    // An empty fetch joins the held transaction: its caller waits, but it changed nothing, so
    // the commit at the end of the wait is still not urgent and the sync thread holds it back
    // in turn for a result to share its sync.
    let w = Arc::clone(&f.writer);
    let empty = tokio::spawn(async move { w.submit(|_, _| Ok(())).await });
    durable.wait().await.unwrap();
    let synced_at = synced.try_recv().expect("synced before it was answered");
    assert!(
        synced_at - start >= hold + sync::LAZY_WAIT,
        "synced as soon as the wait ran out: {:?}",
        synced_at - start
    );
    empty.await.unwrap().unwrap();
    assert_eq!(f.writer.stats().commits, 1);
}

#[tokio::test]
async fn an_enqueue_whose_caller_waits_for_the_disk_is_not_held() {
    let f = fixture_holding(Some(Box::new(|| Ok(()))), LONG);
    let ((), mut durable) = f
        .writer
        .submit_early(Urgency::Now, |conn, _| {
            conn.execute("INSERT INTO t (x) VALUES (1)", [])?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(committed(&f.path), vec![1]);
    tokio::time::timeout(Duration::from_secs(10), durable.wait())
        .await
        .expect("synced without waiting for another write")
        .unwrap();
}

#[tokio::test]
async fn a_command_that_fails_in_a_held_transaction_rolls_back_only_itself() {
    let f = fixture_holding(Some(Box::new(|| Ok(()))), LONG);
    let ((), mut durable) = insert_early(&f.writer, 1).await.unwrap();
    let failing = execute(&f.writer, "INSERT INTO nowhere (x) VALUES (1)");
    settle().await;
    // It changed nothing, so it does not end the wait; its answer waits for the commit.
    assert!(!failing.is_finished());
    insert(&f.writer, 2).await.unwrap().unwrap();
    assert!(failing.await.unwrap().is_err());
    durable.wait().await.unwrap();
    assert_eq!(committed(&f.path), vec![1, 2]);
    assert_eq!(f.writer.stats().commits, 1);
}

#[tokio::test]
async fn a_failed_commit_reaches_a_held_enqueue_through_its_durable() {
    let f = fixture_holding(Some(Box::new(|| Ok(()))), LONG);
    let ((), mut durable) = insert_early(&f.writer, 1).await.unwrap();
    // The deferred foreign key is checked only at COMMIT, which then fails.
    let orphan = execute(&f.writer, "INSERT INTO child (p) VALUES (42)")
        .await
        .unwrap();
    assert!(
        matches!(orphan, Err(StoreError::Unavailable(_))),
        "{orphan:?}"
    );
    let outcome = durable.wait().await;
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(ref m)) if m.contains("not committed")),
        "{outcome:?}"
    );
    assert!(committed(&f.path).is_empty());
    // The writer goes on with a clean transaction.
    insert(&f.writer, 7).await.unwrap().unwrap();
    assert_eq!(committed(&f.path), vec![7]);
}

#[tokio::test]
async fn a_failed_sync_rolls_back_a_held_transaction_and_fails_it() {
    let (sync, started, finish) = gated();
    let f = fixture_holding(Some(sync), LONG);
    let first = insert(&f.writer, 1);
    until("the first sync", || started.try_recv().is_ok()).await;
    let ((), mut durable) = insert_early(&f.writer, 2).await.unwrap();
    finish.send(Err(io::Error::other("disk gone"))).unwrap();
    assert!(first.await.unwrap().is_err());

    // The next command finds the store broken: it and the held enqueue both fail, and the
    // enqueue never commits.
    let next = insert(&f.writer, 3).await.unwrap();
    assert!(
        matches!(next, Err(StoreError::Unavailable(ref m)) if m.contains("disk gone")),
        "{next:?}"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(10), durable.wait())
        .await
        .expect("the held enqueue is failed with the command that found the store broken");
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(ref m)) if m.contains("disk gone")),
        "{outcome:?}"
    );
    assert_eq!(committed(&f.path), vec![1]);
}

#[tokio::test]
async fn close_commits_a_held_transaction() {
    let f = fixture_holding(Some(Box::new(|| Ok(()))), LONG);
    let ((), mut durable) = insert_early(&f.writer, 1).await.unwrap();
    let thread = f.writer.close().unwrap();
    durable.wait().await.unwrap();
    thread.join().unwrap();
    assert_eq!(committed(&f.path), vec![1]);
}

//! The sync stage: answers wait for the WAL's fsync, the writer does not.

use std::{
    io,
    sync::mpsc as std_mpsc,
    time::{Duration, Instant},
};

use super::tests::{committed, fixture_with, insert, settle};
use super::*;

/// A sync that tells the test it started, then waits for the test to say how it ends.
pub(super) fn gated() -> (
    SyncFn,
    std_mpsc::Receiver<()>,
    std_mpsc::Sender<io::Result<()>>,
) {
    let (started_tx, started) = std_mpsc::channel();
    let (finish, finish_rx) = std_mpsc::channel::<io::Result<()>>();
    let sync: SyncFn = Box::new(move || {
        let _ = started_tx.send(());
        // A test that is done with the gate lets every later sync through.
        finish_rx.recv().unwrap_or(Ok(()))
    });
    (sync, started, finish)
}

pub(super) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn answers_wait_for_the_sync_while_later_groups_commit() {
    let (sync, started, finish) = gated();
    let f = fixture_with(Some(sync));
    let first = insert(&f.writer, 1);
    until("the first sync", || started.try_recv().is_ok()).await;
    // Committed (a fresh connection reads it), but not yet answered: not yet on disk.
    assert_eq!(committed(&f.path), vec![1]);
    settle().await;
    assert!(!first.is_finished());
    // The writer is not held up by the sync: each of these commits in a group of its own.
    let mut later = Vec::new();
    for x in 2..=4 {
        later.push(insert(&f.writer, x));
        until("the next commit", || committed(&f.path).len() == x as usize).await;
    }
    settle().await;
    assert!(later.iter().all(|t| !t.is_finished()));

    finish.send(Ok(())).unwrap();
    first.await.unwrap().unwrap();
    // One sync for the three groups committed while the first one ran.
    until("the second sync", || started.try_recv().is_ok()).await;
    finish.send(Ok(())).unwrap();
    for t in later {
        t.await.unwrap().unwrap();
    }
    let stats = f.writer.stats();
    assert_eq!((stats.commits, stats.syncs), (4, 2), "{stats:?}");
}

#[tokio::test]
async fn a_failed_sync_fails_its_callers_and_every_write_after() {
    let (sync, started, finish) = gated();
    let f = fixture_with(Some(sync));
    let first = insert(&f.writer, 1);
    until("the sync", || started.try_recv().is_ok()).await;
    finish.send(Err(io::Error::other("disk gone"))).unwrap();
    let first = first.await.unwrap();
    assert!(
        matches!(first, Err(StoreError::Unavailable(ref m)) if m.contains("could not be made durable") && m.contains("disk gone")),
        "{first:?}"
    );
    // After a failed fsync the kernel may report the next one clean with the pages lost, so
    // nothing later may be answered as durable: the writer refuses instead of running it.
    let second = insert(&f.writer, 2).await.unwrap();
    assert!(
        matches!(second, Err(StoreError::Unavailable(ref m)) if m.contains("failed sync")),
        "{second:?}"
    );
    assert_eq!(committed(&f.path), vec![1]);
    assert_eq!(f.writer.stats().syncs, 0);
}

#[tokio::test]
async fn close_syncs_and_answers_what_was_committed() {
    let (sync, started, finish) = gated();
    let f = fixture_with(Some(sync));
    let queued: Vec<_> = (0..5).map(|x| insert(&f.writer, x)).collect();
    until("the sync", || started.try_recv().is_ok()).await;
    let thread = f.writer.close().unwrap();
    drop(finish);
    for t in queued {
        t.await.unwrap().unwrap();
    }
    thread.join().unwrap();
    assert_eq!(committed(&f.path).len(), 5);
    assert!(f.writer.stats().syncs >= 1);
}

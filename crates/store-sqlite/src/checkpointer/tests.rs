use std::{
    path::Path,
    time::{Duration, Instant},
};

use super::*;

fn wal_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn
}

/// The database file's own size: what checkpoints have copied into it, the WAL aside.
fn main_file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// 2,000 pages of WAL in one commit: past `CHECKPOINT_PAGES`, short of `BACKSTOP_PAGES`.
const BIG_COMMIT: &str = "CREATE TABLE t (x BLOB); INSERT INTO t VALUES (zeroblob(8000000));";

#[test]
fn the_thread_copies_a_grown_wal_and_the_writer_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let writer = wal_connection(&path);
    let (_checkpointer, mut nudge) = Checkpointer::spawn(wal_connection(&path)).unwrap();
    nudge.install(&writer);
    let before = main_file_len(&path);

    writer.execute_batch(BIG_COMMIT).unwrap();
    assert_eq!(
        main_file_len(&path),
        before,
        "the writer's own automatic checkpoint is off"
    );
    nudge.committed(&writer);
    let deadline = Instant::now() + Duration::from_secs(10);
    while main_file_len(&path) < before + 8_000_000 {
        assert!(
            Instant::now() < deadline,
            "the WAL was not checkpointed into the database file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn without_the_thread_the_writer_checkpoints_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let writer = wal_connection(&path);
    let (checkpointer, mut nudge) = Checkpointer::spawn(wal_connection(&path)).unwrap();
    nudge.install(&writer);
    drop(checkpointer);

    writer.execute_batch(BIG_COMMIT).unwrap();
    nudge.committed(&writer);
    assert!(main_file_len(&path) >= 8_000_000);
}

#[test]
fn after_small_commits_the_writer_checkpoints_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let writer = wal_connection(&path);
    let (_checkpointer, mut nudge) = Checkpointer::spawn(wal_connection(&path)).unwrap();
    nudge.install(&writer);

    writer.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
    nudge.committed(&writer);
    // 1,000 pages and more, a page or two at a time.
    for _ in 0..600 {
        writer
            .execute("INSERT INTO t VALUES (zeroblob(6000))", [])
            .unwrap();
        nudge.committed(&writer);
    }
    assert!(main_file_len(&path) >= 2_000_000);
}

#[test]
fn stopping_does_not_wait_for_a_nudge() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let _writer = wal_connection(&path);
    let (checkpointer, _nudge) = Checkpointer::spawn(wal_connection(&path)).unwrap();
    let started = Instant::now();
    drop(checkpointer);
    assert!(started.elapsed() < Duration::from_secs(1));
}

use std::{
    path::{Path, PathBuf},
    sync::mpsc::Receiver,
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

/// A writer's connection whose checkpoints go to `Nudge`, and the table `t` to fill.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    writer: Connection,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let writer = wal_connection(&path);
        writer.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        Fixture {
            _dir: dir,
            path,
            writer,
        }
    }

    /// Commits `bytes` of blob in one row, and tells `nudge`.
    fn commit(&self, nudge: &mut Nudge, bytes: usize) {
        self.writer
            .execute("INSERT INTO t VALUES (zeroblob(?1))", [bytes])
            .unwrap();
        nudge.committed(&self.writer);
    }

    fn main_file_len(&self) -> u64 {
        main_file_len(&self.path)
    }
}

/// A fixture whose writer has a nudge with a thread that never checkpoints: what it was sent
/// stays in the returned receiver.
fn with_idle_nudge() -> (Fixture, Nudge, Receiver<()>) {
    let f = Fixture::new();
    let (tx, rx) = mpsc::sync_channel(1);
    let nudge = Nudge {
        nudge: tx,
        copied: Arc::new(AtomicI64::new(0)),
        pages: 0,
        nudged_at: 0,
        commits: 0,
    };
    nudge.install(&f.writer);
    (f, nudge, rx)
}

/// Bytes that make one commit of about 2,000 pages: past `CHECKPOINT_PAGES` and, alone,
/// a large commit.
const LARGE: usize = 8_000_000;

#[test]
fn a_large_commit_nudges_the_thread_and_the_writer_does_not_checkpoint() {
    let (f, mut nudge, nudged) = with_idle_nudge();
    let before = f.main_file_len();
    f.commit(&mut nudge, LARGE);
    assert_eq!(nudged.try_recv(), Ok(()), "the thread was nudged");
    assert_eq!(
        f.main_file_len(),
        before,
        "neither SQLite's automatic checkpoint nor the writer copied the WAL"
    );
}

#[test]
fn the_thread_copies_the_wal_when_nudged() {
    let f = Fixture::new();
    let (_checkpointer, mut nudge) = Checkpointer::spawn(wal_connection(&f.path)).unwrap();
    nudge.install(&f.writer);
    let before = f.main_file_len();
    f.commit(&mut nudge, LARGE);
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.main_file_len() < before + LARGE as u64 {
        assert!(
            Instant::now() < deadline,
            "the WAL was not checkpointed into the database file"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    while nudge.copied.load(Ordering::Acquire) < wal_pages() {
        assert!(
            Instant::now() < deadline,
            "the thread did not report what it copied"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn after_small_commits_the_writer_checkpoints_by_itself() {
    let (f, mut nudge, nudged) = with_idle_nudge();
    // 1,000 pages and more, two at a time.
    for _ in 0..600 {
        f.commit(&mut nudge, 6_000);
    }
    assert!(nudged.try_recv().is_err(), "the thread was not nudged");
    assert!(f.main_file_len() >= 2_000_000);
}

/// A connection in a read transaction on `path`: it keeps the WAL from starting over, and a
/// checkpoint from copying what is committed after it began.
fn reading(path: &Path) -> Connection {
    let reader = wal_connection(path);
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    reader
}

/// About 5,000 pages in one commit: past the backstop.
const PAST_BACKSTOP: usize = 20_000_000;

/// The WAL's size in pages after the last commit on this thread.
fn wal_pages() -> i64 {
    WAL_PAGES.with(Cell::get)
}

#[test]
fn at_the_backstop_the_writer_leaves_a_large_rest_to_the_thread_and_copies_a_small_one() {
    let (f, mut nudge, nudged) = with_idle_nudge();
    let before = f.main_file_len();
    f.commit(&mut nudge, PAST_BACKSTOP);
    assert_eq!(nudged.try_recv(), Ok(()), "the thread was nudged");
    assert_eq!(f.main_file_len(), before, "the writer copied nothing");
    // Every commit keeps the thread going while the rest is large.
    f.commit(&mut nudge, 100);
    assert_eq!(nudged.try_recv(), Ok(()), "nudged again");

    // The thread's passes leave 50 pages: the writer copies them at its next commit.
    nudge.copied.store(wal_pages() - 50, Ordering::Release);
    f.commit(&mut nudge, 100);
    assert!(nudged.try_recv().is_err(), "the thread was not nudged");
    assert!(
        f.main_file_len() >= PAST_BACKSTOP as u64,
        "the writer copied"
    );
    assert_eq!(nudge.copied.load(Ordering::Acquire), wal_pages());
    f.commit(&mut nudge, 100);
    assert!(
        wal_pages() < 10,
        "the WAL started over: {} pages",
        wal_pages()
    );
    assert_eq!(nudge.copied.load(Ordering::Acquire), 0);
}

#[test]
fn at_the_backstop_limit_the_writer_copies_however_much_is_left() {
    let (f, mut nudge, nudged) = with_idle_nudge();
    let bytes = usize::try_from(BACKSTOP_LIMIT).unwrap() * 4_096;
    f.commit(&mut nudge, bytes);
    assert!(nudged.try_recv().is_err(), "the thread was not nudged");
    assert!(f.main_file_len() >= bytes as u64);
}

#[test]
fn past_the_backstop_a_wal_held_by_a_reader_is_not_copied_at_every_commit() {
    let (f, mut nudge, nudged) = with_idle_nudge();
    f.commit(&mut nudge, PAST_BACKSTOP);
    // A reader in a read transaction keeps the WAL from starting over.
    let reader = reading(&f.path);
    let copied = checkpoint(&wal_connection(&f.path)).unwrap().unwrap();
    nudge.copied.store(copied, Ordering::Release);
    while nudged.try_recv().is_ok() {}
    f.commit(&mut nudge, 100);
    let copied_at = nudge.nudged_at;
    assert_eq!(copied_at, wal_pages(), "the writer checkpointed");
    assert!(wal_pages() > copied, "the WAL did not start over");

    // Commits the reader keeps in the WAL: no checkpoint on the writer for each, and once
    // they are more than the rest, the thread's passes are asked for again.
    let mut commits = 0;
    while wal_pages() - copied_at <= BACKSTOP_REST {
        f.commit(&mut nudge, 4_000);
        commits += 1;
        assert_eq!(nudge.nudged_at, copied_at, "no checkpoint on the writer");
    }
    assert!(commits > 10, "{commits} commits");
    assert_eq!(nudged.try_recv(), Ok(()), "the thread was nudged");
    reader.execute_batch("COMMIT").unwrap();
}

#[test]
fn at_the_backstop_limit_a_wal_held_by_a_reader_is_copied_at_most_every_rest() {
    let (f, mut nudge, _nudged) = with_idle_nudge();
    let reader = reading(&f.path);
    let bytes = usize::try_from(BACKSTOP_LIMIT).unwrap() * 4_096;
    f.commit(&mut nudge, bytes);
    let checkpointed_at = nudge.nudged_at;
    assert_eq!(checkpointed_at, wal_pages(), "the writer checkpointed");
    let mut commits = 0;
    while wal_pages() - checkpointed_at < BACKSTOP_REST {
        assert_eq!(nudge.nudged_at, checkpointed_at, "not at every commit");
        f.commit(&mut nudge, 4_000);
        commits += 1;
    }
    assert!(commits > 10, "{commits} commits");
    assert_eq!(
        nudge.nudged_at,
        wal_pages(),
        "again after as many pages as the rest"
    );
    reader.execute_batch("COMMIT").unwrap();
}

/// Set once the other connection's checkpoint waits in its busy handler, holding the
/// checkpoint lock.
static WAITING: AtomicBool = AtomicBool::new(false);

fn note_waiting(tries: i32) -> bool {
    WAITING.store(true, Ordering::Release);
    std::thread::sleep(Duration::from_millis(1));
    tries < 10_000
}

#[test]
fn a_checkpoint_that_finds_another_running_says_so() {
    let (f, mut nudge, _nudged) = with_idle_nudge();
    f.commit(&mut nudge, LARGE);
    // A `RESTART` checkpoint copies the WAL, then waits for this reader to move on, holding
    // the checkpoint lock all the while.
    let reader = reading(&f.path);
    let path = f.path.clone();
    let restart = std::thread::spawn(move || {
        let other = wal_connection(&path);
        other.busy_handler(Some(note_waiting)).unwrap();
        let busy: i64 = other
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            busy, 0,
            "the restart went through once the reader had finished"
        );
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !WAITING.load(Ordering::Acquire) {
        assert!(
            Instant::now() < deadline,
            "the other checkpoint never waited"
        );
        std::thread::yield_now();
    }
    assert_eq!(checkpoint(&f.writer).unwrap(), None);
    reader.execute_batch("COMMIT").unwrap();
    restart.join().unwrap();
    assert!(checkpoint(&f.writer).unwrap().is_some());
}

#[test]
fn without_the_thread_the_writer_checkpoints_by_itself() {
    let (f, mut nudge, nudged) = with_idle_nudge();
    drop(nudged);
    f.commit(&mut nudge, LARGE);
    assert!(f.main_file_len() >= LARGE as u64);
}

#[test]
fn small_commits_before_the_wal_starts_over_do_not_make_a_large_one_small() {
    let (f, mut nudge, nudged) = with_idle_nudge();
    f.commit(&mut nudge, LARGE);
    assert_eq!(nudged.try_recv(), Ok(()));
    // Many small commits, short of the next threshold; then the thread's checkpoint copies
    // everything, so the next transaction starts the WAL over.
    for _ in 0..100 {
        f.commit(&mut nudge, 100);
    }
    checkpoint(&wal_connection(&f.path)).unwrap();
    f.commit(&mut nudge, 100);
    // About 1,100 pages in one commit: large, counted from the WAL's new start.
    f.commit(&mut nudge, 4_400_000);
    assert_eq!(nudged.try_recv(), Ok(()), "the thread was nudged");
}

#[test]
fn stopping_does_not_wait_for_a_nudge() {
    let f = Fixture::new();
    let (checkpointer, _nudge) = Checkpointer::spawn(wal_connection(&f.path)).unwrap();
    let started = Instant::now();
    drop(checkpointer);
    assert!(started.elapsed() < Duration::from_secs(1));
}

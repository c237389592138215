use std::{sync::mpsc as std_mpsc, time::Duration};

use super::*;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) path: std::path::PathBuf,
    pub(super) writer: Arc<Writer>,
}

fn fixture() -> Fixture {
    fixture_with(None)
}

pub(super) fn fixture_with(sync: Option<SyncFn>) -> Fixture {
    fixture_holding(sync, held::HOLD)
}

/// A writer over a scratch table `t(x)`, holding a hybrid call's transaction up to `hold`;
/// `foreign_keys` on so a test can make COMMIT fail with a deferred constraint.
pub(super) fn fixture_holding(sync: Option<SyncFn>, hold: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
         CREATE TABLE t (x INTEGER NOT NULL);
         CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
    )
    .unwrap();
    let writer = Arc::new(
        Writer::spawn_holding(conn, Arc::new(Clock::default()), sync, None, hold).unwrap(),
    );
    Fixture {
        _dir: dir,
        path,
        writer,
    }
}

pub(super) fn committed(path: &std::path::Path) -> Vec<i64> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Occupies the writer thread until the returned sender is dropped, so that commands sent in
/// the meantime queue up and form one group.
async fn hold(writer: &Arc<Writer>) -> (std_mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (started_tx, started_rx) = oneshot::channel();
    let (release_tx, release_rx) = std_mpsc::channel::<()>();
    let w = Arc::clone(writer);
    let task = tokio::spawn(async move {
        w.submit(move |_, _| {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
            Ok(())
        })
        .await
        .unwrap();
    });
    started_rx.await.unwrap();
    (release_tx, task)
}

pub(super) fn insert(
    writer: &Arc<Writer>,
    x: i64,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let w = Arc::clone(writer);
    tokio::spawn(async move {
        w.submit(move |conn, _| {
            conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
            Ok(())
        })
        .await
    })
}

/// Runs `sql` as a command of its own, in a task.
pub(super) fn execute(
    writer: &Arc<Writer>,
    sql: &'static str,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let w = Arc::clone(writer);
    tokio::spawn(async move {
        w.submit(move |conn, _| {
            conn.execute(sql, [])?;
            Ok(())
        })
        .await
    })
}

/// Lets spawned tasks run up to their send.
pub(super) async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn concurrent_writes_share_commits() {
    let f = fixture();
    let (release, holder) = hold(&f.writer).await;
    let tasks: Vec<_> = (0..200).map(|x| insert(&f.writer, x)).collect();
    settle().await;
    drop(release);
    holder.await.unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stats = f.writer.stats();
    assert_eq!(stats.commands, 201);
    // The holder's own group, then the 200 queued behind it in one group.
    assert_eq!(stats.commits, 2, "{stats:?}");
    assert_eq!(committed(&f.path).len(), 200);
}

#[tokio::test]
async fn a_failing_command_rolls_back_only_itself() {
    let f = fixture();
    let (release, holder) = hold(&f.writer).await;
    let a = insert(&f.writer, 1);
    let w = Arc::clone(&f.writer);
    let b = tokio::spawn(async move {
        w.submit(|conn, _| -> Result<(), Error> {
            conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
            Err(StoreError::Conflict("no".into()).into())
        })
        .await
    });
    let w = Arc::clone(&f.writer);
    let c = tokio::spawn(async move {
        w.submit(|conn, _| -> Result<(), Error> {
            conn.execute("INSERT INTO t (x) VALUES (3)", [])?;
            // A SQL error, not only a domain one, stays inside its savepoint too.
            conn.execute("INSERT INTO t (x) VALUES (NULL)", [])?;
            Ok(())
        })
        .await
    });
    let d = insert(&f.writer, 4);
    settle().await;
    drop(release);
    holder.await.unwrap();
    a.await.unwrap().unwrap();
    assert!(matches!(b.await.unwrap(), Err(StoreError::Conflict(_))));
    assert!(matches!(c.await.unwrap(), Err(StoreError::Backend(_))));
    d.await.unwrap().unwrap();
    assert_eq!(f.writer.stats().commits, 2);
    // Read through a fresh connection: what was answered "done" is in the file.
    assert_eq!(committed(&f.path), vec![1, 4]);
}

/// A command alone in its group runs without a savepoint; failing, it must still leave
/// nothing behind and the writer must go on.
#[tokio::test]
async fn a_lone_failing_command_leaves_nothing_behind() {
    let f = fixture();
    insert(&f.writer, 1).await.unwrap().unwrap();
    let domain = f
        .writer
        .submit(|conn, _| -> Result<(), Error> {
            conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
            Err(StoreError::Conflict("no".into()).into())
        })
        .await;
    assert!(matches!(domain, Err(StoreError::Conflict(_))), "{domain:?}");
    let sql = f
        .writer
        .submit(|conn, _| -> Result<(), Error> {
            conn.execute("INSERT INTO t (x) VALUES (3)", [])?;
            conn.execute("INSERT INTO t (x) VALUES (NULL)", [])?;
            Ok(())
        })
        .await;
    assert!(matches!(sql, Err(StoreError::Backend(_))), "{sql:?}");
    insert(&f.writer, 4).await.unwrap().unwrap();
    let stats = f.writer.stats();
    assert_eq!((stats.commands, stats.commits), (4, 2), "{stats:?}");
    assert_eq!(stats.failed_groups, 0);
    assert_eq!(committed(&f.path), vec![1, 4]);
}

#[tokio::test]
async fn a_failed_commit_fails_the_whole_group() {
    let f = fixture();
    let (release, holder) = hold(&f.writer).await;
    let a = insert(&f.writer, 1);
    // The deferred foreign key is checked only at COMMIT, which then fails.
    let b = execute(&f.writer, "INSERT INTO child (p) VALUES (42)");
    settle().await;
    drop(release);
    holder.await.unwrap();
    let a = a.await.unwrap();
    let b = b.await.unwrap();
    assert!(
        matches!(a, Err(StoreError::Unavailable(ref m)) if m.contains("not committed")),
        "{a:?}"
    );
    assert!(matches!(b, Err(StoreError::Unavailable(_))), "{b:?}");
    assert_eq!(f.writer.stats().failed_groups, 1);
    assert!(committed(&f.path).is_empty());
    // The writer goes on with a clean transaction.
    insert(&f.writer, 7).await.unwrap().unwrap();
    assert_eq!(committed(&f.path), vec![7]);
}

#[tokio::test]
async fn close_commits_what_is_queued_then_refuses() {
    let f = fixture();
    let (release, holder) = hold(&f.writer).await;
    let queued: Vec<_> = (0..10).map(|x| insert(&f.writer, x)).collect();
    settle().await;
    let thread = f.writer.close().unwrap();
    drop(release);
    holder.await.unwrap();
    for t in queued {
        t.await.unwrap().unwrap();
    }
    thread.join().unwrap();
    assert_eq!(committed(&f.path).len(), 10);
    let late = insert(&f.writer, 99).await.unwrap();
    assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
    assert!(f.writer.close().is_none());
}

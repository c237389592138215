//! Opening fails early and clearly on a file Buzzer must not serve from.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

mod common;

use buzzer_store::{Store, StoreError};
use buzzer_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};

fn open_err(path: &std::path::Path) -> (StoreError, String) {
    let err = SqliteStore::open(path, SqliteOptions::default()).unwrap_err();
    let text = match &err {
        StoreError::Backend(source) => source.to_string(),
        other => other.to_string(),
    };
    eprintln!("{text}");
    (err, text)
}

#[test]
fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buzzer.db");
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    let (err, text) = open_err(&path);
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("not a readable SQLite database"), "{text}");
    // Untouched: no WAL switch, no migration written into someone's file.
    assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a_u8; 8192]);
}

#[test]
fn a_damaged_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buzzer.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE filler (x TEXT); CREATE INDEX filler_x ON filler (x);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO filler SELECT printf('%0500d', i) FROM n;",
        )
        .unwrap();
    }
    // Overwrite pages in the middle of the file, leaving the header intact.
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..len / 3 + 16384] {
        *b = 0xa5;
    }
    std::fs::write(&path, bytes).unwrap();
    let (_, text) = open_err(&path);
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("damaged") || text.contains("not a readable"),
        "{text}"
    );
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY);")
        .unwrap();
    let (_, text) = open_err(&path);
    assert!(text.contains("another application"), "{text}");
}

#[test]
fn a_database_from_a_newer_buzzer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buzzer.db");
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let (_, text) = open_err(&path);
    assert!(text.contains("schema version 999 is newer"), "{text}");
}

#[test]
fn an_unwritable_location_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Tests run as root, which ignores permission bits: a regular file as the parent directory
    // fails for everyone.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let path = file.join("buzzer.db");
    let (err, text) = open_err(&path);
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("Not a directory"), "{text}");
}

#[tokio::test]
async fn a_second_store_on_the_same_file_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buzzer.db");
    let first = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    let (err, text) = open_err(&path);
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        text.contains("database is in use by another process"),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");
    first.close().await.unwrap();
    let second = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    drop(second);
    // Dropping releases the file too.
    SqliteStore::open(&path, SqliteOptions::default()).unwrap();
}

#[tokio::test]
async fn what_was_acknowledged_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(&dir);
    let inserted = store
        .job_insert_many(vec![common::job("q"), common::job("q")])
        .await
        .unwrap();
    store.close().await.unwrap();
    assert!(matches!(
        store.job_get(inserted[0].job.id).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(store.now().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        store.job_insert_many(vec![common::job("q")]).await,
        Err(StoreError::Unavailable(_))
    ));
    store.close().await.unwrap();
    let store = common::open(&dir);
    let job = store.job_get(inserted[1].job.id).await.unwrap().unwrap();
    assert_eq!(job.payload.get(), r#"{"n": 1}"#);
    assert_eq!(
        store
            .queue_get("q")
            .await
            .unwrap()
            .unwrap()
            .counts
            .available,
        2
    );
}

/// `Full` answers only after the sync thread has fsynced the WAL; `Normal` never waits for it.
#[tokio::test]
async fn a_full_store_syncs_the_wal_before_it_answers() {
    for (synchronous, syncs) in [(Synchronous::Full, true), (Synchronous::Normal, false)] {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions {
            synchronous,
            ..SqliteOptions::default()
        };
        let s = SqliteStore::open(dir.path().join("buzzer.db"), opts).unwrap();
        s.job_insert_many(vec![common::job("q")]).await.unwrap();
        let stats = s.stats();
        assert_eq!(stats.syncs > 0, syncs, "{synchronous:?}: {stats:?}");
        assert!(stats.syncs <= stats.commits, "{stats:?}");
    }
}

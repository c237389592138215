//! Opening a database file: the process lock, the checks that catch a wrong or damaged file at
//! start-up, the pragmas, the migrations and the connections.

use std::{
    fs::{File, OpenOptions, TryLockError},
    path::{Path, PathBuf},
    time::Duration,
};

use buzzer_store::StoreError;
use rusqlite::{Connection, OpenFlags, config::DbConfig};

use crate::{
    SqliteOptions,
    error::OpenError,
    migrate::{self, APPLICATION_ID, MigrateProgress},
};

/// How long a statement waits for a lock held by another connection of ours (a checkpoint, a
/// reader starting while the WAL resets) before it reports busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The writer prepares a few dozen distinct statements; they all stay cached.
const STATEMENT_CACHE: usize = 64;

/// The writer's page cache, in SQLite's negative-means-KiB form (see `configure_writer`).
const WRITER_CACHE_KIB: i64 = -4 * 1024;

/// Everything an open store runs on.
pub(crate) struct Opened {
    pub(crate) writer: Connection,
    pub(crate) readers: Vec<Connection>,
    /// For the background checkpoint (src/checkpointer.rs).
    pub(crate) checkpoint: Connection,
    /// Held (with its lock) for as long as the store is open.
    pub(crate) lock: File,
    /// The WAL, for the writer's sync thread to fsync.
    pub(crate) wal: File,
}

pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

pub(crate) fn open(path: &Path, opts: &SqliteOptions) -> Result<Opened, StoreError> {
    let fail = |cause: String| OpenError::new(path, cause).into_store();
    let (lock, writer, _) = open_writer(path, opts, &mut log_migration)?;
    let readers = (0..opts.read_connections.max(1))
        .map(|_| open_reader(path))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("cannot open a read connection: {e}")))?;
    let checkpoint = open_checkpoint(path)
        .map_err(|e| fail(format!("cannot open the checkpoint connection: {e}")))?;
    let wal = open_wal(path).map_err(fail)?;
    Ok(Opened {
        writer,
        readers,
        checkpoint,
        lock,
        wal,
    })
}

/// Locks the file, opens the writer's connection, checks and configures it and brings the
/// schema up to date; also the schema version it found.
fn open_writer(
    path: &Path,
    opts: &SqliteOptions,
    progress: &mut dyn FnMut(MigrateProgress),
) -> Result<(File, Connection, i64), StoreError> {
    let fail = |cause: String| OpenError::new(path, cause).into_store();
    let lock = lock(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut writer = Connection::open_with_flags(path, flags).map_err(|e| fail(e.to_string()))?;
    check(&writer, path, opts).map_err(OpenError::into_store)?;
    configure_writer(&writer).map_err(|e| fail(e.to_string()))?;
    let found = migrate::migrate(&mut writer, progress).map_err(fail)?;
    Ok((lock, writer, found))
}

/// What a store's open says of its migrations: nothing when there was nothing to do.
fn log_migration(step: MigrateProgress) {
    match step {
        MigrateProgress::Found { version, latest } if version < latest => {
            tracing::info!(from = version, to = latest, "migrating the SQLite schema");
        }
        MigrateProgress::Found { .. } | MigrateProgress::Applying { .. } => {}
        MigrateProgress::Applied {
            version,
            name,
            took,
        } => tracing::info!(
            version,
            name,
            took_ms = took.as_millis(),
            "applied a migration"
        ),
    }
}

/// Opens the file only to bring its schema up to date, telling `progress` each step, and
/// closes it; the versions before and after.
///
/// The writer's connection commits without a sync (a store's sync thread covers that), so the
/// migration is checkpointed into the database file, which syncs it, before this returns.
pub(crate) fn migrate_file(
    path: &Path,
    progress: &mut dyn FnMut(MigrateProgress),
) -> Result<(i64, i64), StoreError> {
    let (_lock, writer, found) = open_writer(path, &SqliteOptions::default(), progress)?;
    let fail = |cause: String| OpenError::new(path, cause).into_store();
    let busy: bool = writer
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(|e| fail(format!("migrated, but cannot checkpoint the result: {e}")))?;
    if busy {
        return Err(fail(
            "migrated, but cannot checkpoint the result: the database is busy (the next open \
             finishes it)"
                .into(),
        ));
    }
    Ok((found, migrate::latest()))
}

/// The WAL file, which exists by now: SQLite opens it, creating it if need be, at the first
/// read of a database in WAL mode, and a new database's migrations have just written to it.
///
/// Syncing it through a descriptor of our own is sound for as long as the store is open:
/// SQLite deletes or replaces a WAL only when the last connection to the database closes
/// (after checkpointing it into the database, synced), and the writer's connection stays open
/// until its sync thread has finished. Write access, because some systems refuse to flush a
/// read-only handle; nothing is ever written through it.
fn open_wal(db: &Path) -> Result<File, String> {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    let path = PathBuf::from(name);
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open the WAL file {}: {e}", path.display()))
}

/// An exclusive lock on `<db>.lock` for the life of the store: a second Buzzer process on the
/// same file would break the single-writer design (and its group commit), so it must fail at
/// start-up rather than wait on SQLite's locks at run time. The OS drops the lock with the
/// process, so a crash never leaves a stale lock behind.
fn lock(db: &Path) -> Result<File, StoreError> {
    let path = lock_path(db);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            OpenError::new(
                db,
                format!("cannot create the lock file {}: {e}", path.display()),
            )
            .into_store()
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        // Unavailable: the other process may go away, and then a retry succeeds.
        Err(TryLockError::WouldBlock) => Err(StoreError::Unavailable(
            OpenError::new(
                db,
                format!(
                    "the database is in use by another process (it holds {})",
                    path.display()
                ),
            )
            .to_string(),
        )),
        Err(TryLockError::Error(e)) => {
            Err(OpenError::new(db, format!("cannot lock {}: {e}", path.display())).into_store())
        }
    }
}

/// Read-only checks, run before anything is written, so a wrong file is left untouched.
fn check(conn: &Connection, path: &Path, opts: &SqliteOptions) -> Result<(), OpenError> {
    let fail = |cause: String| OpenError::new(path, cause);
    // The first read of the header: a file that is not SQLite fails here, not at the first job.
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| fail(format!("it is not a readable SQLite database ({e})")))?;
    if conn.is_readonly("main").unwrap_or(true) {
        return Err(fail("the file is read-only".into()));
    }
    if opts.quick_check {
        quick_check(conn).map_err(fail)?;
    }
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| fail(e.to_string()))?;
    let version = migrate::user_version(conn).map_err(|e| fail(e.to_string()))?;
    let foreign = if version == 0 {
        app != 0 || tables > 0
    } else {
        app != APPLICATION_ID
    };
    if foreign {
        return Err(fail(
            "it is another application's database, not Buzzer's (refusing to change it)".into(),
        ));
    }
    Ok(())
}

fn quick_check(conn: &Connection) -> Result<(), String> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| format!("the integrity check could not run: {e}"))?;
    let problems = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("the integrity check could not run: {e}"))?;
    if problems.len() == 1 && problems[0] == "ok" {
        Ok(())
    } else {
        Err(format!(
            "the database is damaged (quick_check: {})",
            problems.join("; ").replace('\n', " ")
        ))
    }
}

fn configure_writer(conn: &Connection) -> Result<(), String> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| format!("cannot switch to WAL mode: {e}"))?;
    // Readers beside the writer and the durability argument both rest on WAL; some network
    // file systems cannot do it, and silently running without it would be worse than failing.
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "the file system does not support WAL mode (journal_mode stays {mode})"
        ));
    }
    // A commit writes its WAL frames and returns; the durability of `Synchronous::Full` comes
    // from the writer's sync thread, which fsyncs the WAL before any caller is answered (see
    // src/writer/sync.rs). Checkpoints still sync at NORMAL.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| e.to_string())?;
    // Keep the WAL file from staying at its high-water mark after a burst.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(|e| e.to_string())?;
    // Small on purpose: every commit walks the whole page cache. When a B-tree rebalance swaps
    // two pages, SQLite parks one under the lock-byte page's number (page 262,145 at 4 KiB),
    // which leaves that as the cache's highest page; the commit's truncate to the database's
    // size then scans every hash slot and page header instead of the few above the end. W1
    // rebalances in nearly every commit: with 32 MiB that walk was ~10% of the writer's time,
    // with 4 MiB it is about 1%. 4 MiB still holds the hot pages (every index's upper levels,
    // the head of each queue); the rest come from the OS cache, and fetch and enqueue
    // latency with 1,000,000 jobs waiting did not change (`buzzer bench scale`).
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
        .map_err(|e| e.to_string())?;
    // Each command of a group commit runs in its own SAVEPOINT, and SQLite keeps the pages a
    // savepoint may have to restore in a statement journal, a temp *file* by default: one
    // write(2) per touched page. That journal only serves rolling back inside the open
    // transaction, never recovery, so keeping it in memory costs no durability.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|e| e.to_string())?;
    // Since SQLite 3.47 a `LIMIT ?` takes part in planning, so binding a new limit re-prepares
    // the statement at its next step: the batch fetch, whose limit is the worker's free slots,
    // was re-planned almost every time (~5% of the writer's time in W1). The stability
    // guarantee plans each cached statement once; every writer statement names its states as
    // literals, so no plan needs a bound value.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| e.to_string())?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// A connection to the database the writer has opened and set up. Read-write flags even for a
/// reader: a WAL reader still needs to write the shared-memory index.
fn open_beside_writer(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// A connection that only checkpoints: at `NORMAL`, like the writer's, a checkpoint syncs the
/// WAL before it copies anything into the database file, and syncs that file after.
fn open_checkpoint(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_beside_writer(path)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = open_beside_writer(path)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

//! Schema migrations, embedded in the binary and recorded in `PRAGMA user_version`.

use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

/// One embedded migration: `migrations/{version:04}_{name}.sql`.
macro_rules! migration {
    ($file:literal, $name:literal) => {
        (
            $name,
            include_str!(concat!("../migrations/", $file, "_", $name, ".sql")),
        )
    };
}

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`, by name and SQL. Append only: a released
/// migration never changes, because databases out there already ran it.
const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001", "init"),
    migration!("0002", "topics_and_schedules"),
    migration!("0003", "topic_events"),
    migration!("0004", "job_traceparent"),
    migration!("0005", "counts_off_the_hot_path"),
    migration!("0006", "job_bodies"),
    migration!("0007", "state_checks_without_in_lists"),
    migration!("0008", "completed_counts"),
    migration!("0009", "state_as_integer"),
];

/// A step of a migration run, for whoever watches it (`buzzer migrate` prints each one, the
/// store's open logs them). A migration that rebuilds `jobs` takes seconds on a million jobs.
/// Every migration of a run is applied in one transaction: `Applied` says one has run, and
/// the run counts once it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrateProgress {
    /// The file's schema was found at `version` (0: a new file); this build writes `latest`.
    Found {
        version: i64,
        latest: i64,
    },
    Applying {
        version: i64,
        name: &'static str,
    },
    Applied {
        version: i64,
        name: &'static str,
        took: Duration,
    },
}

/// `PRAGMA application_id` of a Buzzer database: "BUZZ" (set by migration 1).
pub(crate) const APPLICATION_ID: i64 = 0x4255_5A5A;

/// The schema version this build writes and understands.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to [`latest`] in one transaction, so a failed upgrade leaves the
/// database as it was, telling `progress` each step. Returns the version found.
pub(crate) fn migrate(
    conn: &mut Connection,
    progress: &mut dyn FnMut(MigrateProgress),
) -> Result<i64, String> {
    let found = user_version(conn).map_err(|e| format!("cannot read the schema version: {e}"))?;
    progress(MigrateProgress::Found {
        version: found,
        latest: latest(),
    });
    if found > latest() {
        return Err(format!(
            "its schema version {found} is newer than this build of Buzzer understands \
             (up to {}); run a newer Buzzer",
            latest()
        ));
    }
    if found == latest() {
        return Ok(found);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| format!("cannot start the migration: {e}"))?;
    for (i, &(name, sql)) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        progress(MigrateProgress::Applying { version, name });
        let started = Instant::now();
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {version} failed: {e}"))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| format!("cannot record schema version {version}: {e}"))?;
        progress(MigrateProgress::Applied {
            version,
            name,
            took: started.elapsed(),
        });
    }
    tx.commit()
        .map_err(|e| format!("cannot commit the migration: {e}"))?;
    Ok(found)
}

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as a build that stopped at migration `version` left it.
    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for (_, sql) in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn
    }

    #[test]
    fn migrates_a_fresh_database_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn, &mut |_| {}).unwrap(), 0);
        assert_eq!(user_version(&conn).unwrap(), latest());
        let app: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
        assert_eq!(migrate(&mut conn, &mut |_| {}).unwrap(), latest());
    }

    /// Migration 6 moves every job's body out of its hot row: nothing a job carried may be
    /// lost, and deleting a job must take its body with it.
    #[test]
    fn job_bodies_keep_what_each_job_carried() {
        let mut conn = at_version(5);
        conn.execute_batch(
            "INSERT INTO jobs (queue, state, payload, priority, attempt, max_attempts, \
             backoff_initial_ms, backoff_max_ms, backoff_factor, timeout_ms, created_at, \
             scheduled_at, finished_at, result, errors, tags, metadata, progress, traceparent) \
             VALUES ('q', 'completed', '{\"n\": 1}', 3, 1, 5, 10, 20, 1.5, 30, 1, 2, 3, \
             '\"ok\"', '[{}]', '[\"t\"]', '{\"m\": 1}', '50', 'tp'), \
             ('q', 'available', '[]', 0, 0, 1, 1, 1, 2.0, NULL, 4, 4, NULL, NULL, NULL, NULL, \
             NULL, NULL, NULL)",
        )
        .unwrap();
        migrate(&mut conn, &mut |_| {}).unwrap();
        let row: (String, i64, i64, f64, i64, i64, String, String, String, String, String) = conn
            .query_row(
                "SELECT payload, priority, max_attempts, backoff_factor, timeout_ms, created_at, \
                 result, errors, tags, metadata, progress || traceparent FROM job_rows WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            row,
            (
                r#"{"n": 1}"#.into(),
                3,
                5,
                1.5,
                30,
                1,
                r#""ok""#.into(),
                "[{}]".into(),
                r#"["t"]"#.into(),
                r#"{"m": 1}"#.into(),
                "50tp".into()
            )
        );
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM job_rows"), 2);
        conn.execute("DELETE FROM jobs WHERE id = 1", []).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM job_bodies"), 1);
    }

    /// Migrations 7 and 9 rebuild `jobs`: every row and id stays, the id counter too (so an id
    /// is never reused), and the rebuilt table has its constraint, indexes, trigger and view.
    /// Migration 9 stores each state as its code.
    #[test]
    fn rebuilding_jobs_keeps_rows_ids_and_the_counter() {
        let mut conn = at_version(6);
        conn.execute_batch(
            "INSERT INTO jobs (queue, state, priority, attempt, scheduled_at, started_at, \
             idempotency_key, ordering_key, blocked, worker_id, lease_token, lease_expires_at) \
             VALUES ('q', 'running', 3, 1, 2, 5, 'idem', 'k', 0, 'w', 'tok', 99), \
                    ('q', 'available', 0, 0, 4, NULL, NULL, 'k', 1, NULL, NULL, NULL), \
                    ('q', 'available', 0, 0, 6, NULL, NULL, NULL, 0, NULL, NULL, NULL); \
             INSERT INTO job_bodies (id, payload, max_attempts, backoff_initial_ms, \
                 backoff_max_ms, backoff_factor, created_at) \
             SELECT id, '{}', 1, 1, 1, 2.0, 1 FROM jobs; \
             DELETE FROM jobs WHERE id = 3;",
        )
        .unwrap();
        let rows = |conn: &Connection| -> Vec<Vec<rusqlite::types::Value>> {
            let mut stmt = conn.prepare("SELECT * FROM jobs ORDER BY id").unwrap();
            let width = stmt.column_count();
            stmt.query_map([], |r| (0..width).map(|i| r.get(i)).collect())
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let mut before = rows(&conn);
        migrate(&mut conn, &mut |_| {}).unwrap();
        for (row, code) in before.iter_mut().zip([2, 1]) {
            row[2] = rusqlite::types::Value::Integer(code);
        }
        assert_eq!(rows(&conn), before);

        let next: i64 = conn
            .query_row(
                "INSERT INTO jobs (queue, state, priority, scheduled_at) \
                 VALUES ('q', 0, 0, 1) RETURNING id",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(next, 4, "the deleted job's id 3 must not come back");
        let bad = conn.execute(
            "INSERT INTO jobs (queue, state, priority, scheduled_at) VALUES ('q', 7, 0, 1)",
            [],
        );
        assert!(bad.is_err(), "{bad:?}");
        let indexes: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs' \
                      AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            indexes,
            [
                "jobs_due",
                "jobs_fetch",
                "jobs_idempotency",
                "jobs_lease",
                "jobs_ordering",
                "jobs_prune_dead",
                "jobs_prune_finished",
                "jobs_resting"
            ]
        );
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM job_rows"), 2);
        conn.execute("DELETE FROM jobs WHERE id = 1", []).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM job_bodies WHERE id = 1"), 0);
    }

    /// Migration 8 counts each queue's completed jobs into `queue_completed` once; from then
    /// on the writes keep the count.
    #[test]
    fn completed_counts_start_from_the_jobs_there() {
        let mut conn = at_version(7);
        conn.execute_batch(
            "INSERT INTO jobs (queue, state, priority, scheduled_at, finished_at) \
             VALUES ('q', 'completed', 0, 1, 2), ('q', 'completed', 0, 1, 2), \
                    ('r', 'completed', 0, 1, 2), ('r', 'dead', 0, 1, 2), \
                    ('s', 'available', 0, 1, NULL);",
        )
        .unwrap();
        migrate(&mut conn, &mut |_| {}).unwrap();
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT queue, n FROM queue_completed ORDER BY queue")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(counts, [("q".to_owned(), 2), ("r".to_owned(), 1)]);
    }

    /// A row whose state has no code (only a hand edit past the CHECK makes one) fails
    /// migration 9 whole, rather than being dropped.
    #[test]
    fn a_state_without_a_code_fails_the_migration_and_keeps_the_file() {
        let mut conn = at_version(8);
        conn.execute_batch(
            "PRAGMA ignore_check_constraints = ON; \
             INSERT INTO jobs (queue, state, priority, scheduled_at) VALUES ('q', 'lost', 0, 1); \
             PRAGMA ignore_check_constraints = OFF;",
        )
        .unwrap();
        let err = migrate(&mut conn, &mut |_| {}).unwrap_err();
        assert!(err.contains("migration 9 failed"), "{err}");
        assert_eq!(user_version(&conn).unwrap(), 8);
        let state: String = conn
            .query_row("SELECT state FROM jobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(state, "lost");
    }

    #[test]
    fn each_step_is_reported_in_order_and_nothing_when_up_to_date() {
        let mut conn = Connection::open_in_memory().unwrap();
        let mut steps = Vec::new();
        migrate(&mut conn, &mut |step| steps.push(step)).unwrap();
        assert_eq!(
            steps[0],
            MigrateProgress::Found {
                version: 0,
                latest: latest()
            }
        );
        let applied: Vec<(i64, &str)> = steps[1..]
            .chunks(2)
            .map(|pair| match pair {
                [
                    MigrateProgress::Applying { version, name },
                    MigrateProgress::Applied {
                        version: v,
                        name: n,
                        ..
                    },
                ] if version == v && name == n => (*version, *name),
                other => panic!("not an applying/applied pair: {other:?}"),
            })
            .collect();
        assert_eq!(applied.len() as i64, latest());
        assert_eq!(applied[0], (1, "init"));
        assert_eq!(applied[8], (9, "state_as_integer"));

        let mut again = Vec::new();
        migrate(&mut conn, &mut |step| again.push(step)).unwrap();
        assert_eq!(
            again,
            [MigrateProgress::Found {
                version: latest(),
                latest: latest()
            }]
        );
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        let err = migrate(&mut conn, &mut |_| {}).unwrap_err();
        assert!(err.contains("newer"), "{err}");
    }
}

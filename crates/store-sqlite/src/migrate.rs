//! Schema migrations, embedded in the binary and recorded in `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`. Append only: a released migration never
/// changes, because databases out there already ran it.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_topics_and_schedules.sql"),
    include_str!("../migrations/0003_topic_events.sql"),
    include_str!("../migrations/0004_job_traceparent.sql"),
    include_str!("../migrations/0005_counts_off_the_hot_path.sql"),
];

/// `PRAGMA application_id` of a Buzzer database: "BUZZ" (set by migration 1).
pub(crate) const APPLICATION_ID: i64 = 0x4255_5A5A;

/// The schema version this build writes and understands.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to [`latest`] in one transaction, so a failed upgrade leaves the
/// database as it was. Returns the version found, for the log.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, String> {
    let found = user_version(conn).map_err(|e| format!("cannot read the schema version: {e}"))?;
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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i64 + 1;
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {version} failed: {e}"))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| format!("cannot record schema version {version}: {e}"))?;
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

    #[test]
    fn migrates_a_fresh_database_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(user_version(&conn).unwrap(), latest());
        let app: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
        assert_eq!(migrate(&mut conn).unwrap(), latest());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.contains("newer"), "{err}");
    }
}

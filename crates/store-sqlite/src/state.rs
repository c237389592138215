//! A job's state as `jobs.state` holds it: a small integer (migration 9, which says why).
//!
//! The SQL of this crate writes a code with its name beside it, `state = 2 /*running*/`;
//! the test below holds every such pair in the crate's SQL to this table.

use buzzer_types::JobState;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A state read from or bound to a `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stored(pub(crate) JobState);

impl Stored {
    /// As the `job_states` table of migration 9 lists them.
    pub(crate) fn code(self) -> i64 {
        match self.0 {
            JobState::Scheduled => 0,
            JobState::Available => 1,
            JobState::Running => 2,
            JobState::Retryable => 3,
            JobState::Completed => 4,
            JobState::Dead => 5,
            JobState::Cancelled => 6,
        }
    }
}

impl FromSql for Stored {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let code = value.as_i64()?;
        JobState::ALL
            .into_iter()
            .map(Stored)
            .find(|s| s.code() == code)
            .ok_or(FromSqlError::OutOfRange(code))
    }
}

impl ToSql for Stored {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.code()))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// Every source file whose SQL names a state, and the migration that made the codes.
    const SOURCES: &[(&str, &str)] = &[
        ("queues.rs", include_str!("queues.rs")),
        ("jobs/mod.rs", include_str!("jobs/mod.rs")),
        ("jobs/complete.rs", include_str!("jobs/complete.rs")),
        ("jobs/fetch.rs", include_str!("jobs/fetch.rs")),
        ("jobs/finish.rs", include_str!("jobs/finish.rs")),
        ("jobs/maintain.rs", include_str!("jobs/maintain.rs")),
        ("jobs/operator.rs", include_str!("jobs/operator.rs")),
        ("jobs/read.rs", include_str!("jobs/read.rs")),
        ("jobs/plan_tests.rs", include_str!("jobs/plan_tests.rs")),
        (
            "0009_state_as_integer.sql",
            include_str!("../migrations/0009_state_as_integer.sql"),
        ),
    ];

    /// Each `N /*name*/` in `text`, as `(N, name)`.
    fn pairs(text: &str) -> Vec<(i64, &str)> {
        text.match_indices(" /*")
            .filter_map(|(at, _)| {
                let digits = text[..at].rsplit(|c: char| !c.is_ascii_digit()).next()?;
                let name = text[at + 3..].split("*/").next()?;
                Some((digits.parse().ok()?, name))
            })
            .collect()
    }

    #[test]
    fn every_code_in_the_sql_matches_its_name() {
        let mut seen = 0;
        for (file, text) in SOURCES {
            for (code, name) in pairs(text) {
                let state: JobState = name
                    .parse()
                    .unwrap_or_else(|e| panic!("{file}: `{code} /*{name}*/`: {e}"));
                assert_eq!(Stored(state).code(), code, "{file}: `{code} /*{name}*/`");
                seen += 1;
            }
            for name in JobState::ALL.map(JobState::as_str) {
                assert!(
                    !text.contains(&format!("state = '{name}'"))
                        && !text.contains(&format!("state IN ('{name}'")),
                    "{file} compares the state with its name `{name}`, not its code"
                );
            }
        }
        assert!(
            seen > 50,
            "only {seen} codes found: is the pattern still `2 /*running*/`?"
        );
    }

    #[test]
    fn the_codes_are_the_migrations_job_states() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::migrate::migrate(&mut conn, &mut |_| {}).unwrap();
        let rows: Vec<(i64, String)> = conn
            .prepare("SELECT code, name FROM job_states ORDER BY code")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let ours: Vec<(i64, String)> = JobState::ALL
            .into_iter()
            .map(|state| (Stored(state).code(), state.as_str().to_owned()))
            .collect();
        assert_eq!(rows, ours);
    }

    #[test]
    fn a_code_out_of_range_is_an_error_not_a_state() {
        let conn = Connection::open_in_memory().unwrap();
        let read = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, Stored>(0));
        assert_eq!(read("SELECT 2").unwrap(), Stored(JobState::Running));
        assert!(read("SELECT 7").is_err());
        assert!(read("SELECT 'running'").is_err());
    }
}

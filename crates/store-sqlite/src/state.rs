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

    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `dir`, however deep.
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Each `/*name*/` in `text` that names a state, with the digits just before it
    /// (`None` when there are none: a name with no code beside it).
    fn pairs(text: &str) -> Vec<(Option<i64>, JobState)> {
        text.match_indices("/*")
            .filter_map(|(at, _)| {
                let name = text[at + 2..].split("*/").next()?;
                let state = name.parse::<JobState>().ok()?;
                let digits = text[..at]
                    .trim_end()
                    .rsplit(|c: char| !c.is_ascii_digit())
                    .next()?;
                Some((digits.parse().ok(), state))
            })
            .collect()
    }

    /// The crate's SQL writes every state as its code with its name beside it, and never by
    /// its name alone: a name compared with an integer column matches nothing, silently.
    /// Scans every source file (the migrations from 9 on, which store codes, too); migrate.rs
    /// is left out, whose tests write rows in the text schema of earlier migrations, and this
    /// file, whose test reads a name to see it refused.
    #[test]
    fn every_state_in_the_sql_is_its_code_with_its_name() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        rust_files(&root.join("src"), &mut files);
        files.retain(|f| !f.ends_with("src/migrate.rs") && !f.ends_with("src/state.rs"));
        let migrations: Vec<PathBuf> = std::fs::read_dir(root.join("migrations"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap() >= "0009")
            .collect();
        assert!(!migrations.is_empty());
        let mut seen = 0;
        for file in files.iter().chain(&migrations) {
            let text = std::fs::read_to_string(file).unwrap();
            let shown = file.strip_prefix(root).unwrap().display();
            for (code, state) in pairs(&text) {
                assert_eq!(
                    code,
                    Some(Stored(state).code()),
                    "{shown}: `/*{state}*/` must follow its code, {}",
                    Stored(state).code()
                );
                seen += 1;
            }
            if migrations.contains(file) {
                continue;
            }
            for state in JobState::ALL {
                assert!(
                    !text.contains(&format!("'{state}'")),
                    "{shown} names the state '{state}' in SQL: write `{} /*{state}*/`",
                    Stored(state).code()
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

use std::path::{Path, PathBuf};

use buzzer_store::StoreError;
use rusqlite::ErrorCode;

/// What the SQL functions of this crate fail with, so `?` works on SQLite, JSON and domain
/// errors alike; it becomes a [`StoreError`] at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Sqlite(e) => sqlite(e),
            Error::Json(e) => StoreError::backend(e),
        }
    }
}

/// Busy and locked mean "try again"; everything else is a backend fault.
pub(crate) fn sqlite(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("the database is busy: {e}"))
        }
        _ => StoreError::backend(e),
    }
}

pub(crate) fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite store is closed".into())
}

/// Why [`SqliteStore::open`](crate::SqliteStore::open) failed, naming the file; it comes
/// inside [`StoreError::Backend`] (or, as text, in [`StoreError::Unavailable`] when another
/// process holds the database).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the SQLite database {}: {cause}", path.display())]
pub struct OpenError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong, in words.
    pub cause: String,
}

impl OpenError {
    pub(crate) fn new(path: &Path, cause: impl Into<String>) -> Self {
        OpenError {
            path: path.to_owned(),
            cause: cause.into(),
        }
    }

    pub(crate) fn into_store(self) -> StoreError {
        StoreError::backend(self)
    }
}

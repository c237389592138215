use buzzer_store::StoreError;

/// What the SQL functions of this crate fail with, so `?` works on PostgreSQL, pool, JSON and
/// domain errors alike; it becomes a [`StoreError`] at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Pg(e) => pg(e),
            Error::Pool(e) => pool(e),
            Error::Json(e) => StoreError::backend(e),
        }
    }
}

/// A lost connection, a server going down, a timeout or a conflict worth retrying means
/// "try again" (the server answers 503 + `Retry-After`); anything else is a fault.
///
/// A write whose connection broke before the answer came may or may not have committed; the
/// caller hears `Unavailable` either way, never a success for work that was not stored.
pub(crate) fn pg(e: tokio_postgres::Error) -> StoreError {
    if let Some(m) = unstorable(&e) {
        return StoreError::Conflict(m);
    }
    if is_transient(&e) {
        StoreError::Unavailable(format!("PostgreSQL is unavailable: {}", describe(&e)))
    } else {
        StoreError::backend(Described {
            text: describe(&e),
            source: e,
        })
    }
}

/// A PostgreSQL error shown with the server's SQLSTATE and message. The driver's own text is
/// only "db error", the server's words sitting in its source, which most reports never print.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
struct Described {
    text: String,
    source: tokio_postgres::Error,
}

pub(crate) fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => pg(e),
        PoolError::Closed => closed(),
        PoolError::Timeout(kind) => StoreError::Unavailable(format!(
            "PostgreSQL is unavailable: no connection within the pool's timeout ({kind:?})"
        )),
        other => StoreError::Unavailable(format!("PostgreSQL is unavailable: {other}")),
    }
}

pub(crate) fn closed() -> StoreError {
    StoreError::Unavailable("the PostgreSQL store is closed".into())
}

/// Text PostgreSQL cannot store, which the API's validation lets through: a NUL character in a
/// key, tag, worker id or error message (text columns), or `\u0000` in metadata or error
/// details (jsonb). Refused with the reason rather than as a server fault.
fn unstorable(e: &tokio_postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    matches!(db.code().code(), "22021" | "22P05").then(|| {
        format!(
            "PostgreSQL cannot store this text (a NUL character, \\u0000, is not allowed in keys, \
             tags, worker ids, metadata or error details): {}",
            db.message()
        )
    })
}

fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let code = code.code();
        // 08: connection exception; 53: insufficient resources (too many connections);
        // 57P0x: the server is shutting down or starting; 57014: statement cancelled;
        // 40001/40P01: serialization failure, deadlock; 55P03: lock not available.
        return code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57P0")
            || matches!(code, "57014" | "40001" | "40P01" | "55P03");
    }
    // No SQLSTATE: the error happened on the way to the server (connect, I/O, a timeout).
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    e.to_string().starts_with("timeout")
}

/// The error with its database message or I/O cause, on one line.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

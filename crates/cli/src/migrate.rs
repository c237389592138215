//! `buzzer migrate`: bring a database's schema up to this build's version, then exit.
//!
//! `serve` migrates at start too; this command lets an operator do it ahead of a rolling
//! deploy, watch it, and start servers that find nothing left to do.

use std::{fmt::Display, path::PathBuf, time::Duration};

use buzzer_store_sqlite::{MigrateProgress, SqliteStore};
use clap::Args;

use crate::{
    database_url::DatabaseUrl,
    serve::{check_directory, open_error},
};

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Database: postgres://…[?schema=NAME] (the schema is created if missing), or
    /// sqlite:PATH (SQLite databases also migrate themselves when `serve` opens them).
    #[arg(
        long,
        env = "BUZZER_DATABASE_URL",
        default_value = "sqlite:buzzer.db",
        value_name = "URL"
    )]
    pub database: DatabaseUrl,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    match args.database {
        DatabaseUrl::Postgres(url) => crate::postgres::migrate(&url).await,
        DatabaseUrl::Sqlite(path) => migrate_sqlite(path).await,
    }
}

/// "applying 0009_state_as_integer …", for both stores.
pub(crate) fn applying(version: impl Display, name: &str) -> String {
    format!("applying {version:0>4}_{name} …")
}

/// "applied  0009_state_as_integer in 2367 ms", for both stores.
pub(crate) fn applied(version: impl Display, name: &str, took: Duration) -> String {
    format!("applied  {version:0>4}_{name} in {} ms", took.as_millis())
}

/// The same steps and lines as PostgreSQL's (`crate::postgres::migrate`), for one file; all
/// of its migrations commit together, before the last line.
async fn migrate_sqlite(path: PathBuf) -> anyhow::Result<()> {
    check_directory(&path)?;
    let shown = crate::serve::shown(&path);
    let named = shown.clone();
    let (from, to) = tokio::task::spawn_blocking(move || {
        SqliteStore::migrate(&path, |step| {
            let line = match step {
                MigrateProgress::Found { version, latest } => format!(
                    "SQLite database {named}: at version {version}, this build writes version \
                     {latest}"
                ),
                MigrateProgress::Applying { version, name } => applying(version, name),
                MigrateProgress::Applied {
                    version,
                    name,
                    took,
                } => applied(version, name, took),
            };
            // Progress is best effort: a closed stdout must not fail the migration.
            let _ = crate::output::print(&line);
        })
        .map_err(|e| open_error(&path, &e))
    })
    .await
    .map_err(|e| anyhow::anyhow!("the migration stopped: {e}"))??;
    if from == to {
        crate::output::print(&format!(
            "SQLite database {shown} is up to date (version {to})"
        ))
    } else {
        crate::output::print(&format!(
            "SQLite database {shown} migrated from version {from} to {to}"
        ))
    }
}

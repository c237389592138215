//! `buzzer migrate`: bring a database's schema up to this build's version, then exit.
//!
//! `serve` migrates at start too; this command lets an operator do it ahead of a rolling
//! deploy, watch it, and start servers that find nothing left to do.

use clap::Args;

use crate::database_url::DatabaseUrl;

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
        DatabaseUrl::Sqlite(path) => crate::serve::migrate_sqlite(&path).await,
    }
}

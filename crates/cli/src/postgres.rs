//! The PostgreSQL side of the binary: `serve` over a shared database, and `buzzer migrate`.

use std::sync::Arc;

use buzzer_store::Store;
use buzzer_store_postgres::{MigrateProgress, PgOptions, PgStore};

use crate::serve::store_message;

/// Connects (applying pending migrations, safe while other nodes start too) and names the
/// database for later messages. The URL may carry `schema=NAME` (Buzzer's own parameter: the
/// schema is created if missing) or the driver's `options=-csearch_path%3DNAME`.
pub async fn connect(url: &str) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let store = PgStore::connect(url, PgOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!(store_message(&e)))?;
    let shown = format!("PostgreSQL schema {}", store.schema());
    tracing::info!(
        schema = store.schema(),
        "database open (PostgreSQL, shared with other nodes)"
    );
    Ok((Arc::new(store), shown))
}

/// `buzzer migrate` for PostgreSQL: each step on stdout as it happens.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    let latest = buzzer_store_postgres::latest();
    let report = buzzer_store_postgres::migrate(url, &PgOptions::default(), |p| {
        let line = match p {
            MigrateProgress::Found { schema, version } => {
                format!("schema {schema}: at version {version}, this build writes version {latest}")
            }
            MigrateProgress::Applying(m) => crate::migrate::applying(m.version, m.name),
            MigrateProgress::Applied(m, took) => crate::migrate::applied(m.version, m.name, took),
        };
        // Progress is best effort: a closed stdout must not fail the migration.
        let _ = crate::output::print(&line);
    })
    .await
    .map_err(|e| anyhow::anyhow!(store_message(&e)))?;
    if report.from == report.to {
        crate::output::print(&format!(
            "schema {} is up to date (version {})",
            report.schema, report.to
        ))?;
    } else {
        crate::output::print(&format!(
            "schema {} migrated from version {} to {}",
            report.schema, report.from, report.to
        ))?;
    }
    Ok(())
}

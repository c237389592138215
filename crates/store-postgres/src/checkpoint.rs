//! `CHECKPOINT` on demand, for measurements.

use buzzer_store::StoreError;

use crate::{PgOptions, connect, error, named};

/// Has PostgreSQL write every dirty buffer out now (`CHECKPOINT`), on a connection of its own.
///
/// For benchmarks: a run that starts right after heavy writes (another run, a peer's
/// benchmark) otherwise shares the disk and the CPU with the spread-out checkpoint of those
/// writes, and pays for the full-page images its own first change of each page then logs.
/// Needs a superuser or, from PostgreSQL 15, the `pg_checkpoint` role.
pub async fn checkpoint(url: &str) -> Result<(), StoreError> {
    let target = connect::target(url, &PgOptions::default())?;
    let (client, connection) = target
        .config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| named(&target.shown, error::pg(e)))?;
    let driver = tokio::spawn(connection);
    let done = client
        .batch_execute("CHECKPOINT")
        .await
        .map_err(|e| named(&target.shown, error::pg(e)));
    drop(client);
    let _ = driver.await;
    done
}

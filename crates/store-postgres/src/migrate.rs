//! Schema migrations, embedded in the binary and recorded in `buzzer_migrations`.
//!
//! Several nodes may start at once: each migrates in one transaction under a transaction-level
//! advisory lock of the schema, so one applies the pending migrations and the others, once the
//! lock is theirs, find nothing left to do. A failed migration rolls back whole.

use std::time::{Duration, Instant};

use buzzer_store::StoreError;
use tokio_postgres::Client;

use crate::{connect::ConnectError, error::Error};

/// One embedded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// 1-based, in order; the schema's version is the highest applied.
    pub version: i32,
    pub name: &'static str,
    sql: &'static str,
}

/// Append only: a released migration never changes, because databases out there already ran
/// it. Kept in the same order as the SQLite store's.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "topics_and_schedules",
        sql: include_str!("../migrations/0002_topics_and_schedules.sql"),
    },
    Migration {
        version: 3,
        name: "topic_events",
        sql: include_str!("../migrations/0003_topic_events.sql"),
    },
    Migration {
        version: 4,
        name: "job_traceparent",
        sql: include_str!("../migrations/0004_job_traceparent.sql"),
    },
    Migration {
        version: 5,
        name: "queue_state_off_hot_path",
        sql: include_str!("../migrations/0005_queue_state_off_hot_path.sql"),
    },
];

/// The schema version this build writes and understands.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// What a migration run is doing, for progress output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateProgress {
    /// The schema was found at `version` (0: no Buzzer tables yet).
    Found {
        schema: String,
        version: i32,
    },
    Applying(Migration),
    Applied(Migration, Duration),
}

/// The outcome of a migration run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// The schema that holds Buzzer's tables.
    pub schema: String,
    /// The version before and after.
    pub from: i32,
    pub to: i32,
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS buzzer_migrations (\
    version integer PRIMARY KEY, \
    name text NOT NULL, \
    applied_at timestamptz NOT NULL DEFAULT now())";

/// The schema Buzzer's unqualified names resolve to for creation.
const CURRENT_SCHEMA: &str = "SELECT current_schema()";

/// Brings the schema up to [`latest`] in one transaction.
pub(crate) async fn migrate(
    client: &mut Client,
    schema: Option<&str>,
    progress: &mut (dyn FnMut(MigrateProgress) + Send),
) -> Result<MigrateReport, Error> {
    let tx = client.transaction().await?;
    // `IF NOT EXISTS` on objects that exist is the normal case, not news.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    // Per schema, so separate installations (or test schemas) migrate side by side.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('buzzer migrate ' || \
         coalesce($1::text, current_schema(), ''), 0))",
        &[&schema],
    )
    .await?;
    // Created only when missing: PostgreSQL checks the database's CREATE right before it looks
    // for the schema, so a role given a schema of its own, and no right to make schemas,
    // could not start on it at all.
    if let Some(schema) = schema
        && !tx
            .query_one(
                "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)",
                &[&schema],
            )
            .await?
            .get::<_, bool>(0)
    {
        // `schema` passed `check_schema`: a plain identifier that needs no quoting.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    let schema_name = resolved_schema(&tx).await?;
    tx.batch_execute(CREATE_LEDGER).await?;
    let found = version(&tx).await?;
    progress(MigrateProgress::Found {
        schema: schema_name.clone(),
        version: found,
    });
    refuse_newer(found)?;
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        progress(MigrateProgress::Applying(*migration));
        let started = Instant::now();
        tx.batch_execute(migration.sql).await.map_err(|e| {
            StoreError::backend(ConnectError(format!(
                "migration {} ({}) failed: {}",
                migration.version,
                migration.name,
                crate::error::describe(&e)
            )))
        })?;
        tx.execute(
            "INSERT INTO buzzer_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await?;
        progress(MigrateProgress::Applied(*migration, started.elapsed()));
    }
    tx.commit().await?;
    Ok(MigrateReport {
        schema: schema_name,
        from: found,
        to: latest().max(found),
    })
}

/// Without migrating: the schema must be exactly at this build's version.
pub(crate) async fn check(client: &Client) -> Result<(), Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('buzzer_migrations') IS NOT NULL", &[])
        .await?
        .try_get(0)?;
    let found = if exists { version(client).await? } else { 0 };
    refuse_newer(found)?;
    if found < latest() {
        return Err(StoreError::backend(ConnectError(format!(
            "the database schema is at version {found} but this build needs version {}: \
             run `buzzer migrate --database …` first",
            latest()
        )))
        .into());
    }
    Ok(())
}

async fn version(client: &impl tokio_postgres::GenericClient) -> Result<i32, Error> {
    Ok(client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM buzzer_migrations",
            &[],
        )
        .await?
        .try_get(0)?)
}

pub(crate) async fn resolved_schema(
    client: &impl tokio_postgres::GenericClient,
) -> Result<String, Error> {
    let schema: Option<String> = client.query_one(CURRENT_SCHEMA, &[]).await?.try_get(0)?;
    schema.ok_or_else(|| {
        StoreError::backend(ConnectError(
            "the connection's search_path names no existing schema; create it, or pass \
             schema=NAME to have Buzzer create it"
                .into(),
        ))
        .into()
    })
}

fn refuse_newer(found: i32) -> Result<(), Error> {
    if found > latest() {
        return Err(StoreError::backend(ConnectError(format!(
            "the database schema is at version {found}, newer than this build of Buzzer \
             understands (up to {}); run a newer Buzzer",
            latest()
        )))
        .into());
    }
    Ok(())
}

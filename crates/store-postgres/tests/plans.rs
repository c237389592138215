//! The hot statements use the partial indexes they were written for, on a table that looks
//! like production: mostly finished jobs waiting to be pruned, some scheduled, a few available
//! and running. A partial index is used only if the query's WHERE implies the index's
//! predicate, so a harmless-looking edit to either side silently turns a seek into a scan of
//! every finished job; these tests catch that, for the custom plans of the first executions
//! and for the generic plan a prepared statement settles on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use buzzer_store_postgres::{hot_statements, read_statements, tokio_postgres::Client};
use common::Schema;

/// Sample arguments, as SQL literals, per statement.
fn args(name: &str) -> &'static str {
    match name {
        "fetch" | "fetch_notifying" => "('{q,other}', 1000, 30000, 'w', 'nonce-')",
        "complete_many" | "complete_many_brief" => {
            r#"('{57201,57202,3}', '{tok,tok,tok}', '{"57202": "1"}')"#
        }
        "promote" | "lease_expired" => "(1000)",
        "prune_finished" | "prune_dead" => "(86400000, 1000)",
        "release_next" => "('{q}', '{k}')",
        "queue_counts" => "('other')",
        "dead_of_queue" => "('other', NULL, NULL, 100)",
        list if list.ends_with("_before_tag") => "('other', 1000000, 'urgent', 50)",
        list if list.starts_with("list_") => "('other', 50)",
        _ => "",
    }
}

/// The indexes a statement may use; any one of them will do.
fn expected_indexes(name: &str) -> &'static [&'static str] {
    match name {
        "fetch" | "fetch_notifying" => &["buzzer_jobs_fetch"],
        // One look-up by id per job of the batch (see below).
        "complete_many" | "complete_many_brief" => &["buzzer_jobs_pkey"],
        "promote" | "next_due" => &["buzzer_jobs_due"],
        "prune_finished" => &["buzzer_jobs_prune_finished"],
        "prune_dead" => &["buzzer_jobs_prune_dead"],
        "release_next" => &["buzzer_jobs_ordering"],
        "lease_expired" | "next_lease_expiry" => &["buzzer_jobs_lease"],
        other => panic!("no expected index for {other}"),
    }
}

/// A migrated schema filled by [`production_like`], and a client whose search path is it.
/// The schema is dropped with the returned guard.
async fn production_schema() -> (Schema, Client) {
    let schema = Schema::create().await;
    drop(schema.store().await); // migrates
    let client = common::connect(&schema.url).await;
    client
        .batch_execute(&format!("SET search_path = {}", schema.name))
        .await
        .unwrap();
    production_like(&client).await;
    (schema, client)
}

/// 50,000 completed, 2,000 dead, 5,000 scheduled, 200 available (some keyed and blocked),
/// 100 running; then ANALYZE, as autovacuum would.
async fn production_like(client: &Client) {
    client
        .batch_execute(
            "INSERT INTO buzzer_queues (name, created_at) VALUES ('q', now()), ('other', now());
             INSERT INTO buzzer_jobs (queue, state, payload, priority, max_attempts,
                 backoff_initial_ms, backoff_max_ms, backoff_factor, created_at, scheduled_at,
                 started_at, finished_at, lease_expires_at, lease_token, ordering_key, blocked)
             SELECT 'q', s.state, '{}', 0, 3, 1000, 3600000, 2, now(),
                    now() + CASE WHEN s.state = 'scheduled' THEN interval '1 hour' ELSE '0' END,
                    now(), CASE WHEN s.state IN ('completed', 'dead') THEN now() END,
                    CASE WHEN s.state = 'running' THEN now() + interval '30 s' END,
                    CASE WHEN s.state = 'running' THEN 'tok' END,
                    CASE WHEN s.state = 'available' AND g % 4 = 0 THEN 'k' || (g % 10) END,
                    s.state = 'available' AND g % 8 = 0
             FROM (VALUES ('completed', 50000), ('dead', 2000), ('scheduled', 5000),
                          ('available', 200), ('running', 100)) AS s(state, n),
                  generate_series(1, s.n) AS g;
             ANALYZE buzzer_jobs; ANALYZE buzzer_queues;",
        )
        .await
        .unwrap();
}

async fn plan(client: &Client, name: &str, sql: &str, generic: bool) -> String {
    plan_with(client, name, sql, generic, args(name)).await
}

/// The plan of `sql` prepared as `hot` and executed with `args` (SQL literals in brackets).
async fn plan_with(client: &Client, name: &str, sql: &str, generic: bool, args: &str) -> String {
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = {mode}; DEALLOCATE ALL; PREPARE hot AS {sql}"
        ))
        .await
        .unwrap_or_else(|e| panic!("{name} does not prepare: {e:?}"));
    let rows = client
        .query(&format!("EXPLAIN EXECUTE hot{args}"), &[])
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hot_statement_uses_its_partial_index_and_never_scans_the_jobs() {
    require_postgres!();
    let (_schema, client) = production_schema().await;
    for (name, sql) in hot_statements() {
        for generic in [false, true] {
            let plan = plan(&client, name, sql, generic).await;
            let indexes = expected_indexes(name);
            assert!(
                indexes.iter().any(|index| plan.contains(index)),
                "{name} ({}) uses none of {indexes:?}:\n{plan}",
                if generic { "generic" } else { "custom" }
            );
            if std::env::var("SHOW_PLANS").is_ok() {
                eprintln!("--- {name} (generic: {generic})\n{plan}");
            }
            assert!(
                !plan.contains("Seq Scan on buzzer_jobs"),
                "{name} scans the jobs table:\n{plan}"
            );
            // Batch completions look each job up by id and update it by its address: a walk
            // of the running jobs (the lease index) reads the dead entries of every recent
            // completion.
            assert!(
                !name.starts_with("complete_many")
                    || (plan.contains("Index Cond: (id = u.id)")
                        && plan.contains("Tid Scan on buzzer_jobs j")
                        && !plan.contains("buzzer_jobs_lease")),
                "{name} ({}) does not look its jobs up by id:\n{plan}",
                if generic { "generic" } else { "custom" }
            );
            // The rows it locked, by their addresses, not found again by id.
            assert!(
                !name.starts_with("fetch") || plan.contains("Tid Scan on buzzer_jobs j"),
                "{name} looks its locked rows up again:\n{plan}"
            );
        }
    }
}

/// A young table has no statistics: PostgreSQL guesses that two of its jobs run, and for a large
/// batch a completion that joined the jobs with the batch scanned all 100,000 of them instead of
/// looking 1,000 up (60–260 ms an acknowledgement, the first burst of every fresh deployment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_completion_looks_its_jobs_up_on_a_table_without_statistics() {
    require_postgres!();
    let schema = Schema::create().await;
    drop(schema.store().await); // migrates
    let client = common::connect(&schema.url).await;
    client
        .batch_execute(&format!(
            "SET search_path = {};
             ALTER TABLE buzzer_jobs SET (autovacuum_enabled = off);
             INSERT INTO buzzer_queues (name, created_at) VALUES ('q', now());
             INSERT INTO buzzer_jobs (queue, state, payload, priority, max_attempts,
                 backoff_initial_ms, backoff_max_ms, backoff_factor, created_at, scheduled_at,
                 lease_expires_at, lease_token)
             SELECT 'q', CASE WHEN g <= 2000 THEN 'running' ELSE 'available' END, '{{}}', 0, 3,
                    1000, 3600000, 2, now(), now(),
                    CASE WHEN g <= 2000 THEN now() + interval '30 s' END,
                    CASE WHEN g <= 2000 THEN 'tok' || g END
             FROM generate_series(1, 100000) AS g;",
            schema.name
        ))
        .await
        .unwrap();
    let analyzed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stats WHERE tablename = 'buzzer_jobs' \
             AND schemaname = current_schema()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(analyzed, 0, "the table must have no statistics yet");
    let ids = (1..=1000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let tokens = (1..=1000)
        .map(|i| format!("tok{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let args = format!("('{{{ids}}}', '{{{tokens}}}', '{{}}')");
    for (name, sql) in hot_statements() {
        if !name.starts_with("complete_many") {
            continue;
        }
        for generic in [false, true] {
            let plan = plan_with(&client, name, sql, generic, &args).await;
            assert!(
                plan.contains("Index Cond: (id = u.id)")
                    && plan.contains("Tid Scan on buzzer_jobs j")
                    && !plan.contains("Seq Scan on buzzer_jobs"),
                "{name} (generic: {generic}) does not look its jobs up by id:\n{plan}"
            );
        }
    }
}

/// The indexes an operator's read may use: all of one of these sets. The partial indexes
/// leave a queue's jobs of each state in exactly one index (migrations/0005), so a plan that
/// reads none of them reads the table.
fn read_indexes(name: &str) -> &'static [&'static [&'static str]] {
    match name {
        "queue_counts" => &[&[
            "buzzer_jobs_queue_state",
            "buzzer_jobs_fetch",
            "buzzer_jobs_lease",
        ]],
        // Or every dead job, oldest first, when the planner cannot tell the queue is small.
        "dead_of_queue" => &[&["buzzer_jobs_queue_state"], &["buzzer_jobs_prune_dead"]],
        list if list.starts_with("list_available") => {
            &[&["buzzer_jobs_fetch", "buzzer_jobs_queue_state"]]
        }
        list if list.starts_with("list_running") => &[&["buzzer_jobs_lease"]],
        list if list.starts_with("list_") => &[&["buzzer_jobs_queue_state"]],
        other => panic!("no expected index for {other}"),
    }
}

/// A queue's counts, its dead jobs and its lists by state keep an index path now that the hot
/// states are in `buzzer_jobs_queue_state` no more: a plan that walks the primary key from the
/// newest job, or scans, reads every job of the table for a queue that has none in the state.
/// The queue read is a small one (a few jobs in each state) beside the big one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operator_read_walks_the_indexes_of_its_states() {
    require_postgres!();
    let (_schema, client) = production_schema().await;
    client
        .batch_execute(
            "INSERT INTO buzzer_jobs (queue, state, payload, priority, max_attempts,
                 backoff_initial_ms, backoff_max_ms, backoff_factor, created_at, scheduled_at,
                 lease_expires_at, lease_token, ordering_key, blocked, tags)
             SELECT 'other', s.state, '{}', 0, 3, 1000, 3600000, 2, now(), now(),
                    CASE WHEN s.state = 'running' THEN now() + interval '30 s' END,
                    CASE WHEN s.state = 'running' THEN 'tok' END,
                    CASE WHEN g % 2 = 0 THEN 'k' END, s.state = 'available' AND g % 4 = 0,
                    '{urgent}'
             FROM unnest('{scheduled,available,running,retryable,completed,dead,cancelled}'::text[])
                  AS s(state),
                  generate_series(1, 20) AS g;
             ANALYZE buzzer_jobs;",
        )
        .await
        .unwrap();
    for (name, sql) in read_statements() {
        for generic in [false, true] {
            if generic && name != "dead_of_queue" {
                // Sent unnamed: always planned for its own queue.
                continue;
            }
            let plan = plan(&client, &name, &sql, generic).await;
            if std::env::var("SHOW_PLANS").is_ok() {
                eprintln!("--- {name} (generic: {generic})\n{plan}");
            }
            let sets = read_indexes(&name);
            assert!(
                sets.iter()
                    .any(|set| set.iter().all(|index| plan.contains(index))),
                "{name} ({}) uses none of {sets:?}:\n{plan}",
                if generic { "generic" } else { "custom" }
            );
            assert!(
                !plan.contains("Seq Scan on buzzer_jobs"),
                "{name} reads the jobs table:\n{plan}"
            );
        }
    }
}

//! The hot queries use the partial indexes they were written for. A partial index is used
//! only when the query repeats its WHERE terms exactly, so a harmless-looking edit to either
//! side silently turns a seek into a scan; these tests catch that.

use buzzer_store::{JobFetch, Store};
use buzzer_types::RawValue;
use rusqlite::{Connection, StatementStatus};

use super::{fetch, maintain, operator, ordering, read, rows};
use crate::queues;

fn migrated() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::migrate::migrate(&mut conn, &mut |_| {}).unwrap();
    conn
}

fn plan(conn: &Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let count = stmt.parameter_count();
    let params: Vec<i64> = vec![0; count];
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows.join("\n")
}

fn assert_uses(sql: &str, index: &str) {
    let conn = migrated();
    let plan = plan(&conn, sql);
    assert!(
        plan.contains(index),
        "expected {index} in the plan of\n{sql}\n---\n{plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE"),
        "the query sorts instead of walking the index:\n{sql}\n---\n{plan}"
    );
}

#[test]
fn fetch_walks_the_fetch_index_without_sorting() {
    assert_uses(fetch::BEST, "INDEX jobs_fetch (queue=?)");
    assert_uses(fetch::HAS_WORK, "INDEX jobs_fetch (queue=?)");
    assert_uses(fetch::CANDIDATES, "INDEX jobs_fetch (queue=?)");
    assert_uses(fetch::LEASE_BEST, "INDEX jobs_fetch (queue=?)");
}

#[test]
fn promotion_and_next_due_use_the_due_index() {
    assert_uses(maintain::PROMOTE, "jobs_due");
    assert_uses(read::NEXT_DUE, "jobs_due");
}

#[test]
fn the_rescuer_uses_the_lease_index() {
    assert_uses(read::LEASE_EXPIRED, "jobs_lease");
    assert_uses(read::NEXT_LEASE_EXPIRY, "jobs_lease");
}

#[test]
fn ordering_checks_use_the_ordering_index() {
    assert_uses(ordering::ANY_UNFINISHED, "jobs_ordering");
    assert_uses(ordering::HAS_HEAD, "jobs_ordering");
    assert_uses(ordering::HEAD, "jobs_ordering");
    assert_uses(ordering::RELEASE_NEXT, "jobs_ordering");
}

#[test]
fn pruning_uses_the_retention_indexes() {
    assert_uses(maintain::PRUNE_FINISHED, "jobs_prune_finished");
    assert_uses(maintain::PRUNE_DEAD, "jobs_prune_dead");
}

#[test]
fn counts_read_only_their_indexes() {
    assert_uses(
        queues::COUNT_RESTING,
        "COVERING INDEX jobs_resting (queue=? AND state=?)",
    );
    assert_uses(queues::COUNT_RUNNING, "COVERING INDEX jobs_lease");
    assert_uses(
        queues::AVAILABLE_FETCHABLE,
        "COVERING INDEX jobs_fetch (queue=?)",
    );
    assert_uses(queues::AVAILABLE_BLOCKED, "INDEX jobs_ordering (queue=?");
}

#[test]
fn dead_jobs_of_a_queue_are_an_index_walk() {
    assert_uses(
        operator::DEAD_OF_QUEUE,
        "INDEX jobs_resting (queue=? AND state=?)",
    );
}

/// The full job joins a body to each hot row by id: both sides by rowid, never a scan.
#[test]
fn jobs_are_read_back_by_rowid() {
    let conn = migrated();
    for sql in [rows::BY_IDS, rows::BY_ID] {
        let plan = plan(&conn, sql);
        for table in ["j", "b"] {
            let seek = format!("SEARCH {table} USING INTEGER PRIMARY KEY (rowid=?)");
            assert!(plan.lines().any(|l| l == seek), "{sql}\n---\n{plan}");
        }
    }
}

#[test]
fn batch_lease_and_complete_look_jobs_up_by_id() {
    // The join must drive from the small JSON list into the jobs table by rowid; the other
    // way round would scan every job for each batch.
    assert_uses(fetch::LEASE, "USING INTEGER PRIMARY KEY (rowid=?)");
    assert_uses(fetch::LEASE_BEST, "USING INTEGER PRIMARY KEY (rowid=?)");
    assert_uses(
        super::complete::COMPLETE_BATCH,
        "USING INTEGER PRIMARY KEY (rowid=?)",
    );
    assert_uses(
        super::complete::SET_RESULTS,
        "USING INTEGER PRIMARY KEY (rowid=?)",
    );
    assert_uses(super::leased::BODIES, "USING INTEGER PRIMARY KEY (rowid=?)");
    assert_uses(super::leased::BODY, "USING INTEGER PRIMARY KEY (rowid=?)");
    assert_uses(
        super::complete::COMPLETE_ONE,
        "USING INTEGER PRIMARY KEY (rowid=?)",
    );
    assert_uses(fetch::LEASE_ONE, "USING INTEGER PRIMARY KEY (rowid=?)");
    assert_uses(fetch::LEASED_ROW, "USING INTEGER PRIMARY KEY (rowid=?)");
}

/// A fetch that finds one candidate, or wants one job, leases it by id; with more to lease
/// it runs the batch statement.
#[tokio::test]
async fn a_fetch_leases_by_id_when_one_job_is_all_it_can_take() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::SqliteStore::open(dir.path().join("b.db"), Default::default()).unwrap();
    let insert = |priority| buzzer_store::JobInsert {
        priority,
        ..buzzer_store_tests::job_insert("q", RawValue::from_string("1".into()).unwrap())
    };
    let fetch = |max_jobs| JobFetch {
        queues: vec!["q".into()],
        worker_id: "w".into(),
        max_jobs,
        lease_ms: 30_000,
    };
    let runs = || {
        store.write(|conn, _| {
            let by_id = conn.prepare_cached(fetch::LEASE_ONE)?;
            let best = conn.prepare_cached(fetch::LEASE_BEST)?;
            Ok((
                by_id.get_status(StatementStatus::Run),
                best.get_status(StatementStatus::Run),
            ))
        })
    };
    let ids = |jobs: Vec<buzzer_types::Job>| jobs.iter().map(|j| j.id.0).collect::<Vec<_>>();
    let inserted = store
        .job_insert_many(vec![insert(0), insert(5), insert(5), insert(0)])
        .await
        .unwrap();
    let id = |i: usize| inserted[i].job.id.0;
    // Room for one of four: the best, by id.
    assert_eq!(ids(store.job_fetch(fetch(1)).await.unwrap()), vec![id(1)]);
    assert_eq!(runs().await.unwrap(), (1, 0));
    // Room for two of three: the batch statement.
    assert_eq!(
        ids(store.job_fetch(fetch(2)).await.unwrap()),
        vec![id(2), id(0)]
    );
    assert_eq!(runs().await.unwrap(), (1, 1));
    // Room for ten, one left: by id.
    assert_eq!(ids(store.job_fetch(fetch(10)).await.unwrap()), vec![id(3)]);
    assert_eq!(runs().await.unwrap(), (2, 1));
    // None left: neither.
    assert!(store.job_fetch(fetch(10)).await.unwrap().is_empty());
    assert_eq!(runs().await.unwrap(), (2, 1));
}

/// A hand-off to a fetcher of an empty queue leases its own job by id and answers it from
/// what it wrote, without reading it back; with an older job waiting, the plain fetch runs
/// and takes both, best first (store-tests checks which job goes when there is room for one).
#[tokio::test]
async fn a_hand_off_leases_its_own_job_by_id_only_when_it_is_the_only_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::SqliteStore::open(dir.path().join("b.db"), Default::default()).unwrap();
    let insert = || buzzer_store_tests::job_insert("q", RawValue::from_string("1".into()).unwrap());
    let fetch = || JobFetch {
        queues: vec!["q".into()],
        worker_id: "w".into(),
        max_jobs: 2,
        lease_ms: 30_000,
    };
    let runs = || {
        store.write(|conn, _| {
            let run = |sql| {
                conn.prepare_cached(sql)
                    .map(|s| s.get_status(StatementStatus::Run))
            };
            Ok((
                run(fetch::LEASE_ONE)?,
                run(fetch::LEASED_ROW)?,
                run(fetch::LEASE_BEST)?,
            ))
        })
    };
    let done = store.job_insert_and_fetch(insert(), fetch()).await.unwrap();
    assert_eq!(done.fetched.len(), 1);
    assert_eq!(runs().await.unwrap(), (1, 0, 0));
    store.job_insert_many(vec![insert()]).await.unwrap();
    let done = store.job_insert_and_fetch(insert(), fetch()).await.unwrap();
    assert_eq!(done.fetched.len(), 2);
    assert_eq!(runs().await.unwrap(), (1, 0, 1));
}

/// The writer plans each statement once. Without the query planner stability guarantee, a new
/// `LIMIT` (a worker's free slots) re-prepared the batch fetch at its next step.
#[tokio::test]
async fn the_writer_does_not_replan_a_fetch_for_each_new_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::SqliteStore::open(dir.path().join("b.db"), Default::default()).unwrap();
    let jobs = (0..40)
        .map(|_| buzzer_store_tests::job_insert("q", RawValue::from_string("1".into()).unwrap()))
        .collect();
    store.job_insert_many(jobs).await.unwrap();
    for max_jobs in [1, 7, 3, 12] {
        let fetch = JobFetch {
            queues: vec!["q".into()],
            worker_id: "w".into(),
            max_jobs,
            lease_ms: 30_000,
        };
        assert_eq!(
            store.job_fetch(fetch).await.unwrap().len(),
            max_jobs as usize
        );
    }
    let replans = store
        .write(|conn, _| {
            Ok(conn
                .prepare_cached(fetch::LEASE_BEST)?
                .get_status(StatementStatus::RePrepare))
        })
        .await
        .unwrap();
    assert_eq!(replans, 0);
}

/// The writer's many-row statements cannot abort midway, so SQLite gives them no statement
/// journal (a copy of every page each one touches): no SQL function (SQLite assumes any call
/// may fail) and no constraint check that aborts rather than fails. See `fetch::lease_set`.
#[test]
fn many_row_writes_need_no_statement_journal() {
    let conn = migrated();
    for sql in [
        fetch::LEASE_BEST,
        fetch::LEASE,
        super::complete::COMPLETE_BATCH,
        super::complete::COMPLETE_ONE,
        super::complete::SET_RESULTS,
        fetch::LEASE_ONE,
    ] {
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
        let ops = stmt
            .query_map(rusqlite::params_from_iter(unbound), |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        for (opcode, p1, p2) in ops {
            assert!(
                !matches!(opcode.as_str(), "Function" | "PureFunc"),
                "{sql} calls a function"
            );
            // P1 is the error code, P2 the conflict action; 2 is ABORT.
            let aborts = matches!(opcode.as_str(), "Halt" | "HaltIfNull") && p1 != 0 && p2 == 2;
            assert!(!aborts, "{sql} has a constraint check that aborts");
        }
    }
}

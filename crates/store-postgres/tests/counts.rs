//! A queue's counts and lists come from three indexes since migrations/0005 (cold states and
//! blocked jobs, unblocked available jobs, running jobs): each job must be counted and listed
//! exactly once, whatever mix of state and `blocked` it has. Checked against the table itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use buzzer_store::{JobList, Store};
use buzzer_types::{JobId, JobState, StateCounts};
use common::Schema;

/// Every state, blocked and not, in two queues, ids interleaved; some available jobs due an
/// hour ago (the oldest), one blocked.
async fn every_mix(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "INSERT INTO buzzer_queues (name, created_at) VALUES ('q', now()), ('other', now());
             INSERT INTO buzzer_jobs (queue, state, payload, priority, max_attempts,
                 backoff_initial_ms, backoff_max_ms, backoff_factor, created_at, scheduled_at,
                 lease_expires_at, lease_token, ordering_key, blocked, tags)
             SELECT CASE WHEN g % 3 = 0 THEN 'other' ELSE 'q' END, s.state, '{}', g % 5 - 2, 3,
                    1000, 3600000, 2, now(), now() - make_interval(secs => g),
                    CASE WHEN s.state = 'running' THEN now() + interval '30 s' END,
                    CASE WHEN s.state = 'running' THEN 'tok' END,
                    CASE WHEN g % 2 = 0 THEN 'k' || g END, g % 4 = 0,
                    CASE WHEN g % 5 = 0 THEN '{urgent}'::text[] ELSE '{}' END
             FROM unnest('{scheduled,available,running,retryable,completed,dead,cancelled}'::text[])
                  AS s(state),
                  generate_series(1, 40) AS g
             ORDER BY g, s.state;
             UPDATE buzzer_jobs SET scheduled_at = now() - interval '1 hour'
              WHERE id = (SELECT max(id) FROM buzzer_jobs
                           WHERE queue = 'q' AND state = 'available' AND blocked);
             ANALYZE buzzer_jobs;",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_lists_name_every_job_once() {
    require_postgres!();
    let schema = Schema::create().await;
    let store = schema.store().await;
    let client = common::connect(&schema.url).await;
    client
        .batch_execute(&format!("SET search_path = {}", schema.name))
        .await
        .unwrap();
    every_mix(&client).await;

    for queue in ["q", "other"] {
        let mut expected = StateCounts::default();
        for row in client
            .query(
                "SELECT state, count(*) FROM buzzer_jobs WHERE queue = $1 GROUP BY state",
                &[&queue],
            )
            .await
            .unwrap()
        {
            let state: JobState = row.get::<_, &str>(0).parse().unwrap();
            *expected.get_mut(state) = u64::try_from(row.get::<_, i64>(1)).unwrap();
        }
        let info = store.queue_get(queue).await.unwrap().unwrap();
        assert_eq!(info.counts, expected, "counts of {queue}");
        let listed = store.queue_list().await.unwrap();
        let from_list = listed.iter().find(|q| q.name == queue).unwrap();
        assert_eq!(from_list.counts, expected, "counts of {queue} in the list");
        // The blocked job due an hour ago is the oldest available one.
        if queue == "q" {
            assert!(
                info.oldest_available_age_ms >= 3_600_000,
                "{}",
                info.oldest_available_age_ms
            );
        }

        for state in JobState::ALL {
            for tag in [None, Some("urgent")] {
                let ids = |rows: Vec<tokio_postgres::Row>| -> Vec<i64> {
                    rows.iter().map(|r| r.get(0)).collect()
                };
                let truth = ids(client
                    .query(
                        "SELECT id FROM buzzer_jobs WHERE queue = $1 AND state = $2 \
                         AND ($3::text IS NULL OR $3 = ANY(tags)) ORDER BY id DESC",
                        &[&queue, &state.as_str(), &tag],
                    )
                    .await
                    .unwrap());
                let list = |before: Option<i64>, limit: u32| JobList {
                    queue: Some(queue.into()),
                    state: Some(state),
                    tag: tag.map(str::to_owned),
                    before: before.map(JobId),
                    limit,
                };
                let all: Vec<i64> = store
                    .job_list(list(None, 1000))
                    .await
                    .unwrap()
                    .iter()
                    .map(|j| j.id.0)
                    .collect();
                assert_eq!(all, truth, "{queue} {state} {tag:?}");
                // Page by page, newest first, no job twice.
                let mut paged = Vec::new();
                let mut before = None;
                loop {
                    let page = store.job_list(list(before, 3)).await.unwrap();
                    let Some(last) = page.last() else { break };
                    before = Some(last.id.0);
                    paged.extend(page.iter().map(|j| j.id.0));
                }
                assert_eq!(paged, truth, "{queue} {state} {tag:?}, paged");
                assert_eq!(
                    paged.iter().collect::<BTreeSet<_>>().len(),
                    paged.len(),
                    "{queue} {state} {tag:?}"
                );
            }
        }
    }
}

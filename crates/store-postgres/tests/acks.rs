//! Acknowledgements answered from the batch completion's own columns
//! (`Store::job_finish_many_brief`), at the size workers send them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use buzzer_store::{Finished, JobFinish, JobInsert, Store, StoreError, Transition};
use buzzer_types::{JobState, RawValue};
use common::Schema;

/// A full batch of completions, one of them under a stale token and one named twice: every
/// answer is where the stored job ended up, the results are stored byte for byte, and only
/// the stale item fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_completions_answers_each_with_where_its_job_ended_up() {
    require_postgres!();
    let schema = Schema::create().await;
    let store = schema.store().await;
    let jobs: Vec<JobInsert> = (0..256).map(|_| common::job("q")).collect();
    store.job_insert_many(jobs).await.unwrap();
    let leased = store.job_fetch(common::fetch(&["q"], 256)).await.unwrap();
    assert_eq!(leased.len(), 256);

    let mut finishes: Vec<JobFinish> = leased
        .iter()
        .map(|job| JobFinish {
            id: job.id,
            lease_token: job.lease_token.clone().unwrap(),
            transition: Transition::Complete {
                result: (job.id.0 % 2 == 0)
                    .then(|| RawValue::from_string(format!("{{\"n\":  {}}}", job.id.0)).unwrap()),
            },
            require_lease_expired: false,
        })
        .collect();
    finishes[7].lease_token = "stale".into();
    finishes.push(finishes[3].clone());
    let answers = store.job_finish_many_brief(finishes).await.unwrap();
    assert_eq!(answers.len(), 257);

    for (i, (job, answer)) in leased.iter().zip(&answers).enumerate() {
        let stored = store.job_get(job.id).await.unwrap().unwrap();
        if i == 7 {
            assert!(matches!(answer, Err(StoreError::LeaseLost)), "{answer:?}");
            assert_eq!(stored.state, JobState::Running);
            continue;
        }
        assert_eq!(
            answer.as_ref().ok(),
            Some(&Finished::of(&stored)),
            "item {i}"
        );
        assert_eq!(stored.state, JobState::Completed);
        let expected = (job.id.0 % 2 == 0).then(|| format!("{{\"n\":  {}}}", job.id.0));
        assert_eq!(stored.result.map(|r| r.get().to_owned()), expected);
    }
    assert!(
        matches!(answers[256], Err(StoreError::LeaseLost)),
        "the second mention finds the job completed: {:?}",
        answers[256]
    );
}

/// A job changed by another transaction while a batch completion waits for its row (a
/// heartbeat, say) is completed all the same, with its result: the batch statement reaches
/// rows by the addresses its snapshot saw, skips the new version, and the transaction path
/// completes it under the same guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_changed_while_its_completion_waits_for_the_row_is_completed_all_the_same() {
    require_postgres!();
    let schema = Schema::create().await;
    let store = std::sync::Arc::new(schema.store().await);
    store
        .job_insert_many((0..3).map(|_| common::job("q")).collect())
        .await
        .unwrap();
    let leased = store.job_fetch(common::fetch(&["q"], 3)).await.unwrap();
    assert_eq!(leased.len(), 3);
    let changed = leased[1].id;

    let blocker = common::connect(&schema.url).await;
    blocker
        .batch_execute(&format!(
            "SET search_path = {}; BEGIN; \
             UPDATE buzzer_jobs SET progress = '{{\"done\": 1}}' WHERE id = {}",
            schema.name, changed.0
        ))
        .await
        .unwrap();

    let finishes: Vec<JobFinish> = leased
        .iter()
        .map(|job| JobFinish {
            id: job.id,
            lease_token: job.lease_token.clone().unwrap(),
            transition: Transition::Complete {
                result: Some(RawValue::from_string(format!("{}", job.id.0)).unwrap()),
            },
            require_lease_expired: false,
        })
        .collect();
    let completing = tokio::spawn({
        let store = store.clone();
        async move { store.job_finish_many_brief(finishes).await }
    });
    // The completion has taken its snapshot and waits for the blocker's row lock.
    let mut waited = 0;
    loop {
        let blocked: i64 = blocker
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if blocked > 0 {
            break;
        }
        waited += 1;
        assert!(waited < 500, "the completion never waited for the row");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    blocker.batch_execute("COMMIT").await.unwrap();

    let answers = completing.await.unwrap().unwrap();
    for (job, answer) in leased.iter().zip(&answers) {
        let stored = store.job_get(job.id).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Completed, "job {}", job.id.0);
        assert_eq!(answer.as_ref().ok(), Some(&Finished::of(&stored)));
        assert_eq!(
            stored.result.map(|r| r.get().to_owned()),
            Some(job.id.0.to_string())
        );
    }
    let progress = store.job_get(changed).await.unwrap().unwrap().progress;
    assert_eq!(
        progress.map(|p| p.get().to_owned()).as_deref(),
        Some(r#"{"done": 1}"#)
    );
}

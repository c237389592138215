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

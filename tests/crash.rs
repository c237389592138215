//! At-least-once with real processes: `kill -9` the server and check that nothing it
//! acknowledged is lost, and that a lease held when it died is rescued after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Server, all_ids, enqueue, get, http, post};
use serde_json::json;

/// Producers hammering the server while it is killed.
const PRODUCERS: usize = 8;
const LOAD: Duration = Duration::from_millis(1500);

/// Posts `{"payload": {"producer": p, "n": n}}` to `url` for n = 0, 1, … until the server is
/// gone, and keeps what `keep` takes from each answer. A request that got no answer was never
/// acknowledged, so it may be lost.
fn produce<T: Send + 'static>(
    url: String,
    p: usize,
    kept: Arc<Mutex<Vec<T>>>,
    keep: fn(u16, serde_json::Value) -> Option<T>,
) -> tokio::task::JoinHandle<()> {
    produce_bodies(
        url,
        p,
        kept,
        |p, n| json!({"payload": {"producer": p, "n": n}}),
        keep,
    )
}

/// [`produce`], with the body of request `n` of producer `p` from `body`.
fn produce_bodies<T: Send + 'static>(
    url: String,
    p: usize,
    kept: Arc<Mutex<Vec<T>>>,
    body: fn(usize, usize) -> serde_json::Value,
    keep: fn(u16, serde_json::Value) -> Option<T>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = http(None);
        for n in 0.. {
            let body = body(p, n);
            let Ok(resp) = http.post(&url).json(&body).send().await else {
                break;
            };
            let status = resp.status().as_u16();
            let Ok(text) = resp.text().await else { break };
            let answer = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
            if let Some(k) = keep(status, answer) {
                kept.lock().unwrap().push(k);
            }
        }
    })
}

/// Restarts the server on `db` and checks that every job in `acked` is stored in queue
/// `crash`; answers how many jobs are stored.
async fn assert_all_stored_after_restart(db: &std::path::Path, acked: &[String]) -> usize {
    let server = Server::start(db);
    let stored: HashSet<String> = all_ids(&http(None), &server.url, "crash")
        .await
        .into_iter()
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged jobs are gone after kill -9, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    stored.len()
}

/// Jobs per batch, and the padding of each: a batch writes some 60 pages, so its WAL is
/// checkpointed by the store's checkpoint thread, beside the writer.
const BATCH: usize = 100;
const PAD: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_batch_load_with_background_checkpoints_loses_no_acknowledged_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut server = Server::start(&db);
    let acked = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));

    let batch = |p: usize, n: usize| {
        let pad = "x".repeat(PAD);
        let jobs: Vec<_> = (0..BATCH)
            .map(|i| json!({"payload": {"producer": p, "n": n, "i": i, "pad": pad}}))
            .collect();
        json!({ "jobs": jobs })
    };
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = format!("{}/v1/queues/crash/jobs/batch", server.url);
            produce_bodies(url, p, Arc::clone(&acked), batch, |status, answer| {
                (status == 201).then(|| {
                    answer["jobs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|job| job["id"].as_str().unwrap().to_owned())
                        .collect()
                })
            })
        })
        .collect();
    // Checkpoints are what copies the WAL into the database file: it grows only once they
    // run, beside the writer, which goes on committing. Killed as soon as they have and ten
    // batches have been acknowledged (the file can pass 4 MiB a few answers earlier).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&db).unwrap().len() < 4 << 20 || acked.lock().unwrap().len() < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint ran under load (the database file stayed under 4 MiB), or fewer \
             than ten batches were acknowledged in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    for p in producers {
        p.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().iter().flatten().cloned().collect();
    assert!(
        acked.len() >= 10 * BATCH,
        "only {} jobs were acknowledged under load; the test proves little",
        acked.len()
    );

    assert_all_stored_after_restart(&db, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_enqueue_load_loses_no_acknowledged_job() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut server = Server::start(&db);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = format!("{}/v1/queues/crash/jobs", server.url);
            produce(url, p, Arc::clone(&acked), |status, job| {
                (status == 201).then(|| job["id"].as_str().unwrap().to_owned())
            })
        })
        .collect();
    tokio::time::sleep(LOAD).await;
    // Mid-load: requests are in flight in the writer's queue and on the wire.
    server.kill();
    for p in producers {
        p.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "only {} jobs were acknowledged under load; the test proves little",
        acked.len()
    );

    let stored = assert_all_stored_after_restart(&db, &acked).await;
    eprintln!(
        "kill -9 under load: {} acknowledged, {} stored (the rest were in flight)",
        acked.len(),
        stored
    );
}

#[tokio::test]
async fn a_lease_held_when_the_server_dies_is_rescued_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut server = Server::start(&db);
    let http = http(None);
    // A tiny backoff, so the retry after the lease expiry is due at once.
    let id = enqueue(
        &http,
        &server.url,
        "work",
        json!({"payload": {"task": 1}, "backoff": {"initial_ms": 10, "max_ms": 10}}),
    )
    .await;
    let fetch = json!({"queues": ["work"], "worker_id": "w1", "lease_ms": 1000});
    let (status, first) = post(&http, &format!("{}/v1/fetch", server.url), fetch).await;
    assert_eq!(status, 200, "{first}");
    let old_token = first["jobs"][0]["lease_token"].as_str().unwrap().to_owned();
    assert_eq!(first["jobs"][0]["id"], id.as_str());

    // The worker's server dies while it holds the lease.
    server.kill();
    let server = Server::start(&db);
    let (_, job) = get(&http, &format!("{}/v1/jobs/{id}", server.url)).await;
    assert_eq!(job["attempt"], 1, "the fetch survived the restart: {job}");

    // The rescuer notices the expired lease (within a second), the backoff is 10 ms, and the
    // long-poll wakes as soon as the job is available again.
    let fetch = json!({"queues": ["work"], "worker_id": "w2", "lease_ms": 30000, "wait_ms": 10000});
    let (status, second) = post(&http, &format!("{}/v1/fetch", server.url), fetch).await;
    assert_eq!(status, 200, "{second}");
    let job = &second["jobs"][0];
    assert_eq!(job["id"], id.as_str(), "the job was not rescued: {second}");
    assert_eq!(job["attempt"], 2, "{job}");
    let message = job["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("lease"),
        "the lost attempt is recorded: {job}"
    );

    // The first worker's token is fenced off; the new one completes the job.
    let complete = |token: &str| json!({"lease_token": token, "result": {"ok": true}});
    let url = format!("{}/v1/jobs/{id}/complete", server.url);
    let (status, _) = post(&http, &url, complete(&old_token)).await;
    assert_eq!(status, 409);
    let new_token = job["lease_token"].as_str().unwrap();
    let (status, done) = post(&http, &url, complete(new_token)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "completed");
}

/// A hybrid call hands its job to a waiting worker before the enqueue is committed (its
/// transaction waits for the result) or on disk, and answers only once the enqueue (and, for a
/// 200, the result) is on disk: `kill -9` mid-load must lose no job a call answered, nor the
/// result of one answered as finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_hybrid_calls_loses_no_answered_job_or_result() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut server = Server::start(&db);
    // (id, answered finished)
    let answered = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));

    let worker = {
        let base = server.url.clone();
        tokio::spawn(async move {
            let http = http(None);
            let fetch =
                json!({"queues": ["hybrid"], "worker_id": "w", "max_jobs": 8, "wait_ms": 1000});
            loop {
                let Ok(resp) = http
                    .post(format!("{base}/v1/fetch"))
                    .json(&fetch)
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(body) = resp.json::<serde_json::Value>().await else {
                    break;
                };
                for job in body["jobs"].as_array().into_iter().flatten() {
                    let url = format!("{base}/v1/jobs/{}/complete", job["id"].as_str().unwrap());
                    let done = json!({"lease_token": job["lease_token"], "result": {"n": job["payload"]["n"]}});
                    if http.post(&url).json(&done).send().await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    let callers: Vec<_> = (0..4)
        .map(|p| {
            let url = format!("{}/v1/queues/hybrid/jobs?wait_ms=1000", server.url);
            produce(url, p, Arc::clone(&answered), |status, job| {
                matches!(status, 200 | 202).then(|| {
                    let id = job["id"].as_str().unwrap().to_owned();
                    (id, job["state"] == "completed")
                })
            })
        })
        .collect();
    tokio::time::sleep(LOAD).await;
    server.kill();
    for c in callers {
        c.await.unwrap();
    }
    worker.await.unwrap();
    let answered = answered.lock().unwrap().clone();
    let finished = answered.iter().filter(|(_, done)| *done).count();
    assert!(
        finished >= 20,
        "only {finished} of {} calls finished in time; the test proves little",
        answered.len()
    );

    let server = Server::start(&db);
    let http = http(None);
    let stored: HashSet<String> = all_ids(&http, &server.url, "hybrid")
        .await
        .into_iter()
        .collect();
    let lost: Vec<_> = answered
        .iter()
        .filter(|(id, _)| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered calls lost their job after kill -9, e.g. {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(5)]
    );
    for (id, _) in answered.iter().filter(|(_, done)| *done) {
        let (_, job) = get(&http, &format!("{}/v1/jobs/{id}", server.url)).await;
        assert_eq!(
            job["state"], "completed",
            "a result answered before kill -9 is gone: {job}"
        );
    }
    eprintln!(
        "kill -9 during hybrid calls: {} answered ({finished} finished), {} stored",
        answered.len(),
        stored.len()
    );
}

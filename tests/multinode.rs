//! Many nodes on one PostgreSQL database, with real processes: two `buzzer serve` over one
//! schema, worker processes spread across them, and a `kill -9` of the server that runs the
//! background services. Workers are this test binary started again (`worker_process`), each
//! writing every job it executed to a file, so executions are counted across processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod postgres_support;

use std::{
    collections::{HashMap, HashSet},
    fs::OpenOptions,
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{Server, get, http, post};
use postgres_support::Schema;
use serde_json::{Value, json};

const JOBS: usize = 10_000;
const QUEUE: &str = "mn";
const PATIENCE: Duration = Duration::from_secs(120);

/// A worker process: this binary running only `worker_process`.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    /// `servers`: the worker's own server first, then where it fails over to.
    fn start(dir: &Path, name: &str, servers: &[&str]) -> Worker {
        let log = dir.join(format!("{name}.executed"));
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "worker_process", "--ignored", "--nocapture"])
            .env("BUZZER_MN_SERVERS", servers.join(","))
            .env("BUZZER_MN_LOG", &log)
            .env("BUZZER_MN_STOP", dir.join("stop"))
            .env("BUZZER_MN_WORKER", name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .expect("start a worker process");
        Worker { child, log }
    }

    /// The ids this worker executed, once per execution.
    fn executed(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test: the worker side of the multinode tests, started by them as a process. Fetches
/// from its server (failing over to the next one when it cannot be reached), "works" 1 ms per
/// job, records each execution, acks in batches, until the stop file appears.
#[tokio::test]
#[ignore = "a worker process that the multinode tests start; does nothing on its own"]
async fn worker_process() {
    let Ok(servers) = std::env::var("BUZZER_MN_SERVERS") else {
        return;
    };
    let servers: Vec<String> = servers.split(',').map(str::to_owned).collect();
    let name = std::env::var("BUZZER_MN_WORKER").unwrap();
    let stop = PathBuf::from(std::env::var("BUZZER_MN_STOP").unwrap());
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::var("BUZZER_MN_LOG").unwrap())
        .unwrap();
    let http = http(None);
    let mut current = 0;
    // Never outlive a test that died without stopping us.
    let give_up = Instant::now() + Duration::from_secs(300);
    while !stop.exists() && Instant::now() < give_up {
        let fetch = json!({"queues": [QUEUE], "worker_id": name, "max_jobs": 50,
                           "lease_ms": 5_000, "wait_ms": 500});
        let jobs = match http
            .post(format!("{}/v1/fetch", servers[current]))
            .json(&fetch)
            .send()
            .await
        {
            Ok(resp) if resp.status() == 200 => match resp.json::<Value>().await {
                Ok(body) => body["jobs"].as_array().cloned().unwrap_or_default(),
                Err(_) => continue,
            },
            // 503 while the database is busy or away: try again shortly.
            Ok(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // The server is gone: fail over.
            Err(_) => {
                current = (current + 1) % servers.len();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if jobs.is_empty() {
            continue;
        }
        tokio::time::sleep(Duration::from_millis(jobs.len() as u64)).await;
        let mut ids = String::new();
        let acks: Vec<Value> = jobs
            .iter()
            .map(|j| {
                ids.push_str(j["id"].as_str().unwrap());
                ids.push('\n');
                json!({"id": j["id"], "lease_token": j["lease_token"], "result": {"by": name}})
            })
            .collect();
        log.write_all(ids.as_bytes()).unwrap();
        log.flush().unwrap();
        let body = json!({ "acks": acks });
        for _ in 0..100 {
            match http
                .post(format!("{}/v1/acks", servers[current]))
                .json(&body)
                .send()
                .await
            {
                Ok(resp) if resp.status() == 200 => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(_) => {
                    current = (current + 1) % servers.len();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Enqueues `JOBS` jobs in batches of 1,000, alternating between the servers.
async fn enqueue_load(servers: &[&Server]) -> HashSet<String> {
    let http = http(None);
    let mut ids = HashSet::new();
    for batch in 0..JOBS / 1_000 {
        let server = servers[batch % servers.len()];
        let jobs: Vec<Value> = (0..1_000)
            .map(|i| json!({"payload": {"n": batch * 1_000 + i}}))
            .collect();
        let (status, body) = post(
            &http,
            &format!("{}/v1/queues/{QUEUE}/jobs/batch", server.url),
            json!({ "jobs": jobs }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        for job in body["jobs"].as_array().unwrap() {
            ids.insert(job["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), JOBS);
    ids
}

async fn completed(server: &Server) -> u64 {
    let (status, q) = get(&http(None), &format!("{}/v1/queues/{QUEUE}", server.url)).await;
    assert_eq!(status, 200, "{q}");
    q["counts"]["completed"].as_u64().unwrap()
}

async fn wait_completed(server: &Server, expected: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let done = completed(server).await;
        if done >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {expected} completed after {PATIENCE:?}; server log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Executions per job id across the workers.
fn executions(workers: &[Worker]) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for w in workers {
        for id in w.executed() {
            *n.entry(id).or_default() += 1;
        }
    }
    n
}

/// Which node holds the services' leadership row.
async fn leader(schema: &Schema) -> Option<String> {
    let rows = schema
        .client()
        .await
        .query(
            "SELECT node_id FROM buzzer_leader WHERE name = 'services' AND expires_at > now()",
            &[],
        )
        .await
        .unwrap();
    rows.first().map(|r| r.get(0))
}

async fn wait_leader(schema: &Schema, not: Option<&str>, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        if let Some(l) = leader(schema).await
            && Some(l.as_str()) != not
        {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no (new) leader within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start_two(dir: &Path, schema: &Schema) -> (Server, Server) {
    let url = schema.url();
    let a = postgres_support::serve(dir, "a", &url, &["--node-id", "node-a"]);
    let b = postgres_support::serve(dir, "b", &url, &["--node-id", "node-b"]);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_two_workers_execute_10000_jobs_exactly_once() {
    require_postgres!();
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = start_two(dir.path(), &schema);
    let enqueued = enqueue_load(&[&a, &b]).await;
    let started = Instant::now();
    let workers = [
        Worker::start(dir.path(), "w1", &[&a.url, &b.url]),
        Worker::start(dir.path(), "w2", &[&b.url, &a.url]),
    ];
    wait_completed(&a, JOBS as u64).await;
    let took = started.elapsed();
    std::fs::write(dir.path().join("stop"), "").unwrap();

    let runs = executions(&workers);
    let ran: HashSet<String> = runs.keys().cloned().collect();
    assert_eq!(ran, enqueued, "every enqueued job ran, and nothing else");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "jobs executed more than once: {twice:?}");
    let per_worker: Vec<usize> = workers.iter().map(|w| w.executed().len()).collect();
    assert!(
        per_worker.iter().all(|n| *n > JOBS / 10),
        "both workers shared the work: {per_worker:?}"
    );
    assert_eq!(
        completed(&b).await,
        JOBS as u64,
        "both servers see one database"
    );
    eprintln!(
        "{JOBS} jobs through 2 servers and 2 workers in {took:?}, split {per_worker:?}, none twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leading_server_mid_run_loses_nothing_and_the_survivor_takes_over() {
    require_postgres!();
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = start_two(dir.path(), &schema);
    let leading = wait_leader(&schema, None, Duration::from_secs(30)).await;
    let (mut doomed, survivor) = if leading == "node-a" { (a, b) } else { (b, a) };
    let http = http(None);

    let enqueued = enqueue_load(&[&doomed, &survivor]).await;
    let workers = [
        Worker::start(dir.path(), "w1", &[&doomed.url, &survivor.url]),
        Worker::start(dir.path(), "w2", &[&survivor.url, &doomed.url]),
    ];
    let deadline = Instant::now() + PATIENCE;
    while completed(&survivor).await < (JOBS as u64) * 3 / 10 {
        assert!(Instant::now() < deadline, "the load does not progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Work that only the background services can finish, set up through the doomed leader:
    // a job due in 2 s (the scheduler must promote it) and a lease its holder abandons (the
    // rescuer must notice it expired).
    let (status, scheduled) = post(
        &http,
        &format!("{}/v1/queues/{QUEUE}/jobs", doomed.url),
        json!({"payload": {"scheduled": true}, "delay_ms": 2_000}),
    )
    .await;
    assert_eq!(status, 201, "{scheduled}");
    let (status, _) = post(
        &http,
        &format!("{}/v1/queues/abandoned/jobs", doomed.url),
        json!({"payload": {"abandoned": true}, "backoff": {"initial_ms": 1}}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, fetched) = post(
        &http,
        &format!("{}/v1/fetch", doomed.url),
        json!({"queues": ["abandoned"], "worker_id": "gone", "lease_ms": 1_500}),
    )
    .await;
    assert_eq!(status, 200);
    let abandoned = fetched["jobs"][0]["id"].as_str().unwrap().to_owned();

    let killed = Instant::now();
    doomed.kill();
    let progress_at_kill = completed(&survivor).await;

    // The survivor takes over the services within the leader ttl (5 s) plus a renewal.
    let new_leader = wait_leader(&schema, Some(&leading), Duration::from_secs(15)).await;
    let took_over = killed.elapsed();
    assert_ne!(new_leader, leading);
    wait_completed(&survivor, JOBS as u64 + 1).await;
    let (_, rescued) = post(
        &http,
        &format!("{}/v1/fetch", survivor.url),
        json!({"queues": ["abandoned"], "worker_id": "heir", "wait_ms": 30_000}),
    )
    .await;
    let rescued = &rescued["jobs"][0];
    assert_eq!(
        rescued["id"].as_str(),
        Some(abandoned.as_str()),
        "{rescued}"
    );
    assert_eq!(rescued["attempt"], 2, "{rescued}");
    assert_eq!(
        rescued["errors"][0]["message"], "lease expired",
        "{rescued}"
    );
    std::fs::write(dir.path().join("stop"), "").unwrap();

    // Every job completed; a job ran twice only if its lease was lost on the way.
    let (_, job) = get(
        &http,
        &format!(
            "{}/v1/jobs/{}",
            survivor.url,
            scheduled["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        job["state"], "completed",
        "the scheduled job was promoted: {job}"
    );
    let runs = executions(&workers);
    for id in &enqueued {
        assert!(runs.contains_key(id), "job {id} never ran");
    }
    let mut lost_leases = 0;
    for (id, n) in runs.iter().filter(|(_, n)| **n > 1) {
        let (_, job) = get(&http, &format!("{}/v1/jobs/{id}", survivor.url)).await;
        let lost = job["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == "lease expired");
        assert!(
            lost,
            "job {id} ran {n} times without losing its lease: {job}"
        );
        lost_leases += 1;
    }
    let counts = get(&http, &format!("{}/v1/queues/{QUEUE}", survivor.url))
        .await
        .1;
    assert_eq!(counts["counts"]["completed"], JOBS as u64 + 1, "{counts}");
    eprintln!(
        "killed {leading} at {progress_at_kill}/{JOBS} completed; {new_leader} took over the \
         services after {took_over:?}; {lost_leases} jobs ran twice after losing their lease"
    );
}

/// The hybrid call across nodes: enqueued with `Prefer: wait` on one server, completed through
/// the other, answered 200 with the result by the first; and an SSE stream on the first sees
/// the transitions made through the second, ending at the terminal state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_wait_and_an_event_stream_on_one_server_see_work_done_through_the_other() {
    require_postgres!();
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = start_two(dir.path(), &schema);
    let http = http(None);

    let waiting = {
        let (http, url) = (http.clone(), format!("{}/v1/queues/hybrid/jobs", a.url));
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .header("Prefer", "wait=20")
                .json(&json!({"payload": {"x": 1}}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    // The worker on the other server is woken by the enqueue's notification.
    let (status, fetched) = post(
        &http,
        &format!("{}/v1/fetch", b.url),
        json!({"queues": ["hybrid"], "worker_id": "w", "wait_ms": 10_000}),
    )
    .await;
    assert_eq!(status, 200);
    let job = &fetched["jobs"][0];
    let id = job["id"]
        .as_str()
        .expect("the worker got the job")
        .to_owned();
    let completed_at = Instant::now();
    let (status, _) = post(
        &http,
        &format!("{}/v1/jobs/{id}/complete", b.url),
        json!({"lease_token": job["lease_token"], "result": {"answer": 42}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, answer) = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap();
    let took = completed_at.elapsed();
    assert_eq!(status, 200, "answered now, not later: {answer}");
    assert_eq!(answer["state"], "completed");
    assert_eq!(answer["result"], json!({"answer": 42}));
    assert!(
        took < Duration::from_secs(1),
        "answered {took:?} after the completion"
    );

    // An event stream on A, the work through B.
    let (_, job) = post(
        &http,
        &format!("{}/v1/queues/hybrid/jobs", a.url),
        json!({"payload": {"x": 2}}),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let stream = {
        let (http, url) = (http.clone(), format!("{}/v1/jobs/{id}/events", a.url));
        tokio::spawn(async move { http.get(url).send().await.unwrap().text().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, fetched) = post(
        &http,
        &format!("{}/v1/fetch", b.url),
        json!({"queues": ["hybrid"], "worker_id": "w"}),
    )
    .await;
    let job = &fetched["jobs"][0];
    post(
        &http,
        &format!("{}/v1/jobs/{id}/complete", b.url),
        json!({"lease_token": job["lease_token"]}),
    )
    .await;
    let text = tokio::time::timeout(Duration::from_secs(10), stream)
        .await
        .expect("the stream ends at the terminal state")
        .unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event:"))
        .map(str::trim)
        .collect();
    // `running` is shown when this node reads the job before it completes; under load the
    // completion can win that race, and then the stream goes straight to `completed`.
    assert!(
        events == ["available", "running", "completed"] || events == ["available", "completed"],
        "{text}"
    );
}

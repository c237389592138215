//! Two nodes on one database, in one process: two stores (each with its own pool and change
//! listener) under two engines, sharing a schema. What one node changes wakes the other's
//! waiters through LISTEN/NOTIFY, and exactly one of them runs the background services.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use buzzer_engine::{Engine, EngineConfig, ServiceEvent, Services};
use buzzer_store::{Change, Store};
use buzzer_types::{CompleteRequest, EnqueueRequest, FetchRequest, Job, JobState, RawValue};
use common::Schema;
use tokio::{sync::broadcast, time::Instant};

/// A waiter woken by a notification answers well within this; polling would take a second.
const PROMPT: Duration = Duration::from_millis(500);
const PATIENCE: Duration = Duration::from_secs(10);

struct Node {
    engine: Engine,
    services: Option<Services>,
}

impl Node {
    /// Services with a 30 s idle sleep, so anything prompt was woken on purpose.
    async fn start(schema: &Schema, name: &str, leader_ttl: Duration) -> Node {
        let store: Arc<dyn Store> = Arc::new(schema.store().await);
        let engine = Engine::new(
            store,
            EngineConfig {
                max_idle: Duration::from_secs(30),
                node_id: name.into(),
                leader_ttl,
                ..EngineConfig::default()
            },
        );
        let services = Some(engine.start_services());
        Node { engine, services }
    }

    async fn stop(mut self) {
        self.engine.shutdown();
        if let Some(s) = self.services.take() {
            s.join().await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.engine.shutdown();
    }
}

async fn two_nodes(schema: &Schema) -> (Node, Node) {
    let a = Node::start(schema, "node-a", Duration::from_secs(5)).await;
    let b = Node::start(schema, "node-b", Duration::from_secs(5)).await;
    (a, b)
}

fn req(payload: &str) -> EnqueueRequest {
    EnqueueRequest::new(RawValue::from_string(payload.into()).unwrap())
}

fn fetch_req(queue: &str, wait_ms: u64) -> FetchRequest {
    FetchRequest {
        queues: vec![queue.into()],
        worker_id: "w".into(),
        max_jobs: Some(1),
        lease_ms: None,
        wait_ms: Some(wait_ms),
        brief: false,
    }
}

async fn fetch_one(engine: &Engine, queue: &str) -> Job {
    let mut jobs = engine.fetch(fetch_req(queue, 0)).await.unwrap();
    assert_eq!(jobs.len(), 1, "one job to fetch from {queue}");
    jobs.pop().unwrap()
}

async fn complete(engine: &Engine, job: &Job) -> Job {
    let req = CompleteRequest {
        lease_token: job.lease_token.clone().unwrap(),
        result: Some(RawValue::from_string(r#"{"ok":true}"#.into()).unwrap()),
    };
    engine.complete(job.id, req).await.unwrap()
}

/// Lets a spawned waiter find nothing and start waiting.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_on_one_node_wakes_for_an_enqueue_on_the_other() {
    require_postgres!();
    let schema = Schema::create().await;
    let (a, b) = two_nodes(&schema).await;
    let engine = a.engine.clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req("q", 10_000)).await });
    settle().await;
    let enqueued = Instant::now();
    let job = b.engine.enqueue("q", req("{}")).await.unwrap().job;
    let got = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let took = enqueued.elapsed();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job.id]);
    assert!(
        took < PROMPT,
        "woken {took:?} after the enqueue on the other node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_wait_on_one_node_answers_when_the_other_completes() {
    require_postgres!();
    let schema = Schema::create().await;
    let (a, b) = two_nodes(&schema).await;
    let job = a.engine.enqueue("q", req(r#"{"n":1}"#)).await.unwrap().job;
    let engine = a.engine.clone();
    let waiter = tokio::spawn(async move { engine.wait_terminal(job.id, PATIENCE).await });
    settle().await;
    let leased = fetch_one(&b.engine, "q").await;
    let completed = Instant::now();
    complete(&b.engine, &leased).await;
    let done = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let took = completed.elapsed();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.unwrap().get(), r#"{"ok":true}"#);
    assert!(
        took < PROMPT,
        "the wait answered {took:?} after the completion elsewhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_one_node_sees_every_transition_made_on_the_other() {
    require_postgres!();
    let schema = Schema::create().await;
    let (a, b) = two_nodes(&schema).await;
    let job = a.engine.enqueue("q", req("{}")).await.unwrap().job;
    let mut watch = a.engine.watch(job.id);
    let leased = fetch_one(&b.engine, "q").await;
    complete(&b.engine, &leased).await;
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while seen.last() != Some(&JobState::Completed) {
            match watch.changed().await {
                Some(snapshot) => {
                    assert!(
                        snapshot.lease_token.is_none(),
                        "watchers never see the token"
                    );
                    seen.push(snapshot.state);
                }
                None => seen.push(a.engine.get(job.id).await.unwrap().state),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the watch saw only {seen:?}"));
    assert_eq!(seen, vec![JobState::Running, JobState::Completed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordering_key_handed_over_on_one_node_wakes_a_fetcher_on_the_other() {
    require_postgres!();
    let schema = Schema::create().await;
    let (a, b) = two_nodes(&schema).await;
    let keyed = |n: u32| EnqueueRequest {
        ordering_key: Some("k".into()),
        ..req(&format!(r#"{{"n":{n}}}"#))
    };
    let first = b.engine.enqueue("q", keyed(1)).await.unwrap().job;
    let second = b.engine.enqueue("q", keyed(2)).await.unwrap().job;
    let head = fetch_one(&b.engine, "q").await;
    assert_eq!(head.id, first.id);
    let engine = a.engine.clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req("q", 10_000)).await });
    settle().await;
    assert!(!waiter.is_finished(), "the second job waits for the first");
    let completed = Instant::now();
    complete(&b.engine, &head).await;
    let got = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        got.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![second.id]
    );
    assert!(completed.elapsed() < PROMPT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_one_node_wakes_a_fetcher_on_the_other() {
    require_postgres!();
    let schema = Schema::create().await;
    let (a, b) = two_nodes(&schema).await;
    b.engine.enqueue("q", req("{}")).await.unwrap();
    b.engine.set_paused("q", true).await.unwrap();
    let engine = a.engine.clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req("q", 10_000)).await });
    settle().await;
    assert!(!waiter.is_finished(), "a paused queue hands nothing out");
    let resumed = Instant::now();
    b.engine.set_paused("q", false).await.unwrap();
    let got = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(resumed.elapsed() < PROMPT);
}

/// The feed carries the other node's changes and none of this node's own (its engine has
/// already seen those).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_carries_other_nodes_changes_only() {
    require_postgres!();
    let schema = Schema::create().await;
    let a = schema.store().await;
    let b = schema.store().await;
    let mut feed = a.change_feed().unwrap();
    a.job_insert_many(vec![common::job("mine")]).await.unwrap();
    let theirs = b
        .job_insert_many(vec![common::job("theirs")])
        .await
        .unwrap();
    let leased = b.job_fetch(common::fetch(&["theirs"], 1)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(next(&mut feed).await);
    }
    let id = theirs[0].job.id;
    assert_eq!(
        got,
        vec![
            Change::Job {
                id,
                queue: "theirs".into(),
                state: JobState::Available
            },
            Change::Job {
                id: leased[0].id,
                queue: "theirs".into(),
                state: JobState::Running
            },
        ]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), feed.recv())
            .await
            .is_err(),
        "nothing else arrives"
    );
}

/// A fetch's leases are announced after its commit (off the fetch's path); a store closed
/// right after the fetch still announces them before it lets its connections go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_announced_even_by_a_store_closed_right_after_the_fetch() {
    require_postgres!();
    let schema = Schema::create().await;
    let a = schema.store().await;
    let b = schema.store().await;
    let mut feed = a.change_feed().unwrap();
    b.job_insert_many((0..5).map(|_| common::job("q")).collect())
        .await
        .unwrap();
    let leased = b.job_fetch(common::fetch(&["q"], 5)).await.unwrap();
    b.close().await.unwrap();
    let mut heard = Vec::new();
    while heard.len() < leased.len() {
        match next(&mut feed).await {
            Change::Job {
                state: JobState::Available,
                ..
            } => {} // the insert
            change => heard.push(change),
        }
    }
    assert_eq!(
        heard,
        leased
            .iter()
            .map(|j| Change::Job {
                id: j.id,
                queue: "q".into(),
                state: JobState::Running
            })
            .collect::<Vec<_>>()
    );
}

async fn next(feed: &mut broadcast::Receiver<Change>) -> Change {
    tokio::time::timeout(PATIENCE, feed.recv())
        .await
        .expect("a change within the patience")
        .expect("the feed is open")
}

/// A job scheduled through a node that does not lead is promoted by the one that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_promotes_what_a_follower_scheduled_on_time() {
    require_postgres!();
    let schema = Schema::create().await;
    let (a, b) = two_nodes(&schema).await;
    let deadline = Instant::now() + PATIENCE;
    while a.engine.is_leader() == b.engine.is_leader() {
        assert!(Instant::now() < deadline, "no single leader emerged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let follower = if a.engine.is_leader() { &b } else { &a };
    let job = follower
        .engine
        .enqueue(
            "q",
            EnqueueRequest {
                delay_ms: Some(300),
                ..req("{}")
            },
        )
        .await
        .unwrap()
        .job;
    assert_eq!(job.state, JobState::Scheduled);
    let got = follower.engine.fetch(fetch_req("q", 10_000)).await.unwrap();
    assert_eq!(got.len(), 1);
    let late = got[0].started_at.unwrap().as_millisecond() - job.scheduled_at.as_millisecond();
    assert!(
        (0..1_000).contains(&late),
        "handed out {late} ms after its time (the leader was woken by the notification)"
    );
}

async fn leaders(nodes: &[&Node]) -> Vec<bool> {
    nodes.iter().map(|n| n.engine.is_leader()).collect()
}

/// Waits until exactly one node leads and returns its index.
async fn one_leader(nodes: &[&Node], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let l = leaders(nodes).await;
        if l.iter().filter(|x| **x).count() == 1 {
            return l.iter().position(|x| *x).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no single leader after {within:?}: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_two_nodes_leads_and_a_resignation_hands_over_at_once() {
    require_postgres!();
    let schema = Schema::create().await;
    // Long enough that a loaded machine never stalls a renewal past it (two leaders for a
    // moment would be legal then, and harmless: every service's write is guarded).
    let ttl = Duration::from_secs(3);
    let a = Node::start(&schema, "node-a", ttl).await;
    let b = Node::start(&schema, "node-b", ttl).await;
    let first = one_leader(&[&a, &b], PATIENCE).await;
    // It stays that way over several renewals.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(leaders(&[&a, &b]).await.iter().filter(|x| **x).count(), 1);
    }
    let (leader, other) = if first == 0 { (a, b) } else { (b, a) };
    let mut events = other.engine.service_events();
    let stopped = Instant::now();
    leader.stop().await;
    // The resignation frees the row; the other node takes it at its next attempt (a third of
    // the ttl), not after the ttl.
    tokio::time::timeout(ttl, async {
        while !matches!(events.recv().await, Ok(ServiceEvent::Leader(true))) {}
    })
    .await
    .expect("the other node leads within the ttl after a resignation");
    assert!(other.engine.is_leader());
    eprintln!("took over {:?} after the resignation", stopped.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_database_is_replaced_within_the_ttl() {
    require_postgres!();
    let schema = Schema::create().await;
    let ttl = Duration::from_millis(1_500);
    let a = Node::start(&schema, "node-a", ttl).await;
    let b = Node::start(&schema, "node-b", ttl).await;
    let first = one_leader(&[&a, &b], PATIENCE).await;
    let (leader, other) = if first == 0 { (&a, &b) } else { (&b, &a) };
    let mut events = other.engine.service_events();
    // Its store goes away under it (as if the node died or lost the network): no resignation.
    let lost = Instant::now();
    leader.engine.store().close().await.unwrap();
    tokio::time::timeout(ttl * 3, async {
        while !matches!(events.recv().await, Ok(ServiceEvent::Leader(true))) {}
    })
    .await
    .expect("the other node leads within the ttl (plus one renewal)");
    let took = lost.elapsed();
    // The row expires a ttl after the last renewal, and the other node looks every third.
    assert!(
        took <= ttl + ttl / 3 + Duration::from_secs(1),
        "took over after {took:?}"
    );
    // The node without its database no longer believes it leads.
    let deadline = Instant::now() + ttl;
    while leader.engine.is_leader() {
        assert!(
            Instant::now() < deadline,
            "the cut-off node still thinks it leads"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("took over {took:?} after the leader lost its database (ttl {ttl:?})");
}

//! `buzzer_notify`'s payloads, byte for byte: other nodes (perhaps of another Buzzer version)
//! decode them, so a faster path through the function must not change a character.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Schema;
use futures::future::poll_fn;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// A listening session on the schema's channel; its notifications' payloads arrive on the
/// receiver.
async fn listen(schema: &Schema) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) = tokio_postgres::connect(&schema.url, NoTls).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN \"buzzer_changes:{}\"", schema.name))
        .await
        .unwrap();
    (client, rx)
}

fn items(code: char, ids: std::ops::RangeInclusive<i64>) -> String {
    ids.map(|id| format!("{code}{id}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_are_per_queue_in_order_and_chunked_by_300() {
    require_postgres!();
    let schema = Schema::create().await;
    drop(schema.store().await); // migrates
    let (_listener, mut payloads) = listen(&schema).await;
    let client = common::connect(&schema.url).await;
    client
        .batch_execute(&format!("SET search_path = {}", schema.name))
        .await
        .unwrap();
    let notify = async |queues: Vec<&str>, states: Vec<&str>, ids: Vec<i64>, per_job: bool| {
        client
            .execute(
                "SELECT buzzer_notify($1::text[], $2::text[], $3::int8[], $4)",
                &[&queues, &states, &ids, &per_job],
            )
            .await
            .unwrap();
    };
    // One queue, 700 jobs: three payloads of 300, 300 and 100.
    let ids: Vec<i64> = (1..=700).collect();
    notify(vec!["q"; 700], vec!["completed"; 700], ids, true).await;
    // Two queues interleaved, states mixed.
    notify(
        vec!["a", "b", "a", "b"],
        vec!["available", "running", "dead", "retryable"],
        vec![11, 12, 13, 14],
        true,
    )
    .await;
    // Not per job: one job per queue and state.
    notify(
        vec!["a", "a", "a"],
        vec!["available", "available", "scheduled"],
        vec![21, 22, 23],
        false,
    )
    .await;
    let mut got = Vec::new();
    while got.len() < 6 {
        let payload = tokio::time::timeout(Duration::from_secs(5), payloads.recv())
            .await
            .expect("a notification")
            .unwrap();
        got.push(payload);
    }
    // The two queues' payloads come in no promised order, nor do a bulk payload's states.
    got[3..5].sort();
    let bulk = got.pop().unwrap();
    assert_eq!(
        got,
        vec![
            format!("- q {}", items('c', 1..=300)),
            format!("- q {}", items('c', 301..=600)),
            format!("- q {}", items('c', 601..=700)),
            "- a a11,d13".to_owned(),
            "- b r12,y14".to_owned(),
        ]
    );
    assert!(
        ["- a !a21,s23", "- a !s23,a21"].contains(&bulk.as_str()),
        "{bulk}"
    );
}

//! Every non-public address form is refused without `allow_private`, and reached with it.

use std::time::Duration;

use buzzer_types::JobState;
use buzzer_webhooks::WebhookConfig;

use crate::support::{Harness, Receiver, secret, target};

fn config(allow_private: bool) -> WebhookConfig {
    WebhookConfig {
        allow_private,
        attempt_timeout: Duration::from_millis(500),
        ..WebhookConfig::default()
    }
}

/// Loopback spelled every way a URL can spell it, all pointing at a live receiver.
fn loopback_forms(port: u16) -> Vec<String> {
    [
        "127.0.0.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "0177.0.0.1",
        "127.1",
        "[::ffff:7f00:1]",
        "[::ffff:127.0.0.1]",
        "localhost",
        "LocalHost",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/hook"))
    .collect()
}

/// Non-public addresses no test machine serves: refused at once without the flag, tried (and
/// failing to connect or timing out) with it.
const UNREACHABLE: &[&str] = &[
    "http://10.255.255.1:9/",
    "http://172.16.0.1:9/",
    "http://192.168.255.1:9/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1:9/",
    "http://[fe80::1]:9/",
    "http://[fd00::1]:9/",
    "http://[::ffff:10.0.0.1]:9/",
    "http://0.0.0.0:9/",
    "http://[::]:9/",
];

async fn attempt(h: &Harness, url: &str, n: usize) -> buzzer_types::Job {
    let name = format!("s{n}");
    h.subscribe("t", &name, target(url.to_owned(), secret(1)))
        .await;
    h.finished(&h.deliver("t", &name, "{}", 1).await).await
}

#[tokio::test]
async fn every_loopback_form_is_refused_without_the_flag() {
    let receiver = Receiver::start(vec![]).await;
    let h = Harness::start(config(false)).await;
    for (n, url) in loopback_forms(receiver.addr.port()).iter().enumerate() {
        let done = attempt(&h, url, n).await;
        assert_eq!(done.state, JobState::Dead, "{url}");
        let message = &done.errors[0].message;
        assert!(message.starts_with("refused: "), "{url}: {message}");
        assert!(message.contains("loopback"), "{url}: {message}");
        assert!(
            message.contains("--allow-private-webhooks"),
            "{url}: {message}"
        );
        assert!(done.errors[0].details["status"].is_null());
    }
    // A [::1] receiver, where the machine has IPv6 loopback.
    if let Ok(v6) = Receiver::bind("[::1]:0", vec![]).await {
        let url = format!("http://[::1]:{}/", v6.addr.port());
        let done = attempt(&h, &url, 100).await;
        assert!(
            done.errors[0].message.starts_with("refused: "),
            "{:?}",
            done.errors
        );
        assert!(v6.received().is_empty());
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    h.stop().await;
}

#[tokio::test]
async fn every_loopback_form_is_delivered_with_the_flag() {
    let receiver = Receiver::start(vec![]).await;
    let h = Harness::start(config(true)).await;
    let forms = loopback_forms(receiver.addr.port());
    for (n, url) in forms.iter().enumerate() {
        let done = attempt(&h, url, n).await;
        assert_eq!(done.state, JobState::Completed, "{url}: {:?}", done.errors);
    }
    assert_eq!(receiver.received().len(), forms.len());
    if let Ok(v6) = Receiver::bind("[::1]:0", vec![]).await {
        let url = format!("http://[::1]:{}/", v6.addr.port());
        assert_eq!(attempt(&h, &url, 100).await.state, JobState::Completed);
    }
    h.stop().await;
}

#[tokio::test]
async fn private_link_local_and_unique_local_addresses_are_refused_without_the_flag() {
    let h = Harness::start(config(false)).await;
    for (n, url) in UNREACHABLE.iter().enumerate() {
        let done = attempt(&h, url, n).await;
        let message = &done.errors[0].message;
        assert!(message.starts_with("refused: "), "{url}: {message}");
    }
    h.stop().await;
}

#[tokio::test]
async fn private_addresses_are_tried_with_the_flag() {
    let h = Harness::start(config(true)).await;
    for (n, url) in UNREACHABLE.iter().enumerate() {
        let done = attempt(&h, url, n).await;
        let message = &done.errors[0].message;
        assert!(!message.starts_with("refused: "), "{url}: {message}");
    }
    h.stop().await;
}

//! The dispatcher's settings and their defaults.

use std::time::Duration;

/// How the [`crate::WebhookDispatcher`] delivers.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Send to loopback, private and other non-public addresses too (tests, trusted
    /// networks). Default `false`.
    pub allow_private: bool,
    /// Deliveries in flight at once on this node. Default 16.
    pub concurrency: usize,
    /// One attempt's limit, from connecting until the answer's body excerpt is read; later,
    /// the attempt fails as a timeout. Default 10 s.
    pub attempt_timeout: Duration,
    /// Bytes of each answer's body kept on the job. Default 512.
    pub body_excerpt_bytes: usize,
    /// The longest `Retry-After` honoured; a longer one is cut to this. Default 24 h.
    pub max_retry_after: Duration,
    /// How long a fetch waits for deliveries before asking again. Default 30 s (the engine
    /// wakes it as soon as a delivery is enqueued).
    pub poll_wait: Duration,
    /// At shutdown, how long deliveries in flight may finish before they are cut off and
    /// their jobs handed back. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private: false,
            concurrency: 16,
            attempt_timeout: Duration::from_secs(10),
            body_excerpt_bytes: 512,
            max_retry_after: Duration::from_secs(24 * 3600),
            poll_wait: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl WebhookConfig {
    /// A lease outlives the attempt by a few seconds (for the store calls around it), so a
    /// slow answer is never mistaken for a dead dispatcher, while the deliveries of a node
    /// that crashed are retried soon.
    pub(crate) fn lease_ms(&self) -> u64 {
        let ms = self.attempt_timeout.as_millis() + 5_000;
        u64::try_from(ms).unwrap_or(u64::MAX).min(86_400_000)
    }
}

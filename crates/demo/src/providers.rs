//! The simulated third parties the shop depends on: each waits its latency (±20 %, so the
//! chart looks like real traffic) and then fails at its failure rate. The email provider also
//! has an outage switch and keeps the list of emails it delivered, which is how the demo (and
//! its tests) check that no confirmation was lost.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use jiff::Timestamp;
use rand::Rng;
use serde::Serialize;

/// How one provider behaves: its typical latency and how often it fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub latency: Duration,
    /// 0.0..=1.0.
    pub failure_rate: f64,
}

impl Behaviour {
    pub fn new(latency_ms: u64, failure_rate: f64) -> Behaviour {
        Behaviour {
            latency: Duration::from_millis(latency_ms),
            failure_rate,
        }
    }
}

/// Why a provider call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// The payment provider declined the card: a business answer, never retried.
    Declined,
    /// The provider answered with an error (or is down): worth retrying later.
    Failed {
        provider: &'static str,
        reason: String,
    },
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Declined => f.write_str("the card was declined"),
            ProviderError::Failed { provider, reason } => write!(f, "{provider}: {reason}"),
        }
    }
}

impl std::error::Error for ProviderError {}

/// One simulated provider with live counters.
#[derive(Debug)]
pub struct Provider {
    name: &'static str,
    latency_ms: AtomicU64,
    /// The failure rate in millionths, so it can change while requests run.
    failure_ppm: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    in_flight: AtomicU64,
}

/// What the page shows of a provider.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderStats {
    pub name: &'static str,
    pub latency_ms: u64,
    pub failure_rate: f64,
    pub calls: u64,
    pub failures: u64,
    pub in_flight: u64,
}

impl Provider {
    fn new(name: &'static str, behaviour: Behaviour) -> Provider {
        let provider = Provider {
            name,
            latency_ms: AtomicU64::new(0),
            failure_ppm: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        };
        provider.set(behaviour);
        provider
    }

    pub fn set(&self, behaviour: Behaviour) {
        let ms = u64::try_from(behaviour.latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(ms, Ordering::Relaxed);
        let ppm = (behaviour.failure_rate.clamp(0.0, 1.0) * 1e6).round() as u64;
        self.failure_ppm.store(ppm, Ordering::Relaxed);
    }

    pub fn behaviour(&self) -> Behaviour {
        Behaviour::new(
            self.latency_ms.load(Ordering::Relaxed),
            self.failure_ppm.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }

    pub fn stats(&self) -> ProviderStats {
        let behaviour = self.behaviour();
        ProviderStats {
            name: self.name,
            latency_ms: self.latency_ms.load(Ordering::Relaxed),
            failure_rate: behaviour.failure_rate,
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    /// Waits the provider's latency, then succeeds or fails at its rate. `down` makes it fail
    /// fast, the way a provider in an outage refuses connections.
    async fn serve(&self, down: bool) -> Result<(), ProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlight(&self.in_flight);
        let behaviour = self.behaviour();
        let (wait, fails) = {
            let mut rng = rand::rng();
            let jitter = rng.random_range(0.8..1.2);
            let fails = rng.random_bool(behaviour.failure_rate.clamp(0.0, 1.0));
            (behaviour.latency.mul_f64(jitter), fails)
        };
        if down {
            tokio::time::sleep(OUTAGE_LATENCY).await;
            self.failures.fetch_add(1, Ordering::Relaxed);
            return Err(self.failed("503 Service Unavailable (provider outage)"));
        }
        tokio::time::sleep(wait).await;
        if fails {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return Err(self.failed("500 Internal Server Error"));
        }
        Ok(())
    }

    fn failed(&self, reason: &str) -> ProviderError {
        ProviderError::Failed {
            provider: self.name,
            reason: reason.to_owned(),
        }
    }
}

/// A provider in an outage answers at once with an error, like a refused connection.
const OUTAGE_LATENCY: Duration = Duration::from_millis(20);

/// Decrements the in-flight gauge however the call ends (a cancelled request included).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every provider's behaviour, as the command line sets it.
#[derive(Debug, Clone, Copy)]
pub struct ProviderConfig {
    pub payment: Behaviour,
    pub inventory: Behaviour,
    pub email: Behaviour,
    pub invoice: Behaviour,
    pub analytics: Behaviour,
}

/// The providers one shop talks to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Providers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    payment: Provider,
    inventory: Provider,
    email: Provider,
    invoice: Provider,
    analytics: Provider,
    email_outage: AtomicBool,
    /// Order id → when its confirmation email was first delivered, and how many times.
    emails_sent: Mutex<HashMap<u64, (Timestamp, u32)>>,
}

impl Providers {
    pub fn new(config: ProviderConfig) -> Providers {
        Providers {
            inner: Arc::new(Inner {
                payment: Provider::new("payment", config.payment),
                inventory: Provider::new("inventory", config.inventory),
                email: Provider::new("email", config.email),
                invoice: Provider::new("invoice", config.invoice),
                analytics: Provider::new("analytics", config.analytics),
                email_outage: AtomicBool::new(false),
                emails_sent: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Charges the card; a failure here is a decline.
    pub async fn charge(&self) -> Result<(), ProviderError> {
        self.inner
            .payment
            .serve(false)
            .await
            .map_err(|_| ProviderError::Declined)
    }

    pub async fn reserve_stock(&self) -> Result<(), ProviderError> {
        self.inner.inventory.serve(false).await
    }

    /// Sends the confirmation of `order`; delivered emails are recorded.
    pub async fn send_email(&self, order: u64) -> Result<(), ProviderError> {
        let down = self.email_outage();
        self.inner.email.serve(down).await?;
        let mut sent = self
            .inner
            .emails_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sent.entry(order)
            .and_modify(|(_, n)| *n += 1)
            .or_insert((Timestamp::now(), 1));
        Ok(())
    }

    pub async fn render_invoice(&self) -> Result<(), ProviderError> {
        self.inner.invoice.serve(false).await
    }

    pub async fn track(&self) -> Result<(), ProviderError> {
        self.inner.analytics.serve(false).await
    }

    pub fn email_outage(&self) -> bool {
        self.inner.email_outage.load(Ordering::SeqCst)
    }

    pub fn set_email_outage(&self, down: bool) {
        self.inner.email_outage.store(down, Ordering::SeqCst);
    }

    /// The email provider, to change its latency or failure rate while the demo runs.
    pub fn email(&self) -> &Provider {
        &self.inner.email
    }

    /// When the confirmation of `order` was delivered, if it was.
    pub fn email_sent_at(&self, order: u64) -> Option<Timestamp> {
        self.inner
            .emails_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&order)
            .map(|(at, _)| *at)
    }

    /// How many distinct orders got their confirmation email.
    pub fn emails_delivered(&self) -> usize {
        self.inner
            .emails_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn stats(&self) -> Vec<ProviderStats> {
        let i = &self.inner;
        [&i.payment, &i.inventory, &i.email, &i.invoice, &i.analytics]
            .into_iter()
            .map(Provider::stats)
            .collect()
    }
}

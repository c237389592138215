//! The flags of `buzzer demo`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;

use crate::{
    app::DemoConfig,
    providers::{Behaviour, ProviderConfig},
    shop::RetryPolicy,
};

/// `buzzer demo [--report --orders N] [--email-ms 3000] …`
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address the demo page (and Buzzer's dashboard and API) listens on: loopback only, as
    /// nothing is protected by a key.
    #[arg(long, default_value = "127.0.0.1:2900", value_name = "ADDR")]
    pub listen: String,
    /// SQLite file for the demo's jobs (default: a temporary one, removed on exit).
    #[arg(long, value_name = "PATH")]
    pub database: Option<PathBuf>,
    /// Place orders in each mode, print the measured table and exit (no web page).
    #[arg(long)]
    pub report: bool,
    /// With --report: orders per mode.
    #[arg(long, default_value_t = 50, value_name = "N", requires = "report",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub orders: u32,
    /// With --report: orders in flight at once, like that many customers checking out.
    #[arg(long, default_value_t = 25, value_name = "N", requires = "report",
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub concurrency: u32,
    /// Start with the email provider down (the page has a switch for it).
    #[arg(long)]
    pub email_outage: bool,

    /// Payment provider latency.
    #[arg(
        long,
        default_value_t = 10,
        value_name = "MS",
        help_heading = "Providers"
    )]
    pub payment_ms: u64,
    /// Share of cards the payment provider declines (0..1).
    #[arg(long, default_value_t = 0.03, value_name = "RATE", value_parser = rate, help_heading = "Providers")]
    pub payment_decline_rate: f64,
    /// Inventory service latency.
    #[arg(
        long,
        default_value_t = 3,
        value_name = "MS",
        help_heading = "Providers"
    )]
    pub inventory_ms: u64,
    /// Share of inventory calls that fail (0..1).
    #[arg(long, default_value_t = 0.0, value_name = "RATE", value_parser = rate, help_heading = "Providers")]
    pub inventory_failure_rate: f64,
    /// Email provider latency: slow, as email providers are.
    #[arg(
        long,
        default_value_t = 3_000,
        value_name = "MS",
        help_heading = "Providers"
    )]
    pub email_ms: u64,
    /// Share of emails the provider fails to send (0..1).
    #[arg(long, default_value_t = 0.05, value_name = "RATE", value_parser = rate, help_heading = "Providers")]
    pub email_failure_rate: f64,
    /// Invoice PDF renderer latency.
    #[arg(
        long,
        default_value_t = 400,
        value_name = "MS",
        help_heading = "Providers"
    )]
    pub invoice_ms: u64,
    /// Share of invoice renders that fail (0..1).
    #[arg(long, default_value_t = 0.02, value_name = "RATE", value_parser = rate, help_heading = "Providers")]
    pub invoice_failure_rate: f64,
    /// Analytics collector latency.
    #[arg(
        long,
        default_value_t = 50,
        value_name = "MS",
        help_heading = "Providers"
    )]
    pub analytics_ms: u64,
    /// Share of analytics events that fail (0..1).
    #[arg(long, default_value_t = 0.02, value_name = "RATE", value_parser = rate, help_heading = "Providers")]
    pub analytics_failure_rate: f64,

    /// Hybrid mode: how long the checkout waits for the email before saying "on its way".
    #[arg(long, default_value_t = 300, value_name = "MS", help_heading = "Jobs")]
    pub hybrid_budget_ms: u64,
    /// Attempts each queued job gets before it lands in the dead-letter queue.
    #[arg(long, default_value_t = 10, value_name = "N", help_heading = "Jobs",
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub attempts: u32,
    /// First retry delay (full jitter, doubling each attempt).
    #[arg(
        long,
        default_value_t = 1_000,
        value_name = "MS",
        help_heading = "Jobs"
    )]
    pub backoff_ms: u64,
    /// Longest retry delay.
    #[arg(
        long,
        default_value_t = 30_000,
        value_name = "MS",
        help_heading = "Jobs"
    )]
    pub backoff_max_ms: u64,
    /// Jobs each queue (emails, invoices, analytics) runs at once.
    #[arg(long, default_value_t = 50, value_name = "N", help_heading = "Jobs",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub workers: u32,
}

fn rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

impl DemoArgs {
    pub fn config(&self) -> DemoConfig {
        DemoConfig {
            database: self.database.clone(),
            providers: ProviderConfig {
                payment: Behaviour::new(self.payment_ms, self.payment_decline_rate),
                inventory: Behaviour::new(self.inventory_ms, self.inventory_failure_rate),
                email: Behaviour::new(self.email_ms, self.email_failure_rate),
                invoice: Behaviour::new(self.invoice_ms, self.invoice_failure_rate),
                analytics: Behaviour::new(self.analytics_ms, self.analytics_failure_rate),
            },
            retry: RetryPolicy {
                attempts: self.attempts,
                backoff_initial: Duration::from_millis(self.backoff_ms.max(1)),
                backoff_max: Duration::from_millis(self.backoff_max_ms.max(self.backoff_ms).max(1)),
            },
            hybrid_budget: Duration::from_millis(self.hybrid_budget_ms),
            worker_concurrency: self.workers as usize,
        }
    }
}

/// Binds `listen`, refusing anything but loopback: the demo serves Buzzer's API and dashboard
/// without a key.
pub async fn bind_loopback(listen: &str) -> anyhow::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .with_context(|| format!("--listen {listen:?} is not HOST:PORT"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        anyhow::bail!(
            "--listen {listen}: the demo only listens on loopback (127.0.0.1 or ::1), as its API and dashboard have no key"
        );
    }
    TcpListener::bind(&addrs[..])
        .await
        .with_context(|| format!("cannot listen on {listen}"))
}

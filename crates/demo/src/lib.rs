//! `buzzer demo`: the e-commerce checkout, run three ways on the embedded Buzzer and measured.
//!
//! A shop (an axum app using the `buzzer` library) takes orders in three modes: *sync* calls
//! every provider inline, email included; *async* charges the card, checks stock and saves the
//! order inline and hands the email, invoice and analytics to Buzzer; *hybrid* is async, but
//! gives the email a budget to answer inline through `call(..).within(..)`. The providers are
//! simulated in-process with latencies and failure rates set by flags.
//!
//! `buzzer demo` serves the page at `/demo` (with Buzzer's dashboard and API on the same port);
//! `buzzer demo --report --orders N` places N orders per mode and prints the measured table.
//! See `docs/demo.md`.

mod app;
mod args;
mod jobs;
mod orders;
mod providers;
mod report;
mod shop;
mod snapshot;
mod web;

pub use app::{Demo, DemoConfig};
pub use args::DemoArgs;
pub use jobs::{QUEUES, RenderInvoice, SendConfirmation, TrackOrder};
pub use orders::{Email, Mode, ModeSummary, Order, Outcome, percentile};
pub use providers::{Behaviour, ProviderConfig, ProviderError, ProviderStats, Providers};
pub use report::{Background, ModeReport, Report};
pub use shop::{RetryPolicy, Shop};

use std::io::Write as _;

use anyhow::Context as _;
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

/// Runs `buzzer demo` with its flags: the report, or the page until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let config = args.config();
    if args.report {
        // A port of its own: a report can run beside a demo that is already serving.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let demo = Demo::start(config, listener).await?;
        let report = report::run(&demo, args.orders, args.concurrency).await;
        let stopped = demo.stop().await;
        let report = report?;
        stopped?;
        return print(&report.to_string());
    }

    let listener = args::bind_loopback(&args.listen).await?;
    let demo = Demo::start(config, listener).await?;
    if args.email_outage {
        demo.shop.providers.set_email_outage(true);
    }
    // The first line is the one `buzzer serve` prints, so scripts find the port the same way.
    print(&format!(
        "buzzer listening on http://{addr}\nopen the demo: {url}  (Buzzer's dashboard: http://{addr}/; Ctrl-C stops it)",
        addr = demo.addr,
        url = demo.url(),
    ))?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    demo.stop().await
}

/// One line (or block) on stdout; a closed pipe is an error, not a panic.
fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

//! `buzzer demo --report`: places orders in each mode over HTTP, times each one at the
//! client, and prints p50/p99, success rate and the speed-up over sync.

use std::{
    fmt,
    time::{Duration, Instant},
};

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    app::Demo,
    jobs::QUEUES,
    orders::{Mode, percentile},
};

/// The measured checkouts of one mode.
#[derive(Debug, Clone)]
pub struct ModeReport {
    pub mode: Mode,
    /// Each order's response time at the client, in milliseconds, sorted.
    pub times_ms: Vec<f64>,
    pub confirmed: u32,
    pub declined: u32,
    pub failed: u32,
}

impl ModeReport {
    pub fn p50(&self) -> Option<f64> {
        percentile(&self.times_ms, 0.50)
    }

    pub fn p99(&self) -> Option<f64> {
        percentile(&self.times_ms, 0.99)
    }

    pub fn success_rate(&self) -> f64 {
        f64::from(self.confirmed) / self.times_ms.len().max(1) as f64
    }
}

/// What the background jobs had done by the end of the report.
#[derive(Debug, Clone)]
pub struct Background {
    pub emails_queued: usize,
    pub emails_delivered: usize,
    pub emails_dead: u64,
    pub jobs_pending: u64,
    pub retries: u64,
    pub waited: Duration,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub orders: u32,
    pub concurrency: u32,
    pub modes: Vec<ModeReport>,
    pub background: Background,
}

impl Report {
    pub fn mode(&self, mode: Mode) -> Option<&ModeReport> {
        self.modes.iter().find(|m| m.mode == mode)
    }

    /// How many times faster `mode`'s median checkout is than sync's.
    pub fn speedup(&self, mode: Mode) -> Option<f64> {
        let sync = self.mode(Mode::Sync)?.p50()?;
        let this = self.mode(mode)?.p50()?;
        (this > 0.0).then(|| sync / this)
    }
}

/// How long the report waits for the queued work to finish after the last checkout.
const DRAIN_WAIT: Duration = Duration::from_secs(20);

pub async fn run(demo: &Demo, orders: u32, concurrency: u32) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()?;
    let mut modes = Vec::new();
    for mode in Mode::ALL {
        let url = format!("http://{}/demo/checkout/{}", demo.addr, mode.as_str());
        let bar = ProgressBar::new(u64::from(orders)).with_style(
            ProgressStyle::with_template("{prefix:>7} [{bar:40}] {pos}/{len} orders {elapsed}")?
                .progress_chars("=> "),
        );
        bar.set_prefix(mode.as_str());
        let results: Vec<anyhow::Result<(f64, u16)>> = futures::stream::iter(0..orders)
            .map(|_| {
                let (client, url, bar) = (client.clone(), url.clone(), bar.clone());
                async move {
                    let placed = place(&client, &url).await;
                    bar.inc(1);
                    placed
                }
            })
            .buffer_unordered(concurrency as usize)
            .collect()
            .await;
        bar.finish();
        let mut report = ModeReport {
            mode,
            times_ms: Vec::with_capacity(results.len()),
            confirmed: 0,
            declined: 0,
            failed: 0,
        };
        for result in results {
            let (ms, status) = result?;
            report.times_ms.push(ms);
            match status {
                200 => report.confirmed += 1,
                402 => report.declined += 1,
                _ => report.failed += 1,
            }
        }
        report.times_ms.sort_by(f64::total_cmp);
        modes.push(report);
    }
    let background = drain(demo).await?;
    Ok(Report {
        orders,
        concurrency,
        modes,
        background,
    })
}

/// One checkout, timed from sending the request to reading the whole answer.
async fn place(client: &reqwest::Client, url: &str) -> anyhow::Result<(f64, u16)> {
    let started = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?;
    let status = response.status().as_u16();
    response.bytes().await?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, status))
}

/// Waits (a while) for the emails, invoices and analytics events the checkouts queued.
async fn drain(demo: &Demo) -> anyhow::Result<Background> {
    let started = Instant::now();
    let engine = demo
        .shop
        .buzzer
        .engine()
        .ok_or_else(|| anyhow::anyhow!("the demo runs an embedded Buzzer"))?;
    let (pending, dead) = loop {
        let queues = engine.queues().await?;
        let ours = queues.iter().filter(|q| QUEUES.contains(&q.name.as_str()));
        let pending: u64 = ours
            .clone()
            .map(|q| {
                q.counts.available + q.counts.scheduled + q.counts.running + q.counts.retryable
            })
            .sum();
        let dead = queues
            .iter()
            .find(|q| q.name == QUEUES[0])
            .map_or(0, |q| q.counts.dead);
        if pending == 0 || started.elapsed() > DRAIN_WAIT {
            break (pending, dead);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let queued = demo.shop.orders.queued_emails();
    let delivered = queued
        .iter()
        .filter(|(order, _)| demo.shop.providers.email_sent_at(*order).is_some())
        .count();
    let retries = QUEUES
        .iter()
        .map(|q| engine.metrics().queue_totals(q).retried)
        .sum();
    Ok(Background {
        emails_queued: queued.len(),
        emails_delivered: delivered,
        emails_dead: dead,
        jobs_pending: pending,
        retries,
        waited: started.elapsed(),
    })
}

fn ms(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Checkout response times: {} orders per mode, {} in flight, timed at the client over HTTP",
            self.orders, self.concurrency
        )?;
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "mode",
            "orders",
            "p50",
            "p99",
            "success",
            "declined",
            "failed",
            "p50 vs sync",
        ]);
        for m in &self.modes {
            let speedup = match (m.mode, self.speedup(m.mode)) {
                (Mode::Sync, _) => "1×".to_owned(),
                (_, Some(x)) => format!("{x:.0}× faster"),
                (_, None) => "–".to_owned(),
            };
            let right = |text: String| Cell::new(text).set_alignment(CellAlignment::Right);
            table.add_row(vec![
                Cell::new(m.mode.as_str()),
                right(m.times_ms.len().to_string()),
                right(ms(m.p50())),
                right(ms(m.p99())),
                right(format!("{:.0} %", m.success_rate() * 100.0)),
                right(m.declined.to_string()),
                right(m.failed.to_string()),
                right(speedup),
            ]);
        }
        writeln!(f, "{table}")?;
        let b = &self.background;
        write!(
            f,
            "After the checkouts answered, the worker delivered {} of {} queued confirmation emails \
             in {:.1} s ({} failed attempts retried; {} emails in the DLQ; {} jobs still pending).",
            b.emails_delivered,
            b.emails_queued,
            b.waited.as_secs_f64(),
            b.retries,
            b.emails_dead,
            b.jobs_pending
        )
    }
}

//! The shop's own record of orders (its "database", kept in memory: the demo is about the
//! time a checkout takes, not about storing orders) and the response times per mode.

use std::{
    collections::VecDeque,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use buzzer::JobId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a checkout treats the slow work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Everything inline, email included.
    Sync,
    /// Payment, inventory and the order inline; email, invoice and analytics as jobs.
    Async,
    /// As async, but the email gets a short budget to answer inline.
    Hybrid,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Sync, Mode::Async, Mode::Hybrid];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
            Mode::Hybrid => "hybrid",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// How a checkout ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Outcome {
    Confirmed,
    Declined,
    Failed(String),
}

/// Where the order's confirmation email is, as the checkout left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "email", content = "job")]
pub enum Email {
    /// Sent inline, before the checkout answered.
    Sent,
    /// Handed to Buzzer as this job.
    Queued(JobId),
    /// Never sent (the checkout failed first).
    None,
}

/// One checkout, as the shop recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: u64,
    pub mode: Mode,
    pub placed_at: Timestamp,
    /// Time spent in the checkout handler, in milliseconds.
    pub server_ms: f64,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(flatten)]
    pub email: Email,
}

/// How many recent orders the page can list.
const KEPT: usize = 200;
/// How many response times per mode the percentiles look at.
const TIMES_KEPT: usize = 10_000;

#[derive(Debug, Default)]
pub struct OrderBook {
    next_id: AtomicU64,
    inner: Mutex<Book>,
}

#[derive(Debug, Default)]
struct Book {
    recent: VecDeque<Order>,
    /// Every confirmed async or hybrid order whose email went to Buzzer: the outage check
    /// needs all of them, not only the recent ones.
    queued_emails: Vec<(u64, JobId)>,
    times: [Vec<f64>; 3],
    counts: [Counts; 3],
}

/// Outcomes per mode.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counts {
    pub confirmed: u64,
    pub declined: u64,
    pub failed: u64,
}

/// Response-time summary of one mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeSummary {
    pub mode: Mode,
    #[serde(flatten)]
    pub counts: Counts,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl OrderBook {
    /// The next order number (from 1).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn record(&self, order: Order) {
        let mut book = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let m = order.mode as usize;
        let times = &mut book.times[m];
        if times.len() == TIMES_KEPT {
            times.remove(0);
        }
        times.push(order.server_ms);
        let counts = &mut book.counts[m];
        match order.outcome {
            Outcome::Confirmed => counts.confirmed += 1,
            Outcome::Declined => counts.declined += 1,
            Outcome::Failed(_) => counts.failed += 1,
        }
        if let Email::Queued(job) = order.email {
            book.queued_emails.push((order.id, job));
        }
        if book.recent.len() == KEPT {
            book.recent.pop_front();
        }
        book.recent.push_back(order);
    }

    /// The latest `n` orders, newest first.
    pub fn recent(&self, n: usize) -> Vec<Order> {
        let book = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        book.recent.iter().rev().take(n).cloned().collect()
    }

    /// Every order whose confirmation email was handed to Buzzer, with its job.
    pub fn queued_emails(&self) -> Vec<(u64, JobId)> {
        let book = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        book.queued_emails.clone()
    }

    pub fn summary(&self) -> Vec<ModeSummary> {
        let book = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Mode::ALL
            .into_iter()
            .map(|mode| {
                let mut times = book.times[mode as usize].clone();
                times.sort_by(f64::total_cmp);
                ModeSummary {
                    mode,
                    counts: book.counts[mode as usize],
                    p50_ms: percentile(&times, 0.50),
                    p99_ms: percentile(&times, 0.99),
                }
            })
            .collect()
    }
}

/// The nearest-rank percentile of sorted `values`.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(50.0));
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn modes_round_trip() {
        for mode in Mode::ALL {
            assert_eq!(Mode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(Mode::parse("later"), None);
    }
}

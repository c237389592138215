//! `GET /dashboard/api/stats`: what the pages poll every two seconds to update without a
//! reload: the queues' counts and oldest waiting age, and a throughput series for the charts.
//!
//! The series comes from sampling the engine's job counters, at most once a second, whenever
//! a page asks: no background task, and history builds up while someone is watching (the last
//! five minutes are kept, shared by every viewer). The counters are this node's, so with
//! several nodes the charts show the work that went through this one.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, PoisonError},
};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use buzzer_engine::{EngineMetrics, JobTotals};
use buzzer_types::{QueueInfo, StateCounts};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState, response::json};

use super::format;

/// Samples closer together than this are not taken.
const MIN_SPACING_MS: i64 = 1_000;
/// How far back the charts go.
const WINDOW_MS: i64 = 5 * 60 * 1_000;
/// A longer pause between samples (nobody was watching) breaks the lines instead of
/// averaging over it.
const GAP_MS: i64 = 15_000;

#[derive(Debug)]
struct Sample {
    at_ms: i64,
    totals: HashMap<String, JobTotals>,
}

/// The recent samples of the job counters.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    samples: Mutex<VecDeque<Sample>>,
}

/// Rates per second between two samples; `None` marks a gap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Point {
    t: i64,
    enqueued: Option<f64>,
    completed: Option<f64>,
    failed: Option<f64>,
}

impl Sampler {
    fn record(&self, now_ms: i64, queues: &[QueueInfo], metrics: &EngineMetrics) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples
            .back()
            .is_some_and(|last| now_ms - last.at_ms < MIN_SPACING_MS)
        {
            return;
        }
        let totals = queues
            .iter()
            .map(|q| (q.name.clone(), metrics.queue_totals(&q.name)))
            .collect();
        samples.push_back(Sample {
            at_ms: now_ms,
            totals,
        });
        while samples
            .front()
            .is_some_and(|first| now_ms - first.at_ms > WINDOW_MS + GAP_MS)
        {
            samples.pop_front();
        }
    }

    /// Rates for one queue, or summed over all of them.
    fn series(&self, queue: Option<&str>) -> Vec<Point> {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let sum = |s: &Sample| -> JobTotals {
            let mut total = JobTotals::default();
            for (name, t) in &s.totals {
                if queue.is_none_or(|q| q == name) {
                    total.enqueued += t.enqueued;
                    total.completed += t.completed;
                    total.failed += t.failed;
                }
            }
            total
        };
        let mut points = Vec::with_capacity(samples.len());
        let mut prev: Option<(i64, JobTotals)> = None;
        for s in samples.iter() {
            let now = sum(s);
            if let Some((at, before)) = prev {
                let dt = s.at_ms - at;
                let rate = |a: u64, b: u64| {
                    (dt <= GAP_MS).then(|| a.saturating_sub(b) as f64 * 1_000.0 / dt as f64)
                };
                points.push(Point {
                    t: s.at_ms,
                    enqueued: rate(now.enqueued, before.enqueued),
                    completed: rate(now.completed, before.completed),
                    failed: rate(now.failed, before.failed),
                });
            }
            prev = Some((s.at_ms, now));
        }
        points
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatsQuery {
    queue: Option<String>,
}

#[derive(Debug, Serialize)]
struct QueueStats<'a> {
    name: &'a str,
    paused: bool,
    counts: StateCounts,
    oldest_available_age_ms: u64,
    /// The age as the pages show it (`4m 12s`).
    oldest_available_age: String,
}

#[derive(Debug, Serialize)]
struct Stats<'a> {
    now: Timestamp,
    window_ms: i64,
    queues: Vec<QueueStats<'a>>,
    series: Vec<Point>,
}

/// `GET /dashboard/api/stats[?queue=NAME]`: every queue (or the one named) and the rates.
pub(crate) async fn stats(
    State(state): State<AppState>,
    Query(query): Query<StatsQuery>,
) -> Result<Response, ApiError> {
    let queues = state.engine.queues().await?;
    let now = Timestamp::now();
    let sampler = &state.dashboard.sampler;
    sampler.record(now.as_millisecond(), &queues, state.engine.metrics());
    let wanted = query.queue.as_deref();
    let shown = queues
        .iter()
        .filter(|q| wanted.is_none_or(|w| w == q.name))
        .map(|q| QueueStats {
            name: &q.name,
            paused: q.paused,
            counts: q.counts,
            oldest_available_age_ms: q.oldest_available_age_ms,
            oldest_available_age: format::waiting_age(q.oldest_available_age_ms),
        })
        .collect();
    let body = Stats {
        now,
        window_ms: WINDOW_MS,
        queues: shown,
        series: sampler.series(wanted),
    };
    Ok(json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str) -> QueueInfo {
        QueueInfo {
            name: name.into(),
            paused: false,
            counts: StateCounts::default(),
            oldest_available_age_ms: 0,
        }
    }

    #[test]
    fn rates_come_from_counter_deltas_and_gaps_break_the_line() {
        let metrics = EngineMetrics::new();
        let sampler = Sampler::default();
        let queues = [queue("a"), queue("b")];
        sampler.record(0, &queues, &metrics);
        // Too soon: not taken.
        sampler.record(500, &queues, &metrics);
        assert!(sampler.series(None).is_empty());
        sampler.record(2_000, &queues, &metrics);
        sampler.record(60_000, &queues, &metrics);
        let points = sampler.series(Some("a"));
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].completed, Some(0.0));
        assert_eq!(points[1].completed, None, "a 58 s pause is a gap");
    }
}

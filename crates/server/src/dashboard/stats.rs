//! `GET /dashboard/api/stats`: what the pages poll every two seconds to update without a
//! reload: the queues' counts and oldest waiting age, and a series of rates and mean times
//! for the charts.
//!
//! The series comes from sampling the engine's job counters and the running sums of its wait
//! and run time histograms, at most once a second, whenever a page asks: no background task,
//! and history builds up while someone is watching (the last five minutes are kept, shared by
//! every viewer). The counters are this node's, so with several nodes the charts show the
//! work that went through this one.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, PoisonError},
};

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use buzzer_engine::{EngineMetrics, JobTimes, JobTotals};
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
    totals: HashMap<String, (JobTotals, JobTimes)>,
}

/// The recent samples of the job counters.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    samples: Mutex<VecDeque<Sample>>,
}

/// What happened between two samples: rates per second, and the mean wait (due to leased)
/// and run time (start to end of an attempt) in milliseconds of the jobs leased and finished
/// in between. `None` marks a gap, and for a mean also a stretch with no job to average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Point {
    t: i64,
    enqueued: Option<f64>,
    completed: Option<f64>,
    failed: Option<f64>,
    wait: Option<f64>,
    run: Option<f64>,
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
            .map(|q| {
                let totals = (metrics.queue_totals(&q.name), metrics.queue_times(&q.name));
                (q.name.clone(), totals)
            })
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

    /// Rates and mean times for one queue, or over all of them.
    fn series(&self, queue: Option<&str>) -> Vec<Point> {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let sum = |s: &Sample| -> (JobTotals, JobTimes) {
            let mut total = JobTotals::default();
            let mut times = JobTimes::default();
            for (name, (t, w)) in &s.totals {
                if queue.is_none_or(|q| q == name) {
                    total.enqueued += t.enqueued;
                    total.completed += t.completed;
                    total.failed += t.failed;
                    times.wait_seconds += w.wait_seconds;
                    times.waits += w.waits;
                    times.run_seconds += w.run_seconds;
                    times.runs += w.runs;
                }
            }
            (total, times)
        };
        let mut points = Vec::with_capacity(samples.len());
        let mut prev: Option<(i64, JobTotals, JobTimes)> = None;
        for s in samples.iter() {
            let (now, times) = sum(s);
            if let Some((at, before, times_before)) = prev {
                let dt = s.at_ms - at;
                let rate = |a: u64, b: u64| {
                    (dt <= GAP_MS).then(|| a.saturating_sub(b) as f64 * 1_000.0 / dt as f64)
                };
                // Seconds and count observed between the samples, as a mean in milliseconds.
                let mean_ms = |seconds: f64, n: u64| {
                    (dt <= GAP_MS && n > 0).then(|| seconds.max(0.0) * 1_000.0 / n as f64)
                };
                points.push(Point {
                    t: s.at_ms,
                    enqueued: rate(now.enqueued, before.enqueued),
                    completed: rate(now.completed, before.completed),
                    failed: rate(now.failed, before.failed),
                    wait: mean_ms(
                        times.wait_seconds - times_before.wait_seconds,
                        times.waits.saturating_sub(times_before.waits),
                    ),
                    run: mean_ms(
                        times.run_seconds - times_before.run_seconds,
                        times.runs.saturating_sub(times_before.runs),
                    ),
                });
            }
            prev = Some((s.at_ms, now, times));
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

    fn sample(at_ms: i64, queues: &[(&str, JobTimes)]) -> Sample {
        let totals = queues
            .iter()
            .map(|(name, times)| (name.to_string(), (JobTotals::default(), *times)))
            .collect();
        Sample { at_ms, totals }
    }

    fn times(wait_seconds: f64, waits: u64, run_seconds: f64, runs: u64) -> JobTimes {
        JobTimes {
            wait_seconds,
            waits,
            run_seconds,
            runs,
        }
    }

    #[test]
    fn mean_times_come_from_the_jobs_between_two_samples() {
        let sampler = Sampler::default();
        sampler.samples.lock().unwrap().extend([
            sample(
                0,
                &[("a", times(1.0, 10, 0.5, 10)), ("b", times(0.0, 0, 0.0, 0))],
            ),
            // a: 4 more leases that waited 2 s in all, 2 more runs of 10 ms in all;
            // b: 1 lease that waited 6 s, no run.
            sample(
                2_000,
                &[
                    ("a", times(3.0, 14, 0.51, 12)),
                    ("b", times(6.0, 1, 0.0, 0)),
                ],
            ),
            // Nothing leased or finished: no mean to show.
            sample(
                4_000,
                &[
                    ("a", times(3.0, 14, 0.51, 12)),
                    ("b", times(6.0, 1, 0.0, 0)),
                ],
            ),
        ]);

        let a = sampler.series(Some("a"));
        assert_eq!(a.len(), 2);
        assert_close(a[0].wait, 500.0);
        assert_close(a[0].run, 5.0);
        assert_eq!((a[1].wait, a[1].run), (None, None));

        // Over all queues, each job counts once: 8 s over 5 leases.
        let all = sampler.series(None);
        assert_close(all[0].wait, 1_600.0);
        assert_close(all[0].run, 5.0);
        assert_eq!(sampler.series(Some("b"))[0].run, None);
    }

    #[test]
    fn a_mean_across_a_gap_is_not_drawn() {
        let sampler = Sampler::default();
        sampler.samples.lock().unwrap().extend([
            sample(0, &[("a", times(0.0, 0, 0.0, 0))]),
            sample(GAP_MS + 1, &[("a", times(1.0, 1, 1.0, 1))]),
        ]);
        let points = sampler.series(None);
        assert_eq!((points[0].wait, points[0].run), (None, None));
    }

    fn assert_close(got: Option<f64>, want: f64) {
        let got = got.unwrap_or_else(|| panic!("no value, wanted {want}"));
        assert!((got - want).abs() < 1e-6, "{got} != {want}");
    }
}

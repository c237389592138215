#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::{
    Mode, Workload, next_poll,
    report::{Report, Run, Spread},
    target::PollEvery,
    w2::percentile,
};

#[test]
fn polls_thin_out_and_still_see_the_end_within_the_floor() {
    let every = PollEvery {
        floor: Duration::from_millis(10),
        ceiling: Duration::from_millis(500),
    };
    let at = |ms: u64| Duration::from_millis(ms);
    // Nothing done in the last wait, or nothing left: no pace to go by.
    assert_eq!(next_poll(every, at(100), 0, 100_000), every.floor);
    assert_eq!(next_poll(every, at(100), 2_500, 0), every.floor);
    // 2,500 jobs in 100 ms with 90,000 to go: 3.6 s left, so the ceiling.
    assert_eq!(next_poll(every, at(100), 2_500, 90_000), at(500));
    // 500 ms at that pace: wait 250 ms; 100 ms to go: 50 ms; 10 ms to go: the floor.
    assert_eq!(next_poll(every, at(100), 2_500, 12_500), at(250));
    assert_eq!(next_poll(every, at(100), 2_500, 2_500), at(50));
    assert_eq!(next_poll(every, at(100), 2_500, 250), every.floor);
    // A steady 4 s drain asks about twenty times, not 4 s / 10 ms = 400, and sees its end
    // within the floor.
    let (mut t, mut asks, mut done) = (0_u64, 0, 0_u64);
    while done < 100_000 {
        let wait = next_poll(every, at(100), 2_500, 100_000 - done).as_millis() as u64;
        t += wait;
        done = (25 * t).min(100_000);
        asks += 1;
    }
    assert!((10..=25).contains(&asks), "{asks}");
    assert!(t - 4_000 <= 10, "seen at {t} ms");
}

#[test]
fn a_slow_start_does_not_hold_the_end_back() {
    let every = PollEvery {
        floor: Duration::from_millis(10),
        ceiling: Duration::from_millis(500),
    };
    // Nothing completes for the workers' first 200 ms, then 250 jobs a millisecond: the
    // 50,000 jobs are done at 400 ms. Judged by the pace since the start, the first ask after
    // the start-up saw 2,500 jobs in 210 ms, expected 4 s more and waited the ceiling.
    let done_at = |t: u64| (t.saturating_sub(200) * 250).min(50_000);
    let (mut t, mut asked) = (0_u64, (0_u64, 0_u64));
    while done_at(t) < 50_000 {
        let done = done_at(t);
        let wait = next_poll(
            every,
            Duration::from_millis(t - asked.1),
            done - asked.0,
            50_000 - done,
        );
        asked = (done, t);
        t += wait.as_millis() as u64;
    }
    assert!((400..=410).contains(&t), "seen at {t} ms");
}

#[test]
fn spread_is_median_min_max() {
    assert_eq!(Spread::of(vec![]), None);
    let s = Spread::of(vec![3.0, 1.0, 2.0]).unwrap();
    assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
    assert_eq!(Spread::of(vec![4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
}

#[test]
fn percentile_is_nearest_rank() {
    let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&sorted, 0.5), 50.0);
    assert_eq!(percentile(&sorted, 0.99), 99.0);
    assert_eq!(percentile(&sorted, 1.0), 100.0);
    assert_eq!(percentile(&[7.0], 0.99), 7.0);
    assert!(percentile(&[], 0.5).is_nan());
}

#[test]
fn json_has_medians_under_their_keys_and_every_run() {
    let runs = [10.0, 30.0, 20.0]
        .into_iter()
        .map(|v| {
            let mut run = Run::default();
            run.push("processed_per_s", "processed/s", v);
            run
        })
        .collect();
    let report = Report {
        workload: Workload::W1,
        mode: Mode::Http,
        database: "sqlite",
        jobs: 5,
        concurrency: 8,
        worker_processes: Some(2),
        runs,
    };
    let json = report.json();
    assert_eq!(json["workload"], "W1");
    assert_eq!(json["mode"], "http");
    assert_eq!(json["reps"], 3);
    assert_eq!(json["worker_processes"], 2);
    assert_eq!(json["processed_per_s"], 20.0);
    assert_eq!(json["runs"][1]["processed_per_s"], 30.0);
}

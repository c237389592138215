#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::{
    Mode, Workload, next_poll,
    report::{Report, Run, Spread},
    w2::percentile,
};

#[test]
fn polls_thin_out_and_still_see_the_end_within_the_floor() {
    let floor = Duration::from_millis(50);
    let at = |ms: u64| Duration::from_millis(ms);
    // Nothing done yet, or all done: no rate to go by.
    assert_eq!(next_poll(floor, at(100), 0, 100_000), floor);
    assert_eq!(next_poll(floor, at(4_000), 100_000, 100_000), floor);
    // Early in a 4 s drain: half a second, the ceiling.
    assert_eq!(next_poll(floor, at(400), 10_000, 100_000), at(500));
    // Half done after 2 s: 2 s to go, so the ceiling again; three quarters after 3 s: 0.5 s.
    assert_eq!(next_poll(floor, at(3_000), 75_000, 100_000), at(500));
    // 100 ms to go: wait 50 ms; 20 ms to go: the floor, never less.
    assert_eq!(next_poll(floor, at(3_900), 97_500, 100_000), at(50));
    assert_eq!(next_poll(floor, at(3_980), 99_500, 100_000), floor);
    // A whole 4 s drain at a steady rate asks about a dozen times, not 4 s / 50 ms = 80.
    let (mut t, mut asks) = (0_u64, 0);
    while t < 4_000 {
        let done = 25 * t;
        t += next_poll(floor, at(t), done, 100_000).as_millis() as u64;
        asks += 1;
    }
    assert!((8..=16).contains(&asks), "{asks}");
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

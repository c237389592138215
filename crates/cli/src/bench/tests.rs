#![allow(clippy::unwrap_used)]

use super::{
    Mode, Workload,
    report::{Report, Run, Spread},
    w2::percentile,
};

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

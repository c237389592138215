//! The figures of a benchmark: a table for people, one JSON line for machines.

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::{Map, Value, json};

use super::{Mode, Workload};

/// The figures of one run, in the order they are shown.
#[derive(Debug, Default, Clone)]
pub(crate) struct Run {
    figures: Vec<Figure>,
}

#[derive(Debug, Clone)]
struct Figure {
    key: String,
    label: String,
    value: f64,
}

impl Run {
    pub fn push(&mut self, key: impl Into<String>, label: impl Into<String>, value: f64) {
        self.figures.push(Figure {
            key: key.into(),
            label: label.into(),
            value,
        });
    }
}

pub(crate) struct Report {
    pub workload: Workload,
    pub mode: Mode,
    pub database: &'static str,
    pub jobs: u64,
    pub concurrency: usize,
    pub worker_processes: Option<usize>,
    pub runs: Vec<Run>,
}

/// Median, minimum and maximum of one figure over the runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values. The median of an even count is the mean of the middle two.
    pub fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        let median = match n {
            0 => return None,
            n if n % 2 == 1 => values[n / 2],
            n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }
}

impl Report {
    /// Each figure's label, key and spread over the runs, in the first run's order.
    fn figures(&self) -> Vec<(&str, &str, Spread)> {
        let Some(first) = self.runs.first() else {
            return Vec::new();
        };
        first
            .figures
            .iter()
            .filter_map(|f| {
                let values = self
                    .runs
                    .iter()
                    .filter_map(|r| r.figures.iter().find(|g| g.key == f.key))
                    .map(|g| g.value)
                    .collect();
                Spread::of(values).map(|s| (f.label.as_str(), f.key.as_str(), s))
            })
            .collect()
    }

    pub fn print(&self) {
        let workers = match self.worker_processes {
            Some(p) => format!(", {p} worker process(es)"),
            None => String::new(),
        };
        println!(
            "{:?} {} on {}: {} jobs, concurrency {}{workers}, {} run(s)",
            self.workload,
            match self.mode {
                Mode::Inprocess => "in-process",
                Mode::Http => "over HTTP",
            },
            self.database,
            self.jobs,
            self.concurrency,
            self.runs.len()
        );
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["figure", "median", "min", "max"]);
        for (label, _, s) in self.figures() {
            table.add_row([
                Cell::new(label),
                number(s.median),
                number(s.min),
                number(s.max),
            ]);
        }
        println!("{table}");
    }

    /// One object: the set-up, each figure's median under its key, and every run's figures.
    pub fn json(&self) -> Value {
        let mut out = Map::new();
        out.insert("workload".into(), json!(self.workload));
        out.insert("mode".into(), json!(self.mode));
        out.insert("database".into(), json!(self.database));
        out.insert("jobs".into(), json!(self.jobs));
        out.insert("concurrency".into(), json!(self.concurrency));
        if let Some(p) = self.worker_processes {
            out.insert("worker_processes".into(), json!(p));
        }
        out.insert("reps".into(), json!(self.runs.len()));
        for (_, key, s) in self.figures() {
            out.insert(key.into(), json!(round(s.median)));
        }
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                r.figures
                    .iter()
                    .map(|f| (f.key.clone(), json!(round(f.value))))
                    .collect::<Map<_, _>>()
                    .into()
            })
            .collect();
        out.insert("runs".into(), Value::Array(runs));
        Value::Object(out)
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn number(v: f64) -> Cell {
    let text = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

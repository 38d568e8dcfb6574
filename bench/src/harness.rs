//! A thin layer over criterion: short, fixed timing budgets, and one [`Row`] per
//! measured (workload, contender) pair.
//!
//! Criterion does the measuring (warm-up, flat sampling, outlier analysis) and writes
//! its estimates to `<out>/criterion/<group>/<contender>_r<round>/new/estimates.json`;
//! we read the median back from there and divide it by the number of operations one
//! iteration performs, so every row is "nanoseconds per operation" with the operation
//! named in the row.
//!
//! ## Rounds, against a shared machine
//! The machine is 2 cores shared by several people, and its load moves during a run.
//! So the contenders of one workload are measured in [`ROUNDS`] interleaved rounds
//! (A B C, A B C, A B C): a load burst hits every contender alike instead of one.
//! A row's figure is the *lowest* of its round medians (extra load only ever adds
//! time); the spread `(max - min) / min` of the rounds is kept to show the noise.
//!
//! Budgets: each round of each contender gets 0.15 s warm-up + 0.4 s measurement
//! (`--quick`: one round of 0.1 s + 0.3 s); criterion's bootstrap is cut to 5,000
//! resamples.

use criterion::{Bencher, BenchmarkGroup, Criterion, SamplingMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Row {
    /// Benchmark family: `frame`, `heap`, `paging`, `scheduler`.
    pub group: &'static str,
    /// What one operation is, e.g. "single alloc+free".
    pub workload: String,
    /// Who was measured, e.g. "kernel buddy".
    pub contender: &'static str,
    /// Whether this contender is this kernel's own code (the reference of the ratio).
    pub ours: bool,
    /// Nanoseconds per operation (lowest round median); `None` when not measured.
    pub ns_per_op: Option<f64>,
    /// Each round's median, ns per operation.
    pub rounds: Vec<f64>,
    /// Operations one criterion iteration performs.
    pub ops_per_iter: u64,
    /// Free text shown under the table (e.g. why a row is missing).
    pub note: Option<String>,
}

/// Interleaved rounds per workload (see the module documentation).
pub const ROUNDS: usize = 3;

/// Runs benchmarks and collects their rows.
pub struct Runner {
    criterion: Criterion,
    rounds: usize,
    dir: PathBuf,
    filter: Option<String>,
    /// Everything measured so far, in order.
    pub rows: Vec<Row>,
}

impl Runner {
    /// A runner writing criterion's files under `dir`, with short budgets (`quick`
    /// makes them shorter still), running only workloads whose `group/workload` name
    /// contains `filter`.
    pub fn new(dir: &Path, quick: bool, filter: Option<String>) -> Self {
        let (warm, measure, samples, rounds) = if quick {
            (
                Duration::from_millis(100),
                Duration::from_millis(300),
                10,
                1,
            )
        } else {
            (
                Duration::from_millis(150),
                Duration::from_millis(400),
                10,
                ROUNDS,
            )
        };
        let criterion = Criterion::default()
            .output_directory(dir)
            .warm_up_time(warm)
            .measurement_time(measure)
            .sample_size(samples)
            .nresamples(5_000)
            .without_plots()
            .with_output_color(false);
        Runner {
            criterion,
            rounds,
            dir: dir.to_path_buf(),
            filter,
            rows: Vec::new(),
        }
    }

    /// Whether workload `id` (as given to [`Runner::group`]) passes the filter.
    pub fn wanted(&self, group: &str, id: &str) -> bool {
        let name = format!("{group}/{id}");
        self.filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    }

    /// Measures one workload for several contenders. `id` is a file-name-safe key,
    /// `workload` the text shown in the table, `ops_per_iter` how many operations one
    /// call of a contender's routine performs.
    pub fn group<'a>(
        &'a mut self,
        group: &'static str,
        id: &str,
        workload: &str,
        ops_per_iter: u64,
    ) -> Group<'a> {
        let wanted = self.wanted(group, id);
        let key = format!("{group}-{id}");
        let mut g = self.criterion.benchmark_group(key.clone());
        // Flat sampling: each of our iterations is already a batch of operations.
        g.sampling_mode(SamplingMode::Flat);
        Group {
            inner: g,
            contenders: Vec::new(),
            rounds: self.rounds,
            wanted,
            key,
            group,
            workload: workload.to_string(),
            ops_per_iter,
            dir: self.dir.clone(),
            rows: &mut self.rows,
        }
    }

    /// Adds a row that was not measured (feature missing), with the reason.
    pub fn missing(
        &mut self,
        group: &'static str,
        workload: &str,
        contender: &'static str,
        why: &str,
    ) {
        self.rows.push(Row {
            group,
            workload: workload.to_string(),
            contender,
            ours: false,
            ns_per_op: None,
            rounds: Vec::new(),
            ops_per_iter: 0,
            note: Some(why.to_string()),
        });
    }
}

/// A contender's routine: criterion's usual `|b: &mut Bencher| ...`.
type Routine<'a> = Box<dyn FnMut(&mut Bencher<'_>) + 'a>;

/// One workload being measured for several contenders.
pub struct Group<'a> {
    inner: BenchmarkGroup<'a, criterion::measurement::WallTime>,
    contenders: Vec<(&'static str, bool, Routine<'a>)>,
    rounds: usize,
    wanted: bool,
    key: String,
    group: &'static str,
    workload: String,
    ops_per_iter: u64,
    dir: PathBuf,
    rows: &'a mut Vec<Row>,
}

impl<'a> Group<'a> {
    /// Adds `routine` as the measurement of `contender` (`ours`: this kernel's code,
    /// the reference of the ratio). It runs in [`Group::finish`].
    pub fn bench<F>(&mut self, contender: &'static str, ours: bool, routine: F)
    where
        F: FnMut(&mut Bencher<'_>) + 'a,
    {
        self.contenders.push((contender, ours, Box::new(routine)));
    }

    /// Measures every contender in interleaved rounds and records one row each.
    pub fn finish(mut self) {
        if !self.wanted {
            return;
        }
        let mut figures: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for round in 0..self.rounds {
            for (i, (name, _, routine)) in self.contenders.iter_mut().enumerate() {
                let id = format!("{}_r{round}", file_key(name));
                self.inner.bench_function(id.as_str(), &mut **routine);
                let est = self
                    .dir
                    .join(&self.key)
                    .join(&id)
                    .join("new")
                    .join("estimates.json");
                if let Some(ns) = read_median(&est) {
                    figures
                        .entry(i)
                        .or_default()
                        .push(ns / self.ops_per_iter as f64);
                }
            }
        }
        for (i, (name, ours, _)) in self.contenders.iter().enumerate() {
            let rounds = figures.remove(&i).unwrap_or_default();
            self.rows.push(Row {
                group: self.group,
                workload: self.workload.clone(),
                contender: name,
                ours: *ours,
                ns_per_op: rounds.iter().copied().reduce(f64::min),
                rounds,
                ops_per_iter: self.ops_per_iter,
                note: None,
            });
        }
        self.inner.finish();
    }
}

/// `(max - min) / min` of a row's rounds, if it has two or more.
pub fn spread(rounds: &[f64]) -> Option<f64> {
    let min = rounds.iter().copied().reduce(f64::min)?;
    let max = rounds.iter().copied().reduce(f64::max)?;
    (rounds.len() > 1 && min > 0.0).then(|| (max - min) / min)
}

/// A contender name as a directory name criterion will not rewrite.
fn file_key(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The median point estimate (ns per iteration) from a criterion estimates file.
fn read_median(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("median")?.get("point_estimate")?.as_f64()
}

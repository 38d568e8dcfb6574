//! A thin layer over criterion: short, fixed timing budgets, and one [`Row`] per
//! measured (workload, contender) pair.
//!
//! Criterion does the measuring (warm-up, linear sampling, outlier analysis) and writes
//! its estimates to `<out>/criterion/<group>/<contender>/new/estimates.json`; we read
//! the median back from there and divide it by the number of operations one iteration
//! performs, so every row is "nanoseconds per operation" with the operation named in
//! the row.
//!
//! Budgets: the machine is 2 cores shared by several people, so each benchmark gets
//! `warm_up` + `measure` (0.3 s + 1.0 s by default, a third of that with `--quick`),
//! and criterion's bootstrap is cut to 5,000 resamples.

use criterion::{Bencher, BenchmarkGroup, Criterion, SamplingMode};
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
    /// Median nanoseconds per operation; `None` when not measured.
    pub ns_per_op: Option<f64>,
    /// Operations one criterion iteration performs.
    pub ops_per_iter: u64,
    /// Free text shown under the table (e.g. why a row is missing).
    pub note: Option<String>,
}

/// Runs benchmarks and collects their rows.
pub struct Runner {
    criterion: Criterion,
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
        let (warm, measure, samples) = if quick {
            (Duration::from_millis(100), Duration::from_millis(300), 10)
        } else {
            (Duration::from_millis(300), Duration::from_millis(1000), 20)
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
    pub fn group(
        &mut self,
        group: &'static str,
        id: &str,
        workload: &str,
        ops_per_iter: u64,
    ) -> Group<'_> {
        let wanted = self.wanted(group, id);
        let key = format!("{group}-{id}");
        let mut g = self.criterion.benchmark_group(key.clone());
        // Flat sampling: each of our iterations is already a batch of operations.
        g.sampling_mode(SamplingMode::Flat);
        Group {
            inner: g,
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
            ops_per_iter: 0,
            note: Some(why.to_string()),
        });
    }
}

/// One workload being measured for several contenders.
pub struct Group<'a> {
    inner: BenchmarkGroup<'a, criterion::measurement::WallTime>,
    wanted: bool,
    key: String,
    group: &'static str,
    workload: String,
    ops_per_iter: u64,
    dir: PathBuf,
    rows: &'a mut Vec<Row>,
}

impl Group<'_> {
    /// Measures `routine` for `contender` (`ours`: this kernel's code).
    /// `routine` is criterion's usual `|b: &mut Bencher| ...`.
    pub fn bench<F>(&mut self, contender: &'static str, ours: bool, routine: F)
    where
        F: FnMut(&mut Bencher<'_>),
    {
        if !self.wanted {
            return;
        }
        let id = file_key(contender);
        self.inner.bench_function(id.as_str(), routine);
        let est = self
            .dir
            .join(&self.key)
            .join(&id)
            .join("new")
            .join("estimates.json");
        let ns = read_median(&est).map(|ns| ns / self.ops_per_iter as f64);
        self.rows.push(Row {
            group: self.group,
            workload: self.workload.clone(),
            contender,
            ours,
            ns_per_op: ns,
            ops_per_iter: self.ops_per_iter,
            note: None,
        });
    }

    /// Ends the group (criterion prints its summary).
    pub fn finish(self) {
        self.inner.finish();
    }
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

//! The table and the JSON file.
//!
//! Ratio column: `contender ns/op ÷ reference ns/op` within the same workload, where
//! the reference is the row marked `*` (this kernel's code; for the scheduler, the
//! 10-thread figure). Above 1.00 the reference is faster; below 1.00 the contender is.

use crate::harness::{spread, Row};
use std::fmt::Write as _;

/// The reference figure of `row`'s workload, if measured.
fn reference(rows: &[Row], row: &Row) -> Option<f64> {
    rows.iter()
        .find(|r| r.ours && r.group == row.group && r.workload == row.workload)
        .and_then(|r| r.ns_per_op)
}

fn ratio(rows: &[Row], row: &Row) -> Option<f64> {
    Some(row.ns_per_op? / reference(rows, row)?)
}

/// The table as text.
pub fn table(rows: &[Row]) -> String {
    let cw = rows
        .iter()
        .map(|r| r.contender.len())
        .max()
        .unwrap_or(10)
        .max(10)
        + 2;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<cw$} {:>12} {:>14}",
        "contender", "ns/op", "x vs ref (*)"
    );
    let mut last = None;
    let mut notes = Vec::new();
    for row in rows {
        if last != Some((row.group, row.workload.as_str())) {
            let _ = writeln!(out, "{}", row.workload);
            last = Some((row.group, row.workload.as_str()));
        }
        let mark = if row.ours { "*" } else { " " };
        let name = format!("{mark} {}", row.contender);
        let ns = row
            .ns_per_op
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "-".into());
        let ratio = ratio(rows, row)
            .map(|v| format!("{v:.2}"))
            .unwrap_or_else(|| "-".into());
        let spread = spread(&row.rounds)
            .map(|v| format!("{:.0}%", v * 100.0))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "  {name:<cw$} {ns:>10} {ratio:>14} {spread:>8}");
        if let Some(n) = &row.note {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    let _ = writeln!(
        out,
        "ratio = contender ns/op / reference ns/op (* = this kernel); > 1.00: the kernel is faster\n\
         ns/op = lowest of the interleaved rounds' medians; spread = (max - min) / min of the rounds"
    );
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// Facts about the machine that ran the benchmarks.
pub fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    serde_json::json!({
        "cpu": cpu,
        "nproc": nproc,
        "loadavg_at_end": load_average(),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// The 1-minute load average (the machine is shared: figures taken under a load
/// above `nproc` are noisier).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The commit the benchmarks were built from (`git describe`), if known.
fn commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The JSON document written to `target/bench/host.json`.
pub fn json(rows: &[Row], quick: bool, load_at_start: Option<f64>) -> serde_json::Value {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "group": r.group,
                "workload": r.workload,
                "contender": r.contender,
                "reference": r.ours,
                "ns_per_op": r.ns_per_op,
                "rounds_ns_per_op": r.rounds,
                "spread": spread(&r.rounds),
                "ratio_vs_reference": ratio(rows, r),
                "ops_per_iter": r.ops_per_iter,
                "note": r.note,
            })
        })
        .collect();
    serde_json::json!({
        "schema": 1,
        "kind": "host",
        "created_unix": created,
        "quick": quick,
        "commit": commit(),
        "loadavg_at_start": load_at_start,
        "machine": machine(),
        "ratio": "contender ns_per_op / reference ns_per_op (reference: this kernel's row of the same workload); > 1 means the kernel is faster",
        "rows": rows,
    })
}

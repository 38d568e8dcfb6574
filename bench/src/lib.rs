//! `kernel-bench`: host benchmarks of the kernel's frame allocator, heap, page tables
//! and scheduler against the crates a kernel author would pick instead, on the same
//! simulated physical memory (see `kernel::memory::phys`).
//!
//! Run it through `cargo xtask bench`, or directly:
//!
//! ```text
//! cargo run --release -p kernel-bench -- [--quick] [--filter TEXT] [--out DIR]
//! cargo bench -p kernel-bench -- [same options]
//! ```
//!
//! * `--quick`: one short round per contender instead of three interleaved ones
//!   (smoke runs, ~15 s);
//! * `--filter TEXT`: only workloads whose `group/id` contains TEXT (ids: `frame/single`,
//!   `frame/batch1000`, `frame/order9`, `frame/frag_single`, `frame/frag_batch1000`,
//!   `heap/mixed`, `paging/map`, `paging/translate`,
//!   `paging/unmap`, `scheduler/pick`, `scheduler/tick`);
//! * `--out DIR`: where `host.json` and criterion's files go (default
//!   `<workspace>/target/bench`).
//!
//! It prints one table (workload, contender, ns/op, ratio against this kernel's
//! figure) and writes the same rows to `DIR/host.json`. The whole run takes about a
//! minute; nothing here runs under `cargo test`.
//!
//! Modules: [`harness`] (criterion with short budgets, one row per measurement),
//! [`frames`], [`heap`], [`paging`], [`sched`] (the workloads and their contenders),
//! [`report`] (table and JSON).

pub mod frames;
pub mod harness;
pub mod heap;
pub mod paging;
pub mod report;
pub mod sched;

use std::path::PathBuf;

/// Runs the benchmarks as the command line `args` (without the program name) asks;
/// returns the process exit code.
pub fn cli(args: impl IntoIterator<Item = String>) -> i32 {
    let mut quick = false;
    let mut filter = None;
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench"));
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--filter" => filter = args.next(),
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            // `cargo bench` passes this to harness-less targets.
            "--bench" => {}
            other => {
                eprintln!("kernel-bench: unknown argument {other:?}");
                eprintln!("usage: kernel-bench [--quick] [--filter TEXT] [--out DIR]");
                return 2;
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("kernel-bench: cannot create {}: {e}", out.display());
        return 1;
    }
    let out = out.canonicalize().unwrap_or(out);

    let load_at_start = report::load_average();
    let mut runner = harness::Runner::new(&out.join("criterion"), quick, filter);
    frames::run(&mut runner);
    heap::run(&mut runner);
    paging::run(&mut runner);
    sched::run(&mut runner);

    println!();
    let m = report::machine();
    println!(
        "machine: {}, {} CPUs; load average {} at start, {} at end",
        m["cpu"].as_str().unwrap_or("?"),
        m["nproc"],
        fmt_load(load_at_start),
        fmt_load(report::load_average())
    );
    print!("{}", report::table(&runner.rows));
    let doc = report::json(&runner.rows, quick, load_at_start);
    let path = out.join("host.json");
    let text = serde_json::to_string_pretty(&doc).expect("json");
    match std::fs::write(&path, text + "\n") {
        Ok(()) => println!("saved {}", path.display()),
        Err(e) => {
            eprintln!("kernel-bench: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    0
}

fn fmt_load(l: Option<f64>) -> String {
    l.map_or_else(|| "?".into(), |l| format!("{l:.2}"))
}

//! `kernel-bench`: host benchmarks of the kernel's frame allocator, heap, page tables
//! and scheduler against the crates a kernel author would pick instead, on the same
//! simulated physical memory (see `kernel::memory::phys`).
//!
//! Run it through `cargo xtask bench`, or directly:
//!
//! ```text
//! cargo run --release -p kernel-bench -- [--quick] [--filter TEXT] [--out DIR]
//! ```
//!
//! * `--quick`: a third of the normal time budget (for smoke runs);
//! * `--filter TEXT`: only workloads whose `group/id` contains TEXT (ids: `frame/single`,
//!   `frame/batch1000`, `frame/order9`, `heap/mixed`, `paging/map`, `paging/translate`,
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

mod frames;
mod harness;
mod heap;
mod paging;
mod report;
mod sched;

use std::path::PathBuf;

fn main() {
    let mut quick = false;
    let mut filter = None;
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench"));
    let mut args = std::env::args().skip(1);
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
                std::process::exit(2);
            }
        }
    }
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("kernel-bench: cannot create {}: {e}", out.display());
        std::process::exit(1);
    }

    let mut runner = harness::Runner::new(&out.join("criterion"), quick, filter);
    frames::run(&mut runner);
    heap::run(&mut runner);
    paging::run(&mut runner);
    sched::run(&mut runner);

    println!();
    print!("{}", report::table(&runner.rows));
    let doc = report::json(&runner.rows, quick);
    let path = out.join("host.json");
    let text = serde_json::to_string_pretty(&doc).expect("json");
    match std::fs::write(&path, text + "\n") {
        Ok(()) => println!("saved {}", path.display()),
        Err(e) => {
            eprintln!("kernel-bench: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

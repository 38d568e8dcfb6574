//! Scheduler: `pick` (the next thread to run) and `tick` (the timer's bookkeeping)
//! with 10, 1,000 and 100,000 ready threads, to show both stay O(1): the ratio
//! column compares each size with the 10-thread figure.
//!
//! TODO(scheduler): `kernel::process::scheduler::Scheduler` (an instance type with
//! `add`, `schedule`, `tick`) is not in main yet. When it lands, for each size `n`:
//! make a `Scheduler`, `add` `n` threads (`Tid(1..=n)`, mixed priorities), then time
//! `schedule()` (op = one pick, rotating through the ready threads) and `tick()`
//! (op = one timer tick), each as a batch of 1,000 calls per criterion iteration.
//! Until then the rows say "not measured".

use crate::harness::Runner;

/// Ready-thread counts measured.
pub const SIZES: [u32; 3] = [10, 1_000, 100_000];

/// Runs (for now: reports as missing) the scheduler workloads.
pub fn run(r: &mut Runner) {
    if !["pick", "tick"].iter().any(|id| r.wanted("scheduler", id)) {
        return;
    }
    for what in ["pick (schedule)", "tick"] {
        let w = format!("scheduler: {what} (op = one call)");
        for (n, name) in SIZES.iter().zip(NAMES) {
            let _ = n;
            r.missing(
                "scheduler",
                &w,
                name,
                "not measured: kernel::process::scheduler::Scheduler is not in main yet (TODO(scheduler) in bench/src/sched.rs)",
            );
        }
    }
}

const NAMES: [&str; 3] = [
    "kernel, 10 ready threads",
    "kernel, 1,000 ready threads",
    "kernel, 100,000 ready threads",
];

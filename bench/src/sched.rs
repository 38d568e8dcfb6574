//! Scheduler: `pick` (the next thread to run) and `tick` (the timer's bookkeeping)
//! with 10, 1,000 and 100,000 ready threads, to show both stay O(1): the ratio
//! column compares each size with the 10-thread figure.
//!
//! For each size `n`: a fresh `Scheduler` with `n` threads (`Tid(1..=n)`, priorities
//! Low/Normal/High in turn), then `schedule()` (op = one pick: the running thread goes
//! back to its queue and the next one runs) and `tick()` (op = one timer tick: wake
//! sleepers, age the queue heads, slice accounting), each timed as 1,000 calls per
//! criterion iteration.
//!
//! There is no peer crate here: the ratio column compares 1,000 and 100,000 threads
//! with 10, so O(1) shows as ratios near 1.00.

use crate::harness::Runner;
use criterion::Bencher;
use kernel::process::scheduler::Scheduler;
use kernel::process::{Priority, Tid};
use std::hint::black_box;

/// Ready-thread counts measured.
pub const SIZES: [u32; 3] = [10, 1_000, 100_000];

const NAMES: [&str; 3] = [
    "kernel, 10 ready threads",
    "kernel, 1,000 ready threads",
    "kernel, 100,000 ready threads",
];

/// A scheduler with `n` ready threads of mixed priorities.
fn ready(n: u32) -> Scheduler {
    let mut s = Scheduler::new();
    for i in 1..=n {
        let p = [Priority::Low, Priority::Normal, Priority::High][(i % 3) as usize];
        s.add(Tid(i), p).expect("add");
    }
    s
}

/// 1,000 picks.
fn pick(b: &mut Bencher<'_>, s: &mut Scheduler) {
    b.iter(|| {
        for _ in 0..1000 {
            black_box(s.schedule());
        }
    })
}

/// 1,000 timer ticks (with a running thread).
fn tick(b: &mut Bencher<'_>, s: &mut Scheduler) {
    s.schedule();
    b.iter(|| {
        for _ in 0..1000 {
            black_box(s.tick());
        }
    })
}

/// Runs the scheduler workloads.
pub fn run(r: &mut Runner) {
    for (id, what, f) in [
        (
            "pick",
            "pick (schedule)",
            pick as fn(&mut Bencher<'_>, &mut Scheduler),
        ),
        ("tick", "tick", tick),
    ] {
        let w = format!("scheduler: {what} (op = one call)");
        let mut g = r.group("scheduler", id, &w, 1000);
        for (i, (&n, name)) in SIZES.iter().zip(NAMES).enumerate() {
            let mut s = ready(n);
            g.bench(name, i == 0, move |b| f(b, &mut s));
        }
        g.finish();
    }
}

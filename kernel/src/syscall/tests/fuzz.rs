//! Host fuzz of system-call dispatch (issue 7): seeded random sequences of calls with
//! adversarial arguments (kernel and non-canonical addresses, huge lengths, unaligned
//! values, ranges overlapping a mapped area and each other), issued by the first
//! thread and by the children it forks and clones.
//!
//! Checked for every call: no panic (each call runs under `catch_unwind`, so a panic
//! is counted, not fatal), the result is a success or a Linux errno (1..=133, or the
//! kernel-internal ERESTARTSYS of a call that blocked), the caller's address space
//! keeps its invariants. After each sequence every process is ended and reaped and
//! the free-frame count must be back where it started.
//!
//! The test prints one summary line (`cargo test ... -- --nocapture` shows it; `cargo
//! xtask test` does): sequences, calls, panics, leaked frames. `KERNEL_FUZZ_SEQUENCES`
//! sets the number of sequences (default [`SEQUENCES`]; `cargo xtask soak` raises it).

use super::*;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Sequences per run (each with its own machine).
const SEQUENCES: u64 = 300;
/// Calls per sequence.
const CALLS: usize = 80;
/// Where every sequence maps its 16-page playground first.
const AREA: usize = 0x1000_0000;
/// Highest Linux errno value.
const ERRNO_MAX: i32 = 133;

/// Every number the dispatcher answers, plus a few it does not.
const NUMBERS: [usize; 49] = [
    SYS_MMAP,
    SYS_MPROTECT,
    SYS_MUNMAP,
    SYS_SCHED_YIELD,
    SYS_GETPID,
    SYS_GETPPID,
    SYS_GETTID,
    SYS_CLONE,
    SYS_FORK,
    SYS_VFORK,
    SYS_EXIT,
    SYS_EXIT_GROUP,
    SYS_WAIT4,
    SYS_NANOSLEEP,
    SYS_BRK,
    SYS_CLOSE,
    SYS_OPEN,
    SYS_OPENAT,
    SYS_PIPE,
    SYS_PIPE2,
    SYS_DUP,
    SYS_DUP2,
    SYS_DUP3,
    SYS_FCNTL,
    SYS_FUTEX,
    SYS_KILL,
    SYS_UNAME,
    SYS_RT_SIGACTION,
    SYS_RT_SIGPROCMASK,
    SYS_SIGALTSTACK,
    SYS_POLL,
    SYS_SCHED_GETAFFINITY,
    SYS_SCHED_SETAFFINITY,
    SYS_SET_TID_ADDRESS,
    102, // getuid
    SYS_READ,
    SYS_WRITE,
    SYS_WRITEV,
    SYS_IOCTL,
    SYS_CLOCK_GETTIME,
    SYS_GETTIMEOFDAY,
    SYS_TIME,
    SYS_GETRANDOM,
    SYS_PPOLL,
    SYS_GETCWD,
    SYS_UMASK,
    SYS_EXECVE,
    SYS_ARCH_PRCTL,
    1000,
];

/// splitmix64: call `i` of sequence `s` depends only on the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A number: mostly one the dispatcher knows, sometimes anything at all.
fn number(r: &mut Rng) -> usize {
    match r.below(10) {
        0 => r.next() as usize,
        _ => NUMBERS[r.below(NUMBERS.len() as u64) as usize],
    }
}

/// An argument chosen to hurt (see the module docs).
fn arg(r: &mut Rng) -> usize {
    let page = |r: &mut Rng| AREA + r.below(20) as usize * P;
    match r.below(16) {
        0 => 0,
        1 => 1,
        2 => usize::MAX,
        3 => 0xffff_8000_0000_0000,
        4 => 0xffff_ffff_8000_0000,
        5 => 0x0000_8000_0000_0000,
        6 => TASK_SIZE as usize - P,
        7 => page(r),
        8 => page(r) + 1 + r.below(P as u64 - 1) as usize,
        9 => (1 + r.below(24) as usize) * P,
        10 => isize::MAX as usize,
        11 => 1 << (30 + r.below(20)),
        12 => r.below(64) as usize,
        13 => MMAP_MIN_ADDR as usize - P,
        14 => (r.below(1 << 16) as usize) << 12,
        _ => r.next() as usize,
    }
}

/// What one run found.
#[derive(Debug, Default)]
struct Tally {
    sequences: u64,
    calls: u64,
    ok: u64,
    errnos: u64,
    panics: u64,
    bad_results: u64,
    leaked_frames: i64,
    numbers: BTreeSet<usize>,
}

/// Whether `r` is a success or a Linux errno.
fn linux_result(r: Result<usize, Errno>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => (1..=ERRNO_MAX).contains(&e.0) || e == Errno::ERESTARTSYS,
    }
}

/// Puts the first thread back on the CPU after a call that blocked, slept or
/// switched (the fuzz has no other thread to wake it).
fn resume_init(m: &mut Machine) {
    let state = m.sched.state(m.init);
    if matches!(state, Some(ThreadState::Blocked | ThreadState::Sleeping)) {
        super::super::blocking::end_call(&mut m.sys_of(m.init));
        let _ = m.sched.unblock(m.init);
    }
    for _ in 0..256 {
        if m.sched.current() == Some(m.init) {
            return;
        }
        m.sched.schedule();
    }
}

fn init_alive(m: &Machine) -> bool {
    m.table.thread(m.init).is_some_and(|t| !t.has_exited())
}

/// One call from `tid`; counts it, remembers the threads it creates in `kids`;
/// `false` if it panicked.
fn one_call(
    m: &mut Machine,
    t: &mut Tally,
    kids: &mut Vec<Tid>,
    tid: Tid,
    num: usize,
    a: [usize; 6],
) -> bool {
    t.calls += 1;
    if NUMBERS.contains(&num) {
        t.numbers.insert(num);
    }
    let r = match catch_unwind(AssertUnwindSafe(|| m.call(tid, num, a))) {
        Ok(r) => r,
        Err(_) => {
            t.panics += 1;
            eprintln!("syscall fuzz: panic in call {num} {a:x?}");
            return false;
        }
    };
    match r {
        Ok(v) if matches!(num, SYS_FORK | SYS_VFORK | SYS_CLONE) => {
            t.ok += 1;
            kids.push(Tid(v as u32));
        }
        Ok(_) => t.ok += 1,
        Err(_) => t.errnos += 1,
    }
    if !linux_result(r) {
        t.bad_results += 1;
        eprintln!("syscall fuzz: {r:?} is no Linux result for {num} {a:x?}");
    }
    true
}

/// The caller of the next call: mostly the first thread, sometimes a child.
fn caller(m: &Machine, kids: &[Tid], r: &mut Rng) -> Tid {
    match (r.below(4), kids.is_empty()) {
        (0, false) => kids[r.below(kids.len() as u64) as usize],
        _ => m.init,
    }
}

/// Calls that usually end the calling process.
fn ends_caller(num: usize) -> bool {
    matches!(num, SYS_EXIT | SYS_EXIT_GROUP | SYS_KILL)
}

/// Ends every process and reaps it; returns frames missing (positive) or extra.
fn finish(mut m: Machine) -> i64 {
    if let Some(init) = m.table.thread(m.init).map(|t| t.pid) {
        let _ = m.table.exit_process(init, 0);
    }
    for _ in 0..8 {
        let pids: Vec<Pid> = (1..=crate::process::PID_MAX)
            .map(Pid)
            .filter(|p| m.table.process(*p).is_some())
            .collect();
        if pids.is_empty() {
            break;
        }
        for p in pids {
            let _ = m.table.exit_process(p, 0);
            let _ = m.table.reap_process(p);
        }
    }
    m.start_free as i64 - m.frames.free() as i64
}

/// A machine like `Machine::new`'s (one process, one running thread) over `frames`,
/// which every sequence reuses (the simulated RAM is not endless; each sequence
/// checks that its frames came back).
fn machine(frames: &TestFrames) -> Machine {
    let mut frames = frames.clone();
    let start_free = frames.free();
    let mut table = ProcessTable::new(frames.clone());
    let root = frames.alloc_frame().expect("a root frame");
    let pid = table.create_process("init".into(), root).expect("init");
    let task = NewTask::new(VirtAddr::new(0x40_0000), VirtAddr::new(0x9000));
    let init = table.create_thread(pid, task).expect("init thread");
    let mut sched = Scheduler::new();
    sched.add(init, Priority::Normal).expect("scheduler");
    sched.schedule();
    Machine {
        table,
        sched,
        frames,
        start_free,
        init,
    }
}

/// One sequence of [`CALLS`] calls on a fresh machine over `frames`.
fn sequence(seed: u64, frames: &TestFrames, t: &mut Tally) {
    let mut r = Rng(seed);
    let mut m = machine(frames);
    m.table.set_max_processes(24);
    let mut kids = Vec::new();
    let _ = m.mmap(AREA, 16 * P, RW, ANON | MAP_FIXED);
    for _ in 0..CALLS {
        let (num, tid) = (number(&mut r), caller(&m, &kids, &mut r));
        if tid == m.init && ends_caller(num) && r.below(16) != 0 {
            continue; // keep the first thread alive for most of the sequence
        }
        let mut a = [0usize; 6];
        a.iter_mut().for_each(|x| *x = arg(&mut r));
        if !one_call(&mut m, t, &mut kids, tid, num, a) {
            return; // the machine may be inconsistent after a panic: drop it
        }
        resume_init(&mut m);
        if !init_alive(&m) {
            break;
        }
        let pid = m.pid_of(m.init);
        if m.table
            .space_mut(pid)
            .map(|s| s.check_invariants())
            .is_err()
        {
            t.bad_results += 1;
        }
    }
    t.leaked_frames += finish(m);
    t.sequences += 1;
}

fn sequences() -> u64 {
    std::env::var("KERNEL_FUZZ_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEQUENCES)
}

#[test]
fn syscall_fuzz_counts_panics_and_leaked_frames() {
    let mut t = Tally::default();
    let start = std::time::Instant::now();
    let frames = TestFrames::new(8);
    for s in 0..sequences() {
        sequence(0x5eed_0000 + s, &frames, &mut t);
    }
    println!(
        "syscall fuzz: {} sequences, {} calls ({} ok, {} errno, {}/{} listed numbers hit) in {:.1} s; panics: {}, leaked frames: {}, non-Linux results: {}",
        t.sequences,
        t.calls,
        t.ok,
        t.errnos,
        t.numbers.len(),
        NUMBERS.len(),
        start.elapsed().as_secs_f64(),
        t.panics,
        t.leaked_frames,
        t.bad_results
    );
    assert_eq!(
        (t.panics, t.leaked_frames, t.bad_results),
        (0, 0, 0),
        "{t:?}"
    );
}

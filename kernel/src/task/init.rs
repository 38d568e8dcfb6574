//! Running user programs from the boot initrd, for the boot crates of every arch: as
//! the whole-system init (`cargo xtask run --init`), in the demo, and in the in-QEMU
//! tests.
//!
//! The initrd built by xtask holds the programs and, for an init run, the files
//! `.init.argv` and `.init.envp` (NUL-terminated strings; `argv[0]` is the path of the
//! program in the archive).
//!
//! For an init run xtask puts `quiet` on the command line (the kernel's own messages
//! are dropped, so the console shows exactly what the program writes); it ends with
//! the marker line [`EXIT_MARKER`]` STATUS` (status = exit code, or 128 + signal)
//! that xtask turns into its own exit status.
//!
//! With `tty` on the command line, init's fds 0, 1 and 2 are the console terminal
//! (line discipline, echo, ^C as SIGINT to the foreground group), which becomes
//! its session's controlling terminal: what `cargo xtask shell` boots with.
//!
//! With `frames` on the command line (issue 7), the init run also prints, just
//! before that marker, the line `frames: baseline N, after M (...)`: N counts the
//! frames free plus the frames the kernel heap holds (slabs, cached empty slabs and
//! large blocks) before init starts, M the same once init and every process it left
//! behind have ended and been reaped. The heap's share is counted because its
//! slabs grow for the kernel objects of a run and are kept as a cache; the bytes
//! the heap still hands out are printed too, so a leak of kernel objects shows.
//! `maxproc=N` on the command line lowers the process limit to N (a fork bomb then
//! meets EAGAIN before memory runs out).

use super::{init_status, spawn_init, user_thread_count, InitFds};
use crate::arch::{console, interrupts, thread};
use crate::initrd::boot_image;
use crate::memory::{frame_allocator, heap};
use crate::println;
use crate::process::scheduler;
use alloc::vec::Vec;

/// Starts the line that reports init's status (after the program's last byte).
pub const EXIT_MARKER: &str = "\u{1}init-exit";
/// The environment of programs the demo and tests start (as natively under xtask).
pub const TEST_ENV: [&[u8]; 3] = [b"HOME=/", b"PATH=/bin", b"TERM=dumb"];
/// Longest a program may run in the demo and tests (guest time).
const LIMIT_MS: u64 = 60_000;

/// NUL-terminated strings of an initrd file.
fn strings(file: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = file.split(|&b| b == 0).collect();
    if v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    v
}

/// Strings in the initrd (argv or envp).
pub type Strings = Vec<&'static [u8]>;

/// The argv and envp of an init run, if the initrd asks for one.
pub fn init_request() -> Option<(Strings, Strings)> {
    let rd = boot_image()?;
    let argv = strings(rd.find(b".init.argv")?);
    let envp = rd.find(b".init.envp").map(strings).unwrap_or_default();
    (!argv.is_empty()).then_some((argv, envp))
}

/// Frames free plus frames the heap holds: what must come back after user programs.
/// The kernel stacks kept mapped for reuse are given back first (their frames and
/// page tables), so the balance is exact.
pub fn frames_accounted() -> (u64, u64) {
    crate::arch::stack::drain_cache();
    let h = heap::heap_stats();
    (
        frame_allocator::free_frame_count(),
        h.slab_frames + h.large_frames,
    )
}

/// Runs `argv[0]` from the initrd as a fresh first process and waits (up to
/// `limit_ms`) until it ends; returns its status (`None`: could not start or timed
/// out). Interrupts are on afterwards.
pub fn run_program(argv: &[&[u8]], envp: &[&[u8]], limit_ms: u64) -> Option<i32> {
    start_program(argv, envp, InitFds::TestConsole, limit_ms)
}

/// [`run_program`], calling `beside` on this CPU once the program has started
/// (while it runs on the others); then waits for it as `run_program` does.
pub fn run_program_beside(
    argv: &[&[u8]],
    envp: &[&[u8]],
    limit_ms: u64,
    beside: impl FnOnce(),
) -> Option<i32> {
    start_program_with(argv, envp, InitFds::TestConsole, limit_ms, beside)
}

/// [`run_program`] with fds 0, 1 and 2 as `fds` says.
fn start_program(argv: &[&[u8]], envp: &[&[u8]], fds: InitFds, limit_ms: u64) -> Option<i32> {
    start_program_with(argv, envp, fds, limit_ms, || {})
}

fn start_program_with(
    argv: &[&[u8]],
    envp: &[&[u8]],
    fds: InitFds,
    limit_ms: u64,
    beside: impl FnOnce(),
) -> Option<i32> {
    let path = argv.first()?;
    if let Err(e) = spawn_init(argv, envp, fds) {
        complain(path, &alloc::format!("{e:?}"));
        return None;
    }
    interrupts::init_timer();
    beside();
    thread::idle_until(|| init_status().is_some(), limit_ms);
    let status = init_status();
    // Let orphans and dead threads finish: reap what is left (another CPU may
    // still be switching away from the last ones).
    thread::idle_until(
        || {
            super::sweep_exited();
            user_thread_count() == 0
        },
        2_000,
    );
    thread::idle_until(
        || {
            thread::reap_dead();
            thread::dead_stacks() == 0
        },
        2_000,
    );
    status
}

/// Says why a program could not start, even when the console is quiet.
fn complain(path: &[u8], why: &str) {
    let name = core::str::from_utf8(path).unwrap_or("?");
    let line = alloc::format!("kernel: cannot start {name}: {why}\n");
    console::write_bytes(line.as_bytes());
}

/// The init run: starts the requested program, waits for it, reports its status
/// (and the frame balance when `cmdline` has the word `frames`). The caller then
/// powers the machine off.
pub fn run_init(argv: &[&[u8]], envp: &[&[u8]], cmdline: &str) {
    scheduler::init_scheduler();
    apply_process_limit(cmdline);
    apply_heap_budget(cmdline);
    let before = (frames_accounted(), heap::heap_stats().bytes_in_use);
    let fds = match cmdline.split_whitespace().any(|w| w == "tty") {
        true => InitFds::Terminal,
        false => InitFds::TestConsole,
    };
    let status = start_program(argv, envp, fds, u64::MAX / 4_000).unwrap_or(127);
    interrupts::disable();
    if cmdline.split_whitespace().any(|w| w == "frames") {
        report_frames(
            before,
            (frames_accounted(), heap::heap_stats().bytes_in_use),
        );
    }
    let line = alloc::format!("{EXIT_MARKER} {status}\n");
    console::write_bytes(line.as_bytes());
}

/// `maxproc=N` on the command line: at most N processes.
fn apply_process_limit(cmdline: &str) {
    let limit = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("maxproc="))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(n) = limit {
        crate::process::PROCESS_TABLE.lock().set_max_processes(n);
    }
}

/// The kernel heap budget ([`crate::memory::kmem`]): a quarter of RAM for what
/// user programs make the kernel hold, half of that for one process;
/// `kmem=MIB` on the command line sets the total instead. Also the RAM the
/// overcommit heuristic measures requests against ([`crate::syscall::overcommit`]).
fn apply_heap_budget(cmdline: &str) {
    let ram = crate::memory::frame_allocator::total_frame_count() * crate::memory::PAGE_SIZE;
    let limit = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("kmem="))
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(ram / 4, |mib| mib << 20);
    let mut table = crate::process::PROCESS_TABLE.lock();
    table.kmem_budget().set_limits(limit, limit / 2);
    table.set_ram_pages(ram / crate::memory::PAGE_SIZE);
}

/// Frames (free, heap-held) and heap bytes in use at one moment.
type FrameSnapshot = ((u64, u64), u64);

/// Prints `frames: baseline N, after M (...)` on the console, quiet or not.
fn report_frames(before: FrameSnapshot, after: FrameSnapshot) {
    let (((free0, heap0), bytes0), ((free1, heap1), bytes1)) = (before, after);
    let line = alloc::format!(
        "frames: baseline {}, after {} (free {free0} -> {free1}, heap-held {heap0} -> {heap1}, heap bytes in use {bytes0} -> {bytes1}, user threads left {}, kmem charged {})\n",
        free0 + heap0,
        free1 + heap1,
        user_thread_count(),
        crate::process::PROCESS_TABLE.lock().kmem_budget().used()
    );
    console::write_bytes(line.as_bytes());
}

/// The demo's user part: a few programs of `user/`, one after the other.
pub fn demo() -> bool {
    let Some(rd) = boot_image() else {
        println!("demo: no initrd, so no user programs (run through `cargo xtask run`)");
        return true;
    };
    let before = frames_accounted();
    let mut ok = true;
    for name in ["hello", "forktree", "threads"] {
        if rd.find(name.as_bytes()).is_none() {
            continue;
        }
        println!("demo: running user program /{name} as a fresh process");
        let status = run_program(&[name.as_bytes()], &TEST_ENV, LIMIT_MS);
        println!("demo: /{name} ended with status {status:?}");
        ok &= status == Some(0);
    }
    let after = frames_accounted();
    println!(
        "demo: frames free+heap before {} after {}",
        before.0 + before.1,
        after.0 + after.1
    );
    ok
}

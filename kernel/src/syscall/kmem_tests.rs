//! Host tests of the kernel heap budget ([`crate::memory::kmem`]): each kind of
//! kernel object a user program can multiply (memory regions, fd slots, pipe
//! buffers, threads, processes) runs into a small budget; the call gets Linux's
//! errno for kernel memory running out (ENOMEM), nothing changes, another process
//! still gets its share, and once the objects go every byte of the budget and
//! every frame is back.

use super::clone::*;
use super::mmap::*;
use super::tests::Machine;
use super::*;
use crate::memory::address_space::REGION_COST;
use crate::memory::kmem::Budget;
use alloc::sync::Arc;
use alloc::vec::Vec;

const P: usize = 4096;
const BASE: usize = 0x1000_0000;
const ANON_FIXED: usize = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/// A machine whose budget is `limit` bytes, `share` of them for one process; and
/// that budget, with what it holds already (init and its fd table).
fn machine(limit: u64, share: u64) -> (Machine, Arc<Budget>, u64) {
    let mut m = Machine::new(8);
    let b = m.table.kmem_budget();
    b.set_limits(limit, share);
    let base = b.used();
    (m, b, base)
}

/// Maps single pages at BASE, BASE + 2P, ... with alternating protections (no two
/// merge) as `tid` until a call fails; returns how many fit and the error.
fn map_until_refused(m: &mut Machine, tid: Tid) -> (usize, Errno) {
    for i in 0.. {
        let prot = [PROT_READ, PROT_READ | PROT_WRITE][i % 2];
        let args = [BASE + i * P, P, prot, ANON_FIXED, usize::MAX, 0];
        if let Err(e) = m.call(tid, SYS_MMAP, args) {
            return (i, e);
        }
    }
    unreachable!()
}

fn regions(m: &Machine, tid: Tid) -> usize {
    m.table.space(m.pid_of(tid)).unwrap().regions().count()
}

/// What init's account holds now.
fn init_used(m: &Machine) -> u64 {
    m.table.process(m.pid_of(m.init)).unwrap().kmem.used()
}

/// Ends every process; then the budget holds nothing.
fn shut_down(m: Machine, b: &Budget) {
    m.shut_down();
    assert_eq!(b.used(), 0, "every charged byte came back");
}

#[test]
fn regions_stop_at_the_share_with_enomem_and_nothing_changes() {
    let share = 200 * REGION_COST;
    let (mut m, b, base) = machine(1 << 30, share);
    let init = m.init;
    let (made, err) = map_until_refused(&mut m, init);
    assert_eq!(err, ENOMEM);
    assert!(made > 150 && made < 200, "made {made} regions");
    let before = regions(&m, init);
    // A split needs a region too: mprotect and munmap in the middle of one fail the
    // same way and change nothing.
    let hole = [
        BASE + 10_000 * P,
        4 * P,
        PROT_READ,
        ANON_FIXED,
        usize::MAX,
        0,
    ];
    assert_eq!(m.sys(SYS_MMAP, hole), Err(ENOMEM));
    assert_eq!(regions(&m, init), before, "a refused mmap changes nothing");
    // Unmapping whole regions needs nothing and gives their charge back.
    let used = b.used();
    assert_eq!(m.sys(SYS_MUNMAP, [BASE, 20 * P, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        used - b.used(),
        20 * REGION_COST,
        "charge follows the regions"
    );
    assert_eq!(m.sys(SYS_MMAP, hole), Ok(hole[0]), "room again");
    assert_eq!(m.sys(SYS_MUNMAP, [BASE, 20_000 * P, 0, 0, 0, 0]), Ok(0));
    assert!(b.used() <= base + REGION_COST, "back to init's own charge");
    shut_down(m, &b);
}

#[test]
fn one_process_cannot_take_the_budget_from_another() {
    let share = 100 * REGION_COST;
    let (mut m, b, _) = machine(4 * share, share);
    let init = m.init;
    let (made, err) = map_until_refused(&mut m, init);
    assert_eq!(err, ENOMEM);
    // The child is a copy (its regions charged to itself), then it maps its own.
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let munmap = [BASE, made * P, 0, 0, 0, 0];
    assert_eq!(m.call(child, SYS_MUNMAP, munmap), Ok(0));
    let (made_by_child, err) = map_until_refused(&mut m, child);
    assert_eq!(err, ENOMEM);
    assert!(
        made_by_child + 2 >= made,
        "the child gets a whole share too"
    );
    shut_down(m, &b);
}

#[test]
fn fd_slots_stop_at_the_share_with_enomem_and_close_gives_back() {
    let (mut m, b, _) = machine(1 << 30, 1 << 30);
    let share = init_used(&m) + 64 * super::fd::SLOT_COST;
    b.set_limits(1 << 30, share);
    let mut fds = Vec::new();
    let err = loop {
        match m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]) {
            Ok(fd) => fds.push(fd),
            Err(e) => break e,
        }
    };
    assert_eq!(err, ENOMEM);
    assert_eq!(fds.len(), 64, "64 more slots fit, then none");
    // The table keeps its slots (as Linux's does); they are reused.
    let used = b.used();
    for fd in fds.drain(..) {
        assert_eq!(m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]), Ok(0));
    }
    assert_eq!(m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]), Ok(3));
    assert_eq!(b.used(), used, "reusing a slot costs nothing");
    // A fork copies the table, charged to the child: past the whole budget it fails.
    b.set_limits(b.used() + 1000, share);
    assert_eq!(m.sys(SYS_FORK, [0; 6]), Err(ENOMEM));
    shut_down(m, &b);
}

#[test]
fn pipe_buffers_take_what_fits_then_enomem_and_reading_gives_back() {
    let (mut m, b, _) = machine(1 << 30, 1 << 20);
    let buf = m
        .sys(
            SYS_MMAP,
            [
                0,
                64 * 1024,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                usize::MAX,
                0,
            ],
        )
        .unwrap();
    assert_eq!(
        m.sys(SYS_PIPE2, [buf, super::fd::O_CLOEXEC, 0, 0, 0, 0]),
        Ok(0)
    );
    let (r, w) = (3, 4);
    let base = b.used();
    b.set_limits(1 << 30, b.share().min(base + 16 * 1024));
    let write = [w, buf, 64 * 1024, 0, 0, 0];
    // Non-blocking, so a full budget is not taken for a full pipe.
    assert_eq!(m.sys(SYS_FCNTL, [w, 4, 0o4000, 0, 0, 0]), Ok(0));
    let wrote = m.sys(SYS_WRITE, write).unwrap();
    assert!((8 * 1024..=16 * 1024).contains(&wrote), "wrote {wrote}");
    assert!(b.used() - base <= 16 * 1024);
    assert_eq!(m.sys(SYS_WRITE, write), Err(ENOMEM), "nothing more fits");
    assert_eq!(m.sys(SYS_READ, [r, buf, 64 * 1024, 0, 0, 0]), Ok(wrote));
    assert_eq!(b.used(), base, "an emptied buffer goes back");
    assert_eq!(m.sys(SYS_WRITE, [w, buf, 100, 0, 0, 0]), Ok(100));
    shut_down(m, &b);
}

#[test]
fn threads_and_processes_stop_at_the_budget_with_enomem() {
    use crate::process::{PROCESS_COST, THREAD_COST};
    let (mut m, b, base) = machine(1 << 30, 1 << 30);
    b.set_limits(1 << 30, init_used(&m) + 8 * THREAD_COST);
    let flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
    let mut threads = 0;
    let err = loop {
        match m.sys(SYS_CLONE, [flags, 0x7000_0000, 0, 0, 0, 0]) {
            Ok(_) => threads += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, ENOMEM);
    assert_eq!(threads, 8);
    // Processes are charged to their own accounts: the total bounds them.
    let cost = PROCESS_COST
        + THREAD_COST
        + 3 * super::fd::SLOT_COST
        + regions(&m, m.init) as u64 * REGION_COST;
    let room = 5 * cost + cost / 2;
    b.set_limits(b.used() + room, 1 << 30);
    let mut forks = 0;
    let err = loop {
        match m.sys(SYS_FORK, [0; 6]) {
            Ok(_) => forks += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, ENOMEM);
    assert_eq!(forks, 5, "a fork costs {cost} bytes");
    assert!(b.used() > base);
    // A refused fork left nothing behind: the children hold exactly their cost.
    assert!(b.limit() - b.used() < cost);
    shut_down(m, &b);
}

#[test]
fn execve_out_of_memory_past_the_point_of_no_return_kills_by_sigsegv() {
    let (mut m, b, _) = machine(1 << 30, 1 << 30);
    let buf = BASE;
    let rw = PROT_READ | PROT_WRITE;
    assert_eq!(
        m.sys(SYS_MMAP, [buf, P, rw, ANON_FIXED, usize::MAX, 0]),
        Ok(buf)
    );
    super::io_tests::put_prog(&m);
    m.poke_bytes(buf, b"/prog\0");
    // A child process sharing init's fd table: its exec must copy the table.
    let sigchld = 17;
    let child = m
        .sys(SYS_CLONE, [CLONE_FILES | sigchld, 0, 0, 0, 0, 0])
        .unwrap();
    for _ in 0..200 {
        m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]).unwrap();
    }
    // Room for the new image's regions, not for a copy of 200 fd slots.
    b.set_limits(b.used() + 8 * REGION_COST, 1 << 30);
    assert_eq!(
        m.call(Tid(child as u32), SYS_EXECVE, [buf, 0, 0, 0, 0, 0]),
        Err(ENOMEM)
    );
    b.set_limits(1 << 30, 1 << 30);
    let status = buf + 64;
    assert_eq!(m.sys(SYS_WAIT4, [child, status, 0, 0, 0, 0]), Ok(child));
    let w = m.peek_bytes(status, 4);
    assert_eq!(
        i32::from_le_bytes([w[0], w[1], w[2], w[3]]),
        11,
        "WIFSIGNALED, WTERMSIG = SIGSEGV"
    );
    let init = m.pid_of(m.init);
    let files = m.table.process(init).unwrap().files.clone();
    assert!(super::fd::is_open(&files, 200), "init's table is intact");
    drop(files);
    shut_down(m, &b);
}

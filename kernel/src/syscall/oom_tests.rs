//! Host tests of the OOM killer: a hog fills the machine's memory, another process
//! then needs frames from inside the kernel (MAP_POPULATE, getrandom, a read into
//! fresh pages): the hog is killed, the frames come back, init survives.

use super::mmap::{MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use super::oom::OomOutcome;
use super::overcommit::MAP_NORESERVE;
use super::signal::KILLED;
use super::tests::Machine;
use super::*;
use crate::process::oom::choose_victim;
use crate::process::ProcessState;

const P: usize = 4096;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;
/// Where init's fresh buffer goes.
const BUF: usize = 0x2000_0000;
/// Free pages the hog leaves.
const LEFT: u64 = 40;
const SIGKILL: i32 = 9;

/// A machine whose init is unkillable (as the kernel makes it), and a forked hog
/// that holds all memory but [`LEFT`] pages.
fn machine_with_hog() -> (Machine, Tid) {
    let mut m = Machine::new(8);
    let init = m.pid_of(m.init);
    m.table.process_mut(init).unwrap().unkillable = true;
    let hog = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let pages = (m.frames.free() - LEFT) as usize;
    let args = [0, pages * P, RW, ANON | MAP_POPULATE, usize::MAX, 0];
    assert!(m.call(hog, SYS_MMAP, args).is_ok());
    let resident = m.table.space(m.pid_of(hog)).unwrap().resident_pages();
    assert!(resident >= pages, "the hog holds its memory");
    assert!(m.frames.free() < LEFT, "memory is nearly gone");
    (m, hog)
}

/// A fresh (unpopulated) mapping of `pages` pages at [`BUF`] in init (not
/// accounted, so it may be larger than RAM: the tests overfill memory by faults).
fn fresh_buffer(m: &mut Machine, pages: usize) {
    let flags = ANON | MAP_FIXED | MAP_NORESERVE;
    let args = [BUF, pages * P, RW, flags, usize::MAX, 0];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(BUF));
}

fn killed_by_oom(m: &Machine, tid: Tid) -> bool {
    let pid = Pid(tid.0);
    let state = m.table.process(pid).map(|p| p.state);
    state
        == Some(ProcessState::Zombie {
            status: KILLED | SIGKILL,
        })
}

fn init_alive(m: &Machine) -> bool {
    let pid = m.pid_of(m.init);
    m.table.process(pid).map(|p| p.state) == Some(ProcessState::Alive)
}

#[test]
fn getrandom_into_fresh_pages_kills_the_hog_and_completes() {
    let (mut m, hog) = machine_with_hog();
    fresh_buffer(&mut m, 256);
    assert_eq!(
        m.sys(SYS_GETRANDOM, [BUF, 256 * P, 0, 0, 0, 0]),
        Ok(256 * P)
    );
    assert!(killed_by_oom(&m, hog), "the hog, not the caller, is killed");
    assert!(init_alive(&m));
    m.shut_down();
}

#[test]
fn map_populate_kills_the_hog_and_populates_everything() {
    let (mut m, hog) = machine_with_hog();
    let args = [
        BUF,
        256 * P,
        RW,
        ANON | MAP_FIXED | MAP_POPULATE,
        usize::MAX,
        0,
    ];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(BUF));
    let init = m.pid_of(m.init);
    assert!(m.table.space(init).unwrap().resident_pages() >= 256);
    assert!(killed_by_oom(&m, hog));
    assert!(init_alive(&m));
    m.shut_down();
}

#[test]
fn read_of_a_file_into_fresh_pages_kills_the_hog_and_reads_it_all() {
    let mut m = Machine::new(8);
    let file: Vec<u8> = (0..128 * P).map(|i| (i % 251) as u8).collect();
    m.put_file("/big", &file, 0o644);
    let init = m.pid_of(m.init);
    m.table.process_mut(init).unwrap().unkillable = true;
    fresh_buffer(&mut m, 1);
    m.poke_bytes(BUF, b"/big\0");
    let fd = m.sys(SYS_OPEN, [BUF, 0, 0, 0, 0, 0]).unwrap();
    let hog = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let pages = (m.frames.free() - LEFT) as usize;
    let args = [0, pages * P, RW, ANON | MAP_POPULATE, usize::MAX, 0];
    assert!(m.call(hog, SYS_MMAP, args).is_ok());
    let dst = BUF + 16 * P;
    let args = [dst, 128 * P, RW, ANON | MAP_FIXED, usize::MAX, 0];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(dst));
    assert_eq!(m.sys(SYS_READ, [fd, dst, 128 * P, 0, 0, 0]), Ok(128 * P));
    assert!(m.peek_bytes(dst, 128 * P) == file, "every byte, in order");
    assert!(killed_by_oom(&m, hog));
    m.shut_down();
}

#[test]
fn a_hog_that_overfills_memory_is_its_own_victim() {
    let mut m = Machine::new(8);
    let init = m.pid_of(m.init);
    m.table.process_mut(init).unwrap().unkillable = true;
    let hog = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let too_much = (m.frames.free() as usize + 64) * P;
    let flags = ANON | MAP_POPULATE | MAP_NORESERVE;
    let args = [0, too_much, RW, flags, usize::MAX, 0];
    assert!(m.call(hog, SYS_MMAP, args).is_ok(), "mmap itself succeeds");
    // Pending for the process (SIGKILL goes to its shared set) or its thread.
    let shared = m.table.process(Pid(hog.0)).unwrap().shared_pending.set();
    let pending = shared | m.table.thread(hog).unwrap().pending.set();
    assert_ne!(pending & 1 << (SIGKILL - 1), 0, "SIGKILL waits for the hog");
    assert!(init_alive(&m));
    // Its way back to user mode: the signal ends it, its memory comes back.
    let mut s = m.sys_of(hog);
    assert!(signal::kill_process(&mut s, Pid(hog.0), SIGKILL).is_ok());
    m.shut_down();
}

#[test]
fn init_alone_is_never_chosen_and_its_call_fails_short() {
    let mut m = Machine::new(8);
    let init = m.pid_of(m.init);
    m.table.process_mut(init).unwrap().unkillable = true;
    let pages = (m.frames.free() + 64) as usize;
    fresh_buffer(&mut m, pages);
    let got = m.sys(SYS_GETRANDOM, [BUF, pages * P, 0, 0, 0, 0]).unwrap();
    assert!(got > 0 && got < pages * P, "a short count, not a kill");
    assert_eq!(m.table.thread(m.init).unwrap().pending.set(), 0);
    assert_eq!(m.table.process(init).unwrap().shared_pending.set(), 0);
    assert_eq!(m.sys_of(m.init).out_of_memory(), OomOutcome::NoVictim);
    assert!(init_alive(&m));
    m.shut_down();
}

#[test]
fn the_victim_is_the_heaviest_killable_process() {
    let mut m = Machine::new(8);
    let init = m.pid_of(m.init);
    fresh_buffer(&mut m, 64);
    assert_eq!(m.sys(SYS_GETRANDOM, [BUF, 64 * P, 0, 0, 0, 0]), Ok(64 * P));
    let small = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let big = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let populate = |n: usize| [0, n * P, RW, ANON | MAP_POPULATE, usize::MAX, 0];
    assert!(m.call(small, SYS_MMAP, populate(8)).is_ok());
    assert!(m.call(big, SYS_MMAP, populate(16)).is_ok());
    // Shared copy-on-write pages count for each process that maps them: the
    // children outweigh init, and the bigger child is chosen.
    assert_eq!(choose_victim(&m.table).map(|c| c.pid), Some(Pid(big.0)));
    m.table.process_mut(init).unwrap().unkillable = true;
    assert_eq!(choose_victim(&m.table).map(|c| c.pid), Some(Pid(big.0)));
    assert_eq!(
        m.sys_of(m.init).out_of_memory(),
        OomOutcome::Freed(Pid(big.0))
    );
    assert_eq!(choose_victim(&m.table).map(|c| c.pid), Some(Pid(small.0)));
    let mut s = m.sys_of(small);
    assert_eq!(
        s.out_of_memory(),
        OomOutcome::CallerKilled,
        "the caller may be it"
    );
    m.shut_down();
}

//! Host tests of the calls ring 3 needed first: futex, brk, kill (and the wait
//! status of a death by signal), close, and the accepted-but-inert signal calls,
//! poll and uname. Every test has a machine of its own (process table, futex queues,
//! scheduler), so they run in parallel.

use super::mmap::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use super::tests::Machine;
use super::*;
use crate::process::ThreadState;

/// The ring-3 calls' helpers on the shared test machine.
impl Machine {
    fn pid(&self) -> Pid {
        self.pid_of(self.init)
    }

    fn map_page(&mut self, at: usize) {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
        let r = self.sys(
            SYS_MMAP,
            [at, 4096, PROT_READ | PROT_WRITE, flags, usize::MAX, 0],
        );
        assert_eq!(r, Ok(at));
    }

    fn write(&mut self, at: usize, bytes: &[u8]) {
        let pid = self.pid();
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_to_user(at as u64, bytes).unwrap();
    }

    fn read(&mut self, at: usize, buf: &mut [u8]) {
        let pid = self.pid();
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_from_user(at as u64, buf).unwrap();
    }

    /// The fd table of `pid`.
    fn files(&self, pid: Pid) -> fd::Files {
        self.table.process(pid).unwrap().files.clone()
    }

    /// The disposition of `sig` in `pid`.
    fn action(&self, pid: Pid, sig: i32) -> u64 {
        self.table.process(pid).unwrap().signals.lock().get(sig)
    }

    /// A second thread of the process (CLONE_THREAD), admitted to the scheduler.
    pub(super) fn thread(&mut self) -> Tid {
        let flags = clone::CLONE_VM | clone::CLONE_SIGHAND | clone::CLONE_THREAD;
        Tid(self
            .sys(SYS_CLONE, [flags, 0x7000_0000, 0, 0, 0, 0])
            .unwrap() as u32)
    }
}

const FUTEX_WAIT_PRIVATE: usize = 128;
const FUTEX_WAKE_PRIVATE: usize = 129;

#[test]
fn futex_wait_checks_the_value_blocks_and_wake_releases() {
    let mut m = Machine::new(4);
    m.map_page(0x1000_0000);
    let word = 0x1000_0040;
    m.write(word, &5u32.to_le_bytes());
    assert_eq!(
        m.sys(SYS_FUTEX, [word, FUTEX_WAIT_PRIVATE, 6, 0, 0, 0]),
        Err(EAGAIN)
    );
    assert_eq!(
        m.sys(SYS_FUTEX, [word + 1, FUTEX_WAIT_PRIVATE, 5, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_FUTEX, [0x2000_0000, FUTEX_WAIT_PRIVATE, 5, 0, 0, 0]),
        Err(EFAULT)
    );
    assert_eq!(m.sys(SYS_FUTEX, [word, 77, 0, 0, 0, 0]), Err(ENOSYS));
    let waker = m.thread();
    assert_eq!(
        m.sys(SYS_FUTEX, [word, FUTEX_WAIT_PRIVATE, 5, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    assert_eq!(m.sched.current(), Some(waker));
    assert_eq!(
        m.call(waker, SYS_FUTEX, [word, FUTEX_WAKE_PRIVATE, 10, 0, 0, 0]),
        Ok(1)
    );
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Ready));
    assert_eq!(
        m.call(waker, SYS_FUTEX, [word, FUTEX_WAKE_PRIVATE, 10, 0, 0, 0]),
        Ok(0)
    );
    // Re-issued, the wait answers 0 although the word still holds 5: it was woken.
    m.sched.yield_now();
    assert_eq!(m.sched.current(), Some(m.init));
    assert_eq!(
        m.sys(SYS_FUTEX, [word, FUTEX_WAIT_PRIVATE, 5, 0, 0, 0]),
        Ok(0)
    );
    m.shut_down();
}

#[test]
fn brk_grows_shrinks_and_refuses_like_linux() {
    let mut m = Machine::new(4);
    let start = 0x60_0000usize;
    let pid = m.pid();
    m.table.process_mut(pid).unwrap().brk = Some(brk::Brk::at(start as u64));
    assert_eq!(m.sys(SYS_BRK, [0; 6]), Ok(start));
    let want = start + 3 * 4096 + 100;
    assert_eq!(m.sys(SYS_BRK, [want, 0, 0, 0, 0, 0]), Ok(want));
    m.write(want - 1, &[7]);
    assert_eq!(
        m.sys(SYS_BRK, [start + 4096, 0, 0, 0, 0, 0]),
        Ok(start + 4096)
    );
    let cur = start + 4096;
    for bad in [start - 4096, start + (1 << 40), 0xffff_8000_0000_0000] {
        assert_eq!(m.sys(SYS_BRK, [bad, 0, 0, 0, 0, 0]), Ok(cur), "{bad:#x}");
    }
    // Growing into another mapping is refused too.
    m.map_page(start + 8 * 4096);
    assert_eq!(m.sys(SYS_BRK, [start + 16 * 4096, 0, 0, 0, 0, 0]), Ok(cur));
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    assert_eq!(
        m.call(child, SYS_BRK, [0; 6]),
        Ok(cur),
        "fork copies the break"
    );
    let grown = cur + 2 * 4096;
    assert_eq!(m.call(child, SYS_BRK, [grown, 0, 0, 0, 0, 0]), Ok(grown));
    assert_eq!(
        m.sys(SYS_BRK, [0; 6]),
        Ok(cur),
        "the child's break is its own"
    );
    m.shut_down();
}

#[test]
fn kill_ends_a_child_and_wait_reports_the_signal() {
    let mut m = Machine::new(4);
    m.map_page(0x1000_0000);
    let child = m.sys(SYS_FORK, [0; 6]).unwrap();
    assert_eq!(m.sys(SYS_KILL, [child, 65, 0, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_KILL, [31_999, 9, 0, 0, 0, 0]), Err(ESRCH));
    assert_eq!(m.sys(SYS_KILL, [child, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        m.sys(SYS_KILL, [child, 17, 0, 0, 0, 0]),
        Ok(0),
        "SIGCHLD is ignored"
    );
    assert_eq!(m.sys(SYS_KILL, [child, 9, 0, 0, 0, 0]), Ok(0));
    let status = 0x1000_0000;
    assert_eq!(m.sys(SYS_WAIT4, [child, status, 0, 0, 0, 0]), Ok(child));
    let mut w = [0u8; 4];
    m.read(status, &mut w);
    assert_eq!(i32::from_le_bytes(w), 9, "WIFSIGNALED, WTERMSIG = SIGKILL");
    assert_eq!(signal::wait_status(3), 3 << 8);
    m.shut_down();
}

#[test]
fn close_removes_console_fds_once() {
    let mut m = Machine::new(4);
    let pid = m.pid();
    assert!(fd::is_open(&m.files(pid), 1));
    assert_eq!(m.sys(SYS_CLOSE, [1, 0, 0, 0, 0, 0]), Ok(0));
    assert!(!fd::is_open(&m.files(pid), 1) && fd::is_open(&m.files(pid), 2));
    assert_eq!(m.sys(SYS_CLOSE, [1, 0, 0, 0, 0, 0]), Err(EBADF));
    assert_eq!(m.sys(SYS_CLOSE, [7, 0, 0, 0, 0, 0]), Err(EBADF));
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let close = [2, 0, 0, 0, 0, 0];
    assert_eq!(
        m.call(child, SYS_CLOSE, [1, 0, 0, 0, 0, 0]),
        Err(EBADF),
        "fork copies the table"
    );
    assert_eq!(m.call(child, SYS_CLOSE, close), Ok(0));
    assert!(
        fd::is_open(&m.files(pid), 2),
        "the child's close leaves the parent's fd"
    );
    m.shut_down();
}

#[test]
fn signal_calls_poll_and_uname_answer_like_a_quiet_linux() {
    let mut m = Machine::new(4);
    let buf = 0x1000_0000;
    m.map_page(buf);
    m.write(buf, &[0xff; 64]);
    assert_eq!(m.sys(SYS_RT_SIGACTION, [11, 0, buf, 8, 0, 0]), Ok(0));
    let mut old = [0u8; 32];
    m.read(buf, &mut old);
    assert_eq!(old, [0; 32], "SIG_DFL, no flags, empty mask");
    assert_eq!(m.sys(SYS_RT_SIGACTION, [9, buf, 0, 8, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_RT_SIGACTION, [11, 0, 0, 4, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_RT_SIGPROCMASK, [9, buf, 0, 8, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_SIGALTSTACK, [0, buf, 0, 0, 0, 0]), Ok(0));
    let mut ss = [0u8; 24];
    m.read(buf, &mut ss);
    assert_eq!(ss[8..12], 2u32.to_le_bytes(), "SS_DISABLE");
    // poll: fd 1 writable, fd 9 invalid, fd -1 skipped.
    let mut fds = [0u8; 24];
    fds[..4].copy_from_slice(&1i32.to_le_bytes());
    fds[4..6].copy_from_slice(&4u16.to_le_bytes());
    fds[8..12].copy_from_slice(&9i32.to_le_bytes());
    fds[16..20].copy_from_slice(&(-1i32).to_le_bytes());
    m.write(buf, &fds);
    assert_eq!(m.sys(SYS_POLL, [buf, 3, 0, 0, 0, 0]), Ok(2));
    m.read(buf, &mut fds);
    assert_eq!((fds[6], fds[14], fds[22]), (4, 0x20, 0));
    let across = buf + 4000; // 390 bytes: runs into the unmapped next page
    assert_eq!(m.sys(SYS_UNAME, [across, 0, 0, 0, 0, 0]), Err(EFAULT));
    m.map_page(buf + 4096);
    assert_eq!(m.sys(SYS_UNAME, [across, 0, 0, 0, 0, 0]), Ok(0));
    let mut name = [0u8; 6];
    m.read(across, &mut name);
    assert_eq!(&name, b"Linux\0");
    m.shut_down();
}

#[test]
fn shared_futexes_meet_across_processes() {
    let mut m = Machine::new(4);
    let flags = super::mmap::MAP_SHARED | MAP_ANONYMOUS;
    let w = m
        .sys(
            SYS_MMAP,
            [0, 4096, PROT_READ | PROT_WRITE, flags, usize::MAX, 0],
        )
        .unwrap();
    m.write(w, &0u32.to_le_bytes());
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    m.sched.yield_now();
    assert_eq!(m.sched.current(), Some(child));
    assert_eq!(
        m.call(child, SYS_FUTEX, [w, 0, 0, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    assert_eq!(m.sched.state(child), Some(ThreadState::Blocked));
    assert_eq!(
        m.sys(SYS_FUTEX, [w, 1, 1, 0, 0, 0]),
        Ok(1),
        "FUTEX_WAKE finds the child"
    );
    m.shut_down();
}

#[test]
fn one_cpu_and_root_ids() {
    let mut m = Machine::new(4);
    let buf = 0x1000_0000;
    m.map_page(buf);
    assert_eq!(
        m.sys(SYS_SCHED_GETAFFINITY, [0, 4, buf, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(m.sys(SYS_SCHED_GETAFFINITY, [0, 128, buf, 0, 0, 0]), Ok(8));
    let mut mask = [0u8; 8];
    m.read(buf, &mut mask);
    assert_eq!(mask, [1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(m.sys(SYS_SCHED_SETAFFINITY, [0, 8, buf, 0, 0, 0]), Ok(0));
    m.write(buf, &[2]);
    assert_eq!(
        m.sys(SYS_SCHED_SETAFFINITY, [0, 8, buf, 0, 0, 0]),
        Err(EINVAL)
    );
    for n in SYS_IDS {
        assert_eq!(m.sys(n, [0; 6]), Ok(0));
    }
    m.shut_down();
}

#[test]
fn clone_children_start_without_a_stack_and_freed_arch_state_comes_back() {
    let mut m = Machine::new(4);
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let t = m.table.thread_mut(child).unwrap();
    assert_eq!(
        t.kernel_stack, None,
        "the arch gives clone children their stacks"
    );
    t.arch = Some(crate::process::ArchState(alloc::boxed::Box::new(7u32)));
    let _ = m.call(child, SYS_EXIT_GROUP, [3, 0, 0, 0, 0, 0]);
    assert_eq!(
        m.sys(SYS_WAIT4, [child.0 as usize, 0, 0, 0, 0, 0]),
        Ok(child.0 as usize)
    );
    let released = m.table.take_released();
    assert_eq!(released.len(), 1, "reaping hands the arch state back");
    assert_eq!(released[0].0, child);
    assert_eq!(released[0].1 .0.downcast_ref::<u32>(), Some(&7));
    m.shut_down();
}

#[test]
fn pipe2_dup_and_fcntl_manage_the_fd_table() {
    let mut m = Machine::new(4);
    let files = m.files(m.pid());
    let buf = 0x1000_0000;
    m.map_page(buf);
    assert_eq!(m.sys(SYS_PIPE2, [buf, 0x1, 0, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_PIPE2, [buf, 0, 0, 0, 0, 0]), Ok(0));
    let mut fds = [0u8; 8];
    m.read(buf, &mut fds);
    assert_eq!(
        fds,
        [3, 0, 0, 0, 4, 0, 0, 0],
        "lowest free fds, read end first"
    );
    assert!(matches!(fd::file(&files, 3), Some(fd::File::PipeRead(_))));
    assert_eq!(m.sys(SYS_DUP2, [4, 1, 0, 0, 0, 0]), Ok(1));
    assert!(matches!(fd::file(&files, 1), Some(fd::File::PipeWrite(_))));
    assert_eq!(m.sys(SYS_DUP3, [4, 4, 0, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_DUP, [9, 0, 0, 0, 0, 0]), Err(EBADF));
    assert_eq!(m.sys(SYS_FCNTL, [3, 2, 1, 0, 0, 0]), Ok(0));
    assert_eq!(m.sys(SYS_FCNTL, [3, 1, 0, 0, 0, 0]), Ok(1));
    fd::close_on_exec(&files, m.pid_of(m.init));
    assert!(!fd::is_open(&files, 3), "close-on-exec");
    assert_eq!(
        m.sys(SYS_PIPE, [0xffff_8000_0000_0000, 0, 0, 0, 0, 0]),
        Err(EFAULT)
    );
    assert!(!fd::is_open(&files, 3), "a failed pipe leaves no fd");
    m.shut_down();
}

#[test]
fn dev_null_opens_and_fcntl_sets_nonblocking() {
    let mut m = Machine::new(4);
    let files = m.files(m.pid());
    let buf = 0x1000_0000;
    m.map_page(buf);
    m.write(buf, b"/dev/null\0");
    m.write(buf + 64, b"/etc/passwd\0");
    assert_eq!(m.sys(SYS_OPEN, [buf, 0, 0, 0, 0, 0]), Ok(3));
    assert!(matches!(fd::file(&files, 3), Some(fd::File::Node(_))));
    assert_eq!(
        m.sys(SYS_OPENAT, [usize::MAX - 99, buf + 64, 0, 0, 0, 0]),
        Err(Errno(2))
    );
    assert_eq!(
        m.sys(SYS_OPEN, [0xffff_8000_0000_0000, 0, 0, 0, 0, 0]),
        Err(EFAULT)
    );
    assert!(!fd::is_nonblocking(&files, 3));
    assert_eq!(m.sys(SYS_FCNTL, [3, 4, 0o4000, 0, 0, 0]), Ok(0));
    assert!(fd::is_nonblocking(&files, 3));
    assert_eq!(
        m.sys(SYS_FCNTL, [3, 3, 0, 0, 0, 0]),
        Ok(0o104_000),
        "O_RDONLY | O_NONBLOCK | O_LARGEFILE, as Linux reports it"
    );
    m.shut_down();
}

#[test]
fn dispositions_are_recorded_inherited_and_reset_by_exec() {
    let mut m = Machine::new(4);
    let pid = m.pid();
    let buf = 0x1000_0000;
    m.map_page(buf);
    m.write(buf, &1u64.to_le_bytes()); // SIG_IGN
    assert_eq!(m.sys(SYS_RT_SIGACTION, [15, buf, buf + 64, 8, 0, 0]), Ok(0));
    let mut old = [0u8; 8];
    m.read(buf + 64, &mut old);
    assert_eq!(u64::from_le_bytes(old), 0, "was SIG_DFL");
    assert_eq!(m.action(pid, 15), signal::SIG_IGN);
    let child = m.sys(SYS_FORK, [0; 6]).unwrap();
    assert_eq!(
        m.action(Pid(child as u32), 15),
        signal::SIG_IGN,
        "fork copies"
    );
    assert_eq!(m.sys(SYS_KILL, [child, 15, 0, 0, 0, 0]), Ok(0));
    assert!(
        m.table.process(Pid(child as u32)).unwrap().state == crate::process::ProcessState::Alive,
        "SIGTERM ignored"
    );
    m.write(buf, &0x40_1000u64.to_le_bytes());
    assert_eq!(m.sys(SYS_RT_SIGACTION, [10, buf, 0, 8, 0, 0]), Ok(0));
    assert_eq!(
        m.action(Pid(child as u32), 10),
        signal::SIG_DFL,
        "a copy, not shared"
    );
    m.table
        .process(pid)
        .unwrap()
        .signals
        .lock()
        .reset_handlers();
    assert_eq!(m.action(pid, 10), signal::SIG_DFL, "handlers reset by exec");
    assert_eq!(m.action(pid, 15), signal::SIG_IGN, "SIG_IGN survives exec");
    m.shut_down();
}

#[test]
fn clone_shares_or_copies_files_and_handlers_as_its_flags_say() {
    let mut m = Machine::new(4);
    let pid = m.pid();
    let buf = 0x1000_0000;
    m.map_page(buf);
    let sigchld = 17;
    let shared = clone::CLONE_VM | clone::CLONE_FILES | clone::CLONE_SIGHAND | sigchld;
    let twin = Tid(m.sys(SYS_CLONE, [shared, 0, 0, 0, 0, 0]).unwrap() as u32);
    assert_eq!(m.call(twin, SYS_CLOSE, [2, 0, 0, 0, 0, 0]), Ok(0));
    assert!(
        !fd::is_open(&m.files(pid), 2),
        "CLONE_FILES shares the table"
    );
    m.write(buf, &1u64.to_le_bytes());
    assert_eq!(m.call(twin, SYS_RT_SIGACTION, [15, buf, 0, 8, 0, 0]), Ok(0));
    assert_eq!(
        m.action(pid, 15),
        signal::SIG_IGN,
        "CLONE_SIGHAND shares handlers"
    );
    let copy = Tid(m
        .sys(SYS_CLONE, [clone::CLONE_VM | sigchld, 0, 0, 0, 0, 0])
        .unwrap() as u32);
    assert_eq!(m.call(copy, SYS_CLOSE, [1, 0, 0, 0, 0, 0]), Ok(0));
    assert!(fd::is_open(&m.files(pid), 1), "without CLONE_FILES: a copy");
    m.shut_down();
}

#[test]
fn an_exiting_process_closes_its_pipe_ends() {
    let mut m = Machine::new(4);
    let files = m.files(m.pid());
    let buf = 0x1000_0000;
    m.map_page(buf);
    assert_eq!(m.sys(SYS_PIPE2, [buf, 0, 0, 0, 0, 0]), Ok(0));
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    assert_eq!(m.sys(SYS_CLOSE, [4, 0, 0, 0, 0, 0]), Ok(0));
    let Some(fd::File::PipeRead(end)) = fd::file(&files, 3) else {
        panic!("fd 3 is the read end");
    };
    assert!(!end.poll().hung_up, "the child still holds a write end");
    let _ = m.call(child, SYS_EXIT_GROUP, [0; 6]);
    let state = m.table.process(Pid(child.0)).map(|p| p.state);
    assert!(matches!(
        state,
        Some(crate::process::ProcessState::Zombie { .. })
    ));
    assert!(end.poll().hung_up, "exit closed the child's write end");
    m.shut_down();
}

#[test]
fn pause_blocks_until_killed() {
    let mut m = Machine::new(4);
    let other = m.thread();
    assert_eq!(m.sys(SYS_PAUSE, [0; 6]), Err(ERESTARTSYS));
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    assert_eq!(m.call(other, SYS_PAUSE, [0; 6]), Err(ERESTARTSYS));
    m.shut_down();
}

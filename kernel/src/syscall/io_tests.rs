//! Host tests of the byte-moving calls (read, write, writev, ioctl), the clocks and
//! getrandom, through `dispatch` as user programs reach them: their answers, their
//! errnos for bad input, and that a failed call changes nothing.

use super::tests::Machine;
use super::*;
use crate::process::{ProcessState, ThreadState};

const BUF: usize = 0x1000_0000;

/// A machine with one mapped page at [`BUF`].
fn machine() -> Machine {
    let mut m = Machine::new(4);
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_FIXED;
    let prot = mmap::PROT_READ | mmap::PROT_WRITE;
    assert_eq!(
        m.sys(SYS_MMAP, [BUF, 4096, prot, flags, usize::MAX, 0]),
        Ok(BUF)
    );
    m
}

impl Machine {
    pub(super) fn poke_bytes(&mut self, at: usize, bytes: &[u8]) {
        let pid = self.pid_of(self.init);
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_to_user(at as u64, bytes).unwrap();
    }

    pub(super) fn peek_bytes(&mut self, at: usize, n: usize) -> Vec<u8> {
        let pid = self.pid_of(self.init);
        let mut out = alloc::vec![0u8; n];
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_from_user(at as u64, &mut out).unwrap();
        out
    }

    /// A pipe: (read fd, write fd).
    fn pipe(&mut self, flags: usize) -> (usize, usize) {
        assert_eq!(self.sys(SYS_PIPE2, [BUF + 2048, flags, 0, 0, 0, 0]), Ok(0));
        let fds = self.peek_bytes(BUF + 2048, 8);
        let fd = |i: usize| u32::from_le_bytes(fds[i..i + 4].try_into().unwrap()) as usize;
        (fd(0), fd(4))
    }
}

#[test]
fn console_write_reaches_the_console_and_stdin_reads_end_of_file() {
    let mut m = machine();
    let text = b"io-test: hello from the console test\n";
    m.poke_bytes(BUF, text);
    assert_eq!(
        m.sys(SYS_WRITE, [1, BUF, text.len(), 0, 0, 0]),
        Ok(text.len())
    );
    let out = machine::take_console_output();
    assert!(
        out.windows(text.len()).any(|w| w == text),
        "the bytes reach the console"
    );
    assert_eq!(
        m.sys(SYS_READ, [0, BUF, 100, 0, 0, 0]),
        Ok(0),
        "stdin is /dev/null"
    );
    assert_eq!(m.sys(SYS_WRITE, [0, BUF, 1, 0, 0, 0]), Err(EBADF));
    assert_eq!(m.sys(SYS_WRITE, [9, BUF, 1, 0, 0, 0]), Err(EBADF));
    assert_eq!(
        m.sys(SYS_WRITE, [1, 0xffff_8000_0000_0000, 8, 0, 0, 0]),
        Err(EFAULT)
    );
    assert_eq!(
        m.sys(SYS_WRITE, [1, BUF + 4090, 100, 0, 0, 0]),
        Err(EFAULT),
        "a buffer running into a hole moves nothing, as on Linux"
    );
    m.shut_down();
}

#[test]
fn pipes_carry_bytes_block_when_empty_and_break_without_readers() {
    let mut m = machine();
    let (r, w) = m.pipe(0);
    m.poke_bytes(BUF, b"12345");
    assert_eq!(m.sys(SYS_WRITE, [w, BUF, 5, 0, 0, 0]), Ok(5));
    assert_eq!(m.sys(SYS_READ, [r, BUF + 100, 64, 0, 0, 0]), Ok(5));
    assert_eq!(m.peek_bytes(BUF + 100, 5), b"12345");
    assert_eq!(
        m.sys(SYS_READ, [w, BUF, 1, 0, 0, 0]),
        Err(EBADF),
        "write end"
    );
    assert_eq!(m.sys(SYS_WRITE, [w, BUF, 3, 0, 0, 0]), Ok(3));
    let kernel = 0xffff_8000_0000_0000;
    assert_eq!(m.sys(SYS_READ, [r, kernel, 3, 0, 0, 0]), Err(EFAULT));
    let kept = m.sys(SYS_READ, [r, BUF + 200, 8, 0, 0, 0]);
    assert_eq!(kept, Ok(3), "a failed read loses nothing");
    assert_eq!(m.peek_bytes(BUF + 200, 3), b"123");
    let other = m.thread();
    assert_eq!(
        m.sys(SYS_READ, [r, BUF, 1, 0, 0, 0]),
        Err(ERESTARTSYS),
        "empty: waits"
    );
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    assert_eq!(m.call(other, SYS_CLOSE, [r, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.call(other, SYS_WRITE, [w, BUF, 1, 0, 0, 0]), Err(EPIPE));
    m.shut_down();
}

/// The slow read of a pipe the fast path found (`read_pipe_as`): it waits on that
/// pipe while it is empty, reads what a write put in, and a bad buffer fails with
/// EFAULT and loses nothing, as read through the fd does.
#[test]
fn a_read_of_the_pipe_the_fast_path_found_waits_and_reads_as_read_does() {
    let mut m = machine();
    let (r, w) = m.pipe(0);
    let found = {
        let files = m.sys_of(m.init).files().unwrap();
        fd::pipe_fd(&files, r).unwrap()
    };
    assert!(!found.write_end && !found.nonblock);
    let init = m.init;
    let other = m.thread();
    let read = |m: &mut Machine, buf: usize| {
        let mut sys = m.sys_of(init);
        let r = io::read_found_pipe(&mut sys, &found, buf, 8);
        if r != Err(ERESTARTSYS) {
            blocking::end_call(&mut sys);
        }
        r
    };
    assert_eq!(read(&mut m, BUF), Err(ERESTARTSYS), "empty: waits");
    assert_eq!(m.sched.state(init), Some(ThreadState::Blocked));
    m.poke_bytes(BUF + 512, b"xyz");
    assert_eq!(m.call(other, SYS_WRITE, [w, BUF + 512, 3, 0, 0, 0]), Ok(3));
    assert_eq!(
        m.sched.state(init),
        Some(ThreadState::Ready),
        "the write woke it"
    );
    let kernel = 0xffff_8000_0000_0000;
    assert_eq!(read(&mut m, kernel), Err(EFAULT));
    assert_eq!(
        read(&mut m, BUF + 100),
        Ok(3),
        "the failed read lost nothing"
    );
    assert_eq!(m.peek_bytes(BUF + 100, 3), b"xyz");
    m.shut_down();
}

#[test]
fn nonblocking_pipes_answer_eagain_and_ioctl_switches_the_mode() {
    let mut m = machine();
    let (r, _w) = m.pipe(0o4000);
    assert_eq!(m.sys(SYS_READ, [r, BUF, 1, 0, 0, 0]), Err(EAGAIN));
    m.poke_bytes(BUF, &0u32.to_le_bytes());
    assert_eq!(
        m.sys(SYS_IOCTL, [r, 0x5421, BUF, 0, 0, 0]),
        Ok(0),
        "FIONBIO off"
    );
    assert!(!fd::is_nonblocking(
        &m.table.process(m.pid_of(m.init)).unwrap().files,
        r
    ));
    assert_eq!(
        m.sys(SYS_IOCTL, [1, 0x5413, BUF, 0, 0, 0]),
        Err(ENOTTY),
        "TIOCGWINSZ"
    );
    assert_eq!(m.sys(SYS_IOCTL, [77, 0x5421, BUF, 0, 0, 0]), Err(EBADF));
    assert_eq!(m.sys(SYS_IOCTL, [r, 0x5421, 0, 0, 0, 0]), Err(EFAULT));
    m.shut_down();
}

#[test]
fn writev_gathers_and_checks_its_vector() {
    let mut m = machine();
    let (r, w) = m.pipe(0);
    m.poke_bytes(BUF, b"abcXYZ");
    let iov: [u64; 4] = [BUF as u64, 3, BUF as u64 + 3, 3];
    let raw: Vec<u8> = iov.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.poke_bytes(BUF + 512, &raw);
    assert_eq!(m.sys(SYS_WRITEV, [w, BUF + 512, 2, 0, 0, 0]), Ok(6));
    assert_eq!(m.sys(SYS_READ, [r, BUF + 100, 64, 0, 0, 0]), Ok(6));
    assert_eq!(m.peek_bytes(BUF + 100, 6), b"abcXYZ");
    assert_eq!(
        m.sys(SYS_WRITEV, [w, BUF + 512, 1025, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_WRITEV, [w, 0xffff_8000_0000_0000, 1, 0, 0, 0]),
        Err(EFAULT)
    );
    m.shut_down();
}

#[test]
fn clocks_and_getrandom_fill_user_memory_or_refuse() {
    let mut m = machine();
    assert_eq!(m.sys(SYS_CLOCK_GETTIME, [0, BUF, 0, 0, 0, 0]), Ok(0));
    let secs = u64::from_le_bytes(m.peek_bytes(BUF, 8).try_into().unwrap());
    assert!(
        secs >= time::EPOCH_OFFSET_S,
        "the wall clock starts at the epoch offset"
    );
    assert_eq!(m.sys(SYS_CLOCK_GETTIME, [42, BUF, 0, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_CLOCK_GETTIME, [1, 0, 0, 0, 0, 0]), Err(EFAULT));
    assert_eq!(
        m.sys(SYS_GETTIMEOFDAY, [0, 0, 0, 0, 0, 0]),
        Ok(0),
        "NULL tv"
    );
    let t = m.sys(SYS_TIME, [BUF + 64, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(
        u64::from_le_bytes(m.peek_bytes(BUF + 64, 8).try_into().unwrap()),
        t as u64
    );
    assert_eq!(m.sys(SYS_GETRANDOM, [BUF, 16, 0x8, 0, 0, 0]), Err(EINVAL));
    assert_eq!(
        m.sys(SYS_GETRANDOM, [BUF + 4090, 100, 0, 0, 0, 0]),
        Ok(6),
        "up to the hole"
    );
    assert_eq!(m.sys(SYS_GETRANDOM, [0, 8, 0, 0, 0, 0]), Err(EFAULT));
    m.shut_down();
}

#[test]
fn pipe_with_one_free_fd_fails_and_leaves_it_free() {
    let mut m = machine();
    while m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]).is_ok() {}
    assert_eq!(m.sys(SYS_CLOSE, [500, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.sys(SYS_PIPE2, [BUF, 0, 0, 0, 0, 0]), Err(EMFILE));
    assert_eq!(
        m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]),
        Ok(500),
        "fd 500 is still free"
    );
    m.shut_down();
}

#[test]
fn new_fds_are_the_lowest_free_after_closes_and_dup2() {
    let mut m = machine();
    let dup = |m: &mut Machine| m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]);
    for fd in 3..20 {
        assert_eq!(dup(&mut m), Ok(fd));
    }
    for fd in [12, 7, 15] {
        assert_eq!(m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]), Ok(0));
    }
    assert_eq!(dup(&mut m), Ok(7));
    // dup2 onto a free fd below the others fills it; onto an open one replaces it.
    assert_eq!(m.sys(SYS_DUP2, [1, 12, 0, 0, 0, 0]), Ok(12));
    assert_eq!(m.sys(SYS_DUP2, [1, 4, 0, 0, 0, 0]), Ok(4));
    assert_eq!(dup(&mut m), Ok(15));
    assert_eq!(dup(&mut m), Ok(20));
    assert_eq!(m.sys(SYS_CLOSE, [0, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        m.sys(SYS_FCNTL, [1, 0, 5, 0, 0, 0]),
        Ok(21),
        "F_DUPFD from 5"
    );
    assert_eq!(dup(&mut m), Ok(0));
    assert_eq!(m.sys(SYS_CLOSE, [99, 0, 0, 0, 0, 0]), Err(EBADF));
    assert_eq!(dup(&mut m), Ok(22), "a bad close frees nothing");
    m.shut_down();
}

#[test]
fn fcntl_dupfd_beyond_the_limit_and_futex_on_the_kernel_are_refused_like_linux() {
    let mut m = machine();
    assert_eq!(
        m.sys(SYS_FCNTL, [1, 0, 1024, 0, 0, 0]),
        Err(EINVAL),
        "F_DUPFD"
    );
    assert_eq!(m.sys(SYS_FCNTL, [1, 1030, 5000, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_FCNTL, [1, 0, 1023, 0, 0, 0]), Ok(1023));
    let kernel = 0xffff_8000_0000_0000;
    let wake_private = 129;
    assert_eq!(
        m.sys(SYS_FUTEX, [kernel, wake_private, 1, 0, 0, 0]),
        Err(EFAULT)
    );
    let cmp_requeue = 4;
    assert_eq!(
        m.sys(SYS_FUTEX, [kernel, cmp_requeue, 1, 1, BUF, 0]),
        Err(EFAULT)
    );
    m.shut_down();
}

/// Puts the program of the execve tests (here and in `rlimit_tests`) at `/prog`: a
/// small static x86_64 ELF.
pub(super) fn put_prog(m: &Machine) {
    m.put_file("/prog", &crate::exec::elf::tests::static_elf(), 0o755);
}

#[test]
fn execve_refuses_bad_input_and_leaves_the_caller_intact() {
    let mut m = machine();
    put_prog(&m);
    m.poke_bytes(BUF, b"/nowhere\0");
    m.poke_bytes(BUF + 64, b"/prog\0");
    let kernel = 0xffff_8000_0000_0000;
    assert_eq!(m.sys(SYS_EXECVE, [kernel, 0, 0, 0, 0, 0]), Err(EFAULT));
    assert_eq!(m.sys(SYS_EXECVE, [BUF, 0, 0, 0, 0, 0]), Err(ENOENT));
    assert_eq!(
        m.sys(SYS_EXECVE, [BUF + 64, kernel, 0, 0, 0, 0]),
        Err(EFAULT),
        "argv"
    );
    m.poke_bytes(BUF + 128, &alloc::vec![b'a'; 4096 - 128]);
    assert_eq!(
        m.sys(SYS_EXECVE, [BUF + 128, 0, 0, 0, 0, 0]),
        Err(EFAULT),
        "a path running into the unmapped page after BUF"
    );
    assert_eq!(
        m.peek_bytes(BUF + 64, 6),
        b"/prog\0",
        "the caller's memory is intact"
    );
    m.shut_down();
}

#[test]
fn execve_replaces_the_image_closes_cloexec_fds_and_resets_handlers() {
    let mut m = machine();
    put_prog(&m);
    let pid = m.pid_of(m.init);
    m.poke_bytes(BUF, b"/prog\0");
    let argv: [u64; 3] = [BUF as u64, BUF as u64 + 8, 0];
    m.poke_bytes(BUF + 8, b"x\0");
    let raw: Vec<u8> = argv.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.poke_bytes(BUF + 64, &raw);
    let (r, _w) = m.pipe(0o2_000_000); // O_CLOEXEC
    m.poke_bytes(BUF + 512, &0x40_1000u64.to_le_bytes());
    assert_eq!(m.sys(SYS_RT_SIGACTION, [10, BUF + 512, 0, 8, 0, 0]), Ok(0));
    assert_eq!(m.sys(SYS_EXECVE, [BUF, BUF + 64, 0, 0, 0, 0]), Ok(0));
    let p = m.table.process(pid).unwrap();
    assert_eq!(p.name, "prog", "named after the file");
    assert!(!fd::is_open(&p.files, r), "close-on-exec");
    assert!(fd::is_open(&p.files, 1), "other fds stay");
    assert_eq!(p.signals.lock().get(10), signal::SIG_DFL, "handlers reset");
    let user = m.table.thread(m.init).unwrap().user;
    assert_eq!(user.ip, 0x401010, "the new program's entry");
    let mut argc = [0u8; 8];
    let mut space = m.table.space_mut(pid).unwrap();
    space.copy_from_user(user.sp, &mut argc).unwrap();
    assert_eq!(u64::from_le_bytes(argc), 2);
    assert!(
        space.copy_from_user(BUF as u64, &mut argc).is_err(),
        "the old mapping is gone"
    );
    drop(space);
    m.shut_down();
}

#[test]
fn a_handled_signal_becomes_pending_and_the_mask_holds_it() {
    let mut m = machine();
    let pid = m.pid_of(m.init);
    let usr1 = 10;
    let act: [u64; 4] = [0x40_1000, signal::SA_RESTORER, 0x40_2000, 0];
    let raw: Vec<u8> = act.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.poke_bytes(BUF, &raw);
    assert_eq!(
        m.sys(SYS_RT_SIGACTION, [usr1, BUF, BUF + 64, 8, 0, 0]),
        Ok(0)
    );
    assert_eq!(m.sys(SYS_RT_SIGACTION, [usr1, 0, BUF + 64, 8, 0, 0]), Ok(0));
    assert_eq!(
        m.peek_bytes(BUF + 64, 32),
        raw,
        "the whole action reads back"
    );
    assert_eq!(m.sys(SYS_KILL, [pid.0 as usize, usr1, 0, 0, 0, 0]), Ok(0));
    let p = m.table.process(pid).unwrap();
    assert_eq!(
        p.shared_pending.set(),
        signal::bit(10),
        "pending, not killed"
    );
    // rt_sigpending reports only what the thread blocks, as on Linux.
    assert_eq!(m.sys(SYS_RT_SIGPENDING, [BUF + 256, 8, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.peek_bytes(BUF + 256, 8), 0u64.to_le_bytes());
    assert_eq!(
        m.sys(SYS_RT_SIGPENDING, [BUF + 256, 16, 0, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_RT_SIGSUSPEND, [BUF + 256, 4, 0, 0, 0, 0]),
        Err(EINVAL)
    );
    assert!(m
        .table
        .process(pid)
        .is_some_and(|p| p.state == ProcessState::Alive));
    // Block SIGUSR1 and SIGKILL: SIGKILL stays unblockable; the old mask reads back.
    let set = signal::bit(10) | signal::bit(9);
    m.poke_bytes(BUF + 128, &set.to_le_bytes());
    assert_eq!(
        m.sys(SYS_RT_SIGPROCMASK, [0, BUF + 128, BUF + 136, 8, 0, 0]),
        Ok(0)
    );
    assert_eq!(m.peek_bytes(BUF + 136, 8), 0u64.to_le_bytes());
    assert_eq!(m.table.thread(m.init).unwrap().signal_mask, signal::bit(10));
    assert_eq!(
        m.sys(SYS_RT_SIGPROCMASK, [1, BUF + 128, 0, 8, 0, 0]),
        Ok(0),
        "unblock"
    );
    assert_eq!(m.table.thread(m.init).unwrap().signal_mask, 0);
    assert_eq!(
        m.sys(SYS_RT_SIGPROCMASK, [3, BUF + 128, 0, 8, 0, 0]),
        Err(EINVAL)
    );
    let tid = m.init.0 as usize;
    assert_eq!(
        m.sys(SYS_TGKILL, [pid.0 as usize + 1, tid, usr1, 0, 0, 0]),
        Err(ESRCH)
    );
    assert_eq!(
        m.sys(SYS_TGKILL, [pid.0 as usize, tid, 65, 0, 0, 0]),
        Err(EINVAL)
    );
    let child = m.sys(SYS_FORK, [0; 6]).unwrap();
    assert_eq!(m.sys(SYS_TKILL, [child, 12, 0, 0, 0, 0]), Ok(0));
    let state = m.table.process(Pid(child as u32)).map(|p| p.state);
    let ended = matches!(state, Some(ProcessState::Zombie { .. }));
    assert!(ended, "SIGUSR2's default action ends the child");
    m.shut_down();
}

#[test]
fn sigaltstack_sets_reports_and_refuses_like_linux() {
    let mut m = machine();
    let alt = [0x2000_0000u64, 0, 8192];
    let raw: Vec<u8> = alt.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.poke_bytes(BUF, &raw);
    assert_eq!(m.sys(SYS_SIGALTSTACK, [BUF, BUF + 64, 0, 0, 0, 0]), Ok(0));
    let old = m.peek_bytes(BUF + 64 + 8, 4);
    assert_eq!(old, 2u32.to_le_bytes(), "SS_DISABLE before");
    assert_eq!(
        m.table.thread(m.init).unwrap().alt_stack,
        Some((0x2000_0000, 8192))
    );
    m.table.thread_mut(m.init).unwrap().user.sp = 0x2000_1000; // running on it
    assert_eq!(m.sys(SYS_SIGALTSTACK, [0, BUF + 64, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        m.peek_bytes(BUF + 64 + 8, 4),
        1u32.to_le_bytes(),
        "SS_ONSTACK"
    );
    assert_eq!(m.sys(SYS_SIGALTSTACK, [BUF, 0, 0, 0, 0, 0]), Err(EPERM));
    m.table.thread_mut(m.init).unwrap().user.sp = 0x7000_0000;
    m.poke_bytes(BUF + 16, &100u64.to_le_bytes());
    assert_eq!(
        m.sys(SYS_SIGALTSTACK, [BUF, 0, 0, 0, 0, 0]),
        Err(ENOMEM),
        "too small"
    );
    m.poke_bytes(BUF + 8, &7u64.to_le_bytes());
    assert_eq!(
        m.sys(SYS_SIGALTSTACK, [BUF, 0, 0, 0, 0, 0]),
        Err(EINVAL),
        "bad flags"
    );
    assert_eq!(
        m.table.thread(m.init).unwrap().alt_stack,
        Some((0x2000_0000, 8192)),
        "unchanged"
    );
    m.shut_down();
}

#[test]
fn setitimer_arms_reports_and_refuses_like_linux() {
    let mut m = machine();
    // it_interval {0, 20 ms}, it_value {1 s, 0}
    let v: [u64; 4] = [0, 20_000, 1, 0];
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    m.poke_bytes(BUF, &raw);
    assert_eq!(m.sys(SYS_SETITIMER, [0, BUF, 0, 0, 0, 0]), Ok(0));
    let pid = m.pid_of(m.init);
    let now = m.sched.now();
    assert_eq!(
        m.table.process(pid).unwrap().real_timer,
        Some((now + 100, 2))
    );
    assert_eq!(m.sys(SYS_GETITIMER, [0, BUF + 64, 0, 0, 0, 0]), Ok(0));
    let got = m.peek_bytes(BUF + 64, 32);
    assert_eq!(&got[..16], &raw[..16], "the interval reads back");
    assert_eq!(
        m.sys(SYS_GETITIMER, [1, BUF + 64, 0, 0, 0, 0]),
        Ok(0),
        "ITIMER_VIRTUAL exists, unarmed"
    );
    assert_eq!(m.peek_bytes(BUF + 64, 32), [0u8; 32]);
    assert_eq!(m.sys(SYS_GETITIMER, [3, BUF + 64, 0, 0, 0, 0]), Err(EINVAL));
    assert_eq!(
        m.sys(SYS_SETITIMER, [2, BUF, 0, 0, 0, 0]),
        Err(EINVAL),
        "arming ITIMER_PROF is refused (not kept here)"
    );
    m.poke_bytes(BUF + 8, &1_000_000u64.to_le_bytes());
    assert_eq!(
        m.sys(SYS_SETITIMER, [0, BUF, 0, 0, 0, 0]),
        Err(EINVAL),
        "usec out of range"
    );
    assert_eq!(
        m.sys(SYS_ALARM, [0, 0, 0, 0, 0, 0]),
        Ok(1),
        "alarm(0) cancels, 1 s was left"
    );
    assert_eq!(m.table.process(pid).unwrap().real_timer, None);
    m.shut_down();
}

#[test]
fn a_blocked_reader_sleeps_until_data_comes_and_is_woken_once() {
    use crate::process::wait_queue::WakeReason;
    let mut m = machine();
    let (r, w) = m.pipe(0);
    let writer = m.thread();
    let (switches_before, _) = m.sched.switches(m.init).unwrap();
    assert_eq!(m.sys(SYS_READ, [r, BUF, 16, 0, 0, 0]), Err(ERESTARTSYS));
    assert_eq!(m.sched.current(), Some(writer));
    // A second of timer ticks: nothing wakes the reader (no polling).
    for _ in 0..100 {
        m.sched.timer_tick();
    }
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    let (switches, _) = m.sched.switches(m.init).unwrap();
    assert_eq!(switches - switches_before, 1, "blocked once, never woken");
    while m.sched.current() != Some(writer) {
        m.sched.schedule();
    }
    m.poke_bytes(BUF + 100, b"ping");
    assert_eq!(m.call(writer, SYS_WRITE, [w, BUF + 100, 4, 0, 0, 0]), Ok(4));
    assert_eq!(
        m.sched.state(m.init),
        Some(ThreadState::Ready),
        "ready before the writer's call returns"
    );
    assert_eq!(m.sched.take_wake_reason(m.init), Some(WakeReason::Woken));
    while m.sched.current() != Some(m.init) {
        m.sched.schedule();
    }
    assert_eq!(m.sys(SYS_READ, [r, BUF + 200, 16, 0, 0, 0]), Ok(4));
    assert_eq!(m.peek_bytes(BUF + 200, 4), b"ping");
    let queue_len = |m: &Machine| m.table.thread(m.init).unwrap().call.queues.len();
    assert_eq!(queue_len(&m), 0, "off the queue once the call is over");
    m.shut_down();
}

#[test]
fn a_blocking_write_completes_in_full_and_closes_wake_the_other_side() {
    let mut m = machine();
    let big = 0x2000_0000;
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_FIXED;
    let prot = mmap::PROT_READ | mmap::PROT_WRITE;
    let len = pipe::PIPE_CAPACITY + 5000;
    assert_eq!(
        m.sys(SYS_MMAP, [big, 0x20000, prot, flags, usize::MAX, 0]),
        Ok(big)
    );
    let (r, w) = m.pipe(0);
    let reader = m.thread();
    assert_eq!(m.sys(SYS_WRITE, [w, big, len, 0, 0, 0]), Err(ERESTARTSYS));
    let progress = m.table.thread(m.init).unwrap().call.done;
    assert_eq!(
        progress,
        pipe::PIPE_CAPACITY,
        "what fit is kept while it waits"
    );
    assert_eq!(m.sched.current(), Some(reader));
    assert_eq!(m.call(reader, SYS_READ, [r, BUF, 4000, 0, 0, 0]), Ok(4000));
    assert_eq!(
        m.sched.state(m.init),
        Some(ThreadState::Ready),
        "room wakes it"
    );
    while m.sched.current() != Some(m.init) {
        m.sched.schedule();
    }
    assert_eq!(m.sys(SYS_WRITE, [w, big, len, 0, 0, 0]), Err(ERESTARTSYS));
    assert_eq!(
        m.table.thread(m.init).unwrap().call.done,
        pipe::PIPE_CAPACITY + 4000
    );
    // Interrupted now, the write would answer the bytes it moved.
    let answer = {
        let mut sys = m.sys_of(m.init);
        blocking::interrupted_answer(&mut sys, SYS_WRITE, [w, big, len, 0, 0, 0])
    };
    assert_eq!(answer, Some(Ok(pipe::PIPE_CAPACITY + 4000)));
    assert_eq!(m.call(reader, SYS_READ, [r, BUF, 4000, 0, 0, 0]), Ok(4000));
    while m.sched.current() != Some(m.init) {
        m.sched.schedule();
    }
    assert_eq!(m.sys(SYS_WRITE, [w, big, len, 0, 0, 0]), Ok(len), "in full");
    // The last reader's close wakes a writer blocked on the full pipe: it answers
    // the 3000 bytes that fitted (as Linux does), and the next write EPIPE.
    assert_eq!(
        m.sys(SYS_WRITE, [w, big, 10_000, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    assert_eq!(m.call(reader, SYS_CLOSE, [r, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Ready));
    while m.sched.current() != Some(m.init) {
        m.sched.schedule();
    }
    assert_eq!(m.sys(SYS_WRITE, [w, big, 10_000, 0, 0, 0]), Ok(3000));
    assert_eq!(m.sys(SYS_WRITE, [w, big, 10_000, 0, 0, 0]), Err(EPIPE));
    m.shut_down();
}

#[test]
fn poll_waits_on_the_pipe_and_times_out_with_zero() {
    use crate::process::wait_queue::WakeReason;
    let mut m = machine();
    let (r, w) = m.pipe(0);
    let other = m.thread();
    // struct pollfd { fd = r, events = POLLIN }
    let pollfd = (r as u64) | (1u64 << 32);
    m.poke_bytes(BUF, &pollfd.to_le_bytes());
    assert_eq!(m.sys(SYS_POLL, [BUF, 1, 30, 0, 0, 0]), Err(ERESTARTSYS));
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Sleeping));
    for _ in 0..3 {
        m.sched.timer_tick();
    }
    assert_eq!(m.sched.take_wake_reason(m.init), Some(WakeReason::TimedOut));
    while m.sched.current() != Some(m.init) {
        m.sched.schedule();
    }
    assert_eq!(m.sys(SYS_POLL, [BUF, 1, 30, 0, 0, 0]), Ok(0), "timed out");
    // Forever: a write from the other thread wakes it, and it reports POLLIN.
    assert_eq!(
        m.sys(SYS_POLL, [BUF, 1, usize::MAX, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    m.poke_bytes(BUF + 100, b"z");
    assert_eq!(m.call(other, SYS_WRITE, [w, BUF + 100, 1, 0, 0, 0]), Ok(1));
    assert_eq!(m.sched.take_wake_reason(m.init), Some(WakeReason::Woken));
    while m.sched.current() != Some(m.init) {
        m.sched.schedule();
    }
    assert_eq!(m.sys(SYS_POLL, [BUF, 1, usize::MAX, 0, 0, 0]), Ok(1));
    let revents = u64::from_le_bytes(m.peek_bytes(BUF, 8).try_into().unwrap()) >> 48;
    assert_eq!(revents, 1, "POLLIN");
    m.shut_down();
}

/// kill of the caller's own process queues the signal for the caller, which runs
/// the call and so waits for nothing: no wake-up is left behind, and once the
/// signal is taken (its handler runs) the caller's next wait sleeps instead of
/// returning at once.
#[test]
fn a_signal_to_oneself_leaves_no_wake_up_behind() {
    let mut m = machine();
    let act: [u64; 4] = [0x40_1000, signal::SA_RESTORER, 0x40_2000, 0];
    let raw: Vec<u8> = act.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.poke_bytes(BUF + 1024, &raw);
    assert_eq!(m.sys(SYS_RT_SIGACTION, [10, BUF + 1024, 0, 8, 0, 0]), Ok(0));
    let (r, _w) = m.pipe(0);
    let me = m.pid_of(m.init);
    // As the task layer makes a call that did not wait: no end_call after it.
    let init = m.init;
    let kill = [me.0 as usize, 10, 0, 0, 0, 0];
    assert_eq!(dispatch(&mut m.sys_of(init), SYS_KILL, kill), Ok(0));
    let taken = signal::take_next(&mut m.table, m.init).map(|i| i.sig);
    assert_eq!(taken, Some(10), "pending for the caller");
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Running));
    assert_eq!(m.sys(SYS_READ, [r, BUF, 1, 0, 0, 0]), Err(ERESTARTSYS));
    assert_eq!(
        m.sched.state(m.init),
        Some(ThreadState::Blocked),
        "the empty pipe's read sleeps: no stale wake-up"
    );
    m.shut_down();
}

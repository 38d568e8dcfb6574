//! Host tests of fcntl's record locks through `dispatch`: another process's view
//! (F_GETLK, EAGAIN), the release points (unlock, close of any fd, dup2 over one,
//! close-on-exec, exit, the last reference to a description for OFD locks), the
//! F_SETLKW wait and its wake-up, and the argument errnos.

use super::super::tests::Machine;
use super::super::*;
use crate::process::ThreadState;

const BUF: usize = 0x1000_0000;
const O_RDONLY: usize = 0;
const O_RDWR: usize = 2;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;
const SEEK_SET: i16 = 0;
const SEEK_CUR: i16 = 1;
const SEEK_END: i16 = 2;
/// Where each test keeps its `struct flock` (BUF holds paths).
const FLOCK: usize = BUF + 0x800;

/// A `struct flock` as the test writes and reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fl {
    kind: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

fn fl(kind: i16, start: i64, len: i64) -> Fl {
    Fl {
        kind,
        whence: SEEK_SET,
        start,
        len,
        pid: 0,
    }
}

impl Fl {
    fn bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..2].copy_from_slice(&self.kind.to_le_bytes());
        b[2..4].copy_from_slice(&self.whence.to_le_bytes());
        b[8..16].copy_from_slice(&self.start.to_le_bytes());
        b[16..24].copy_from_slice(&self.len.to_le_bytes());
        b[24..28].copy_from_slice(&self.pid.to_le_bytes());
        b
    }

    fn parse(b: &[u8]) -> Fl {
        Fl {
            kind: i16::from_le_bytes([b[0], b[1]]),
            whence: i16::from_le_bytes([b[2], b[3]]),
            start: i64::from_le_bytes(b[8..16].try_into().unwrap()),
            len: i64::from_le_bytes(b[16..24].try_into().unwrap()),
            pid: i32::from_le_bytes(b[24..28].try_into().unwrap()),
        }
    }
}

impl Machine {
    fn poke_of(&mut self, tid: Tid, at: usize, bytes: &[u8]) {
        let pid = self.pid_of(tid);
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_to_user(at as u64, bytes).unwrap();
    }

    fn peek_of(&mut self, tid: Tid, at: usize, n: usize) -> Vec<u8> {
        let pid = self.pid_of(tid);
        let mut out = alloc::vec![0u8; n];
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_from_user(at as u64, &mut out).unwrap();
        out
    }

    /// open(path, flags) by thread `tid`.
    fn open_as(&mut self, tid: Tid, path: &str, flags: usize) -> usize {
        let mut bytes = path.as_bytes().to_vec();
        bytes.push(0);
        self.poke_of(tid, BUF, &bytes);
        self.call(tid, SYS_OPEN, [BUF, flags, 0, 0, 0, 0]).unwrap()
    }

    /// fcntl(fd, cmd, &lock) by `tid`: the answer and the flock afterwards.
    fn lock_as(&mut self, tid: Tid, fd: usize, cmd: usize, lock: Fl) -> (Result<usize, Errno>, Fl) {
        self.poke_of(tid, FLOCK, &lock.bytes());
        let r = self.call(tid, SYS_FCNTL, [fd, cmd, FLOCK, 0, 0, 0]);
        (r, Fl::parse(&self.peek_of(tid, FLOCK, 32)))
    }

    fn fork(&mut self) -> Tid {
        Tid(self.sys(SYS_FORK, [0; 6]).unwrap() as u32)
    }
}

const F_GETLK: usize = 5;
const F_SETLK: usize = 6;
const F_SETLKW: usize = 7;
const F_OFD_GETLK: usize = 36;
const F_OFD_SETLK: usize = 37;
const F_OFD_SETLKW: usize = 38;

/// A machine with BUF mapped and "/lk" holding 16 bytes, open O_RDWR by init.
fn machine() -> (Machine, usize) {
    let mut m = Machine::new(8);
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_FIXED;
    let prot = mmap::PROT_READ | mmap::PROT_WRITE;
    assert_eq!(
        m.sys(SYS_MMAP, [BUF, 4096, prot, flags, usize::MAX, 0]),
        Ok(BUF)
    );
    m.put_file("/lk", b"0123456789abcdef", 0o644);
    let fd = m.open_as(m.init, "/lk", O_RDWR);
    (m, fd)
}

#[test]
fn another_process_sees_the_lock_and_gets_eagain_until_it_goes() {
    let (mut m, fd) = machine();
    let init = m.init;
    let pid = m.pid_of(init).0 as i32;
    assert_eq!(m.lock_as(init, fd, F_SETLK, fl(F_WRLCK, 0, 10)).0, Ok(0));
    let (r, own) = m.lock_as(init, fd, F_GETLK, fl(F_WRLCK, 0, 10));
    assert_eq!(
        (r, own.kind),
        (Ok(0), F_UNLCK),
        "its own lock is no conflict"
    );
    let c = m.fork();
    let cfd = m.open_as(c, "/lk", O_RDWR);
    let (r, seen) = m.lock_as(c, cfd, F_GETLK, fl(F_WRLCK, 5, 10));
    assert_eq!(r, Ok(0));
    assert_eq!(
        seen,
        Fl {
            pid,
            ..fl(F_WRLCK, 0, 10)
        }
    );
    assert_eq!(m.lock_as(c, cfd, F_SETLK, fl(F_RDLCK, 0, 1)).0, Err(EAGAIN));
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_RDLCK, 9, 1)).0, Err(EAGAIN));
    assert_eq!(m.lock_as(c, cfd, F_SETLK, fl(F_WRLCK, 10, 5)).0, Ok(0));
    assert_eq!(m.lock_as(init, fd, F_SETLK, fl(F_UNLCK, 0, 10)).0, Ok(0));
    assert_eq!(m.lock_as(c, cfd, F_SETLK, fl(F_RDLCK, 0, 1)).0, Ok(0));
    // Now the parent sees the child's locks: the read lock on byte 0 conflicts
    // only with a write lock.
    let (_, seen) = m.lock_as(init, fd, F_GETLK, fl(F_WRLCK, 0, 0));
    let child = m.pid_of(c).0 as i32;
    assert_eq!(
        seen,
        Fl {
            pid: child,
            ..fl(F_RDLCK, 0, 1)
        }
    );
    let (_, seen) = m.lock_as(init, fd, F_GETLK, fl(F_RDLCK, 1, 0));
    assert_eq!(
        seen,
        Fl {
            pid: child,
            ..fl(F_WRLCK, 10, 5)
        }
    );
    m.shut_down();
}

#[test]
fn closing_any_fd_of_the_file_drops_the_process_locks() {
    let (mut m, fd) = machine();
    let init = m.init;
    let other = m.open_as(init, "/lk", O_RDONLY);
    assert_eq!(m.lock_as(init, fd, F_SETLK, fl(F_WRLCK, 0, 0)).0, Ok(0));
    let c = m.fork();
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_RDLCK, 3, 1)).0, Err(EAGAIN));
    // The child closing its copies does not touch the parent's locks.
    assert_eq!(m.call(c, SYS_CLOSE, [other, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_RDLCK, 3, 1)).0, Err(EAGAIN));
    assert_eq!(m.sys(SYS_CLOSE, [other, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_RDLCK, 3, 1)).0, Ok(0));
    m.shut_down();
}

#[test]
fn dup2_over_an_fd_of_the_file_and_close_on_exec_drop_the_locks() {
    let (mut m, fd) = machine();
    let init = m.init;
    let pid = m.pid_of(init);
    let c = m.fork();
    let second = m.open_as(init, "/lk", O_RDWR);
    assert_eq!(m.lock_as(init, fd, F_SETLK, fl(F_WRLCK, 0, 4)).0, Ok(0));
    assert_eq!(m.sys(SYS_DUP2, [1, second, 0, 0, 0, 0]), Ok(second));
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_WRLCK, 0, 4)).0, Ok(0));
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_UNLCK, 0, 0)).0, Ok(0));
    assert_eq!(m.lock_as(init, fd, F_SETLK, fl(F_WRLCK, 0, 4)).0, Ok(0));
    let cloexec = m.open_as(init, "/lk", O_RDONLY | fd::O_CLOEXEC);
    let files = m.table.process(pid).unwrap().files.clone();
    fd::close_on_exec(&files, pid);
    assert!(!fd::is_open(&files, cloexec));
    drop(files);
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_WRLCK, 0, 4)).0, Ok(0));
    m.shut_down();
}

#[test]
fn exit_releases_the_locks_of_the_process() {
    let (mut m, fd) = machine();
    let c = m.fork();
    assert_eq!(m.lock_as(c, fd, F_SETLK, fl(F_WRLCK, 0, 0)).0, Ok(0));
    assert_eq!(
        m.lock_as(m.init, fd, F_SETLK, fl(F_RDLCK, 0, 1)).0,
        Err(EAGAIN)
    );
    assert_eq!(m.call(c, SYS_EXIT_GROUP, [0; 6]), Ok(0));
    assert_eq!(m.lock_as(m.init, fd, F_SETLK, fl(F_RDLCK, 0, 1)).0, Ok(0));
    m.shut_down();
}

#[test]
fn setlkw_blocks_until_the_unlock_wakes_it() {
    let (mut m, fd) = machine();
    let init = m.init;
    assert_eq!(m.lock_as(init, fd, F_SETLK, fl(F_WRLCK, 0, 10)).0, Ok(0));
    let c = m.fork();
    // The parent yields; the child runs and waits for the lock.
    assert_eq!(m.sched.yield_now(), Some(c));
    let wanted = fl(F_WRLCK, 5, 1);
    assert_eq!(m.lock_as(c, fd, F_SETLKW, wanted).0, Err(ERESTARTSYS));
    assert_eq!(m.sched.state(c), Some(ThreadState::Blocked));
    assert_eq!(m.sched.current(), Some(init));
    // The unlock wakes it.
    assert_eq!(m.lock_as(init, fd, F_SETLK, fl(F_UNLCK, 0, 10)).0, Ok(0));
    m.sched.apply_wakeups();
    assert_eq!(m.sched.state(c), Some(ThreadState::Ready), "woken");
    assert_eq!(m.sched.yield_now(), Some(c));
    assert_eq!(m.lock_as(c, fd, F_SETLKW, wanted).0, Ok(0), "re-issued");
    assert_eq!(
        m.lock_as(init, fd, F_SETLK, fl(F_RDLCK, 5, 1)).0,
        Err(EAGAIN)
    );
    m.shut_down();
}

#[test]
fn ofd_locks_belong_to_the_description() {
    let (mut m, fd) = machine();
    let init = m.init;
    let second = m.open_as(init, "/lk", O_RDWR);
    assert_eq!(m.lock_as(init, fd, F_OFD_SETLK, fl(F_WRLCK, 0, 4)).0, Ok(0));
    // Another description of the same process conflicts; l_pid is -1.
    let (r, seen) = m.lock_as(init, second, F_OFD_GETLK, fl(F_RDLCK, 0, 1));
    assert_eq!(
        (r, seen),
        (
            Ok(0),
            Fl {
                pid: -1,
                ..fl(F_WRLCK, 0, 4)
            }
        )
    );
    assert_eq!(
        m.lock_as(init, second, F_OFD_SETLK, fl(F_RDLCK, 0, 1)).0,
        Err(EAGAIN)
    );
    // So does a POSIX lock of the process.
    assert_eq!(
        m.lock_as(init, fd, F_SETLK, fl(F_RDLCK, 0, 1)).0,
        Err(EAGAIN)
    );
    // A dup shares the description: closing it (or `second`) keeps the lock.
    let dup = m.sys(SYS_DUP, [fd, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(m.sys(SYS_CLOSE, [dup, 0, 0, 0, 0, 0]), Ok(0));
    let (_, seen) = m.lock_as(init, second, F_OFD_GETLK, fl(F_RDLCK, 0, 1));
    assert_eq!(seen.kind, F_WRLCK);
    assert_eq!(m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        m.lock_as(init, second, F_OFD_SETLKW, fl(F_WRLCK, 0, 0)).0,
        Ok(0)
    );
    m.shut_down();
}

#[test]
fn bad_arguments_give_linux_errnos() {
    let (mut m, fd) = machine();
    let init = m.init;
    let l = |kind, start, len| fl(kind, start, len);
    assert_eq!(m.lock_as(init, fd, F_SETLK, l(7, 0, 1)).0, Err(EINVAL));
    assert_eq!(
        m.lock_as(init, fd, F_GETLK, l(F_UNLCK, 0, 1)).0,
        Err(EINVAL)
    );
    assert_eq!(
        m.lock_as(init, fd, F_SETLK, l(F_WRLCK, -1, 1)).0,
        Err(EINVAL)
    );
    assert_eq!(
        m.lock_as(init, fd, F_SETLK, l(F_WRLCK, 2, -3)).0,
        Err(EINVAL)
    );
    let far = l(F_WRLCK, i64::MAX, 2);
    assert_eq!(m.lock_as(init, fd, F_SETLK, far).0, Err(EOVERFLOW));
    let whence = Fl {
        whence: 3,
        ..l(F_WRLCK, 0, 1)
    };
    assert_eq!(m.lock_as(init, fd, F_SETLK, whence).0, Err(EINVAL));
    let pid = Fl {
        pid: 5,
        ..l(F_WRLCK, 0, 1)
    };
    assert_eq!(m.lock_as(init, fd, F_OFD_SETLK, pid).0, Err(EINVAL));
    assert_eq!(m.lock_as(init, fd, F_OFD_GETLK, pid).0, Err(EINVAL));
    let ro = m.open_as(init, "/lk", O_RDONLY);
    assert_eq!(m.lock_as(init, ro, F_SETLK, l(F_WRLCK, 0, 1)).0, Err(EBADF));
    assert_eq!(m.lock_as(init, ro, F_SETLK, l(F_RDLCK, 0, 1)).0, Ok(0));
    assert_eq!(m.sys(SYS_FCNTL, [fd, F_SETLK, 0, 0, 0, 0]), Err(EFAULT));
    m.shut_down();
}

#[test]
fn whence_and_negative_lengths_place_the_range() {
    let (mut m, fd) = machine();
    let init = m.init;
    let c = m.fork();
    assert_eq!(m.sys(SYS_LSEEK, [fd, 4, 0, 0, 0, 0]), Ok(4));
    let cur = Fl {
        whence: SEEK_CUR,
        ..fl(F_WRLCK, 2, -2)
    };
    assert_eq!(m.lock_as(init, fd, F_SETLK, cur).0, Ok(0));
    let end = Fl {
        whence: SEEK_END,
        ..fl(F_RDLCK, -1, 0)
    };
    assert_eq!(m.lock_as(init, fd, F_SETLK, end).0, Ok(0));
    let (_, seen) = m.lock_as(c, fd, F_GETLK, fl(F_WRLCK, 0, 0));
    assert_eq!((seen.kind, seen.start, seen.len), (F_WRLCK, 4, 2));
    let (_, seen) = m.lock_as(c, fd, F_GETLK, fl(F_WRLCK, 6, 0));
    assert_eq!((seen.kind, seen.start, seen.len), (F_RDLCK, 15, 0));
    m.shut_down();
}

#[test]
fn a_pipe_answers_as_a_lone_holder() {
    let (mut m, _) = machine();
    assert_eq!(m.sys(SYS_PIPE2, [BUF, 0, 0, 0, 0, 0]), Ok(0));
    let fds = m.peek_of(m.init, BUF, 8);
    let (r, w) = (fds[0] as usize, fds[4] as usize);
    assert_eq!(m.lock_as(m.init, w, F_SETLK, fl(F_WRLCK, 0, 1)).0, Ok(0));
    assert_eq!(
        m.lock_as(m.init, r, F_SETLK, fl(F_WRLCK, 0, 1)).0,
        Err(EBADF)
    );
    let (res, seen) = m.lock_as(m.init, r, F_GETLK, fl(F_WRLCK, 0, 1));
    assert_eq!((res, seen.kind), (Ok(0), F_UNLCK));
    m.shut_down();
}

//! The system calls that reach devices: the console (read, write, writev, ioctl),
//! the clocks (clock_gettime, gettimeofday, time) and randomness (getrandom), over
//! two small arch hooks (`uptime_ns`, `entropy`). execve is [`super::execve`]; calls
//! only one architecture has (x86_64's arch_prctl) are the arch's `machine_call`;
//! everything else is the core's ([`crate::syscall`]).
//!
//! The console stands for fds 0, 1 and 2 as a native run sees them under the test
//! driver: stdin is `/dev/null` (reads give end of file, writes EBADF), stdout and
//! stderr are one pipe (not a terminal: `ioctl(TIOCGWINSZ)` answers ENOTTY, so libc
//! buffers exactly as it does natively). Other fds are EBADF.
//!
//! User memory is only touched through the address space's software walk
//! (`copy_from_user` / `copy_to_user`), so bad pointers give EFAULT.

use crate::arch::console;
use crate::arch::user as mech;
use crate::memory::frame_allocator::GlobalFrames;
use crate::process::scheduler;
use crate::process::{Process, Tid, UserSpace, PROCESS_TABLE};
use crate::syscall::fd::File;
use crate::syscall::pipe::PipeError;
use crate::syscall::{self as sys, Errno, EAGAIN, EBADF, EFAULT, EINVAL, ENOTTY, EPIPE};
use core::sync::atomic::{AtomicU64, Ordering};

/// Most iovecs per writev (Linux's `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;
/// Bytes copied from user memory per console or pipe write.
const CHUNK: usize = 512;
/// Most bytes one pipe read moves.
const PIPE_CHUNK: usize = 64 * 1024;
/// ioctl: set or clear non-blocking mode.
const FIONBIO: usize = 0x5421;
/// The wall clock starts here (there is no RTC driver): 2023-11-14T22:13:20Z.
const EPOCH_OFFSET_S: u64 = 1_700_000_000;

/// Answers `num` if it is one of this module's calls, else `None`.
pub(super) fn handle(me: Tid, num: usize, a: [usize; 6]) -> Option<Result<usize, Errno>> {
    Some(match num {
        sys::SYS_READ => file_of(me, a[0]).and_then(|f| read(me, f, a[1], a[2])),
        sys::SYS_WRITE => file_of(me, a[0]).and_then(|f| write(me, &f, a[1], a[2])),
        sys::SYS_WRITEV => file_of(me, a[0]).and_then(|f| writev(me, &f, a[1], a[2])),
        sys::SYS_IOCTL => ioctl(me, a[0], a[1], a[2]),
        sys::SYS_CLOCK_GETTIME => clock_gettime(me, a[0], a[1]),
        sys::SYS_GETTIMEOFDAY => gettimeofday(me, a[0]),
        sys::SYS_TIME => time(me, a[0]),
        sys::SYS_GETRANDOM => getrandom(me, a[0], a[1], a[2]),
        _ => return None,
    })
}

/// Runs `f` on the address space of `me`'s process.
pub fn with_space<T>(
    me: Tid,
    f: impl FnOnce(&mut UserSpace<GlobalFrames>) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut table = PROCESS_TABLE.lock();
    let pid = table.thread(me).ok_or(sys::ESRCH)?.pid;
    f(table.space_mut(pid)?)
}

/// `f` applied to `me`'s process.
fn of_process<T>(me: Tid, f: impl FnOnce(&Process) -> T) -> Result<T, Errno> {
    let table = PROCESS_TABLE.lock();
    let pid = table.thread(me).ok_or(sys::ESRCH)?.pid;
    Ok(f(table.process(pid).ok_or(sys::ESRCH)?))
}

/// The file behind `fd` in `me`'s process (EBADF if closed), with whether it is
/// non-blocking.
fn file_of(me: Tid, fd: usize) -> Result<(File, bool), Errno> {
    let files = files_of(me)?;
    let file = sys::fd::file(&files, fd).ok_or(EBADF)?;
    Ok((file, sys::fd::is_nonblocking(&files, fd)))
}

/// The fd table of `me`'s process.
fn files_of(me: Tid) -> Result<sys::fd::Files, Errno> {
    of_process(me, |p| p.files.clone())
}

/// A pipe that is empty (read) or full (write): EAGAIN when non-blocking, else the
/// calling thread sleeps one tick and the call is re-issued when it wakes.
fn would_block(nonblock: bool) -> Result<usize, Errno> {
    if nonblock {
        return Err(EAGAIN);
    }
    let _ = scheduler::sleep_current_thread(1);
    Err(sys::ERESTARTSYS)
}

/// ioctl: FIONBIO sets non-blocking mode; nothing is a terminal (ENOTTY).
fn ioctl(me: Tid, fd: usize, request: usize, arg: usize) -> Result<usize, Errno> {
    file_of(me, fd)?;
    if request != FIONBIO {
        return Err(ENOTTY);
    }
    let mut on = [0u8; 4];
    with_space(me, |s| Ok(s.copy_from_user(arg as u64, &mut on)?))?;
    sys::fd::set_nonblocking(&files_of(me)?, fd, on != [0; 4])?;
    Ok(0)
}

/// read: end of file on stdin, bytes from a pipe (waiting while it is empty and has
/// writers), EBADF on a write-only fd.
fn read(me: Tid, (file, nonblock): (File, bool), buf: usize, len: usize) -> Result<usize, Errno> {
    let end = match file {
        File::ConsoleIn | File::Null => return Ok(0),
        File::PipeRead(end) => end,
        File::Data(d) => return read_data(me, &d, buf, len),
        _ => return Err(EBADF),
    };
    if len == 0 {
        return Ok(0);
    }
    let mut chunk = alloc::vec![0u8; len.min(PIPE_CHUNK)];
    match end.read(&mut chunk) {
        Ok(n) => with_space(me, |s| Ok(s.copy_to_user(buf as u64, &chunk[..n])?)).map(|_| n),
        Err(_) => would_block(nonblock),
    }
}

/// read of an initrd file: up to `len` bytes from its offset.
fn read_data(me: Tid, file: &sys::fd::DataFile, buf: usize, len: usize) -> Result<usize, Errno> {
    let mut chunk = alloc::vec![0u8; len.min(PIPE_CHUNK)];
    let n = file.read(&mut chunk);
    with_space(me, |s| Ok(s.copy_to_user(buf as u64, &chunk[..n])?))?;
    Ok(n)
}

/// write: to the console, or into a pipe (waiting while it is full; EPIPE without
/// readers). A fault after some bytes returns the count written, as Linux does.
fn write(me: Tid, (file, nonblock): &(File, bool), buf: usize, len: usize) -> Result<usize, Errno> {
    let mut done = 0;
    let mut chunk = [0u8; CHUNK];
    while done < len {
        let n = (len - done).min(CHUNK);
        let at = (buf as u64).wrapping_add(done as u64);
        if with_space(me, |s| Ok(s.copy_from_user(at, &mut chunk[..n])?)).is_err() {
            return if done == 0 { Err(EFAULT) } else { Ok(done) };
        }
        let put = match file {
            File::ConsoleOut => {
                console::write_bytes(&chunk[..n]);
                Ok(n)
            }
            File::PipeWrite(end) => end.write(&chunk[..n]),
            File::Null => Ok(n),
            _ => return Err(EBADF),
        };
        match put {
            Ok(k) => done += k,
            Err(_) if done > 0 => return Ok(done),
            Err(PipeError::Broken) => return broken_pipe(me),
            Err(PipeError::WouldBlock) => return would_block(*nonblock),
        }
        if put != Ok(n) {
            return Ok(done);
        }
    }
    Ok(done)
}

/// A write with no reader: SIGPIPE ends the process unless it ignores (or handles)
/// SIGPIPE; the write fails with EPIPE either way.
fn broken_pipe(me: Tid) -> Result<usize, Errno> {
    let action = of_process(me, |p| p.signals.clone())?
        .lock()
        .get(sys::signal::SIGPIPE);
    if action == sys::signal::SIG_DFL {
        super::signal_own_process(me, sys::signal::SIGPIPE);
    }
    Err(EPIPE)
}

fn writev(me: Tid, file: &(File, bool), iov: usize, count: usize) -> Result<usize, Errno> {
    if count > IOV_MAX {
        return Err(EINVAL);
    }
    let mut total = 0usize;
    for i in 0..count {
        let mut raw = [0u8; 16];
        let at = (iov as u64).wrapping_add(16 * i as u64);
        with_space(me, |s| Ok(s.copy_from_user(at, &mut raw)?))?;
        let base = u64::from_le_bytes(raw[..8].try_into().unwrap_or_default());
        let len = u64::from_le_bytes(raw[8..].try_into().unwrap_or_default());
        if len > isize::MAX as u64 {
            return Err(EINVAL);
        }
        if len == 0 {
            continue;
        }
        match write(me, file, base as usize, len as usize) {
            Ok(n) if n < len as usize => return Ok(total + n),
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => return Ok(total),
        }
    }
    Ok(total)
}

fn uptime_ns() -> u64 {
    mech::uptime_ns()
}

/// CLOCK_REALTIME (`realtime`) or CLOCK_MONOTONIC in nanoseconds (the futex clock).
pub fn clock_ns(realtime: bool) -> u64 {
    let base = if realtime {
        EPOCH_OFFSET_S * 1_000_000_000
    } else {
        0
    };
    base + uptime_ns()
}

fn put_pair(me: Tid, addr: usize, a: u64, b: u64) -> Result<usize, Errno> {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&a.to_le_bytes());
    buf[8..].copy_from_slice(&b.to_le_bytes());
    with_space(me, |s| Ok(s.copy_to_user(addr as u64, &buf)?))?;
    Ok(0)
}

/// REALTIME clocks (0, 5, 8) run from [`EPOCH_OFFSET_S`]; MONOTONIC, RAW, COARSE,
/// BOOTTIME and the CPU-time clocks count from boot.
fn clock_gettime(me: Tid, clock: usize, ts: usize) -> Result<usize, Errno> {
    let ns = uptime_ns();
    let base = match clock {
        0 | 5 | 8 => EPOCH_OFFSET_S * 1_000_000_000,
        1..=4 | 6 | 7 | 9 => 0,
        _ => return Err(EINVAL),
    };
    let t = base + ns;
    put_pair(me, ts, t / 1_000_000_000, t % 1_000_000_000)
}

fn gettimeofday(me: Tid, tv: usize) -> Result<usize, Errno> {
    if tv == 0 {
        return Ok(0);
    }
    let us = EPOCH_OFFSET_S * 1_000_000 + uptime_ns() / 1000;
    put_pair(me, tv, us / 1_000_000, us % 1_000_000)
}

fn time(me: Tid, tloc: usize) -> Result<usize, Errno> {
    let s = EPOCH_OFFSET_S + uptime_ns() / 1_000_000_000;
    if tloc != 0 {
        with_space(me, |sp| Ok(sp.copy_to_user(tloc as u64, &s.to_le_bytes())?))?;
    }
    Ok(s as usize)
}

static RNG: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// 8 pseudo-random bytes: xorshift64* stirred with the arch's entropy (a cycle
/// counter; not cryptographic).
fn random_u64() -> u64 {
    let mut x = RNG.load(Ordering::Relaxed) ^ mech::entropy().rotate_left(29);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    RNG.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// 16 pseudo-random bytes (AT_RANDOM).
pub fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&random_u64().to_le_bytes());
    out[8..].copy_from_slice(&random_u64().to_le_bytes());
    out
}

/// getrandom(buf, len, flags): GRND_NONBLOCK, GRND_RANDOM and GRND_INSECURE accepted.
fn getrandom(me: Tid, buf: usize, len: usize, flags: usize) -> Result<usize, Errno> {
    if flags & !0x7 != 0 {
        return Err(EINVAL);
    }
    let len = len.min(1 << 25);
    let mut done = 0;
    while done < len {
        let bytes = random_u64().to_le_bytes();
        let n = (len - done).min(8);
        let at = (buf as u64).wrapping_add(done as u64);
        if with_space(me, |s| Ok(s.copy_to_user(at, &bytes[..n])?)).is_err() {
            return if done == 0 { Err(EFAULT) } else { Ok(done) };
        }
        done += n;
    }
    Ok(done)
}

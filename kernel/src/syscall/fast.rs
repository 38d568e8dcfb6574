//! The fast path of system calls: calls a CPU answers from its lane
//! ([`crate::process::lane`]) without the process table's and the scheduler's
//! locks, so that they run on every CPU at once.
//!
//! What it answers: clock_gettime, gettimeofday and time (the caller's address
//! space only), and read and write of an unnamed pipe when the call need not wait:
//! a read that finds bytes (or a non-blocking read that finds none), a write of at
//! most [`PIPE_BUF`] bytes that fits (such writes go in whole or not at all, so a
//! write that does not fit has moved nothing). Everything else, and every case that
//! would wait, fail or signal (a full pipe, a broken one, a bad buffer, no memory),
//! answers [`Fast::Slow`] having changed nothing, and the call goes the slow way
//! ([`super::handle_syscall`]), which gives Linux's answer for it. A blocking read
//! of an empty pipe answers [`Fast::WaitOnPipe`] with the pipe it found, so that the
//! slow way waits on it without looking the fd up again ([`super::read_pipe_as`]):
//! the pipe is the one the fd named when the call began, as Linux's `fdget` holds
//! a read's file from its start. getpid and gettid are answered by the task layer
//! from what the CPU knows of its running thread.
//!
//! Locks: the CPU's lane (its own, see [`lane::with`]), the fd table (to find the
//! pipe, released at once), then the address space, then the pipe; the scheduler's
//! only if the call woke a waiter, after the others are released. Where the arch
//! copies through the MMU (x86_64), a pipe's bytes are copied without the address
//! space's lock ([`SpaceCell::read_user_unlocked`]); only a copy that meets a page
//! not there yet takes it.

use super::args;
use super::fd::{pipe_fd, PipeFd};
use super::pipe::{PipeError, PIPE_BUF};
use super::user_mem::UserSlice;
use super::SYS_WRITE;
use super::{time, Errno, EAGAIN, SYS_CLOCK_GETTIME, SYS_GETTIMEOFDAY, SYS_READ, SYS_TIME};
use crate::memory::frame_allocator::GlobalFrames;
use crate::process::lane::{self, LaneFiles, SpaceCell};
use crate::process::scheduler;

/// Most bytes a fast pipe read moves (as the slow path's).
const READ_CHUNK: usize = 64 * 1024;

/// Most bytes of a pipe write staged in the small stack buffer (see [`write_pipe`]).
const SMALL_WRITE: usize = 128;

/// What the fast path made of a call.
pub enum Fast {
    /// Answered.
    Done(Result<usize, Errno>),
    /// Nothing was done: make the call the slow way.
    Slow,
    /// A read of this pipe, found behind the call's fd, must wait (a blocking fd,
    /// an empty pipe with writers or not): nothing was done, the slow way reads it.
    WaitOnPipe(PipeFd),
}

/// Answers call `num` with arguments `a` without the kernel's tables if it can.
// Not inlined: the write's 4 KiB buffer would otherwise sit in the frame (and the
// stack probe) of every system call's entry.
#[inline(never)]
pub fn try_call(num: usize, a: [usize; 6]) -> Fast {
    let r = match num {
        SYS_CLOCK_GETTIME | SYS_GETTIMEOFDAY | SYS_TIME => clock(num, args::narrow(num, a)),
        SYS_READ => return read_pipe(args::narrow(num, a)),
        SYS_WRITE => write_pipe(args::narrow(num, a)),
        _ => None,
    };
    answered(r)
}

/// `Done` for an answer (counted), `Slow` for none.
fn answered(r: Option<Result<usize, Errno>>) -> Fast {
    match r {
        Some(r) => {
            lane::count(lane::Kind::Call);
            Fast::Done(r)
        }
        None => Fast::Slow,
    }
}

/// The clock calls: nothing but a copy to the caller's memory.
fn clock(num: usize, a: [usize; 6]) -> Option<Result<usize, Errno>> {
    lane::with(|cell, _| {
        let mut space = cell.lock_live()?;
        Some(match num {
            SYS_CLOCK_GETTIME => time::clock_gettime(&mut space, a[0], a[1]),
            SYS_GETTIMEOFDAY => time::gettimeofday(&mut space, a[0], a[1]),
            _ => time::time(&mut space, a[0]),
        })
    })
}

/// The pipe end behind `fd`, and the user buffer if the slow path would accept it
/// (all of it in user space).
fn pipe_call(files: &LaneFiles, fd: usize, buf: usize, len: usize) -> Option<(PipeFd, UserSlice)> {
    let p = pipe_fd(&files.get()?, fd)?;
    let slice = UserSlice::new(buf, len);
    slice.in_user_space().then_some((p, slice))
}

/// read(fd, buf, len) of a pipe's read end.
fn read_pipe(a: [usize; 6]) -> Fast {
    let r = lane::with(|cell, files| {
        let (p, buf) = pipe_call(files, a[0], a[1], a[2])?;
        if p.write_end {
            return None;
        }
        Some(match read_from(cell, &p, buf) {
            Read::Done(r) => Fast::Done(r),
            Read::Wait => Fast::WaitOnPipe(p),
            Read::Slow => Fast::Slow,
        })
    });
    applied(r.unwrap_or(Fast::Slow))
}

/// The read(fd, buf, len) of `a` issued again after it waited on `p`, the pipe it
/// found behind the fd at its start ([`Fast::WaitOnPipe`]): read from that pipe,
/// without looking the fd up again (Linux's read also keeps the file it began on).
pub fn read_found(p: &PipeFd, a: [usize; 6]) -> Fast {
    let [_, buf, len, ..] = args::narrow(SYS_READ, a);
    let buf = UserSlice::new(buf, len);
    if !buf.in_user_space() {
        return Fast::Slow;
    }
    let r = lane::with(|cell, _| Some(read_from(cell, p, buf)));
    applied(match r {
        Some(Read::Done(r)) => Fast::Done(r),
        Some(Read::Wait) => Fast::WaitOnPipe(p.clone()),
        Some(Read::Slow) | None => Fast::Slow,
    })
}

/// What a fast read of a pipe came to.
enum Read {
    Done(Result<usize, Errno>),
    /// Empty, and the fd blocks: the slow way waits.
    Wait,
    /// The slow way answers (EFAULT, ENOMEM, a space torn down).
    Slow,
}

/// A read of `p` into `buf` in the lane's space `cell`.
fn read_from(cell: &SpaceCell<GlobalFrames>, p: &PipeFd, buf: UserSlice) -> Read {
    if buf.is_empty() {
        return Read::Done(Ok(0));
    }
    if p.pipe.read_would_wait() {
        // The slow path waits (on this pipe), or says EAGAIN: nothing to copy.
        return match p.nonblock {
            true => Read::Done(Err(EAGAIN)),
            false => Read::Wait,
        };
    }
    let max = buf.len().min(READ_CHUNK);
    // Through the MMU without the space's lock first; what that cannot copy (a page
    // not there yet, a bad buffer) goes under the lock, taken before the pipe's.
    // (Where the arch cannot, straight to the lock: not a pipe lock for nothing.)
    let unlocked = match crate::arch::uaccess::THROUGH_MMU {
        true => p
            .pipe
            .read_with(max, |bytes| cell.write_user_unlocked(buf.addr_at(0), bytes)),
        false => Err(PipeError::NotDelivered),
    };
    let r = match unlocked {
        Err(PipeError::NotDelivered) => {
            let Some(mut space) = cell.lock_live() else {
                return Read::Slow;
            };
            p.pipe
                .read_with(max, |bytes| buf.write(&mut space, bytes).is_ok())
        }
        r => r,
    };
    answer(r, p.nonblock).map_or(Read::Slow, Read::Done)
}

/// `what`, with the wake-ups an answered read made applied (its reading made room
/// for a writer) and the answer counted.
fn applied(what: Fast) -> Fast {
    match what {
        Fast::Done(r) => {
            scheduler::apply_queued_wakeups();
            answered(Some(r))
        }
        other => other,
    }
}

/// What a pipe's result answers: a count, EAGAIN of a non-blocking end, or `None`
/// for the slow path (to wait, or to give EPIPE, EFAULT or ENOMEM as it does).
fn answer(r: Result<usize, PipeError>, nonblock: bool) -> Option<Result<usize, Errno>> {
    match r {
        Ok(n) => Some(Ok(n)),
        Err(PipeError::WouldBlock) if nonblock => Some(Err(EAGAIN)),
        Err(_) => None,
    }
}

/// write(fd, buf, len) of at most [`PIPE_BUF`] bytes to a pipe's write end.
fn write_pipe(a: [usize; 6]) -> Option<Result<usize, Errno>> {
    let r = lane::with(|cell, files| {
        let (p, buf) = pipe_call(files, a[0], a[1], a[2])?;
        if !p.write_end || buf.len() > PIPE_BUF {
            return None;
        }
        if buf.is_empty() {
            return Some(Ok(0));
        }
        // The bytes pass through the stack (the pipe's lock is not held across the
        // copy). A small write zeroes a small buffer: zeroing the 4 KiB one cost
        // 512 instructions on every write, a byte's too.
        let mut small = [0u8; SMALL_WRITE];
        let mut large;
        let chunk = match buf.len() {
            n if n <= SMALL_WRITE => &mut small[..n],
            n => {
                large = [0u8; PIPE_BUF];
                &mut large[..n]
            }
        };
        if !cell.read_user_unlocked(buf.addr_at(0), chunk) {
            buf.read(&mut *cell.lock_live()?, chunk).ok()?;
        }
        answer(p.pipe.write(chunk, chunk.len()), p.nonblock)
    })?;
    scheduler::apply_queued_wakeups();
    Some(r)
}

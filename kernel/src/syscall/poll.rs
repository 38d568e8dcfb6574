//! poll, ppoll, select and pselect6: waiting until one of several fds is ready.
//!
//! Each call looks at every fd once. If none is ready and the timeout is not zero,
//! it joins the wait queue of every fd that has one (pipe ends), looks once more (so
//! a change between the two looks is not missed), and blocks until a queue wakes it,
//! a signal interrupts it (EINTR: Linux never restarts these calls) or its deadline
//! passes (the answer is then 0). See [`super::blocking`].
//!
//! fd readiness: fd 0 (/dev/null) is readable at end of file, 1 and 2 (a pipe to the
//! console) writable, initrd files readable, pipe ends as their pipe says; closed fds
//! are POLLNVAL (EBADF for select), negative ones ignored by poll.
//!
//! Not yet: the signal mask of ppoll and pselect6 is not applied while they wait.

use super::fd::{File, Files};
use super::user_mem::{read_timespec_ns, UserPtr, UserSlice};
use super::{Errno, Sys, EBADF, EFAULT, EINVAL, ENOMEM};
use crate::memory::frame_allocator::FrameSource;
use crate::process::scheduler::TICK_HZ;
use crate::process::wait_queue::WaitQueue;
use alloc::sync::Arc;
use alloc::vec::Vec;

const POLLIN: u16 = 0x1;
const POLLPRI: u16 = 0x2;
const POLLOUT: u16 = 0x4;
const POLLERR: u16 = 0x8;
const POLLHUP: u16 = 0x10;
const POLLNVAL: u16 = 0x20;
/// Bits in select's `fd_set`.
const FD_SETSIZE: usize = 1024;
const MS_PER_TICK: u64 = 1000 / TICK_HZ as u64;

/// What a look at the fds does besides reporting readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// Only report.
    Report,
    /// Also put the caller on each fd's wait queue.
    ReportAndJoin,
}

/// How long a call may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeout {
    /// Look once and return.
    Zero,
    /// Until an fd is ready or a signal comes.
    Forever,
    /// At most this many milliseconds.
    Millis(u64),
}

impl Timeout {
    fn from_poll_ms(ms: i32) -> Timeout {
        match ms {
            0 => Timeout::Zero,
            ms if ms < 0 => Timeout::Forever,
            ms => Timeout::Millis(ms as u64),
        }
    }

    /// A `timespec` (NULL: forever), rounded up to whole milliseconds.
    fn from_timespec<A: FrameSource + Clone>(
        sys: &mut Sys<'_, A>,
        at: usize,
    ) -> Result<Timeout, Errno> {
        if at == 0 {
            return Ok(Timeout::Forever);
        }
        let ms = read_timespec_ns(&mut *sys.space()?, at)?.div_ceil(1_000_000);
        Ok(match ms {
            0 => Timeout::Zero,
            ms => Timeout::Millis(ms),
        })
    }
}

/// Runs `look` until it finds something ready or the timeout ends, waiting between
/// looks as the module docs say.
fn wait_for<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    timeout: Timeout,
    mut look: impl FnMut(&mut Sys<'_, A>, Look) -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    let ready = look(sys, Look::Report)?;
    if ready > 0 || timeout == Timeout::Zero || sys.timed_out() {
        return Ok(ready);
    }
    if let Timeout::Millis(ms) = timeout {
        sys.deadline_in(ms.div_ceil(MS_PER_TICK));
    }
    let ready = look(sys, Look::ReportAndJoin)?;
    if ready > 0 {
        return Ok(ready);
    }
    sys.block()
}

/// The queues a waiter on `file` joins: its pipe ends' (both for a FIFO open for
/// reading and writing), the terminal's readers'.
fn queues_of(file: &File) -> [Option<Arc<WaitQueue>>; 2] {
    match file {
        File::PipeRead(end) | File::PipeWrite(end) => [Some(end.queue().clone()), None],
        File::Fifo(f) => [
            f.read.as_ref().map(|e| e.queue().clone()),
            f.write.as_ref().map(|e| e.queue().clone()),
        ],
        File::Terminal(_) => [
            crate::tty::console().map(|c| c.lock().readers().clone()),
            None,
        ],
        _ => [None, None],
    }
}

/// The events of `events` that `fd` is ready for (POLLHUP, POLLERR and POLLNVAL are
/// reported whether asked or not); with [`Look::ReportAndJoin`], the caller also
/// joins the fd's wait queue.
fn fd_events<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    files: &Files,
    fd: i32,
    events: u16,
    look: Look,
) -> Result<u16, Errno> {
    if fd < 0 {
        return Ok(0);
    }
    let Some(file) = super::fd::file(files, fd as usize) else {
        return Ok(POLLNVAL);
    };
    if look == Look::ReportAndJoin {
        for queue in queues_of(&file).into_iter().flatten() {
            sys.wait_on(&queue)?;
        }
    }
    Ok(match &file {
        File::ConsoleIn => events & POLLIN,
        // Files of the tree never wait (Linux's regular files and devices poll ready).
        File::Node(_) => events & (POLLIN | POLLOUT),
        File::Terminal(_) => {
            let readable = crate::tty::console().is_some_and(|c| c.lock().ldisc().readable());
            when(readable, events & POLLIN) | (events & POLLOUT)
        }
        File::ConsoleOut => events & POLLOUT,
        File::PipeRead(end) => {
            let r = end.poll();
            when(r.readable, events & POLLIN) | when(r.hung_up, POLLHUP)
        }
        File::PipeWrite(end) => {
            let r = end.poll();
            when(r.writable, events & POLLOUT) | when(r.hung_up, POLLERR)
        }
        File::Fifo(f) => {
            let read = f.read.as_ref().map(|e| e.poll());
            let write = f.write.as_ref().map(|e| e.poll());
            // POLLHUP only once a writer has been and gone (an O_RDWR open is
            // its own writer).
            when(read.is_some_and(|r| r.readable), events & POLLIN)
                | when(read.is_some_and(|r| r.hung_up) && write.is_none(), POLLHUP)
                | when(write.is_some_and(|w| w.writable), events & POLLOUT)
                | when(write.is_some_and(|w| w.hung_up), POLLERR)
        }
    })
}

/// `bits` if `cond`, else 0.
fn when(cond: bool, bits: u16) -> u16 {
    if cond {
        bits
    } else {
        0
    }
}

/// poll(fds, nfds, timeout_ms): returns the number of fds with events (their
/// `revents` filled in), 0 when the timeout ends first; EINVAL for more than
/// RLIMIT_NOFILE fds (the soft limit).
pub fn sys_poll<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fds: usize,
    nfds: usize,
    timeout: usize,
) -> Result<usize, Errno> {
    let timeout = Timeout::from_poll_ms(timeout as i32);
    poll(sys, fds, nfds, timeout)
}

/// poll and ppoll once the timeout is read: EINVAL for more than RLIMIT_NOFILE fds.
fn poll<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fds: usize,
    nfds: usize,
    timeout: Timeout,
) -> Result<usize, Errno> {
    if nfds > super::rlimit::fd_limit(sys)? {
        return Err(EINVAL);
    }
    let ready = wait_for(sys, timeout, |sys, look| poll_look(sys, fds, nfds, look))?;
    // Linux opens the array for writing back even when it is empty: an address
    // beyond user space is EFAULT, after the wait.
    match UserSlice::new(fds, nfds * 8).in_user_space() {
        true => Ok(ready),
        false => Err(EFAULT),
    }
}

/// ppoll(fds, nfds, timeout, sigmask, sigsetsize): poll with a `timespec` timeout
/// (NULL: wait forever), rounded up to whole milliseconds.
pub fn sys_ppoll<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fds: usize,
    nfds: usize,
    timeout: usize,
    sigmask: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    let timeout = Timeout::from_timespec(sys, timeout)?;
    check_sigmask(sys, sigmask, sigsetsize)?;
    poll(sys, fds, nfds, timeout)
}

/// One look of poll: fills in every `revents`; returns how many are non-zero.
fn poll_look<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fds: usize,
    nfds: usize,
    look: Look,
) -> Result<usize, Errno> {
    let files = sys.files()?;
    let mut ready = 0;
    for i in 0..nfds {
        // struct pollfd { int fd; short events; short revents; }
        let entry = UserPtr::<u64>::new(fds).add(i);
        let raw = entry.read(&mut *sys.space()?)?;
        let (fd, events) = (raw as u32 as i32, (raw >> 32) as u16);
        let revents = fd_events(sys, &files, fd, events, look)?;
        ready += usize::from(revents != 0);
        let raw = (raw & 0x0000_ffff_ffff_ffff) | u64::from(revents) << 48;
        entry.write(&mut *sys.space()?, &raw)?;
    }
    Ok(ready)
}

/// select(nfds, readfds, writefds, exceptfds, timeout): the `timeval` timeout (NULL:
/// forever) is rewritten with the time left, as Linux does.
pub fn sys_select<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    a: [usize; 5],
) -> Result<usize, Errno> {
    let [nfds, r, w, e, tv] = a;
    let timeout = match tv {
        0 => Timeout::Forever,
        at => {
            let [secs, usecs] = UserPtr::<[u64; 2]>::new(at).read(&mut *sys.space()?)?;
            let (secs, usecs) = (secs as i64, usecs as i64);
            if secs < 0 || !(0..1_000_000).contains(&usecs) {
                return Err(EINVAL);
            }
            match (secs as u64).saturating_mul(1000) + (usecs as u64).div_ceil(1000) {
                0 => Timeout::Zero,
                ms => Timeout::Millis(ms),
            }
        }
    };
    let result = select(sys, nfds, [r, w, e], timeout);
    if tv != 0 && result.is_ok() {
        let left_us = time_left_ms(sys, timeout) * 1000;
        let left = [left_us / 1_000_000, left_us % 1_000_000];
        UserPtr::<[u64; 2]>::new(tv).write(&mut *sys.space()?, &left)?;
    }
    result
}

/// pselect6(nfds, readfds, writefds, exceptfds, timespec, sigmask): select with a
/// `timespec` timeout (not rewritten, as glibc and musl expect of the raw call).
pub fn sys_pselect6<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    a: [usize; 6],
) -> Result<usize, Errno> {
    let [nfds, r, w, e, ts, sigmask] = a;
    let timeout = Timeout::from_timespec(sys, ts)?;
    // Its sixth argument points at { sigset pointer, size }: both are checked as
    // Linux checks them, before the sets (the mask itself is not applied yet).
    if sigmask != 0 {
        let [set, size] = UserPtr::<[u64; 2]>::new(sigmask).read(&mut *sys.space()?)?;
        check_sigmask(sys, set as usize, size as usize)?;
    }
    select(sys, nfds, [r, w, e], timeout)
}

/// A signal mask argument of pselect6 and ppoll: EINVAL unless it is 8 bytes,
/// EFAULT if it cannot be read.
fn check_sigmask<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    set: usize,
    size: usize,
) -> Result<(), Errno> {
    if set == 0 {
        return Ok(());
    }
    if size != 8 {
        return Err(EINVAL);
    }
    UserPtr::<u64>::new(set)
        .read(&mut *sys.space()?)
        .map(|_| ())
}

/// Milliseconds left of `timeout` once the call ends (0 if it ran out).
fn time_left_ms<A: FrameSource + Clone>(sys: &Sys<'_, A>, timeout: Timeout) -> u64 {
    let Timeout::Millis(ms) = timeout else {
        return 0;
    };
    let deadline = sys.table.thread(sys.tid).and_then(|t| t.call.deadline);
    match deadline {
        Some(at) => at.saturating_sub(sys.sched.now()) * MS_PER_TICK,
        None => ms,
    }
}

/// The three `fd_set`s of select (read, write, except), as words of 64 bits.
fn select<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    nfds: usize,
    sets: [usize; 3],
    timeout: Timeout,
) -> Result<usize, Errno> {
    if (nfds as i32) < 0 {
        return Err(EINVAL);
    }
    // Linux looks at no fd beyond its table (`max_fds`): a larger count is cut.
    let nfds = nfds.min(super::fd::max_fds(&sys.files()?)).min(FD_SETSIZE);
    let words = nfds.div_ceil(64);
    let mut wanted: [Vec<u64>; 3] = Default::default();
    for (set, addr) in wanted.iter_mut().zip(sets) {
        set.try_reserve_exact(words).map_err(|_| ENOMEM)?;
        for i in 0..words {
            let word = match addr {
                0 => 0,
                at => UserPtr::<u64>::new(at).add(i).read(&mut *sys.space()?)?,
            };
            // Bits at or above nfds are not looked at.
            let valid = match nfds - i * 64 {
                n if n >= 64 => u64::MAX,
                n => (1u64 << n) - 1,
            };
            set.push(word & valid);
        }
    }
    let mut found: [Vec<u64>; 3] = Default::default();
    let ready = wait_for(sys, timeout, |sys, look| {
        let (count, sets) = select_look(sys, &wanted, look)?;
        found = sets;
        Ok(count)
    })?;
    for ((set, addr), want) in found.iter().zip(sets).zip(&wanted) {
        if addr == 0 {
            continue;
        }
        for i in 0..want.len() {
            let word = set.get(i).copied().unwrap_or(0);
            UserPtr::<u64>::new(addr)
                .add(i)
                .write(&mut *sys.space()?, &word)?;
        }
    }
    Ok(ready)
}

/// One look of select: the ready bits of each set and their total; EBADF for a
/// closed fd in any set.
fn select_look<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    wanted: &[Vec<u64>; 3],
    look: Look,
) -> Result<(usize, [Vec<u64>; 3]), Errno> {
    const READ: u16 = POLLIN | POLLHUP | POLLERR;
    const WRITE: u16 = POLLOUT | POLLERR;
    let files = sys.files()?;
    let mut out: [Vec<u64>; 3] = Default::default();
    let mut count = 0;
    for set in out.iter_mut() {
        set.try_reserve_exact(wanted[0].len()).map_err(|_| ENOMEM)?;
        set.resize(wanted[0].len(), 0);
    }
    for word in 0..wanted[0].len() {
        let any = wanted[0][word] | wanted[1][word] | wanted[2][word];
        for bit in (0..64).filter(|b| any & (1 << b) != 0) {
            let fd = (word * 64 + bit) as i32;
            let asked = [READ, WRITE, POLLPRI];
            let events = asked
                .iter()
                .zip(wanted.iter())
                .filter(|(_, set)| set[word] & (1 << bit) != 0)
                .fold(0, |acc, (ev, _)| acc | ev);
            let got = fd_events(sys, &files, fd, events, look)?;
            if got & POLLNVAL != 0 {
                return Err(EBADF);
            }
            for (i, ev) in asked.iter().enumerate() {
                if wanted[i][word] & (1 << bit) != 0 && got & ev != 0 {
                    out[i][word] |= 1 << bit;
                    count += 1;
                }
            }
        }
    }
    Ok((count, out))
}

//! futex: wait queues keyed by (address space, user address).
//!
//! `FUTEX_WAIT` (and `WAIT_BITSET`) checks the u32 at `uaddr` against the expected
//! value (EAGAIN if it differs), queues the caller and blocks it (see
//! [`super::blocking`]; with a timeout, until the call's deadline: relative for
//! WAIT, absolute on CLOCK_MONOTONIC or, with `FUTEX_CLOCK_REALTIME`,
//! CLOCK_REALTIME for WAIT_BITSET). Re-issued when the thread runs again, the call
//! answers 0 if a wake took it off the queue, ETIMEDOUT if its time ran out, and
//! otherwise looks again. `FUTEX_WAKE` (and
//! `WAKE_BITSET`) wakes up to `val` waiters in FIFO order; `REQUEUE` and
//! `CMP_REQUEUE` move the rest to another address. Bitsets are accepted but every
//! waiter matches. Other operations: ENOSYS.
//!
//! The queues ([`FutexQueues`]) belong to the process table (the kernel's, or a test's
//! own), keyed by the page-table root of the caller's address space (threads sharing
//! memory share it) and the address; a non-private operation on a MAP_SHARED page is
//! keyed by the page's physical address instead, so processes sharing the memory
//! meet on the same queue. Entries of threads that died or stopped waiting are
//! dropped by [`FutexQueues::forget`] or skipped at wake-up.

use super::user_mem::{read_timespec_ns, UserPtr};
use super::{Errno, Sys, EAGAIN, EFAULT, EINVAL, ENOSYS, ETIMEDOUT};
use crate::memory::address_space::Sharing;
use crate::memory::address_space::TASK_SIZE;
use crate::memory::frame_allocator::FrameSource;
use crate::process::Tid;
use crate::sync::IrqMutex;
use alloc::collections::{BTreeMap, VecDeque};

const FUTEX_WAIT: usize = 0;
const FUTEX_WAKE: usize = 1;
const FUTEX_REQUEUE: usize = 3;
const FUTEX_CMP_REQUEUE: usize = 4;
const FUTEX_WAIT_BITSET: usize = 9;
const FUTEX_WAKE_BITSET: usize = 10;
/// `FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME` (private futexes need nothing
/// special: queues are per address space anyway).
const FLAG_BITS: usize = FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME;
const FUTEX_CLOCK_REALTIME: usize = 256;
/// Linux's requeue-PI wait and second PI lock (not implemented here): the ops
/// that may carry FUTEX_CLOCK_REALTIME besides WAIT_BITSET, and the last op.
const FUTEX_WAIT_REQUEUE_PI: usize = 11;
const FUTEX_LOCK_PI2: usize = 13;
const TICK_NS: u64 = 1_000_000_000 / crate::process::scheduler::TICK_HZ as u64;

type Key = (u64, u64);

/// The "address space" of keys of shared futexes (no page-table root is there).
const SHARED: u64 = u64::MAX;
const FUTEX_PRIVATE_FLAG: usize = 128;

/// The futex wait queues of a process table (its `futexes` field): by key, the
/// waiting threads in arrival order.
#[derive(Debug, Default)]
pub struct FutexQueues(BTreeMap<Key, VecDeque<Tid>>);

impl FutexQueues {
    /// No waiters.
    pub const fn new() -> Self {
        FutexQueues(BTreeMap::new())
    }

    /// Drops `tid` from every queue (it stopped waiting, or died); returns whether it
    /// was still queued (not woken by a FUTEX_WAKE: a timed wait whose time ran out).
    pub fn forget(&mut self, tid: Tid) -> bool {
        // Every call that waited ends here: most waited for no futex at all.
        if self.0.is_empty() {
            return false;
        }
        let mut found = false;
        self.0.retain(|_, q| {
            let before = q.len();
            q.retain(|t| *t != tid);
            found |= q.len() != before;
            !q.is_empty()
        });
        found
    }
}

/// futex(uaddr, op, val, timeout, uaddr2, val3).
pub fn sys_futex<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    uaddr: usize,
    op: usize,
    val: usize,
    timeout: usize,
    uaddr2: usize,
    val3: usize,
) -> Result<usize, Errno> {
    // Linux looks at the operation before the address: one it does not know (2 is
    // the removed FUTEX_FD, 13 the last), or FUTEX_CLOCK_REALTIME on anything but
    // a bitset wait, is ENOSYS whatever `uaddr` is.
    let cmd = op & !FLAG_BITS;
    let realtime_ok = matches!(
        cmd,
        FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2
    );
    if cmd == 2 || cmd > FUTEX_LOCK_PI2 || (op & FUTEX_CLOCK_REALTIME != 0 && !realtime_ok) {
        return Err(ENOSYS);
    }
    // A waiting op's timeout is read (EFAULT) and checked (EINVAL) next.
    let timed = matches!(
        cmd,
        FUTEX_WAIT | FUTEX_WAIT_BITSET | 6 | FUTEX_WAIT_REQUEUE_PI
    ) || cmd == FUTEX_LOCK_PI2;
    if timed && timeout != 0 {
        super::user_mem::read_timespec_ns(&mut *sys.space()?, timeout)?;
    }
    if !uaddr.is_multiple_of(4) {
        return Err(EINVAL);
    }
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let key = key(sys, uaddr, private)?;
    match op & !FLAG_BITS {
        FUTEX_WAIT => wait(sys, (key, uaddr), val, timeout, op),
        FUTEX_WAIT_BITSET if val3 as u32 == 0 => Err(EINVAL),
        FUTEX_WAIT_BITSET => wait(sys, (key, uaddr), val, timeout, op),
        FUTEX_WAKE => Ok(wake_key(sys, key, val)),
        FUTEX_WAKE_BITSET if val3 as u32 == 0 => Err(EINVAL),
        FUTEX_WAKE_BITSET => Ok(wake_key(sys, key, val)),
        FUTEX_REQUEUE => {
            let to = key2(sys, uaddr2, private)?;
            requeue(sys, key, val, timeout, to)
        }
        FUTEX_CMP_REQUEUE => {
            let to = key2(sys, uaddr2, private)?;
            if read_u32(sys, uaddr)? != val3 as u32 {
                return Err(EAGAIN);
            }
            requeue(sys, key, val, timeout, to)
        }
        _ => Err(ENOSYS),
    }
}

/// The queue of `uaddr`: (address space, address), except for a non-private
/// operation on a MAP_SHARED page, which every process mapping that page must find:
/// ([`SHARED`], physical address), as Linux keys shared futexes by the page.
fn key<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    uaddr: usize,
    private: bool,
) -> Result<Key, Errno> {
    let addr = uaddr as u64;
    // Every futex operation names user memory: a kernel or non-canonical address is
    // EFAULT, for WAKE and REQUEUE too (which read nothing).
    if addr >= TASK_SIZE {
        return Err(EFAULT);
    }
    let mut space = sys.space()?;
    let region = space.region_at(addr);
    let shared = region
        .as_ref()
        .is_some_and(|r| r.sharing == Sharing::Shared);
    // A non-private op needs the page (Linux pins it to find its key, even for
    // WAKE): an unmapped address is EFAULT, and so is a private read-only page
    // never written, which Linux backs by its shared zero page and refuses. A
    // private op keys by address alone.
    if !private {
        let read_only_private = region.as_ref().is_some_and(|r| {
            r.sharing == Sharing::Private
                && !r.prot.contains(crate::memory::address_space::Prot::WRITE)
        });
        if read_only_private && space.translate(addr).is_none() {
            return Err(EFAULT);
        }
        UserPtr::<u32>::new(uaddr).read(&mut space)?;
    }
    if !private && shared {
        if let Some(pa) = space.translate(addr) {
            return Ok((SHARED, pa.0));
        }
    }
    Ok((space.root().start_address.0, addr))
}

/// The key of a requeue target (EINVAL if misaligned).
fn key2<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    uaddr2: usize,
    private: bool,
) -> Result<Key, Errno> {
    if !uaddr2.is_multiple_of(4) {
        return Err(EINVAL);
    }
    key(sys, uaddr2, private)
}

fn read_u32<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, uaddr: usize) -> Result<u32, Errno> {
    UserPtr::<u32>::new(uaddr).read(&mut *sys.space()?)
}

/// Where absolute timeouts are measured: the machine's clock in nanoseconds
/// (`realtime`: CLOCK_REALTIME, else CLOCK_MONOTONIC). Set by the arch at boot;
/// without it the scheduler's ticks stand in for CLOCK_MONOTONIC.
static CLOCK: IrqMutex<Option<ClockFn>> = IrqMutex::new(None);

/// A clock: nanoseconds of CLOCK_REALTIME (`true`) or CLOCK_MONOTONIC (`false`).
type ClockFn = fn(bool) -> u64;

/// Installs the clock absolute futex timeouts are measured against.
pub fn set_clock(clock: ClockFn) {
    *CLOCK.lock() = Some(clock);
}

fn now_ns<A: FrameSource + Clone>(sys: &Sys<'_, A>, realtime: bool) -> u64 {
    let clock = *CLOCK.lock();
    match clock {
        Some(f) => f(realtime),
        None => sys.sched.now().saturating_mul(TICK_NS),
    }
}

/// What a timeout asks for.
enum Timeout {
    /// No timeout: wait until woken.
    Never,
    /// Sleep this many ticks at most.
    Ticks(u64),
    /// The deadline has passed already.
    Expired,
}

/// The timeout at `timeout` (a duration if `relative`, else an absolute time on
/// CLOCK_MONOTONIC, or CLOCK_REALTIME with `realtime`), rounded up to whole ticks.
fn timeout_of<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    timeout: usize,
    relative: bool,
    realtime: bool,
) -> Result<Timeout, Errno> {
    if timeout == 0 {
        return Ok(Timeout::Never);
    }
    let at = read_timespec_ns(&mut *sys.space()?, timeout)?;
    let ns = match relative {
        true => at,
        false => at.saturating_sub(now_ns(sys, realtime)),
    };
    Ok(match ns {
        0 => Timeout::Expired,
        ns => Timeout::Ticks(ns.div_ceil(TICK_NS)),
    })
}

fn wait<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    (key, uaddr): (Key, usize),
    val: usize,
    timeout: usize,
    op: usize,
) -> Result<usize, Errno> {
    // A re-issued wait: FUTEX_WAKE took it off the queue (0), or its time ran out
    // (ETIMEDOUT), or something else woke it and it looks again, as Linux's
    // futex_wait retries.
    if sys.has_waited() {
        if !sys.table.futexes.forget(sys.tid) {
            return Ok(0);
        }
        if sys.timed_out() {
            return Err(ETIMEDOUT);
        }
    }
    let relative = op & !FLAG_BITS == FUTEX_WAIT;
    let timeout = timeout_of(sys, timeout, relative, op & FUTEX_CLOCK_REALTIME != 0)?;
    if read_u32(sys, uaddr)? != val as u32 {
        return Err(EAGAIN);
    }
    match timeout {
        Timeout::Expired => return Err(ETIMEDOUT),
        Timeout::Ticks(t) => {
            sys.deadline_in(t);
        }
        Timeout::Never => {}
    }
    sys.caller_must_be_current()?;
    sys.table
        .futexes
        .0
        .entry(key)
        .or_default()
        .push_back(sys.tid);
    sys.block()
}

/// Wakes up to `n` waiters on `key`; returns how many were woken.
fn wake_key<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, key: Key, n: usize) -> usize {
    let mut woken = 0;
    let queues = &mut sys.table.futexes.0;
    let Some(q) = queues.get_mut(&key) else {
        return 0;
    };
    while woken < n {
        let Some(t) = q.pop_front() else { break };
        if sys.sched.unblock(t).is_ok() {
            woken += 1;
        }
    }
    if q.is_empty() {
        queues.remove(&key);
    }
    woken
}

/// Wakes up to `n` waiters on `uaddr` of the caller's space (clear-child-tid at exit).
pub fn wake<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, uaddr: u64, n: usize) -> usize {
    match key(sys, uaddr as usize, false) {
        Ok(k) => wake_key(sys, k, n),
        Err(_) => 0,
    }
}

fn requeue<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    key: Key,
    n: usize,
    max_moved: usize,
    to: Key,
) -> Result<usize, Errno> {
    let woken = wake_key(sys, key, n);
    let queues = &mut sys.table.futexes.0;
    let moved: VecDeque<Tid> = match queues.get_mut(&key) {
        Some(q) => {
            let k = q.len().min(max_moved);
            q.drain(..k).collect()
        }
        None => VecDeque::new(),
    };
    if queues.get(&key).is_some_and(|q| q.is_empty()) {
        queues.remove(&key);
    }
    let count = moved.len();
    if count > 0 {
        queues.entry(to).or_default().extend(moved);
    }
    Ok(woken + count)
}

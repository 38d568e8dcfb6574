//! Signals as data: rt_sigtimedwait takes a pending signal without running a
//! handler, rt_sigqueueinfo and rt_tgsigqueueinfo send one with a siginfo the
//! sender chose.
//!
//! Pending signals are kept in [`SigPending`] sets, one per thread and one shared
//! per process: standard signals coalesce, real-time ones (SIGRTMIN..=64) queue one
//! instance each with its own siginfo, bounded by RLIMIT_SIGPENDING ([`has_room`]).
//!
//! rt_sigtimedwait waits (see [`super::blocking`]) with the thread's
//! `call.signals` set to what it waits for, so a sender queues and wakes it even
//! though the thread blocks those signals (callers block them first, as POSIX
//! asks). A signal it does not wait for and does not block, with a handler, ends
//! the wait with EINTR (never restarted, as on Linux).

use super::rlimit::Resource;
use super::signal::{self, SigInfo, SI_TKILL, UNBLOCKABLE};
use super::user_mem::{read_timespec_ns, UserPtr, UserSlice};
use super::{Errno, Sys, EAGAIN, EINVAL, EPERM, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::process::scheduler::TICK_HZ;
use crate::process::{Pid, ProcessTable, Tid};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

const SIGSET_SIZE: usize = 8;
const NSEC_PER_TICK: u64 = 1_000_000_000 / TICK_HZ as u64;

/// rt_sigtimedwait(set, info, timeout, sigsetsize): the lowest pending signal of
/// `set` (SIGKILL and SIGSTOP never), taken off the pending set, its siginfo written
/// to `info` if not NULL; waits for one until `timeout` (NULL: forever; zero: do
/// not wait), then EAGAIN. EINVAL for a bad size or timespec.
pub fn sys_rt_sigtimedwait<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    set: usize,
    info: usize,
    timeout: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    if sigsetsize != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let wanted = UserPtr::<u64>::new(set).read(&mut *sys.space()?)? & !UNBLOCKABLE;
    let ticks = match timeout {
        0 => None,
        at => Some(read_timespec_ns(&mut *sys.space()?, at)?.div_ceil(NSEC_PER_TICK)),
    };
    if let Some(taken) = take_wanted(sys, wanted)? {
        if info != 0 {
            UserSlice::new(info, 128).write(&mut *sys.space()?, &taken.to_bytes())?;
        }
        return Ok(taken.sig as usize);
    }
    if ticks == Some(0) || sys.timed_out() {
        return Err(EAGAIN);
    }
    if let Some(t) = sys.table.thread_mut(sys.tid) {
        t.call.signals = wanted;
    }
    if let Some(ticks) = ticks {
        sys.deadline_in(ticks);
    }
    sys.block()
}

/// The lowest signal of `wanted` pending on the calling thread, else on its process
/// (Linux's `dequeue_signal`: the thread's own first), taken with its siginfo.
fn take_wanted<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    wanted: u64,
) -> Result<Option<SigInfo>, Errno> {
    let t = sys.table.thread_mut(sys.tid).ok_or(ESRCH)?;
    if let Some(info) = t.pending.take_first(wanted) {
        return Ok(Some(info));
    }
    let pid = sys.pid()?;
    let p = sys.table.process_mut(pid).ok_or(ESRCH)?;
    Ok(p.shared_pending.take_first(wanted))
}

/// The siginfo at `uinfo` as the sender gives it: si_code and si_value are its
/// own (si_pid is the sender's own word too, as Linux lets it be); a code of
/// SI_USER or above, or SI_TKILL, would pretend to come from kill or the kernel:
/// EPERM unless the sender signals itself.
fn queued_info<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    sig: i32,
    uinfo: usize,
    target: Pid,
) -> Result<SigInfo, Errno> {
    let mut raw = [0u8; 128];
    UserSlice::new(uinfo, 128).read(&mut *sys.space()?, &mut raw)?;
    let word = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap_or([0; 4]));
    let code = word(8) as i32;
    if (code >= 0 || code == SI_TKILL) && target != sys.pid()? {
        return Err(EPERM);
    }
    let value = u64::from_le_bytes(raw[24..32].try_into().unwrap_or([0; 8]));
    Ok(SigInfo {
        sig,
        code,
        pid: word(16),
        value,
        addr: None,
    })
}

/// Linux copies the whole siginfo in before it looks at the signal or the target:
/// EFAULT first.
fn copied_in_first<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    uinfo: usize,
) -> Result<(), Errno> {
    let mut raw = [0u8; 128];
    super::user_mem::UserSlice::new(uinfo, raw.len()).read(&mut *sys.space()?, &mut raw)
}

/// rt_sigqueueinfo(tgid, sig, info): `sig` with the caller's siginfo to process
/// `tgid`.
pub fn sys_rt_sigqueueinfo<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    tgid: usize,
    sig: usize,
    uinfo: usize,
) -> Result<usize, Errno> {
    copied_in_first(sys, uinfo)?;
    let sig = signal::checked_signal(sig)?;
    let target = Pid(u32::try_from(tgid as i32).map_err(|_| ESRCH)?);
    sys.table.process(target).ok_or(ESRCH)?;
    let info = queued_info(sys, sig, uinfo, target)?;
    signal::send_info(sys, target, None, info)
}

/// rt_tgsigqueueinfo(tgid, tid, sig, info): the same to thread `tid` of `tgid`.
pub fn sys_rt_tgsigqueueinfo<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    tgid: usize,
    tid: usize,
    sig: usize,
    uinfo: usize,
) -> Result<usize, Errno> {
    copied_in_first(sys, uinfo)?;
    let sig = signal::checked_signal(sig)?;
    if (tgid as i32) <= 0 || (tid as i32) <= 0 {
        return Err(EINVAL);
    }
    let target = Pid(tgid as u32);
    let tid = Tid(tid as u32);
    let owner = sys
        .table
        .thread(tid)
        .filter(|t| !t.has_exited())
        .map(|t| t.pid);
    if owner != Some(target) {
        return Err(ESRCH);
    }
    let info = queued_info(sys, sig, uinfo, target)?;
    signal::send_info(sys, target, Some(tid), info)
}

/// The first real-time signal (SIGRTMIN): from it on, signals are queued.
pub const SIGRTMIN: i32 = 32;

/// How many signals are pending anywhere (a hint, counted per signal per set):
/// while it is 0 the way back to user mode skips looking for signals, so the
/// system-call fast path takes no lock for them.
static PENDING_ANYWHERE: AtomicUsize = AtomicUsize::new(0);

/// Whether some thread or process may have a signal pending.
pub fn signals_may_be_pending() -> bool {
    PENDING_ANYWHERE.load(Ordering::Relaxed) != 0
}

/// A sent signal could not be queued: the queue limit (RLIMIT_SIGPENDING) is
/// reached, or the kernel heap is full, and the sender asked for its siginfo to
/// arrive (a real-time signal sent other than by kill): EAGAIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// A set of pending signals with their siginfo: a thread's own (`Thread::pending`)
/// or a process's shared one (`Process::shared_pending`), as Linux's
/// `struct sigpending`.
///
/// Invariants: a signal is in `set` iff it is pending; `queue` holds, in the order
/// sent, at most one entry per standard signal (1..=31: a second send while pending
/// coalesces) and one entry per instance of a real-time signal (32..=64), each only
/// for a signal in `set`. A signal in `set` without an entry lost its siginfo (no
/// room): it is taken as from kill by pid 0, as Linux says.
#[derive(Debug, Default)]
pub struct SigPending {
    set: u64,
    queue: Vec<SigInfo>,
}

impl SigPending {
    /// The pending signals (bit `sig - 1`).
    pub fn set(&self) -> u64 {
        self.set
    }

    /// How many siginfo entries it holds (what RLIMIT_SIGPENDING counts).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Makes `info.sig` pending, as Linux's `__send_signal`: a standard signal
    /// already pending is not queued again; `room` says whether the queue limit
    /// allows one more entry (kill and the kernel's standard signals ignore it).
    /// Without an entry the signal is still pending, its siginfo lost, except a
    /// real-time signal not sent by kill: [`QueueFull`].
    pub fn add(&mut self, info: SigInfo, room: bool) -> Result<(), QueueFull> {
        let bit = signal::bit(info.sig);
        let realtime = info.sig >= SIGRTMIN;
        if !realtime && self.set & bit != 0 {
            return Ok(());
        }
        let may_queue = room || (!realtime && info.code >= 0);
        if may_queue && self.queue.try_reserve(1).is_ok() {
            self.queue.push(info);
        } else if realtime && info.code != signal::SI_USER {
            return Err(QueueFull);
        }
        self.mark(bit);
        Ok(())
    }

    /// Makes `sig` pending without a siginfo (a stop request).
    pub fn add_bare(&mut self, sig: i32) {
        self.mark(signal::bit(sig));
    }

    fn mark(&mut self, bit: u64) {
        if self.set & bit == 0 {
            self.set |= bit;
            PENDING_ANYWHERE.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn unmark(&mut self, bits: u64) {
        let gone = self.set & bits;
        if gone == 0 {
            return;
        }
        self.set &= !bits;
        // One signal (what a take unmarks) needs no count: the kernel's target has
        // no popcnt, and the software count is 20 instructions.
        let n = match gone & (gone - 1) {
            0 => 1,
            _ => gone.count_ones() as usize,
        };
        PENDING_ANYWHERE.fetch_sub(n, Ordering::Relaxed);
    }

    /// The lowest pending signal of `allowed`, if any (not taken).
    pub fn first(&self, allowed: u64) -> Option<i32> {
        let ready = self.set & allowed;
        (ready != 0).then(|| ready.trailing_zeros() as i32 + 1)
    }

    /// Takes one instance of `sig` with its siginfo (the oldest queued), if it is
    /// pending; it stays pending while more instances are queued.
    pub fn take(&mut self, sig: i32) -> Option<SigInfo> {
        let bit = signal::bit(sig);
        if self.set & bit == 0 {
            return None;
        }
        let info = match self.queue.iter().position(|i| i.sig == sig) {
            // The last entry (often the only one) is popped: `remove` would call
            // memmove to shift nothing.
            Some(at) if at + 1 == self.queue.len() => self.queue.pop(),
            Some(at) => Some(self.queue.remove(at)),
            None => None,
        };
        let info = info.unwrap_or_else(|| SigInfo::user(sig, 0));
        if !self.queue.iter().any(|i| i.sig == sig) {
            self.unmark(bit);
        }
        Some(info)
    }

    /// Takes the lowest pending signal of `allowed`, with its siginfo.
    pub fn take_first(&mut self, allowed: u64) -> Option<SigInfo> {
        self.take(self.first(allowed)?)
    }

    /// Forgets every pending signal of `set`, every instance (SIGCONT discards
    /// pending stops; an action that ignores a signal discards it).
    pub fn discard(&mut self, set: u64) {
        self.queue.retain(|i| set & signal::bit(i.sig) == 0);
        self.unmark(set);
    }
}

impl Drop for SigPending {
    fn drop(&mut self) {
        self.unmark(!0);
    }
}

/// Whether one more siginfo fits under process `pid`'s RLIMIT_SIGPENDING: its
/// entries (shared and on every thread) are counted, as Linux counts a user's.
pub fn has_room<A: FrameSource + Clone>(table: &ProcessTable<A>, pid: Pid) -> bool {
    let Some(p) = table.process(pid) else {
        return false;
    };
    let on_threads: usize = p
        .threads
        .iter()
        .filter_map(|t| table.thread(*t))
        .map(|t| t.pending.queued())
        .sum();
    let queued = (p.shared_pending.queued() + on_threads) as u64;
    queued < p.limits.soft(Resource::Sigpending)
}

#[cfg(test)]
mod queue_tests {
    use super::*;

    fn queued(sig: i32, value: u64) -> SigInfo {
        SigInfo {
            code: signal::SI_QUEUE,
            value,
            ..SigInfo::user(sig, 7)
        }
    }

    #[test]
    fn realtime_signals_queue_and_standard_ones_coalesce() {
        let mut p = SigPending::default();
        for v in 0..3 {
            p.add(queued(34, v), true).unwrap();
            p.add(queued(10, v), true).unwrap();
        }
        p.add(queued(33, 9), true).unwrap();
        assert_eq!(p.queued(), 5);
        assert_eq!(p.take_first(!0).map(|i| (i.sig, i.value)), Some((10, 0)));
        assert_eq!(p.take_first(!0).map(|i| (i.sig, i.value)), Some((33, 9)));
        for v in 0..3 {
            assert_eq!(p.take_first(!0).map(|i| (i.sig, i.value)), Some((34, v)));
        }
        assert_eq!(p.take_first(!0), None);
        assert_eq!(p.set(), 0);
    }

    #[test]
    fn a_full_queue_refuses_sigqueue_but_not_kill() {
        let mut p = SigPending::default();
        assert_eq!(p.add(queued(40, 1), false), Err(QueueFull));
        assert_eq!(p.set(), 0);
        p.add(SigInfo::user(40, 3), false).unwrap();
        p.add(SigInfo::user(12, 3), false).unwrap();
        assert_eq!(
            p.queued(),
            1,
            "a standard signal from kill goes over the limit"
        );
        assert_eq!(p.take(40), Some(SigInfo::user(40, 0)), "siginfo lost");
        p.add(queued(12, 1), true).unwrap();
        p.discard(signal::bit(12));
        assert_eq!(p.set(), 0);
    }
}

//! Signals as data: rt_sigtimedwait takes a pending signal without running a
//! handler, rt_sigqueueinfo and rt_tgsigqueueinfo send one with a siginfo the
//! sender chose.
//!
//! rt_sigtimedwait waits (see [`super::blocking`]) with the thread's
//! `call.signals` set to what it waits for, so a sender queues and wakes it even
//! though the thread blocks those signals (callers block them first, as POSIX
//! asks). A signal it does not wait for and does not block, with a handler, ends
//! the wait with EINTR (never restarted, as on Linux).

use super::signal::{self, SigInfo, SI_TKILL, UNBLOCKABLE};
use super::user_mem::{read_timespec_ns, UserPtr, UserSlice};
use super::{Errno, Sys, EAGAIN, EINVAL, EPERM, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::process::scheduler::TICK_HZ;
use crate::process::{Pid, Tid};

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
    let wanted = UserPtr::<u64>::new(set).read(sys.space()?)? & !UNBLOCKABLE;
    let ticks = match timeout {
        0 => None,
        at => Some(read_timespec_ns(sys.space()?, at)?.div_ceil(NSEC_PER_TICK)),
    };
    let t = sys.table.thread_mut(sys.tid).ok_or(ESRCH)?;
    let ready = t.pending_signals & wanted;
    if ready != 0 {
        let sig = ready.trailing_zeros() as i32 + 1;
        let taken = t.take_signal(sig).unwrap_or(SigInfo::user(sig, 0));
        if info != 0 {
            UserSlice::new(info, 128).write(sys.space()?, &taken.to_bytes())?;
        }
        return Ok(sig as usize);
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
    UserSlice::new(uinfo, 128).read(sys.space()?, &mut raw)?;
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

/// rt_sigqueueinfo(tgid, sig, info): `sig` with the caller's siginfo to process
/// `tgid`.
pub fn sys_rt_sigqueueinfo<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    tgid: usize,
    sig: usize,
    uinfo: usize,
) -> Result<usize, Errno> {
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

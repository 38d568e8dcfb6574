//! Small calls of the signal and machine families: rt_sigaction, rt_sigprocmask,
//! sigaltstack, rt_sigpending, pause and rt_sigsuspend (which wait on the
//! thread's signals, see [`super::blocking`]), uname, and the CPU affinity (one
//! CPU).

use super::signal::{SigAction, UNBLOCKABLE};
use super::user_mem::{UserPtr, UserSlice};
use super::{Errno, Sys, EFAULT, EINVAL, ENOMEM, EPERM, ESRCH};
use crate::memory::frame_allocator::FrameSource;

const SIGSET_SIZE: usize = 8;
const SIGKILL: usize = 9;
const SIGSTOP: usize = 19;
/// ss_flags: no alternate stack.
pub const SS_DISABLE: u32 = 2;
/// ss_flags: the thread runs on its alternate stack.
const SS_ONSTACK: u32 = 1;
/// ss_flags: disable the stack while a handler runs (until its rt_sigreturn).
pub const SS_AUTODISARM: u32 = 1 << 31;
/// The smallest alternate stack (Linux's MINSIGSTKSZ on x86_64).
const MINSIGSTKSZ: u64 = 2048;
const UTS_FIELD: usize = 65;

fn put<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    bytes: &[u8],
) -> Result<(), Errno> {
    UserSlice::new(addr, bytes.len()).write(&mut *sys.space()?, bytes)
}

/// rt_sigaction(sig, act, oldact, sigsetsize): checks like Linux; records the new
/// handler (see [`super::signal`]) and reports the old one (flags, restorer and mask
/// read back as 0).
pub fn sys_rt_sigaction<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    sig: usize,
    act: usize,
    oldact: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    // Linux's order: the set size, the copy of `act` (EFAULT), then the signal.
    if sigsetsize != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let new = match act {
        0 => None,
        _ => Some(read_sigaction(sys, act)?),
    };
    if !(1..=64).contains(&sig) || (new.is_some() && (sig == SIGKILL || sig == SIGSTOP)) {
        return Err(EINVAL);
    }
    let actions = sys.signals()?;
    let old = actions.lock().action(sig as i32);
    if let Some(new) = new {
        actions.lock().set_action(sig as i32, new);
        // An action that ignores the signal discards it where it is pending (POSIX;
        // Linux's do_sigaction), on every thread of the process.
        let ignores = new.handler == super::signal::SIG_IGN
            || (new.handler == super::signal::SIG_DFL
                && super::signal::default_action(sig as i32)
                    == super::signal::DefaultAction::Ignore);
        if ignores {
            let pid = sys.pid()?;
            super::signal::discard_pending_in(sys, pid, super::signal::bit(sig as i32));
        }
    }
    if oldact != 0 {
        let out = UserPtr::<u64>::new(oldact);
        let words = [old.handler, old.flags, old.restorer, old.mask];
        for (i, w) in words.iter().enumerate() {
            out.add(i).write(&mut *sys.space()?, w)?;
        }
    }
    Ok(0)
}

/// The kernel `struct sigaction` at `addr`: handler, flags, restorer, mask.
fn read_sigaction<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
) -> Result<SigAction, Errno> {
    let at = UserPtr::<u64>::new(addr);
    let mut space = sys.space()?;
    Ok(SigAction {
        handler: at.read(&mut space)?,
        flags: at.add(1).read(&mut space)?,
        restorer: at.add(2).read(&mut space)?,
        mask: at.add(3).read(&mut space)? & !UNBLOCKABLE,
    })
}

/// rt_sigprocmask(how, set, oldset, sigsetsize): SIG_BLOCK (0), SIG_UNBLOCK (1) or
/// SIG_SETMASK (2) the calling thread's mask; SIGKILL and SIGSTOP stay unblocked.
/// Signals it unblocks are delivered when the call returns to user mode.
pub fn sys_rt_sigprocmask<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    how: usize,
    set: usize,
    oldset: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    // Linux's order: the size, the copy of `set` (EFAULT), `how` (EINVAL), the
    // new mask, then the old one written back (EFAULT after the change).
    if sigsetsize != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let old = sys.table.thread(sys.tid).ok_or(ESRCH)?.signal_mask;
    if set == 0 && oldset == 0 {
        return Ok(0);
    }
    // Both copies under one look-up of the space: the old mask is written before the
    // new one is set, and a failed write is reported after it is set, as Linux does.
    let (mask, old_written) = {
        let mut space = sys.space()?;
        let mask = match UserPtr::<u64>::new(set) {
            p if p.is_null() => None,
            p => Some(match (how, p.read(&mut space)?) {
                (0, set) => old | set,
                (1, set) => old & !set,
                (2, set) => set,
                _ => return Err(EINVAL),
            }),
        };
        let written = oldset == 0 || UserPtr::<u64>::new(oldset).write(&mut space, &old).is_ok();
        (mask, written)
    };
    if let Some(mask) = mask {
        set_mask(sys, mask);
    }
    match old_written {
        true => Ok(0),
        false => Err(EFAULT),
    }
}

/// Makes `mask` (less SIGKILL and SIGSTOP) the calling thread's signal mask; the
/// thread then notices the shared pending signals it no longer blocks.
pub fn set_mask<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, mask: u64) {
    let shared = sys.process().map_or(0, |p| p.shared_pending.set());
    if let Some(t) = sys.table.thread_mut(sys.tid) {
        t.signal_mask = mask & !UNBLOCKABLE;
        t.recalc_notice(shared);
    }
}

/// The `ss_flags` of the calling thread's alternate stack seen from stack pointer
/// `sp` (Linux's `sas_ss_flags`): SS_DISABLE without one, SS_ONSTACK while running
/// on it (never with SS_AUTODISARM, whose stack may be set from a handler), else 0.
pub fn alt_stack_flags(alt: Option<(u64, u64)>, autodisarm: bool, sp: u64) -> u32 {
    match alt {
        None => SS_DISABLE,
        Some((base, size)) if !autodisarm && sp > base && sp <= base + size => SS_ONSTACK,
        Some(_) => 0,
    }
}

/// A `stack_t` { ss_sp, ss_flags, ss_size }.
pub type StackT = (u64, u32, u64);

/// The calling thread's alternate stack as sigaltstack reports it from `sp`:
/// [`alt_stack_flags`] and SS_AUTODISARM if it was given.
pub fn alt_stack_of(t: &crate::process::Thread, sp: u64) -> StackT {
    let (base, size) = t.alt_stack.unwrap_or((0, 0));
    let flags = alt_stack_flags(t.alt_stack, autodisarm(t), sp) | (t.alt_flags & SS_AUTODISARM);
    (base, flags, size)
}

/// The alternate stack as a signal frame's uc_stack saves it: the flags as given
/// (Linux's `__save_altstack`).
pub fn saved_alt_stack(t: &crate::process::Thread) -> StackT {
    let (base, size) = t.alt_stack.unwrap_or((0, 0));
    (base, t.alt_flags, size)
}

/// Whether the thread's alternate stack disarms while a handler runs.
pub fn autodisarm(t: &crate::process::Thread) -> bool {
    t.alt_stack.is_some() && t.alt_flags & SS_AUTODISARM != 0
}

/// Delivering a handler disarms an SS_AUTODISARM stack (Linux's `sas_ss_reset`).
pub fn disarm_alt_stack(t: &mut crate::process::Thread) {
    if autodisarm(t) {
        t.alt_stack = None;
        t.alt_flags = SS_DISABLE;
    }
}

/// Linux's `do_sigaltstack` for a new `stack_t` on thread `t` running at `sp`: EPERM
/// while on the current stack, EINVAL for unknown flags (SS_ONSTACK is taken as
/// 0), ENOMEM below MINSIGSTKSZ.
pub fn set_alt_stack(t: &mut crate::process::Thread, sp: u64, ss: StackT) -> Result<(), Errno> {
    let (base, flags, size) = ss;
    if alt_stack_flags(t.alt_stack, autodisarm(t), sp) == SS_ONSTACK {
        return Err(EPERM);
    }
    if !matches!(flags & !SS_AUTODISARM, SS_DISABLE | 0 | SS_ONSTACK) {
        return Err(EINVAL);
    }
    // The stack it has already is taken as it is, whatever its size (Linux's
    // shortcut, before the size check).
    let (have_base, have_size) = t.alt_stack.unwrap_or((0, 0));
    if (have_base, have_size, t.alt_flags) == (base, size, flags) {
        return Ok(());
    }
    let stack = match flags & !SS_AUTODISARM {
        SS_DISABLE => None,
        0 | SS_ONSTACK if size < MINSIGSTKSZ => return Err(ENOMEM),
        0 | SS_ONSTACK => Some((base, size)),
        _ => return Err(EINVAL),
    };
    t.alt_flags = flags;
    t.alt_stack = stack;
    Ok(())
}

/// sigaltstack(ss, old): reports (`old`) and sets (`ss`) the calling thread's
/// alternate signal stack, a `stack_t` { ss_sp, ss_flags, ss_size } (see
/// [`set_alt_stack`]); SS_AUTODISARM disables it while a handler runs. The caller's
/// user stack pointer is in its `UserRegs` (the task layer records it).
pub fn sys_sigaltstack<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    ss: usize,
    old: usize,
) -> Result<usize, Errno> {
    let t = sys.table.thread(sys.tid).ok_or(ESRCH)?;
    let sp = t.user.sp;
    let (base, flags, size) = alt_stack_of(t, sp);
    let new = match UserPtr::<u64>::new(ss) {
        p if p.is_null() => None,
        p => {
            let mut space = sys.space()?;
            Some([
                p.read(&mut space)?,
                p.add(1).read(&mut space)?,
                p.add(2).read(&mut space)?,
            ])
        }
    };
    if let Some([base, new_flags, size]) = new {
        let t = sys.table.thread_mut(sys.tid).ok_or(ESRCH)?;
        set_alt_stack(t, sp, (base, new_flags as u32, size))?;
    }
    if old != 0 {
        let out = UserPtr::<u64>::new(old);
        let mut space = sys.space()?;
        out.write(&mut space, &base)?;
        out.add(1).write(&mut space, &u64::from(flags))?;
        out.add(2).write(&mut space, &size)?;
    }
    Ok(0)
}

/// uname's machine field: the CPU the kernel is built for.
#[cfg(target_arch = "aarch64")]
const UNAME_MACHINE: &[u8] = b"aarch64";
/// uname's machine field: the CPU the kernel is built for.
#[cfg(not(target_arch = "aarch64"))]
const UNAME_MACHINE: &[u8] = b"x86_64";

/// uname(buf): six NUL-padded 65-byte fields.
pub fn sys_uname<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, buf: usize) -> Result<usize, Errno> {
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"localhost",
        b"6.1.0",
        b"#1 SMP",
        UNAME_MACHINE,
        b"(none)",
    ];
    let mut out = [0u8; 6 * UTS_FIELD];
    for (i, f) in fields.iter().enumerate() {
        out[i * UTS_FIELD..i * UTS_FIELD + f.len()].copy_from_slice(f);
    }
    put(sys, buf, &out)?;
    Ok(0)
}

/// rt_sigsuspend(mask, size): waits for a signal with `mask` as the thread's mask; the
/// old mask comes back when the handler that ends the wait returns (EINTR).
pub fn sys_rt_sigsuspend<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    mask: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    if sigsetsize != SIGSET_SIZE {
        return Err(EINVAL);
    }
    let new = UserPtr::<u64>::new(mask).read(&mut *sys.space()?)?;
    let t = sys.table.thread_mut(sys.tid).ok_or(ESRCH)?;
    // A re-issued call (a wake-up without a signal) keeps the mask saved first.
    if t.suspended_mask.is_none() {
        t.suspended_mask = Some(t.signal_mask);
    }
    set_mask(sys, new);
    sys_pause(sys)
}

/// rt_sigpending(set, size): the signals pending for the calling thread or its
/// process that it blocks (Linux's `do_sigpending`).
pub fn sys_rt_sigpending<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    set: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    if sigsetsize > SIGSET_SIZE {
        return Err(EINVAL);
    }
    let shared = sys.process()?.shared_pending.set();
    let t = sys.table.thread(sys.tid).ok_or(ESRCH)?;
    let pending = (t.pending.set() | shared) & t.signal_mask;
    let bytes = pending.to_le_bytes();
    UserSlice::new(set, sigsetsize).write(&mut *sys.space()?, &bytes[..sigsetsize])?;
    Ok(0)
}

/// pause(): waits until a signal is delivered (a handler runs: EINTR) or kills
/// (blocked; a spurious wake-up re-issues the call).
pub fn sys_pause<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    sys.block()
}

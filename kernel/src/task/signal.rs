//! Running signal handlers: the arch-neutral half of delivery and of `rt_sigreturn`.
//!
//! A signal whose action is a handler is made pending on a thread when it is sent
//! (`syscall::signal`), and a thread waiting in a call is woken for it (the call
//! ends with EINTR or restarts under SA_RESTART: [`interrupted`]). When the thread
//! is about to return to user mode, after a trap or an interrupt
//! ([`deliver_pending`]), the lowest pending signal it does not block is taken (a
//! pending one without a handler, such as a timer's SIGALRM, takes its default
//! action there):
//! the arch builds Linux's `rt_sigframe` for it on the user stack (siginfo, ucontext
//! with the saved registers, FP/SIMD state and mask) and points the frame at the
//! handler; the thread's mask gains the action's mask and the signal itself (unless
//! `SA_NODEFER`); `SA_RESETHAND` puts the action back to SIG_DFL. The handler
//! returns into the restorer, whose `rt_sigreturn` ([`sigreturn`]) gives the saved
//! registers and mask back. With SA_ONSTACK the frame goes on the alternate stack.
//! A fault with a handler is delivered at once ([`deliver_fault`]). A frame that
//! cannot be written, or a corrupt one given to `rt_sigreturn`, kills the process
//! with SIGSEGV, as on Linux.
//!
//! A thread takes its own pending signals first, then its process's shared ones
//! (those it has been told of: `Thread::shared_notice`). A stop signal with the
//! default action parks every thread of the process until SIGCONT (a group stop,
//! [`stop_here`]).

use super::{kill_running_process, with_own_space_in, UserFrame};
use crate::arch::user::{self as mech, Frame};
use crate::memory::frame_allocator::GlobalFrames;
use crate::process::scheduler::SCHEDULER;
use crate::process::{ProcessTable, Thread, Tid, PROCESS_TABLE};
use crate::syscall::misc::{self, StackT};
use crate::syscall::signal::{
    self, DefaultAction, SigAction, SigInfo, SA_NODEFER, SA_RESETHAND, UNBLOCKABLE,
};

/// What a signal does to a system call that blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// No signal to deliver: the call goes on as it was.
    No,
    /// The call fails with EINTR, then the handler runs.
    Eintr,
    /// The handler runs, then the call is made again (`SA_RESTART` on a restartable
    /// call, see [`interrupted`]).
    Restart,
    /// No handler runs (the signal stops the process, or is dropped): the call is
    /// made again afterwards, unless it already moved bytes.
    Resume,
}

/// Whether the call `num` of `me`, which waited and has just been woken, was
/// interrupted by a signal to deliver, and what follows (Linux's ERESTARTSYS /
/// ERESTARTNOHAND / ERESTART_RESTARTBLOCK choice, `signal(7)`): with SA_RESTART,
/// read, write, writev, wait4 and futex waits without a timeout are made again;
/// poll, select, the sleeps, pause, rt_sigsuspend and timed futex waits always end
/// with EINTR.
pub fn interrupted(me: Tid, num: usize, args: [usize; 6]) -> Interrupted {
    use crate::syscall as sys;
    // No signal pending anywhere (what wakes most waits: a pipe's bytes, a child's
    // exit): none to deliver, without the table.
    if !crate::process::signals_may_be_pending() {
        return Interrupted::No;
    }
    let table = PROCESS_TABLE.lock();
    let Some(t) = table.thread(me) else {
        return Interrupted::No;
    };
    let shared = table.process(t.pid).map_or(0, |p| p.shared_pending.set());
    let ready = t.deliverable(shared);
    // A vfork parent's wait ends only when the child lets it go (or by death); a
    // call cut into pieces that must all run goes on.
    if ready == 0 || t.call.vfork_child.is_some() || t.call.finish {
        return Interrupted::No;
    }
    // A wait4 whose child has ended (or stopped or continued, if asked for)
    // meanwhile completes first (Linux re-checks the children before it looks at
    // signals): the SIGCHLD that woke it comes after.
    let options = match num {
        sys::SYS_WAIT4 => Some(args[2] | WEXITED),
        sys::SYS_WAITID => Some(args[3]),
        _ => None,
    };
    if options.is_some_and(|o| has_report(&table, t.pid, o)) {
        return Interrupted::No;
    }
    let sig = ready.trailing_zeros() as i32 + 1;
    let action = table
        .process(t.pid)
        .map(|p| p.signals.lock().action(sig))
        .unwrap_or_default();
    // No handler will run (a stop, or an action that drops it): the call is made
    // again once the signal has been taken, as Linux restarts it whatever SA_RESTART.
    if action.handler == signal::SIG_DFL || action.handler == signal::SIG_IGN {
        return Interrupted::Resume;
    }
    let flags = action.flags;
    let restartable = match num {
        sys::SYS_READ | sys::SYS_WRITE | sys::SYS_WRITEV | sys::SYS_WAIT4 | sys::SYS_WAITID => true,
        sys::SYS_FUTEX => t.call.deadline.is_none(),
        _ => false,
    };
    match restartable && flags & signal::SA_RESTART != 0 {
        true => Interrupted::Restart,
        false => Interrupted::Eintr,
    }
}

/// wait options: exits, stops (WUNTRACED / WSTOPPED), resumes.
const WEXITED: usize = 4;
const WUNTRACED: usize = 2;
const WCONTINUED: usize = 8;

/// Whether a child of `pid` has something a wait with `options` reports.
fn has_report(
    table: &crate::process::ProcessTable<crate::memory::frame_allocator::GlobalFrames>,
    pid: crate::process::Pid,
    options: usize,
) -> bool {
    use crate::process::job::ChildReport;
    let reports = |c: &crate::process::Process| match (c.state, c.job.report) {
        (crate::process::ProcessState::Zombie { .. }, _) => options & WEXITED != 0,
        (_, Some(ChildReport::Stopped(_))) => options & WUNTRACED != 0,
        (_, Some(ChildReport::Continued)) => options & WCONTINUED != 0,
        _ => false,
    };
    table.process(pid).is_some_and(|p| {
        p.children
            .iter()
            .any(|c| table.process(*c).is_some_and(reports))
    })
}

/// What the arch writes into a signal frame.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// The signal.
    pub sig: i32,
    /// Its action (handler, flags, restorer).
    pub action: SigAction,
    /// The mask to restore at `rt_sigreturn` (the thread's before delivery).
    pub saved_mask: u64,
    /// Its siginfo (sender, code, a fault's address).
    pub info: SigInfo,
    /// Where to build the frame instead of below the interrupted stack pointer: the
    /// top of the alternate stack (SA_ONSTACK, and not already on it).
    pub stack_top: Option<u64>,
    /// The frame's `uc_stack`: the alternate stack's base, its ss_flags as given to
    /// sigaltstack, and its size; rt_sigreturn sets the alternate stack back to it.
    pub uc_stack: StackT,
}

/// Writes `v` little-endian at `buf[at..]` (building a signal frame).
pub fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` little-endian at `buf[at..]`.
pub fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Reads the little-endian u64 at `buf[at..]` (restoring a signal frame).
pub fn get_u64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads the little-endian u32 at `buf[at..]`.
pub fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

impl Delivery {
    /// Writes the frame's `stack_t uc_stack` (ss_sp, ss_flags, ss_size) at `at`.
    pub fn put_uc_stack(&self, buf: &mut [u8], at: usize) {
        let (ss_sp, ss_flags, ss_size) = self.uc_stack;
        put_u64(buf, at, ss_sp);
        put_u64(buf, at + 8, u64::from(ss_flags));
        put_u64(buf, at + 16, ss_size);
    }

    /// Reads the `stack_t uc_stack` at `at` of a frame (rt_sigreturn).
    pub fn get_uc_stack(buf: &[u8], at: usize) -> StackT {
        (
            get_u64(buf, at),
            get_u32(buf, at + 8),
            get_u64(buf, at + 16),
        )
    }

    fn without_handler(sig: i32, action: SigAction) -> Delivery {
        Delivery {
            sig,
            action,
            saved_mask: 0,
            info: SigInfo::user(sig, 0),
            stack_top: None,
            uc_stack: (0, 0, 0),
        }
    }
}

/// Where a handler for `action` runs on thread `t` interrupted at `sp`: (frame stack
/// top, the frame's uc_stack). Then, if the stack was given SS_AUTODISARM, it is
/// disabled until rt_sigreturn restores it (Linux's `signal_delivered`).
fn stack_for(action: &SigAction, t: &mut Thread, sp: u64) -> (Option<u64>, StackT) {
    let uc_stack = misc::saved_alt_stack(t);
    let (base, flags, size) = misc::alt_stack_of(t, sp);
    let switch = action.flags & signal::SA_ONSTACK != 0
        && t.alt_stack.is_some()
        && flags & !misc::SS_AUTODISARM == 0;
    misc::disarm_alt_stack(t);
    (switch.then_some(base + size), uc_stack)
}

/// SIGSEGV: a signal frame could not be built or restored.
const SIGSEGV: i32 = 11;

/// Takes the next deliverable signal of `me`, if any, updating the mask and the
/// action as delivery does. The thread and its process are looked up once.
fn take_deliverable(table: &mut ProcessTable<GlobalFrames>, me: Tid, sp: u64) -> Option<Delivery> {
    let (t, p) = table.thread_and_process_mut(me)?;
    let info = signal::take_next_of(t, p)?;
    let sig = info.sig;
    // After rt_sigsuspend the mask to restore is the one it replaced.
    let saved_mask = t.suspended_mask.take().unwrap_or(t.signal_mask);
    let action = {
        let mut a = p.signals.lock();
        let action = a.action(sig);
        let handler = action.handler;
        if handler == signal::SIG_DFL || handler == signal::SIG_IGN {
            // No handler to run (a timer's signal, or the action changed since the
            // signal was sent): the caller takes the default action or drops it.
            return Some(Delivery::without_handler(sig, action));
        }
        if action.flags & SA_RESETHAND != 0 {
            a.set_action(sig, SigAction::default());
        }
        action
    };
    let mut blocked = t.signal_mask | action.mask;
    if action.flags & SA_NODEFER == 0 {
        blocked |= signal::bit(sig);
    }
    let shared = p.shared_pending.set();
    t.signal_mask = blocked & !UNBLOCKABLE;
    t.recalc_notice(shared);
    // A sleep kept for its restart after a stop is over: a handler runs first.
    t.call.deadline = None;
    let (stack_top, uc_stack) = stack_for(&action, t, sp);
    Some(Delivery {
        sig,
        action,
        saved_mask,
        info,
        stack_top,
        uc_stack,
    })
}

/// Before `me` returns to user mode: runs the handlers of its deliverable pending
/// signals by rewriting `frame` (see the module docs). As on Linux, each further
/// signal the handler's mask does not block gets its frame on top of the one
/// before, so its handler runs first.
// Inlined: the common case, no signal pending anywhere, is one load on every way back
// to user mode; the rest is out of line.
#[inline]
pub fn deliver_pending(me: Tid, frame: &mut Frame) {
    if crate::process::signals_may_be_pending() {
        deliver_pending_now(me, frame);
    }
}

/// [`deliver_pending`] once some signal may be pending somewhere. A handler's frame
/// is built under the table lock the signal was taken under. After each signal it
/// looks again only while some signal may still be pending somewhere (the one just
/// taken was often the last: no second look-up of the thread then).
#[inline(never)]
fn deliver_pending_now(me: Tid, frame: &mut Frame) {
    loop {
        let mut table = PROCESS_TABLE.lock();
        let Some(d) = take_deliverable(&mut table, me, frame.sp()) else {
            return;
        };
        match d.action.handler {
            signal::SIG_IGN => {}
            signal::SIG_DFL => {
                drop(table);
                take_default_action(me, d.sig);
            }
            _ => {
                let pushed = push_frame(&mut table, me, frame, &d);
                drop(table);
                if !pushed {
                    super::report_death(me, frame, SIGSEGV, ": cannot build the signal frame");
                    kill_running_process(me, SIGSEGV);
                }
            }
        }
        if !crate::process::signals_may_be_pending() {
            return;
        }
    }
}

/// `sig`, taken by `me` without a handler, does what its default action says
/// (nothing to init).
fn take_default_action(me: Tid, sig: i32) {
    if process_unkillable(me) {
        return;
    }
    match signal::default_action(sig) {
        DefaultAction::Ignore | DefaultAction::Continue => {}
        DefaultAction::Stop => stop_here(me, sig),
        DefaultAction::Terminate => kill_running_process(me, sig),
    }
}

/// Whether `me`'s process ignores default actions (init).
fn process_unkillable(me: Tid) -> bool {
    let table = PROCESS_TABLE.lock();
    let pid = table.thread(me).map(|t| t.pid);
    pid.and_then(|p| table.process(p))
        .is_some_and(|p| p.unkillable)
}

/// A stop signal with the default action reached `me`: its process stops (if the
/// signal was only pending, as a blocked SIGTSTP is, the stop happens now) and `me`
/// waits on the process's resume queue until SIGCONT (or dies there, if killed).
fn stop_here(me: Tid, sig: i32) {
    loop {
        {
            let mut table = PROCESS_TABLE.lock();
            let mut sched = SCHEDULER.lock();
            let mut sys = crate::syscall::Sys {
                table: &mut table,
                sched: (&mut *sched).into(),
                tid: me,
            };
            let Ok(pid) = sys.pid() else { return };
            if sig != signal::SIGSTOP && sys.process().is_ok_and(|p| p.job.stopped.is_none()) {
                signal::stop_process(&mut sys, pid, sig);
            }
            let Some(resume) = sys
                .process()
                .ok()
                .filter(|p| p.job.stopped.is_some())
                .map(|p| p.job.resume.clone())
            else {
                if let Some(t) = sys.table.thread_mut(me) {
                    t.stopped = false;
                }
                return;
            };
            // Drop the stop request this thread has just met (stop_process made one).
            if let Some(t) = sys.table.thread_mut(me) {
                t.pending.discard(signal::bit(signal::SIGSTOP));
            }
            signal::thread_stopped(&mut sys, me);
            let _ = resume.add(&sys.sched.waiter(me));
            let _ = sys.sched.block_current();
            drop(table);
            drop(sched);
            crate::arch::thread::switch_to_scheduled();
            resume.remove(me);
        }
    }
}

/// Builds the signal frame for `d` (through the arch); false when it cannot be: no
/// restorer to return through (SA_RESTORER unset where the arch has no sigreturn
/// trampoline: x86_64, as Linux), or a stack that does not take it.
fn push_frame(
    table: &mut ProcessTable<GlobalFrames>,
    me: Tid,
    frame: &mut Frame,
    d: &Delivery,
) -> bool {
    let restorer =
        d.action.flags & signal::SA_RESTORER != 0 || !mech::SIGRETURN_TRAMPOLINE.is_empty();
    let push = |space: &mut _| mech::push_signal_frame(space, frame, d);
    restorer && with_own_space_in(table, me, push).is_ok()
}

/// A fault raised `sig` in `me`: if the process has a handler for it and the thread
/// does not block it, the handler runs now (with `si_code` = `code`, `si_addr` =
/// `addr`) and this returns true; otherwise the caller kills the process (a blocked
/// or default fault signal is fatal, as Linux's force_sig makes it).
pub fn deliver_fault(me: Tid, frame: &mut Frame, sig: i32, code: i32, addr: u64) -> bool {
    let mut table = PROCESS_TABLE.lock();
    let d = {
        let Some(t) = table.thread(me) else {
            return false;
        };
        let (pid, mask) = (t.pid, t.signal_mask);
        if mask & signal::bit(sig) != 0 {
            return false;
        }
        let Some(actions) = table.process(pid).map(|p| p.signals.clone()) else {
            return false;
        };
        let action = actions.lock().action(sig);
        if action.handler == signal::SIG_DFL || action.handler == signal::SIG_IGN {
            return false;
        }
        if action.flags & SA_RESETHAND != 0 {
            actions.lock().set_action(sig, SigAction::default());
        }
        let mut blocked = mask | action.mask;
        if action.flags & SA_NODEFER == 0 {
            blocked |= signal::bit(sig);
        }
        let Some(t) = table.thread_mut(me) else {
            return false;
        };
        t.signal_mask = blocked & !UNBLOCKABLE;
        let (stack_top, uc_stack) = stack_for(&action, t, frame.sp());
        Delivery {
            sig,
            action,
            saved_mask: mask,
            info: SigInfo {
                sig,
                code,
                pid: pid.0,
                value: 0,
                addr: Some(addr),
            },
            stack_top,
            uc_stack,
        }
    };
    push_frame(&mut table, me, frame, &d)
}

/// rt_sigreturn: restores the registers, mask and alternate stack (`uc_stack`)
/// saved by delivery from the signal frame on the user stack; a frame that cannot
/// be read kills the process.
pub fn sigreturn(me: Tid, frame: &mut Frame) {
    // The stack is set back as seen from the handler's stack pointer (as Linux
    // does: a stack the handler armed while on it stays, EPERM being ignored).
    let handler_sp = frame.sp();
    let mut table = PROCESS_TABLE.lock();
    let restored = with_own_space_in(&mut table, me, |space| mech::pop_signal_frame(space, frame));
    match restored {
        Ok((mask, uc_stack)) => {
            if let Some((t, p)) = table.thread_and_process_mut(me) {
                t.signal_mask = mask & !UNBLOCKABLE;
                t.recalc_notice(p.shared_pending.set());
                // Linux's restore_altstack: a refused stack_t is ignored.
                let _ = misc::set_alt_stack(t, handler_sp, uc_stack);
            }
        }
        Err(_) => {
            drop(table);
            super::report_death(me, frame, SIGSEGV, ": bad frame at rt_sigreturn");
            kill_running_process(me, SIGSEGV)
        }
    }
}

//! [`Thread`]: one schedulable flow of control and what it owns.
//!
//! Threads are stored boxed in the process table, so `&thread.context` has a stable
//! address for the thread's whole life: the bare-metal switch routine may keep raw
//! pointers to it between the table lock being released and the switch.

use super::context::{Context, ThreadContext};
use super::wait_queue::CallWait;
use super::{Pid, Priority, Tid};
use crate::memory::VirtAddr;
use crate::syscall::signal::SigInfo;
use alloc::boxed::Box;
use core::any::Any;
use core::sync::atomic::{AtomicUsize, Ordering};

/// How many signals are pending on any thread (a hint: threads that exit with
/// signals pending leave it high). While it is 0, the way back to user mode skips
/// looking for signals, so the system-call fast path takes no lock for them.
static PENDING_ANYWHERE: AtomicUsize = AtomicUsize::new(0);

/// Whether some thread may have a signal pending.
pub fn signals_may_be_pending() -> bool {
    PENDING_ANYWHERE.load(Ordering::Relaxed) != 0
}

/// What a thread owns that only the arch understands: on bare metal, a user thread's
/// guarded kernel stack and FP/SIMD save area (`task::UserThread`). Opaque here, so
/// the process table can hold it (and hand it back when the thread is freed, see
/// `ProcessTable::take_released`) without knowing the machine.
pub struct ArchState(pub Box<dyn Any + Send>);

impl core::fmt::Debug for ArchState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ArchState")
    }
}

/// The user-mode register state the thread (re)enters user space with. The arch trap
/// entry saves the full frame; these are the values the kernel itself decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRegs {
    /// Instruction pointer.
    pub ip: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Return value register (rax / x0): 0 in a fork/clone child.
    pub ret: u64,
    /// Thread pointer (FS base / TPIDR_EL0).
    pub tls: u64,
}

/// What a blocked thread waits for, when the process table is the one to wake it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// vfork: this child to exit (or, later, exec).
    VforkChild(Tid),
}

/// A thread.
#[derive(Debug)]
pub struct Thread {
    /// Its id.
    pub tid: Tid,
    /// The process it belongs to.
    pub pid: Pid,
    /// Base scheduling priority.
    pub priority: Priority,
    /// Saved kernel context while it is not running (see [`super::context`]).
    pub context: Context,
    /// Where it started.
    pub entry: VirtAddr,
    /// Top of its kernel stack, owned by whoever made the thread (the creator of a
    /// kernel thread; for a user thread, its `arch` state). `None` for a clone child
    /// until the arch gives it one.
    pub kernel_stack: Option<VirtAddr>,
    /// Its arch-owned state (a user thread's kernel stack and FP/SIMD area).
    pub arch: Option<ArchState>,
    /// Its user stack top, `None` for kernel threads.
    pub user_stack: Option<VirtAddr>,
    /// User register state decided by the kernel.
    pub user: UserRegs,
    /// `CLONE_CHILD_CLEARTID` / `set_tid_address`: zeroed and futex-woken at exit.
    pub clear_child_tid: Option<u64>,
    /// Why it is blocked, if the process table must wake it.
    pub waiting: Option<Wait>,
    /// For a vfork child: the suspended parent thread.
    pub vfork_parent: Option<Tid>,
    /// Blocked signals (bit `sig - 1`).
    pub signal_mask: u64,
    /// Signals sent to this thread and not yet delivered (bit `sig - 1`).
    pub pending_signals: u64,
    /// The siginfo of pending signals whose sender said more than "kill from
    /// myself" (one per signal: a signal pending twice is pending once).
    pending_info: alloc::vec::Vec<SigInfo>,
    /// The mask rt_sigsuspend replaced, restored when the handler that ends the
    /// suspension returns.
    pub suspended_mask: Option<u64>,
    /// The alternate signal stack (sigaltstack): lowest address and size.
    pub alt_stack: Option<(u64, u64)>,
    /// The wait of the system call it is in (see [`super::wait_queue`]).
    pub call: CallWait,
    exit_code: Option<i32>,
}

impl Thread {
    /// A thread that starts at `entry` on the kernel stack whose top is `kernel_stack`.
    pub fn new(
        tid: Tid,
        pid: Pid,
        priority: Priority,
        entry: VirtAddr,
        kernel_stack: Option<VirtAddr>,
    ) -> Self {
        let top = kernel_stack.unwrap_or(VirtAddr::new(0));
        Thread {
            tid,
            pid,
            priority,
            context: Context::new_thread(entry, top),
            entry,
            kernel_stack,
            arch: None,
            user_stack: None,
            user: UserRegs {
                ip: entry.as_u64(),
                ..UserRegs::default()
            },
            clear_child_tid: None,
            waiting: None,
            vfork_parent: None,
            signal_mask: 0,
            pending_signals: 0,
            pending_info: alloc::vec::Vec::new(),
            suspended_mask: None,
            alt_stack: None,
            call: CallWait::default(),
            exit_code: None,
        }
    }

    /// Whether the thread has exited.
    pub fn has_exited(&self) -> bool {
        self.exit_code.is_some()
    }

    /// Its exit code, once exited.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    /// Marks the thread exited with `code` (the first exit wins).
    pub(super) fn mark_exited(&mut self, code: i32) {
        self.exit_code.get_or_insert(code);
    }

    /// Makes `sig` pending on this thread.
    pub fn make_pending(&mut self, sig: i32) {
        let bit = 1u64 << (sig - 1);
        if self.pending_signals & bit == 0 {
            self.pending_signals |= bit;
            PENDING_ANYWHERE.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Makes `info.sig` pending with `info` (kept unless the signal was pending
    /// already, or the kernel heap cannot hold it: the signal still counts).
    pub fn make_pending_info(&mut self, info: SigInfo) {
        if self.pending_signals & (1u64 << (info.sig - 1)) == 0
            && self.pending_info.try_reserve(1).is_ok()
        {
            self.pending_info.retain(|i| i.sig != info.sig);
            self.pending_info.push(info);
        }
        self.make_pending(info.sig);
    }

    /// The siginfo recorded for `sig` (taken), or what a kill from this thread's own
    /// process would say.
    pub fn take_info(&mut self, sig: i32) -> SigInfo {
        match self.pending_info.iter().position(|i| i.sig == sig) {
            Some(at) => self.pending_info.swap_remove(at),
            None => SigInfo::user(sig, self.pid.0),
        }
    }

    /// Takes `sig` off the pending set, with its siginfo, if it is pending
    /// (rt_sigtimedwait dequeues a signal without delivering it).
    pub fn take_signal(&mut self, sig: i32) -> Option<SigInfo> {
        let bit = 1u64 << (sig - 1);
        if self.pending_signals & bit == 0 {
            return None;
        }
        self.pending_signals &= !bit;
        PENDING_ANYWHERE.fetch_sub(1, Ordering::Relaxed);
        Some(self.take_info(sig))
    }

    /// Forgets the pending signals of `set` (SIGCONT discards pending stops, a stop
    /// a pending SIGCONT).
    pub fn discard_pending(&mut self, set: u64) {
        let gone = (self.pending_signals & set).count_ones() as usize;
        self.pending_signals &= !set;
        self.pending_info
            .retain(|i| set & (1u64 << (i.sig - 1)) == 0);
        PENDING_ANYWHERE.fetch_sub(gone, Ordering::Relaxed);
    }

    /// The lowest pending signal this thread does not block, taken off its pending
    /// set.
    pub fn take_pending(&mut self) -> Option<i32> {
        let ready = self.pending_signals & !self.signal_mask;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() as i32 + 1;
        self.pending_signals &= !(1u64 << (sig - 1));
        PENDING_ANYWHERE.fetch_sub(1, Ordering::Relaxed);
        Some(sig)
    }

    /// A raw pointer to the saved context, for the arch switch routine. Stable while
    /// the thread is in the table.
    pub fn context_ptr(&mut self) -> *mut Context {
        &mut self.context
    }
}

//! [`Thread`]: one schedulable flow of control and what it owns.
//!
//! Threads are stored boxed in the process table, so `&thread.context` has a stable
//! address for the thread's whole life: the bare-metal switch routine may keep raw
//! pointers to it between the table lock being released and the switch.

use super::context::{Context, ThreadContext};
use super::wait_queue::CallWait;
use super::wait_queue::WaitQueue;
use super::{Pid, Priority, Tid};
use crate::memory::VirtAddr;
use crate::syscall::sigqueue::SigPending;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

/// Whether some thread or process may have a signal pending (while not, the way
/// back to user mode skips looking for signals).
pub fn signals_may_be_pending() -> bool {
    crate::syscall::sigqueue::signals_may_be_pending()
}

/// Times a thread was marked exited, ever. A thread seen alive (under the table
/// lock) while this read `g` is still alive as long as it reads `g`: the way back
/// from a system call checks that without the table's lock (`task::thread_alive`).
static EXITS_MARKED: AtomicU64 = AtomicU64::new(0);

/// [`EXITS_MARKED`] now.
pub fn exits_marked() -> u64 {
    EXITS_MARKED.load(Ordering::Acquire)
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
    /// For a vfork child: the parent thread waiting on `vfork_done` until this
    /// child execs or exits.
    pub vfork_parent: Option<Tid>,
    /// For a vfork child: where its parent waits (woken when it lets the parent go).
    pub vfork_done: Option<Arc<WaitQueue>>,
    /// Blocked signals (bit `sig - 1`).
    pub signal_mask: u64,
    /// Signals sent to this thread (tkill, tgkill, faults) and not yet delivered.
    pub pending: SigPending,
    /// Whether it should look at its process's shared pending signals when it next
    /// returns to user mode (Linux's TIF_SIGPENDING for them): set when a
    /// process-directed signal picked it, or when it changed its own mask.
    pub shared_notice: bool,
    /// The mask rt_sigsuspend replaced, restored when the handler that ends the
    /// suspension returns.
    pub suspended_mask: Option<u64>,
    /// The alternate signal stack (sigaltstack): lowest address and size.
    pub alt_stack: Option<(u64, u64)>,
    /// The ss_flags last given to sigaltstack (Linux's `sas_ss_flags`: 0 at first,
    /// SS_DISABLE once disabled), saved as is in a signal frame's uc_stack. With
    /// SS_AUTODISARM, delivering a handler disables the stack until rt_sigreturn
    /// restores it from the frame.
    pub alt_flags: u32,
    /// Whether it is parked in a group stop (waiting for SIGCONT).
    pub stopped: bool,
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
        let mut context = Context::new_thread(entry, top);
        // Without a kernel stack there is nothing to run yet: the context stays
        // "on a CPU" (not ready to be loaded) until the arch layer builds it, so a
        // CPU that picks the thread early waits instead of loading garbage.
        context.on_cpu = u64::from(kernel_stack.is_none());
        Thread {
            tid,
            pid,
            priority,
            context,
            entry,
            kernel_stack,
            arch: None,
            user_stack: None,
            user: UserRegs {
                ip: entry.as_u64(),
                ..UserRegs::default()
            },
            clear_child_tid: None,
            vfork_parent: None,
            vfork_done: None,
            signal_mask: 0,
            pending: SigPending::default(),
            shared_notice: false,
            suspended_mask: None,
            alt_stack: None,
            alt_flags: 0,
            stopped: false,
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
        if self.exit_code.is_none() {
            self.exit_code = Some(code);
            EXITS_MARKED.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The signals it could take now: its own pending ones it does not block, and
    /// of `shared` (its process's shared pending set) those it does not block if it
    /// has noticed them.
    pub fn deliverable(&self, shared: u64) -> u64 {
        let shared = if self.shared_notice { shared } else { 0 };
        (self.pending.set() | shared) & !self.signal_mask
    }

    /// Linux's `recalc_sigpending` for the shared set: after its mask changed, the
    /// thread notices the shared signals it no longer blocks.
    pub fn recalc_notice(&mut self, shared: u64) {
        self.shared_notice = shared & !self.signal_mask != 0;
    }

    /// A raw pointer to the saved context, for the arch switch routine. Stable while
    /// the thread is in the table.
    pub fn context_ptr(&mut self) -> *mut Context {
        &mut self.context
    }
}

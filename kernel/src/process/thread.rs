//! [`Thread`]: one schedulable flow of control and what it owns.
//!
//! Threads are stored boxed in the process table, so `&thread.context` has a stable
//! address for the thread's whole life: the bare-metal switch routine may keep raw
//! pointers to it between the table lock being released and the switch.

use super::context::{Context, ThreadContext};
use super::{Pid, Priority, Tid};
use crate::memory::{phys, PhysFrame, VirtAddr, PAGE_SIZE};

/// The kernel stack a thread runs on in kernel mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelStack {
    /// Given by the creator (who keeps owning it); the value is its top.
    Given(VirtAddr),
    /// Allocated by the kernel (for fork/clone children); freed when the thread is
    /// reaped. One frame.
    Owned(PhysFrame),
}

impl KernelStack {
    /// The initial stack pointer (one past the highest byte).
    pub fn top(self) -> VirtAddr {
        match self {
            KernelStack::Given(top) => top,
            KernelStack::Owned(frame) => {
                VirtAddr::new_truncate(phys::phys_to_virt(frame.start_address).as_u64() + PAGE_SIZE)
            }
        }
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
    /// wait4: a child of its process to exit.
    Child,
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
    /// Its kernel stack.
    pub kernel_stack: KernelStack,
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
    exit_code: Option<i32>,
}

impl Thread {
    /// A thread that starts at `entry` on `kernel_stack`.
    pub fn new(
        tid: Tid,
        pid: Pid,
        priority: Priority,
        entry: VirtAddr,
        kernel_stack: KernelStack,
    ) -> Self {
        Thread {
            tid,
            pid,
            priority,
            context: Context::new_thread(entry, kernel_stack.top()),
            entry,
            kernel_stack,
            user_stack: None,
            user: UserRegs {
                ip: entry.as_u64(),
                ..UserRegs::default()
            },
            clear_child_tid: None,
            waiting: None,
            vfork_parent: None,
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

    /// A raw pointer to the saved context, for the arch switch routine. Stable while
    /// the thread is in the table.
    pub fn context_ptr(&mut self) -> *mut Context {
        &mut self.context
    }
}

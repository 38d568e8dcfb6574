//! Processes and threads: the process table, threads with saved contexts, and the
//! scheduler (policy only).
//!
//! ## Ids
//! [`Pid`] and [`Tid`] share one id space, as on Linux: a process made by
//! [`create_process`] gets a pid, each thread a fresh tid; a process made by fork or
//! clone has a main thread whose tid equals its pid.
//!
//! ## Thread states
//! ```text
//!                 add_thread            schedule (picked)
//!  create_thread ----------> Ready <-------------------------> Running
//!                             ^      yield / slice over /          |
//!                             |      preempted by higher level     |
//!                   unblock   |                                    | block_current_thread
//!            +----------------+----------------+                   v
//!            |                                 +-------------- Blocked
//!        Sleeping <------- sleep_current_thread --- Running
//!   (tick reaches the wake-up time, or unblock -> Ready)
//!
//!  any state --exit--> Exited --reap (after the CPU left its stack)--> gone
//! ```
//! The scheduler owns Ready/Running/Blocked/Sleeping; the process table records
//! Exited. [`thread_state`] combines both.
//!
//! ## Process states
//! `Alive` -> (last thread exits, or exit_group) -> `Zombie { status }` -> (parent
//! waits, or no parent) -> gone. At the zombie transition the address space is torn
//! down (every frame back), children are re-parented (to pid 1 if it is alive, else
//! orphaned; orphans are reaped automatically when they exit).
//!
//! ## Locks
//! The global [`PROCESS_TABLE`] and [`scheduler::SCHEDULER`] are [`IrqMutex`]es.
//! Order: process table first, then scheduler, then the frame allocator. The
//! scheduler never calls into the process table while holding its lock. The kernel
//! never takes a page fault on user memory while holding the table lock: it reaches
//! user memory only through `copy_from_user`/`copy_to_user`, software walks that
//! fault pages in themselves.

#![deny(unsafe_code)]

pub mod context;
pub mod job;
pub mod lane;
pub mod oom;
pub mod scheduler;
mod table;
mod thread;
pub mod wait_queue;

pub use context::{Aarch64Context, Context, ThreadContext, X86_64Context};
pub use table::{
    CloneKind, CloneOptions, ExecImage, ExitReport, FsContext, MemoryMode, NewTask, Process,
    ProcessState, ProcessTable, Shared, UserFormat, UserSpace, MAX_PROCESSES, PID_MAX,
};
pub use table::{PROCESS_COST, THREAD_COST};
pub use thread::{exits_marked, signals_may_be_pending, ArchState, Thread, UserRegs};

use crate::memory::address_space::{Access, Fault};
use crate::memory::frame_allocator::GlobalFrames;
use crate::memory::{PhysFrame, VirtAddr};
use crate::sync::{Halting, IrqMutex, IrqMutexGuard};
use alloc::string::String;

/// A process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub u32);

/// A thread id (same id space as [`Pid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid(pub u32);

/// Scheduling priority; `High` always runs before `Normal` before `Low` (modulo aging).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Background work.
    Low = 0,
    /// The default.
    Normal = 1,
    /// Latency-sensitive work.
    High = 2,
}

impl Priority {
    /// The priority of queue level `level` (0 = Low).
    pub const fn from_level(level: usize) -> Option<Self> {
        match level {
            0 => Some(Priority::Low),
            1 => Some(Priority::Normal),
            2 => Some(Priority::High),
            _ => None,
        }
    }
    /// One level up, `None` for High.
    pub const fn raised(self) -> Option<Self> {
        Self::from_level(self as usize + 1)
    }
}

/// Life-cycle state of a thread (see the diagram in the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadState {
    /// Runnable, waiting in a run queue.
    Ready,
    /// On a CPU.
    Running,
    /// Waiting for an event (I/O, a lock, a child).
    Blocked,
    /// Waiting for a timer tick.
    Sleeping,
    /// Finished; its resources go back when it is reaped.
    Exited,
}

/// Why a process-table operation was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessError {
    /// No process with this pid.
    NoSuchProcess(Pid),
    /// No thread with this tid.
    NoSuchThread(Tid),
    /// The process has exited (a zombie): it takes no new threads.
    ProcessExited(Pid),
    /// No frame (or heap) for the new object.
    OutOfMemory,
    /// The process or id limit is reached (EAGAIN).
    TooManyProcesses,
    /// The caller has no child matching the request (ECHILD).
    NoChildren,
    /// The thread has not exited, so it cannot be reaped.
    ThreadAlive(Tid),
    /// The process has not exited, so it cannot be reaped.
    ProcessAlive(Pid),
    /// The root frame given for the page table cannot be used.
    BadPageTable(PhysFrame),
}

/// The kernel's process table. Its waiters may halt
/// ([`IrqMutex::lock_preemptible`]): system calls wait for it at their top level.
pub static PROCESS_TABLE: IrqMutex<ProcessTable<GlobalFrames>, Halting> =
    IrqMutex::halting(ProcessTable::new(GlobalFrames));

/// [`PROCESS_TABLE`], locked.
pub type TableGuard = IrqMutexGuard<'static, ProcessTable<GlobalFrames>, Halting>;

/// Creates a process named `name` with an empty address space whose page-table root
/// is `page_table_frame` (the process owns it from now on and frees it when it dies).
pub fn create_process(name: String, page_table_frame: PhysFrame) -> Result<Pid, ProcessError> {
    PROCESS_TABLE.lock().create_process(name, page_table_frame)
}

/// Creates a thread of `pid` that starts at `entry` on `kernel_stack` (its top), with
/// `user_stack` for user threads (`None` for kernel threads). The caller keeps owning
/// both stacks. The thread runs once it is given to [`scheduler::add_thread`].
pub fn create_thread(
    pid: Pid,
    priority: Priority,
    entry: VirtAddr,
    kernel_stack: VirtAddr,
    user_stack: Option<VirtAddr>,
) -> Result<Tid, ProcessError> {
    let task = NewTask::new(entry, kernel_stack)
        .priority(priority)
        .user_stack(user_stack);
    PROCESS_TABLE.lock().create_thread(pid, task)
}

/// The priority `tid` was created with.
pub fn thread_priority(tid: Tid) -> Option<Priority> {
    PROCESS_TABLE.lock().thread(tid).map(|t| t.priority)
}

/// The process `tid` belongs to.
pub fn process_of(tid: Tid) -> Option<Pid> {
    PROCESS_TABLE.lock().thread(tid).map(|t| t.pid)
}

/// The state of `tid`: Exited if the table says so, else what the scheduler says
/// (Ready for a thread not yet given to the scheduler).
pub fn thread_state(tid: Tid) -> Result<ThreadState, ProcessError> {
    let exited = PROCESS_TABLE
        .lock()
        .thread(tid)
        .ok_or(ProcessError::NoSuchThread(tid))?
        .has_exited();
    if exited {
        return Ok(ThreadState::Exited);
    }
    Ok(scheduler::SCHEDULER
        .lock()
        .state(tid)
        .unwrap_or(ThreadState::Ready))
}

/// Ends process `pid` with `status` (exit_group, or killed by a fault): its threads
/// leave the scheduler, its address space is torn down, it becomes a zombie until its
/// parent waits, and the parent's threads blocked in wait4 wake up.
pub fn exit_process(pid: Pid, status: i32) -> Result<(), ProcessError> {
    let mut table = PROCESS_TABLE.lock();
    let report = table.exit_process(pid, status)?;
    apply_exit(&mut scheduler::SCHEDULER.lock(), &report);
    Ok(())
}

/// Carries an [`ExitReport`] out in `sched`: exited threads leave, waiters wake.
pub fn apply_exit(sched: &mut scheduler::Scheduler, report: &ExitReport) {
    for t in &report.gone {
        let _ = sched.remove(*t);
    }
    for t in &report.wake {
        let _ = sched.unblock(*t);
    }
}

/// What the arch needs to switch to a thread: where its saved context lives, the
/// page-table root of its process and the top of its kernel stack (for TSS.RSP0 /
/// SP_EL1 on entry from user mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchInfo {
    /// The thread's saved context (stable while the thread is in the table).
    pub context: *mut Context,
    /// Root of the address space to install (CR3 / TTBR0).
    pub root: PhysFrame,
    /// Initial kernel stack pointer of the thread.
    pub kernel_stack_top: VirtAddr,
}

/// The switch information of `tid` (see [`SwitchInfo`]); `None` for an unknown or
/// exited thread, or one whose process has no address space any more.
pub fn switch_info(tid: Tid) -> Option<SwitchInfo> {
    let mut table = PROCESS_TABLE.lock();
    let t = table.thread_mut(tid).filter(|t| !t.has_exited())?;
    let (pid, kernel_stack_top, context) = (t.pid, t.kernel_stack?, t.context_ptr());
    let root = table.space_mut(pid).ok()?.root();
    Some(SwitchInfo {
        context,
        root,
        kernel_stack_top,
    })
}

/// What the arch page-fault handler calls for a fault in user mode (or in a kernel
/// access to user memory) of the current thread. An error means the access was
/// illegal: the arch kills the process (SIGSEGV), the kernel goes on.
pub fn handle_user_fault(addr: u64, access: Access) -> Result<(), Fault> {
    // The fast way, without the table: anonymous memory of the space this CPU runs.
    // Its wait for the space's lock may halt but keeps the thread on the CPU (it
    // holds the lane; a thread switched away there and killed would never drop it).
    let fast = lane::with(|cell, _| {
        let result = cell
            .lock_live_in_place()?
            .handle_fault_outside_files(addr, access)?;
        lane::count(lane::Kind::Fault);
        Some(result)
    });
    if let Some(result) = fast {
        return result;
    }
    // Nothing is held here: the wait for the table may halt.
    let mut table = PROCESS_TABLE.lock_preemptible();
    let tid = scheduler::current().ok_or(Fault::Unmapped(addr))?;
    let pid = table
        .thread(tid)
        .map(|t| t.pid)
        .ok_or(Fault::Unmapped(addr))?;
    let mut space = table.space_mut(pid).map_err(|_| Fault::Unmapped(addr))?;
    space.handle_page_fault(addr, access)
}

/// Makes every process created from now on share the kernel half of the master page
/// table rooted at `root` (call once at boot, after `populate_upper_half`).
pub fn set_kernel_root(root: PhysFrame) {
    PROCESS_TABLE.lock().set_kernel_root(root);
}

/// Reaps the zombie `pid` (frees its threads and kernel stacks); returns its status.
pub fn reap_process(pid: Pid) -> Result<i32, ProcessError> {
    PROCESS_TABLE.lock().reap_process(pid)
}

#[cfg(test)]
pub(crate) mod tests;

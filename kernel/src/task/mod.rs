//! User tasks: threads that run a Linux program in user mode, on every architecture.
//!
//! This is the arch-neutral half of running user code. The arch (`arch::<name>::user`)
//! supplies only mechanism, under the same names on each machine:
//! * `Frame`, the user registers as its trap entry saves them at the top of the
//!   thread's kernel stack, implementing [`UserFrame`] (syscall number and arguments
//!   in the canonical x86_64 numbering, return value, ip, sp);
//! * `FpuState` (`initial`, `save`, `restore`): FP/SIMD registers that the trap entry
//!   does not save itself (x86_64's x87/SSE; empty on aarch64, whose frame holds them);
//! * `resume_context(frame_at)`: a saved kernel context that returns to user mode by
//!   popping the frame at `frame_at`;
//! * `enter(stack_top, tls)`, `save_tls(&mut tls)`, `install_root(root)`: what a
//!   switch to a user thread changes (kernel entry stack, thread pointer, TTBR0/CR3);
//! * `machine_call` (calls only one arch has, like `arch_prctl`), `uptime_ns` and
//!   `entropy` (handed to the core as [`crate::syscall::machine`] hooks), `PLATFORM`,
//!   `hwcap`, `ELF` (exec), and the trap entry itself, which decodes why user mode
//!   was left into a [`Trap`] and calls [`on_trap`] with the frame in place.
//!
//! ## The trap cycle
//! A user thread runs in user mode until it traps. The arch entry saves its
//! registers in one frame at the top of its kernel stack and calls [`on_trap`],
//! which acts on why it came back (the loop of Asterinas's `UserMode::execute`, with
//! user mode entered by returning from the trap):
//! * a **system call** ([`on_syscall`]): the core's [`crate::syscall::dispatch`],
//!   with what only this layer can do around it: fork/clone children are built here
//!   from the caller's frame, execve and the calls that end processes run on the
//!   kernel's tables (and a successful execve rewrites the frame) (SIGPIPE for a write that
//!   met EPIPE is sent from here); a call that blocked switches away and, once
//!   resumed, is re-issued if it asked to be (`ERESTARTSYS`);
//! * a **fault** ([`on_user_fault`]): a page fault goes to the address space (demand
//!   zero, copy-on-write); when it cannot be resolved, or for any other exception,
//!   the process is killed with the signal Linux would send (SIGKILL when memory is
//!   down to [`KERNEL_RESERVE_FRAMES`], as Linux's OOM killer would);
//! * an **interrupt** is the arch's own business (the timer may preempt the thread
//!   in place; its frame waits on its stack).
//!
//! Then the entry pops the (possibly rewritten) frame and the thread is back in user
//! mode. A thread that exited never returns: its stack is retired and the CPU
//! switches away for good.
//!
//! ## What it owns
//! * Each user thread's [`UserThread`] (its guarded kernel stack and FP/SIMD save
//!   area), kept in the thread itself (`Thread::arch`) and freed by [`sweep`] once
//!   the thread has exited (or the table released it), and which thread's FP/SIMD
//!   state is in the registers.
//! * The kernel's master page-table root, installed whenever no user thread runs
//!   (and before an address space is torn down under the CPU).
//! * The pid of the first process and how it ended ([`init_status`]).
//!
//! ## Locks
//! Everything per thread is under the process-table lock.

#![deny(unsafe_code)]

pub mod init;
pub mod signal;

use crate::arch::stack::{self, KernelStack};
use crate::arch::user::{self as mech, FpuState, Frame};
use crate::arch::{interrupts, thread};
use crate::memory::address_space::{Access, Fault};
use crate::memory::frame_allocator::GlobalFrames;
use crate::memory::{frame_allocator, PhysAddr, PhysFrame, VirtAddr};
use crate::process::{
    self, scheduler, ArchState, Pid, Priority, ProcessTable, Thread, Tid, PROCESS_TABLE,
};
use crate::syscall::fast::Fast;
use crate::syscall::fd::PipeFd;
use crate::syscall::{self as sys, Errno};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Bytes of kernel stack per user thread (below an unmapped guard page).
pub const USER_KERNEL_STACK: u64 = 32 * 1024;
/// Frames kept for the kernel (heap, tables, stacks): below this many free frames a
/// user page fault does not get a frame (the process is killed as by an OOM killer),
/// and below twice as many fork/clone fail with ENOMEM, so user memory can never
/// starve the kernel.
pub const KERNEL_RESERVE_FRAMES: u64 = 512;

/// The user registers as the arch trap entry saves them.
pub trait UserFrame: Copy {
    /// A frame that enters user mode at `ip` with stack `sp`, every other register 0.
    fn entry(ip: u64, sp: u64) -> Self;
    /// The system call this frame asks for, translated to the canonical (x86_64)
    /// number and argument order; `None` for a number the kernel does not know.
    fn syscall(&self) -> Option<(usize, [usize; 6])>;
    /// The canonical number of the system call alone (what [`Self::syscall`] gives
    /// first), for the calls that need no arguments.
    fn syscall_number(&self) -> Option<usize>;
    /// Sets the register the caller finds the result in.
    fn set_return(&mut self, value: u64);
    /// The user instruction pointer.
    fn ip(&self) -> u64;
    /// The user stack pointer.
    fn sp(&self) -> u64;
    /// Sets the user stack pointer.
    fn set_sp(&mut self, sp: u64);
}

/// What a user thread owns on bare metal besides its process-table entry (kept in
/// `Thread::arch`).
struct UserThread {
    stack: KernelStack,
    /// FP/SIMD registers while the thread is not on a CPU.
    fpu: FpuState,
    /// The CPU (index + 1) whose registers were last loaded from `fpu` (0: none).
    fpu_cpu: u32,
}

/// The user-thread state of `t`, if it is a user thread.
fn user_state(t: &Thread) -> Option<&UserThread> {
    t.arch.as_ref()?.0.downcast_ref()
}

/// The user-thread state in `arch` (a thread's), mutably; its other fields stay free
/// to borrow.
fn user_state_mut(arch: &mut Option<ArchState>) -> Option<&mut UserThread> {
    arch.as_mut()?.0.downcast_mut()
}

static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);
static INIT_PID: AtomicU32 = AtomicU32::new(0);
static INIT_STATUS: AtomicI32 = AtomicI32::new(-1);
/// User states taken out of the table (under its lock) and not yet retired: their
/// kernel stacks are on no list a frame balance waits for, so
/// [`user_thread_count`] counts them until [`retire`] has queued the stack.
static RETIRING: AtomicUsize = AtomicUsize::new(0);
/// The table's `departures` as of the last sweep that retired every exited thread
/// (`u64::MAX` after one that had to pass some over, still on a CPU): until it
/// changes, an idle CPU has nothing to sweep. Written under the table lock.
static SWEPT_AT: AtomicU64 = AtomicU64::new(u64::MAX);

/// Why a user process could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// No memory (frames, stack, table entries).
    OutOfMemory,
    /// The program could not be loaded (an errno: ENOEXEC, E2BIG, ENOMEM, ...).
    Exec(Errno),
}

/// Why a user thread came back to the kernel, as the arch trap entry decoded it.
/// (Interrupts are the arch's own: the timer may preempt the thread in place.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// A system call (number and arguments are in the frame).
    Syscall,
    /// An exception.
    Fault(UserFault),
}

/// The arch-neutral half of every trap from user mode: act on why the thread came
/// back; when this returns, the arch pops the (possibly rewritten) frame and the
/// thread is in user mode again. A thread that ended does not return here.
pub fn on_trap(frame: &mut Frame, trap: Trap) {
    match trap {
        Trap::Syscall => on_syscall(frame),
        Trap::Fault(fault) => on_user_fault(frame, fault),
    }
    on_return_to_user(frame);
}

/// Called on every timer tick (interrupts masked, before the scheduler's): fires the
/// real timers (alarm, setitimer) that are due.
pub fn on_tick(now: u64) {
    if !sys::time::real_timer_due(now) {
        return;
    }
    let mut table = PROCESS_TABLE.lock();
    let mut sched = scheduler::SCHEDULER.lock();
    let tid = sched.current().unwrap_or(Tid(0));
    let mut s = sys::Sys {
        table: &mut table,
        sched: (&mut *sched).into(),
        tid,
    };
    sys::time::fire_real_timers(&mut s, now);
}

/// What happens on every way back to user mode, after a trap and after an interrupt
/// taken in user mode (the arch calls this then): pending signals are delivered.
pub fn on_return_to_user(frame: &mut Frame) {
    let Some(me) = thread::running() else {
        return;
    };
    // Another CPU may have ended this thread's process while it ran here (it then
    // interrupts this CPU, which notes it): it must not go back to user mode.
    // Looked at before it is swapped: the locked swap is paid only when it is set.
    // Also set when an interrupt left a switch to this thread while it halted in a
    // lock wait that had to keep it (a page fault's, `IrqMutex::lock_in_place`).
    let recheck = &crate::smp::this().recheck;
    let told = recheck.load(Ordering::Relaxed) && recheck.swap(false, Ordering::AcqRel);
    if told {
        thread::switch_if_deferred();
        if !thread_alive(me) {
            exit_running(me);
        }
    }
    signal::deliver_pending(me, frame);
}

/// Retires the user state of exited threads no CPU is on any more (what an idle
/// CPU does now and then: a thread that was killed while it ran on another CPU
/// could not be retired by its killer).
pub fn sweep_exited() {
    sweep(None);
}

/// [`sweep_exited`] for an idle CPU between two halts: nothing if another CPU holds
/// the table (an idle vCPU spinning there takes host time from those with work) or
/// if no thread left since the last sweep that left nothing behind.
pub fn sweep_when_idle() {
    let Some(table) = PROCESS_TABLE.try_lock() else {
        return;
    };
    if SWEPT_AT.load(Ordering::Relaxed) == table.departures() {
        return;
    }
    sweep_in(table, None);
}

/// What went wrong in user mode, as the arch trap entry decoded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFault {
    /// A page fault at `addr`: maybe demand zero or copy-on-write, else SIGSEGV.
    Page {
        /// The faulting address.
        addr: u64,
        /// What the access was.
        access: Access,
    },
    /// Any other exception: the signal Linux sends for it.
    Signal(i32),
}

/// Prepares user mode: remembers the kernel root (every new address space shares its
/// upper half) and hands the core its clock and the boot initrd's files. Call once
/// after the kernel tables are live and before the arch turns its system-call entry
/// on.
pub fn init() {
    if let Some(root) = crate::arch::paging::active_root() {
        KERNEL_ROOT.store(root.start_address.0, Ordering::Relaxed);
        process::set_kernel_root(root);
    }
    sys::machine::install(sys::machine::MachineHooks {
        console: crate::arch::console::write_bytes,
        uptime_ns: mech::uptime_ns,
        entropy: mech::entropy,
        exec: sys::machine::ExecTarget {
            elf: mech::ELF,
            platform: mech::PLATFORM,
            hwcap: mech::hwcap,
            sigreturn: mech::SIGRETURN_TRAMPOLINE,
        },
    });
    sys::futex::set_clock(sys::time::clock_ns);
    build_system_tree();
    if crate::tty::init_console().is_ok() {
        crate::tty::set_signal_hook(sys::terminal::deliver_terminal_signal);
    }
}

/// Builds the system's file tree from the boot initramfs (see
/// [`crate::fs::system`]) and makes it the tree of every process the kernel starts.
/// Without memory for it, processes get the empty fallback tree and the reason is
/// printed.
fn build_system_tree() {
    let pages = frame_allocator::free_frame_count() / 2;
    let clock = || sys::time::clock_ns(true) as i64;
    let archive = crate::initrd::boot_image();
    match crate::fs::system::build(
        frame_allocator::GlobalFrames,
        pages,
        clock,
        Some(sys::random::fill),
        archive.as_ref(),
        sys::proc_view::procfs(),
    ) {
        Ok(system) => PROCESS_TABLE.lock().set_tree(system.tree),
        Err(e) => crate::println!("kernel: no file tree ({e:?}): processes see an empty root"),
    }
}

/// The kernel's master page-table root, once [`init`] learnt it (what a secondary
/// CPU installs first).
pub fn kernel_root_frame() -> Option<PhysFrame> {
    match KERNEL_ROOT.load(Ordering::Relaxed) {
        0 => None,
        _ => Some(kernel_root()),
    }
}

fn kernel_root() -> PhysFrame {
    PhysFrame::containing_address(PhysAddr(KERNEL_ROOT.load(Ordering::Relaxed)))
}

/// Installs the kernel's own tables (before the running process's may be freed).
pub fn leave_user_tables() {
    mech::install_root(kernel_root());
}

/// Whether `tid` is a user thread.
pub fn is_user_thread(tid: Tid) -> bool {
    PROCESS_TABLE
        .lock()
        .thread(tid)
        .is_some_and(|t| user_state(t).is_some())
}

/// Number of user threads whose kernel stack is not yet retired (for tests and the
/// end of init runs): live and exited threads, and the user state of threads the
/// table freed before the task layer swept it.
pub fn user_thread_count() -> usize {
    let table = PROCESS_TABLE.lock();
    let in_table = table.threads().filter(|t| user_state(t).is_some()).count();
    let released = table
        .released()
        .filter(|s| s.0.downcast_ref::<UserThread>().is_some())
        .count();
    in_table + released + RETIRING.load(Ordering::Acquire)
}

/// What `prev`, a user thread leaving this CPU (or staying on it, when it is also
/// `next`), leaves behind: its thread pointer where user code can change it without
/// a system call (aarch64's TPIDR_EL0) and, when another thread follows, its FP/SIMD
/// registers if they are this CPU's (eagerly: it may run on another CPU next).
/// Interrupts are masked.
fn leave_thread(table: &mut ProcessTable<GlobalFrames>, prev: Tid, next: Option<Tid>) {
    if let Some(t) = table.thread_mut(prev) {
        leave(t, next);
    }
}

/// [`leave_thread`] for `t`, already looked up (the switch, which looks it up for
/// its context: one look-up, not two).
pub fn leave(t: &mut Thread, next: Option<Tid>) {
    let prev = t.tid;
    let Some(u) = user_state_mut(&mut t.arch) else {
        return;
    };
    mech::save_tls(&mut t.user.tls);
    if Some(prev) != next && crate::smp::this().fpu_owner.load(Ordering::Relaxed) == prev.0 {
        u.fpu.save();
    }
}

/// Loads `next`'s FP/SIMD registers from `u`, its user state, unless this CPU's
/// registers hold them already (it was the last user thread here and ran nowhere
/// else since: it saved them when it left, so its save area and the registers
/// agree). Interrupts are masked.
fn load_fpu(next: Tid, u: &mut UserThread) {
    let me = crate::smp::this();
    let here = me.id() as u32 + 1;
    if me.fpu_owner.load(Ordering::Relaxed) == next.0 && u.fpu_cpu == here {
        return;
    }
    u.fpu.restore();
    u.fpu_cpu = here;
    me.fpu_owner.store(next.0, Ordering::Relaxed);
}

/// Makes the CPU ready to run `next`, taking over from `prev`: its kernel entry
/// stack, address space, thread pointer and FP/SIMD state for a user thread, the
/// kernel's tables for anything else. Called by the switch with interrupts masked.
/// Each thread and the process are looked up once (a switch is on the path of every
/// call that blocks).
pub fn activate(prev: Option<Tid>, next: Option<Tid>) {
    let mut table = PROCESS_TABLE.lock();
    if let Some(p) = prev {
        leave_thread(&mut table, p, next);
    }
    activate_in(table, next);
}

/// The second half of [`activate`], taking over for `next` once the thread that
/// leaves has been [`leave`]n, under the table lock the caller already holds (the
/// switch, which looked up both contexts under it: one lock per switch, not
/// three); the lock is given up before the CPU takes the new thread's entry stack.
pub fn activate_in(mut table: process::TableGuard, next: Option<Tid>) {
    let me = crate::smp::this();
    let next = next.and_then(|tid| table.thread_mut(tid).map(|t| (tid, t)));
    note_alive(me, next.as_ref().is_some_and(|(_, t)| !t.has_exited()));
    let next = next.and_then(|(tid, t)| {
        let u = user_state_mut(&mut t.arch)?;
        load_fpu(tid, u);
        Some((t.pid, t.user.tls, u.stack))
    });
    let Some((pid, tls, stack)) = next else {
        drop(table);
        me.running_pid.store(0, Ordering::Relaxed);
        process::lane::enter(None, None);
        return mech::install_root(kernel_root());
    };
    me.running_pid.store(pid.0, Ordering::Relaxed);
    // Installed under the table lock: a space is torn down only under it, after
    // every CPU that installed it left it (`smp::retire_root`). The lane gets the
    // same space, so the fast paths always act on the installed tables.
    let (space, files) = table.running_view(pid);
    let root = space.and_then(|c| c.root());
    mech::install_root(root.unwrap_or_else(kernel_root));
    process::lane::enter(space, files);
    drop(table);
    mech::enter(stack.top.as_u64(), tls);
}

// ---- starting programs ----

/// What the first process's fds 0, 1 and 2 are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitFds {
    /// The test console: stdin reads as `/dev/null`, stdout and stderr are a plain
    /// byte stream (as a program under the test driver sees them natively).
    TestConsole,
    /// The console terminal (line discipline, echo, job-control signals), which
    /// becomes the controlling terminal of init's session.
    Terminal,
}

/// Starts the program at `argv[0]` (a path in the system tree, relative to `/`;
/// a `#!` script runs its interpreter) as the first user process, with `argv` and
/// `envp`. Its pid is remembered: [`init_status`] reports how it ended.
pub fn spawn_init(argv: &[&[u8]], envp: &[&[u8]], fds: InitFds) -> Result<Pid, SpawnError> {
    let path = argv.first().copied().ok_or(SpawnError::Exec(sys::ENOENT))?;
    let tree = PROCESS_TABLE.lock().tree();
    let program =
        sys::execve::find_program(&tree, tree.root(), path, argv).map_err(SpawnError::Exec)?;
    let image = sys::execve::exec_image(&tree, tree.root(), &program.path, &program.argv)
        .map_err(SpawnError::Exec)?;
    let argv: alloc::vec::Vec<&[u8]> = program.argv.iter().map(|a| a.as_slice()).collect();
    let argv = argv.as_slice();
    let file = program.image.as_slice();
    let root = frame_allocator::allocate_frame().map_err(|_| SpawnError::OutOfMemory)?;
    let name = sys::execve::comm_of(path);
    let pid = process::create_process(name, root).map_err(|_| SpawnError::OutOfMemory)?;
    INIT_PID.store(pid.0, Ordering::Relaxed);
    INIT_STATUS.store(-1, Ordering::Relaxed);
    // Linux's init: signals with the default action do not reach it.
    if let Some(p) = PROCESS_TABLE.lock().process_mut(pid) {
        p.unkillable = true;
        p.image = image;
        if fds == InitFds::Terminal && crate::tty::console().is_some() {
            p.files = sys::fd::terminal_files();
            let _ = sys::fd::charge_files(&p.files, &p.kmem);
            sys::terminal::give_console_to(p.job.sid);
        }
    }
    let execfn = argv.first().copied().unwrap_or(b"");
    let loaded = sys::execve::load_into(&mut PROCESS_TABLE.lock(), pid, file, argv, envp, execfn);
    let started = loaded
        .map_err(SpawnError::Exec)
        .and_then(|(entry, sp)| start_thread(pid, entry, sp));
    if let Err(e) = started {
        let _ = process::exit_process(pid, 127);
        return Err(e);
    }
    Ok(pid)
}

/// How the first process ended: its exit status, or 128 + signal; `None` while it runs.
pub fn init_status() -> Option<i32> {
    match INIT_STATUS.load(Ordering::Relaxed) {
        s if s >= 0 => Some(s),
        _ => None,
    }
}

/// Records `status` as the first process's if it has just ended.
fn note_exit_of(pid: Pid, status: i32) {
    let init = Pid(INIT_PID.load(Ordering::Relaxed));
    if pid == init && init_status().is_none() && !process_alive(init) {
        INIT_STATUS.store(status, Ordering::Relaxed);
    }
}

fn process_alive(pid: Pid) -> bool {
    PROCESS_TABLE
        .lock()
        .process(pid)
        .is_some_and(|p| p.state == process::ProcessState::Alive)
}

/// execve: the core's call, on the kernel's tables (it may destroy the caller's old
/// address space). On success the caller returns into the new program where its
/// `UserRegs` say, with zero registers, thread pointer 0 and a clean FP/SIMD state;
/// threads the exec ended lose their stacks. Either way the caller's (new or old)
/// address space is installed again.
fn execve(me: Tid, a: [usize; 6], frame: &mut Frame) -> Result<usize, Errno> {
    leave_user_tables();
    let r = sys::handle_syscall_as(me, sys::SYS_EXECVE, [a[0], a[1], a[2], 0, 0, 0]);
    let start = PROCESS_TABLE.lock().thread(me).map(|t| t.user);
    match (r, start) {
        (Ok(_), Some(user)) => {
            *frame = Frame::entry(user.ip, user.sp);
            FpuState::initial().restore();
            sweep(Some(me));
            // The new program's thread pointer (0), not the old one's.
            activate(None, Some(me));
        }
        _ => reinstall(me),
    }
    r
}

/// The running thread `me` goes on after a call that ran on the kernel's tables: its
/// address space is installed again and its thread pointer kept (user code may have
/// changed it without the kernel knowing: aarch64's TPIDR_EL0).
fn reinstall(me: Tid) {
    if thread_alive(me) {
        activate(Some(me), Some(me));
    }
}

/// A fresh kernel stack holding `frame` at its top; returns it and the frame's address.
fn stack_with_frame(frame: &Frame) -> Result<(KernelStack, u64), SpawnError> {
    let stack = stack::allocate(USER_KERNEL_STACK).map_err(|_| SpawnError::OutOfMemory)?;
    let at = stack::place_at_top(&stack, *frame);
    Ok((stack, at))
}

/// Makes `tid` resume by popping the frame at `frame_at` into user mode, on `stack`,
/// with FP/SIMD state `fpu`.
fn install(tid: Tid, stack: KernelStack, frame_at: u64, fpu: FpuState) -> Result<(), SpawnError> {
    let mut table = PROCESS_TABLE.lock();
    let Some(t) = table.thread_mut(tid) else {
        stack::free(stack);
        return Err(SpawnError::OutOfMemory);
    };
    thread::install_context(&mut t.context, mech::resume_context(frame_at));
    t.kernel_stack = Some(stack.top);
    t.arch = Some(ArchState(Box::new(UserThread {
        stack,
        fpu,
        fpu_cpu: 0,
    })));
    Ok(())
}

/// Creates the main thread of `pid`, entering user mode at `entry` with `sp`, and
/// hands it to the scheduler.
fn start_thread(pid: Pid, entry: u64, sp: u64) -> Result<Tid, SpawnError> {
    let (stack, at) = stack_with_frame(&Frame::entry(entry, sp))?;
    let created = process::create_thread(
        pid,
        Priority::Normal,
        VirtAddr::new(entry),
        stack.top,
        Some(VirtAddr::new(sp)),
    );
    let tid = match created {
        Ok(tid) => tid,
        Err(_) => {
            stack::free(stack);
            return Err(SpawnError::OutOfMemory);
        }
    };
    install(tid, stack, at, FpuState::initial())?;
    scheduler::add_thread(tid).map_err(|_| SpawnError::OutOfMemory)?;
    Ok(tid)
}

/// Gives the fork/clone child `child` its kernel stack and a copy of the caller's
/// frame with result 0 and the child's stack pointer. Kills the child on failure.
fn setup_child(parent: &Frame, child: Tid) -> Result<(), Errno> {
    let sp = PROCESS_TABLE.lock().thread(child).map(|t| t.user.sp);
    let mut frame = *parent;
    frame.set_return(0);
    frame.set_sp(sp.unwrap_or(parent.sp()));
    let mut fpu = FpuState::initial();
    fpu.save(); // the caller's registers: it is the running thread
    let ready = stack_with_frame(&frame).and_then(|(stack, at)| install(child, stack, at, fpu));
    if ready.is_err() {
        abandon_child(child);
        return Err(sys::ENOMEM);
    }
    Ok(())
}

/// Ends a child that could not be given a stack (it never ran). A process child is
/// reaped at once: the failed fork must leave no zombie for the caller's wait4.
fn abandon_child(child: Tid) {
    match process::process_of(child) {
        Some(p) if p.0 == child.0 => {
            let _ = process::exit_process(p, 0);
            let _ = process::reap_process(p);
        }
        _ => {
            let _ = PROCESS_TABLE.lock().exit_thread(child, 0);
            let _ = scheduler::remove_thread(child);
        }
    }
}

// ---- system calls ----

/// The system-call handler proper (see the module docs): answers the call in
/// `frame` and leaves the result in it.
fn on_syscall(frame: &mut Frame) {
    let Some(me) = thread::running() else {
        frame.set_return(encode(Err(sys::ESRCH)));
        return;
    };
    // The fast path: calls answered from what the CPU knows of its running thread,
    // without the process table's and the scheduler's locks (before the arguments
    // are gathered: they need none).
    match frame.syscall_number() {
        Some(sys::SYS_GETPID) => {
            let pid = crate::smp::this().running_pid.load(Ordering::Relaxed);
            return frame.set_return(encode(Ok(pid as usize)));
        }
        Some(sys::SYS_GETTID) => return frame.set_return(encode(Ok(me.0 as usize))),
        // Restores every register, the result register included (and is no call
        // the fast path could answer: not asked).
        Some(sys::SYS_RT_SIGRETURN) => return signal::sigreturn(me, frame),
        _ => {}
    }
    let Some((num, args)) = frame.syscall() else {
        frame.set_return(encode(Err(sys::ENOSYS)));
        return;
    };
    match sys::fast::try_call(num, args) {
        Fast::Done(answer) => frame.set_return(encode(answer)),
        Fast::Slow => slow_syscall(me, num, args, frame, None),
        Fast::WaitOnPipe(p) => slow_syscall(me, num, args, frame, Some(p)),
    }
}

/// A call the fast path did not answer: on the kernel's tables, blocking and
/// restarting as it must (see [`on_syscall`]). `found`: the pipe a read must wait
/// on, as the fast path found it (every issue of the call reads that pipe).
// Not inlined: its locals and saved registers would otherwise be paid by every
// call, the fast ones too (getpid cost 16 more instructions with it inlined).
#[inline(never)]
fn slow_syscall(me: Tid, num: usize, args: [usize; 6], frame: &mut Frame, found: Option<PipeFd>) {
    let mut found = found;
    let mut waited = false;
    let result = loop {
        let kills = sys::oom::kills();
        let changes = scheduler::current_changes();
        let pieces = sys::blocking::pieces_yielded();
        let result = match &found {
            Some(p) => sys::read_pipe_as(me, p, args),
            None => run_call(me, num, args, frame),
        };
        if sys::oom::kills() != kills {
            // The OOM killer ended a process during the call: retire its threads.
            sweep(Some(me));
        }
        if !thread_alive(me) {
            exit_running(me);
        }
        // The call blocked or yielded (wait4, a pipe, sched_yield, a vfork parent):
        // others run until this thread is picked again. (If the scheduler did not
        // change this CPU's thread meanwhile, it is still `me`: no lock to ask.)
        if scheduler::current_changes() != changes && scheduler::current() != Some(me) {
            thread::switch_to_scheduled();
        }
        if result != Err(sys::ERESTARTSYS) {
            break result;
        }
        // A long call ended a piece (see `syscall::blocking`): the timer ticks (and
        // may run others in place) before it goes on. (No piece ended anywhere
        // during the call: it waited, no lock to ask.)
        if sys::blocking::pieces_yielded() != pieces && sys::with_thread(me, |s| s.take_yielded()) {
            interrupts::take_pending();
            if !thread_alive(me) {
                exit_running(me);
            }
        }
        // The call waited and was woken: a signal ends it, or it is issued again.
        waited = true;
        match signal::interrupted(me, num, args) {
            signal::Interrupted::No => {
                // Issued again: what woke it (bytes in a pipe, room in one) usually
                // lets the fast path answer now, as it would a new call, without
                // the table's look-ups; otherwise the call goes the slow way again.
                // (A thread killed while it waited must not take the bytes.)
                if !thread_alive(me) {
                    exit_running(me);
                }
                let again = match &found {
                    Some(p) => sys::fast::read_found(p, args),
                    None => sys::fast::try_call(num, args),
                };
                match again {
                    Fast::Done(answer) => break answer,
                    Fast::Slow => continue,
                    Fast::WaitOnPipe(p) => {
                        found = Some(p);
                        continue;
                    }
                }
            }
            signal::Interrupted::Resume => {
                let done = sys::with_thread(me, |s| s.progress());
                if done > 0 {
                    break Ok(done);
                }
                // A sleep goes on to the same deadline when it is made again (after
                // a stop: Linux's restart_block), unless a handler runs first.
                let keep = sys::with_thread(me, |s| s.kept_deadline(num, args));
                sys::with_thread(me, sys::blocking::end_call);
                sys::with_thread(me, |s| s.restore_deadline(keep));
                mech::rewind_syscall(frame);
                return;
            }
            how => {
                match sys::with_thread(me, |s| sys::blocking::interrupted_answer(s, num, args)) {
                    Some(answer) => break answer,
                    None if how == signal::Interrupted::Restart => {
                        // Made again after the handler returns (SA_RESTART).
                        sys::with_thread(me, sys::blocking::end_call);
                        mech::rewind_syscall(frame);
                        return;
                    }
                    None => break Err(sys::EINTR),
                }
            }
        }
    };
    if waited {
        sys::with_thread(me, sys::blocking::end_call);
    }
    frame.set_return(encode(result));
}

fn encode(r: Result<usize, Errno>) -> u64 {
    match r {
        Ok(v) => v as u64,
        Err(e) => (-(e.0 as i64)) as u64,
    }
}

/// Whether the running thread `tid` has not exited. Without the table's lock
/// while no thread was marked exited since this CPU last saw it alive (every
/// system call asks, and 4 CPUs queued on the table's lock for it).
fn thread_alive(tid: Tid) -> bool {
    let me = crate::smp::this();
    if me.alive_at.load(Ordering::Relaxed) == process::exits_marked() {
        return true;
    }
    let table = PROCESS_TABLE.lock();
    let alive = table.thread(tid).is_some_and(|t| !t.has_exited());
    note_alive(me, alive);
    alive
}

/// Records on `me` whether its running thread is alive, as seen under the table
/// lock (where the count of exits cannot change).
fn note_alive(me: &crate::smp::PerCpu, alive: bool) {
    let at = match alive {
        true => process::exits_marked(),
        false => u64::MAX,
    };
    me.alive_at.store(at, Ordering::Relaxed);
}

/// One call: the machine's own, fork/clone with child set-up, calls that may end
/// processes (run on the kernel's tables), or the core's.
fn run_call(me: Tid, num: usize, a: [usize; 6], frame: &mut Frame) -> Result<usize, Errno> {
    if let Some(r) = mech::machine_call(me, num, a) {
        return r;
    }
    match num {
        sys::SYS_EXECVE => execve(me, a, frame),
        sys::SYS_FORK | sys::SYS_VFORK | sys::SYS_CLONE => fork_like(me, num, a, frame),
        sys::SYS_EXIT | sys::SYS_EXIT_GROUP | sys::SYS_KILL => ending_call(me, num, a),
        sys::SYS_SIGALTSTACK => {
            // sigaltstack answers from where the caller's stack pointer is.
            if let Some(t) = PROCESS_TABLE.lock().thread_mut(me) {
                t.user.sp = frame.sp();
            }
            sys::handle_syscall_as(me, num, a)
        }
        sys::SYS_WRITE | sys::SYS_WRITEV => {
            let r = sys::handle_syscall_preemptible(me, num, a);
            if r == Err(sys::EPIPE) {
                broken_pipe(me);
            }
            r
        }
        _ => sys::handle_syscall_preemptible(me, num, a),
    }
}

/// A write met a pipe without readers: SIGPIPE ends the process unless it ignores (or
/// handles) SIGPIPE; the write fails with EPIPE either way.
fn broken_pipe(me: Tid) {
    let action = {
        let table = PROCESS_TABLE.lock();
        let pid = table.thread(me).map(|t| t.pid);
        pid.and_then(|p| table.process(p))
            .map(|p| p.signals.lock().get(sys::signal::SIGPIPE))
    };
    if action == Some(sys::signal::SIG_DFL) {
        signal_own_process(me, sys::signal::SIGPIPE);
    }
}

/// Runs `f` on the address space of `me`'s process.
pub fn with_space<T>(
    me: Tid,
    f: impl FnOnce(
        &mut process::UserSpace<crate::memory::frame_allocator::GlobalFrames>,
    ) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut table = PROCESS_TABLE.lock();
    let pid = table.thread(me).ok_or(sys::ESRCH)?.pid;
    let mut space = table.space_mut(pid)?;
    f(&mut space)
}

/// [`with_space`] for the thread running on this CPU, `me`, under the table lock
/// the caller holds (`table`): the lock is needed (a copy to or from user memory may
/// fault on a file's pages), but the space is the one this CPU's lane holds (set at
/// the switch under that lock, the same cell the table would find), without the
/// table's look-ups of the thread, the process and the space. Signal delivery and
/// rt_sigreturn do this under the lock they take the thread's signal state with.
pub fn with_own_space_in<T>(
    table: &mut ProcessTable<GlobalFrames>,
    me: Tid,
    f: impl FnOnce(&mut process::UserSpace<GlobalFrames>) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let mut f = Some(f);
    if thread::running() == Some(me) {
        let r = process::lane::with(|cell, _| {
            let mut space = cell.lock_live()?;
            f.take().map(|f| f(&mut space))
        });
        if let Some(r) = r {
            return r;
        }
    }
    let f = f.ok_or(sys::ESRCH)?;
    let pid = table.thread(me).ok_or(sys::ESRCH)?.pid;
    let mut space = table.space_mut(pid)?;
    f(&mut space)
}

/// fork, vfork, clone: the core's call, and the child's kernel stack and first
/// frame built from the caller's. A vfork's first issue makes the child and waits
/// (`ERESTARTSYS`); its re-issues only wait (see `syscall::fork`), so the child is
/// set up once.
fn fork_like(me: Tid, num: usize, a: [usize; 6], frame: &Frame) -> Result<usize, Errno> {
    let vfork_child = |me| {
        PROCESS_TABLE
            .lock()
            .thread(me)
            .and_then(|t: &Thread| t.call.vfork_child)
    };
    if vfork_child(me).is_some() {
        return sys::handle_syscall_as(me, num, a);
    }
    thread::reap_dead_unless_busy();
    // Refused well before the fault reserve, so the caller can still run and learn it.
    if !frame_allocator::has_free_frames(2 * KERNEL_RESERVE_FRAMES) {
        return Err(sys::ENOMEM);
    }
    let copies =
        num == sys::SYS_FORK || (num == sys::SYS_CLONE && a[0] & sys::clone::CLONE_VM == 0);
    let source = {
        let mut table = PROCESS_TABLE.lock_preemptible();
        let t = table.thread_mut(me).ok_or(sys::ESRCH)?;
        t.user.sp = frame.sp();
        t.user.ip = frame.ip();
        mech::save_tls(&mut t.user.tls);
        match copies {
            true => table.fork_source(me).ok(),
            false => None,
        }
    };
    if let Some((cell, frames)) = source {
        stage_fork_copy(me, &cell, frames);
    }
    let r = sys::handle_syscall_preemptible(me, num, a);
    let child = match r {
        Ok(child) => Tid(child as u32),
        Err(sys::ERESTARTSYS) => vfork_child(me).ok_or(sys::ESRCH)?,
        Err(e) => {
            if copies {
                PROCESS_TABLE.lock().discard_fork_copy(me);
            }
            return Err(e);
        }
    };
    if let Err(e) = setup_child(frame, child) {
        // The child is gone (and let the vfork parent go): the call is over.
        sys::with_thread(me, sys::blocking::end_call);
        let _ = scheduler::unblock_thread(me);
        return Err(e);
    }
    r
}

/// The copy of `me`'s address space (in `cell`) for its fork, made holding only that
/// space's lock and staged for the call ([`process::ProcessTable::stage_fork_copy`]):
/// other CPUs' calls need not wait for the table while it copies (the copy
/// write-protects every private page and shoots the parent's TLBs down). Nothing is
/// staged if it fails: the call then copies under the table lock, so its errors and
/// their order stay the call's.
fn stage_fork_copy(
    me: Tid,
    cell: &process::lane::SpaceCell<GlobalFrames>,
    mut frames: GlobalFrames,
) {
    use crate::memory::frame_allocator::FrameSource;
    let Ok(root) = frames.alloc_frame() else {
        return;
    };
    let copy = match cell.lock_live_in_place() {
        Some(mut space) => space.fork(root),
        None => {
            let _ = frames.free_frame(root);
            return;
        }
    };
    // On failure `fork` destroyed the half-built copy, root included. (A plain
    // lock for the table: a thread preempted while it holds the copy and killed
    // meanwhile would never give it back.)
    if let Ok(copy) = copy {
        let _ = PROCESS_TABLE.lock().stage_fork_copy(me, copy);
    }
}

/// exit, exit_group, kill: may tear down address spaces, so exit and exit_group run
/// on the kernel's tables; afterwards the threads that ended lose their stacks. A
/// kill stays on the caller's tables (most kills end nothing: a space it tears down
/// is left by the teardown itself, `paging::retire_root`, on this CPU too) and
/// sweeps only if a thread left meanwhile.
fn ending_call(me: Tid, num: usize, a: [usize; 6]) -> Result<usize, Errno> {
    if num == sys::SYS_KILL {
        return kill(me, a);
    }
    let my_pid = process::process_of(me);
    leave_user_tables();
    let r = sys::handle_syscall_as(me, num, a);
    if let (Ok(_), Some(pid)) = (r, my_pid) {
        note_exit_of(pid, (a[0] & 0xff) as i32);
    }
    sweep(Some(me));
    reinstall(me);
    r
}

/// kill(pid, sig) of `me`, see [`ending_call`]: under one lock of the table, which
/// also tells whether a thread left meanwhile; if none did, the kill ended no
/// process (most kills end nothing) and there is nothing to note or sweep.
fn kill(me: Tid, a: [usize; 6]) -> Result<usize, Errno> {
    // Only kill(0, ...) needs the caller's process, as it was before the call.
    let my_pid = match a[0] as i32 {
        0 => process::process_of(me),
        _ => None,
    };
    let (r, departed) = sys::with_thread(me, |s| {
        let before = s.table.departures();
        let r = sys::dispatch(s, sys::SYS_KILL, a);
        (r, s.table.departures() != before)
    });
    if !departed {
        return r;
    }
    if let (Ok(_), Some(pid)) = (r, kill_target(a[0], my_pid)) {
        note_exit_of(pid, 128 + (a[1] as i32 & 0x7f));
    }
    sweep(Some(me));
    r
}

/// The process kill(pid, ...) aims at (as `syscall::signal::sys_kill` reads it).
fn kill_target(pid: usize, mine: Option<Pid>) -> Option<Pid> {
    match pid as i32 {
        0 => mine,
        -1 => None,
        p => Some(Pid(p.unsigned_abs())),
    }
}

/// Retires the user state of threads that have exited (all but `running`, which is
/// still on its stack) and of threads the table released when it freed them.
fn sweep(running: Option<Tid>) {
    sweep_in(PROCESS_TABLE.lock(), running);
}

fn sweep_in(mut table: process::TableGuard, running: Option<Tid>) {
    let dead: Vec<(Tid, ArchState)> = {
        // Whether some exited thread had to be passed over (a CPU is on it).
        let mut left = false;
        let exited: Vec<Tid> = table
            .threads()
            .filter(|t| t.has_exited() && user_state(t).is_some())
            .filter(|t| {
                let busy = Some(t.tid) == running || thread::thread_in_use(t);
                left |= busy;
                !busy
            })
            .map(|t| t.tid)
            .collect();
        // Freed threads are dropped once no CPU is on them any more.
        for t in table.take_freed() {
            if thread::thread_in_use(&t) {
                left = true;
                table.keep_freed(t);
            }
        }
        let swept = if left { u64::MAX } else { table.departures() };
        SWEPT_AT.store(swept, Ordering::Relaxed);
        let mut dead = table.take_released();
        for tid in exited {
            if let Some(state) = table.thread_mut(tid).and_then(|t| t.arch.take()) {
                dead.push((tid, state));
            }
        }
        RETIRING.fetch_add(dead.len(), Ordering::AcqRel);
        dead
    };
    drop(table);
    for (tid, state) in dead {
        retire(tid, state);
    }
}

/// Gives up what an exited user thread owned: its futex waits, its FP/SIMD
/// ownership, its kernel stack (freed once the CPU is off it, by `thread::reap_dead`).
/// `state` was counted in [`RETIRING`] when it left the table.
fn retire(tid: Tid, state: ArchState) {
    if let Ok(user) = state.0.downcast::<UserThread>() {
        PROCESS_TABLE.lock().futexes.forget(tid);
        thread::retire_stack(tid, user.stack);
        for cpu in crate::smp::CPUS.iter() {
            let _ = cpu
                .fpu_owner
                .compare_exchange(tid.0, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
    RETIRING.fetch_sub(1, Ordering::AcqRel);
}

/// The running user thread `me` has exited: give up its stack and never come back.
fn exit_running(me: Tid) -> ! {
    interrupts::disable();
    leave_user_tables();
    let mine = {
        let mut table = PROCESS_TABLE.lock();
        let state = table.thread_mut(me).and_then(|t| t.arch.take());
        if state.is_some() {
            RETIRING.fetch_add(1, Ordering::AcqRel);
        }
        state
    };
    if let Some(state) = mine {
        retire(me, state);
    }
    sweep(None);
    thread::leave_for_good()
}

// ---- faults ----

/// An exception in user mode (see [`UserFault`]): resolve a page fault, or kill the
/// process with the signal for it.
fn on_user_fault(frame: &mut Frame, fault: UserFault) {
    // (signal, si_code, si_addr)
    let (sig, code, addr) = match fault {
        UserFault::Page { addr, access } => match process::handle_user_fault(addr, access) {
            Ok(()) => return,
            // No memory for the page: the OOM killer frees some elsewhere (the
            // access is then made again), or this process is its victim.
            Err(Fault::OutOfMemory) if oom_kill_other() => return,
            Err(Fault::OutOfMemory) => (sys::signal::SIGKILL, 0, 0),
            Err(Fault::AccessDenied(_)) => (SIGSEGV, SEGV_ACCERR, addr),
            // A file mapping's page beyond the end of the file.
            Err(Fault::Bus(_)) => (SIGBUS, BUS_ADRERR, addr),
            Err(_) => (SIGSEGV, SEGV_MAPERR, addr),
        },
        UserFault::Signal(sig) => (sig, fault_code(sig), frame.ip()),
    };
    let Some(me) = thread::running() else {
        return;
    };
    // A thread another CPU ended while it faulted (an exec of its process, which
    // marks the other threads exited before it replaces the space, so the fault
    // may have been looked up in the new image's space) goes without a signal:
    // its SIGSEGV would kill the process that now runs the new image.
    if !thread_alive(me) {
        exit_running(me);
    }
    if sig != sys::signal::SIGKILL && signal::deliver_fault(me, frame, sig, code, addr) {
        return;
    }
    report_kill(me, frame, fault, sig);
    kill_running_process(me, sig);
}

/// Runs the OOM killer for the running thread's fault (see `syscall::oom`): whether
/// it killed another process, whose threads are then retired.
fn oom_kill_other() -> bool {
    let Some(me) = thread::running() else {
        return false;
    };
    leave_user_tables();
    let outcome = sys::with_thread(me, |s| {
        let _ = s.space().map(|mut space| space.take_out_of_memory());
        s.out_of_memory()
    });
    sweep(Some(me));
    reinstall(me);
    matches!(outcome, sys::oom::OomOutcome::Freed(_))
}

/// The `si_code` of an exception's signal: ILL_ILLOPN for an undefined instruction
/// (as x86_64 Linux reports `ud2`), TRAP_BRKPT, BUS_ADRALN, FPE_INTDIV.
fn fault_code(sig: i32) -> i32 {
    match sig {
        4 => 2,
        5 | 7 | 8 => 1,
        _ => 0,
    }
}

/// si_code of a SIGSEGV at an address nothing maps.
const SEGV_MAPERR: i32 = 1;
/// si_code of a SIGSEGV the protection refused.
const SEGV_ACCERR: i32 = 2;

const SIGSEGV: i32 = 11;
/// si_code of a SIGBUS for an address with no backing (beyond a mapped file's end).
const BUS_ADRERR: i32 = 2;
const SIGBUS: i32 = 7;

/// One kernel line saying why a process dies, as Linux's `show_signal` does. It is
/// printed quiet or not, after the marker byte xtask knows (`\u{1}kernel: `), so a
/// run can tell it from the program's own output.
fn report_kill(me: Tid, frame: &Frame, fault: UserFault, sig: i32) {
    let detail = match fault {
        UserFault::Page { addr, access } => alloc::format!(" address {addr:#x} ({access:?})"),
        UserFault::Signal(_) => alloc::string::String::new(),
    };
    report_death(me, frame, sig, &detail);
}

/// The kernel line of [`report_kill`] for a death that is no fault of an
/// instruction: `detail` says why (a signal frame that cannot be built or read).
pub(crate) fn report_death(me: Tid, frame: &Frame, sig: i32, detail: &str) {
    let (pid, name) = {
        let table = PROCESS_TABLE.lock();
        let pid = table.thread(me).map_or(Pid(0), |t| t.pid);
        let name = table
            .process(pid)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        (pid, name)
    };
    let line = alloc::format!(
        "\u{1}kernel: pid {} ({name}): {} at ip {:#x} sp {:#x}{detail}\n",
        pid.0,
        sys::signal::name(sig),
        frame.ip(),
        frame.sp()
    );
    crate::arch::console::write_bytes(line.as_bytes());
}

/// A system call of `me` raised `sig` against its own process (SIGPIPE): the
/// process ends as killed by it; the call's caller then finds `me` exited.
fn signal_own_process(me: Tid, sig: i32) {
    leave_user_tables();
    if let Some(pid) = process::process_of(me) {
        sys::signal::kill_process_now(pid, sig);
        note_exit_of(pid, 128 + sig);
    }
    sweep(Some(me));
}

fn kill_running_process(me: Tid, sig: i32) -> ! {
    interrupts::disable();
    leave_user_tables();
    if let Some(pid) = process::process_of(me) {
        sys::signal::kill_process_now(pid, sig);
        note_exit_of(pid, 128 + sig);
    }
    exit_running(me)
}

//! User processes on x86_64: threads that run in ring 3 in their own address space.
//!
//! ## What it owns
//! * The kernel stacks of user threads ([`USER_STACKS`], tid -> 32 KiB guarded stack
//!   from [`super::stack`], plus the x87/SSE save area), recorded in the thread as
//!   `KernelStack::Given(top)` (the process table is told not to allocate its
//!   one-frame `Owned` stacks: `set_arch_kernel_stacks`). A user thread in the kernel has exactly one [`TrapFrame`]
//!   with its user registers at the top of that stack (pushed by `syscall` or by an
//!   interrupt, or written there by [`start_thread`] / [`setup_child`] before the
//!   thread first runs), and its saved context resumes at
//!   [`syscall_entry::user_return`] the first time.
//! * The kernel's master page-table root ([`KERNEL_ROOT`]), installed whenever no
//!   user thread runs (and before an address space is torn down under the CPU).
//! * The pid of the first process and how it ended ([`init_status`]).
//!
//! ## Switching ([`activate`], called by `thread::switch_to`)
//! For a user thread: TSS.RSP0 and the `syscall` stack = its kernel stack top, CR3 =
//! its process's root (only reloaded when it differs), FS base = its TLS pointer
//! (`UserRegs::tls`, kept current by arch_prctl and clone), x87/SSE registers saved
//! from their previous owner and loaded from its area (the kernel itself is built
//! soft-float and never touches them). For kernel threads and idle: CR3 = the kernel
//! root.
//!
//! ## Locks
//! `USER_STACKS` is a leaf lock, taken alone or after the process table.
//!
//! ## System calls ([`on_syscall`])
//! The few calls that need the machine are answered by [`super::usercalls`], the rest
//! by [`crate::syscall::handle_syscall`]. After the call: a thread that exited never
//! returns (its stack is retired, the CPU switches away for good); a thread the
//! scheduler no longer runs (it blocked, slept, yielded or woke a higher one) switches
//! away and, once resumed, re-issues the call if the answer was `ERESTARTSYS`, or
//! delivers the answer. fork/clone children get a copy of the caller's frame with
//! `rax = 0` and the stack pointer the core decided.
//!
//! ## Faults
//! A page fault from ring 3 goes to the address space (demand zero, copy-on-write);
//! when it cannot be resolved, or for any other exception from ring 3, the process is
//! killed with the matching signal (SIGKILL when no frame was left for the page, or
//! free memory is down to [`KERNEL_RESERVE_FRAMES`], as Linux's OOM killer would).
//! The kernel goes on.

use super::cpu::FpuState;
use super::idt::TrapFrame;
use super::stack::{self, KernelStack};
use super::{cpu, gdt, interrupts, paging, syscall_entry, thread, usercalls};
use crate::memory::address_space::{Access, Fault, MapRequest, Placement, Prot};
use crate::memory::{frame_allocator, PhysAddr, PhysFrame, VirtAddr};
use crate::process::{self, scheduler, Pid, Priority, Tid, X86_64Context, PROCESS_TABLE};
use crate::sync::IrqMutex;
use crate::syscall::{self as sys, Errno};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Bytes of kernel stack per user thread (below an unmapped guard page).
pub const USER_KERNEL_STACK: u64 = 32 * 1024;
/// One past the highest byte of the initial user stack.
pub const USER_STACK_TOP: u64 = crate::memory::address_space::TASK_SIZE;
/// Size of the (demand-zero) user stack region.
pub const USER_STACK_SIZE: u64 = 8 << 20;
/// Most bytes of argument and environment strings an exec may put on the stack.
pub const ARG_LIMIT: usize = 128 * 1024;
/// Frames kept for the kernel (heap, tables, stacks): below this many free frames a
/// user page fault does not get a frame (the process is killed as by an OOM killer),
/// and below twice as many fork/clone fail with ENOMEM, so user memory can never
/// starve the kernel.
pub const KERNEL_RESERVE_FRAMES: u64 = 512;
/// RFLAGS of a thread entering user mode: IF and the reserved bit 1.
const USER_RFLAGS: u64 = 0x202;

/// A user thread's machine state that lives outside its trap frame.
struct UserThread {
    stack: KernelStack,
    /// x87/SSE registers while the thread is not on the CPU.
    fpu: Box<FpuState>,
}

static USER_STACKS: IrqMutex<BTreeMap<Tid, UserThread>> = IrqMutex::new(BTreeMap::new());
/// The user thread whose x87/SSE state is in the CPU registers.
static FPU_OWNER: AtomicU32 = AtomicU32::new(0);
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);
static INIT_PID: AtomicU32 = AtomicU32::new(0);
static INIT_STATUS: AtomicI32 = AtomicI32::new(-1);

/// Why a user process could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// No memory (frames, stack, table entries).
    OutOfMemory,
    /// The program could not be loaded (an errno: ENOEXEC, E2BIG, ENOMEM, ...).
    Exec(Errno),
}

/// Prepares ring 3: remembers the kernel root (every new address space shares its
/// upper half) and turns `syscall` on. Call once after the kernel tables are live.
pub fn init() {
    if let Some(root) = paging::active_root() {
        KERNEL_ROOT.store(root.start_address.0, Ordering::Relaxed);
        process::set_kernel_root(root);
    }
    PROCESS_TABLE.lock().set_arch_kernel_stacks();
    cpu::enable_sse();
    sys::futex::set_clock(usercalls::clock_ns);
    sys::fd::set_file_source(|path| super::bootfs::initrd()?.find(path));
    syscall_entry::init();
}

fn kernel_root() -> PhysFrame {
    PhysFrame::containing_address(PhysAddr(KERNEL_ROOT.load(Ordering::Relaxed)))
}

fn load_root(root: PhysFrame) {
    if paging::active_root() != Some(root) && root.start_address.0 != 0 {
        paging::set_active_root(root);
    }
}

/// Installs the kernel's own tables (before the running process's may be freed).
pub fn leave_user_tables() {
    load_root(kernel_root());
}

/// Whether `tid` is a user thread.
pub fn is_user_thread(tid: Tid) -> bool {
    USER_STACKS.lock().contains_key(&tid)
}

/// Number of live user threads (for tests).
pub fn user_thread_count() -> usize {
    USER_STACKS.lock().len()
}

/// Moves the x87/SSE registers from their owner's save area to `next`'s (lazily:
/// only when another user thread's state is loaded). Interrupts are masked.
fn switch_fpu(next: Tid) {
    let owner = Tid(FPU_OWNER.load(Ordering::Relaxed));
    if owner == next {
        return;
    }
    let mut threads = USER_STACKS.lock();
    if let Some(o) = threads.get_mut(&owner) {
        o.fpu.save();
    }
    if let Some(n) = threads.get(&next) {
        n.fpu.restore();
        FPU_OWNER.store(next.0, Ordering::Relaxed);
    }
}

/// Makes the CPU ready to run `next` (see the module docs). Interrupts are masked.
pub(crate) fn activate(next: Option<Tid>) {
    let stack = next.and_then(|t| USER_STACKS.lock().get(&t).map(|u| u.stack));
    let (Some(tid), Some(stack)) = (next, stack) else {
        return load_root(kernel_root());
    };
    switch_fpu(tid);
    let (root, tls) = {
        let mut table = PROCESS_TABLE.lock();
        let Some(t) = table.thread(tid) else {
            return load_root(kernel_root());
        };
        let (pid, tls) = (t.pid, t.user.tls);
        (table.space_mut(pid).map(|s| s.root()).ok(), tls)
    };
    gdt::set_kernel_stack(stack.top.as_u64());
    syscall_entry::set_stack(stack.top.as_u64());
    load_root(root.unwrap_or_else(kernel_root));
    cpu::set_fs_base(tls);
}

// ---- starting programs ----

/// Starts the static ELF `file` as the first user process, with `argv` and `envp`.
/// Its pid is remembered: [`init_status`] reports how it ended.
pub fn spawn_init(file: &[u8], argv: &[&[u8]], envp: &[&[u8]]) -> Result<Pid, SpawnError> {
    let root = frame_allocator::allocate_frame().map_err(|_| SpawnError::OutOfMemory)?;
    let name = core::str::from_utf8(argv.first().copied().unwrap_or(b"init")).unwrap_or("init");
    let pid = process::create_process(name.into(), root).map_err(|_| SpawnError::OutOfMemory)?;
    INIT_PID.store(pid.0, Ordering::Relaxed);
    INIT_STATUS.store(-1, Ordering::Relaxed);
    sys::fd::reset(pid);
    let execfn = argv.first().copied().unwrap_or(b"");
    let started = load_image(pid, file, argv, envp, execfn)
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

/// Loads `file` into the (empty or emptied) address space of `pid` with its initial
/// stack; returns the entry point and the stack pointer.
pub(super) fn load_image(
    pid: Pid,
    file: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
) -> Result<(u64, u64), Errno> {
    use crate::exec::{elf::LoadOptions, prepare, ExecArgs};
    let args = ExecArgs {
        argv,
        envp,
        execfn,
        platform: b"x86_64",
        random: usercalls::random_bytes(),
        hwcap: cpu_hwcap(),
        stack_top: VirtAddr::new(USER_STACK_TOP),
        stack_limit: ARG_LIMIT,
    };
    let image = prepare(file, &LoadOptions::x86_64(), &args).map_err(|e| Errno(e.errno()))?;
    let mut table = PROCESS_TABLE.lock();
    let space = table.space_mut(pid)?;
    for r in &image.plan.regions {
        let (start, end) = (r.start.as_u64(), r.end.as_u64());
        let req =
            MapRequest::new(end - start, Prot::READ | Prot::WRITE).at(Placement::Fixed(start));
        space.mmap(req)?;
    }
    for s in &image.plan.segments {
        let bytes = s.file_bytes(file).ok_or(sys::ENOEXEC)?;
        space.copy_to_user(s.vaddr.as_u64(), bytes)?;
    }
    for r in &image.plan.regions {
        let (start, end) = (r.start.as_u64(), r.end.as_u64());
        space.mprotect(start, end - start, prot_of(r.perms.bits()))?;
    }
    let stack_prot = prot_of(image.plan.stack_perms.bits()) | Prot::READ | Prot::WRITE;
    let req = MapRequest::new(USER_STACK_SIZE, stack_prot)
        .at(Placement::Fixed(USER_STACK_TOP - USER_STACK_SIZE));
    space.mmap(req)?;
    space.copy_to_user(image.stack.rsp.as_u64(), &image.stack_bytes)?;
    drop(table);
    sys::brk::set_start(pid, image.plan.brk_start.as_u64());
    Ok((image.plan.entry.as_u64(), image.stack.rsp.as_u64()))
}

/// Checks that `file` can be exec'd with these arguments (ENOEXEC, E2BIG) without
/// touching any process.
pub(super) fn check_image(
    file: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
) -> Result<(), Errno> {
    use crate::exec::{elf::LoadOptions, prepare, ExecArgs};
    let args = ExecArgs {
        argv,
        envp,
        execfn,
        platform: b"x86_64",
        random: [0; 16],
        hwcap: 0,
        stack_top: VirtAddr::new(USER_STACK_TOP),
        stack_limit: ARG_LIMIT,
    };
    prepare(file, &LoadOptions::x86_64(), &args).map_err(|e| Errno(e.errno()))?;
    Ok(())
}

/// After execve loaded the new image: the caller returns into it at `entry` with
/// stack `sp`, zero registers, FS base 0 and a clean x87/SSE state; threads the exec
/// ended lose their stacks; the new address space is installed.
pub(super) fn reset_for_exec(me: Tid, frame: &mut TrapFrame, entry: u64, sp: u64) {
    *frame = entry_frame(entry, sp);
    frame.vector = syscall_entry::SYSCALL_VECTOR;
    if let Some(t) = PROCESS_TABLE.lock().thread_mut(me) {
        t.user.tls = 0;
    }
    FpuState::initial().restore();
    sweep(Some(me));
    activate(Some(me));
    cpu::set_fs_base(0);
}

fn prot_of(perms: u8) -> Prot {
    Prot::from_bits_truncate(u32::from(perms))
}

/// AT_HWCAP on x86_64: CPUID leaf 1, EDX.
fn cpu_hwcap() -> u64 {
    u64::from(core::arch::x86_64::__cpuid(1).edx)
}

/// A fresh kernel stack holding `frame` at its top; returns it and the frame's address.
fn stack_with_frame(frame: &TrapFrame) -> Result<(KernelStack, u64), SpawnError> {
    let stack = stack::allocate(USER_KERNEL_STACK).map_err(|_| SpawnError::OutOfMemory)?;
    let at = stack.top.as_u64() - core::mem::size_of::<TrapFrame>() as u64;
    // SAFETY: `at` is inside the freshly mapped stack (top minus one frame, 8-byte
    // aligned) and nothing else uses that stack yet.
    unsafe { core::ptr::write(at as *mut TrapFrame, copy_frame(frame)) };
    Ok((stack, at))
}

fn copy_frame(f: &TrapFrame) -> TrapFrame {
    TrapFrame { ..*f }
}

/// A frame that enters ring 3 at `rip` with stack `rsp` and all registers 0.
fn entry_frame(rip: u64, rsp: u64) -> TrapFrame {
    TrapFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rbp: 0,
        rdi: 0,
        rsi: 0,
        rdx: 0,
        rcx: 0,
        rbx: 0,
        rax: 0,
        vector: 0,
        error_code: 0,
        rip,
        cs: u64::from(gdt::USER_CS),
        rflags: USER_RFLAGS,
        rsp,
        ss: u64::from(gdt::USER_DS),
    }
}

/// Makes `tid` resume by popping the frame at `frame_at` into ring 3, on `stack`,
/// with x87/SSE state `fpu`.
fn install(tid: Tid, stack: KernelStack, frame_at: u64, fpu: FpuState) -> Result<(), SpawnError> {
    let mut table = PROCESS_TABLE.lock();
    let Some(t) = table.thread_mut(tid) else {
        stack::free(stack);
        return Err(SpawnError::OutOfMemory);
    };
    t.context = X86_64Context {
        rsp: frame_at,
        rip: syscall_entry::user_return(),
        rflags: 0x2,
        ..X86_64Context::default()
    };
    t.kernel_stack = process::KernelStack::Given(stack.top);
    let fpu = Box::new(fpu);
    USER_STACKS.lock().insert(tid, UserThread { stack, fpu });
    Ok(())
}

/// Creates the main thread of `pid`, entering ring 3 at `entry` with `sp`, and hands
/// it to the scheduler.
fn start_thread(pid: Pid, entry: u64, sp: u64) -> Result<Tid, SpawnError> {
    let (stack, at) = stack_with_frame(&entry_frame(entry, sp))?;
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
/// frame with `rax = 0` and the child's stack pointer. Kills the child on failure.
fn setup_child(parent: &TrapFrame, child: Tid) -> Result<(), Errno> {
    let sp = PROCESS_TABLE.lock().thread(child).map(|t| t.user.sp);
    let mut frame = copy_frame(parent);
    frame.rax = 0;
    frame.rsp = sp.unwrap_or(parent.rsp);
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

fn args_of(frame: &TrapFrame) -> [usize; 6] {
    [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ]
    .map(|a| a as usize)
}

/// The `syscall` handler proper (see the module docs).
pub(super) fn on_syscall(frame: &mut TrapFrame) {
    let Some(me) = thread::running() else {
        frame.rax = encode(Err(sys::ESRCH));
        return;
    };
    let num = frame.rax as usize;
    loop {
        let args = args_of(frame);
        let result = run_call(me, num, args, frame);
        if !thread_alive(me) {
            exit_running(me);
        }
        let mut result = result;
        if scheduler::current() != Some(me) {
            thread::switch_to_scheduled();
            if num == sys::SYS_FUTEX && sys::futex::forget(me) && result == Ok(0) {
                result = Err(sys::futex::ETIMEDOUT);
            }
        } else if result == Err(sys::ERESTARTSYS) {
            // A call that asks to be re-issued without having given up the CPU would
            // spin here with interrupts off: let user space retry instead.
            result = Err(sys::EINTR);
        }
        if result != Err(sys::ERESTARTSYS) {
            frame.rax = encode(result);
            return;
        }
    }
}

fn encode(r: Result<usize, Errno>) -> u64 {
    match r {
        Ok(v) => v as u64,
        Err(e) => (-(e.0 as i64)) as u64,
    }
}

fn thread_alive(tid: Tid) -> bool {
    PROCESS_TABLE
        .lock()
        .thread(tid)
        .is_some_and(|t| !t.has_exited())
}

/// One call: the machine's own, fork/clone with child set-up, calls that may end
/// processes (run on the kernel's tables), or the core's.
fn run_call(me: Tid, num: usize, a: [usize; 6], frame: &mut TrapFrame) -> Result<usize, Errno> {
    if let Some(r) = usercalls::handle(me, num, a, frame) {
        return r;
    }
    match num {
        sys::SYS_FORK | sys::SYS_VFORK | sys::SYS_CLONE => fork_like(me, num, a, frame),
        sys::SYS_EXIT | sys::SYS_EXIT_GROUP | sys::SYS_KILL => ending_call(me, num, a),
        _ => sys::handle_syscall(num, a[0], a[1], a[2], a[3], a[4], a[5]),
    }
}

fn fork_like(me: Tid, num: usize, a: [usize; 6], frame: &TrapFrame) -> Result<usize, Errno> {
    thread::reap_dead();
    // Refused well before the fault reserve, so the caller can still run and learn it.
    if frame_allocator::free_frame_count() < 2 * KERNEL_RESERVE_FRAMES {
        return Err(sys::ENOMEM);
    }
    let parent_pid = {
        let mut table = PROCESS_TABLE.lock();
        let t = table.thread_mut(me).ok_or(sys::ESRCH)?;
        t.user.sp = frame.rsp;
        t.user.ip = frame.rip;
        t.pid
    };
    let child = sys::handle_syscall(num, a[0], a[1], a[2], a[3], a[4], a[5])?;
    let child_tid = Tid(child as u32);
    setup_child(frame, child_tid)?;
    if process::process_of(child_tid) != Some(parent_pid) {
        sys::brk::inherit(parent_pid, Pid(child as u32));
        sys::fd::inherit(parent_pid, Pid(child as u32));
        sys::signal::inherit(parent_pid, Pid(child as u32));
    }
    Ok(child)
}

/// exit, exit_group, kill: may tear down address spaces, so they run on the kernel's
/// tables; afterwards the threads that ended lose their stacks.
fn ending_call(me: Tid, num: usize, a: [usize; 6]) -> Result<usize, Errno> {
    let my_pid = process::process_of(me);
    leave_user_tables();
    let r = sys::handle_syscall(num, a[0], a[1], a[2], a[3], a[4], a[5]);
    let (pid, status) = match num {
        sys::SYS_KILL => (kill_target(a[0], my_pid), 128 + (a[1] as i32 & 0x7f)),
        _ => (my_pid, (a[0] & 0xff) as i32),
    };
    if let (Ok(_), Some(pid)) = (r, pid) {
        note_exit_of(pid, status);
    }
    sweep(Some(me));
    forget_gone_processes();
    if thread_alive(me) {
        activate(Some(me));
    }
    r
}

/// Drops the per-process state kept outside the process table (break, fd table) of
/// processes that have ended (zombies included: their pipe ends close at exit).
fn forget_gone_processes() {
    let table = PROCESS_TABLE.lock();
    let alive = |p: Pid| {
        table
            .process(p)
            .is_some_and(|p| p.state == process::ProcessState::Alive)
    };
    sys::brk::retain(alive);
    sys::fd::retain(alive);
    sys::signal::retain(alive);
}

/// The process kill(pid, ...) aims at (as `syscall::signal::sys_kill` reads it).
fn kill_target(pid: usize, mine: Option<Pid>) -> Option<Pid> {
    match pid as i32 {
        0 => mine,
        -1 => None,
        p => Some(Pid(p.unsigned_abs())),
    }
}

/// Retires the stacks of user threads that have exited (all but `running`, which is
/// still on its stack).
fn sweep(running: Option<Tid>) {
    let dead: Vec<Tid> = {
        let table = PROCESS_TABLE.lock();
        let stacks = USER_STACKS.lock();
        stacks
            .keys()
            .copied()
            .filter(|t| Some(*t) != running)
            .filter(|t| table.thread(*t).is_none_or(|th| th.has_exited()))
            .collect()
    };
    for t in dead {
        retire(t);
    }
}

fn retire(tid: Tid) {
    let gone = USER_STACKS.lock().remove(&tid);
    if let Some(u) = gone {
        sys::futex::forget(tid);
        thread::retire_stack(tid, u.stack);
        let _ = FPU_OWNER.compare_exchange(tid.0, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The running user thread `me` has exited: give up its stack and never come back.
fn exit_running(me: Tid) -> ! {
    interrupts::disable();
    leave_user_tables();
    retire(me);
    sweep(Some(me));
    thread::leave_for_good()
}

/// Whether free memory is down to the kernel's reserve.
fn memory_low() -> bool {
    frame_allocator::free_frame_count() < KERNEL_RESERVE_FRAMES
}

// ---- exceptions from ring 3 ----

/// Linux's signal for an exception vector raised in user mode.
fn signal_for(vector: u64) -> i32 {
    match vector {
        0 | 16 | 19 => 8, // divide error, x87, SIMD: SIGFPE
        1 | 3 => 5,       // debug, breakpoint: SIGTRAP
        6 => 4,           // invalid opcode: SIGILL
        17 => 7,          // alignment check: SIGBUS
        _ => 11,          // page fault, general protection, ...: SIGSEGV
    }
}

fn access_of(error_code: u64) -> Access {
    if error_code & (1 << 4) != 0 {
        Access::Execute
    } else if error_code & (1 << 1) != 0 {
        Access::Write
    } else {
        Access::Read
    }
}

/// An exception in ring 3: resolve a page fault, or kill the process.
pub(super) fn on_user_exception(frame: &mut TrapFrame) {
    let mut sig = signal_for(frame.vector);
    if frame.vector == 14 && memory_low() {
        sig = sys::signal::SIGKILL;
    } else if frame.vector == 14 {
        let addr = cpu::read_cr2();
        match process::handle_user_fault(addr, access_of(frame.error_code)) {
            Ok(()) => return,
            // No memory for the page: what Linux's OOM killer does.
            Err(Fault::OutOfMemory) => sig = sys::signal::SIGKILL,
            Err(_) => {}
        }
    }
    let Some(me) = thread::running() else {
        return;
    };
    kill_running_process(me, sig);
}

/// A system call of `me` raised `sig` against its own process (SIGPIPE): the
/// process ends as killed by it; the call's caller then finds `me` exited.
pub(super) fn signal_own_process(me: Tid, sig: i32) {
    leave_user_tables();
    if let Some(pid) = process::process_of(me) {
        sys::signal::kill_process_now(pid, sig);
        note_exit_of(pid, 128 + sig);
    }
    sweep(Some(me));
    forget_gone_processes();
}

fn kill_running_process(me: Tid, sig: i32) -> ! {
    interrupts::disable();
    leave_user_tables();
    if let Some(pid) = process::process_of(me) {
        sys::signal::kill_process_now(pid, sig);
        note_exit_of(pid, 128 + sig);
    }
    forget_gone_processes();
    exit_running(me)
}

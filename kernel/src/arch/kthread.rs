//! Kernel threads on bare metal (x86_64 and aarch64 alike): the mechanism behind the
//! scheduler's decisions. Each arch re-exports this module as `arch::<name>::thread`
//! and supplies the pieces it uses under the same names: `context::{switch,
//! prepare_first_run, EMPTY}`, `stack::{allocate, free}`, `interrupts`,
//! `timer::uptime_us` and `cpu::halt`; [`crate::task::activate`] installs a user
//! thread's address space and kernel stack before it runs.
//!
//! The scheduler ([`crate::process::scheduler`]) only says which thread should run;
//! this module makes the CPU run it. It keeps its own record of what the CPU really
//! runs ([`running`]), so a caller that asks the scheduler for a decision without
//! switching (the seed's `scheduler::schedule()`) cannot make a context be saved into
//! the wrong thread.
//!
//! The boot context (`kmain`) is the idle thread: it runs whenever no thread is ready,
//! and its context is saved in `IDLE` while threads run. Every switch happens with
//! interrupts masked and no lock held.
//!
//! Life of a kernel thread made by [`spawn`]: a guarded stack from `arch::stack`,
//! `create_thread` + `add_thread`, first run through `context::kernel_thread_start`,
//! and when its function returns, [`exit_current_thread`]: the thread leaves the
//! process table and the scheduler and the CPU switches away for good. Its stack is
//! freed later (never while in use) by [`reap_dead`].

use super::context;
use super::interrupts;
use super::stack::{self, KernelStack};
use crate::memory::VirtAddr;
use crate::process::context::Context;
use crate::process::{self, scheduler, Pid, Priority, ProcessError, Thread, Tid, PROCESS_TABLE};
use crate::smp::{self, MAX_CPUS};
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

/// A context the switch may write into that no thread owns.
struct ContextSlot(UnsafeCell<Context>);

// SAFETY: each slot belongs to one CPU (indexed by `smp::this_index()`) and is
// touched only by that CPU's `switch_to`, with interrupts masked.
unsafe impl Sync for ContextSlot {}

/// Each CPU's boot/idle context while threads run on it.
static IDLE: [ContextSlot; MAX_CPUS] =
    [const { ContextSlot(UnsafeCell::new(context::EMPTY)) }; MAX_CPUS];
/// Where an exiting thread's registers go (its own context may be freed already),
/// per CPU. Its `on_cpu` says whether the CPU may still be on the exited thread's
/// stack.
static DISCARD: [ContextSlot; MAX_CPUS] =
    [const { ContextSlot(UnsafeCell::new(context::EMPTY)) }; MAX_CPUS];

/// Stacks made by [`spawn`], by thread; and those of exited threads, to free.
struct Stacks {
    live: BTreeMap<Tid, KernelStack>,
    dead: Vec<(Tid, KernelStack)>,
}

static STACKS: IrqMutex<Stacks> = IrqMutex::new(Stacks {
    live: BTreeMap::new(),
    dead: Vec::new(),
});

/// Why a thread could not be spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    /// No memory for its stack.
    Stack(stack::StackError),
    /// The process table refused it.
    Process(ProcessError),
    /// The scheduler refused it.
    Scheduler(scheduler::SchedError),
}

/// The thread this CPU is running (`None`: its idle/boot context).
pub fn running() -> Option<Tid> {
    tid_of(smp::this().running.load(Ordering::Relaxed))
}

fn tid_of(raw: u64) -> Option<Tid> {
    match raw {
        0 => None,
        n => Some(Tid((n - 1) as u32)),
    }
}

/// Whether some CPU runs `t` (or may still be on its stack: it exited and the CPU
/// has not yet switched away, or it switched away and has not yet saved its
/// registers). The caller holds the process-table lock.
pub fn thread_in_use(t: &Thread) -> bool {
    running_anywhere(t.tid) || context_in_use(t)
}

/// Whether a CPU runs `tid` or is switching away from it for good.
fn running_anywhere(tid: Tid) -> bool {
    let raw = u64::from(tid.0) + 1;
    smp::CPUS
        .iter()
        .enumerate()
        .any(|(i, c)| c.running.load(Ordering::Acquire) == raw || discard_pending(i, tid))
}

/// Whether a CPU has `t`'s context loaded or is still saving into it.
fn context_in_use(t: &Thread) -> bool {
    let flag = core::ptr::addr_of!(t.context.on_cpu).cast_mut();
    // SAFETY: the context lives in the thread, which the caller holds; the word is
    // only loaded here, atomically, as every access to it is.
    unsafe { AtomicU64::from_ptr(flag) }.load(Ordering::Acquire) != 0
}

/// Whether CPU `i` is leaving the exited thread `tid` and has not finished.
fn discard_pending(i: usize, tid: Tid) -> bool {
    let c = &smp::CPUS[i];
    c.leaving.load(Ordering::Acquire) == u64::from(tid.0) + 1
        // SAFETY: reading the flag word of this CPU's discard slot, which the switch
        // routine clears with a release store.
        && unsafe { on_cpu_flag(DISCARD[i].0.get()) }.load(Ordering::Acquire) != 0
}

fn set_running(t: Option<Tid>) {
    smp::this()
        .running
        .store(t.map_or(0, |t| u64::from(t.0) + 1), Ordering::Release);
}

/// The `on_cpu` word of a context, as an atomic.
///
/// # Safety
/// `ctx` points to a live context.
unsafe fn on_cpu_flag<'a>(ctx: *mut Context) -> &'a AtomicU64 {
    // SAFETY: the field is a naturally aligned u64 inside a live context; every
    // access to it goes through atomics (here, and the switch routine's store).
    unsafe { AtomicU64::from_ptr(core::ptr::addr_of_mut!((*ctx).on_cpu)) }
}

/// Makes `ctx` a thread's context ready to be loaded: every field of `new` is
/// written first, then `on_cpu` is cleared with a release store, so a CPU waiting
/// in [`switch_to`] for it loads the whole context.
pub fn install_context(ctx: &mut Context, new: Context) {
    *ctx = Context { on_cpu: 1, ..new };
    // SAFETY: `ctx` is a live context.
    unsafe { on_cpu_flag(ctx) }.store(0, Ordering::Release);
}

/// The saved context of `prev`, the thread leaving this CPU for `next`, in the
/// locked table (this CPU's idle context for `None`), or `None` if `prev` is gone;
/// what a leaving user thread leaves behind is saved on the way (`task::leave`).
fn leaving_context(
    table: &mut process::ProcessTable<crate::memory::frame_allocator::GlobalFrames>,
    prev: Option<Tid>,
    next: Option<Tid>,
) -> Option<*mut Context> {
    match prev {
        None => Some(IDLE[smp::this_index()].0.get()),
        Some(tid) => table.thread_mut(tid).map(|th| {
            crate::task::leave(th, next);
            th.context_ptr()
        }),
    }
}

/// The saved context of `tid` if the thread may run: in the table and not exited.
///
/// An exited thread is never resumed, even if a scheduler decision made before it
/// was ended names it: the reaper may already have retired its kernel stack (it
/// checks only that no CPU runs the thread or holds its context), and resuming it
/// would run on a stack handed to someone else.
fn live_context(
    table: &mut process::ProcessTable<crate::memory::frame_allocator::GlobalFrames>,
    tid: Tid,
) -> Option<*mut Context> {
    table
        .thread_mut(tid)
        .filter(|th| !th.has_exited())
        .map(|th| th.context_ptr())
}

/// Makes the CPU run `next` (the scheduler's choice), saving the running context into
/// `from` (or its own slot when `from` is `None`). Interrupts must be masked.
///
/// Another CPU may have given `next` up an instant ago and still be saving its
/// registers: the switch waits until that CPU's switch routine cleared the
/// context's `on_cpu` (serving requests meanwhile, so the two cannot deadlock).
fn switch_to(next: Option<Tid>, from: Option<*mut Context>) {
    if running() == next && from.is_none() {
        return;
    }
    // One table lock for both contexts and the activation: every CPU's timer
    // switches, and three acquisitions per switch made 4 vCPUs on 2 host cores
    // queue on the table lock until the forkbomb made no progress at all.
    switch_holding(PROCESS_TABLE.lock(), next, from);
}

/// The idle loop's switch to the thread the scheduler chose for this CPU, which an
/// interrupt noted for it (`PerCpu::idle_loop`). The loop holds nothing, and the
/// handlers that run while it waits only note switches, so its wait for the table
/// may halt the CPU ([`IrqMutex::lock_preemptible`]): an idle vCPU woken for a
/// thread does not spin while another CPU holds the table.
fn switch_from_idle_loop() {
    let table = PROCESS_TABLE.lock_preemptible();
    // Asked only now: the decision may have changed while the loop waited.
    let next = scheduler::current();
    if next.is_some() {
        switch_holding(table, next, None);
    }
}

/// Whether the interrupt handler that asks for a switch to `next` leaves it for
/// later (noting it): to the idle loop it interrupted, or to the thread's way back
/// to user mode when it interrupted a halt that must keep the thread
/// (`PerCpu::switch_held`, [`switch_if_deferred`]).
fn leave_for_later(next: Option<Tid>) -> bool {
    let me = smp::this();
    if me.switch_held.load(Ordering::Relaxed) {
        me.switch_deferred.store(true, Ordering::Relaxed);
        // The way back to user mode looks at `switch_deferred` only when told to
        // look again, which it checks anyway: the fast calls pay nothing for this.
        me.recheck.store(true, Ordering::Release);
        return true;
    }
    let later = next.is_some() && running().is_none() && me.idle_loop.load(Ordering::Relaxed);
    if later {
        me.switch_deferred.store(true, Ordering::Relaxed);
    }
    later
}

/// Makes the switch an interrupt left to the running thread (see
/// [`leave_for_later`]), to the thread the scheduler now names for this CPU. Called
/// on the way back to user mode when `PerCpu::recheck` was set, interrupts masked
/// and no lock held.
#[cold]
pub fn switch_if_deferred() {
    let me = smp::this();
    if !me.switch_deferred.load(Ordering::Relaxed) || running().is_none() {
        return;
    }
    me.switch_deferred.store(false, Ordering::Relaxed);
    switch_to(scheduler::current(), None);
}

/// One step of an idle loop (interrupts on before and after): the switch an
/// interrupt left to it, or a halt until the next interrupt (none is missed: a
/// deferral noted after the look ends the halt, which it comes with).
fn idle_step() {
    interrupts::disable();
    if smp::this().switch_deferred.swap(false, Ordering::Relaxed) {
        switch_from_idle_loop();
    } else {
        interrupts::halt_then_take_pending();
    }
    interrupts::enable();
}

/// [`switch_to`] with the table already locked.
fn switch_holding(mut table: process::TableGuard, next: Option<Tid>, from: Option<*mut Context>) {
    let prev = running();
    if prev == next && from.is_none() {
        return;
    }
    let from = match from {
        Some(from) => {
            if let Some(th) = prev.and_then(|tid| table.thread_mut(tid)) {
                crate::task::leave(th, next);
            }
            from
        }
        None => match leaving_context(&mut table, prev, next) {
            Some(from) => from,
            None => return,
        },
    };
    let idle = IDLE[smp::this_index()].0.get();
    let (mut next, mut to) = match next.and_then(|t| live_context(&mut table, t)) {
        Some(to) => (next, to),
        None => (None, idle),
    };
    // SAFETY: `to` is a live context (a boxed thread's or this CPU's idle slot).
    let busy = unsafe { on_cpu_flag(to) };
    // Claim `to`: once its last CPU has saved it (`on_cpu` back to 0), set it to 1,
    // so no reaper takes the thread while this CPU waits without the lock.
    let claim = || {
        busy.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    };
    match next {
        None => busy.store(1, Ordering::Relaxed),
        Some(_) if claim() => {}
        Some(tid) => {
            drop(table);
            while !claim() {
                smp::serve_requests();
                core::hint::spin_loop();
            }
            table = PROCESS_TABLE.lock();
            // It may have been ended while the lock was free: then its stack is
            // the reaper's once the claim is dropped, and this CPU idles.
            if live_context(&mut table, tid).is_none() {
                busy.store(0, Ordering::Release);
                (next, to) = (None, idle);
                // SAFETY: this CPU's idle slot, touched only by this CPU.
                unsafe { on_cpu_flag(to) }.store(1, Ordering::Relaxed);
            }
        }
    }
    // SAFETY: `from` is live (the running thread's, or a slot of this CPU).
    unsafe { on_cpu_flag(from) }.store(1, Ordering::Relaxed);
    // SAFETY: `to` is a live context, not running anywhere (checked above).
    context::prepare_first_run(unsafe { &mut *to });
    crate::task::activate_in(table, next);
    set_running(next);
    // SAFETY: interrupts are masked (callers), no lock is held, both contexts are
    // live and distinct from the running stack's users.
    unsafe { context::switch(from, to) };
}

/// Called from the timer interrupt (interrupts masked) after the EOI: account the
/// ticks the clock says have passed (none lost to a long masked section) and
/// preempt if the scheduler says so.
pub(super) fn on_timer_tick() {
    let per_tick = 1_000_000 / u64::from(scheduler::TICK_HZ);
    let (mut next, now) = scheduler::timer_tick_at_now(super::timer::uptime_us() / per_tick);
    crate::task::on_tick(now);
    // A reschedule asked while this CPU waited for a lock (its IPI was served
    // there, not taken) is acted on now.
    if smp::this().resched.swap(false, Ordering::AcqRel) && next == running() {
        next = scheduler::reschedule_here();
    }
    if leave_for_later(next) {
        return;
    }
    switch_to(next, None);
}

/// Called from the IPI handler (interrupts masked) after the mailbox was served:
/// if another CPU asked this one to reschedule (it made a thread ready here), the
/// scheduler picks again.
pub fn on_reschedule_request() {
    if !smp::this().resched.swap(false, Ordering::AcqRel) {
        return;
    }
    let next = scheduler::reschedule_here();
    if leave_for_later(next) {
        return;
    }
    switch_to(next, None);
}

/// Runs `decide` (a scheduler call returning the next thread) and switches to its
/// answer, all with interrupts masked.
fn reschedule(decide: impl FnOnce() -> Option<Tid>) {
    let saved = interrupts::save_and_disable();
    let next = decide();
    switch_to(next, None);
    interrupts::restore(saved);
}

/// The running thread gives up the CPU to the next ready thread of its level or above.
pub fn yield_now() {
    reschedule(scheduler::yield_cpu);
}

/// The running thread blocks until someone calls [`unblock`].
pub fn block_current() {
    reschedule(|| scheduler::block_current_thread().unwrap_or(None));
}

/// The running thread sleeps for `ticks` timer ticks.
pub fn sleep_ticks(ticks: u64) {
    reschedule(|| scheduler::sleep_current_thread(ticks).unwrap_or(None));
}

/// Makes a blocked or sleeping thread ready (it runs when the scheduler picks it).
pub fn unblock(tid: Tid) -> Result<(), scheduler::SchedError> {
    scheduler::unblock_thread(tid)
}

/// Switches to the thread the scheduler has made current (after a system call that
/// blocked, slept or yielded the running thread). Returns when the caller runs again.
pub fn switch_to_scheduled() {
    let saved = interrupts::save_and_disable();
    switch_to(scheduler::current(), None);
    interrupts::restore(saved);
}

/// The running thread has exited and its stack is retired: switch away for good.
pub fn leave_for_good() -> ! {
    interrupts::disable();
    let next = match scheduler::current() {
        Some(t) if Some(t) != running() => Some(t),
        _ => scheduler::schedule(),
    };
    leave_through_discard(next);
}

/// Switches to `next` for good, saving the exiting thread's registers in this CPU's
/// discard slot; `leaving` names the thread until the switch routine is done, so
/// its stack is not freed while this CPU may still be on it.
fn leave_through_discard(next: Option<Tid>) -> ! {
    let me = smp::this();
    let leaving = running().map_or(0, |t| u64::from(t.0) + 1);
    me.leaving.store(leaving, Ordering::Release);
    // Its own context is never saved again: `leaving` guards its stack from now on.
    if let Some(ctx) = running().and_then(|tid| {
        let mut table = PROCESS_TABLE.lock();
        table.thread_anywhere_mut(tid).map(|t| t.context_ptr())
    }) {
        // SAFETY: the thread (live or freed-but-kept) is not dropped while this
        // CPU runs it (`thread_in_use`).
        unsafe { on_cpu_flag(ctx) }.store(0, Ordering::Release);
    }
    switch_to(next, Some(DISCARD[me.id()].0.get()));
    unreachable!("an exited thread was resumed");
}

/// Queues the stack of the exited thread `tid` for [`reap_dead`] (which frees it
/// once the CPU is off it).
pub fn retire_stack(tid: Tid, stack: KernelStack) {
    STACKS.lock().dead.push((tid, stack));
}

/// Creates a kernel thread of `pid` running `entry` on a fresh guarded stack and hands
/// it to the scheduler.
pub fn spawn(pid: Pid, priority: Priority, entry: fn()) -> Result<Tid, SpawnError> {
    spawn_where(pid, priority, entry, scheduler::ALL_CPUS)
}

/// [`spawn`] for a thread that only ever runs on CPU `cpu`.
pub fn spawn_on(cpu: usize, pid: Pid, priority: Priority, entry: fn()) -> Result<Tid, SpawnError> {
    spawn_where(pid, priority, entry, 1 << cpu)
}

fn spawn_where(pid: Pid, priority: Priority, entry: fn(), cpus: u64) -> Result<Tid, SpawnError> {
    reap_dead();
    let stack = stack::allocate(stack::DEFAULT_STACK_SIZE).map_err(SpawnError::Stack)?;
    let entry_addr = VirtAddr::new(entry as *const () as u64);
    let tid = match process::create_thread(pid, priority, entry_addr, stack.top, None) {
        Ok(tid) => tid,
        Err(e) => {
            stack::free(stack);
            return Err(SpawnError::Process(e));
        }
    };
    STACKS.lock().live.insert(tid, stack);
    match cpus {
        scheduler::ALL_CPUS => scheduler::add_thread(tid),
        mask => scheduler::add_thread_pinned(tid, mask),
    }
    .map_err(SpawnError::Scheduler)?;
    Ok(tid)
}

/// Where a kernel thread's function returns to (and what a thread calls to end
/// itself): leave the process table and the scheduler, switch away for good.
pub extern "C" fn exit_current_thread() -> ! {
    interrupts::disable();
    if let Some(tid) = running() {
        let _ = PROCESS_TABLE.lock().exit_thread(tid, 0);
        let _ = scheduler::remove_thread(tid);
        let mut stacks = STACKS.lock();
        if let Some(s) = stacks.live.remove(&tid) {
            stacks.dead.push((tid, s));
        }
    }
    let next = scheduler::schedule();
    leave_through_discard(next);
}

/// Frees the stacks of exited threads and reaps them from the process table. Never
/// frees the stack the CPU is on (the running thread is not dead).
pub fn reap_dead() {
    reap_locked(STACKS.lock());
}

/// [`reap_dead`] unless another CPU is reaping already (then nothing): for an idle
/// CPU between two halts and for fork, which call it all the time. Four vCPUs on
/// two host cores spent half their samples in hostile's thread/fork race queued on
/// this list's lock (three idle ones and the forkers), taking host time from the
/// threads with work.
pub fn reap_dead_unless_busy() {
    if let Some(stacks) = STACKS.try_lock() {
        reap_locked(stacks);
    }
}

fn reap_locked(mut stacks: crate::sync::IrqMutexGuard<'_, Stacks>) {
    // The list stays locked while its stacks are freed, so a caller that finds it
    // empty knows they are all back (two CPUs may reap at once).
    if stacks.dead.is_empty() {
        return;
    }
    let mut free = Vec::new();
    {
        // One table lock for every check: a thread that leaves the table here
        // cannot be switched to any more, and one still in use stays listed.
        let mut table = PROCESS_TABLE.lock();
        for (tid, s) in core::mem::take(&mut stacks.dead) {
            let in_use = running_anywhere(tid)
                || table
                    .thread_anywhere_mut(tid)
                    .is_some_and(|t| context_in_use(t));
            if in_use {
                stacks.dead.push((tid, s));
            } else {
                let _ = table.reap_thread(tid);
                free.push(s);
            }
        }
    }
    for s in free {
        stack::free(s);
    }
}

/// What a secondary CPU runs once its arch bring-up is done (its per-CPU record
/// installed, its interrupt controller and timer on): it joins the scheduler and
/// becomes that CPU's idle context for good, halting until its timer or another
/// CPU's interrupt gives it a thread.
pub fn secondary_idle() -> ! {
    smp::mark_online();
    scheduler::cpu_online(smp::this_index());
    smp::this().idle_loop.store(true, Ordering::Relaxed);
    interrupts::enable();
    loop {
        idle_step();
        if running().is_none() {
            crate::task::sweep_when_idle();
            reap_dead_unless_busy();
        }
    }
}

/// Stacks of exited threads not yet freed (a CPU may still have been on them).
pub fn dead_stacks() -> usize {
    STACKS.lock().dead.len()
}

/// Idle loop of the boot context: halts (letting the timer run threads) until `done`
/// returns true or `timeout_ms` pass. Returns whether `done` became true.
pub fn idle_until(done: impl Fn() -> bool, timeout_ms: u64) -> bool {
    let deadline = super::timer::uptime_us() + timeout_ms * 1000;
    let me = smp::this();
    let was_idle_loop = me.idle_loop.swap(true, Ordering::Relaxed);
    interrupts::enable();
    let mut finished = true;
    while !done() {
        if super::timer::uptime_us() > deadline {
            finished = false;
            break;
        }
        idle_step();
        if smp::online_count() > 1 {
            crate::task::sweep_when_idle();
        }
    }
    me.idle_loop.store(was_idle_loop, Ordering::Relaxed);
    if finished {
        reap_dead();
    }
    finished
}

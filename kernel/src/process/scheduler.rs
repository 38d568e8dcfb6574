//! The scheduler: *policy only*. It decides which thread runs next; the arch layer
//! performs the switch (see [`timer_tick`] and the context module).
//!
//! ## Policy
//! * Three levels, strict priority High > Normal > Low; FIFO round robin within a
//!   level. One FIFO queue per level plus a bitmap of non-empty levels: picking the
//!   next thread is O(1).
//! * The running thread gets a slice of [`SLICE_TICKS`] timer ticks ([`TICK_HZ`] Hz).
//!   [`Scheduler::tick`] asks for a reschedule when the slice is used up or a thread
//!   of a higher level than the running one is ready.
//! * Aging: each tick looks at the *oldest* waiter of the Low and Normal queues (the
//!   queue heads, since every queue is ordered by enqueue time). A waiter that has
//!   waited [`AGING_TICKS`] is moved to the back of the next level up, one level at a
//!   time. So a Low thread reaches the High queue after at most `2 * AGING_TICKS`
//!   ticks and then runs within one round of the High queue: bounded even under
//!   constant High load. The boost lasts for one slice; a thread goes back to its base
//!   level when it is requeued. A freshly added thread is never aged before it
//!   waited, so "High is picked first" holds.
//! * Sleepers wait in a set ordered by wake-up tick; `tick` wakes the due ones. A
//!   sleeper whose time came goes to the *front* of its level and the tick asks for
//!   a reschedule (Linux's wake-up preemption, simplified): a thread that sleeps 10 ms
//!   runs within a tick of its deadline however many threads of its level spin.
//! * Time follows the clock: [`Scheduler::timer_tick_at`] is handed the clock's tick
//!   count and accounts every tick since the last interrupt, so a section that kept
//!   interrupts masked for several ticks loses none (sleepers whose deadline passed
//!   meanwhile wake at once), and an early interrupt accounts none.
//! * Wake-ups from wait queues ([`super::wait_queue`]) arrive on the scheduler's
//!   wake-up list and are applied before each pick ([`Scheduler::apply_wakeups`]).
//!   Every wake-up records its [`WakeReason`] for the woken thread to take.
//!
//! ## Cost
//! Thread entries live in a vector indexed by thread id and the queues are linked
//! through them, so add, pick, yield, block, unblock, remove and the per-tick aging
//! are all O(1); only sleeping and waking a sleeper touch the ordered sleeper set
//! (O(log sleepers)).
//!
//! ## States the scheduler tracks (see the diagram in [`super`])
//! `Ready` (in exactly one queue), `Running` (the `current` thread, in no queue),
//! `Blocked` (in no queue), `Sleeping` (in the sleeper set). Removed threads are
//! forgotten; `Exited` is the process table's business.
//!
//! ## Locks
//! The global instance sits in an [`IrqMutex`] because the timer interrupt takes it.
//! Lock order: the process table lock, if needed, is taken *before* this one (the
//! facade never holds this lock while calling into the process table).

use super::wait_queue::{Waiter, WakeReason, Wakeups};
use super::{Priority, ThreadState, Tid};
use crate::smp::MAX_CPUS;
use crate::sync::IrqMutex;
use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Timer ticks per second.
pub const TICK_HZ: u32 = 100;
/// Length of a time slice in ticks (50 ms).
pub const SLICE_TICKS: u32 = 5;
/// Ticks a ready thread waits at the head of its queue before it is promoted a level.
pub const AGING_TICKS: u64 = 20;

const LEVELS: usize = 3;
/// "No thread" in the intrusive queue links.
const NIL: u32 = u32::MAX;

/// Why a scheduler operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedError {
    /// The scheduler does not know this thread (never added, or removed).
    UnknownThread(Tid),
    /// The thread was already added.
    AlreadyAdded(Tid),
    /// The thread is not blocked or sleeping, so it cannot be woken.
    NotWaiting(Tid),
    /// There is no running thread to act on.
    NoCurrentThread,
    /// No memory for the thread's entry.
    OutOfMemory,
    /// An affinity mask without an online CPU.
    NoAllowedCpu,
}

/// What the scheduler knows of one thread. Ready threads are linked into their
/// level's queue through `prev`/`next` (thread ids), so any queued thread can be
/// unlinked in O(1).
#[derive(Debug, Clone, Copy)]
struct Entry {
    base: Priority,
    /// Level it is queued (or running) at; above `base` while aged.
    level: Priority,
    state: ThreadState,
    /// Tick at which it entered its current queue.
    since: u64,
    /// Tick it wakes at, while sleeping.
    wake_at: u64,
    /// Why it was last made ready from Blocked or Sleeping, until taken.
    woke: Option<WakeReason>,
    /// A wake-up reached it while it was not waiting (it had joined a queue and not
    /// yet blocked): its next block returns at once.
    wake_pending: bool,
    /// Times it blocked or slept (Linux's voluntary context switches).
    voluntary_switches: u64,
    /// Times it was preempted by the timer.
    involuntary_switches: u64,
    prev: u32,
    next: u32,
    /// The CPU whose queue holds it, that runs it, or that it last ran on.
    cpu: u8,
    /// The CPUs it may run on (a bit per CPU index).
    affinity: u64,
}

/// A FIFO of ready threads, linked through their entries.
#[derive(Debug, Clone, Copy)]
struct Queue {
    head: u32,
    tail: u32,
}

impl Queue {
    const EMPTY: Queue = Queue {
        head: NIL,
        tail: NIL,
    };
}

/// One CPU's share: its run queues (one FIFO per level plus the bitmap of
/// non-empty levels), its running thread and what is left of that thread's slice.
#[derive(Debug, Clone, Copy)]
struct RunQueue {
    queues: [Queue; LEVELS],
    /// Bit `i` set iff `queues[i]` is not empty.
    ready_mask: u8,
    /// Threads in the queues.
    ready: u32,
    current: Option<Tid>,
    slice_left: u32,
    /// The scheduler's tick when this CPU last accounted its slice.
    last_tick: u64,
    /// A sleeper whose time came was queued here: reschedule at the next look.
    sleeper_woke: bool,
}

impl RunQueue {
    const EMPTY: RunQueue = RunQueue {
        queues: [Queue::EMPTY; LEVELS],
        ready_mask: 0,
        ready: 0,
        current: None,
        slice_left: 0,
        last_tick: 0,
        sleeper_woke: false,
    };

    fn is_idle(&self) -> bool {
        self.current.is_none() && self.ready == 0
    }

    fn load(&self) -> u32 {
        self.ready + u32::from(self.current.is_some())
    }
}

/// Every affinity bit set.
pub const ALL_CPUS: u64 = u64::MAX;

/// The run queues of every CPU and what they share: the thread entries, the
/// sleepers and the clock.
///
/// Entries are indexed by thread id (ids are small: they come from one id space
/// bounded by the process table), so every lookup is O(1). Calls that act on "the
/// running thread" act on the calling CPU's (`smp::this_index()`; CPU 0 on the
/// host); their `_on` forms name the CPU.
#[derive(Debug)]
pub struct Scheduler {
    entries: Vec<Option<Entry>>,
    known: usize,
    cpus: [RunQueue; MAX_CPUS],
    /// Bit `i` set iff CPU `i` takes threads.
    online: u64,
    sleepers: BTreeSet<(u64, Tid)>,
    now: u64,
    /// The clock's tick count at this scheduler's tick 0 (learned at the first
    /// [`timer_tick_at`](Self::timer_tick_at)).
    clock_base: Option<u64>,
    /// CPUs that were given a thread by another CPU since the last
    /// [`take_kicks`](Self::take_kicks) (each is also interrupted at once).
    kicks: u64,
    /// Where wait queues leave the threads they wake (made on first use, since the
    /// global instance is built in a `const`).
    wakeups: Option<Arc<Wakeups>>,
    /// The empty list handed to `wakeups` for the next wake-ups when the queued ones
    /// are taken (the two lists take turns, so neither is allocated again).
    spare_wakeups: Vec<Tid>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

/// The CPU the caller runs on.
fn here() -> usize {
    crate::smp::this_index()
}

impl Scheduler {
    /// An empty scheduler at tick 0, with CPU 0 online.
    pub const fn new() -> Self {
        Scheduler {
            entries: Vec::new(),
            known: 0,
            cpus: [RunQueue::EMPTY; MAX_CPUS],
            online: 1,
            sleepers: BTreeSet::new(),
            now: 0,
            clock_base: None,
            kicks: 0,
            wakeups: None,
            spare_wakeups: Vec::new(),
        }
    }

    /// CPU `cpu` takes threads from now on.
    pub fn set_online(&mut self, cpu: usize) {
        if cpu < MAX_CPUS {
            self.online |= 1 << cpu;
            self.cpus[cpu].last_tick = self.now;
        }
    }

    /// Number of CPUs that take threads.
    pub fn online_cpus(&self) -> usize {
        self.online.count_ones() as usize
    }

    /// Admits `tid` as a ready thread of `priority`, on the least loaded CPU.
    pub fn add(&mut self, tid: Tid, priority: Priority) -> Result<(), SchedError> {
        if self.entry(tid).is_some() {
            return Err(SchedError::AlreadyAdded(tid));
        }
        let i = tid.0 as usize;
        if i >= self.entries.len() {
            self.entries
                .try_reserve(i + 1 - self.entries.len())
                .map_err(|_| SchedError::OutOfMemory)?;
            self.entries.resize(i + 1, None);
        }
        self.entries[i] = Some(Entry {
            base: priority,
            level: priority,
            state: ThreadState::Ready,
            since: 0,
            wake_at: 0,
            woke: None,
            wake_pending: false,
            voluntary_switches: 0,
            involuntary_switches: 0,
            prev: NIL,
            next: NIL,
            cpu: here() as u8,
            affinity: ALL_CPUS,
        });
        self.known += 1;
        let cpu = self.least_loaded(ALL_CPUS, here());
        self.enqueue_on(cpu, tid);
        Ok(())
    }

    /// Puts the running thread (if any) back at the end of its base level and picks
    /// the first thread of the highest non-empty level, which becomes current with a
    /// fresh slice. Returns it, or `None` if nothing is ready.
    pub fn schedule(&mut self) -> Option<Tid> {
        self.schedule_on(here())
    }

    /// [`schedule`](Self::schedule) for CPU `cpu`. With nothing ready there, it
    /// takes a thread from the busiest CPU that may run it here.
    pub fn schedule_on(&mut self, cpu: usize) -> Option<Tid> {
        self.apply_wakeups();
        if let Some(cur) = self.cpus[cpu].current {
            self.set_current(cpu, None);
            self.requeue_after_run(cpu, cur);
        }
        let next = self.pop_highest(cpu).or_else(|| self.steal_for(cpu))?;
        if let Some(e) = self.entry_mut(next) {
            e.state = ThreadState::Running;
            e.cpu = cpu as u8;
        }
        self.set_current(cpu, Some(next));
        self.cpus[cpu].slice_left = SLICE_TICKS;
        Some(next)
    }

    /// The running thread gives up the CPU; returns the thread that runs next (it may
    /// be the same one if nothing else of its level or above is ready).
    pub fn yield_now(&mut self) -> Option<Tid> {
        self.schedule()
    }

    /// The running thread blocks; returns the thread that runs next. If a wake-up
    /// reached it since it last blocked, it does not block (it stays current).
    pub fn block_current(&mut self) -> Result<Option<Tid>, SchedError> {
        self.block_current_on(here())
    }

    /// [`block_current`](Self::block_current) for CPU `cpu`.
    pub fn block_current_on(&mut self, cpu: usize) -> Result<Option<Tid>, SchedError> {
        let cur = self.cpus[cpu].current.ok_or(SchedError::NoCurrentThread)?;
        if self.consume_pending_wake(cur) {
            return Ok(Some(cur));
        }
        self.set_current(cpu, None);
        if let Some(e) = self.entry_mut(cur) {
            e.state = ThreadState::Blocked;
            e.voluntary_switches += 1;
        }
        Ok(self.schedule_on(cpu))
    }

    /// The running thread sleeps until tick `wake_at` (or an earlier wake-up);
    /// returns the thread that runs next. Like [`block_current`](Self::block_current)
    /// it does not sleep if a wake-up is pending.
    pub fn sleep_current_until(&mut self, wake_at: u64) -> Result<Option<Tid>, SchedError> {
        let cpu = here();
        let cur = self.cpus[cpu].current.ok_or(SchedError::NoCurrentThread)?;
        if self.consume_pending_wake(cur) {
            return Ok(Some(cur));
        }
        if wake_at <= self.now {
            self.record_wake(cur, WakeReason::TimedOut);
            return Ok(Some(cur));
        }
        self.set_current(cpu, None);
        if let Some(e) = self.entry_mut(cur) {
            e.state = ThreadState::Sleeping;
            e.wake_at = wake_at;
            e.voluntary_switches += 1;
        }
        self.sleepers.insert((wake_at, cur));
        Ok(self.schedule_on(cpu))
    }

    /// Makes a blocked or sleeping thread ready again (at the back of its base level),
    /// with the reason [`WakeReason::Woken`].
    pub fn unblock(&mut self, tid: Tid) -> Result<(), SchedError> {
        self.wake(tid, WakeReason::Woken)
    }

    /// A signal for `tid`: if it waits, it becomes ready with the reason
    /// [`WakeReason::Interrupted`]; if it is about to wait, it will not.
    pub fn interrupt(&mut self, tid: Tid) {
        if self.wake(tid, WakeReason::Interrupted).is_err() {
            if let Some(e) = self.entry_mut(tid) {
                e.wake_pending = true;
                e.woke = Some(WakeReason::Interrupted);
                // Running on another CPU: interrupt it, so the signal is taken on
                // its way back to user mode.
                if e.state == ThreadState::Running {
                    let cpu = e.cpu as usize;
                    self.kick(cpu);
                }
            }
        }
    }

    /// Makes a waiting thread ready with `reason`.
    fn wake(&mut self, tid: Tid, reason: WakeReason) -> Result<(), SchedError> {
        let entry = self.entry(tid).ok_or(SchedError::UnknownThread(tid))?;
        match entry.state {
            ThreadState::Blocked => {}
            ThreadState::Sleeping => {
                self.sleepers.remove(&(entry.wake_at, tid));
            }
            _ => return Err(SchedError::NotWaiting(tid)),
        }
        self.record_wake(tid, reason);
        if let Some(e) = self.entry_mut(tid) {
            e.level = e.base;
            e.state = ThreadState::Ready;
        }
        let cpu = self.wake_cpu(tid);
        self.enqueue_on(cpu, tid);
        Ok(())
    }

    fn record_wake(&mut self, tid: Tid, reason: WakeReason) {
        if let Some(e) = self.entry_mut(tid) {
            e.woke = Some(reason);
        }
    }

    /// Whether a wake-up reached `tid` while it ran (and forgets it).
    fn consume_pending_wake(&mut self, tid: Tid) -> bool {
        let Some(e) = self.entry_mut(tid) else {
            return false;
        };
        core::mem::take(&mut e.wake_pending)
    }

    /// Why `tid` was last woken, taken (so the next wait starts with none).
    pub fn take_wake_reason(&mut self, tid: Tid) -> Option<WakeReason> {
        self.entry_mut(tid)?.woke.take()
    }

    /// Forgets a wake-up that reached `tid` while it was running: a new call starts
    /// from a clean slate.
    pub fn clear_pending_wake(&mut self, tid: Tid) {
        if let Some(e) = self.entry_mut(tid) {
            e.wake_pending = false;
            e.woke = None;
        }
    }

    /// How often `tid` blocked or slept, and how often it was preempted.
    pub fn switches(&self, tid: Tid) -> Option<(u64, u64)> {
        self.entry(tid)
            .map(|e| (e.voluntary_switches, e.involuntary_switches))
    }

    /// `tid` as wait queues know it: wake-ups for it go to this scheduler.
    pub fn waiter(&mut self, tid: Tid) -> Waiter {
        let list = self.wakeups.get_or_insert_with(Default::default).clone();
        Waiter::new(tid, list)
    }

    /// Makes ready every thread a wait queue woke since the last call (a thread that
    /// is not waiting remembers the wake-up). If some wake-ups were lost for want of
    /// memory, every blocked thread is woken: each re-checks what it waits for.
    pub fn apply_wakeups(&mut self) {
        let Some(list) = &self.wakeups else { return };
        let (mut tids, overflow) = list.exchange(core::mem::take(&mut self.spare_wakeups));
        for &tid in &tids {
            if self.wake(tid, WakeReason::Woken).is_err() {
                if let Some(e) = self.entry_mut(tid) {
                    e.wake_pending = true;
                }
            }
        }
        tids.clear();
        self.spare_wakeups = tids;
        if overflow {
            let blocked: Vec<Tid> = (0..self.entries.len() as u32)
                .map(Tid)
                .filter(|t| self.state(*t) == Some(ThreadState::Blocked))
                .collect();
            for tid in blocked {
                let _ = self.wake(tid, WakeReason::Woken);
            }
        }
    }

    /// Forgets `tid` in whatever state it is. If it was running, no thread is current
    /// on its CPU until that CPU's next [`schedule`](Self::schedule).
    pub fn remove(&mut self, tid: Tid) -> Result<(), SchedError> {
        let entry = self.entry(tid).ok_or(SchedError::UnknownThread(tid))?;
        match entry.state {
            ThreadState::Ready => self.unqueue(tid),
            ThreadState::Sleeping => {
                self.sleepers.remove(&(entry.wake_at, tid));
            }
            ThreadState::Running => {
                // Running elsewhere: that CPU must notice it is gone.
                self.set_current(entry.cpu as usize, None);
                self.kick(entry.cpu as usize);
            }
            ThreadState::Blocked | ThreadState::Exited => {}
        }
        self.entries[tid.0 as usize] = None;
        self.known -= 1;
        Ok(())
    }

    /// The CPUs `tid` may run on (a bit per CPU index).
    pub fn affinity(&self, tid: Tid) -> Option<u64> {
        self.entry(tid).map(|e| e.affinity)
    }

    /// Restricts `tid` to the CPUs of `mask` that are online (Linux's
    /// sched_setaffinity: EINVAL when none is). A queued thread moves at once; a
    /// running one moves at its CPU's next pick (which is asked to pick now).
    pub fn set_affinity(&mut self, tid: Tid, mask: u64) -> Result<(), SchedError> {
        let e = self.entry(tid).ok_or(SchedError::UnknownThread(tid))?;
        if mask & self.online == 0 {
            return Err(SchedError::NoAllowedCpu);
        }
        if let Some(e) = self.entry_mut(tid) {
            e.affinity = mask;
        }
        let on = e.cpu as usize;
        if mask & (1 << on) != 0 {
            return Ok(());
        }
        match e.state {
            ThreadState::Ready => {
                self.unqueue(tid);
                let cpu = self.wake_cpu(tid);
                self.enqueue_on(cpu, tid);
            }
            ThreadState::Running => self.kick(on),
            _ => {}
        }
        Ok(())
    }

    /// The CPU `tid` runs, is queued on, or last ran on.
    pub fn cpu_of(&self, tid: Tid) -> Option<usize> {
        self.entry(tid).map(|e| e.cpu as usize)
    }

    /// Accounts one timer tick on the calling CPU: wakes due sleepers, ages the
    /// oldest waiters and uses up the running thread's slice. Returns whether a
    /// reschedule is due.
    pub fn tick(&mut self) -> bool {
        self.advance_to(self.now + 1);
        self.due_on(here())
    }

    /// What the timer interrupt does: [`tick`](Self::tick), then
    /// [`schedule`](Self::schedule) if due. Returns the thread that should run now.
    pub fn timer_tick(&mut self) -> Option<Tid> {
        let due = self.tick();
        self.preempt_if(here(), due)
    }

    /// What the timer interrupt does when the clock says it is tick `clock` (its
    /// own count, from any origin): every tick since the last call is accounted
    /// (none if the interrupt came early), then [`schedule`](Self::schedule) if one
    /// of them asks. Returns the thread that should run now.
    pub fn timer_tick_at(&mut self, clock: u64) -> Option<Tid> {
        self.timer_tick_at_on(here(), clock)
    }

    /// [`timer_tick_at`](Self::timer_tick_at) as CPU `cpu`'s timer. The shared
    /// clock advances once, whichever CPU's timer sees the tick first; each CPU uses
    /// up its own thread's slice.
    pub fn timer_tick_at_on(&mut self, cpu: usize, clock: u64) -> Option<Tid> {
        let base = *self
            .clock_base
            .get_or_insert(clock.saturating_sub(self.now + 1));
        let target = clock.saturating_sub(base);
        self.advance_to(target);
        self.balance(cpu);
        let due = self.due_on(cpu);
        self.preempt_if(cpu, due)
    }

    /// What a CPU does when another asked it to look at its queues: pick again if
    /// it idles with work queued, a higher level is ready, a woken sleeper waits, or
    /// its thread may no longer run here. Returns the thread that should run now.
    pub fn reschedule_on(&mut self, cpu: usize) -> Option<Tid> {
        self.apply_wakeups();
        let rq = self.cpus[cpu];
        let due = match rq.current.and_then(|t| self.entry(t)) {
            Some(e) => {
                let ready = self.highest_ready(cpu);
                e.affinity & (1 << cpu) == 0
                    || ready > Some(e.level)
                    || (rq.sleeper_woke && ready >= Some(e.level))
            }
            None => rq.ready_mask != 0 || self.busiest_other(cpu).is_some(),
        };
        self.cpus[cpu].sleeper_woke = false;
        self.preempt_if(cpu, due)
    }

    /// Advances the shared clock to `target`, tick by tick: due sleepers wake,
    /// every CPU's oldest waiters age.
    fn advance_to(&mut self, target: u64) {
        while self.now < target {
            self.now += 1;
            self.apply_wakeups();
            self.wake_sleepers();
            for cpu in 0..MAX_CPUS {
                if self.online & (1 << cpu) != 0 {
                    self.age(cpu, Priority::Normal);
                    self.age(cpu, Priority::Low);
                }
            }
        }
    }

    /// Uses up CPU `cpu`'s slice for the ticks since it last looked; whether it
    /// should pick again.
    fn due_on(&mut self, cpu: usize) -> bool {
        let now = self.now;
        let rq = &mut self.cpus[cpu];
        let elapsed = now.saturating_sub(rq.last_tick);
        rq.last_tick = now;
        rq.slice_left = rq
            .slice_left
            .saturating_sub(elapsed.min(u64::from(u32::MAX)) as u32);
        let woke = core::mem::take(&mut rq.sleeper_woke);
        let rq = self.cpus[cpu];
        match rq.current.and_then(|t| self.entry(t)) {
            Some(e) => {
                let ready = self.highest_ready(cpu);
                rq.slice_left == 0
                    || ready > Some(e.level)
                    || (woke && ready >= Some(e.level))
                    || e.affinity & (1 << cpu) == 0
            }
            None => rq.ready_mask != 0,
        }
    }

    fn preempt_if(&mut self, cpu: usize, due: bool) -> Option<Tid> {
        if !due {
            return self.cpus[cpu].current;
        }
        if let Some(e) = self.cpus[cpu].current.and_then(|t| self.entry_mut(t)) {
            e.involuntary_switches += 1;
        }
        self.schedule_on(cpu)
    }

    /// The running thread of the calling CPU.
    pub fn current(&self) -> Option<Tid> {
        self.cpus[here()].current
    }

    /// Sets CPU `cpu`'s running thread, counting the change in that CPU's record
    /// (see [`current_changes`]).
    fn set_current(&mut self, cpu: usize, t: Option<Tid>) {
        self.cpus[cpu].current = t;
        if let Some(c) = crate::smp::cpu(cpu) {
            c.current_changes
                .fetch_add(1, core::sync::atomic::Ordering::Release);
        }
    }

    /// The running thread of CPU `cpu`.
    pub fn current_on(&self, cpu: usize) -> Option<Tid> {
        self.cpus.get(cpu).and_then(|rq| rq.current)
    }

    /// Ticks since creation.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The state of `tid`, if the scheduler knows it.
    pub fn state(&self, tid: Tid) -> Option<ThreadState> {
        self.entry(tid).map(|e| e.state)
    }

    /// The level `tid` is queued or running at (above its base while aged).
    pub fn effective_priority(&self, tid: Tid) -> Option<Priority> {
        self.entry(tid).map(|e| e.level)
    }

    /// Number of threads the scheduler knows.
    pub fn len(&self) -> usize {
        self.known
    }

    /// Whether the scheduler knows no thread.
    pub fn is_empty(&self) -> bool {
        self.known == 0
    }

    /// Threads ready or running on CPU `cpu`.
    pub fn load_on(&self, cpu: usize) -> usize {
        self.cpus.get(cpu).map_or(0, |rq| rq.load() as usize)
    }

    /// The CPUs given a thread by another CPU since the last call (a bit each).
    pub fn take_kicks(&mut self) -> u64 {
        core::mem::take(&mut self.kicks)
    }

    /// Checks the internal invariants (for tests and debug assertions): every ready
    /// thread sits in exactly one queue, at its level, on its CPU, with consistent
    /// links; nothing else is queued; the bitmaps and counts match the queues;
    /// sleepers are exactly the sleeping threads; each current thread is running.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut seen = BTreeSet::new();
        for (cpu, rq) in self.cpus.iter().enumerate() {
            let mut count = 0;
            for lvl in 0..LEVELS {
                let q = rq.queues[lvl];
                if (rq.ready_mask >> lvl) & 1 != u8::from(q.head != NIL) {
                    return Err("bitmap out of sync");
                }
                let (mut at, mut prev) = (q.head, NIL);
                while at != NIL {
                    let e = self.entry(Tid(at)).ok_or("unknown thread queued")?;
                    if !seen.insert(at)
                        || e.state != ThreadState::Ready
                        || e.level as usize != lvl
                        || e.cpu as usize != cpu
                    {
                        return Err("queued twice, not ready, or at the wrong level or CPU");
                    }
                    if e.prev != prev {
                        return Err("broken queue links");
                    }
                    (prev, at) = (at, e.next);
                    count += 1;
                }
                if q.tail != prev {
                    return Err("queue tail is not the last thread");
                }
            }
            if count != rq.ready {
                return Err("ready count out of sync");
            }
            match rq.current.map(|t| self.entry(t)) {
                Some(Some(e)) if e.state == ThreadState::Running && e.cpu as usize == cpu => {}
                None => {}
                _ => return Err("current thread is not running there"),
            }
        }
        let count = |state| {
            self.entries
                .iter()
                .flatten()
                .filter(|e| e.state == state)
                .count()
        };
        if count(ThreadState::Ready) != seen.len()
            || count(ThreadState::Sleeping) != self.sleepers.len()
        {
            return Err("ready or sleeping thread missing from its queue");
        }
        Ok(())
    }

    fn entry(&self, tid: Tid) -> Option<Entry> {
        self.entries.get(tid.0 as usize).copied().flatten()
    }

    fn entry_mut(&mut self, tid: Tid) -> Option<&mut Entry> {
        self.entries.get_mut(tid.0 as usize)?.as_mut()
    }

    /// The entry of a thread known to be linked in a queue.
    fn linked(&mut self, id: u32) -> Option<&mut Entry> {
        self.entries.get_mut(id as usize)?.as_mut()
    }

    /// Interrupts CPU `cpu` (not the caller's) so it looks at its queues.
    fn kick(&mut self, cpu: usize) {
        if cpu != here() {
            self.kicks |= 1 << cpu;
            crate::smp::kick(cpu);
        }
    }

    /// The allowed, online CPU with the fewest threads (`prefer` on a tie).
    fn least_loaded(&self, affinity: u64, prefer: usize) -> usize {
        let allowed = affinity & self.online;
        let mut best = prefer;
        let mut best_load = u32::MAX;
        if allowed & (1 << prefer) != 0 {
            best_load = self.cpus[prefer].load();
        }
        for cpu in 0..MAX_CPUS {
            if allowed & (1 << cpu) != 0 && self.cpus[cpu].load() < best_load {
                best = cpu;
                best_load = self.cpus[cpu].load();
            }
        }
        if allowed & (1 << best) == 0 {
            return allowed.trailing_zeros().min(MAX_CPUS as u32 - 1) as usize;
        }
        best
    }

    /// Where a thread that becomes ready goes: the CPU it last ran on if that one
    /// idles (its caches are warm), else an idle CPU it may use, else the last one
    /// (if allowed), else the least loaded.
    fn wake_cpu(&self, tid: Tid) -> usize {
        let Some(e) = self.entry(tid) else {
            return here();
        };
        let allowed = e.affinity & self.online;
        let last = e.cpu as usize;
        if allowed & (1 << last) != 0 && self.cpus[last].is_idle() {
            return last;
        }
        // Only the allowed CPUs are looked at (every wake-up asks: most threads
        // may run on few of the MAX_CPUS slots, which are mostly not online).
        let mut rest = allowed & ((1 << MAX_CPUS) - 1);
        while rest != 0 {
            let c = rest.trailing_zeros() as usize;
            if self.cpus[c].is_idle() {
                return c;
            }
            rest &= rest - 1;
        }
        if allowed & (1 << last) != 0 {
            return last;
        }
        self.least_loaded(e.affinity, here())
    }

    /// The running thread of `cpu` goes back in a queue after its turn: at its
    /// base level, here if it may still run here, else where it may.
    fn requeue_after_run(&mut self, cpu: usize, tid: Tid) {
        let Some(e) = self.entry_mut(tid) else { return };
        e.level = e.base;
        e.state = ThreadState::Ready;
        let allowed = e.affinity & (1 << cpu) != 0;
        let target = if allowed { cpu } else { self.wake_cpu(tid) };
        self.enqueue_on(target, tid);
    }

    /// Appends a thread (already marked ready, at its level) to CPU `cpu`'s queue;
    /// another CPU is interrupted to look.
    fn enqueue_on(&mut self, cpu: usize, tid: Tid) {
        let Some(lvl) = self.entry(tid).map(|e| e.level as usize) else {
            return;
        };
        let (now, tail) = (self.now, self.cpus[cpu].queues[lvl].tail);
        if let Some(e) = self.entry_mut(tid) {
            e.since = now;
            e.prev = tail;
            e.next = NIL;
            e.cpu = cpu as u8;
        }
        match self.linked(tail) {
            Some(t) => t.next = tid.0,
            None => self.cpus[cpu].queues[lvl].head = tid.0,
        }
        let rq = &mut self.cpus[cpu];
        rq.queues[lvl].tail = tid.0;
        rq.ready_mask |= 1 << lvl;
        rq.ready += 1;
        self.kick(cpu);
    }

    /// Unlinks a ready thread from its level's queue on its CPU. O(1).
    fn unqueue(&mut self, tid: Tid) {
        let Some(e) = self.entry(tid) else { return };
        let (lvl, cpu) = (e.level as usize, e.cpu as usize);
        match self.linked(e.prev) {
            Some(p) => p.next = e.next,
            None => self.cpus[cpu].queues[lvl].head = e.next,
        }
        match self.linked(e.next) {
            Some(n) => n.prev = e.prev,
            None => self.cpus[cpu].queues[lvl].tail = e.prev,
        }
        let rq = &mut self.cpus[cpu];
        if rq.queues[lvl].head == NIL {
            rq.ready_mask &= !(1 << lvl);
        }
        rq.ready -= 1;
    }

    fn highest_ready(&self, cpu: usize) -> Option<Priority> {
        match self.cpus[cpu].ready_mask {
            0 => None,
            m => Priority::from_level(7 - m.leading_zeros() as usize),
        }
    }

    fn pop_highest(&mut self, cpu: usize) -> Option<Tid> {
        let lvl = self.highest_ready(cpu)? as usize;
        let tid = Tid(self.cpus[cpu].queues[lvl].head);
        self.unqueue(tid);
        Some(tid)
    }

    /// The other online CPU with the most queued threads that `cpu` may take one of.
    fn busiest_other(&self, cpu: usize) -> Option<(usize, Tid)> {
        let mut best: Option<(usize, Tid)> = None;
        let mut most = 0;
        for other in (0..MAX_CPUS).filter(|&c| c != cpu && self.online & (1 << c) != 0) {
            let rq = &self.cpus[other];
            if rq.ready <= most {
                continue;
            }
            if let Some(tid) = self.first_movable(other, cpu) {
                best = Some((other, tid));
                most = rq.ready;
            }
        }
        best
    }

    /// The first queued thread of `from` (highest level first) that may run on `to`.
    fn first_movable(&self, from: usize, to: usize) -> Option<Tid> {
        for lvl in (0..LEVELS).rev() {
            let mut at = self.cpus[from].queues[lvl].head;
            while at != NIL {
                let e = self.entry(Tid(at))?;
                if e.affinity & (1 << to) != 0 {
                    return Some(Tid(at));
                }
                at = e.next;
            }
        }
        None
    }

    /// Takes a thread for the idle CPU `cpu` from the busiest other CPU.
    fn steal_for(&mut self, cpu: usize) -> Option<Tid> {
        let (_, tid) = self.busiest_other(cpu)?;
        self.unqueue(tid);
        Some(tid)
    }

    /// Periodic balance at CPU `cpu`'s tick: with at least two threads more queued
    /// elsewhere than here, one moves here.
    fn balance(&mut self, cpu: usize) {
        let Some((from, tid)) = self.busiest_other(cpu) else {
            return;
        };
        if self.cpus[from].ready < self.cpus[cpu].load() + 2 {
            return;
        }
        self.unqueue(tid);
        if let Some(e) = self.entry_mut(tid) {
            e.level = e.base;
        }
        self.enqueue_on(cpu, tid);
    }

    fn wake_sleepers(&mut self) {
        while let Some(&(at, tid)) = self.sleepers.first() {
            if at > self.now {
                break;
            }
            self.sleepers.pop_first();
            self.record_wake(tid, WakeReason::TimedOut);
            if let Some(e) = self.entry_mut(tid) {
                e.level = e.base;
                e.state = ThreadState::Ready;
            }
            let cpu = self.wake_cpu(tid);
            self.enqueue_front(cpu, tid);
            self.cpus[cpu].sleeper_woke = true;
        }
    }

    /// Puts a thread (already marked ready, at its level) first in CPU `cpu`'s queue.
    fn enqueue_front(&mut self, cpu: usize, tid: Tid) {
        let Some(lvl) = self.entry(tid).map(|e| e.level as usize) else {
            return;
        };
        let (now, head) = (self.now, self.cpus[cpu].queues[lvl].head);
        if let Some(e) = self.entry_mut(tid) {
            e.since = now;
            e.prev = NIL;
            e.next = head;
            e.cpu = cpu as u8;
        }
        match self.linked(head) {
            Some(h) => h.prev = tid.0,
            None => self.cpus[cpu].queues[lvl].tail = tid.0,
        }
        let rq = &mut self.cpus[cpu];
        rq.queues[lvl].head = tid.0;
        rq.ready_mask |= 1 << lvl;
        rq.ready += 1;
        self.kick(cpu);
    }

    /// Promotes the oldest waiter of `level` on CPU `cpu` one level up if it waited
    /// long enough.
    fn age(&mut self, cpu: usize, level: Priority) {
        let Some(up) = level.raised() else { return };
        let head = self.cpus[cpu].queues[level as usize].head;
        let Some(e) = self.entry(Tid(head)).filter(|_| head != NIL) else {
            return;
        };
        if self.now - e.since < AGING_TICKS {
            return;
        }
        self.unqueue(Tid(head));
        if let Some(e) = self.entry_mut(Tid(head)) {
            e.level = up;
        }
        self.enqueue_on(cpu, Tid(head));
    }
}

// ---- the global instance and the seed's free functions ----

/// The kernel's scheduler (every CPU's run queues).
pub static SCHEDULER: IrqMutex<Scheduler> = IrqMutex::new(Scheduler::new());

/// Resets the global scheduler: no threads, no current thread, tick 0.
pub fn init_scheduler() {
    let mut s = SCHEDULER.lock();
    let online = s.online;
    *s = Scheduler::new();
    s.online = online;
    // Every CPU's running thread is now none: a change as `current_changes` counts.
    for c in crate::smp::CPUS.iter() {
        c.current_changes
            .fetch_add(1, core::sync::atomic::Ordering::Release);
    }
}

/// Admits a thread created with [`create_thread`](super::create_thread), at the
/// priority it was created with.
pub fn add_thread(tid: Tid) -> Result<(), SchedError> {
    let priority = super::thread_priority(tid).ok_or(SchedError::UnknownThread(tid))?;
    SCHEDULER.lock().add(tid, priority)
}

/// Admits a thread that may only run on the CPUs of `mask` (it is never picked
/// elsewhere, not even once).
pub fn add_thread_pinned(tid: Tid, mask: u64) -> Result<(), SchedError> {
    let priority = super::thread_priority(tid).ok_or(SchedError::UnknownThread(tid))?;
    let mut s = SCHEDULER.lock();
    s.add(tid, priority)?;
    s.set_affinity(tid, mask)
}

/// Picks the thread to run now (the running one is requeued). See [`Scheduler::schedule`].
pub fn schedule() -> Option<Tid> {
    SCHEDULER.lock().schedule()
}

/// The running thread yields; returns the thread to run now.
pub fn yield_cpu() -> Option<Tid> {
    SCHEDULER.lock().yield_now()
}

/// The running thread blocks; returns the thread to run now.
pub fn block_current_thread() -> Result<Option<Tid>, SchedError> {
    SCHEDULER.lock().block_current()
}

/// The running thread sleeps for `ticks` timer ticks; returns the thread to run now.
pub fn sleep_current_thread(ticks: u64) -> Result<Option<Tid>, SchedError> {
    let mut s = SCHEDULER.lock();
    let wake_at = s.now().saturating_add(ticks);
    s.sleep_current_until(wake_at)
}

/// Wakes a blocked or sleeping thread.
pub fn unblock_thread(tid: Tid) -> Result<(), SchedError> {
    SCHEDULER.lock().unblock(tid)
}

/// Forgets a thread (it is terminating).
pub fn remove_thread(tid: Tid) -> Result<(), SchedError> {
    SCHEDULER.lock().remove(tid)
}

/// Accounts one tick; returns whether a reschedule is due.
pub fn tick() -> bool {
    SCHEDULER.lock().tick()
}

/// The running thread.
pub fn current() -> Option<Tid> {
    SCHEDULER.lock().current()
}

/// How many times the scheduler changed this CPU's running thread: while it reads
/// the same, [`current`] is what it was, and the caller need not take the lock to
/// ask (the way back from every system call).
pub fn current_changes() -> u64 {
    crate::smp::this()
        .current_changes
        .load(core::sync::atomic::Ordering::Acquire)
}

/// Heap bytes of the scheduler's per-thread entries: indexed by thread id, so they
/// grow with the highest id handed out (bounded by the id limit), not with the
/// threads alive (what a leak check of the heap leaves out).
pub fn entry_table_bytes() -> usize {
    SCHEDULER.lock().entries.capacity() * core::mem::size_of::<Option<Entry>>()
}

/// Ticks since [`init_scheduler`].
pub fn now() -> u64 {
    SCHEDULER.lock().now()
}

/// What the timer interrupt handler calls: `tick()`, and `schedule()` when the slice
/// is used up or a higher level is ready. Returns the thread that should run now; the
/// bare-metal handler switches to it if it differs from the one it interrupted.
pub fn timer_tick() -> Option<Tid> {
    SCHEDULER.lock().timer_tick()
}

/// [`timer_tick_at`], and the scheduler's tick count after it (one lock for both).
pub fn timer_tick_at_now(clock: u64) -> (Option<Tid>, u64) {
    let mut s = SCHEDULER.lock();
    let next = s.timer_tick_at(clock);
    (next, s.now())
}

/// Applies the wake-ups wait queues made, if there may be some (what a system call
/// that ran without the scheduler's lock does after waking a queue): the scheduler's
/// lock is taken only then.
pub fn apply_queued_wakeups() {
    if super::wait_queue::take_queued_hint() {
        SCHEDULER.lock().apply_wakeups();
    }
}

/// What the calling CPU does when another asked it to look at its queues (see
/// [`Scheduler::reschedule_on`]): returns the thread that should run now.
pub fn reschedule_here() -> Option<Tid> {
    SCHEDULER.lock().reschedule_on(here())
}

/// CPU `cpu` takes threads from now on.
pub fn cpu_online(cpu: usize) {
    SCHEDULER.lock().set_online(cpu);
}

/// [`timer_tick`] with the ticks the clock says have passed (see
/// [`Scheduler::timer_tick_at`]): what the bare-metal timer interrupt calls.
pub fn timer_tick_at(clock: u64) -> Option<Tid> {
    SCHEDULER.lock().timer_tick_at(clock)
}

#[cfg(test)]
mod tests;

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

/// Run queues and the running thread of one CPU.
///
/// Entries are indexed by thread id (ids are small: they come from one id space
/// bounded by the process table), so every lookup is O(1).
#[derive(Debug)]
pub struct Scheduler {
    entries: Vec<Option<Entry>>,
    known: usize,
    queues: [Queue; LEVELS],
    /// Bit `i` set iff `queues[i]` is not empty.
    ready_mask: u8,
    sleepers: BTreeSet<(u64, Tid)>,
    current: Option<Tid>,
    slice_left: u32,
    now: u64,
    /// The clock's tick count at this scheduler's tick 0 (learned at the first
    /// [`timer_tick_at`](Self::timer_tick_at)).
    clock_base: Option<u64>,
    /// A sleeper was woken at its deadline during this tick: reschedule.
    sleeper_woke: bool,
    /// Where wait queues leave the threads they wake (made on first use, since the
    /// global instance is built in a `const`).
    wakeups: Option<Arc<Wakeups>>,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler {
    /// An empty scheduler at tick 0.
    pub const fn new() -> Self {
        Scheduler {
            entries: Vec::new(),
            known: 0,
            queues: [Queue::EMPTY; LEVELS],
            ready_mask: 0,
            sleepers: BTreeSet::new(),
            current: None,
            slice_left: 0,
            now: 0,
            clock_base: None,
            sleeper_woke: false,
            wakeups: None,
        }
    }

    /// Admits `tid` as a ready thread of `priority`.
    pub fn add(&mut self, tid: Tid, priority: Priority) -> Result<(), SchedError> {
        if self.entry(tid).is_some() {
            return Err(SchedError::AlreadyAdded(tid));
        }
        let i = tid.0 as usize;
        if i >= self.entries.len() {
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
        });
        self.known += 1;
        self.enqueue(tid);
        Ok(())
    }

    /// Puts the running thread (if any) back at the end of its base level and picks
    /// the first thread of the highest non-empty level, which becomes current with a
    /// fresh slice. Returns it, or `None` if nothing is ready.
    pub fn schedule(&mut self) -> Option<Tid> {
        self.apply_wakeups();
        if let Some(cur) = self.current.take() {
            self.requeue_at_base(cur);
        }
        let next = self.pop_highest()?;
        if let Some(e) = self.entry_mut(next) {
            e.state = ThreadState::Running;
        }
        self.current = Some(next);
        self.slice_left = SLICE_TICKS;
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
        let cur = self.current.ok_or(SchedError::NoCurrentThread)?;
        if self.consume_pending_wake(cur) {
            return Ok(Some(cur));
        }
        self.current = None;
        if let Some(e) = self.entry_mut(cur) {
            e.state = ThreadState::Blocked;
            e.voluntary_switches += 1;
        }
        Ok(self.schedule())
    }

    /// The running thread sleeps until tick `wake_at` (or an earlier wake-up);
    /// returns the thread that runs next. Like [`block_current`](Self::block_current)
    /// it does not sleep if a wake-up is pending.
    pub fn sleep_current_until(&mut self, wake_at: u64) -> Result<Option<Tid>, SchedError> {
        let cur = self.current.ok_or(SchedError::NoCurrentThread)?;
        if self.consume_pending_wake(cur) {
            return Ok(Some(cur));
        }
        if wake_at <= self.now {
            self.record_wake(cur, WakeReason::TimedOut);
            return Ok(Some(cur));
        }
        self.current = None;
        if let Some(e) = self.entry_mut(cur) {
            e.state = ThreadState::Sleeping;
            e.wake_at = wake_at;
            e.voluntary_switches += 1;
        }
        self.sleepers.insert((wake_at, cur));
        Ok(self.schedule())
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
        self.requeue_at_base(tid);
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
        let (tids, overflow) = list.take();
        for tid in tids {
            if self.wake(tid, WakeReason::Woken).is_err() {
                if let Some(e) = self.entry_mut(tid) {
                    e.wake_pending = true;
                }
            }
        }
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
    /// until the next [`schedule`](Self::schedule).
    pub fn remove(&mut self, tid: Tid) -> Result<(), SchedError> {
        let entry = self.entry(tid).ok_or(SchedError::UnknownThread(tid))?;
        match entry.state {
            ThreadState::Ready => self.unqueue(tid),
            ThreadState::Sleeping => {
                self.sleepers.remove(&(entry.wake_at, tid));
            }
            ThreadState::Running => self.current = None,
            ThreadState::Blocked | ThreadState::Exited => {}
        }
        self.entries[tid.0 as usize] = None;
        self.known -= 1;
        Ok(())
    }

    /// Accounts one timer tick: wakes due sleepers, ages the oldest waiters and uses
    /// up the running thread's slice. Returns whether a reschedule is due.
    pub fn tick(&mut self) -> bool {
        self.now += 1;
        self.apply_wakeups();
        self.wake_sleepers();
        self.age(Priority::Normal);
        self.age(Priority::Low);
        self.slice_left = self.slice_left.saturating_sub(1);
        let woke = core::mem::take(&mut self.sleeper_woke);
        match self.current.and_then(|t| self.entry(t)) {
            Some(e) => {
                let ready = self.highest_ready();
                self.slice_left == 0 || ready > Some(e.level) || (woke && ready >= Some(e.level))
            }
            None => self.ready_mask != 0,
        }
    }

    /// What the timer interrupt does: [`tick`](Self::tick), then
    /// [`schedule`](Self::schedule) if due. Returns the thread that should run now.
    pub fn timer_tick(&mut self) -> Option<Tid> {
        let due = self.tick();
        self.preempt_if(due)
    }

    /// What the timer interrupt does when the clock says it is tick `clock` (its
    /// own count, from any origin): every tick since the last call is accounted
    /// (none if the interrupt came early), then [`schedule`](Self::schedule) if one
    /// of them asks. Returns the thread that should run now.
    pub fn timer_tick_at(&mut self, clock: u64) -> Option<Tid> {
        let base = *self
            .clock_base
            .get_or_insert(clock.saturating_sub(self.now + 1));
        let target = clock.saturating_sub(base);
        let mut due = false;
        while self.now < target {
            due |= self.tick();
        }
        self.preempt_if(due)
    }

    fn preempt_if(&mut self, due: bool) -> Option<Tid> {
        if !due {
            return self.current;
        }
        if let Some(e) = self.current.and_then(|t| self.entry_mut(t)) {
            e.involuntary_switches += 1;
        }
        self.schedule()
    }

    /// The running thread.
    pub fn current(&self) -> Option<Tid> {
        self.current
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

    /// Checks the internal invariants (for tests and debug assertions): every ready
    /// thread sits in exactly one queue, at its level, with consistent links; nothing
    /// else is queued; the bitmap matches the queues; sleepers are exactly the
    /// sleeping threads.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut seen = BTreeSet::new();
        for lvl in 0..LEVELS {
            let q = self.queues[lvl];
            if (self.ready_mask >> lvl) & 1 != u8::from(q.head != NIL) {
                return Err("bitmap out of sync");
            }
            let (mut at, mut prev) = (q.head, NIL);
            while at != NIL {
                let e = self.entry(Tid(at)).ok_or("unknown thread queued")?;
                if !seen.insert(at) || e.state != ThreadState::Ready || e.level as usize != lvl {
                    return Err("queued twice, not ready, or at the wrong level");
                }
                if e.prev != prev {
                    return Err("broken queue links");
                }
                (prev, at) = (at, e.next);
            }
            if q.tail != prev {
                return Err("queue tail is not the last thread");
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
        match self.current.map(|t| self.state(t)) {
            Some(Some(ThreadState::Running)) | None => Ok(()),
            _ => Err("current thread is not running"),
        }
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

    fn requeue_at_base(&mut self, tid: Tid) {
        if let Some(e) = self.entry_mut(tid) {
            e.level = e.base;
            e.state = ThreadState::Ready;
        }
        self.enqueue(tid);
    }

    /// Appends a thread (already marked ready, at its level) to its queue.
    fn enqueue(&mut self, tid: Tid) {
        let Some(lvl) = self.entry(tid).map(|e| e.level as usize) else {
            return;
        };
        let (now, tail) = (self.now, self.queues[lvl].tail);
        if let Some(e) = self.entry_mut(tid) {
            e.since = now;
            e.prev = tail;
            e.next = NIL;
        }
        match self.linked(tail) {
            Some(t) => t.next = tid.0,
            None => self.queues[lvl].head = tid.0,
        }
        self.queues[lvl].tail = tid.0;
        self.ready_mask |= 1 << lvl;
    }

    /// Unlinks a ready thread from its level's queue. O(1).
    fn unqueue(&mut self, tid: Tid) {
        let Some(e) = self.entry(tid) else { return };
        let lvl = e.level as usize;
        match self.linked(e.prev) {
            Some(p) => p.next = e.next,
            None => self.queues[lvl].head = e.next,
        }
        match self.linked(e.next) {
            Some(n) => n.prev = e.prev,
            None => self.queues[lvl].tail = e.prev,
        }
        if self.queues[lvl].head == NIL {
            self.ready_mask &= !(1 << lvl);
        }
    }

    fn highest_ready(&self) -> Option<Priority> {
        match self.ready_mask {
            0 => None,
            m => Priority::from_level(7 - m.leading_zeros() as usize),
        }
    }

    fn pop_highest(&mut self) -> Option<Tid> {
        let lvl = self.highest_ready()? as usize;
        let tid = Tid(self.queues[lvl].head);
        self.unqueue(tid);
        Some(tid)
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
            self.enqueue_front(tid);
            self.sleeper_woke = true;
        }
    }

    /// Puts a thread (already marked ready, at its level) first in its queue.
    fn enqueue_front(&mut self, tid: Tid) {
        let Some(lvl) = self.entry(tid).map(|e| e.level as usize) else {
            return;
        };
        let (now, head) = (self.now, self.queues[lvl].head);
        if let Some(e) = self.entry_mut(tid) {
            e.since = now;
            e.prev = NIL;
            e.next = head;
        }
        match self.linked(head) {
            Some(h) => h.prev = tid.0,
            None => self.queues[lvl].tail = tid.0,
        }
        self.queues[lvl].head = tid.0;
        self.ready_mask |= 1 << lvl;
    }

    /// Promotes the oldest waiter of `level` one level up if it waited long enough.
    fn age(&mut self, level: Priority) {
        let Some(up) = level.raised() else { return };
        let head = self.queues[level as usize].head;
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
        self.enqueue(Tid(head));
    }
}

// ---- the global instance and the seed's free functions ----

/// The kernel's scheduler (one CPU for now).
pub static SCHEDULER: IrqMutex<Scheduler> = IrqMutex::new(Scheduler::new());

/// Resets the global scheduler: no threads, no current thread, tick 0.
pub fn init_scheduler() {
    *SCHEDULER.lock() = Scheduler::new();
}

/// Admits a thread created with [`create_thread`](super::create_thread), at the
/// priority it was created with.
pub fn add_thread(tid: Tid) -> Result<(), SchedError> {
    let priority = super::thread_priority(tid).ok_or(SchedError::UnknownThread(tid))?;
    SCHEDULER.lock().add(tid, priority)
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

/// [`timer_tick`] with the ticks the clock says have passed (see
/// [`Scheduler::timer_tick_at`]): what the bare-metal timer interrupt calls.
pub fn timer_tick_at(clock: u64) -> Option<Tid> {
    SCHEDULER.lock().timer_tick_at(clock)
}

#[cfg(test)]
mod tests;

//! How a system call waits: the one mechanism every blocking call uses (pipes, poll
//! and select, wait4, the sleeps, pause and rt_sigsuspend).
//!
//! A call that cannot finish joins the wait queues of what it waits for
//! ([`Sys::wait_on`]), fixes its deadline the first time it waits
//! ([`Sys::deadline_in`]), and blocks ([`Sys::block`]), which answers
//! `ERESTARTSYS`: when the thread runs again the call is issued again and checks its
//! condition afresh. What must survive the re-issue (the deadline, the bytes a write
//! has moved, the queues joined) is the thread's [`CallWait`](crate::process::wait_queue::CallWait); [`end_call`] resets it
//! when the call ends, whatever ended it. The scheduler records why the thread woke
//! (woken, timed out, interrupted), and the task layer turns an interruption into
//! EINTR or a restart (`task::signal::interrupted`).
//!
//! ## Long calls, in pieces
//! A call runs with the tables locked and interrupts masked, so one that does much
//! work (a 32 MiB getrandom, MAP_POPULATE of a large mapping) would keep every other
//! thread and the timer waiting. Such a call works in bounded pieces
//! ([`PIECE_BYTES`], [`PIECE_PAGES`]): after each it records what it has done and
//! where it goes on ([`Sys::yield_piece`]) and answers `ERESTARTSYS` without
//! blocking. The task layer then lets the pending interrupts in
//! (`arch::interrupts::take_pending`: the timer ticks, a sleeper whose time came
//! preempts the caller in place) and issues the call again, which goes on from
//! there. A signal between pieces ends the call with what it has done, as Linux's
//! getrandom returns a short count (and an interrupted MAP_POPULATE returns the
//! mapping, the rest faulting in later), except in a call whose pieces must all run
//! ([`Sys::yield_piece_to_finish`]: munmap), which takes the signal when it is over.
//!
//! Locks: called with the process table and the scheduler held (as every call is);
//! joining a queue takes that queue's lock (a leaf).

use super::{Errno, Sys, ENOMEM, ERESTARTSYS};
use crate::memory::frame_allocator::FrameSource;
use crate::process::wait_queue::WaitQueue;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

/// How many pieces calls have ended ([`Sys::yield_piece`]) since boot.
static PIECES: AtomicU64 = AtomicU64::new(0);

/// How many pieces calls have ended since boot: when the count is the same after a
/// call answered `ERESTARTSYS` as before it, the call waited (no piece ended
/// anywhere meanwhile), and the task layer need not ask the table
/// ([`Sys::take_yielded`]) which of the two it was.
pub fn pieces_yielded() -> u64 {
    PIECES.load(Ordering::Relaxed)
}

/// Bytes a long copy into user memory (getrandom) moves in one piece.
pub const PIECE_BYTES: usize = 64 * 1024;
/// Pages MAP_POPULATE faults in per piece.
pub const PIECE_PAGES: u64 = 64;

impl<A: FrameSource + Clone> Sys<'_, A> {
    /// Puts the caller on `queue` until its call ends (ENOMEM if the kernel heap
    /// cannot hold one more waiter).
    pub fn wait_on(&mut self, queue: &Arc<WaitQueue>) -> Result<(), Errno> {
        let waiter = self.sched.waiter(self.tid);
        let t = self.table.thread_mut(self.tid).ok_or(super::ESRCH)?;
        t.call.queues.join(queue, &waiter).map_err(|_| ENOMEM)
    }

    /// Runs `attempt` until it answers: when it has no answer yet (`Ok(None)`), the
    /// caller joins `queue`, attempts once more (so a change between the first try
    /// and the join is not missed) and blocks. The pattern of every single-queue
    /// wait (a pipe read, wait4).
    pub fn wait_until(
        &mut self,
        queue: impl Fn(&mut Self) -> Result<Arc<WaitQueue>, Errno>,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<usize>, Errno>,
    ) -> Result<usize, Errno> {
        if let Some(done) = attempt(self)? {
            return Ok(done);
        }
        let q = queue(self)?;
        self.wait_on(&q)?;
        match attempt(self)? {
            Some(done) => Ok(done),
            None => self.block(),
        }
    }

    /// The tick at which this call times out: fixed `ticks` from now the first time
    /// the call asks, the same tick when it is re-issued.
    pub fn deadline_in(&mut self, ticks: u64) -> u64 {
        let now = self.sched.now();
        match self.table.thread_mut(self.tid) {
            Some(t) => *t.call.deadline.get_or_insert(now.saturating_add(ticks)),
            None => now.saturating_add(ticks),
        }
    }

    /// Whether the call's deadline, if it has one, has passed.
    pub fn timed_out(&self) -> bool {
        let deadline = self.table.thread(self.tid).and_then(|t| t.call.deadline);
        deadline.is_some_and(|d| d <= self.sched.now())
    }

    /// The deadline a sleep call `num` (nanosleep, clock_nanosleep) keeps when it
    /// is made again from user mode after a stop (see [`Self::restore_deadline`]).
    pub fn kept_deadline(&self, num: usize, _a: [usize; 6]) -> Option<u64> {
        let sleeps = matches!(num, super::SYS_NANOSLEEP | super::SYS_CLOCK_NANOSLEEP);
        let t = self.table.thread(self.tid)?;
        t.call.deadline.filter(|_| sleeps)
    }

    /// Gives the next call the deadline `kept` (a sleep restarted after a stop
    /// sleeps only what is left; delivering a handler forgets it).
    pub fn restore_deadline(&mut self, kept: Option<u64>) {
        if let Some(t) = self.table.thread_mut(self.tid) {
            t.call.deadline = kept;
        }
    }

    /// Whether the call has blocked before (this is a re-issue).
    pub fn has_waited(&self) -> bool {
        self.table.thread(self.tid).is_some_and(|t| t.call.waited)
    }

    /// What the call has done before it last waited (bytes a write has moved).
    pub fn progress(&self) -> usize {
        self.table.thread(self.tid).map_or(0, |t| t.call.done)
    }

    /// Records what the call has done, so a re-issue goes on from there.
    pub fn set_progress(&mut self, done: usize) {
        if let Some(t) = self.table.thread_mut(self.tid) {
            t.call.done = done;
        }
    }

    /// Where the caller's call cut into pieces goes on from (0: the first piece).
    pub fn resume_at(&self) -> u64 {
        self.table.thread(self.tid).map_or(0, |t| t.call.resume_at)
    }

    /// Ends one piece of a long call (see the module docs): `done` is what the
    /// call answers if a signal ends it now (not 0), `resume_at` where the next
    /// piece starts. The answer is `ERESTARTSYS`; the caller stays running.
    pub fn yield_piece(&mut self, done: usize, resume_at: u64) -> Result<usize, Errno> {
        self.set_progress(done);
        if let Some(t) = self.table.thread_mut(self.tid) {
            t.call.resume_at = resume_at;
            t.call.yielded = true;
        }
        PIECES.fetch_add(1, Ordering::Relaxed);
        Err(ERESTARTSYS)
    }

    /// Ends one piece of a long call that a signal must not cut short (munmap):
    /// like [`yield_piece`](Self::yield_piece), but every piece runs, and the call
    /// goes on from `resume_at`.
    pub fn yield_piece_to_finish(&mut self, resume_at: u64) -> Result<usize, Errno> {
        if let Some(t) = self.table.thread_mut(self.tid) {
            t.call.finish = true;
        }
        self.yield_piece(0, resume_at)
    }

    /// Whether the call's last answer ended a piece ([`yield_piece`](Self::yield_piece))
    /// rather than a wait (and forgets it).
    pub fn take_yielded(&mut self) -> bool {
        self.table
            .thread_mut(self.tid)
            .is_some_and(|t| core::mem::take(&mut t.call.yielded))
    }

    /// Blocks the caller until a queue it joined wakes it, a signal interrupts it,
    /// or its deadline (if [`deadline_in`](Self::deadline_in) set one) passes. The
    /// answer is `ERESTARTSYS`: the call is issued again when the thread runs.
    pub fn block(&mut self) -> Result<usize, Errno> {
        self.caller_must_be_current()?;
        let (t, p) = self
            .table
            .thread_and_process_mut(self.tid)
            .ok_or(super::ESRCH)?;
        let shared = p.shared_pending.set();
        t.call.waited = true;
        // Linux's signal_pending() check before an interruptible sleep: a signal the
        // thread can take now ends the wait before it begins, as if it had woken it
        // (sigsuspend after the new mask unblocked a pending signal; a signal that
        // came while it was blocked and is unblocked now). A vfork parent's wait and
        // a call that must finish its pieces are not ended by signals.
        if t.deliverable(shared) != 0 && t.call.vfork_child.is_none() && !t.call.finish {
            return Err(ERESTARTSYS);
        }
        let deadline = t.call.deadline;
        match deadline {
            Some(at) => self.sched.sleep_current_until(at)?,
            None => self.sched.block_current()?,
        };
        Err(ERESTARTSYS)
    }
}

/// What a call that a signal handler interrupted answers when that is not plain
/// EINTR (or, under SA_RESTART, a restart): a write that moved bytes returns their
/// count, a relative sleep writes the time left and fails with EINTR. `None`: the
/// generic answer applies.
pub fn interrupted_answer<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    num: usize,
    a: [usize; 6],
) -> Option<Result<usize, Errno>> {
    let done = sys.progress();
    match num {
        _ if done > 0 => Some(Ok(done)),
        super::SYS_NANOSLEEP => Some(super::time::interrupted_sleep(sys, a[1])),
        super::SYS_CLOCK_NANOSLEEP if a[1] & super::time::TIMER_ABSTIME == 0 => {
            Some(super::time::interrupted_sleep(sys, a[3]))
        }
        _ => None,
    }
}

/// The caller's call has ended, whatever ended it: it leaves every queue it joined,
/// its deadline and progress are forgotten, and so is a wake-up that came too late
/// to matter.
pub fn end_call<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) {
    // A fork copy the call staged and did not give a child goes with it.
    let staged = sys.table.thread_mut(sys.tid).and_then(|t| {
        t.call.clear();
        t.call.forked_space.take()
    });
    if staged.is_some() {
        sys.table.drop_unused_space(staged);
    }
    sys.table.futexes.forget(sys.tid);
    sys.sched.clear_pending_wake(sys.tid);
}

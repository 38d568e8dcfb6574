//! Wait queues: how a thread blocks until a condition may hold, and how whoever
//! changes the condition wakes it.
//!
//! ## The model
//! A system call that must wait (a read of an empty pipe, poll, wait4, a sleep)
//! registers its thread on the [`WaitQueue`] of each thing it waits for, blocks in
//! the scheduler (with a deadline if it has a timeout) and asks to be re-issued. When
//! the thread runs again the call is issued again and checks its condition afresh, so
//! a spurious wake-up costs one check and never a wrong answer. The thread stays on
//! its queues until the call ends (its end clears the [`Registrations`] in place,
//! [`CallWait::clear`]), as Linux's `poll_freewait` takes a poller off every queue
//! it joined.
//!
//! Each wake-up has a recorded [`WakeReason`]: a queue woke it, its deadline passed,
//! or a signal interrupted it. The scheduler keeps the reason until the thread takes
//! it.
//!
//! ## Waking without the scheduler's lock
//! [`WaitQueue::wake_all`] may run where the scheduler is already locked (inside a
//! system call) or where it is not (a pipe end dropped by an exit). So it does not
//! touch the scheduler: it moves the waiters' ids to their scheduler's [`Wakeups`]
//! list, which the scheduler applies before it next picks a thread and at the end of
//! every system call (Linux's remote wake-up list, `ttwu_queue`, in miniature). The
//! woken thread is therefore ready before the waker returns to user mode. A wake-up
//! that reaches a thread still running (it registered but has not blocked yet) is
//! remembered, and its next block returns at once, so no wake-up is lost.
//!
//! ## Locks
//! A queue's lock, then a wake-up list's lock; both are leaves (nothing else is taken
//! under them). The scheduler takes its wake-up list's lock under its own.

use super::Tid;
use crate::sync::IrqMutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

/// Why a blocked thread became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    /// A wait queue it was on was woken (or a thread unblocked it directly).
    Woken,
    /// The deadline it slept until passed.
    TimedOut,
    /// A signal it does not block was sent to it.
    Interrupted,
}

/// The wake-ups waiting to be applied by one scheduler.
#[derive(Debug, Default)]
pub struct Wakeups {
    tids: IrqMutex<Vec<Tid>>,
    /// A wake-up could not be recorded (no memory): wake every blocked thread (each
    /// re-checks its condition, so that is only slower).
    overflow: AtomicBool,
    /// Whether `tids` may be non-empty (read without the lock on the fast path).
    queued: AtomicBool,
}

/// Whether some wake-up list may have wake-ups not yet applied: a hint, read without
/// a lock, for the system calls that run without the scheduler's lock (they apply
/// the wake-ups they made only when there may be some).
static ANY_QUEUED: AtomicBool = AtomicBool::new(false);

/// Whether a wake-up may wait to be applied (see [`ANY_QUEUED`]); clears the hint.
pub fn take_queued_hint() -> bool {
    ANY_QUEUED.load(Ordering::Relaxed) && ANY_QUEUED.swap(false, Ordering::AcqRel)
}

impl Wakeups {
    /// Queues `tid` to be made ready.
    fn push(&self, tid: Tid) {
        let mut tids = self.tids.lock();
        if tids.try_reserve(1).is_ok() {
            tids.push(tid);
        } else {
            self.overflow.store(true, Ordering::Relaxed);
        }
        self.queued.store(true, Ordering::Release);
        ANY_QUEUED.store(true, Ordering::Release);
    }

    /// Takes the queued wake-ups in exchange for `spare`, an empty list whose memory
    /// the next wake-ups reuse (so none is allocated for each, and no second lock
    /// hands the spent one back): the thread ids, and whether some were lost (then
    /// every blocked thread must be woken). Nothing queued: `spare` comes back.
    pub fn exchange(&self, spare: Vec<Tid>) -> (Vec<Tid>, bool) {
        // A plain load first: the common case (nothing queued) writes nothing.
        if !self.queued.load(Ordering::Relaxed) || !self.queued.swap(false, Ordering::Acquire) {
            return (spare, false);
        }
        let tids = core::mem::replace(&mut *self.tids.lock(), spare);
        (tids, self.overflow.swap(false, Ordering::Relaxed))
    }

    /// [`exchange`](Self::exchange) without a spare list (the next wake-up
    /// allocates one).
    pub fn take(&self) -> (Vec<Tid>, bool) {
        self.exchange(Vec::new())
    }
}

/// A thread as a queue knows it: its id and where its wake-ups go.
#[derive(Debug, Clone)]
pub struct Waiter {
    tid: Tid,
    wakeups: Arc<Wakeups>,
}

impl Waiter {
    /// `tid`, whose wake-ups go to `wakeups` (its scheduler's list).
    pub fn new(tid: Tid, wakeups: Arc<Wakeups>) -> Self {
        Waiter { tid, wakeups }
    }

    /// The waiting thread.
    pub fn tid(&self) -> Tid {
        self.tid
    }
}

/// The threads waiting for one condition (a pipe to become readable, a child to
/// exit).
#[derive(Debug, Default)]
pub struct WaitQueue {
    waiters: IrqMutex<Vec<Waiter>>,
}

/// The queue could not take one more waiter (the kernel heap is full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        WaitQueue {
            waiters: IrqMutex::new(Vec::new()),
        }
    }

    /// Adds `w` (once: a thread already on the queue stays there once).
    pub fn add(&self, w: &Waiter) -> Result<(), QueueFull> {
        let mut waiters = self.waiters.lock();
        if waiters.iter().any(|x| x.tid == w.tid) {
            return Ok(());
        }
        waiters.try_reserve(1).map_err(|_| QueueFull)?;
        waiters.push(w.clone());
        Ok(())
    }

    /// Takes `tid` off the queue.
    pub fn remove(&self, tid: Tid) {
        self.waiters.lock().retain(|w| w.tid != tid);
    }

    /// Wakes every waiter (they stay on the queue until their call ends); returns how
    /// many there were.
    pub fn wake_all(&self) -> usize {
        let waiters = self.waiters.lock();
        for w in waiters.iter() {
            w.wakeups.push(w.tid);
        }
        waiters.len()
    }

    /// How many threads wait.
    pub fn len(&self) -> usize {
        self.waiters.lock().len()
    }

    /// Whether no thread waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The queues one thread joined during its current call; dropping it takes the
/// thread off all of them.
///
/// The first queue is kept apart from the rest: most calls wait on one (a pipe, a
/// child), and a list for it would be allocated and freed on every wait.
#[derive(Debug, Default)]
pub struct Registrations {
    tid: Option<Tid>,
    first: Option<Arc<WaitQueue>>,
    more: Vec<Arc<WaitQueue>>,
}

impl Registrations {
    /// Puts `w` on `queue` and remembers it.
    pub fn join(&mut self, queue: &Arc<WaitQueue>, w: &Waiter) -> Result<(), QueueFull> {
        if self.queues().any(|q| Arc::ptr_eq(q, queue)) {
            return Ok(());
        }
        if self.first.is_some() {
            self.more.try_reserve(1).map_err(|_| QueueFull)?;
        }
        queue.add(w)?;
        self.tid = Some(w.tid);
        match self.first {
            None => self.first = Some(queue.clone()),
            Some(_) => self.more.push(queue.clone()),
        }
        Ok(())
    }

    fn queues(&self) -> impl Iterator<Item = &Arc<WaitQueue>> {
        self.first.iter().chain(self.more.iter())
    }

    /// How many queues it is on.
    pub fn len(&self) -> usize {
        self.queues().count()
    }

    /// Whether it is on no queue.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl Registrations {
    /// Takes the thread off every queue it joined, keeping the list's memory.
    pub fn clear(&mut self) {
        if let Some(tid) = self.tid.take() {
            for q in self.queues() {
                q.remove(tid);
            }
        }
        self.first = None;
        self.more.clear();
    }
}

impl Drop for Registrations {
    fn drop(&mut self) {
        self.clear();
    }
}

/// What a thread's current system call keeps while it waits and is re-issued; reset
/// (and the thread taken off its queues) when the call ends.
#[derive(Debug, Default)]
pub struct CallWait {
    /// Tick at which the call's timeout expires, fixed when it first waits.
    pub deadline: Option<u64>,
    /// What it has done so far: the bytes a blocking write has moved.
    pub done: usize,
    /// Where a call cut into pieces goes on from (MAP_POPULATE: the next page).
    pub resume_at: u64,
    /// It ended a piece without blocking: issue it again once interrupts were let in.
    pub yielded: bool,
    /// Its pieces run to the end whatever signal comes (munmap, execve: Linux
    /// finishes them too); a signal is taken once the call is over.
    pub finish: bool,
    /// Whether it has blocked at least once (it is being re-issued).
    pub waited: bool,
    /// Signals it waits for although the thread blocks them (rt_sigtimedwait): one
    /// sent wakes it.
    pub signals: u64,
    /// The queues it is on.
    pub queues: Registrations,
    /// For vfork (and clone with CLONE_VFORK): the child it waits for, made by the
    /// first issue of the call; the re-issued call returns its pid once the child
    /// has let the parent go.
    pub vfork_child: Option<Tid>,
    /// For fork (and clone without `CLONE_VM`): the copy of the caller's memory
    /// made before the call took the process table (so that other CPUs need not
    /// wait for the copy), as the id of its slot among the table's spaces; the
    /// call gives it to the child, or the caller destroys it if the call failed.
    pub forked_space: Option<u64>,
    /// What the call took before it waited and keeps until it ends (a FIFO's open
    /// holds the end it made, so it counts as a reader or writer while it waits
    /// for its partner, as on Linux); dropped with the call.
    pub held: Option<alloc::boxed::Box<dyn core::any::Any + Send>>,
}

impl CallWait {
    /// Ends the call: back to the state of a thread in no call (as `default()`),
    /// off every queue, what it held dropped. In place: a `mem::take` copied the
    /// whole record out and a fresh one in, on every call that waited.
    pub fn clear(&mut self) {
        self.queues.clear();
        self.held = None;
        self.deadline = None;
        self.done = 0;
        self.resume_at = 0;
        self.yielded = false;
        self.finish = false;
        self.waited = false;
        self.signals = 0;
        self.vfork_child = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_all_hands_every_waiter_to_its_list_once() {
        let list = Arc::new(Wakeups::default());
        let q = Arc::new(WaitQueue::new());
        let (a, b) = (
            Waiter::new(Tid(1), list.clone()),
            Waiter::new(Tid(2), list.clone()),
        );
        let mut ra = Registrations::default();
        ra.join(&q, &a).unwrap();
        ra.join(&q, &a).unwrap();
        q.add(&b).unwrap();
        assert_eq!(q.len(), 2, "a thread joins a queue once");
        assert_eq!(q.wake_all(), 2);
        assert_eq!(list.take(), (alloc::vec![Tid(1), Tid(2)], false));
        assert_eq!(list.take(), (Vec::new(), false), "taken once");
        drop(ra);
        assert_eq!(q.len(), 1, "dropping the registrations leaves the queue");
        q.remove(Tid(2));
        assert!(q.is_empty());
        let mut call = CallWait::default();
        call.queues.join(&q, &a).unwrap();
        (call.deadline, call.done, call.waited, call.signals) = (Some(9), 3, true, 4);
        call.vfork_child = Some(Tid(7));
        call.held = Some(alloc::boxed::Box::new(5u8));
        call.clear();
        assert_eq!(q.len(), 0, "a cleared call leaves its queues");
        assert!(call.queues.is_empty());
        let fresh = CallWait::default();
        assert_eq!(
            format!("{call:?}"),
            format!("{fresh:?}"),
            "cleared is as new"
        );
        call.queues.join(&q, &b).unwrap();
        assert_eq!(q.len(), 1, "and may join again");
        drop(call);
        assert!(q.is_empty());
        assert_eq!(q.wake_all(), 0);
        assert_eq!(list.take().0, Vec::new());
    }
}

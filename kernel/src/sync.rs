//! Locks. [`IrqMutex`] is a spinlock that also masks interrupts while held, so a lock
//! shared with an interrupt handler (the scheduler's, the frame allocator's) cannot
//! deadlock against the handler on the same CPU. On the host it is a plain spinlock.
//!
//! It is a *ticket* lock: CPUs get the lock in the order they asked for it. With a
//! plain test-and-set lock, a CPU that drops a lock and takes it again at once (a
//! long system call between two of its pieces) starved the others: another CPU's
//! timer tick waited seconds for the scheduler's lock.
//!
//! A CPU waiting for one serves the other CPUs' requests (TLB shootdowns) meanwhile:
//! the holder may be waiting for that CPU's flush, which its masked interrupts would
//! never let in.

use crate::arch;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

/// A fair spinlock that disables interrupts while it is held.
pub struct IrqMutex<T> {
    /// The next ticket to hand out.
    next: AtomicU32,
    /// The ticket whose holder may enter.
    serving: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and at most one guard exists
// at a time (the ticket protocol), so sharing the lock shares `T` as a mutex does.
unsafe impl<T: Send> Sync for IrqMutex<T> {}
// SAFETY: moving the lock moves the value.
unsafe impl<T: Send> Send for IrqMutex<T> {}

/// Guard of an [`IrqMutex`]; interrupts come back (if they were on) when it drops.
pub struct IrqMutexGuard<'a, T> {
    lock: &'a IrqMutex<T>,
    saved: arch::interrupts::IrqState,
}

/// Shows only that it is a lock: reading the value would mean taking it (a `Debug`
/// print of a structure holding a locked mutex must not deadlock).
impl<T> core::fmt::Debug for IrqMutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IrqMutex { .. }")
    }
}

impl<T: Default> Default for IrqMutex<T> {
    fn default() -> Self {
        IrqMutex::new(T::default())
    }
}

impl<T> IrqMutex<T> {
    /// A new unlocked mutex.
    pub const fn new(value: T) -> Self {
        IrqMutex {
            next: AtomicU32::new(0),
            serving: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    /// Masks interrupts, then takes the lock (in turn), serving other CPUs'
    /// requests while it waits.
    // Inlined: the uncontended path is a handful of instructions, and taking a lock
    // is on every system call's path several times.
    #[inline]
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let saved = arch::interrupts::save_and_disable();
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        if self.serving.load(Ordering::Acquire) != ticket {
            wait_for_turn(&self.serving, ticket);
        }
        IrqMutexGuard { lock: self, saved }
    }

    /// Takes the lock if it is free (nobody holds it or waits for it).
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let saved = arch::interrupts::save_and_disable();
        let serving = self.serving.load(Ordering::Relaxed);
        match self.next.compare_exchange(
            serving,
            serving.wrapping_add(1),
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => Some(IrqMutexGuard { lock: self, saved }),
            Err(_) => {
                arch::interrupts::restore(saved);
                None
            }
        }
    }

    /// Whether someone holds the lock.
    pub fn is_locked(&self) -> bool {
        self.next.load(Ordering::Relaxed) != self.serving.load(Ordering::Relaxed)
    }
}

/// Spins until `serving` reaches `ticket`, serving other CPUs' requests meanwhile.
/// Out of line and cold, so that the uncontended path of [`IrqMutex::lock`] saves no
/// registers for it (it inlined made every lock push and pop six of them).
#[cold]
#[inline(never)]
fn wait_for_turn(serving: &AtomicU32, ticket: u32) {
    while serving.load(Ordering::Acquire) != ticket {
        crate::smp::serve_requests();
        core::hint::spin_loop();
    }
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (ticket protocol) while it lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for IrqMutexGuard<'_, T> {
    fn drop(&mut self) {
        // Release the lock *before* interrupts come back, so a handler that runs
        // right after the restore finds it free.
        self.lock.serving.fetch_add(1, Ordering::Release);
        arch::interrupts::restore(self.saved);
    }
}

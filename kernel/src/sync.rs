//! Locks. [`IrqMutex`] is a spinlock that also masks interrupts while held, so a lock
//! shared with an interrupt handler (the scheduler's, the frame allocator's) cannot
//! deadlock against the handler on the same CPU. On the host it is a plain spinlock.
//!
//! ## Who gets it: first come is not first served
//! It is a test-and-set lock whose long waiters claim it. Any waiter may take the lock
//! when it is free, except while a waiter that has already spun [`PATIENCE`] turns
//! holds the *claim*: then only that one may, so no waiter starves (a CPU that drops
//! a lock and takes it again at once, a long system call between two of its pieces,
//! starved the others of a plain test-and-set lock: another CPU's timer tick waited
//! seconds for the scheduler's lock).
//!
//! It was a ticket lock (strict FIFO) until it met more vCPUs than host cores: the
//! next ticket's vCPU is often one the host has descheduled, and every CPU behind it
//! waits for the host to run that one, at every hand-over. With 4 vCPUs on 2 cores a
//! fork bomb made no progress in 2 minutes. Linux uses a test-and-set lock in guests
//! without paravirtual spinlocks for the same reason (`virt_spin_lock`).
//!
//! A CPU waiting for one serves the other CPUs' requests (TLB shootdowns) meanwhile:
//! the holder may be waiting for that CPU's flush, which its masked interrupts would
//! never let in.

use crate::arch;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

/// Turns a waiter spins before it claims the lock.
pub const PATIENCE: u32 = 1 << 12;

/// A spinlock that disables interrupts while it is held; no waiter starves.
pub struct IrqMutex<T> {
    /// Whether someone holds it.
    locked: AtomicBool,
    /// Whether a waiter that ran out of [`PATIENCE`] has claimed it (it alone may
    /// take the lock next).
    claimed: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and at most one guard exists
// at a time (`locked` is set by one CPU at a time), so sharing the lock shares `T`
// as a mutex does.
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
            locked: AtomicBool::new(false),
            claimed: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Sets `locked` if it is clear.
    fn acquire(&self) -> bool {
        !self.locked.load(Ordering::Relaxed)
            && self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Masks interrupts, then takes the lock, serving other CPUs' requests while it
    /// waits; after [`PATIENCE`] turns it claims the lock (see the module docs).
    // Inlined, the waiting out of line: the uncontended path is a handful of
    // instructions, and taking a lock is on every system call's path several times.
    #[inline]
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let saved = arch::interrupts::save_and_disable();
        if self.claimed.load(Ordering::Relaxed) || !self.acquire() {
            self.wait();
        }
        IrqMutexGuard { lock: self, saved }
    }

    /// Spins until it takes the lock (see [`lock`](Self::lock)). Cold and out of
    /// line, so that the uncontended path saves no registers for it (inlined, it
    /// made every lock push and pop six of them).
    #[cold]
    #[inline(never)]
    fn wait(&self) {
        let mut turns = 0u32;
        let mut claiming = false;
        loop {
            if (claiming || !self.claimed.load(Ordering::Relaxed)) && self.acquire() {
                break;
            }
            crate::smp::serve_requests();
            core::hint::spin_loop();
            turns = turns.saturating_add(1);
            if !claiming && turns >= PATIENCE {
                claiming = self
                    .claimed
                    .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok();
            }
        }
        if claiming {
            self.claimed.store(false, Ordering::Relaxed);
        }
    }

    /// Takes the lock if it is free and not claimed.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let saved = arch::interrupts::save_and_disable();
        if !self.claimed.load(Ordering::Relaxed)
            && self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Some(IrqMutexGuard { lock: self, saved });
        }
        arch::interrupts::restore(saved);
        None
    }

    /// Whether someone holds the lock.
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (`locked` was set for it) while it lives.
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
        self.lock.locked.store(false, Ordering::Release);
        arch::interrupts::restore(self.saved);
    }
}

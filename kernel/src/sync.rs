//! Locks. [`IrqMutex`] is a spinlock that also masks interrupts while held, so a lock
//! shared with an interrupt handler (the scheduler's, the frame allocator's) cannot
//! deadlock against the handler on the same CPU. On the host it is a plain spinlock.
//! A CPU waiting for one serves the other CPUs' requests (TLB shootdowns) meanwhile.

use crate::arch;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};

/// A spinlock that disables interrupts while it is held.
pub struct IrqMutex<T> {
    inner: spin::Mutex<T>,
}

/// Guard of an [`IrqMutex`]; interrupts come back (if they were on) when it drops.
pub struct IrqMutexGuard<'a, T> {
    guard: ManuallyDrop<spin::MutexGuard<'a, T>>,
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
            inner: spin::Mutex::new(value),
        }
    }

    /// Masks interrupts, then takes the lock. While it waits, the CPU carries out
    /// what other CPUs ask of it (`smp::serve_requests`): the holder may be waiting
    /// for this CPU's TLB flush, which its masked interrupts would never let in.
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let saved = arch::interrupts::save_and_disable();
        loop {
            if let Some(guard) = self.inner.try_lock() {
                return IrqMutexGuard {
                    guard: ManuallyDrop::new(guard),
                    saved,
                };
            }
            while self.inner.is_locked() {
                crate::smp::serve_requests();
                core::hint::spin_loop();
            }
        }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let saved = arch::interrupts::save_and_disable();
        match self.inner.try_lock() {
            Some(guard) => Some(IrqMutexGuard {
                guard: ManuallyDrop::new(guard),
                saved,
            }),
            None => {
                arch::interrupts::restore(saved);
                None
            }
        }
    }
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for IrqMutexGuard<'_, T> {
    fn drop(&mut self) {
        // Release the lock *before* interrupts come back, so a handler that runs
        // right after the restore finds it free.
        // SAFETY: `guard` is dropped exactly once, here, and never touched again.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        arch::interrupts::restore(self.saved);
    }
}

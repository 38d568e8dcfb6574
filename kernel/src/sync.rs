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
//!
//! ## Waiters that halt: [`IrqMutex::lock_preemptible`]
//! A spinning waiter burns its vCPU's host thread; with more vCPUs than host cores
//! (4 on these 2-core machines) three spinning CPUs leave the holder a third of a core,
//! and a fork bomb or four threads forking at once ran 70x slower on 4 vCPUs than on
//! one. A caller that holds no lock (a system call's top level, before it touches the
//! kernel's tables) may instead wait with interrupts on: after a short spin it notes
//! itself in the lock's `sleeping` set, marks the lock word `SLEEPERS` and halts
//! (`hlt` / `wfi`); the release sees the mark and interrupts those CPUs (an IPI that
//! asks for nothing). This is Linux's paravirtual spin lock (`pv_wait` / `pv_kick`)
//! with the halt instruction for the hypercall: a halted vCPU gives its host core back.
//! * No lost wake-up: the mark is set in the lock word with a compare-and-swap only
//!   while the lock is held, and the release swaps the word to zero, so it either sees
//!   the mark (and the `sleeping` bit set before it) or the waiter sees the lock free
//!   and does not halt. A kick that comes between the mark and the halt stays pending
//!   (interrupts are masked until `sti; hlt` / until after `wfi`) and ends the halt.
//! * While halted the CPU takes interrupts: ticks, IPIs, which may switch to another
//!   thread in place (the waiter holds nothing, so that is safe) and serve shootdowns.
//! * The release's extra cost: the word is swapped instead of stored (a locked
//!   instruction on x86_64), and a branch; kicks are only sent when someone halted.
//!   Only locks made with [`IrqMutex::halting`] (type parameter [`Halting`]: the
//!   process table) pay it and have `lock_preemptible`; the others ([`Spinning`])
//!   keep the plain-store release (the swap on every lock cost a pipe round trip
//!   about 550 instructions).
//! * A halting waiter that wakes [`HALTS`] times without getting the lock waits the
//!   spinning way (and claims), so it does not starve behind spinning CPUs.
//! * How long to spin first ([`SPIN_BEFORE_HALT`]) trades the two cases: with a vCPU
//!   per host core the holder runs and a longer spin saves the halt and the kick;
//!   with more vCPUs than cores every turn spun may be the holder's. Four threads of
//!   one process faulting and unmapping (`scale fault`): 2^11 turns gave 360k
//!   faults/s on 2 vCPUs and 96k on 4; 2^8 gave 326k and 165k; 2^5 311k and 169k.
//!
//! ## Halting in place: [`IrqMutex::lock_in_place`]
//! A waiter that owns things (an `Arc`, its CPU's lane) must not be switched away,
//! but may still halt if no interrupt handler needs a lock it holds: the handlers
//! then only note the switch the scheduler asks for (`PerCpu::switch_held`), and the
//! thread makes it on its way back to user mode. A page fault's wait for its
//! address space's lock is one: the holder may be a munmap waiting for the TLB flush
//! of this very CPU, which a spinning waiter serves but a halted one serves too (the
//! IPI wakes it), without burning the host core the munmap's vCPU needs.

use crate::arch;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Turns a waiter spins before it claims the lock.
pub const PATIENCE: u32 = 1 << 12;
/// Turns a [`IrqMutex::lock_preemptible`] waiter spins before each halt.
pub const SPIN_BEFORE_HALT: u32 = 1 << 8;
/// Halts after which such a waiter goes on the spinning way.
pub const HALTS: u32 = 16;

/// `state`: someone holds the lock.
const LOCKED: u8 = 1;
/// `state`: a waiter halted; the release must kick the CPUs in `sleeping`.
const SLEEPERS: u8 = 2;

const _: () = assert!(crate::smp::MAX_CPUS <= 64, "`sleeping` has a bit per CPU");

/// A spinlock that disables interrupts while it is held; no waiter starves.
/// How a lock's waiters wait, chosen per lock by a type parameter so that a lock
/// whose waiters never halt keeps its plain-store release: [`Spinning`] (the
/// default) or [`Halting`] (the lock has [`IrqMutex::lock_preemptible`]).
pub trait Waiting {
    /// Whether a waiter may halt, so the release must look for its mark.
    const HALTING: bool;
}

/// Waiters only spin: the release is a plain store.
pub struct Spinning;
impl Waiting for Spinning {
    const HALTING: bool = false;
}

/// Waiters of [`IrqMutex::lock_preemptible`] may halt: the release swaps the lock
/// word and kicks them (see the module docs).
pub struct Halting;
impl Waiting for Halting {
    const HALTING: bool = true;
}

pub struct IrqMutex<T, W: Waiting = Spinning> {
    /// [`LOCKED`], plus [`SLEEPERS`] while it is held and a waiter halted; zero when
    /// free.
    state: AtomicU8,
    /// CPUs (by index) halted waiting for the release (see the module docs).
    sleeping: AtomicU64,
    /// Whether a waiter that ran out of [`PATIENCE`] has claimed it (it alone may
    /// take the lock next).
    claimed: AtomicBool,
    value: UnsafeCell<T>,
    waiting: core::marker::PhantomData<W>,
}

// SAFETY: the value is reached only through a guard, and at most one guard exists
// at a time (`locked` is set by one CPU at a time), so sharing the lock shares `T`
// as a mutex does.
unsafe impl<T: Send, W: Waiting> Sync for IrqMutex<T, W> {}
// SAFETY: moving the lock moves the value.
unsafe impl<T: Send, W: Waiting> Send for IrqMutex<T, W> {}

/// Guard of an [`IrqMutex`]; interrupts come back (if they were on) when it drops.
pub struct IrqMutexGuard<'a, T, W: Waiting = Spinning> {
    lock: &'a IrqMutex<T, W>,
    saved: arch::interrupts::IrqState,
}

/// Shows only that it is a lock: reading the value would mean taking it (a `Debug`
/// print of a structure holding a locked mutex must not deadlock).
impl<T, W: Waiting> core::fmt::Debug for IrqMutex<T, W> {
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
    /// A new unlocked mutex whose waiters spin.
    pub const fn new(value: T) -> Self {
        Self::with_waiting(value)
    }
}

impl<T> IrqMutex<T, Halting> {
    /// A new unlocked mutex whose waiters may halt ([`lock_preemptible`]).
    ///
    /// [`lock_preemptible`]: IrqMutex::lock_preemptible
    pub const fn halting(value: T) -> Self {
        Self::with_waiting(value)
    }
}

impl<T, W: Waiting> IrqMutex<T, W> {
    const fn with_waiting(value: T) -> Self {
        IrqMutex {
            state: AtomicU8::new(0),
            sleeping: AtomicU64::new(0),
            claimed: AtomicBool::new(false),
            value: UnsafeCell::new(value),
            waiting: core::marker::PhantomData,
        }
    }

    /// Takes the lock if it is free.
    fn acquire(&self) -> bool {
        self.state.load(Ordering::Relaxed) == 0
            && self
                .state
                .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Masks interrupts, then takes the lock, serving other CPUs' requests while it
    /// waits; after [`PATIENCE`] turns it claims the lock (see the module docs).
    // Inlined, the waiting out of line: the uncontended path is a handful of
    // instructions, and taking a lock is on every system call's path several times.
    #[inline]
    pub fn lock(&self) -> IrqMutexGuard<'_, T, W> {
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

    /// The release found [`SLEEPERS`]: interrupt every CPU that halted waiting.
    #[cold]
    #[inline(never)]
    fn kick_sleepers(&self) {
        let mut cpus = self.sleeping.swap(0, Ordering::Acquire);
        let me = crate::smp::this_index();
        while cpus != 0 {
            let index = cpus.trailing_zeros() as usize;
            cpus &= cpus - 1;
            if index == me {
                continue;
            }
            if let Some(c) = crate::smp::cpu(index) {
                arch::ipi::send(c);
            }
        }
    }

    /// Takes the lock if it is free and not claimed.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T, W>> {
        let saved = arch::interrupts::save_and_disable();
        if !self.claimed.load(Ordering::Relaxed)
            && self
                .state
                .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Some(IrqMutexGuard { lock: self, saved });
        }
        arch::interrupts::restore(saved);
        None
    }

    /// Whether someone holds the lock.
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }
}

impl<T> IrqMutex<T, Halting> {
    /// Like [`lock`](Self::lock), for a caller that holds no lock and may be
    /// interrupted and switched away while it waits (a system call's top level): a
    /// contended wait halts the CPU, interrupts on, until the release kicks it (see
    /// the module docs). The guard restores the interrupt state of the call, as
    /// [`lock`](Self::lock)'s does.
    ///
    /// The caller must also own nothing on its stack that must be dropped (an
    /// `Arc`, a copied address space): a thread switched away here and killed
    /// meanwhile is never resumed (its stack is freed as it is).
    #[inline]
    pub fn lock_preemptible(&self) -> IrqMutexGuard<'_, T, Halting> {
        self.lock_halting(arch::interrupts::halt_then_take_pending)
    }

    /// Like [`lock_preemptible`](Self::lock_preemptible), for a caller that may own
    /// things and hold its CPU's lane but no lock an interrupt handler takes (not
    /// the process table, the scheduler's or the frame allocator's): a contended
    /// wait halts the CPU, interrupts on, but the thread stays on it. The handlers
    /// that run meanwhile serve other CPUs' requests and only note a switch the
    /// scheduler asks for (`PerCpu::switch_held`); the thread makes it on its way
    /// back to user mode, once it holds nothing. A page fault's wait for its
    /// address space's lock, whose holder may be a munmap waiting for this CPU's
    /// TLB flush.
    #[inline]
    pub fn lock_in_place(&self) -> IrqMutexGuard<'_, T, Halting> {
        self.lock_halting(halt_in_place)
    }

    /// [`lock`](Self::lock) whose contended wait halts with `halt`.
    #[inline]
    fn lock_halting(&self, halt: fn()) -> IrqMutexGuard<'_, T, Halting> {
        let saved = arch::interrupts::save_and_disable();
        if self.claimed.load(Ordering::Relaxed) || !self.acquire() {
            self.wait_halting(halt);
        }
        IrqMutexGuard { lock: self, saved }
    }

    /// The halting wait of [`lock_preemptible`](Self::lock_preemptible) and
    /// [`lock_in_place`](Self::lock_in_place), which differ in how they `halt`;
    /// returns with the lock held and interrupts masked.
    #[cold]
    #[inline(never)]
    fn wait_halting(&self, halt: fn()) {
        for _ in 0..HALTS {
            for _ in 0..SPIN_BEFORE_HALT {
                if !self.claimed.load(Ordering::Relaxed) && self.acquire() {
                    return;
                }
                crate::smp::serve_requests();
                core::hint::spin_loop();
            }
            // Masked from here to the halt: this CPU's bit stays true, and a kick
            // sent meanwhile stays pending and ends the halt at once.
            let bit = 1u64 << crate::smp::this_index();
            self.sleeping.fetch_or(bit, Ordering::Release);
            if self.mark_sleepers() {
                halt();
            }
            // Woken (kicked, a tick, an interrupt), maybe on another CPU by now.
        }
        self.wait();
    }

    /// Sets [`SLEEPERS`] in the lock word if the lock is held; false if it is free.
    fn mark_sleepers(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED == 0 {
                return false;
            }
            if s & SLEEPERS != 0 {
                return true;
            }
            match self.state.compare_exchange_weak(
                s,
                s | SLEEPERS,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }
}

/// The halt of [`IrqMutex::lock_in_place`]: interrupts on until the next one, which
/// notes a switch instead of making it (see `PerCpu::switch_held`).
fn halt_in_place() {
    let me = crate::smp::this();
    me.switch_held.store(true, Ordering::Relaxed);
    arch::interrupts::halt_then_take_pending();
    me.switch_held.store(false, Ordering::Relaxed);
}

impl<T, W: Waiting> Deref for IrqMutexGuard<'_, T, W> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one (`locked` was set for it) while it lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T, W: Waiting> DerefMut for IrqMutexGuard<'_, T, W> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T, W: Waiting> Drop for IrqMutexGuard<'_, T, W> {
    // Inlined: a release is a store (or a swap and a branch) and the interrupt
    // restore; as a call it was an extra dozen instructions on every unlock.
    #[inline]
    fn drop(&mut self) {
        // Release the lock *before* interrupts come back, so a handler that runs
        // right after the restore finds it free. For a lock whose waiters may halt,
        // a swap, not a store: it must see a waiter's halt mark set before it (see
        // the module docs).
        if !W::HALTING {
            self.lock.state.store(0, Ordering::Release);
        } else if self.lock.state.swap(0, Ordering::AcqRel) & SLEEPERS != 0 {
            self.lock.kick_sleepers();
        }
        arch::interrupts::restore(self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// A waiter of `lock_preemptible` that finds the lock held marks the lock word
    /// and notes its CPU; the release clears both (it kicks the CPUs noted), and the
    /// waiter then gets the lock.
    #[test]
    fn halting_waiter_marks_the_lock_and_the_release_clears_it() {
        let lock = Arc::new(IrqMutex::halting(0u32));
        let guard = lock.lock();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || *lock.lock_preemptible() += 1)
        };
        while lock.state.load(Ordering::Acquire) & SLEEPERS == 0 {
            std::thread::yield_now();
        }
        assert_eq!(lock.state.load(Ordering::Acquire), LOCKED | SLEEPERS);
        assert_ne!(lock.sleeping.load(Ordering::Acquire), 0, "its CPU is noted");
        drop(guard);
        waiter.join().unwrap();
        assert_eq!(*lock.lock(), 1);
        assert_eq!(
            lock.sleeping.load(Ordering::Acquire),
            0,
            "the release took the note"
        );
        assert!(!lock.is_locked());
    }

    /// A `lock_in_place` waiter halts as a `lock_preemptible` one does (it marks the
    /// lock word and is noted), the release lets it in, and its CPU is no longer
    /// marked as keeping its thread once it holds the lock.
    #[test]
    fn in_place_waiter_halts_and_its_cpu_keeps_no_mark() {
        let lock = Arc::new(IrqMutex::halting(0u32));
        let guard = lock.lock();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                *lock.lock_in_place() += 1;
                crate::smp::this().switch_held.load(Ordering::Relaxed)
            })
        };
        while lock.state.load(Ordering::Acquire) & SLEEPERS == 0 {
            std::thread::yield_now();
        }
        assert_ne!(lock.sleeping.load(Ordering::Acquire), 0, "its CPU is noted");
        drop(guard);
        assert!(!waiter.join().unwrap(), "the mark is gone after the halt");
        assert_eq!(*lock.lock(), 1);
        assert_eq!(lock.sleeping.load(Ordering::Acquire), 0);
    }

    /// Spinning and halting waiters together: every increment happens once.
    #[test]
    fn halting_and_spinning_waiters_exclude_each_other() {
        let lock = Arc::new(IrqMutex::halting(0usize));
        let inside = Arc::new(AtomicUsize::new(0));
        let workers: std::vec::Vec<_> = (0..4)
            .map(|i| {
                let (lock, inside) = (lock.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let mut g = match i % 3 {
                            0 => lock.lock_preemptible(),
                            1 => lock.lock_in_place(),
                            _ => lock.lock(),
                        };
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "alone inside");
                        *g += 1;
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(*lock.lock(), 8000);
        assert_eq!(lock.state.load(Ordering::Acquire), 0);
    }
}

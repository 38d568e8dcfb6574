//! CPU identity on the host: every host thread is a simulated CPU of its own.
//!
//! Code that keeps per-CPU state without locks (the frame allocator's magazines)
//! relies on one CPU running one thing at a time. The host runs many threads at once
//! (test threads, benchmark threads), so each thread gets its own id: the lowest id
//! below `POOLED` (64) that no live thread holds, given back when the thread exits, so
//! ids stay small and per-CPU tables keep covering the threads that run. A thread
//! that finds the pool empty, or asks while it is exiting, gets an id above every
//! per-CPU table (it then uses the shared paths). The record `smp::this()` gives
//! stays CPU 0's on the host: only this id tells threads apart.
//!
//! A test may pretend to run on another CPU with [`set_current_cpu_id`]: it answers
//! for not sharing that id with another thread that uses the same per-CPU state.

use core::cell::Cell;
use core::sync::atomic::{AtomicU64, Ordering};

/// Ids handed out from the pool: `0..POOLED`.
const POOLED: u32 = 64;
/// No id yet.
const UNASSIGNED: u32 = u32::MAX;
/// The id of a thread without a pooled one (pool empty, or the thread exiting).
const UNPOOLED: u32 = u32::MAX - 1;

/// Bit `i` set while a live thread holds pooled id `i`.
static POOL: AtomicU64 = AtomicU64::new(0);

/// Gives the pooled id back when its thread exits.
struct Claim(Cell<Option<u32>>);

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            ID.with(|c| c.set(UNPOOLED));
            POOL.fetch_and(!(1 << id), Ordering::Release);
        }
    }
}

thread_local! {
    /// This thread's id (no destructor: readable until the thread is gone).
    static ID: Cell<u32> = const { Cell::new(UNASSIGNED) };
    static CLAIM: Claim = const { Claim(Cell::new(None)) };
}

/// The id of the (simulated) CPU running this code: this thread's.
#[inline]
pub fn current_cpu_id() -> u32 {
    match ID.with(Cell::get) {
        UNASSIGNED => assign(),
        id => id,
    }
}

/// Takes the lowest free pooled id for this thread.
#[cold]
fn assign() -> u32 {
    let id = CLAIM
        .try_with(|claim| {
            let mut pool = POOL.load(Ordering::Relaxed);
            loop {
                let id = (!pool).trailing_zeros();
                if id >= POOLED {
                    return UNPOOLED;
                }
                match POOL.compare_exchange_weak(
                    pool,
                    pool | 1 << id,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        claim.0.set(Some(id));
                        return id;
                    }
                    Err(now) => pool = now,
                }
            }
        })
        .unwrap_or(UNPOOLED);
    ID.with(|c| c.set(id));
    id
}

/// Host only: pretend this thread now runs on CPU `id` (for NUMA locality tests).
pub fn set_current_cpu_id(id: u32) {
    current_cpu_id(); // a pooled id stays claimed: no other thread gets it meanwhile
    ID.with(|c| c.set(id));
}

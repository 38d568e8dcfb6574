//! The host has one simulated CPU, number 0, unless a test says otherwise.

use core::sync::atomic::{AtomicU32, Ordering};

static CURRENT_CPU: AtomicU32 = AtomicU32::new(0);

/// The id of the CPU running this code.
#[inline]
pub fn current_cpu_id() -> u32 {
    CURRENT_CPU.load(Ordering::Relaxed)
}

/// Host only: pretend the code now runs on CPU `id` (for NUMA locality tests).
pub fn set_current_cpu_id(id: u32) {
    CURRENT_CPU.store(id, Ordering::Relaxed);
}

//! Which CPU is running: affinity level 0 of `MPIDR_EL1` (QEMU `virt` numbers its
//! CPUs 0, 1, ... in Aff0).

/// The id of the CPU running this code.
#[inline]
pub fn current_cpu_id() -> u32 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u32
}

/// Makes instructions written through the data side at `[start, start + len)` (any
/// virtual alias) visible to instruction fetch: clean the data cache to the point of
/// unification, then invalidate all instruction caches.
pub fn sync_instruction_cache(start: u64, len: u64) {
    const LINE: u64 = 64;
    let mut at = start & !(LINE - 1);
    while at < start.saturating_add(len) {
        // SAFETY: cleaning a data-cache line by address writes nothing new to memory.
        unsafe { core::arch::asm!("dc cvau, {}", in(reg) at, options(nostack)) };
        at += LINE;
    }
    // SAFETY: barriers and an instruction-cache invalidation have no memory effects.
    unsafe { core::arch::asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Waits for the next interrupt.
pub fn halt() {
    super::interrupts::wait_for_interrupt();
}

//! Which CPU is running: affinity level 0 of `MPIDR_EL1` (QEMU `virt` numbers its
//! CPUs 0, 1, ... in Aff0).

/// The id of the CPU running this code.
pub fn current_cpu_id() -> u32 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff) as u32
}

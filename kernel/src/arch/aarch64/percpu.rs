//! How an aarch64 CPU finds its [`PerCpu`]: `TPIDR_EL1` (a register EL0 cannot read)
//! holds its address for good. The exception vectors therefore use `TPIDRRO_EL0` as
//! their one scratch register, zeroed again before anything else runs.

use crate::smp::PerCpu;

/// Points this CPU's `TPIDR_EL1` at `cpu`. Call first thing on each CPU.
pub fn install(cpu: &'static PerCpu) {
    // SAFETY: TPIDR_EL1 is a plain software register of EL1.
    unsafe {
        core::arch::asm!("msr tpidr_el1, {}", in(reg) cpu as *const PerCpu as u64, options(nostack))
    };
}

/// The running CPU's record.
pub fn this() -> &'static PerCpu {
    let at: u64;
    // SAFETY: reading TPIDR_EL1 has no side effect.
    unsafe { core::arch::asm!("mrs {}, tpidr_el1", out(reg) at, options(nomem, nostack)) };
    // SAFETY: `install` stored the address of a record of `smp::CPUS`, which lives
    // forever, before any code could ask.
    unsafe { &*(at as *const PerCpu) }
}

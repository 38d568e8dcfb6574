//! CPU identity and a few instructions: `hlt`, `rdtsc`, control registers.

/// The id of the CPU running this code. The kernel runs on the bootstrap processor
/// only, so this is 0.
pub fn current_cpu_id() -> u32 {
    0
}

/// Waits for the next interrupt.
pub fn halt() {
    // SAFETY: `hlt` only pauses the CPU until an interrupt arrives.
    unsafe { core::arch::asm!("hlt", options(nomem, nostack, preserves_flags)) };
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` reads a counter and has no other effect.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// CR2: the linear address of the last page fault.
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects; we run in ring 0.
    unsafe {
        core::arch::asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Reads a model-specific register.
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: callers pass MSRs that exist on every x86_64 CPU (EFER, APIC base);
    // reading them has no side effects.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Stops this CPU for good with interrupts masked.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: masking interrupts and halting cannot break memory safety.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

//! CPU identity and a few instructions: `hlt`, `rdtsc`, control registers.

/// The firmware's id of the CPU running this code: its local APIC id (as the SRAT
/// names CPUs).
#[inline]
pub fn current_cpu_id() -> u32 {
    crate::smp::this()
        .hw_id
        .load(core::sync::atomic::Ordering::Relaxed)
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

/// Writes a model-specific register.
///
/// # Safety
/// `msr` exists and `value` is valid for it; writing it must not break the
/// invariants the kernel relies on (callers: EFER.SCE, STAR/LSTAR/FMASK, FS base).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller vouches for the register and the value.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// IA32_FS_BASE: the FS segment base, the user thread pointer on x86_64 Linux.
const IA32_FS_BASE: u32 = 0xc000_0100;

/// Sets the FS base (the running user thread's TLS pointer). The kernel itself never
/// uses FS, so any canonical value is harmless in ring 0; a non-canonical one would
/// fault, so it is refused (left unchanged).
pub fn set_fs_base(base: u64) {
    if !is_canonical(base) {
        return;
    }
    // SAFETY: FS_BASE exists on every x86_64 CPU; the kernel does not use FS.
    unsafe { wrmsr(IA32_FS_BASE, base) };
}

/// Whether `addr` is a canonical 48-bit virtual address.
pub fn is_canonical(addr: u64) -> bool {
    let top = addr >> 47;
    top == 0 || top == 0x1_ffff
}

/// The 512-byte FXSAVE image of the x87/SSE registers (16-byte aligned).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FpuState(pub [u8; 512]);

/// The state after `fninit` with MXCSR = 0x1f80 (all exceptions masked).
static INITIAL_FPU: FpuState = {
    let mut s = [0u8; 512];
    [s[0], s[1]] = 0x037fu16.to_le_bytes(); // FCW
    [s[24], s[25], s[26], s[27]] = 0x1f80u32.to_le_bytes(); // MXCSR
    [s[28], s[29], s[30], s[31]] = 0xffffu32.to_le_bytes(); // MXCSR_MASK
    FpuState(s)
};

impl FpuState {
    /// The state after `fninit` with MXCSR = 0x1f80 (all exceptions masked), as a new
    /// Linux process starts.
    pub fn initial() -> FpuState {
        INITIAL_FPU
    }

    /// Loads [`initial`](Self::initial) into the CPU's registers (from the one
    /// image kept for it: nothing to build, as a signal handler's start needs).
    pub fn restore_initial() {
        INITIAL_FPU.restore();
    }

    /// Saves the CPU's x87/SSE registers here.
    pub fn save(&mut self) {
        // SAFETY: `self` is a 512-byte, 16-byte-aligned buffer; SSE is enabled by
        // `enable_sse` before any user thread runs.
        unsafe {
            core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack, preserves_flags))
        };
    }

    /// Loads the CPU's x87/SSE registers from here.
    pub fn restore(&self) {
        // SAFETY: as in `save`; the image came from `save` or `initial` (reserved
        // MXCSR bits clear), so `fxrstor` does not fault.
        unsafe {
            core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, preserves_flags))
        };
    }
}

/// Lets ring 3 use x87 and SSE: CR0.MP on, CR0.EM and CR0.TS off, CR4.OSFXSR and
/// CR4.OSXMMEXCPT on. (The kernel itself is built soft-float and never touches them.)
pub fn enable_sse() {
    // SAFETY: only the FPU-related bits of CR0/CR4 change; paging and protection
    // bits are written back as read.
    unsafe {
        core::arch::asm!(
            "mov {t}, cr0",
            "and {t}, ~0xc",
            "or {t}, 0x2",
            "mov cr0, {t}",
            "mov {t}, cr4",
            "or {t}, 0x600",
            "mov cr4, {t}",
            t = out(reg) _,
            options(nostack, preserves_flags)
        )
    };
}

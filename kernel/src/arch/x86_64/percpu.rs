//! How an x86_64 CPU finds its [`PerCpu`]: while the kernel runs, the GS base
//! (`IA32_GS_BASE`) holds its address. Ring 3 may load a selector into GS (which
//! changes the base), so every entry from ring 3 swaps its base with the kernel's
//! (`swapgs`, see `syscall_entry` and `idt`) and every return swaps it back.

use crate::smp::{PerCpu, CPUS};
use core::mem::offset_of;

const IA32_GS_BASE: u32 = 0xc000_0101;

/// Points this CPU's GS base at `cpu`. Call first thing on each CPU.
pub fn install(cpu: &'static PerCpu) {
    // SAFETY: GS_BASE exists on every x86_64 CPU; the kernel's only use of GS is
    // to find this record, which lives forever.
    unsafe { super::cpu::wrmsr(IA32_GS_BASE, cpu as *const PerCpu as u64) };
}

/// The running CPU's record.
pub fn this() -> &'static PerCpu {
    let index: u32;
    // SAFETY: GS points at a live `PerCpu` (set by `install` before anything asks);
    // the load reads its `index`, which is atomic and never torn.
    unsafe {
        core::arch::asm!(
            "mov {:e}, gs:[{off}]",
            out(reg) index,
            off = const offset_of!(PerCpu, index),
            options(nostack, readonly, preserves_flags)
        )
    };
    &CPUS[index as usize % CPUS.len()]
}

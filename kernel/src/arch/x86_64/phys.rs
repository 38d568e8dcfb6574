//! The physical-memory window on x86_64.
//!
//! Two phases:
//! 1. **boot**: the entry's page tables identity-map `0 .. 4 GiB`, so the window is
//!    `base = 0`, `size = 4 GiB`;
//! 2. **direct map**: after the switch to the kernel's own page tables, all RAM is
//!    mapped at [`DIRECT_MAP_BASE`], and the window is `base = DIRECT_MAP_BASE`,
//!    `size` = end of the highest RAM region.
//!
//! The switch is done by [`super::memory`] with interrupts off, before any other
//! CPU or thread exists.

use core::sync::atomic::{AtomicU64, Ordering};

/// Virtual address of physical 0 in the direct map (PML4 slot 256, the first slot
/// of the higher half; 64 TiB of room).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// How much the boot identity map covers.
pub const BOOT_IDENTITY_SIZE: u64 = 4 << 30;

static BASE: AtomicU64 = AtomicU64::new(0);
static SIZE: AtomicU64 = AtomicU64::new(BOOT_IDENTITY_SIZE);

/// Virtual address at which physical address 0 is visible.
pub fn window_base() -> u64 {
    BASE.load(Ordering::Relaxed)
}

/// Bytes of physical address space the window covers.
pub fn window_size() -> u64 {
    SIZE.load(Ordering::Relaxed)
}

/// Moves the window to the direct map (called once, right after the CR3 switch).
pub(super) fn set_direct_map(size: u64) {
    BASE.store(DIRECT_MAP_BASE, Ordering::Relaxed);
    SIZE.store(size, Ordering::Relaxed);
}

/// CR4.OSFXSR: this CPU has SSE enabled ([`super::cpu::enable_sse`]).
const CR4_OSFXSR: u64 = 1 << 9;

/// Fills the page at `page` with zeros, 16 bytes per SSE store: 256 stores where
/// `rep stosq` (what `write_bytes` becomes) is 512 iterations, the largest part of
/// a demand-zero fault. The kernel is built soft-float, so `xmm0` holds a user
/// thread's register (the FP state moves lazily, see [`super::user`]): it is saved
/// and restored around the stores, with interrupts off so that no switch can save
/// the FP state in between. A CPU that has not enabled SSE yet (early boot) takes
/// `rep stosq`.
///
/// # Safety
/// `page` is the start of 4 KiB of memory, 16-byte aligned, that the caller owns
/// and may write.
pub unsafe fn zero_page(page: *mut u8) {
    let cr4: u64;
    // SAFETY: reading CR4 has no side effects; we run in ring 0.
    unsafe {
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags))
    };
    if cr4 & CR4_OSFXSR == 0 {
        // SAFETY: the caller's contract.
        return unsafe { core::ptr::write_bytes(page, 0, 4096) };
    }
    let mut saved = [0u64; 2];
    // SAFETY:
    // 1. SSE is enabled on this CPU (CR4.OSFXSR, checked; CR0.EM and CR0.TS are
    //    cleared with it and never set again), so the SSE instructions do not fault;
    // 2. the stores cover exactly the caller's 4 KiB page (16-byte aligned, as
    //    `movaps` needs);
    // 3. `xmm0` is saved to `saved` and restored before interrupts are allowed again
    //    (`popfq` restores IF as it was), so no code sees the zero it held meanwhile.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "cli",
            "movups [{saved}], xmm0",
            "xorps xmm0, xmm0",
            "lea {end}, [{p} + 4096]",
            "2:",
            "movaps [{p}], xmm0",
            "movaps [{p} + 16], xmm0",
            "movaps [{p} + 32], xmm0",
            "movaps [{p} + 48], xmm0",
            "movaps [{p} + 64], xmm0",
            "movaps [{p} + 80], xmm0",
            "movaps [{p} + 96], xmm0",
            "movaps [{p} + 112], xmm0",
            "movaps [{p} + 128], xmm0",
            "movaps [{p} + 144], xmm0",
            "movaps [{p} + 160], xmm0",
            "movaps [{p} + 176], xmm0",
            "movaps [{p} + 192], xmm0",
            "movaps [{p} + 208], xmm0",
            "movaps [{p} + 224], xmm0",
            "movaps [{p} + 240], xmm0",
            "add {p}, 256",
            "cmp {p}, {end}",
            "jne 2b",
            "movups xmm0, [{saved}]",
            "popfq",
            p = inout(reg) page => _,
            end = out(reg) _,
            saved = in(reg) saved.as_mut_ptr(),
        )
    };
}

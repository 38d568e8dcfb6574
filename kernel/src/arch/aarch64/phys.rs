//! The physical-memory window on aarch64.
//!
//! Two phases:
//! 1. **boot**: the entry's tables identity-map `0 .. 2 GiB` (devices, then the first
//!    GiB of RAM), so the window is `base = 0`, `size = 2 GiB`;
//! 2. **direct map**: after the switch to the kernel's own tables, all RAM (and the
//!    devices the kernel uses) is mapped at [`DIRECT_MAP_BASE`] through TTBR1, and the
//!    window is `base = DIRECT_MAP_BASE`, `size` = end of the highest RAM range.
//!
//! The switch happens once, on the boot CPU, with interrupts off.

use core::sync::atomic::{AtomicU64, Ordering};

/// Virtual address of physical 0 in the direct map (the first address of the upper
/// half, L0 slot 256).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// How much the boot identity map covers.
pub const BOOT_IDENTITY_SIZE: u64 = 2 << 30;

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

/// Moves the window to the direct map (called once, right after the TTBR switch).
pub(super) fn set_direct_map(size: u64) {
    BASE.store(DIRECT_MAP_BASE, Ordering::Relaxed);
    SIZE.store(size, Ordering::Relaxed);
}

/// DCZID_EL0.DZP: `dc zva` is prohibited.
const DCZID_PROHIBITED: u64 = 1 << 4;

/// Fills the page at `page` with zeros, a cache-line-sized block per `dc zva` (as
/// Linux's `clear_page`), instead of a store loop: 64 instructions for a page where
/// the loop took about 1500.
///
/// # Safety
/// `page` is the start of 4 KiB of normal memory (RAM as the kernel maps it), 4 KiB
/// aligned, that the caller owns and may write.
pub unsafe fn zero_page(page: *mut u8) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    if dczid & DCZID_PROHIBITED != 0 {
        // SAFETY: the caller's contract.
        return unsafe { core::ptr::write_bytes(page, 0, 4096) };
    }
    // BS (bits 3:0): log2 of the block size in words; at most 2 KiB, so a 4 KiB-aligned
    // page is a whole number of blocks.
    let block = 4usize << (dczid & 0xf);
    let mut at = page as usize;
    let end = at + 4096;
    while at < end {
        // SAFETY: `at` lies in the caller's page (block-aligned, as the page is), which
        // is normal memory: `dc zva` zeroes the block there, as stores would.
        unsafe { core::arch::asm!("dc zva, {}", in(reg) at, options(nostack)) };
        at += block;
    }
}

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

/// Fills the page at `page` with zeros.
///
/// # Safety
/// `page` is the start of 4 KiB of memory the caller owns and may write.
pub unsafe fn zero_page(page: *mut u8) {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::write_bytes(page, 0, 4096) };
}

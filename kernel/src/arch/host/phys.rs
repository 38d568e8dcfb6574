//! Simulated physical memory: one anonymous `MAP_NORESERVE` mapping of 4 TiB, backed
//! by the host kernel only where it is touched. Physical address `p` lives at
//! `window_base() + p`.
//!
//! The low 1 TiB is for callers that pick fixed addresses (the seed's 0x100000);
//! [`fresh_range`] hands out disjoint ranges above it so tests running in parallel
//! threads never share RAM.

use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

const WINDOW_SIZE: u64 = 1 << 42;
const FRESH_START: u64 = 1 << 40;

/// Host address of the window, 0 until the first use maps it.
static BASE: AtomicU64 = AtomicU64::new(0);
static MAP_ONCE: Once = Once::new();
static NEXT_FRESH: AtomicU64 = AtomicU64::new(FRESH_START);

/// Host virtual address of physical address 0.
#[inline]
pub fn window_base() -> u64 {
    match BASE.load(Ordering::Acquire) {
        0 => map_window(),
        base => base,
    }
}

#[cold]
fn map_window() -> u64 {
    MAP_ONCE.call_once(|| {
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                WINDOW_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(
            p != libc::MAP_FAILED,
            "cannot reserve the simulated physical memory"
        );
        BASE.store(p as u64, Ordering::Release);
    });
    BASE.load(Ordering::Acquire)
}

/// Bytes of physical address space the window covers.
#[inline]
pub fn window_size() -> u64 {
    WINDOW_SIZE
}

/// A fresh 1 GiB-aligned range of `bytes` that no other caller gets.
pub fn fresh_range(bytes: u64) -> crate::memory::PhysAddr {
    let len = (bytes + (1 << 30) - 1) & !((1 << 30) - 1);
    let start = NEXT_FRESH.fetch_add(len, Ordering::Relaxed);
    assert!(
        start + len <= WINDOW_SIZE,
        "simulated physical memory exhausted"
    );
    crate::memory::PhysAddr(start)
}

/// Gives the host back the memory behind `[start, start + bytes)` (it reads as
/// zeros afterwards). Used by tests that churn through large amounts of RAM.
pub fn discard(start: crate::memory::PhysAddr, bytes: u64) {
    let addr = (window_base() + start.0) as *mut libc::c_void;
    // SAFETY: the range lies inside our own anonymous mapping; MADV_DONTNEED only
    // drops its contents.
    unsafe { libc::madvise(addr, bytes as usize, libc::MADV_DONTNEED) };
}

/// Fills the page at `page` with zeros.
///
/// # Safety
/// `page` is the start of 4 KiB of memory the caller owns and may write.
pub unsafe fn zero_page(page: *mut u8) {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::write_bytes(page, 0, 4096) };
}

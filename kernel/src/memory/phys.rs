//! The window through which the kernel touches physical memory.
//!
//! Every byte of RAM is visible at `phys_to_virt(p) = offset + p`. On bare metal the
//! offset is the base of the kernel's direct map (0 while the boot identity map is
//! live); on the host it is the base of one large, lazily backed anonymous mapping
//! that stands in for RAM (see `arch::host::phys`).
//!
//! This is one of the few places that may touch raw memory. The accessors are safe
//! functions with a contract: callers pass addresses of memory they own (a frame they
//! allocated, a page-table entry of a table they own). Addresses outside the window
//! are refused with [`OutsideWindow`] instead of being dereferenced.

use super::addr::{PhysAddr, PhysFrame, VirtAddr, PAGE_SIZE};
use crate::arch;
use alloc::vec::Vec;

/// The address is not backed by the physical-memory window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutsideWindow(pub PhysAddr);

/// One past the highest physical address the window covers.
#[inline]
pub fn limit() -> u64 {
    arch::phys::window_size()
}

/// The virtual address at which physical address `p` is visible.
#[inline]
pub fn phys_to_virt(p: PhysAddr) -> VirtAddr {
    VirtAddr::new_truncate(arch::phys::window_base().wrapping_add(p.0))
}

#[inline]
fn check(p: PhysAddr, len: u64) -> Result<*mut u8, OutsideWindow> {
    window().check(p, len)
}

/// The window's base and limit, read once for a run of accesses (one walk of a page
/// table, one allocator operation) instead of at every access.
///
/// A snapshot is only good while the window stays where it is: it moves once, at
/// boot (from the identity map to the direct map, before any other CPU or thread
/// exists), so keep a `Window` for the length of one operation, never in a struct
/// or a static.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    base: u64,
    limit: u64,
}

/// The window as it is now (see [`Window`]).
#[inline]
pub fn window() -> Window {
    Window {
        base: arch::phys::window_base(),
        limit: limit(),
    }
}

impl Window {
    /// The host pointer to `len` bytes at `p`, if they lie inside the window.
    #[inline]
    fn check(self, p: PhysAddr, len: u64) -> Result<*mut u8, OutsideWindow> {
        match p.0.checked_add(len) {
            // `base + p` for `p` below the limit is what `phys_to_virt` gives, already
            // canonical (the window lies in one half of the address space).
            Some(end) if end <= self.limit => Ok(self.base.wrapping_add(p.0) as *mut u8),
            _ => Err(OutsideWindow(p)),
        }
    }

    /// Reads the u64 at `p` (8-byte aligned).
    #[inline]
    pub fn read_u64(self, p: PhysAddr) -> Result<u64, OutsideWindow> {
        let ptr = self.check(p, 8)? as *const u64;
        // SAFETY: `check` proved the 8 bytes lie inside the window, which is mapped
        // read/write for its whole length (the snapshot is current: see `Window`);
        // callers pass aligned entry addresses.
        Ok(unsafe { core::ptr::read_volatile(ptr) })
    }

    /// Reads the byte at `p`.
    #[inline]
    pub fn read_u8(self, p: PhysAddr) -> Result<u8, OutsideWindow> {
        let ptr = self.check(p, 1)?;
        // SAFETY: `check` proved the byte lies inside the (current) window.
        Ok(unsafe { ptr.read() })
    }

    /// Writes the byte at `p`.
    #[inline]
    pub fn write_u8(self, p: PhysAddr, value: u8) -> Result<(), OutsideWindow> {
        let ptr = self.check(p, 1)?;
        // SAFETY: as in `read_u8`; the caller owns the memory it writes.
        unsafe { ptr.write(value) };
        Ok(())
    }

    /// Writes the u64 at `p` (8-byte aligned).
    #[inline]
    pub fn write_u64(self, p: PhysAddr, value: u64) -> Result<(), OutsideWindow> {
        let ptr = self.check(p, 8)? as *mut u64;
        // SAFETY: as in `read_u64`; the caller owns the memory it writes.
        unsafe { core::ptr::write_volatile(ptr, value) };
        Ok(())
    }
}

/// The 512 u64s of a frame that lies in the window (a page table's entries), with
/// the window checked once for all of them: each access only checks its index.
#[derive(Debug, Clone, Copy)]
pub struct FrameWords(*mut u64);

/// Words in a frame.
pub const FRAME_WORDS: usize = (PAGE_SIZE / 8) as usize;

impl FrameWords {
    /// The words of `frame`, if it lies inside the window (see [`Window`]: keep it
    /// for one operation only).
    pub fn of(frame: PhysFrame) -> Result<FrameWords, OutsideWindow> {
        Ok(FrameWords(
            check(frame.start_address, PAGE_SIZE)? as *mut u64
        ))
    }

    /// Word `i` (`None` beyond the frame).
    #[inline]
    pub fn read(self, i: usize) -> Option<u64> {
        // SAFETY: the frame lies inside the window (checked by `of`), page-aligned,
        // and `i` is below its word count; volatile, as the tables may be walked.
        (i < FRAME_WORDS).then(|| unsafe { core::ptr::read_volatile(self.0.add(i)) })
    }

    /// Sets word `i` (ignored beyond the frame); the caller owns the frame.
    #[inline]
    pub fn write(self, i: usize, value: u64) {
        if i < FRAME_WORDS {
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile(self.0.add(i), value) };
        }
    }
}

/// Reads the u64 at `p` (8-byte aligned).
#[inline]
pub fn read_u64(p: PhysAddr) -> Result<u64, OutsideWindow> {
    window().read_u64(p)
}

/// Reads the byte at `p`.
#[inline]
pub fn read_u8(p: PhysAddr) -> Result<u8, OutsideWindow> {
    window().read_u8(p)
}

/// Writes the byte at `p`.
#[inline]
pub fn write_u8(p: PhysAddr, value: u8) -> Result<(), OutsideWindow> {
    window().write_u8(p, value)
}

/// Writes the u64 at `p` (8-byte aligned).
#[inline]
pub fn write_u64(p: PhysAddr, value: u64) -> Result<(), OutsideWindow> {
    window().write_u64(p, value)
}

/// Fills `len` bytes at `p` with zeros.
pub fn zero(p: PhysAddr, len: u64) -> Result<(), OutsideWindow> {
    let ptr = check(p, len)?;
    // SAFETY: the range lies inside the window (checked) and the caller owns it.
    unsafe { core::ptr::write_bytes(ptr, 0, len as usize) };
    Ok(())
}

/// Fills a whole frame with zeros (the arch's fastest way: every fresh page and
/// page table goes through here).
pub fn zero_frame(frame: PhysFrame) -> Result<(), OutsideWindow> {
    let ptr = check(frame.start_address, PAGE_SIZE)?;
    // SAFETY: the frame lies inside the window (checked), page-aligned, RAM, and
    // the caller owns it.
    unsafe { arch::phys::zero_page(ptr) };
    Ok(())
}

/// Copies the contents of frame `src` into frame `dst`.
pub fn copy_frame(src: PhysFrame, dst: PhysFrame) -> Result<(), OutsideWindow> {
    let s = check(src.start_address, PAGE_SIZE)?;
    let d = check(dst.start_address, PAGE_SIZE)?;
    if s == d {
        return Ok(());
    }
    // SAFETY: both frames lie inside the window and are distinct 4 KiB frames, so
    // the ranges do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(s, d, PAGE_SIZE as usize) };
    Ok(())
}

/// Copies `buf.len()` bytes from physical memory at `p` into `buf`.
pub fn read_bytes(p: PhysAddr, buf: &mut [u8]) -> Result<(), OutsideWindow> {
    let s = check(p, buf.len() as u64)?;
    // SAFETY: the source range is inside the window; `buf` is a distinct Rust slice.
    unsafe { core::ptr::copy_nonoverlapping(s, buf.as_mut_ptr(), buf.len()) };
    Ok(())
}

/// Appends the `len` bytes of physical memory at `p` to `out`, with no zero fill
/// first. Reserve the room beforehand (`try_reserve`): this grows `out` (and may
/// panic on exhausted memory) only if the caller did not.
pub fn append_bytes(p: PhysAddr, len: usize, out: &mut Vec<u8>) -> Result<(), OutsideWindow> {
    let s = check(p, len as u64)?;
    out.reserve(len);
    let at = out.len();
    // SAFETY: the source range is inside the window; the destination is the
    // vector's spare capacity (reserved above: at least `len` bytes from `at`),
    // which is distinct from it. The `len` bytes are then initialized, so the
    // new length covers initialized bytes only.
    unsafe {
        core::ptr::copy_nonoverlapping(s, out.as_mut_ptr().add(at), len);
        out.set_len(at + len);
    }
    Ok(())
}

/// Copies `buf` into physical memory at `p`.
pub fn write_bytes(p: PhysAddr, buf: &[u8]) -> Result<(), OutsideWindow> {
    let d = check(p, buf.len() as u64)?;
    // SAFETY: the destination range is inside the window and owned by the caller.
    unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), d, buf.len()) };
    Ok(())
}

/// Host only: a fresh range of `bytes` of simulated physical memory that no other
/// caller in this process gets, for tests and benchmarks that need their own RAM.
#[cfg(not(target_os = "none"))]
pub fn host_fresh_range(bytes: u64) -> PhysAddr {
    arch::phys::fresh_range(bytes)
}

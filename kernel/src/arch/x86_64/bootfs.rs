//! The initrd QEMU loaded (`-initrd`, PVH module 0), seen as a read-only
//! [`Initrd`] through the direct map. Its frames were kept out of the frame
//! allocator at boot, so the bytes stay valid for the kernel's whole life.

use crate::initrd::Initrd;
use crate::memory::PhysAddr;
use core::sync::atomic::{AtomicU64, Ordering};

static START: AtomicU64 = AtomicU64::new(0);
static LEN: AtomicU64 = AtomicU64::new(0);

/// Records where the initrd is (called once by `init`).
pub(super) fn set(start: PhysAddr, len: u64) {
    START.store(start.0, Ordering::Relaxed);
    LEN.store(len, Ordering::Relaxed);
}

/// The initrd, if QEMU gave one and it lies inside the direct map.
pub fn initrd() -> Option<Initrd<'static>> {
    let (start, len) = (START.load(Ordering::Relaxed), LEN.load(Ordering::Relaxed));
    let end = start.checked_add(len)?;
    if len == 0 || end > super::phys::window_size() {
        return None;
    }
    let ptr = (super::phys::window_base() + start) as *const u8;
    // SAFETY: `[start, end)` is RAM inside the direct map (checked above) that the
    // frame allocator never owns (reserved at boot), and nothing writes to it.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len as usize) };
    Some(Initrd::new(bytes))
}

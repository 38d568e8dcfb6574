//! The initrd QEMU loaded (`-initrd`, PVH module 0), handed to the core as the boot
//! image ([`crate::initrd::boot_image`]) through the direct map. Its frames were kept
//! out of the frame allocator at boot, so the bytes stay valid for the kernel's whole
//! life.

use crate::initrd::Initrd;
use crate::memory::PhysAddr;

/// Records where the initrd is (called once by `init`, after the direct map is
/// live); ignored unless it lies inside the direct map.
pub(super) fn set(start: PhysAddr, len: u64) {
    let Some(end) = start.0.checked_add(len) else {
        return;
    };
    if len == 0 || end > super::phys::window_size() {
        return;
    }
    let ptr = (super::phys::window_base() + start.0) as *const u8;
    // SAFETY: `[start, end)` is RAM inside the direct map (checked above) that the
    // frame allocator never owns (reserved at boot), and nothing writes to it.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len as usize) };
    crate::initrd::set_boot_image(bytes);
}

/// The initrd, if QEMU gave one.
pub fn initrd() -> Option<Initrd<'static>> {
    crate::initrd::boot_image()
}

//! Bringing up memory: the frame allocator from the PVH map, then the kernel's own
//! page tables, then the heap.
//!
//! Order, and why it works:
//! 1. The boot identity map covers `0 .. 4 GiB` ([`super::phys::BOOT_IDENTITY_SIZE`]),
//!    so the frame allocator (which writes its metadata and free-list links into free
//!    frames through the window) is first given only the RAM below 4 GiB.
//! 2. The kernel tables are built from frames of that allocator.
//! 3. After the CR3 switch the window is the direct map, which covers all RAM; the RAM
//!    above 4 GiB is added to the allocator then.

use super::pvh::BootInfo;
use crate::memory::frame_allocator::{self, FRAME_ALLOCATOR};
use crate::memory::memmap::{usable_ram, RegionList, Reserved};
use crate::memory::{MemoryRegion, PhysAddr, VirtAddr};
use core::ops::Range;

/// Low memory the kernel never hands out (real-mode area, BIOS data, the future
/// application-processor trampoline).
const LOW_MEMORY_END: u64 = 0x10_0000;

/// Where the linker put the kernel; filled in by the boot binary from its linker
/// script symbols.
#[derive(Debug, Clone)]
pub struct KernelLayout {
    /// Physical range of the whole image (boot code, text, rodata, data, bss).
    pub phys: Range<PhysAddr>,
    /// `virtual - physical` for the higher-half part.
    pub virt_offset: u64,
    /// Code: read + execute.
    pub text: Range<VirtAddr>,
    /// Read-only data: read, no execute.
    pub rodata: Range<VirtAddr>,
    /// Data and bss: read + write, no execute.
    pub data: Range<VirtAddr>,
    /// Guard pages inside `data` left unmapped (below the boot stack).
    pub guards: [VirtAddr; 1],
}

/// The RAM the frame allocator may own: type-1 entries minus low memory, the image
/// and the boot structures.
pub fn usable_regions(info: &BootInfo, layout: &KernelLayout) -> RegionList {
    let [s0, s1, s2, s3] = info.structures;
    let reserved = [
        Reserved {
            start: PhysAddr(0),
            end: PhysAddr(LOW_MEMORY_END),
        },
        Reserved {
            start: layout.phys.start,
            end: layout.phys.end,
        },
        s0,
        s1,
        s2,
        s3,
    ];
    usable_ram(info.memory_map(), &reserved)
}

/// What memory bring-up found.
#[derive(Debug, Clone, Copy)]
pub struct MemorySummary {
    /// Bytes of RAM given to the frame allocator (before its own metadata).
    pub usable_bytes: u64,
    /// Frames the allocator manages (after its metadata).
    pub managed_frames: u64,
    /// End of the highest RAM region (the size of the direct map).
    pub ram_end: u64,
}

/// Step 1: the allocator gets the RAM inside the boot identity map.
pub fn init_low(ram: &RegionList) {
    let (low, _) = ram.split_at(super::phys::BOOT_IDENTITY_SIZE);
    frame_allocator::init_frame_allocator(&[]);
    add_by_node(&low);
}

/// Step 3: the RAM above the boot identity map, once the direct map covers it.
pub fn add_high(ram: &RegionList) {
    let (_, high) = ram.split_at(super::phys::BOOT_IDENTITY_SIZE);
    add_by_node(&high);
}

/// Gives `ram` to the frame allocator, each piece in the pool of its NUMA node.
fn add_by_node(ram: &RegionList) {
    let topology = super::numa::snapshot();
    let mut pieces = [MemoryRegion::new(PhysAddr(0), 0); 8];
    for r in ram.as_slice() {
        let n = topology.split_by_node(*r, &mut pieces);
        for piece in &pieces[..n] {
            if let Err(e) = FRAME_ALLOCATOR.add_region(*piece) {
                crate::println!("memory: region {:?} refused: {:?}", piece, e);
            }
        }
    }
}

/// Totals for the boot report.
pub fn summary(ram: &RegionList) -> MemorySummary {
    let managed_frames = FRAME_ALLOCATOR.total_frames();
    MemorySummary {
        usable_bytes: ram.total_bytes(),
        managed_frames,
        ram_end: ram.end(),
    }
}

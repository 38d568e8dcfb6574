//! Bringing up memory: the frame allocator from the device tree's RAM, then the
//! kernel's own page tables (an [`ArmLpaePageTable`]), then the rest of RAM.
//!
//! Order, and why it works:
//! 1. The entry's boot tables identity-map `0 .. 2 GiB`
//!    ([`super::phys::BOOT_IDENTITY_SIZE`]), so the frame allocator (which writes its
//!    metadata and free-list links into free frames through the window) first gets
//!    only the RAM below 2 GiB, minus the kernel image, the device tree and what the
//!    device tree reserves (its reservation map and `/reserved-memory`).
//! 2. The kernel's tables are built from frames of that allocator:
//!    * the image at its linked higher-half addresses, per section: text read +
//!      execute, rodata read-only, data and bss read + write, never executable; the
//!      guard page below the boot stack stays unmapped;
//!    * a direct map of all RAM at [`DIRECT_MAP_BASE`] (read + write, no execute,
//!      2 MiB / 1 GiB blocks where aligned), Normal write-back memory (MAIR index 0);
//!    * the UART and the GIC in the direct map as Device memory (`NO_CACHE`, MAIR 1);
//!    * nothing in the lower half: the identity map is gone after the switch.
//! 3. After the TTBR switch the window is the direct map; RAM above 2 GiB joins the
//!    allocator then.
//!
//! The resulting address map (one root in TTBR0 and TTBR1, see [`super::paging`]):
//! ```text
//! 0x0000_0000_0000_0000 .. 0x0000_8000_0000_0000  user half: empty (no identity map)
//! 0xffff_8000_0000_0000 + p                        direct map of every RAM range p
//!                                                  (RW, NX, global, Normal WB) and the
//!                                                  UART/GIC registers (Device-nGnRnE)
//! 0xffff_fe00_0000_0000 ..                         kernel stacks, each above an
//!                                                  unmapped guard page (`stack`)
//! 0xffff_ffff_8000_0000 + (p - 0x4000_0000)        the kernel image, per section:
//!                                                  text RX, rodata R+NX, data/bss
//!                                                  RW+NX; boot-stack guard unmapped
//! ```
//! All kernel-half root entries are created up front (`populate_upper_half`) so every
//! address space made later shares them.

use super::phys::{self, DIRECT_MAP_BASE};
use crate::firmware::devicetree::{MachineInfo, MAX_RESERVED};
use crate::memory::frame_allocator::{self, FrameError, FRAME_ALLOCATOR};
use crate::memory::paging::{
    ArmLpaePageTable, MapToError, Page, PageFlags, PageSize, PageTableMapper,
};
use crate::memory::{MemoryRegion, PhysAddr, PhysFrame, VirtAddr, PAGE_SIZE};
use core::ops::Range;

/// Most RAM regions kept after cutting out reserved ranges.
const MAX_REGIONS: usize = 32;
/// Bytes mapped for the UART.
const DEVICE_WINDOW: u64 = 0x1_0000;

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

/// What memory bring-up found.
#[derive(Debug, Clone, Copy)]
pub struct MemorySummary {
    /// Bytes of RAM the device tree reports.
    pub ram_bytes: u64,
    /// Bytes of RAM given to the frame allocator (RAM minus image and device tree).
    pub usable_bytes: u64,
    /// Frames the allocator manages (after its own metadata).
    pub managed_frames: u64,
    /// End of the highest RAM range (the size of the direct map).
    pub ram_end: u64,
    /// The kernel's root table (in TTBR0 and TTBR1).
    pub root: PhysFrame,
}

/// Why memory bring-up failed.
#[derive(Debug, Clone, Copy)]
pub enum MemoryError {
    /// The device tree lists no RAM inside the boot window.
    NoRam,
    /// No frame for the root table.
    Frames(FrameError),
    /// A kernel mapping could not be made.
    Map(MapToError),
}

impl From<MapToError> for MemoryError {
    fn from(e: MapToError) -> Self {
        MemoryError::Map(e)
    }
}

/// A bounded list of RAM regions (node-tagged), sorted, reserved ranges cut out.
#[derive(Clone, Copy)]
pub struct RegionList {
    regions: [MemoryRegion; MAX_REGIONS],
    len: usize,
}

impl RegionList {
    fn push(&mut self, r: MemoryRegion) {
        if r.size >= PAGE_SIZE && self.len < MAX_REGIONS {
            self.regions[self.len] = r;
            self.len += 1;
        }
    }

    /// The regions.
    pub fn as_slice(&self) -> &[MemoryRegion] {
        &self.regions[..self.len]
    }

    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.as_slice().iter().map(|r| r.size).sum()
    }

    /// The parts below and at-or-above `limit`.
    fn split_at(&self, limit: u64) -> (RegionList, RegionList) {
        let (mut low, mut high) = (EMPTY, EMPTY);
        for r in self.as_slice() {
            let (s, e) = (r.start.0, r.end().0);
            if s < limit {
                low.push(MemoryRegion::new(r.start, e.min(limit) - s).on_node(r.node));
            }
            if e > limit {
                let s2 = s.max(limit);
                high.push(MemoryRegion::new(PhysAddr(s2), e - s2).on_node(r.node));
            }
        }
        (low, high)
    }
}

const EMPTY: RegionList = RegionList {
    regions: [MemoryRegion::new(PhysAddr(0), 0); MAX_REGIONS],
    len: 0,
};

/// The device tree's RAM minus `reserved` ranges, rounded inwards to whole frames.
pub fn usable_regions(machine: &MachineInfo, reserved: &[Range<u64>]) -> RegionList {
    let mut list = EMPTY;
    for r in machine.memory_regions() {
        let mut pieces = EMPTY;
        pieces.push(r);
        for cut in reserved {
            let mut next = EMPTY;
            for p in pieces.as_slice() {
                let (s, e) = (p.start.0, p.end().0);
                if cut.start > s {
                    next.push(MemoryRegion::new(p.start, e.min(cut.start) - s).on_node(p.node));
                }
                if cut.end < e {
                    let s2 = s.max(cut.end);
                    next.push(MemoryRegion::new(PhysAddr(s2), e - s2).on_node(p.node));
                }
            }
            pieces = next;
        }
        for p in pieces.as_slice() {
            let start = p.start.align_up(PAGE_SIZE);
            let end = p.end().align_down(PAGE_SIZE);
            if end > start {
                list.push(MemoryRegion::new(start, end - start).on_node(p.node));
            }
        }
    }
    list
}

/// Maps `[start, end)` of the image to its physical frames with `flags`, leaving
/// the guard pages out.
fn map_section(
    table: &mut ArmLpaePageTable,
    layout: &KernelLayout,
    range: &Range<VirtAddr>,
    flags: PageFlags,
) -> Result<(), MapToError> {
    let mut va = range.start.align_down(PAGE_SIZE).as_u64();
    while va < range.end.as_u64() {
        if !layout.guards.iter().any(|g| g.as_u64() == va) {
            let frame = PhysFrame::containing_address(PhysAddr(va - layout.virt_offset));
            let page = Page::containing_address(VirtAddr::new(va));
            table.map_to(page, frame, flags)?.ignore();
        }
        va += PAGE_SIZE;
    }
    Ok(())
}

/// The largest page size that fits at `pa` with `left` bytes to go.
fn block_size(pa: u64, left: u64) -> PageSize {
    [PageSize::Size1GiB, PageSize::Size2MiB]
        .into_iter()
        .find(|s| pa.is_multiple_of(s.bytes()) && left >= s.bytes())
        .unwrap_or(PageSize::Size4KiB)
}

/// Maps physical `[start, end)` at `DIRECT_MAP_BASE + start` with `flags`.
fn map_direct(
    table: &mut ArmLpaePageTable,
    start: u64,
    end: u64,
    flags: PageFlags,
) -> Result<(), MapToError> {
    let mut pa = start & !(PAGE_SIZE - 1);
    while pa < end {
        let size = block_size(pa, end - pa);
        let va = VirtAddr::new(DIRECT_MAP_BASE + pa);
        let page = Page::containing_address_sized(va, size);
        let frame = PhysFrame::containing_address(PhysAddr(pa));
        table.map_to(page, frame, flags)?.ignore();
        pa += size.bytes();
    }
    Ok(())
}

/// Flags of the direct map of RAM.
pub const RAM_FLAGS: PageFlags = PageFlags::WRITABLE
    .union(PageFlags::NO_EXECUTE)
    .union(PageFlags::GLOBAL);
/// Flags of device registers.
pub const DEVICE_FLAGS: PageFlags = RAM_FLAGS.union(PageFlags::NO_CACHE);

/// Builds the kernel's table (see the module docs) and returns it.
fn build_tables(
    machine: &MachineInfo,
    layout: &KernelLayout,
) -> Result<ArmLpaePageTable, MemoryError> {
    let root = frame_allocator::allocate_frame().map_err(MemoryError::Frames)?;
    let mut t = ArmLpaePageTable::new(root);
    let text = PageFlags::GLOBAL;
    let rodata = PageFlags::GLOBAL | PageFlags::NO_EXECUTE;
    map_section(&mut t, layout, &layout.text, text)?;
    map_section(&mut t, layout, &layout.rodata, rodata)?;
    map_section(&mut t, layout, &layout.data, RAM_FLAGS)?;
    for m in machine.memory() {
        map_direct(&mut t, m.start, m.start.saturating_add(m.size), RAM_FLAGS)?;
    }
    let uart = (super::console::base(), DEVICE_WINDOW);
    for (base, bytes) in [uart].into_iter().chain(super::gic::mmio_ranges()) {
        map_direct(&mut t, base, base.saturating_add(bytes), DEVICE_FLAGS)?;
    }
    t.populate_upper_half()?;
    Ok(t)
}

/// Steps 1-3 of the module docs. `dtb` and `initrd` are the physical ranges (start,
/// size) of the device tree and the initrd (size 0: none); both stay out of the
/// frame allocator.
pub fn init(
    machine: &MachineInfo,
    dtb: (u64, u64),
    initrd: (u64, u64),
    layout: &KernelLayout,
) -> Result<MemorySummary, MemoryError> {
    let mut reserved: [Range<u64>; 3 + MAX_RESERVED] = core::array::from_fn(|_| 0..0);
    reserved[0] = dtb.0..dtb.0.saturating_add(dtb.1);
    reserved[1] = layout.phys.start.0..layout.phys.end.0;
    reserved[2] = initrd.0..initrd.0.saturating_add(initrd.1);
    for (slot, &(start, size)) in reserved[3..].iter_mut().zip(machine.reserved()) {
        *slot = start..start.saturating_add(size);
    }
    let ram = usable_regions(machine, &reserved);
    let (low, high) = ram.split_at(phys::BOOT_IDENTITY_SIZE);
    if low.len == 0 {
        return Err(MemoryError::NoRam);
    }
    frame_allocator::init_frame_allocator(low.as_slice());
    let table = build_tables(machine, layout)?;
    let ram_end = machine
        .memory()
        .iter()
        .map(|m| m.start + m.size)
        .max()
        .unwrap_or(0);
    super::paging::set_active_root(table.root());
    phys::set_direct_map(ram_end);
    for r in high.as_slice() {
        if let Err(e) = FRAME_ALLOCATOR.add_region(*r) {
            crate::println!("memory: region {:?} refused: {:?}", r, e);
        }
    }
    Ok(MemorySummary {
        ram_bytes: machine.memory_total(),
        usable_bytes: ram.bytes(),
        managed_frames: FRAME_ALLOCATOR.total_frames(),
        ram_end,
        root: table.root(),
    })
}

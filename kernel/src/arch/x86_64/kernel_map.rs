//! The kernel's own page tables, built with [`X86_64PageTable`] and switched to once.
//!
//! ```text
//! 0x0000_0000_0000_0000 .. 0x0000_8000_0000_0000  user half: empty (no identity map)
//! 0xffff_8000_0000_0000 + p                        direct map of every firmware memory
//!                                                  range p (RW, NX, global; 2 MiB pages
//!                                                  where aligned), the LAPIC and
//!                                                  I/O APIC pages (uncached)
//! 0xffff_fe00_0000_0000 ..                         kernel stacks, each below an unmapped
//!                                                  guard page (see `stack`)
//! 0xffff_ffff_8000_0000 + p                        the kernel image, per section:
//!                                                  text RX, rodata R+NX, data/bss RW+NX;
//!                                                  the boot stack's guard page unmapped
//! ```
//! All kernel-half root entries are created up front
//! ([`X86_64PageTable::populate_upper_half`]) so every address space made later shares
//! them.

use super::memory::KernelLayout;
use super::phys::DIRECT_MAP_BASE;
use crate::memory::frame_allocator;
use crate::memory::memmap::MapEntry;
use crate::memory::paging::{MapToError, PageFlags, PageTableMapper, X86_64PageTable};
use crate::memory::{Page, PageSize, PhysAddr, PhysFrame, VirtAddr, PAGE_SIZE};

const TWO_MIB: u64 = 2 << 20;

/// Builds the kernel tables and returns (root, end of the direct map).
pub fn build(layout: &KernelLayout, map: &[MapEntry]) -> Result<(PhysFrame, u64), MapToError> {
    let root = frame_allocator::allocate_frame()?;
    let mut table = X86_64PageTable::new(root);
    table.populate_upper_half()?;
    let mut end = 0;
    for e in map.iter().filter(|e| e.size > 0) {
        let start = PhysAddr(e.start).align_down(PAGE_SIZE).0;
        let stop = PhysAddr(e.start.saturating_add(e.size))
            .align_up(PAGE_SIZE)
            .0;
        map_direct(&mut table, start, stop, PageFlags::empty())?;
        end = end.max(stop);
    }
    let lapic = super::timer::lapic_phys_base();
    if table
        .translate(VirtAddr::new(DIRECT_MAP_BASE + lapic))
        .is_none()
    {
        map_direct(&mut table, lapic, lapic + PAGE_SIZE, PageFlags::NO_CACHE)?;
    }
    // The I/O APIC, for the serial port's receive interrupt (`ioapic`).
    let ioapic = super::ioapic::PHYS_BASE;
    if table
        .translate(VirtAddr::new(DIRECT_MAP_BASE + ioapic))
        .is_none()
    {
        map_direct(&mut table, ioapic, ioapic + PAGE_SIZE, PageFlags::NO_CACHE)?;
    }
    map_image(&mut table, layout)?;
    Ok((root, end))
}

/// Maps physical `[start, stop)` at `DIRECT_MAP_BASE + p`, skipping pages already
/// mapped (firmware ranges can overlap), with 2 MiB pages where possible.
fn map_direct(
    table: &mut X86_64PageTable,
    start: u64,
    stop: u64,
    extra: PageFlags,
) -> Result<(), MapToError> {
    let flags = PageFlags::PRESENT
        | PageFlags::WRITABLE
        | PageFlags::NO_EXECUTE
        | PageFlags::GLOBAL
        | extra;
    let mut p = start;
    while p < stop {
        let big = p.is_multiple_of(TWO_MIB) && stop - p >= TWO_MIB && extra.is_empty();
        let size = if big {
            PageSize::Size2MiB
        } else {
            PageSize::Size4KiB
        };
        let virt = VirtAddr::new(DIRECT_MAP_BASE + p);
        if table.translate(virt).is_none() {
            let page = Page::containing_address_sized(virt, size);
            table
                .map_to(page, PhysFrame::containing_address(PhysAddr(p)), flags)?
                .ignore();
        }
        p += size.bytes();
    }
    Ok(())
}

/// Maps the image's sections with their permissions.
fn map_image(table: &mut X86_64PageTable, layout: &KernelLayout) -> Result<(), MapToError> {
    let base = PageFlags::PRESENT | PageFlags::GLOBAL;
    let sections = [
        (&layout.text, base),
        (&layout.rodata, base | PageFlags::NO_EXECUTE),
        (
            &layout.data,
            base | PageFlags::WRITABLE | PageFlags::NO_EXECUTE,
        ),
    ];
    for (range, flags) in sections {
        let mut v = range.start.align_down(PAGE_SIZE);
        while v < range.end {
            if !layout.guards.contains(&v) {
                let frame =
                    PhysFrame::containing_address(PhysAddr(v.as_u64() - layout.virt_offset));
                table
                    .map_to(Page::containing_address(v), frame, flags)?
                    .ignore();
            }
            v = VirtAddr::new(v.as_u64() + PAGE_SIZE);
        }
    }
    Ok(())
}

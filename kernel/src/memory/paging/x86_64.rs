//! The x86_64 4-level entry format ([`X86_64Format`]): PML4 (level 3), PDPT (2),
//! PD (1), PT (0); 4 KiB pages in the PT, 2 MiB pages in the PD, 1 GiB pages in
//! the PDPT (Intel SDM vol. 3A, 4.5, tables 4-15 to 4-20).
//!
//! ```text
//! bit   leaf (PT, or PD/PDPT with PS=1)         table (PML4E, PDPTE/PDE with PS=0)
//!  0    P    present                            P
//!  1    R/W  writable                           R/W   (always 1: the leaf decides)
//!  2    U/S  user                               U/S   (1 in the lower half only)
//!  3    PWT  write-through                      PWT   (0)
//!  4    PCD  cache disable                      PCD   (0)
//!  5    A    accessed                           A
//!  6    D    dirty                              ignored
//!  7    PAT (PT) / PS=1 (PD, PDPT)              PS=0 (PML4E: reserved 0)
//!  8    G    global                             ignored
//!  9-11 ignored: PageFlags::SOFTWARE_0..2       ignored
//! 12-51 frame address (2 MiB: 21-51, 1 GiB: 30-51; bit 12 is PAT in huge leaves,
//!       always 0 here)                          next table address
//! 52-58 ignored                                 52-61: used-entry count of the table
//! 59-62 protection key (ignored without PKE)    62: BORROWED (software)
//! 63    XD   no execute (needs EFER.NXE)        XD (0)
//! ```
//!
//! The count and BORROWED live in bits 52..62, which the SDM marks "ignored" in
//! every non-leaf entry.

use super::flags::PageFlags;
use super::format::{EntryFormat, Half};
use crate::memory::{PageSize, PhysAddr, PhysFrame};

/// The x86_64 4-level page-table entry format.
#[derive(Debug, Clone, Copy, Default)]
pub struct X86_64Format;

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PS: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const COUNT_SHIFT: u32 = 52;
const COUNT_MASK: u64 = 0x3ff << COUNT_SHIFT;
/// The leaf bits that carry [`PageFlags`] one to one (everything but PS/PAT).
const LEAF_FLAG_BITS: u64 = PageFlags::PRESENT.bits()
    | PageFlags::WRITABLE.bits()
    | PageFlags::USER.bits()
    | PageFlags::WRITE_THROUGH.bits()
    | PageFlags::NO_CACHE.bits()
    | PageFlags::ACCESSED.bits()
    | PageFlags::DIRTY.bits()
    | PageFlags::GLOBAL.bits()
    | PageFlags::SOFTWARE_0.bits()
    | PageFlags::SOFTWARE_1.bits()
    | PageFlags::SOFTWARE_2.bits()
    | PageFlags::NO_EXECUTE.bits();

impl EntryFormat for X86_64Format {
    const NAME: &'static str = "x86_64";
    const PHYS_BITS: u32 = 52;
    const SUPPORTED: PageFlags = PageFlags::from_bits_truncate(LEAF_FLAG_BITS);
    const IMPLIED: PageFlags = PageFlags::empty();
    const BORROWED: u64 = 1 << 62;

    #[inline]
    fn is_present(entry: u64) -> bool {
        entry & P != 0
    }

    #[inline]
    fn is_table(entry: u64, level: usize) -> bool {
        level > 0 && (level == 3 || entry & PS == 0)
    }

    #[inline]
    fn table_entry(table: PhysFrame, half: Half) -> u64 {
        let user = if half == Half::Lower { US } else { 0 };
        table.start_address.0 | P | RW | user
    }

    #[inline]
    fn table_addr(entry: u64) -> PhysAddr {
        PhysAddr(entry & ADDR_MASK)
    }

    #[inline]
    fn leaf_entry(addr: PhysAddr, flags: PageFlags, size: PageSize) -> u64 {
        let ps = if size == PageSize::Size4KiB { 0 } else { PS };
        addr.0 | (flags.bits() & LEAF_FLAG_BITS) | P | ps
    }

    #[inline]
    fn leaf_addr(entry: u64, size: PageSize) -> PhysAddr {
        PhysAddr(entry & ADDR_MASK & !(size.bytes() - 1))
    }

    #[inline]
    fn leaf_flags(entry: u64, size: PageSize) -> PageFlags {
        let huge = if size == PageSize::Size4KiB {
            PageFlags::empty()
        } else {
            PageFlags::HUGE
        };
        PageFlags::from_bits_truncate(entry & LEAF_FLAG_BITS) | huge
    }

    #[inline]
    fn count(entry: u64) -> u16 {
        ((entry & COUNT_MASK) >> COUNT_SHIFT) as u16
    }

    #[inline]
    fn with_count(entry: u64, count: u16) -> u64 {
        (entry & !COUNT_MASK) | (((count as u64) << COUNT_SHIFT) & COUNT_MASK)
    }

    #[inline]
    fn count_up(entry: u64) -> u64 {
        // The count is below 512, so the field does not overflow into its neighbour.
        entry + (1 << COUNT_SHIFT)
    }

    #[inline]
    fn count_down(entry: u64) -> u64 {
        // The count is at least 1, so the subtraction does not borrow from below.
        entry - (1 << COUNT_SHIFT)
    }
}

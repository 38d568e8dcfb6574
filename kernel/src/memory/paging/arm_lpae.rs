//! The ARM VMSAv8-64 long-descriptor entry format ([`ArmLpaeFormat`]), stage 1,
//! 4 KiB granule, 48-bit virtual addresses: ARM lookup levels 0..3 are our levels
//! 3..0 (ARM ARM D8.3, "Translation table descriptor formats").
//!
//! ```text
//! bits   page (ARM L3) / block (ARM L1, L2)        table descriptor (ARM L0..L2)
//! 1:0    0b11 page / 0b01 block (bit 0 = valid)     0b11
//! 4:2    AttrIndx: MAIR_EL1 index (see MAIR_EL1)   ignored: 11:2 = used-entry count
//! 5      NS (0)                                     of the next table (0..=512)
//! 7:6    AP[2:1]: AP[2]=1 read-only, AP[1]=1 EL0
//! 9:8    SH = 0b11 inner shareable
//! 10     AF access flag, always 1
//! 11     nG = !GLOBAL
//! 47:12  output address (block L2: 47:21,          next table address
//!        block L1: 47:30)
//! 51     DBM (0)                                    ignored (58:51)
//! 52     Contiguous (0)
//! 53     PXN: privileged execute never
//! 54     UXN: unprivileged execute never
//! 55     software: PageFlags::DIRTY                 55: BORROWED (software)
//! 58:56  software: PageFlags::SOFTWARE_0..2
//! 63:59  ignored                                    PXNTable, UXNTable, APTable,
//!                                                   NSTable (all 0: the leaf decides)
//! ```
//!
//! Execute permission: user pages (`USER`) are always PXN (the kernel never runs
//! user code) and UXN when `NO_EXECUTE`; kernel pages are always UXN and PXN when
//! `NO_EXECUTE`. Memory type: `NO_CACHE` selects device memory, `WRITE_THROUGH`
//! normal write-through memory, as laid out by [`MAIR_EL1`]. ARM has no hardware
//! dirty bit here, so `DIRTY` is kept in a software bit; the access flag is always
//! set (no access-flag faults), so every leaf reports `ACCESSED`.

use super::flags::PageFlags;
use super::format::{EntryFormat, Half};
use crate::memory::{PageSize, PhysAddr, PhysFrame};

/// The ARM VMSAv8-64 long-descriptor entry format (4 KiB granule, 48-bit VA).
#[derive(Debug, Clone, Copy, Default)]
pub struct ArmLpaeFormat;

/// The MAIR_EL1 value the AttrIndx fields assume: attr0 = 0xFF normal write-back
/// (default), attr1 = 0x00 Device-nGnRnE (`NO_CACHE`), attr2 = 0xBB normal
/// write-through (`WRITE_THROUGH`), attr3 = 0x00 Device-nGnRnE
/// (`NO_CACHE | WRITE_THROUGH`).
pub const MAIR_EL1: u64 = 0x00_bb_00_ff;

const VALID: u64 = 1 << 0;
const TYPE_TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_SHIFT: u32 = 2;
const AP_USER: u64 = 1 << 6;
const AP_READ_ONLY: u64 = 1 << 7;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const SW_DIRTY: u64 = 1 << 55;
const SW_SHIFT: u32 = 56 - 9; // SOFTWARE_0 (bit 9) -> bit 56
const SW_FLAGS: u64 =
    PageFlags::SOFTWARE_0.bits() | PageFlags::SOFTWARE_1.bits() | PageFlags::SOFTWARE_2.bits();
const COUNT_SHIFT: u32 = 2;
const COUNT_MASK: u64 = 0x3ff << COUNT_SHIFT;

/// The AttrIndx selected by the cache flags: bit 0 = NO_CACHE, bit 1 = WRITE_THROUGH.
fn attr_index(flags: PageFlags) -> u64 {
    let nc = flags.contains(PageFlags::NO_CACHE) as u64;
    let wt = flags.contains(PageFlags::WRITE_THROUGH) as u64;
    nc | (wt << 1)
}

/// The permission bits (AP, UXN, PXN) for `flags`.
fn permission_bits(flags: PageFlags) -> u64 {
    let nx = flags.contains(PageFlags::NO_EXECUTE);
    let mut bits = if flags.contains(PageFlags::WRITABLE) {
        0
    } else {
        AP_READ_ONLY
    };
    if flags.contains(PageFlags::USER) {
        bits |= AP_USER | PXN | if nx { UXN } else { 0 };
    } else {
        bits |= UXN | if nx { PXN } else { 0 };
    }
    bits
}

impl EntryFormat for ArmLpaeFormat {
    const NAME: &'static str = "arm-lpae";
    const PHYS_BITS: u32 = 48;
    const SUPPORTED: PageFlags = PageFlags::PRESENT
        .union(PageFlags::WRITABLE)
        .union(PageFlags::USER)
        .union(PageFlags::WRITE_THROUGH)
        .union(PageFlags::NO_CACHE)
        .union(PageFlags::ACCESSED)
        .union(PageFlags::DIRTY)
        .union(PageFlags::GLOBAL)
        .union(PageFlags::SOFTWARE_0)
        .union(PageFlags::SOFTWARE_1)
        .union(PageFlags::SOFTWARE_2)
        .union(PageFlags::NO_EXECUTE);
    const IMPLIED: PageFlags = PageFlags::ACCESSED;
    const BORROWED: u64 = 1 << 55;

    #[inline]
    fn is_present(entry: u64) -> bool {
        entry & VALID != 0
    }

    #[inline]
    fn is_table(entry: u64, level: usize) -> bool {
        level > 0 && entry & TYPE_TABLE_OR_PAGE != 0
    }

    #[inline]
    fn table_entry(table: PhysFrame, _half: Half) -> u64 {
        table.start_address.0 | VALID | TYPE_TABLE_OR_PAGE
    }

    #[inline]
    fn table_addr(entry: u64) -> PhysAddr {
        PhysAddr(entry & ADDR_MASK)
    }

    fn leaf_entry(addr: PhysAddr, flags: PageFlags, size: PageSize) -> u64 {
        let kind = if size == PageSize::Size4KiB {
            VALID | TYPE_TABLE_OR_PAGE
        } else {
            VALID
        };
        let global = if flags.contains(PageFlags::GLOBAL) {
            0
        } else {
            NG
        };
        let dirty = if flags.contains(PageFlags::DIRTY) {
            SW_DIRTY
        } else {
            0
        };
        let software = (flags.bits() & SW_FLAGS) << SW_SHIFT;
        addr.0
            | kind
            | (attr_index(flags) << ATTR_SHIFT)
            | permission_bits(flags)
            | SH_INNER
            | AF
            | global
            | dirty
            | software
    }

    #[inline]
    fn leaf_addr(entry: u64, size: PageSize) -> PhysAddr {
        PhysAddr(entry & ADDR_MASK & !(size.bytes() - 1))
    }

    fn leaf_flags(entry: u64, size: PageSize) -> PageFlags {
        let mut f = PageFlags::PRESENT | PageFlags::ACCESSED;
        let attr = (entry >> ATTR_SHIFT) & 0b111;
        let user = entry & AP_USER != 0;
        let nx = entry & if user { UXN } else { PXN } != 0;
        f.set(PageFlags::NO_CACHE, attr & 1 != 0);
        f.set(PageFlags::WRITE_THROUGH, attr & 2 != 0);
        f.set(PageFlags::USER, user);
        f.set(PageFlags::WRITABLE, entry & AP_READ_ONLY == 0);
        f.set(PageFlags::GLOBAL, entry & NG == 0);
        f.set(PageFlags::DIRTY, entry & SW_DIRTY != 0);
        f.set(PageFlags::NO_EXECUTE, nx);
        f.set(PageFlags::HUGE, size != PageSize::Size4KiB);
        f | PageFlags::from_bits_truncate((entry >> SW_SHIFT) & SW_FLAGS)
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

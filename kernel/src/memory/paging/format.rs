//! [`EntryFormat`]: what the one walker needs to know about a page-table entry
//! format, and nothing more. An implementation is a zero-sized type with associated
//! functions on raw `u64` entries; [`super::x86_64`] and [`super::arm_lpae`] are the
//! two there are.
//!
//! Levels are numbered as in [`PageSize::level`]: 0 holds 4 KiB leaves, 3 is the
//! root. Every table has 512 entries of 8 bytes.
//!
//! ## Used-entry counts
//! A table entry (non-leaf) keeps, in bits the hardware ignores, the number of
//! present entries of the table it points to ([`EntryFormat::count`]). That makes
//! "is the child table empty now?" an O(1) question on unmap. The root has no parent
//! entry and no count; it is never freed by unmap.

use super::flags::PageFlags;
use crate::memory::{PageSize, PhysAddr, PhysFrame, VirtAddr};

/// Which half of the virtual address space an address lies in: root entries
/// 0..256 (user) or 256..512 (kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// Root entries 0..256: addresses below 2^47.
    Lower,
    /// Root entries 256..512: the kernel half, shared between address spaces.
    Upper,
}

impl Half {
    /// The half `addr` lies in.
    pub const fn of(addr: VirtAddr) -> Self {
        if addr.table_index(3) < 256 {
            Half::Lower
        } else {
            Half::Upper
        }
    }
}

/// A page-table entry format: how leaves, tables and counts are encoded.
pub trait EntryFormat {
    /// Short name, for messages.
    const NAME: &'static str;
    /// Physical addresses must be below `1 << PHYS_BITS`.
    const PHYS_BITS: u32;
    /// The flags this format stores; others are dropped on map.
    const SUPPORTED: PageFlags;
    /// The flags every leaf of this format reports, whatever was asked for.
    const IMPLIED: PageFlags;
    /// Software bit of a root entry copied from another table (kernel half); the
    /// tables below it belong to that other table.
    const BORROWED: u64;

    /// Whether the entry is valid (a table or a leaf).
    fn is_present(entry: u64) -> bool;
    /// Whether the present entry at `level` points to a next-level table.
    fn is_table(entry: u64, level: usize) -> bool;
    /// A table entry pointing to `table`, with a used-entry count of 0.
    fn table_entry(table: PhysFrame, half: Half) -> u64;
    /// The table a table entry points to.
    fn table_addr(entry: u64) -> PhysAddr;
    /// A leaf mapping a page of `size` to `addr` (aligned to `size`).
    fn leaf_entry(addr: PhysAddr, flags: PageFlags, size: PageSize) -> u64;
    /// The start of the frame a leaf of `size` maps.
    fn leaf_addr(entry: u64, size: PageSize) -> PhysAddr;
    /// The flags of a leaf of `size` (including `PRESENT` and, for huge leaves,
    /// `HUGE`).
    fn leaf_flags(entry: u64, size: PageSize) -> PageFlags;
    /// The used-entry count kept in a table entry.
    fn count(entry: u64) -> u16;
    /// The table entry with its count replaced by `count` (at most 512).
    fn with_count(entry: u64, count: u16) -> u64;
    /// The table entry with its count (below 512) one higher. Formats whose count is
    /// one plain bit field override this with one addition: map and unmap update a
    /// count on every call, and the next call waits for the update.
    #[inline]
    fn count_up(entry: u64) -> u64 {
        Self::with_count(entry, Self::count(entry) + 1)
    }
    /// The table entry with its count (at least 1) one lower; see [`Self::count_up`].
    #[inline]
    fn count_down(entry: u64) -> u64 {
        Self::with_count(entry, Self::count(entry) - 1)
    }

    /// The flags a leaf mapped with `flags` at `size` reports.
    fn normalize(flags: PageFlags, size: PageSize) -> PageFlags {
        let huge = if size == PageSize::Size4KiB {
            PageFlags::empty()
        } else {
            PageFlags::HUGE
        };
        (flags & Self::SUPPORTED & !PageFlags::HUGE) | Self::IMPLIED | PageFlags::PRESENT | huge
    }
}

//! From a firmware memory map to the RAM the frame allocator may own.
//!
//! Firmware maps are messy: entries may be unsorted, empty, overlapping, not
//! page-aligned, and mix RAM (type 1) with reserved ranges. [`usable_ram`] keeps type 1
//! only, sorts, rounds each range inwards to whole 4 KiB frames, drops overlaps and
//! cuts out the ranges the kernel already uses (its image, boot structures). Fixed-size
//! arrays: this runs before the heap exists.
#![deny(unsafe_code)]

use super::addr::{PhysAddr, PAGE_SIZE};
use super::region::MemoryRegion;

/// Most entries kept from a firmware map (more are ignored).
pub const MAX_MAP_ENTRIES: usize = 128;

/// Memory-map type of usable RAM (E820 / PVH / UEFI-converted type 1).
pub const TYPE_RAM: u32 = 1;

/// One entry of a firmware memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapEntry {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
    /// Firmware type (1 = RAM, 2 = reserved, 3 = ACPI reclaimable, 4 = ACPI NVS, ...).
    pub kind: u32,
}

/// A half-open physical range `[start, end)` the kernel keeps for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// First byte.
    pub start: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
}

/// A bounded list of RAM regions, sorted by address, non-overlapping.
#[derive(Clone, Copy)]
pub struct RegionList {
    regions: [MemoryRegion; MAX_MAP_ENTRIES],
    len: usize,
}

impl Default for RegionList {
    fn default() -> Self {
        Self::new()
    }
}

impl RegionList {
    /// An empty list.
    pub const fn new() -> Self {
        RegionList {
            regions: [MemoryRegion::new(PhysAddr(0), 0); MAX_MAP_ENTRIES],
            len: 0,
        }
    }

    /// Appends `[start, end)` if it is not empty and there is room.
    fn push(&mut self, start: u64, end: u64) {
        if start < end && self.len < MAX_MAP_ENTRIES {
            self.regions[self.len] = MemoryRegion::new(PhysAddr(start), end - start);
            self.len += 1;
        }
    }

    /// The regions.
    pub fn as_slice(&self) -> &[MemoryRegion] {
        &self.regions[..self.len]
    }

    /// Total bytes.
    pub fn total_bytes(&self) -> u64 {
        self.as_slice().iter().map(|r| r.size).sum()
    }

    /// One past the highest byte (0 when empty).
    pub fn end(&self) -> u64 {
        self.as_slice().last().map_or(0, |r| r.end().0)
    }

    /// Splits the list at physical address `boundary`: (below, at or above).
    pub fn split_at(&self, boundary: u64) -> (RegionList, RegionList) {
        let (mut low, mut high) = (RegionList::new(), RegionList::new());
        for r in self.as_slice() {
            let (s, e) = (r.start.0, r.end().0);
            low.push(s, e.min(boundary));
            high.push(s.max(boundary), e);
        }
        (low, high)
    }

    /// Removes `cut` from every region.
    fn subtract(&self, cut: Reserved) -> RegionList {
        let mut out = RegionList::new();
        for r in self.as_slice() {
            let (s, e) = (r.start.0, r.end().0);
            let (cs, ce) = (
                cut.start.align_down(PAGE_SIZE).0,
                cut.end.align_up(PAGE_SIZE).0,
            );
            if ce <= s || cs >= e {
                out.push(s, e);
            } else {
                out.push(s, cs);
                out.push(ce, e);
            }
        }
        out
    }
}

/// The usable RAM described by `map`, minus `reserved`; see the module docs.
pub fn usable_ram(map: &[MapEntry], reserved: &[Reserved]) -> RegionList {
    let mut ram = [MapEntry::default(); MAX_MAP_ENTRIES];
    let mut n = 0;
    for e in map.iter().filter(|e| e.kind == TYPE_RAM && e.size > 0) {
        if n < MAX_MAP_ENTRIES {
            ram[n] = *e;
            n += 1;
        }
    }
    ram[..n].sort_unstable_by_key(|e| e.start);
    let mut list = RegionList::new();
    let mut covered = 0u64;
    for e in &ram[..n] {
        let start = PhysAddr(e.start.max(covered)).align_up(PAGE_SIZE).0;
        let end = PhysAddr(e.start.saturating_add(e.size))
            .align_down(PAGE_SIZE)
            .0;
        list.push(start, end);
        covered = covered.max(end);
    }
    reserved.iter().fold(list, |l, cut| l.subtract(*cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start: u64, size: u64, kind: u32) -> MapEntry {
        MapEntry { start, size, kind }
    }

    fn ranges(l: &RegionList) -> Vec<(u64, u64)> {
        l.as_slice()
            .iter()
            .map(|r| (r.start.0, r.end().0))
            .collect()
    }

    #[test]
    fn sorts_skips_empty_and_non_ram() {
        let map = [
            entry(0x10_0000, 0x7f0_0000, 1),
            entry(0, 0x9fc00, 1),
            entry(0x9fc00, 0x400, 2),
            entry(0x5000_0000, 0, 1),
            entry(0xfeff_c000, 0x4000, 2),
            entry(0x1_0000_0000, 0x4000_0000, 1),
        ];
        let l = usable_ram(&map, &[]);
        assert_eq!(
            ranges(&l),
            vec![
                (0, 0x9f000),
                (0x10_0000, 0x800_0000),
                (0x1_0000_0000, 0x1_4000_0000)
            ]
        );
        assert_eq!(l.end(), 0x1_4000_0000);
    }

    #[test]
    fn cuts_reserved_ranges_page_rounded() {
        let map = [entry(0, 0x100_0000, 1)];
        let cuts = [
            Reserved {
                start: PhysAddr(0),
                end: PhysAddr(0x10_0000),
            },
            Reserved {
                start: PhysAddr(0x20_0100),
                end: PhysAddr(0x30_0001),
            },
        ];
        let l = usable_ram(&map, &cuts);
        assert_eq!(
            ranges(&l),
            vec![(0x10_0000, 0x20_0000), (0x30_1000, 0x100_0000)]
        );
    }

    #[test]
    fn overlapping_entries_do_not_overlap_after() {
        let map = [entry(0x1000, 0x10000, 1), entry(0x8000, 0x10000, 1)];
        assert_eq!(
            ranges(&usable_ram(&map, &[])),
            vec![(0x1000, 0x11000), (0x11000, 0x18000)]
        );
    }

    #[test]
    fn split_at_boundary() {
        let map = [entry(0x10_0000, 0x1_0000_0000, 1)];
        let (low, high) = usable_ram(&map, &[]).split_at(1 << 32);
        assert_eq!(ranges(&low), vec![(0x10_0000, 1 << 32)]);
        assert_eq!(ranges(&high), vec![(1 << 32, 0x1_0010_0000)]);
    }
}

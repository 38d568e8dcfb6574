//! Unit tests of the walker and both entry formats: bit encodings against the
//! architecture manuals, huge pages, every error, table freeing (the private
//! allocator's free-frame count returns exactly to its start), iteration,
//! teardown and kernel-half sharing.

use super::*;
use crate::memory::frame_allocator::{FrameAllocator, FrameError};
use crate::memory::phys::{self, host_fresh_range};
use crate::memory::MemoryRegion;
use core::cell::RefCell;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Table-address bits common to both formats for addresses below 2^48.
const ADDR: u64 = 0x0000_ffff_ffff_f000;

/// A private allocator over `bytes` of fresh simulated RAM.
pub(super) fn allocator(bytes: u64) -> FrameAllocator {
    let mut fa = FrameAllocator::new();
    fa.add_region(MemoryRegion::new(host_fresh_range(bytes), bytes))
        .unwrap();
    fa
}

/// A frame allocator shared by several tables at once (tests only).
pub(super) struct Shared<'a>(pub &'a RefCell<FrameAllocator>);

impl FrameSource for Shared<'_> {
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError> {
        self.0.borrow_mut().allocate()
    }
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        self.0.borrow_mut().deallocate(frame)
    }
}

/// A source that refuses after `left` frames.
struct Limited<'a> {
    fa: &'a mut FrameAllocator,
    left: usize,
}

impl FrameSource for Limited<'_> {
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError> {
        if self.left == 0 {
            return Err(FrameError::OutOfMemory);
        }
        self.left -= 1;
        self.fa.allocate()
    }
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        self.fa.deallocate(frame)
    }
}

fn va(a: u64) -> VirtAddr {
    VirtAddr::new(a)
}
fn page4k(a: u64) -> Page {
    Page::from_start_address(va(a), PageSize::Size4KiB).unwrap()
}
fn page(a: u64, size: PageSize) -> Page {
    Page::from_start_address(va(a), size).unwrap()
}
fn frame(a: u64) -> PhysFrame {
    PhysFrame::from_start_address(PhysAddr(a)).unwrap()
}

/// The raw entries on the walk for `addr`, root first, down to `level`.
fn raw_entries(root: PhysFrame, addr: u64, level: usize) -> Vec<u64> {
    let mut table = root.start_address.0;
    let mut out = Vec::new();
    for l in (level..=3).rev() {
        let idx = (addr >> (12 + 9 * l)) & 0x1ff;
        let e = phys::read_u64(PhysAddr(table + 8 * idx)).unwrap();
        out.push(e);
        table = e & ADDR;
    }
    out
}

fn map<F: EntryFormat, A: FrameSource>(
    t: &mut PageTable<F, A>,
    p: Page,
    f: PhysFrame,
    flags: PageFlags,
) {
    t.map_to(p, f, flags).unwrap().ignore();
}
fn unmap<F: EntryFormat, A: FrameSource>(t: &mut PageTable<F, A>, p: Page) -> PhysFrame {
    let (f, flush) = t.unmap(p).unwrap();
    flush.flush();
    f
}

// ---- x86_64 encodings (Intel SDM vol. 3A, tables 4-15 to 4-20) ----

#[test]
fn x86_4k_leaf_and_table_bits() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = X86_64PageTable::with_source(root, &mut fa);
    let flags = PageFlags::WRITABLE | PageFlags::USER | PageFlags::GLOBAL | PageFlags::NO_EXECUTE;
    map(
        &mut t,
        page4k(0x40_1000),
        frame(0x1234_5000),
        flags | PageFlags::HUGE,
    );
    let e = raw_entries(root, 0x40_1000, 0);
    // Leaf: P(0) RW(1) US(2) G(8) XD(63), address 12..51, PAT (bit 7) clear.
    assert_eq!(e[3], 0x1234_5000 | 1 | 2 | 4 | (1 << 8) | (1 << 63));
    // Tables: P | RW | US (lower half), no PS, count 1 in bits 52..61.
    for &te in &e[..3] {
        assert_eq!(te & 0xfff, 0b111);
        assert_eq!((te >> 52) & 0x3ff, 1);
        assert_eq!(te & (1 << 63), 0);
    }
    map(&mut t, page4k(0x40_2000), frame(0x5000), PageFlags::PRESENT);
    assert_eq!(
        raw_entries(root, 0x40_2000, 0)[3],
        0x5000 | 1,
        "read-only kernel page"
    );
    assert_eq!(
        (raw_entries(root, 0x40_2000, 0)[2] >> 52) & 0x3ff,
        2,
        "PT count"
    );
}

#[test]
fn x86_huge_leaf_bits_and_upper_half_tables() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = X86_64PageTable::with_source(root, &mut fa);
    let k = 0xffff_8000_0000_0000;
    map(
        &mut t,
        page(k, PageSize::Size2MiB),
        frame(0x20_0000),
        PageFlags::WRITABLE | PageFlags::NO_CACHE,
    );
    let e = raw_entries(root, k, 1);
    // 2 MiB leaf in the PD: PS (bit 7), PCD (bit 4); upper-half tables lack US.
    assert_eq!(e[2], 0x20_0000 | 1 | 2 | (1 << 4) | (1 << 7));
    assert_eq!(e[0] & 0xfff, 0b011);
    map(
        &mut t,
        page(GIB, PageSize::Size1GiB),
        frame(3 * GIB),
        PageFlags::WRITE_THROUGH,
    );
    let e = raw_entries(root, GIB, 2);
    assert_eq!(
        e[1],
        (3 * GIB) | 1 | (1 << 3) | (1 << 7),
        "1 GiB leaf in the PDPT"
    );
}

// ---- ARM encodings (ARM ARM D8.3, VMSAv8-64 descriptors) ----

const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
const NG: u64 = 1 << 11;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

#[test]
fn arm_page_descriptor_bits() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = ArmLpaePageTable::with_source(root, &mut fa);
    // Kernel RW page: AP[2:1]=00, AttrIndx 0, UXN (kernel pages), nG, AF, SH=11.
    t.map_to_lpae(
        page4k(0x2000),
        frame(0x8000),
        PageFlags::PRESENT | PageFlags::WRITABLE,
    )
    .unwrap()
    .ignore();
    let e = raw_entries(root, 0x2000, 0);
    assert_eq!(e[3], 0x8000 | 0b11 | SH_INNER | AF | NG | UXN);
    // Table descriptors: 0b11, count in bits 11:2, no hierarchical attributes.
    for &te in &e[..3] {
        assert_eq!(te & 0b11, 0b11);
        assert_eq!((te >> 2) & 0x3ff, 1);
        assert_eq!(te >> 59, 0);
    }
    // User read-only, no-execute: AP[2:1]=11, PXN and UXN.
    t.map_to_lpae(
        page4k(0x3000),
        frame(0x9000),
        PageFlags::USER | PageFlags::NO_EXECUTE,
    )
    .unwrap()
    .ignore();
    let e = raw_entries(root, 0x3000, 0)[3];
    assert_eq!(
        e,
        0x9000 | 0b11 | (0b11 << 6) | SH_INNER | AF | NG | PXN | UXN
    );
    // User executable: PXN only. Global kernel device page: nG clear, AttrIndx 1.
    t.map_to_lpae(
        page4k(0x4000),
        frame(0xa000),
        PageFlags::USER | PageFlags::WRITABLE,
    )
    .unwrap()
    .ignore();
    assert_eq!(
        raw_entries(root, 0x4000, 0)[3],
        0xa000 | 0b11 | (0b01 << 6) | SH_INNER | AF | NG | PXN
    );
    let dev = PageFlags::WRITABLE | PageFlags::GLOBAL | PageFlags::NO_CACHE;
    t.map_to_lpae(page4k(0x5000), frame(0xb000), dev)
        .unwrap()
        .ignore();
    assert_eq!(
        raw_entries(root, 0x5000, 0)[3],
        0xb000 | 0b11 | (1 << 2) | SH_INNER | AF | UXN
    );
}

#[test]
fn arm_block_descriptor_bits() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = ArmLpaePageTable::with_source(root, &mut fa);
    t.map_to_lpae(
        page(0x4000_0000, PageSize::Size2MiB),
        frame(0x60_0000),
        PageFlags::WRITE_THROUGH,
    )
    .unwrap()
    .ignore();
    let e = raw_entries(root, 0x4000_0000, 1);
    // Level-2 block: bits[1:0] = 01, AttrIndx 2, read-only kernel (AP[2]=1).
    assert_eq!(
        e[2],
        0x60_0000 | 0b01 | (2 << 2) | (0b10 << 6) | SH_INNER | AF | NG | UXN
    );
    t.map_to_lpae(
        page(2 * GIB, PageSize::Size1GiB),
        frame(GIB),
        PageFlags::WRITABLE,
    )
    .unwrap()
    .ignore();
    assert_eq!(
        raw_entries(root, 2 * GIB, 2)[1],
        GIB | 0b01 | SH_INNER | AF | NG | UXN,
        "level-1 block"
    );
    assert_eq!(arm_lpae::MAIR_EL1 & 0xff, 0xff, "attr0 normal write-back");
    assert_eq!(
        (arm_lpae::MAIR_EL1 >> 8) & 0xff,
        0x00,
        "attr1 Device-nGnRnE"
    );
}

// ---- behaviour common to both formats ----

/// Runs a generic test for both formats.
macro_rules! both_formats {
    ($($name:ident),* $(,)?) => {
        mod x86 { $( #[test] fn $name() { super::$name::<super::X86_64Format>(); } )* }
        mod arm { $( #[test] fn $name() { super::$name::<super::ArmLpaeFormat>(); } )* }
    };
}

both_formats!(
    flags_round_trip,
    translate_all_sizes,
    map_errors,
    unmap_and_update_errors,
    failed_map_leaks_nothing,
    tables_freed_on_unmap,
    emptied_tables_wait_for_the_flush,
    corrupt_root_is_an_error,
    iteration_in_order,
    free_tables_in_range,
    destroy_frees_tables,
    kernel_half_sharing,
    adopt_recounts,
    uncounted_tables_stay,
    update_flags_keeps_frame,
);

fn flags_round_trip<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    let all = [
        PageFlags::empty(),
        PageFlags::PRESENT | PageFlags::WRITABLE,
        PageFlags::USER | PageFlags::NO_EXECUTE,
        PageFlags::WRITABLE | PageFlags::USER | PageFlags::NO_EXECUTE | PageFlags::GLOBAL,
        PageFlags::NO_CACHE | PageFlags::WRITE_THROUGH | PageFlags::DIRTY | PageFlags::ACCESSED,
        PageFlags::SOFTWARE_0 | PageFlags::SOFTWARE_2 | PageFlags::NO_EXECUTE,
        PageFlags::all(),
    ];
    for (i, &flags) in all.iter().enumerate() {
        for size in [PageSize::Size4KiB, PageSize::Size2MiB, PageSize::Size1GiB] {
            let v = (i as u64 + 1) * 4 * GIB + size.level() as u64 * GIB;
            map(&mut t, page(v, size), frame(size.bytes()), flags);
            let m = t.lookup(va(v)).unwrap();
            assert_eq!(
                m.flags,
                F::normalize(flags, size),
                "{} {flags:?} {size:?}",
                F::NAME
            );
            assert_eq!((m.size, m.frame), (size, frame(size.bytes())));
        }
    }
}

fn translate_all_sizes<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    map(&mut t, page4k(0x1000), frame(0x7000), PageFlags::WRITABLE);
    map(
        &mut t,
        page(0x4020_0000, PageSize::Size2MiB),
        frame(0x80_0000),
        PageFlags::WRITABLE,
    );
    map(
        &mut t,
        page(0x80_0000_0000, PageSize::Size1GiB),
        frame(5 * GIB),
        PageFlags::WRITABLE,
    );
    let k = 0xffff_ffff_8000_0000;
    map(&mut t, page4k(k), frame(0x9000), PageFlags::GLOBAL);
    assert_eq!(t.translate(va(0x1050)), Some(PhysAddr(0x7050)));
    assert_eq!(t.translate(va(0x4021_2345)), Some(PhysAddr(0x81_2345)));
    assert_eq!(
        t.translate(va(0x80_1234_5678)),
        Some(PhysAddr(5 * GIB + 0x1234_5678))
    );
    assert_eq!(t.translate(va(k + 0xfff)), Some(PhysAddr(0x9fff)));
    assert_eq!(t.translate(va(0x2000)), None);
    assert_eq!(t.translate(va(0xffff_8000_0000_0000)), None);
    assert_eq!(t.lookup(va(0x2000)), Err(TranslateError::PageNotMapped));
}

fn map_errors<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    let w = PageFlags::WRITABLE;
    map(&mut t, page4k(0x1000), frame(0x7000), w);
    assert_eq!(
        t.map_to(page4k(0x1000), frame(0x8000), w).unwrap_err(),
        MapToError::PageAlreadyMapped(frame(0x7000))
    );
    // A 2 MiB page where a table of 4 KiB pages is.
    let err = t
        .map_to(page(0, PageSize::Size2MiB), frame(0x20_0000), w)
        .unwrap_err();
    assert_eq!(err, MapToError::TableInTheWay);
    assert_eq!(
        t.map_to(page(0, PageSize::Size1GiB), frame(0), w)
            .unwrap_err(),
        MapToError::TableInTheWay
    );
    // A 4 KiB page inside a 2 MiB page, and a 2 MiB page inside a 1 GiB page.
    map(
        &mut t,
        page(0x60_0000, PageSize::Size2MiB),
        frame(0x20_0000),
        w,
    );
    let err = t.map_to(page4k(0x60_3000), frame(0x9000), w).unwrap_err();
    assert_eq!(
        err,
        MapToError::ParentEntryHugePage {
            size: PageSize::Size2MiB
        }
    );
    let err = t
        .map_to(page(0x60_0000, PageSize::Size2MiB), frame(0), w)
        .unwrap_err();
    assert_eq!(err, MapToError::PageAlreadyMapped(frame(0x20_0000)));
    map(&mut t, page(GIB, PageSize::Size1GiB), frame(GIB), w);
    let err = t
        .map_to(page(GIB + 0x20_0000, PageSize::Size2MiB), frame(0), w)
        .unwrap_err();
    assert_eq!(
        err,
        MapToError::ParentEntryHugePage {
            size: PageSize::Size1GiB
        }
    );
    // Misaligned and out-of-range frames.
    let err = t
        .map_to(page(0x80_0000, PageSize::Size2MiB), frame(0x1000), w)
        .unwrap_err();
    assert_eq!(
        err,
        MapToError::MisalignedFrame {
            frame: frame(0x1000),
            size: PageSize::Size2MiB
        }
    );
    let far = frame(1 << F::PHYS_BITS);
    assert_eq!(
        t.map_to(page4k(0x5000), far, w).unwrap_err(),
        MapToError::FrameOutOfRange(far)
    );
    assert_eq!(t.translate(va(0x5000)), None);
}

fn unmap_and_update_errors<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    let w = PageFlags::WRITABLE;
    assert_eq!(
        t.unmap(page4k(0x1000)).unwrap_err(),
        UnmapError::PageNotMapped
    );
    assert_eq!(
        t.update_flags(page4k(0x1000), w).unwrap_err(),
        FlagUpdateError::PageNotMapped
    );
    map(&mut t, page4k(0x1000), frame(0x7000), w);
    assert_eq!(
        t.unmap(page4k(0x2000)).unwrap_err(),
        UnmapError::PageNotMapped
    );
    assert_eq!(
        t.unmap(page(0, PageSize::Size2MiB)).unwrap_err(),
        UnmapError::TableInTheWay
    );
    let err = t.update_flags(page(0, PageSize::Size2MiB), w).unwrap_err();
    assert_eq!(err, FlagUpdateError::TableInTheWay);
    map(
        &mut t,
        page(0x40_0000, PageSize::Size2MiB),
        frame(0x20_0000),
        w,
    );
    let huge = PageSize::Size2MiB;
    assert_eq!(
        t.unmap(page4k(0x40_1000)).unwrap_err(),
        UnmapError::ParentEntryHugePage { size: huge }
    );
    let err = t.update_flags(page4k(0x40_1000), w).unwrap_err();
    assert_eq!(err, FlagUpdateError::ParentEntryHugePage { size: huge });
    assert_eq!(t.unmap(page(0x40_0000, huge)).unwrap().0, frame(0x20_0000));
    assert_eq!(
        t.unmap(page(0x40_0000, huge)).unwrap_err(),
        UnmapError::PageNotMapped
    );
}

fn failed_map_leaks_nothing<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let start = fa.free_frames();
    for left in 0..3 {
        let mut t = PageTable::<F, _>::with_source(root, Limited { fa: &mut fa, left });
        let err = t
            .map_to(page4k(0x1000), frame(0x7000), PageFlags::WRITABLE)
            .unwrap_err();
        assert_eq!(err, MapToError::FrameAllocationFailed);
        assert_eq!(t.lookup(va(0x1000)), Err(TranslateError::PageNotMapped));
        assert!(raw_entries(root, 0, 3)[0] == 0, "nothing linked");
        assert_eq!(
            fa.free_frames(),
            start,
            "{} tables allocated, all returned",
            left
        );
    }
}

/// `unmap_retiring` unlinks the tables it empties but gives none back until
/// `free_retired` (after the flush other CPUs need); the retired tables read as
/// empty tables meanwhile (their first entry, the list link, is not present), and
/// `destroy` gives back what is still retired.
fn emptied_tables_wait_for_the_flush<F: EntryFormat>() {
    let cell = RefCell::new(allocator(16 * MIB));
    let start = cell.borrow().free_frames();
    let root = cell.borrow_mut().allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, Shared(&cell));
    let a = 0x4000_0000u64;
    map(&mut t, page4k(a), frame(0x1000), PageFlags::WRITABLE);
    map(
        &mut t,
        page4k(a + 0x1000),
        frame(0x2000),
        PageFlags::WRITABLE,
    );
    let mapped = cell.borrow().free_frames();
    assert_eq!(mapped, start - 4, "root and three tables");
    let walk = raw_entries(root, a, 1);
    t.unmap_retiring(page4k(a)).unwrap().1.ignore();
    assert_eq!(
        cell.borrow().free_frames(),
        mapped,
        "the table still holds a page"
    );
    t.unmap_retiring(page4k(a + 0x1000)).unwrap().1.ignore();
    assert_eq!(
        cell.borrow().free_frames(),
        mapped,
        "emptied tables are not given back before the flush"
    );
    assert_eq!(t.translate(va(a)), None);
    for (level, e) in walk.iter().enumerate() {
        let table = PhysAddr(e & ADDR);
        let first = phys::read_u64(table).unwrap();
        assert!(
            !F::is_present(first),
            "level {level}: the link is a not-present entry"
        );
    }
    assert_eq!(t.free_retired(), 3);
    assert_eq!(
        cell.borrow().free_frames(),
        start - 1,
        "only the root is left"
    );
    assert_eq!(t.free_retired(), 0, "nothing twice");
    map(&mut t, page4k(a), frame(0x1000), PageFlags::WRITABLE);
    t.unmap_retiring(page4k(a)).unwrap().1.ignore();
    let root = t.destroy();
    cell.borrow_mut().deallocate(root).unwrap();
    assert_eq!(
        cell.borrow().free_frames(),
        start,
        "destroy gave back the retired tables"
    );
}

fn tables_freed_on_unmap<F: EntryFormat>() {
    let mut fa = allocator(64 * MIB);
    let start = fa.free_frames();
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    let addrs: Vec<u64> = (0..600)
        .map(|i| i * 0x1000)
        .chain((0..40).map(|i| i * 0x7654_3000 + 0x5000_0000))
        .collect();
    for &a in &addrs {
        map(&mut t, page4k(a), frame(0x1000), PageFlags::WRITABLE);
    }
    map(
        &mut t,
        page(0x7000_0000_0000, PageSize::Size2MiB),
        frame(0),
        PageFlags::empty(),
    );
    assert_eq!(unmap(&mut t, page4k(0)), frame(0x1000));
    assert_eq!(
        t.translate(va(0x1000)),
        Some(PhysAddr(0x1000)),
        "neighbour survives"
    );
    for &a in &addrs[1..] {
        unmap(&mut t, page4k(a));
    }
    unmap(&mut t, page(0x7000_0000_0000, PageSize::Size2MiB));
    assert!((0..512).all(|i| phys::read_u64(PhysAddr(root.start_address.0 + 8 * i)).unwrap() == 0));
    assert_eq!(
        fa.free_frames(),
        start - 1,
        "only the root is still allocated"
    );
    fa.deallocate(root).unwrap();
    assert_eq!(fa.free_frames(), start);
}

fn corrupt_root_is_an_error<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let bogus = frame(phys::limit() + 0x1000);
    let mut t = PageTable::<F, _>::with_source(bogus, &mut fa);
    let at = bogus.start_address;
    assert_eq!(
        t.map_to(page4k(0x1000), frame(0), PageFlags::empty())
            .unwrap_err(),
        MapToError::CorruptTable(at)
    );
    assert_eq!(
        t.unmap(page4k(0x1000)).unwrap_err(),
        UnmapError::CorruptTable(at)
    );
    assert_eq!(
        t.update_flags(page4k(0), PageFlags::empty()).unwrap_err(),
        FlagUpdateError::CorruptTable(at)
    );
    assert_eq!(t.lookup(va(0x1000)), Err(TranslateError::CorruptTable(at)));
    assert_eq!(t.mappings().count(), 0);
    assert_eq!(t.free_tables_in(va(0), va(0x1000_0000)), 0);
}

fn iteration_in_order<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    let k = 0xffff_ffff_c000_0000;
    let want = [
        (page4k(0x1000), frame(0x3000)),
        (page4k(0x3000), frame(0x4000)),
        (page(0x20_0000, PageSize::Size2MiB), frame(0x40_0000)),
        (page(0x40_0000_0000, PageSize::Size1GiB), frame(GIB)),
        (page(k, PageSize::Size2MiB), frame(0)),
    ];
    for &(p, f) in want.iter().rev() {
        map(&mut t, p, f, PageFlags::WRITABLE);
    }
    let got: Vec<(Page, PhysFrame)> = t.mappings().map(|(p, m)| (p, m.frame)).collect();
    assert_eq!(got, want);
    // Intersecting leaves only: the 2 MiB page starts before 0x30_0000.
    let got: Vec<Page> = t
        .mappings_in(va(0x2000), va(0x30_0000))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(got, [want[1].0, want[2].0]);
    assert_eq!(
        t.mappings_in(va(0), va(0x8000_0000_0000 - 0x1000)).count(),
        4
    );
    assert_eq!(
        t.mappings_in(va(0x40_0000_1000), va(0x40_0000_2000))
            .count(),
        1
    );
}

fn free_tables_in_range<F: EntryFormat>() {
    let mut fa = allocator(64 * MIB);
    let start = fa.free_frames();
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    for i in 0..1000 {
        map(
            &mut t,
            page4k(0x10_0000 + i * 0x1000),
            frame(0x1000),
            PageFlags::WRITABLE,
        );
    }
    map(
        &mut t,
        page(0x200_0000, PageSize::Size2MiB),
        frame(0),
        PageFlags::WRITABLE,
    );
    map(
        &mut t,
        page4k(0x8000_0000),
        frame(0x2000),
        PageFlags::WRITABLE,
    );
    // Clear [1 MiB + 4 KiB, 32 MiB + 4 KiB): keeps the first page and the 2 MiB page
    // (only partly inside), drops the rest.
    t.free_tables_in(va(0x10_1000), va(0x200_1000));
    assert_eq!(t.translate(va(0x10_0000)), Some(PhysAddr(0x1000)));
    assert_eq!(t.translate(va(0x10_1000)), None);
    assert_eq!(t.translate(va(0x200_0000)), Some(PhysAddr(0)));
    assert_eq!(t.mappings().count(), 3);
    // The whole lower half: every table goes, the root stays.
    assert!(t.free_tables_in(va(0), va(0x7fff_ffff_f000)) >= 3);
    assert_eq!(t.mappings().count(), 0);
    fa.deallocate(root).unwrap();
    assert_eq!(fa.free_frames(), start);
}

fn destroy_frees_tables<F: EntryFormat>() {
    let mut fa = allocator(64 * MIB);
    let start = fa.free_frames();
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    for i in 0..300 {
        map(
            &mut t,
            page4k(i * 0x20_1000),
            frame(0x1000),
            PageFlags::USER,
        );
    }
    map(
        &mut t,
        page4k(0xffff_8000_0000_0000),
        frame(0x1000),
        PageFlags::empty(),
    );
    map(
        &mut t,
        page(0xffff_c000_0000_0000, PageSize::Size1GiB),
        frame(0),
        PageFlags::empty(),
    );
    assert_eq!(t.destroy(), root);
    fa.deallocate(root).unwrap();
    assert_eq!(fa.free_frames(), start);
}

fn kernel_half_sharing<F: EntryFormat>() {
    let fa = RefCell::new(allocator(64 * MIB));
    let start = fa.borrow().free_frames();
    let k = 0xffff_8000_0000_0000;
    let kroot = fa.borrow_mut().allocate().unwrap();
    let mut kernel = PageTable::<F, _>::with_source(kroot, Shared(&fa));
    kernel.populate_upper_half().unwrap();
    map(&mut kernel, page4k(k), frame(0x1000), PageFlags::GLOBAL);
    let uroot = fa.borrow_mut().allocate().unwrap();
    let mut user = PageTable::<F, _>::with_source(uroot, Shared(&fa));
    map(
        &mut user,
        page4k(0xffff_9000_0000_0000),
        frame(0x5000),
        PageFlags::empty(),
    ); // replaced
    user.copy_upper_half_from(&kernel);
    kernel.copy_upper_half_from(&PageTable::<F, _>::from_root(kroot, Shared(&fa))); // itself: no-op
    assert_eq!(user.translate(va(0xffff_9000_0000_0000)), None);
    assert_eq!(user.translate(va(k)), Some(PhysAddr(0x1000)));
    // Kernel mappings through either table are seen by both.
    map(
        &mut user,
        page4k(0xffff_ff00_0000_0000),
        frame(0x2000),
        PageFlags::empty(),
    );
    assert_eq!(
        kernel.translate(va(0xffff_ff00_0000_0000)),
        Some(PhysAddr(0x2000))
    );
    map(&mut user, page4k(0x1000), frame(0x3000), PageFlags::USER);
    assert_eq!(
        kernel.translate(va(0x1000)),
        None,
        "user half stays private"
    );
    // Unmapping through the borrower frees tables inside the shared tree, never
    // the level-2 table below the root entry.
    unmap(&mut user, page4k(k));
    assert_eq!(kernel.translate(va(k)), None);
    map(
        &mut kernel,
        page4k(k + 0x1000),
        frame(0x4000),
        PageFlags::empty(),
    );
    assert_eq!(user.translate(va(k + 0x1000)), Some(PhysAddr(0x4000)));
    // Tearing the borrower down leaves the kernel half alone.
    user.free_tables_in(va(0xffff_8000_0000_0000), va(0xffff_ffff_ffff_f000));
    user.destroy();
    fa.borrow_mut().deallocate(uroot).unwrap();
    assert_eq!(kernel.translate(va(k + 0x1000)), Some(PhysAddr(0x4000)));
    assert_eq!(
        kernel.translate(va(0xffff_ff00_0000_0000)),
        Some(PhysAddr(0x2000))
    );
    kernel.destroy();
    fa.borrow_mut().deallocate(kroot).unwrap();
    assert_eq!(fa.borrow().free_frames(), start);
}

fn adopt_recounts<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let start = fa.free_frames();
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    let pages = [
        page4k(0x1000),
        page4k(0x2000),
        page4k(0x40_0000),
        page4k(0x7f00_0000_0000),
    ];
    for p in pages {
        map(&mut t, p, frame(0x1000), PageFlags::WRITABLE);
    }
    let root_frame = t.root();
    strip_counts::<F>(root_frame.start_address, 3);
    let mut t = PageTable::<F, _>::adopt(root_frame, &mut fa);
    for p in pages {
        unmap(&mut t, p);
    }
    fa.deallocate(root).unwrap();
    assert_eq!(fa.free_frames(), start);
}

/// Clears the count of every table entry below `table`, as foreign code would
/// leave it.
fn strip_counts<F: EntryFormat>(table: PhysAddr, level: usize) {
    for i in 0..512 {
        let at = PhysAddr(table.0 + 8 * i);
        let e = phys::read_u64(at).unwrap();
        if F::is_present(e) && F::is_table(e, level) {
            phys::write_u64(at, F::with_count(e, 0)).unwrap();
            strip_counts::<F>(F::table_addr(e), level - 1);
        }
    }
}

fn update_flags_keeps_frame<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    map(
        &mut t,
        page(0x20_0000, PageSize::Size2MiB),
        frame(0x40_0000),
        PageFlags::WRITABLE,
    );
    let flush = t
        .update_flags(page(0x20_0000, PageSize::Size2MiB), PageFlags::USER)
        .unwrap();
    assert_eq!(flush.addr(), va(0x20_0000));
    flush.flush();
    let m = t.lookup(va(0x20_1234)).unwrap();
    let want = F::normalize(PageFlags::USER, PageSize::Size2MiB);
    assert_eq!(
        (m.frame, m.flags, m.size),
        (frame(0x40_0000), want, PageSize::Size2MiB)
    );
    assert!(!m.flags.contains(PageFlags::WRITABLE));
}

fn uncounted_tables_stay<F: EntryFormat>() {
    let mut fa = allocator(16 * MIB);
    let start = fa.free_frames();
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    map(&mut t, page4k(0x1000), frame(0x1000), PageFlags::WRITABLE);
    map(&mut t, page4k(0x2000), frame(0x2000), PageFlags::WRITABLE);
    strip_counts::<F>(root.start_address, 3);
    // Tables built without counts are never freed, whatever is mapped or unmapped.
    map(
        &mut t,
        page4k(0x20_0000),
        frame(0x3000),
        PageFlags::WRITABLE,
    );
    unmap(&mut t, page4k(0x1000));
    unmap(&mut t, page4k(0x20_0000));
    assert_eq!(t.translate(va(0x2000)), Some(PhysAddr(0x2000)));
    unmap(&mut t, page4k(0x2000));
    assert_ne!(raw_entries(root, 0, 3)[0], 0, "uncounted tables stay");
    map(&mut t, page4k(0x1000), frame(0x4000), PageFlags::WRITABLE);
    assert_eq!(t.translate(va(0x1234)), Some(PhysAddr(0x4234)));
    t.destroy();
    fa.deallocate(root).unwrap();
    assert_eq!(fa.free_frames(), start);
}

//! Page tables: the kernel's `X86_64PageTable` against the `x86_64` crate's
//! `OffsetPageTable`, on the same simulated physical memory.
//!
//! Both walk tables that live in simulated RAM and reach them through the same
//! window (`OffsetPageTable`'s physical-memory offset is `phys_to_virt(0)`), and
//! both take their table frames from a private instance of the kernel's
//! `FrameAllocator`, so only the walkers differ.
//!
//! Workloads, over [`PAGES`] consecutive 4 KiB pages at [`VIRT_BASE`] mapped to
//! consecutive frames (the mapped frames are only numbers; they are never touched):
//! * `map`: map every page (op = one page). The kernel's table builds its tables anew
//!   each time (its unmap freed them); plain `OffsetPageTable` reuses the empty tables
//!   its unmap left behind, the `+ clean_up` variant builds them anew like ours;
//! * `translate`: translate an address inside every page (op = one translation);
//! * `unmap`: unmap every page (op = one page). The kernel's `unmap` frees tables
//!   that become empty; `OffsetPageTable::unmap` does not, so it is measured twice:
//!   plain, and followed by `CleanUp::clean_up_addr_range` (the same end state; its
//!   cost is spread over the pages).
//!
//! TLB flush tokens are ignored: the tables are never active (and `invlpg` would
//! fault in a host process).

use crate::harness::Runner;
use criterion::Bencher;
use kernel::memory::frame_allocator::FrameAllocator as KernelFrames;
use kernel::memory::paging::{Page, PageFlags, PageTableMapper, X86_64PageTable};
use kernel::memory::phys::{host_fresh_range, phys_to_virt};
use kernel::memory::{MemoryRegion, PhysAddr, PhysFrame, VirtAddr};
use std::hint::black_box;
use std::time::{Duration, Instant};
use x86_64::structures::paging as xp;
use x86_64::structures::paging::mapper::CleanUp;
use x86_64::structures::paging::{Mapper, Translate};

/// Pages mapped, translated and unmapped per iteration.
pub const PAGES: u64 = 100_000;
/// First virtual address of the range.
pub const VIRT_BASE: u64 = 0x0000_1000_0000_0000;
/// Simulated RAM for the table frames of one contender.
const TABLE_RAM: u64 = 64 << 20;

/// What the benchmark needs from a page table.
pub trait Table {
    /// Maps the 4 KiB page at `va` to the frame at `pa`, read/write.
    fn map(&mut self, va: u64, pa: u64);
    /// The physical address `va` translates to.
    fn translate(&self, va: u64) -> Option<u64>;
    /// Unmaps the page at `va`; returns its frame.
    fn unmap(&mut self, va: u64) -> u64;
    /// Called once after a run of unmaps (frees empty tables where the walker does
    /// not do it itself).
    fn after_unmaps(&mut self) {}
}

/// A private kernel frame allocator over fresh RAM, for table frames.
fn table_frames() -> KernelFrames {
    let mut fa = KernelFrames::new();
    fa.add_region(MemoryRegion::new(host_fresh_range(TABLE_RAM), TABLE_RAM))
        .expect("region");
    fa
}

/// The kernel frame allocator as the `x86_64` crate's frame (de)allocator.
pub struct XFrames(KernelFrames);

fn to_x(f: PhysFrame) -> xp::PhysFrame {
    xp::PhysFrame::containing_address(x86_64::PhysAddr::new(f.start_address.0))
}

// SAFETY: the kernel allocator hands out each frame once until it is freed.
unsafe impl xp::FrameAllocator<xp::Size4KiB> for XFrames {
    fn allocate_frame(&mut self) -> Option<xp::PhysFrame> {
        self.0.allocate().ok().map(to_x)
    }
}

impl xp::FrameDeallocator<xp::Size4KiB> for XFrames {
    unsafe fn deallocate_frame(&mut self, frame: xp::PhysFrame) {
        let f = PhysFrame::containing_address(PhysAddr(frame.start_address().as_u64()));
        self.0.deallocate(f).expect("table frame freed twice");
    }
}

/// `x86_64::structures::paging::OffsetPageTable` over the simulated RAM.
pub struct XTable {
    table: xp::OffsetPageTable<'static>,
    frames: XFrames,
    /// Run `clean_up_addr_range` after unmapping (to free empty tables).
    clean_up: bool,
}

impl XTable {
    /// A fresh, empty table.
    pub fn fresh(clean_up: bool) -> Self {
        let mut frames = XFrames(table_frames());
        let root = frames.0.allocate().expect("root frame");
        kernel::memory::phys::zero_frame(root).expect("zero root");
        let ptr = phys_to_virt(root.start_address).as_mut_ptr::<xp::PageTable>();
        let offset = x86_64::VirtAddr::new(phys_to_virt(PhysAddr(0)).as_u64());
        // SAFETY: `root` is a zeroed frame we own for the life of the process (the
        // table is leaked), visible at `ptr`; every physical address the tables will
        // hold lies inside the window, which starts at `offset`.
        let table = unsafe { xp::OffsetPageTable::new(&mut *ptr, offset) };
        XTable {
            table,
            frames,
            clean_up,
        }
    }
}

fn xpage(va: u64) -> xp::Page<xp::Size4KiB> {
    xp::Page::containing_address(x86_64::VirtAddr::new(va))
}

impl Table for XTable {
    #[inline]
    fn map(&mut self, va: u64, pa: u64) {
        let frame = xp::PhysFrame::containing_address(x86_64::PhysAddr::new(pa));
        let flags = xp::PageTableFlags::PRESENT | xp::PageTableFlags::WRITABLE;
        // SAFETY: the table is not active; the mapped frame is never accessed.
        unsafe { self.table.map_to(xpage(va), frame, flags, &mut self.frames) }
            .expect("x86_64 map_to")
            .ignore();
    }
    #[inline]
    fn translate(&self, va: u64) -> Option<u64> {
        self.table
            .translate_addr(x86_64::VirtAddr::new(va))
            .map(|p| p.as_u64())
    }
    #[inline]
    fn unmap(&mut self, va: u64) -> u64 {
        let (frame, flush) = self.table.unmap(xpage(va)).expect("x86_64 unmap");
        flush.ignore();
        frame.start_address().as_u64()
    }
    fn after_unmaps(&mut self) {
        if self.clean_up {
            let range =
                xp::Page::range_inclusive(xpage(VIRT_BASE), xpage(VIRT_BASE + (PAGES - 1) * 4096));
            // SAFETY: every table of this page table is used once, by it alone.
            unsafe { self.table.clean_up_addr_range(range, &mut self.frames) };
        }
    }
}

/// The kernel's x86_64 page table over a private kernel frame allocator.
pub struct Ours(X86_64PageTable<KernelFrames>);

impl Ours {
    /// A fresh, empty table.
    pub fn fresh() -> Self {
        let mut fa = table_frames();
        let root = fa.allocate().expect("root frame");
        Ours(X86_64PageTable::with_source(root, fa))
    }
}

fn page(va: u64) -> Page {
    Page::containing_address(VirtAddr::new(va))
}

impl Table for Ours {
    #[inline]
    fn map(&mut self, va: u64, pa: u64) {
        let frame = PhysFrame::containing_address(PhysAddr(pa));
        self.0
            .map_to(page(va), frame, PageFlags::WRITABLE)
            .expect("kernel map_to")
            .ignore();
    }
    #[inline]
    fn translate(&self, va: u64) -> Option<u64> {
        self.0.translate(VirtAddr::new(va)).map(|p| p.0)
    }
    #[inline]
    fn unmap(&mut self, va: u64) -> u64 {
        let (frame, flush) = self.0.unmap(page(va)).expect("kernel unmap");
        flush.ignore();
        frame.start_address.0
    }
}

/// First physical address the pages map to (never touched).
fn data_base() -> u64 {
    use std::sync::OnceLock;
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| host_fresh_range(PAGES * 4096).0)
}

fn map_all<T: Table>(t: &mut T) {
    let pa = data_base();
    for i in 0..PAGES {
        t.map(VIRT_BASE + i * 4096, pa + i * 4096);
    }
}

fn unmap_all<T: Table>(t: &mut T) {
    for i in 0..PAGES {
        black_box(t.unmap(VIRT_BASE + i * 4096));
    }
    t.after_unmaps();
}

/// Checks the contender once: every page translates to its frame, and unmapping
/// gives every frame back.
fn check<T: Table>(t: &mut T) {
    map_all(t);
    let pa = data_base();
    for i in (0..PAGES).step_by(997) {
        assert_eq!(
            t.translate(VIRT_BASE + i * 4096 + 123),
            Some(pa + i * 4096 + 123)
        );
    }
    for i in 0..PAGES {
        assert_eq!(t.unmap(VIRT_BASE + i * 4096), pa + i * 4096);
    }
    t.after_unmaps();
    assert_eq!(t.translate(VIRT_BASE), None);
}

fn bench_map<T: Table>(b: &mut Bencher<'_>, t: &mut T) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            map_all(t);
            total += start.elapsed();
            unmap_all(t);
        }
        total
    })
}

fn bench_translate<T: Table>(b: &mut Bencher<'_>, t: &mut T) {
    map_all(t);
    b.iter(|| {
        for i in 0..PAGES {
            black_box(t.translate(black_box(VIRT_BASE + i * 4096 + 8)));
        }
    });
    unmap_all(t);
}

fn bench_unmap<T: Table>(b: &mut Bencher<'_>, t: &mut T) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            map_all(t);
            let start = Instant::now();
            unmap_all(t);
            total += start.elapsed();
        }
        total
    })
}

const OURS: &str = "kernel X86_64PageTable";
const X: &str = "x86_64 OffsetPageTable";
const X_CLEAN: &str = "x86_64 OffsetPageTable + clean_up";

/// Runs the page-table workloads.
pub fn run(r: &mut Runner) {
    if !["map", "translate", "unmap"]
        .iter()
        .any(|id| r.wanted("paging", id))
    {
        return;
    }
    let mut ours = Ours::fresh();
    let mut x = XTable::fresh(false);
    let mut xc = XTable::fresh(true);
    check(&mut ours);
    check(&mut x);
    check(&mut xc);

    let [wm, wt, wu] = workloads();
    let mut g = r.group("paging", "map", &wm, PAGES);
    g.bench(OURS, true, |b| bench_map(b, &mut ours));
    g.bench(X, false, |b| bench_map(b, &mut x));
    g.bench(X_CLEAN, false, |b| bench_map(b, &mut xc));
    g.finish();

    let mut g = r.group("paging", "translate", &wt, PAGES);
    g.bench(OURS, true, |b| bench_translate(b, &mut ours));
    g.bench(X, false, |b| bench_translate(b, &mut x));
    g.finish();

    let mut g = r.group("paging", "unmap", &wu, PAGES);
    g.bench(OURS, true, |b| bench_unmap(b, &mut ours));
    g.bench(X, false, |b| bench_unmap(b, &mut x));
    g.bench(X_CLEAN, false, |b| bench_unmap(b, &mut xc));
    g.finish();
}

/// The table texts of the three workloads.
fn workloads() -> [String; 3] {
    [
        format!("paging: map {PAGES} 4 KiB pages (op = one page)"),
        format!("paging: translate {PAGES} mapped addresses (op = one lookup)"),
        format!("paging: unmap {PAGES} 4 KiB pages (op = one page)"),
    ]
}

//! The one page-table walker, [`PageTable`], generic over the entry format.
//!
//! ## What it owns
//! The root frame it was given and every intermediate table it allocated from its
//! [`FrameSource`]. It never owns leaf frames: `map_to` takes a frame, `unmap`
//! gives it back, and freeing it is the caller's business.
//!
//! ## Invariants
//! * Every table entry below the root carries the number of present entries of the
//!   table it points to (see [`super::format`]); lower-half root entries do too.
//! * A table other than the root is freed as soon as its count drops to 0. A
//!   table entry whose count reads 0 while present (built by other code and not
//!   [adopted](PageTable::adopt)) is "uncounted": its table is never freed by unmap.
//! * The kernel half (root entries 256..512) is shared between address spaces:
//!   the level-2 tables below those root entries are permanent (never freed on
//!   unmap, and their root entries carry no count), and root entries copied from
//!   another table by [`PageTable::copy_upper_half_from`] are marked BORROWED and
//!   never freed or cleared by teardown. Tables deeper in the kernel half keep their
//!   counts inside the shared tables themselves, so every sharer sees the same ones.
//! * Tables are fully built before they are linked, so a failed `map_to` changes
//!   nothing and leaks nothing.
//!
//! All memory is touched through [`crate::memory::phys`]; this file has no
//! `unsafe`.

use core::fmt;
use core::marker::PhantomData;

use super::error::{FindError, MapToError, TranslateError};
use super::flags::PageFlags;
use super::format::{EntryFormat, Half};
use crate::memory::frame_allocator::{FrameSource, GlobalFrames};
use crate::memory::phys::{self, OutsideWindow};
use crate::memory::{Page, PageSize, PhysAddr, PhysFrame, VirtAddr};

/// Level of the root table.
const ROOT_LEVEL: usize = 3;
/// Entries per table.
const ENTRIES: usize = 512;
/// Bits of virtual address a 4-level table translates.
const VA_BITS: u32 = 48;

/// A leaf translation found by [`PageTable::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// First frame of the mapped physical range (aligned to `size`).
    pub frame: PhysFrame,
    /// The leaf's flags, as the format stores them (see [`EntryFormat::normalize`]).
    pub flags: PageFlags,
    /// Size of the leaf.
    pub size: PageSize,
}

impl Mapping {
    /// The physical address `addr` (which lies in this leaf's page) translates to.
    pub fn phys_addr(&self, addr: VirtAddr) -> PhysAddr {
        self.frame.start_address + (addr.as_u64() & (self.size.bytes() - 1))
    }
}

/// What a walk went through: `slot[l]` is the physical address of the entry at
/// level `l`, `entry[l]` its value as read. Keeping the values spares a second
/// read when the walk updates counts on its way back up.
#[derive(Default)]
struct Path {
    slot: [PhysAddr; 4],
    entry: [u64; 4],
}

impl Path {
    /// Reads the entry for `va` in `table` at `level` and records it.
    #[inline]
    fn visit(&mut self, table: PhysAddr, va: VirtAddr, level: usize) -> Result<u64, OutsideWindow> {
        self.slot[level] = slot(table, va, level);
        self.entry[level] = phys::read_u64(self.slot[level])?;
        Ok(self.entry[level])
    }
}

/// The slot of the entry for `va` in `table` at `level`.
#[inline]
fn slot(table: PhysAddr, va: VirtAddr, level: usize) -> PhysAddr {
    PhysAddr(table.0 + 8 * va.table_index(level) as u64)
}

/// Bytes of virtual address space one entry at `level` covers.
#[inline]
const fn span(level: usize) -> u64 {
    1 << (12 + 9 * level)
}

/// A virtual address as an offset in the 48-bit space (upper half after lower).
#[inline]
fn linear(va: VirtAddr) -> u64 {
    va.as_u64() & ((1 << VA_BITS) - 1)
}

/// The size of a leaf at `level`, or `CorruptTable` for a leaf where none may be.
fn leaf_size(level: usize, table: PhysAddr) -> Result<PageSize, FindError> {
    PageSize::at_level(level).ok_or(FindError::Corrupt(table))
}

/// A page table: a root frame, the entry format `F` and the source `A` of frames
/// for intermediate tables. See the module documentation for what it owns.
///
/// Dropping a `PageTable` frees nothing (several handles may name the active
/// table); use [`PageTable::destroy`] to tear one down.
pub struct PageTable<F: EntryFormat, A: FrameSource = GlobalFrames> {
    root: PhysFrame,
    source: A,
    /// Tables an unmap emptied and took out of the tree, not yet given back (0:
    /// none): other CPUs may still hold walks through them in their paging-structure
    /// caches (x86_64) or walk caches (ARM) until they flush, and a table handed out
    /// again meanwhile could be walked as what it then holds. A list through each
    /// table's first entry, whose value (the next table's page-aligned address, or 0)
    /// is a not-present entry in both formats; freed by
    /// [`free_retired`](Self::free_retired) after the flush.
    retired: PhysAddr,
    format: PhantomData<F>,
}

impl<F: EntryFormat, A: FrameSource> fmt::Debug for PageTable<F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageTable<{}>({:?})", F::NAME, self.root)
    }
}

impl<F: EntryFormat> PageTable<F, GlobalFrames> {
    /// A new, empty table rooted at `root` (which is zeroed), with intermediate
    /// tables from the global frame allocator.
    pub fn new(root: PhysFrame) -> Self {
        Self::with_source(root, GlobalFrames)
    }
}

impl<F: EntryFormat, A: FrameSource> PageTable<F, A> {
    /// A new, empty table rooted at `root` (which is zeroed), with intermediate
    /// tables from `source`. A root outside physical memory is not refused here;
    /// every operation on it then fails with `CorruptTable`.
    pub fn with_source(root: PhysFrame, source: A) -> Self {
        let _ = phys::zero_frame(root);
        Self::from_root(root, source)
    }

    /// Adopts the existing table at `root`, built by this module (its entries carry
    /// used-entry counts). For a table built elsewhere use [`PageTable::adopt`].
    pub fn from_root(root: PhysFrame, source: A) -> Self {
        PageTable {
            root,
            source,
            retired: PhysAddr(0),
            format: PhantomData,
        }
    }

    /// Adopts a table built by other code (boot code, say): recomputes the
    /// used-entry count of every table entry, so that unmap can free tables.
    pub fn adopt(root: PhysFrame, source: A) -> Self {
        let table = Self::from_root(root, source);
        let _ = table.recount(root.start_address, ROOT_LEVEL);
        table
    }

    /// The root table's frame.
    pub fn root(&self) -> PhysFrame {
        self.root
    }

    /// The frame source (to inspect a private allocator, say).
    pub fn source_mut(&mut self) -> &mut A {
        &mut self.source
    }

    /// The leaf that maps `addr`, with its frame, flags and size.
    #[inline]
    pub fn lookup(&self, addr: VirtAddr) -> Result<Mapping, TranslateError> {
        let w = phys::window();
        let mut table = self.root.start_address;
        let mut level = ROOT_LEVEL;
        loop {
            let e = w.read_u64(slot(table, addr, level))?;
            if !F::is_present(e) {
                return Err(TranslateError::PageNotMapped);
            }
            if !F::is_table(e, level) {
                let size = PageSize::at_level(level).ok_or(TranslateError::CorruptTable(table))?;
                return Ok(Self::mapping(e, size));
            }
            table = F::table_addr(e);
            level -= 1;
        }
    }

    fn mapping(entry: u64, size: PageSize) -> Mapping {
        Mapping {
            frame: PhysFrame::containing_address(F::leaf_addr(entry, size)),
            flags: F::leaf_flags(entry, size),
            size,
        }
    }

    /// Checks that `frame` can start a leaf of `size` in this format.
    fn check_frame(frame: PhysFrame, size: PageSize) -> Result<(), MapToError> {
        if !frame.start_address.is_aligned(size.bytes()) {
            return Err(MapToError::MisalignedFrame { frame, size });
        }
        if frame.start_address.0 >> F::PHYS_BITS != 0 {
            return Err(MapToError::FrameOutOfRange(frame));
        }
        Ok(())
    }

    /// Maps `page` to `frame` (see [`super::PageTableMapper::map_to`]).
    pub(super) fn map(
        &mut self,
        page: Page,
        frame: PhysFrame,
        flags: PageFlags,
    ) -> Result<(), MapToError> {
        let size = page.size();
        Self::check_frame(frame, size)?;
        let va = page.start_address();
        let target = size.level();
        let mut path = Path::default();
        let absent = self.walk_to_hole(va, target, &mut path)?;
        let mut new_tables = [PhysAddr(0); ROOT_LEVEL];
        let new_tables = &mut new_tables[..absent - target];
        self.alloc_tables(new_tables)?;
        // Build the chain of new tables bottom up, then link it in one write.
        let mut entry = F::leaf_entry(frame.start_address, flags, size);
        for (i, &table) in new_tables.iter().enumerate().rev() {
            phys::write_u64(slot(table, va, absent - 1 - i), entry)?;
            entry = F::with_count(
                F::table_entry(PhysFrame::containing_address(table), Half::of(va)),
                1,
            );
        }
        phys::write_u64(path.slot[absent], entry)?;
        self.bump(&path, absent + 1, va)?;
        Ok(())
    }

    /// Walks towards `target` for `va` while entries exist, filling `path`.
    /// Returns the level of the first absent entry (at or above `target`), or why
    /// the page cannot be mapped.
    fn walk_to_hole(
        &self,
        va: VirtAddr,
        target: usize,
        path: &mut Path,
    ) -> Result<usize, MapToError> {
        let mut table = self.root.start_address;
        let mut level = ROOT_LEVEL;
        loop {
            let e = path.visit(table, va, level)?;
            if !F::is_present(e) {
                return Ok(level);
            }
            let is_table = F::is_table(e, level);
            if level == target {
                return Err(match PageSize::at_level(level) {
                    Some(size) if !is_table => {
                        MapToError::PageAlreadyMapped(Self::mapping(e, size).frame)
                    }
                    _ => MapToError::TableInTheWay,
                });
            }
            if !is_table {
                return Err(match PageSize::at_level(level) {
                    Some(size) => MapToError::ParentEntryHugePage { size },
                    None => MapToError::CorruptTable(table),
                });
            }
            table = F::table_addr(e);
            level -= 1;
        }
    }

    /// Fills `out` with fresh zeroed tables, or allocates none at all.
    fn alloc_tables(&mut self, out: &mut [PhysAddr]) -> Result<(), MapToError> {
        for i in 0..out.len() {
            match self.new_table() {
                Ok(t) => out[i] = t,
                Err(e) => {
                    out[..i].iter().for_each(|&t| self.free_table(t));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// One zeroed table from the frame source.
    fn new_table(&mut self) -> Result<PhysAddr, MapToError> {
        let frame = self.source.alloc_frame()?;
        if let Err(OutsideWindow(a)) = phys::zero_frame(frame) {
            let _ = self.source.free_frame(frame);
            return Err(MapToError::CorruptTable(a));
        }
        Ok(frame.start_address)
    }

    /// Gives a table back to the frame source. A table the source never handed out
    /// (one built by boot code, say) is refused by the source and simply dropped.
    fn free_table(&mut self, table: PhysAddr) {
        let _ = self.source.free_frame(PhysFrame::containing_address(table));
    }

    /// Puts a table an unmap emptied (and unlinked) on the retired list (see
    /// `retired`).
    fn retire_table(&mut self, table: PhysAddr) -> Result<(), OutsideWindow> {
        phys::write_u64(table, self.retired.0)?;
        self.retired = table;
        Ok(())
    }

    /// Gives back the tables unmaps emptied since the last call: call it once every
    /// CPU that ran on this table has flushed what those unmaps changed. Returns how
    /// many.
    pub fn free_retired(&mut self) -> usize {
        let mut n = 0;
        while self.retired.0 != 0 {
            let table = self.retired;
            // Written by `retire_table`, so inside the window; a failed read ends the
            // list (the rest is lost, never reused while walked).
            self.retired = PhysAddr(phys::read_u64(table).unwrap_or(0));
            let _ = phys::write_u64(table, 0);
            self.free_table(table);
            n += 1;
        }
        n
    }

    /// Whether the entry at `path.slot[level]` keeps a count: every table entry except
    /// kernel-half root entries (and there is no entry above the root).
    fn counted(level: usize, va: VirtAddr) -> bool {
        level < ROOT_LEVEL || (level == ROOT_LEVEL && Half::of(va) == Half::Lower)
    }

    /// One more entry in the table `path.slot[level]` points to.
    #[inline]
    fn bump(&self, path: &Path, level: usize, va: VirtAddr) -> Result<(), OutsideWindow> {
        if !Self::counted(level, va) {
            return Ok(());
        }
        let e = path.entry[level];
        match F::count(e) {
            0 => Ok(()), // uncounted: leave it so
            _ => phys::write_u64(path.slot[level], F::count_up(e)),
        }
    }

    /// One entry fewer in the table `path.slot[level]` points to; unlinks and retires
    /// it when empty (see `retired`), and so on upwards.
    fn release(
        &mut self,
        path: &Path,
        mut level: usize,
        va: VirtAddr,
    ) -> Result<(), OutsideWindow> {
        while Self::counted(level, va) {
            let e = path.entry[level];
            let count = F::count(e);
            if count == 0 {
                // A table built elsewhere and never recounted: never freed.
                return Ok(());
            }
            if count > 1 {
                return phys::write_u64(path.slot[level], F::count_down(e));
            }
            phys::write_u64(path.slot[level], 0)?;
            self.retire_table(F::table_addr(e))?;
            level += 1;
        }
        Ok(())
    }

    /// Walks to the leaf of `size` for `va`, filling `path` up to and including
    /// the leaf. Returns the leaf entry.
    fn find_leaf(&self, va: VirtAddr, size: PageSize, path: &mut Path) -> Result<u64, FindError> {
        let target = size.level();
        let mut table = self.root.start_address;
        let mut level = ROOT_LEVEL;
        loop {
            let e = path.visit(table, va, level)?;
            if !F::is_present(e) {
                return Err(FindError::NotMapped);
            }
            let is_table = F::is_table(e, level);
            match (level == target, is_table) {
                (true, true) => return Err(FindError::TableInTheWay),
                (true, false) => return Ok(e),
                (false, false) => return Err(FindError::Huge(leaf_size(level, table)?)),
                (false, true) => {}
            }
            table = F::table_addr(e);
            level -= 1;
        }
    }

    /// Removes the leaf of `page`; returns its frame (see
    /// [`super::PageTableMapper::unmap`]).
    #[inline]
    pub(super) fn unmap_leaf(&mut self, page: Page) -> Result<PhysFrame, FindError> {
        let (va, size) = (page.start_address(), page.size());
        if size == PageSize::Size4KiB {
            return self.unmap_4k(va);
        }
        let mut path = Path::default();
        let e = self.find_leaf(va, size, &mut path)?;
        phys::write_u64(path.slot[size.level()], 0)?;
        self.release(&path, size.level() + 1, va)?;
        Ok(Self::mapping(e, size).frame)
    }

    /// [`unmap_leaf`](Self::unmap_leaf) of the 4 KiB page at `va`: the same walk and
    /// the same checks, with the path kept in registers. Unless the page table
    /// empties (or is uncounted), the whole update is the leaf and its parent's count.
    #[inline]
    fn unmap_4k(&mut self, va: VirtAddr) -> Result<PhysFrame, FindError> {
        // One read of the window's base and limit for the six accesses.
        let w = phys::window();
        let mut slots = [PhysAddr(0); 4];
        let mut entries = [0u64; 4];
        let mut table = self.root.start_address;
        for level in (1..=ROOT_LEVEL).rev() {
            slots[level] = slot(table, va, level);
            entries[level] = w.read_u64(slots[level])?;
            table = Self::next_table(entries[level], level, table)?;
        }
        slots[0] = slot(table, va, 0);
        entries[0] = w.read_u64(slots[0])?;
        if !F::is_present(entries[0]) {
            return Err(FindError::NotMapped);
        }
        w.write_u64(slots[0], 0)?;
        let parent = entries[1];
        if F::count(parent) > 1 {
            w.write_u64(slots[1], F::count_down(parent))?;
        } else {
            let path = Path {
                slot: slots,
                entry: entries,
            };
            self.release(&path, 1, va)?;
        }
        Ok(Self::mapping(entries[0], PageSize::Size4KiB).frame)
    }

    /// The table the entry `e` (of `table`, at `level` > 0) points to on the way to a
    /// 4 KiB leaf, or why there is none.
    #[inline]
    fn next_table(e: u64, level: usize, table: PhysAddr) -> Result<PhysAddr, FindError> {
        if !F::is_present(e) {
            return Err(FindError::NotMapped);
        }
        if !F::is_table(e, level) {
            return Err(FindError::Huge(leaf_size(level, table)?));
        }
        Ok(F::table_addr(e))
    }

    /// Rewrites the flags of the leaf of `page`, keeping its frame.
    pub(super) fn set_flags(&mut self, page: Page, flags: PageFlags) -> Result<(), FindError> {
        let (va, size) = (page.start_address(), page.size());
        let mut path = Path::default();
        let e = self.find_leaf(va, size, &mut path)?;
        let leaf = F::leaf_entry(F::leaf_addr(e, size), flags, size);
        Ok(phys::write_u64(path.slot[size.level()], leaf)?)
    }

    // ---- whole-range operations: iteration, teardown, kernel-half sharing ----

    /// Every leaf that intersects `[start, end)`, in address order, as the page it
    /// maps (with its size) and its [`Mapping`]. Subtrees that cannot be read are
    /// skipped.
    pub fn mappings_in(&self, start: VirtAddr, end: VirtAddr) -> Mappings<'_, F, A> {
        Mappings {
            table: self,
            next: linear(start),
            end: linear(end),
        }
    }

    /// Every leaf of the table, lower half first.
    pub fn mappings(&self) -> Mappings<'_, F, A> {
        Mappings {
            table: self,
            next: 0,
            end: 1 << VA_BITS,
        }
    }

    /// What lies at the linear address `lin`: a leaf, or a hole covering the whole
    /// span of an entry at some level.
    fn probe(&self, lin: u64) -> Probe {
        let va = VirtAddr::new_truncate(lin);
        let mut table = self.root.start_address;
        let mut level = ROOT_LEVEL;
        loop {
            let e = match phys::read_u64(slot(table, va, level)) {
                Ok(e) if F::is_present(e) => e,
                _ => return Probe::Hole(level),
            };
            if !F::is_table(e, level) {
                return match PageSize::at_level(level) {
                    Some(size) => Probe::Leaf(Self::mapping(e, size)),
                    None => Probe::Hole(level),
                };
            }
            table = F::table_addr(e);
            level -= 1;
        }
    }

    /// Unmaps everything inside `[start, end)` without freeing leaf frames, and
    /// frees the intermediate tables that lie inside the range or become empty.
    /// Leaves only partly inside the range stay. Borrowed kernel-half entries are
    /// skipped, and kernel-half level-2 tables stay (they are permanent). Returns
    /// the number of tables freed. Callers flush the TLB for the range.
    pub fn free_tables_in(&mut self, start: VirtAddr, end: VirtAddr) -> usize {
        let mut freed = 0;
        let range = Span {
            lo: linear(start),
            hi: linear(end),
        };
        let _ = self.clear_range(self.root.start_address, ROOT_LEVEL, 0, range, &mut freed);
        freed
    }

    /// Clears the part of `range` covered by `table` (a table at `level` whose
    /// first entry maps linear address `base`). Returns how many of its entries
    /// were cleared; counts freed tables in `freed`.
    fn clear_range(
        &mut self,
        table: PhysAddr,
        level: usize,
        base: u64,
        range: Span,
        freed: &mut usize,
    ) -> Result<u16, OutsideWindow> {
        let s = span(level);
        let first = (range.lo.max(base) - base) / s;
        let last = (range.hi.min(base + s * ENTRIES as u64).saturating_sub(base)).div_ceil(s);
        let mut cleared = 0;
        for i in first..last {
            let at = PhysAddr(table.0 + 8 * i);
            let entry_base = base + i * s;
            if self.clear_entry(
                at,
                level,
                Span {
                    lo: entry_base,
                    hi: entry_base + s,
                },
                range,
                freed,
            )? {
                cleared += 1;
            }
        }
        Ok(cleared)
    }

    /// Clears what `range` covers of the entry at `at` (covering `cover`);
    /// returns whether the entry itself was cleared.
    fn clear_entry(
        &mut self,
        at: PhysAddr,
        level: usize,
        cover: Span,
        range: Span,
        freed: &mut usize,
    ) -> Result<bool, OutsideWindow> {
        let e = phys::read_u64(at)?;
        let inside = range.lo <= cover.lo && cover.hi <= range.hi;
        if !F::is_present(e) || (level == ROOT_LEVEL && e & F::BORROWED != 0) {
            return Ok(false);
        }
        if !F::is_table(e, level) {
            if inside {
                phys::write_u64(at, 0)?;
            }
            return Ok(inside);
        }
        let child = F::table_addr(e);
        let permanent =
            level == ROOT_LEVEL && Half::of(VirtAddr::new_truncate(cover.lo)) == Half::Upper;
        if inside && !permanent {
            *freed += self.free_subtree(child, level - 1, F::count(e)) + 1;
            self.free_table(child);
            phys::write_u64(at, 0)?;
            return Ok(true);
        }
        let cleared = self.clear_range(child, level - 1, cover.lo, range, freed)?;
        if permanent || cleared == 0 || F::count(e) == 0 {
            return Ok(false);
        }
        let left = F::count(e).saturating_sub(cleared);
        if left > 0 {
            phys::write_u64(at, F::with_count(e, left))?;
            return Ok(false);
        }
        *freed += 1;
        self.free_table(child);
        phys::write_u64(at, 0)?;
        Ok(true)
    }

    /// Frees every table below `table` (at `level`), not `table` itself and not
    /// leaf frames; `present` is the count its entry carries (0: uncounted, every
    /// entry is looked at). Returns how many tables were freed.
    ///
    /// A counted table is read from both ends towards the middle and left as soon
    /// as `present` present entries were seen: user tables fill from both ends
    /// (program and heap low, stack and mmap area high), so this reads a few
    /// entries of each instead of 512 (reading every entry was most of an exit).
    fn free_subtree(&mut self, table: PhysAddr, level: usize, present: u16) -> usize {
        if level == 0 {
            return 0;
        }
        let Ok(words) = phys::FrameWords::of(PhysFrame::containing_address(table)) else {
            return 0;
        };
        let (mut freed, mut seen) = (0, 0);
        for k in 0..ENTRIES {
            let i = if k % 2 == 0 {
                k / 2
            } else {
                ENTRIES - 1 - k / 2
            };
            let Some(e) = words.read(i) else { break };
            if !F::is_present(e) {
                continue;
            }
            if F::is_table(e, level) {
                freed += self.free_subtree(F::table_addr(e), level - 1, F::count(e)) + 1;
                self.free_table(F::table_addr(e));
            }
            seen += 1;
            if seen == present {
                break;
            }
        }
        freed
    }

    /// Tears the table down: frees every intermediate table it owns (not leaf
    /// frames, not borrowed kernel-half tables) and returns the root frame, which
    /// the caller frees. Unmap or free the leaf frames first (see
    /// [`PageTable::mappings`]).
    pub fn destroy(mut self) -> PhysFrame {
        // No CPU runs on a table being torn down (its callers made sure): the
        // retired tables may go at once.
        self.free_retired();
        /// Root entries tested at once.
        const GROUP: usize = 8;
        let Ok(words) = phys::FrameWords::of(self.root) else {
            return self.root;
        };
        // A group of entries is passed over after one OR and one AND of them: none
        // present, or all present and borrowed. A user root has a few present
        // entries at the ends of its lower half and a kernel half of borrowed ones;
        // testing all 512 one by one was most of a teardown's table work.
        for group in (0..ENTRIES).step_by(GROUP) {
            let (any, all) = (group..group + GROUP).fold((0, u64::MAX), |(any, all), i| {
                let e = words.read(i).unwrap_or(0);
                (any | e, all & e)
            });
            if !F::is_present(any) || (F::is_present(all) && all & F::BORROWED != 0) {
                continue;
            }
            for i in group..group + GROUP {
                let Some(e) = words.read(i) else { break };
                if F::is_present(e) && F::is_table(e, ROOT_LEVEL) && e & F::BORROWED == 0 {
                    // Kernel-half root entries keep no count (one made by `map` says 1).
                    let present = if i < ENTRIES / 2 { F::count(e) } else { 0 };
                    self.free_subtree(F::table_addr(e), ROOT_LEVEL - 1, present);
                    self.free_table(F::table_addr(e));
                }
            }
        }
        self.root
    }

    /// Makes root entries 256..512 (the kernel half) the same as `other`'s, marked
    /// BORROWED: kernel mappings made through either table are then seen by both.
    /// Tables this table owned there are freed first (not their leaf frames).
    /// `other` keeps owning the shared tables and must outlive this table's use.
    pub fn copy_upper_half_from<B: FrameSource>(&mut self, other: &PageTable<F, B>) {
        let (mine, theirs) = (self.root.start_address, other.root.start_address);
        if mine == theirs {
            return;
        }
        // Both roots checked against the window once for the 256 entries (every
        // new address space copies them: a check per access was most of a fork's
        // page-table work).
        let (Ok(mine), Ok(theirs)) = (
            phys::FrameWords::of(self.root),
            phys::FrameWords::of(other.root),
        ) else {
            return;
        };
        let borrowed = |e: u64| if F::is_present(e) { e | F::BORROWED } else { 0 };
        // A new table (every caller's case) has an all-zero kernel half: one pass
        // that only reads tells so, and the copy then has nothing to drop.
        let fresh = (ENTRIES / 2..ENTRIES).fold(0, |any, i| any | mine.read(i).unwrap_or(0)) == 0;
        for i in ENTRIES / 2..ENTRIES {
            let Some(e) = theirs.read(i) else { return };
            if !fresh {
                if let Some(old) = mine.read(i) {
                    self.drop_owned_root_entry(old);
                }
            }
            mine.write(i, borrowed(e));
        }
    }

    /// Frees the tables below root entry `e` (its value) if this table owns them.
    fn drop_owned_root_entry(&mut self, e: u64) {
        if F::is_present(e) && F::is_table(e, ROOT_LEVEL) && e & F::BORROWED == 0 {
            // A kernel-half root entry: its count is not kept.
            self.free_subtree(F::table_addr(e), ROOT_LEVEL - 1, 0);
            self.free_table(F::table_addr(e));
        }
    }

    /// Gives every empty kernel-half root entry a (permanent) level-2 table, so
    /// that tables which later copy the kernel half see all kernel mappings made
    /// afterwards. Call once on the kernel's master table. Costs 1 MiB at most.
    pub fn populate_upper_half(&mut self) -> Result<(), MapToError> {
        let root = self.root.start_address;
        for i in ENTRIES as u64 / 2..ENTRIES as u64 {
            let at = PhysAddr(root.0 + 8 * i);
            if !F::is_present(phys::read_u64(at)?) {
                let table = self.new_table()?;
                phys::write_u64(
                    at,
                    F::table_entry(PhysFrame::containing_address(table), Half::Upper),
                )?;
            }
        }
        Ok(())
    }

    /// Recomputes the counts below `table` (at `level`); returns how many present
    /// entries `table` has.
    fn recount(&self, table: PhysAddr, level: usize) -> Result<u16, OutsideWindow> {
        let mut present = 0;
        for i in 0..ENTRIES as u64 {
            let at = PhysAddr(table.0 + 8 * i);
            let e = phys::read_u64(at)?;
            if !F::is_present(e) {
                continue;
            }
            present += 1;
            if F::is_table(e, level) && !(level == ROOT_LEVEL && e & F::BORROWED != 0) {
                let n = self.recount(F::table_addr(e), level - 1)?;
                phys::write_u64(at, F::with_count(e, n))?;
            }
        }
        Ok(present)
    }
}

/// A half-open range of linear addresses.
#[derive(Debug, Clone, Copy)]
struct Span {
    lo: u64,
    hi: u64,
}

/// What [`PageTable::probe`] found.
enum Probe {
    Leaf(Mapping),
    Hole(usize),
}

/// Iterator over the leaves of a range; see [`PageTable::mappings_in`].
pub struct Mappings<'a, F: EntryFormat, A: FrameSource> {
    table: &'a PageTable<F, A>,
    next: u64,
    end: u64,
}

impl<F: EntryFormat, A: FrameSource> Iterator for Mappings<'_, F, A> {
    type Item = (Page, Mapping);

    fn next(&mut self) -> Option<(Page, Mapping)> {
        while self.next < self.end {
            match self.table.probe(self.next) {
                Probe::Leaf(m) => {
                    let start = self.next & !(m.size.bytes() - 1);
                    self.next = start + m.size.bytes();
                    let page =
                        Page::containing_address_sized(VirtAddr::new_truncate(start), m.size);
                    return Some((page, m));
                }
                Probe::Hole(level) => self.next = (self.next | (span(level) - 1)) + 1,
            }
        }
        None
    }
}

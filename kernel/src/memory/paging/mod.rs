//! Page tables: one walker ([`PageTable`]) over two entry formats, x86_64 4-level
//! ([`X86_64PageTable`]) and ARM VMSAv8-64 long-descriptor ([`ArmLpaePageTable`]).
//!
//! ## Layout of the module
//! * [`flags`]: [`PageFlags`], format-independent permissions and attributes;
//! * [`format`](mod@format): the [`EntryFormat`] trait, what the walker needs from a format;
//! * [`x86_64`] and [`arm_lpae`]: the two formats, each with its bit layout;
//! * [`walker`]: [`PageTable`], the one walker (map, unmap, lookup, iteration,
//!   teardown, kernel-half sharing);
//! * [`error`]: one error enum per operation.
//!
//! ## Using it
//! [`PageTableMapper`] is the interface (`map_to`, `unmap`, `translate`,
//! `update_flags`); every change returns a `#[must_use]` [`MapperFlush`] that
//! invalidates the TLB entry of the page. The page size comes from the [`Page`];
//! the frame must be aligned to it.
//!
//! ## The kernel half
//! Root entries 256..512 map the kernel and are shared by all address spaces:
//! the kernel's master table calls [`PageTable::populate_upper_half`] once, and
//! every new address space calls [`PageTable::copy_upper_half_from`] with it.
//! Kernel mappings made through any of them are then visible in all. Teardown
//! ([`PageTable::destroy`], [`PageTable::free_tables_in`]) never frees borrowed
//! kernel tables, and unmap never frees the level-2 tables of the kernel half.
#![deny(unsafe_code)]

pub mod arm_lpae;
pub mod error;
pub mod flags;
pub mod format;
pub mod walker;
pub mod x86_64;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use self::arm_lpae::ArmLpaeFormat;
pub use self::error::{FlagUpdateError, MapToError, TranslateError, UnmapError};
pub use self::flags::PageFlags;
pub use self::format::{EntryFormat, Half};
pub use self::walker::{Mapping, Mappings, PageTable};
pub use self::x86_64::X86_64Format;
pub use crate::memory::addr::{Page, PageSize};

use crate::memory::frame_allocator::{FrameError, FrameSource, GlobalFrames};
use crate::memory::{PhysAddr, PhysFrame, VirtAddr};

/// The x86_64 4-level page table.
pub type X86_64PageTable<A = GlobalFrames> = PageTable<X86_64Format, A>;
/// The ARM VMSAv8-64 long-descriptor page table (4 KiB granule, 48-bit VA).
pub type ArmLpaePageTable<A = GlobalFrames> = PageTable<ArmLpaeFormat, A>;

/// A pending TLB invalidation of one page of the table with root `root`, returned
/// by every change to a table.
#[must_use = "the TLB may still hold the old translation: call flush() or ignore()"]
#[derive(Debug)]
pub struct MapperFlush {
    addr: VirtAddr,
    root: PhysFrame,
}

impl MapperFlush {
    /// A pending flush of the page at `addr` in the table rooted at `root`.
    pub fn new(addr: VirtAddr, root: PhysFrame) -> Self {
        MapperFlush { addr, root }
    }
    /// The address whose TLB entry is stale.
    pub fn addr(&self) -> VirtAddr {
        self.addr
    }
    /// Invalidates the page's TLB entry on every CPU that may cache it (those that
    /// run on the table, every CPU for a kernel address), before returning: only
    /// then may a frame the page mapped be reused.
    pub fn flush(self) {
        crate::arch::paging::flush_page_everywhere(self.root, self.addr);
    }
    /// Invalidates the page's TLB entry on this CPU only: enough when the page was
    /// not mapped before (no CPU caches a translation that was never there).
    pub fn flush_local(self) {
        crate::arch::paging::flush_page(self.addr);
    }
    /// Leaves the TLB as it is (the table is not active, or a full flush follows).
    pub fn ignore(self) {}
}

/// Mapping pages to frames, whatever the entry format.
pub trait PageTableMapper {
    /// Maps `page` (of `page.size()`) to `frame` (aligned to that size) with
    /// `flags` (`PRESENT` implied, `HUGE` ignored). Intermediate tables come from
    /// the table's frame source. On error nothing changes.
    fn map_to(
        &mut self,
        page: Page,
        frame: PhysFrame,
        flags: PageFlags,
    ) -> Result<MapperFlush, MapToError>;
    /// Removes the mapping of `page` (of `page.size()`) and returns its frame,
    /// which the caller now owns again. Tables that become empty are freed (before
    /// the caller's flush: for a table other CPUs may be walking, see
    /// [`PageTable::unmap_retiring`]).
    fn unmap(&mut self, page: Page) -> Result<(PhysFrame, MapperFlush), UnmapError>;
    /// The physical address `addr` maps to, if any (any page size).
    fn translate(&self, addr: VirtAddr) -> Option<PhysAddr>;
    /// Replaces the flags of the mapping of `page`, keeping its frame.
    fn update_flags(
        &mut self,
        page: Page,
        flags: PageFlags,
    ) -> Result<MapperFlush, FlagUpdateError>;
}

impl<F: EntryFormat, A: FrameSource> PageTable<F, A> {
    /// [`PageTableMapper::unmap`] for a table other CPUs may be walking (a user
    /// address space whose threads run elsewhere): the tables that become empty are
    /// only unlinked and retired; [`PageTable::free_retired`] gives them back once
    /// the flush has reached every CPU that runs on the table.
    #[inline]
    pub fn unmap_retiring(&mut self, page: Page) -> Result<(PhysFrame, MapperFlush), UnmapError> {
        let frame = self.unmap_leaf(page)?;
        Ok((frame, MapperFlush::new(page.start_address(), self.root())))
    }
}

impl<F: EntryFormat, A: FrameSource> PageTableMapper for PageTable<F, A> {
    #[inline]
    fn map_to(
        &mut self,
        page: Page,
        frame: PhysFrame,
        flags: PageFlags,
    ) -> Result<MapperFlush, MapToError> {
        self.map(page, frame, flags)?;
        Ok(MapperFlush::new(page.start_address(), self.root()))
    }

    #[inline]
    fn unmap(&mut self, page: Page) -> Result<(PhysFrame, MapperFlush), UnmapError> {
        let unmapped = self.unmap_retiring(page);
        self.free_retired();
        unmapped
    }

    #[inline]
    fn translate(&self, addr: VirtAddr) -> Option<PhysAddr> {
        self.lookup(addr).ok().map(|m| m.phys_addr(addr))
    }

    #[inline]
    fn update_flags(
        &mut self,
        page: Page,
        flags: PageFlags,
    ) -> Result<MapperFlush, FlagUpdateError> {
        self.set_flags(page, flags)?;
        Ok(MapperFlush::new(page.start_address(), self.root()))
    }
}

/// Serialises "is a table active yet? if not, make one" on the host.
static ACTIVATE: spin::Mutex<()> = spin::Mutex::new(());

impl X86_64PageTable {
    /// The table whose root is active (`crate::arch::paging::active_root`). If none
    /// is active yet (the host before anyone installed one), a zeroed root is taken
    /// from the global frame allocator and made active.
    ///
    /// # Panics
    /// If no table is active and the global frame allocator has no frame (it was
    /// not initialised): [`X86_64PageTable::try_active`] reports that instead.
    pub fn active() -> Self {
        match Self::try_active() {
            Ok(table) => table,
            Err(e) => {
                panic!("X86_64PageTable::active: no active table and no frame for one: {e:?}")
            }
        }
    }

    /// Like [`X86_64PageTable::active`], but reports a missing frame.
    pub fn try_active() -> Result<Self, FrameError> {
        let _guard = ACTIVATE.lock();
        if let Some(root) = crate::arch::paging::active_root() {
            return Ok(Self::from_root(root, GlobalFrames));
        }
        let root = GlobalFrames.alloc_frame()?;
        let table = Self::with_source(root, GlobalFrames);
        crate::arch::paging::set_active_root(root);
        Ok(table)
    }
}

impl<A: FrameSource> ArmLpaePageTable<A> {
    /// [`PageTableMapper::map_to`] under the name the ARM API uses (inherent, so it
    /// needs no trait import).
    pub fn map_to_lpae(
        &mut self,
        page: Page,
        frame: PhysFrame,
        flags: PageFlags,
    ) -> Result<MapperFlush, MapToError> {
        self.map_to(page, frame, flags)
    }
}

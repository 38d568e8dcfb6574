//! What an [`AddressSpace`](super::AddressSpace) needs from a page table: map, unmap,
//! query and re-protect single 4 KiB user pages, and give every table frame back.
//!
//! [`Mmu`] is the seam between the address space (which owns *leaf* frames and the
//! region tree) and the page-table code (which owns *table* frames). The kernel's
//! `memory::paging` tables implement it; [`SoftMmu`] is a software stand-in with the
//! same contract, used until those tables are wired in and as a reference model.
//!
//! Contract of every implementation:
//! * `create` takes ownership of `root` (zeroing it) and `destroy` gives it back
//!   together with every intermediate table; leaf frames are never freed here;
//! * `map` of a mapped page fails with [`MmuError::AlreadyMapped`], `unmap` and
//!   `protect` of an unmapped page with [`MmuError::NotMapped`];
//! * TLB invalidation for the changed page is done before the call returns.

use super::Prot;
use crate::memory::frame_allocator::{FrameError, FrameSource};
use crate::memory::{phys, PhysFrame, VirtAddr};
use alloc::collections::BTreeMap;

/// Why a page-table operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmuError {
    /// No frame for an intermediate table.
    OutOfMemory,
    /// The page is already mapped.
    AlreadyMapped(VirtAddr),
    /// The page is not mapped.
    NotMapped(VirtAddr),
    /// The root frame could not be used (outside physical memory).
    BadRoot(PhysFrame),
}

impl From<FrameError> for MmuError {
    fn from(_: FrameError) -> Self {
        MmuError::OutOfMemory
    }
}

/// A user page table, as the address space uses it. Pages are 4 KiB, always user
/// accessible; `prot` is never empty (PROT_NONE pages are simply not mapped).
pub trait Mmu<A: FrameSource>: Sized {
    /// Takes `root` as the (zeroed) root table; tables come from `source`.
    fn create(root: PhysFrame, source: A) -> Result<Self, MmuError>;
    /// The root table frame (what CR3 / TTBR0 points at).
    fn root(&self) -> PhysFrame;
    /// Maps `page` to `frame`.
    fn map(&mut self, page: VirtAddr, frame: PhysFrame, prot: Prot) -> Result<(), MmuError>;
    /// Unmaps `page`, returning the frame it mapped.
    fn unmap(&mut self, page: VirtAddr) -> Result<PhysFrame, MmuError>;
    /// The frame and protection `page` is mapped with.
    fn query(&self, page: VirtAddr) -> Option<(PhysFrame, Prot)>;
    /// Changes the protection of a mapped page.
    fn protect(&mut self, page: VirtAddr, prot: Prot) -> Result<(), MmuError>;
    /// Frees the root and every intermediate table (not the leaf frames).
    fn destroy(self);
    /// [`unmap`](Self::unmap) whose TLB flush on the other CPUs waits for
    /// [`flush_batch`](Self::flush_batch): the frame must not be reused before it.
    fn unmap_batched(&mut self, page: VirtAddr) -> Result<PhysFrame, MmuError> {
        self.unmap(page)
    }
    /// [`protect`](Self::protect) whose TLB flush on the other CPUs waits for
    /// [`flush_batch`](Self::flush_batch).
    fn protect_batched(&mut self, page: VirtAddr, prot: Prot) -> Result<(), MmuError> {
        self.protect(page, prot)
    }
    /// Makes every other CPU that runs on this table drop what the batched changes
    /// left stale (one shootdown for the whole batch).
    fn flush_batch(&mut self) {}
    /// [`protect`](Self::protect) to a protection that only adds to the old one:
    /// no other CPU needs to forget the narrower entry (see the implementations).
    fn widen(&mut self, page: VirtAddr, prot: Prot) -> Result<(), MmuError> {
        self.protect(page, prot)
    }
    /// A fault at `page` found its entry already as wanted: this CPU drops the
    /// narrower translation it may still cache from before a [`widen`](Self::widen)
    /// (nothing to do where the fault itself dropped it).
    fn refresh(&mut self, _page: VirtAddr) {}
}

/// How a page-table change reaches the other CPUs' TLBs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// At once, before the change returns (a single page).
    Now,
    /// With the batch's [`Mmu::flush_batch`] (many pages: one shootdown).
    Batched,
}

/// A software page table: a map from page to (frame, protection) plus the root frame
/// it was given. Holds no intermediate tables, so it never runs out of memory.
#[derive(Debug)]
pub struct SoftMmu<A: FrameSource> {
    root: PhysFrame,
    source: A,
    entries: BTreeMap<u64, (PhysFrame, Prot)>,
}

impl<A: FrameSource> Mmu<A> for SoftMmu<A> {
    fn create(root: PhysFrame, source: A) -> Result<Self, MmuError> {
        phys::zero_frame(root).map_err(|_| MmuError::BadRoot(root))?;
        Ok(SoftMmu {
            root,
            source,
            entries: BTreeMap::new(),
        })
    }
    fn root(&self) -> PhysFrame {
        self.root
    }
    fn map(&mut self, page: VirtAddr, frame: PhysFrame, prot: Prot) -> Result<(), MmuError> {
        if self.entries.contains_key(&page.as_u64()) {
            return Err(MmuError::AlreadyMapped(page));
        }
        self.entries.insert(page.as_u64(), (frame, prot));
        Ok(())
    }
    fn unmap(&mut self, page: VirtAddr) -> Result<PhysFrame, MmuError> {
        let (frame, _) = self
            .entries
            .remove(&page.as_u64())
            .ok_or(MmuError::NotMapped(page))?;
        Ok(frame)
    }
    fn query(&self, page: VirtAddr) -> Option<(PhysFrame, Prot)> {
        self.entries.get(&page.as_u64()).copied()
    }
    fn protect(&mut self, page: VirtAddr, prot: Prot) -> Result<(), MmuError> {
        let entry = self
            .entries
            .get_mut(&page.as_u64())
            .ok_or(MmuError::NotMapped(page))?;
        entry.1 = prot;
        Ok(())
    }
    fn destroy(mut self) {
        // The root came from this source's allocator; a refusal would mean someone
        // else freed it, which the allocator reports and we cannot repair here.
        let _ = self.source.free_frame(self.root);
    }
}

// ---- the kernel's page tables ----

use crate::memory::paging::{EntryFormat, MapToError, PageFlags, PageTable, PageTableMapper};
use crate::memory::{Page, PageSize};

/// The entry flags of a user page with `prot`.
fn page_flags(prot: Prot) -> PageFlags {
    let mut flags = PageFlags::PRESENT | PageFlags::USER;
    if prot.contains(Prot::WRITE) {
        flags |= PageFlags::WRITABLE;
    }
    if !prot.contains(Prot::EXEC) {
        flags |= PageFlags::NO_EXECUTE;
    }
    flags
}

/// The protection a user page's entry flags grant.
fn prot_of(flags: PageFlags) -> Prot {
    let mut prot = Prot::READ;
    if flags.contains(PageFlags::WRITABLE) {
        prot |= Prot::WRITE;
    }
    if !flags.contains(PageFlags::NO_EXECUTE) {
        prot |= Prot::EXEC;
    }
    prot
}

/// The hardware page tables (x86_64 or ARM LPAE format). Changes are flushed from
/// the TLB at once (a no-op on the host, and harmless for an inactive table).
impl<F: EntryFormat, A: FrameSource + Clone> Mmu<A> for PageTable<F, A> {
    fn create(root: PhysFrame, source: A) -> Result<Self, MmuError> {
        // Zeroed once, here (where a root outside the window is refused): an empty
        // root is a table of this module's to adopt (with_source would zero it again).
        phys::zero_frame(root).map_err(|_| MmuError::BadRoot(root))?;
        Ok(PageTable::from_root(root, source))
    }
    fn root(&self) -> PhysFrame {
        PageTable::root(self)
    }
    fn map(&mut self, page: VirtAddr, frame: PhysFrame, prot: Prot) -> Result<(), MmuError> {
        match self.map_to(Page::containing_address(page), frame, page_flags(prot)) {
            Ok(flush) => {
                flush.flush_local();
                Ok(())
            }
            Err(MapToError::FrameAllocationFailed) => Err(MmuError::OutOfMemory),
            Err(_) => Err(MmuError::AlreadyMapped(page)),
        }
    }
    fn unmap(&mut self, page: VirtAddr) -> Result<PhysFrame, MmuError> {
        let (frame, flush) = self
            .unmap_retiring(Page::containing_address(page))
            .map_err(|_| MmuError::NotMapped(page))?;
        flush.flush();
        self.free_retired();
        Ok(frame)
    }
    fn query(&self, page: VirtAddr) -> Option<(PhysFrame, Prot)> {
        let m = self.lookup(page).ok()?;
        (m.size == PageSize::Size4KiB).then(|| (m.frame, prot_of(m.flags)))
    }
    fn protect(&mut self, page: VirtAddr, prot: Prot) -> Result<(), MmuError> {
        let flush = self
            .update_flags(Page::containing_address(page), page_flags(prot))
            .map_err(|_| MmuError::NotMapped(page))?;
        flush.flush();
        Ok(())
    }
    fn destroy(mut self) {
        let mut source = self.source_mut().clone();
        let root = PageTable::destroy(self);
        let _ = source.free_frame(root);
    }
    fn unmap_batched(&mut self, page: VirtAddr) -> Result<PhysFrame, MmuError> {
        let (frame, flush) = self
            .unmap_retiring(Page::containing_address(page))
            .map_err(|_| MmuError::NotMapped(page))?;
        flush.flush_local();
        Ok(frame)
    }
    fn protect_batched(&mut self, page: VirtAddr, prot: Prot) -> Result<(), MmuError> {
        let flush = self
            .update_flags(Page::containing_address(page), page_flags(prot))
            .map_err(|_| MmuError::NotMapped(page))?;
        flush.flush_local();
        Ok(())
    }
    /// The emptied tables go back after the flush too: another CPU's walk caches
    /// may hold them until then.
    fn flush_batch(&mut self) {
        crate::arch::paging::flush_root_everywhere(PageTable::root(self));
        self.free_retired();
    }
    /// Flushes this CPU only, as a batched change does, with no batch to follow. A
    /// CPU still holding the narrower translation takes a spurious fault, which
    /// finds the entry as wanted and changes nothing but that CPU's stale
    /// translation: x86_64's page fault drops it itself (Linux's x86
    /// `ptep_set_access_flags` does not flush either); aarch64 may cache an entry
    /// that faulted on permissions, so the fault calls [`refresh`](Mmu::refresh)
    /// (Linux's arm64 `flush_tlb_fix_spurious_fault`). Copy-on-write's last owner
    /// regaining write access after a fork was a shootdown per page on every CPU
    /// running the process.
    fn widen(&mut self, page: VirtAddr, prot: Prot) -> Result<(), MmuError> {
        self.protect_batched(page, prot)
    }
    fn refresh(&mut self, page: VirtAddr) {
        crate::arch::paging::flush_page(page);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        for bits in 0..8 {
            let prot = Prot::from_bits_truncate(bits) | Prot::READ;
            assert_eq!(prot_of(page_flags(prot)), prot);
        }
    }
}

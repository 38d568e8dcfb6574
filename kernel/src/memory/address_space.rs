//! User address spaces: a page table plus a tree of regions (VMAs).
//!
//! ## What it owns
//! * The page table ([`Mmu`]), including its root and every intermediate table.
//! * The region tree: `start -> Region { end, prot, backing }`, non-overlapping,
//!   page-aligned, all inside `[0, TASK_SIZE)`.
//! * The *resident map*: `page -> (frame, owner)` for every populated page. It is
//!   the truth about which frames this space holds; the page table mirrors it.
//!
//! ## Invariants
//! 1. Every resident page lies inside a region.
//! 2. A resident page is mapped in the page table iff its region's `prot` is not
//!    empty; it is mapped with `prot | READ`, minus `WRITE` while its frame is a
//!    private frame with more than one owner (copy-on-write) or a file's frame in a
//!    private region (copied on the first write). The entry may lack `WRITE`
//!    although the frame has become exclusive again (the other owner copied or
//!    exited): the next write fault restores it without copying.
//! 3. A resident page is owned ([`Owner`]) by the space or by the region's backing.
//!    Space-owned frames (anonymous private memory, private copies of file pages)
//!    are shared with fork relatives through [`CowRefs`]. Backing-owned frames are
//!    only *mapped* here: a [`SharedObject`]'s (shared anonymous memory) or a
//!    file's ([`MappedFile`], in shared regions and the untouched pages of private
//!    ones). Each resident file page holds one pin of its frame, dropped when the
//!    page leaves the space, so the file system never frees a frame this space
//!    maps (see [`file`]).
//! 4. After [`AddressSpace::destroy`] every frame is back in the allocator (leaf
//!    frames, shared objects whose last user this was, tables and root) and every
//!    file pin is dropped.
//!
//! Pages are populated on first touch ([`AddressSpace::handle_page_fault`]): demand
//! zero for private memory, the object's page for shared memory, the file's page
//! for a file mapping (a page wholly beyond the end of the file is [`Fault::Bus`]),
//! a private copy on a write to a copy-on-write page or to a file page of a private
//! region. [`copy_from_user`](AddressSpace::copy_from_user) and
//! [`copy_to_user`](AddressSpace::copy_to_user) walk the tables in software, fault
//! pages in as a user access would, and report a bad pointer as [`BadUserAddress`].
//! [`fill`](AddressSpace::fill) writes a new image (exec) into private anonymous
//! regions as the kernel, whatever their rights: fresh frames, mapped at once.
//!
//! ## Locks
//! An `AddressSpace` has no lock of its own: its owner (the process table) serialises
//! access. Inside, [`CowRefs`] and [`SharedObject`] take their own leaf locks.

#![deny(unsafe_code)]

pub mod file;
mod mmu;
mod shared;

pub use file::{FileMap, FilePageError, FileRegion, MappedFile};
pub use mmu::{Flush, Mmu, MmuError, SoftMmu};
pub use shared::{CowRefs, SharedObject};

use super::frame_allocator::FrameSource;
use super::kmem::{Account, Charge};
use super::{phys, PhysAddr, PhysFrame, PAGE_SIZE};
use alloc::collections::btree_map::{Entry, VacantEntry};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use shared::{release_object, zeroed_frame};

/// One past the highest user address (x86_64 Linux's `TASK_SIZE`).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Lowest address a fixed mapping may use (Linux's default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;
/// Mappings placed by the kernel are searched top-down below this address.
pub const MMAP_BASE: u64 = 0x7f00_0000_0000;

bitflags::bitflags! {
    /// Access rights of a region, with Linux's `PROT_*` values.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Prot: u32 {
        /// Readable.
        const READ = 1;
        /// Writable (implies readable on both supported CPUs).
        const WRITE = 2;
        /// Executable.
        const EXEC = 4;
    }
}

/// The kind of access that faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Execute,
}

/// Whether a mapping is private (copy-on-write across fork) or shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// `MAP_PRIVATE`.
    Private,
    /// `MAP_SHARED`.
    Shared,
}

/// Where a new mapping goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Wherever the kernel likes.
    Anywhere,
    /// At this address if it is free, else anywhere.
    Hint(u64),
    /// Exactly here, replacing what was mapped (`MAP_FIXED`).
    Fixed(u64),
    /// Exactly here, failing if anything is mapped (`MAP_FIXED_NOREPLACE`).
    FixedNoReplace(u64),
}

/// A request for a new mapping (anonymous, or of a file with
/// [`AddressSpace::mmap_file`]). Build with [`MapRequest::new`] and the option
/// methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRequest {
    /// Where to put it.
    pub placement: Placement,
    /// Length in bytes (rounded up to pages).
    pub len: u64,
    /// Access rights.
    pub prot: Prot,
    /// Private or shared.
    pub sharing: Sharing,
}

impl MapRequest {
    /// A private mapping of `len` bytes with `prot`, placed anywhere.
    pub fn new(len: u64, prot: Prot) -> Self {
        MapRequest {
            placement: Placement::Anywhere,
            len,
            prot,
            sharing: Sharing::Private,
        }
    }
    /// The same request, placed as `placement` says.
    pub fn at(self, placement: Placement) -> Self {
        MapRequest { placement, ..self }
    }
    /// The same request, shared or private.
    pub fn sharing(self, sharing: Sharing) -> Self {
        MapRequest { sharing, ..self }
    }
}

/// Why a mapping operation was refused. Nothing changed when one is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmError {
    /// An address that must be page-aligned is not.
    Unaligned(u64),
    /// The length is zero.
    ZeroLength,
    /// The range overflows or leaves user space.
    OutOfRange,
    /// A fixed mapping below [`MMAP_MIN_ADDR`].
    BelowMinimum(u64),
    /// No free range of the requested size.
    NoSpace,
    /// Part of the range is not mapped (mprotect).
    NotMapped(u64),
    /// `FixedNoReplace` and something is mapped there.
    Exists(u64),
    /// No frame for a page or a page table.
    OutOfMemory,
    /// The space has [`MAX_MAP_COUNT`] regions already (ENOMEM, as Linux's
    /// `vm.max_map_count`).
    TooManyRegions,
    /// mprotect asked for more than a region may have (write access to a shared
    /// mapping of a file not open for writing: EACCES).
    Forbidden(u64),
}

/// Most regions an address space may have (Linux's default `vm.max_map_count`): every
/// region costs kernel memory, so no program may create them without bound.
pub const MAX_MAP_COUNT: usize = 65_530;

/// Why a page fault could not be resolved: the access is a bug of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No region covers the address (SIGSEGV, SEGV_MAPERR).
    Unmapped(u64),
    /// A region covers it but forbids the access (SIGSEGV, SEGV_ACCERR).
    AccessDenied(u64),
    /// The address is outside user space.
    KernelAddress(u64),
    /// No frame to populate the page.
    OutOfMemory,
    /// The page of a file mapping lies wholly beyond the end of the file, or the
    /// file system is full (SIGBUS, BUS_ADRERR).
    Bus(u64),
}

/// A user pointer that does not point at accessible user memory (EFAULT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadUserAddress(pub u64);

/// One region (VMA) of an address space.
#[derive(Debug, Clone)]
struct Region {
    end: u64,
    prot: Prot,
    backing: Backing,
}

#[derive(Clone)]
enum Backing {
    Private,
    /// Page `p` of the region is page `first + (p - start) / PAGE_SIZE` of `obj`.
    Shared {
        obj: Arc<SharedObject>,
        first: u64,
    },
    /// Page `p` of the region is page `first + (p - start) / PAGE_SIZE` of `file`.
    File {
        file: Arc<dyn MappedFile>,
        first: u64,
        sharing: Sharing,
        max_prot: Prot,
    },
}

impl core::fmt::Debug for Backing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Backing::Private => write!(f, "Private"),
            Backing::Shared { obj, first } => write!(f, "Shared({obj:?} page {first})"),
            Backing::File { first, sharing, .. } => write!(f, "File({sharing:?} page {first})"),
        }
    }
}

impl Backing {
    /// The object page index of the region's page `page` (region starting at `start`).
    fn index(&self, start: u64, page: u64) -> u64 {
        match self {
            Backing::Private => 0,
            Backing::Shared { first, .. } | Backing::File { first, .. } => {
                first + (page - start) / PAGE_SIZE
            }
        }
    }
}

impl Region {
    fn sharing(&self) -> Sharing {
        match self.backing {
            Backing::Private => Sharing::Private,
            Backing::Shared { .. } => Sharing::Shared,
            Backing::File { sharing, .. } => sharing,
        }
    }

    /// The most `prot` may become (mprotect).
    fn max_prot(&self) -> Prot {
        match self.backing {
            Backing::File { max_prot, .. } => max_prot,
            _ => Prot::all(),
        }
    }

    fn file(&self) -> Option<FileRegion> {
        match &self.backing {
            Backing::File { file, first, .. } => Some(FileRegion::new(file, *first)),
            _ => None,
        }
    }
}

/// Who owns the frame of a resident page (invariant 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// This space, with its fork relatives through [`CowRefs`]: a private frame.
    Space,
    /// The region's backing (a [`SharedObject`], or a file which holds a pin for
    /// this page): only mapped here.
    Backing,
}

/// A populated page: its frame and who owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Resident {
    frame: PhysFrame,
    owner: Owner,
}

/// What a fault needs of the region it lies in (see [`AddressSpace::fault_site`]).
#[derive(Debug, Clone, Copy)]
struct FaultSite {
    start: u64,
    prot: Prot,
    /// Private anonymous memory (demand zero).
    private: bool,
    /// A mapping of a file.
    file: bool,
}

/// A view of one region, for callers and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Access rights.
    pub prot: Prot,
    /// Private or shared.
    pub sharing: Sharing,
    /// The file it maps (its name, and the file offset of `start`), if any.
    pub file: Option<FileRegion>,
}

/// A user address space. `M` is the page-table type, `A` where frames come from.
pub struct AddressSpace<M: Mmu<A>, A: FrameSource + Clone> {
    mmu: M,
    frames: A,
    regions: BTreeMap<u64, Region>,
    resident: BTreeMap<u64, Resident>,
    cow: Arc<CowRefs>,
    /// A fault found no frame since [`take_out_of_memory`](Self::take_out_of_memory)
    /// last looked: how a caller that only sees `BadUserAddress` (a copy into user
    /// memory) learns that memory, not the pointer, was the trouble.
    out_of_memory: bool,
    /// What the regions hold of the owner's kernel heap budget ([`REGION_COST`]
    /// each, see [`set_account`](Self::set_account)); `None`: not charged.
    kmem: Option<Charge>,
}

/// Heap bytes one region is charged for in the kernel heap budget
/// ([`crate::memory::kmem`]): the region and its key, with the slack of the tree's
/// nodes.
pub const REGION_COST: u64 = (core::mem::size_of::<(u64, Region)>() as u64) * 3 / 2;

/// Rounds `len` up to whole pages; zero and overflow are errors.
fn page_len(len: u64) -> Result<u64, MmError> {
    match len {
        0 => Err(MmError::ZeroLength),
        _ => len
            .checked_add(PAGE_SIZE - 1)
            .map(|l| l & !(PAGE_SIZE - 1))
            .ok_or(MmError::OutOfRange),
    }
}

/// Checks that `[start, start + len)` is a page-aligned user range; returns its end.
fn user_range(start: u64, len: u64) -> Result<u64, MmError> {
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(MmError::Unaligned(start));
    }
    let end = start
        .checked_add(page_len(len)?)
        .ok_or(MmError::OutOfRange)?;
    if end > TASK_SIZE {
        return Err(MmError::OutOfRange);
    }
    Ok(end)
}

fn allows(prot: Prot, access: Access) -> bool {
    match access {
        Access::Read => !prot.is_empty(),
        Access::Write => prot.contains(Prot::WRITE),
        Access::Execute => prot.contains(Prot::EXEC),
    }
}

impl<M: Mmu<A>, A: FrameSource + Clone> AddressSpace<M, A> {
    /// An empty address space whose page table has root `root` (zeroed here).
    pub fn new(root: PhysFrame, frames: A) -> Result<Self, MmError> {
        Self::with_cow(root, frames, CowRefs::new())
    }

    fn with_cow(root: PhysFrame, frames: A, cow: Arc<CowRefs>) -> Result<Self, MmError> {
        let mmu = M::create(root, frames.clone()).map_err(|_| MmError::OutOfMemory)?;
        Ok(AddressSpace {
            mmu,
            frames,
            regions: BTreeMap::new(),
            resident: BTreeMap::new(),
            cow,
            out_of_memory: false,
            kmem: None,
        })
    }

    /// The root page-table frame.
    pub fn root(&self) -> PhysFrame {
        self.mmu.root()
    }

    /// The page table.
    pub fn mmu(&self) -> &M {
        &self.mmu
    }

    /// The page table, mutably: only for what the address space does not manage,
    /// i.e. sharing the kernel half (`copy_upper_half_from`). Touching user pages
    /// through it breaks the invariants.
    pub fn mmu_mut(&mut self) -> &mut M {
        &mut self.mmu
    }

    /// The regions, in address order.
    pub fn regions(&self) -> impl Iterator<Item = RegionInfo> + '_ {
        self.regions.iter().map(|(&start, r)| RegionInfo {
            start,
            end: r.end,
            prot: r.prot,
            sharing: r.sharing(),
            file: r.file(),
        })
    }

    /// The regions that meet `[start, end)`, in address order.
    pub fn regions_in(&self, start: u64, end: u64) -> impl Iterator<Item = RegionInfo> + '_ {
        let first = self.region_containing(start).map_or(start, |(s, _)| s);
        self.regions
            .range(first..end.max(first))
            .map(|(&start, r)| RegionInfo {
                start,
                end: r.end,
                prot: r.prot,
                sharing: r.sharing(),
                file: r.file(),
            })
    }

    /// The region containing `addr`.
    pub fn region_at(&self, addr: u64) -> Option<RegionInfo> {
        self.regions().find(|r| r.start <= addr && addr < r.end)
    }

    /// Number of populated pages.
    pub fn resident_pages(&self) -> usize {
        self.resident.len()
    }

    /// What the OOM killer weighs (Linux's `oom_badness`, simplified): resident
    /// pages plus the leaf page tables that map them (one per 512 pages, rounded
    /// up), in pages.
    pub fn badness(&self) -> u64 {
        let pages = self.resident.len() as u64;
        pages + pages.div_ceil(512)
    }

    /// Whether a fault ran out of frames since the last call (and forgets it).
    pub fn take_out_of_memory(&mut self) -> bool {
        core::mem::take(&mut self.out_of_memory)
    }

    /// The physical address `addr` is mapped to, if its page is mapped.
    pub fn translate(&self, addr: u64) -> Option<PhysAddr> {
        let (frame, _) = self.mmu.query(user_page(addr)?)?;
        Some(frame.start_address + addr % PAGE_SIZE)
    }

    // ---- mmap / munmap / mprotect ----

    /// Creates an anonymous mapping; returns its start.
    pub fn mmap(&mut self, req: MapRequest) -> Result<u64, MmError> {
        let r = self.map_region(req, |sharing| match sharing {
            Sharing::Private => Backing::Private,
            Sharing::Shared => Backing::Shared {
                obj: SharedObject::new(),
                first: 0,
            },
        });
        self.settle_charge();
        r
    }

    /// Creates a mapping of `map.file` from its page `map.first` on; returns its
    /// start. A shared mapping's pages are the file's; a private one maps the
    /// file's pages read-only and copies a page on its first write. Pages are
    /// pinned as they are touched, not now; `req.prot` must be within
    /// `map.max_prot` (the caller checks the file's access mode).
    pub fn mmap_file(&mut self, req: MapRequest, map: FileMap) -> Result<u64, MmError> {
        let r = self.map_file_region(req, map);
        self.settle_charge();
        r
    }

    fn map_file_region(&mut self, req: MapRequest, map: FileMap) -> Result<u64, MmError> {
        self.map_region(req, |sharing| Backing::File {
            file: map.file,
            first: map.first,
            sharing,
            max_prot: map.max_prot,
        })
    }

    fn map_region(
        &mut self,
        req: MapRequest,
        backing: impl FnOnce(Sharing) -> Backing,
    ) -> Result<u64, MmError> {
        let len = page_len(req.len)?;
        if len > TASK_SIZE {
            return Err(MmError::OutOfRange);
        }
        let start = self.place(req.placement, len)?;
        if let Placement::Fixed(_) = req.placement {
            self.unmap_range(start, len)?;
        }
        self.room_for_a_region()?;
        let backing = backing(req.sharing);
        self.regions.insert(
            start,
            Region {
                end: start + len,
                prot: req.prot,
                backing,
            },
        );
        self.merge_range(start, start + len);
        Ok(start)
    }

    /// Removes every mapping in `[start, start + len)` (page-aligned start; length
    /// rounded up), splitting regions at the edges and freeing the frames. Unmapping
    /// nothing is not an error.
    pub fn munmap(&mut self, start: u64, len: u64) -> Result<(), MmError> {
        let r = self.unmap_range(start, len);
        self.settle_charge();
        r
    }

    /// munmap in pieces: splits at the edges, then gives back at most
    /// `max_pages` resident pages of `[start, start + len)`; once none is left,
    /// removes the mappings. Returns whether the unmap is complete (if not, call
    /// again: what is done stays done, and a refused split changes nothing).
    pub fn munmap_piece(
        &mut self,
        start: u64,
        len: u64,
        max_pages: usize,
    ) -> Result<bool, MmError> {
        let end = user_range(start, len)?;
        if self.release_resident(start, end, max_pages) == max_pages {
            return Ok(false);
        }
        self.munmap(start, len).map(|()| true)
    }

    /// Gives back up to `max` resident pages of `[start, end)` (their frames and
    /// page-table entries; the regions stay, so a page touched again faults in
    /// afresh). Splits first, so a refusal frees nothing. Returns how many.
    fn release_resident(&mut self, start: u64, end: u64, max: usize) -> usize {
        if self.split_both(start, end).is_err() {
            self.settle_charge();
            return 0;
        }
        self.settle_charge();
        // Region by region (after the split each lies inside the range), so a
        // region's backing is looked up once, not once per page (every resident
        // page lies in a region: invariant 1).
        let (mut at, mut done) = (start, 0);
        while done < max {
            let Some((s, e, backing)) = self
                .regions
                .range(at..end)
                .next()
                .map(|(&s, r)| (s, r.end, r.backing.clone()))
            else {
                break;
            };
            done += self.release_pages(s, e.min(end), max - done, &backing);
            at = e;
        }
        done
    }

    /// Takes up to `max` resident pages of `[start, end)`, which lies in one region
    /// backed by `backing`, out of the page table and the resident map and gives up
    /// their frames. The frames go back only after the one shootdown that makes every
    /// CPU forget them, one for the whole call. Without a list (teardown runs when
    /// memory is short and must not allocate): the first [`RELEASE_BATCH`] pages come
    /// out of the map in the walk that unmaps them (`extract_if`: no look-up per
    /// page), onto the stack; any others are unmapped where they are (the resident
    /// map still names them: the space's lock keeps anyone from looking meanwhile)
    /// and come out, a stack batch at a time, after the flush. A shootdown per page
    /// made a 1 MiB munmap in a process with a thread on another CPU wait for 256 IPI
    /// round trips; one per 32 pages, the threads of one process faulting and
    /// unmapping on 4 vCPUs waited for eight per munmap of 1 MiB. Returns how many.
    fn release_pages(&mut self, start: u64, end: u64, max: usize, backing: &Backing) -> usize {
        let mut batch = [None::<Resident>; RELEASE_BATCH];
        let mmu = &mut self.mmu;
        let n = take_batch(&mut self.resident, start..end, &mut batch, max, |page| {
            unmap_batched(mmu, page)
        });
        if n == 0 {
            return 0;
        }
        let mut rest = 0;
        if n == RELEASE_BATCH {
            for (&page, _) in self.resident.range(start..end).take(max - n) {
                unmap_batched(&mut self.mmu, page);
                rest += 1;
            }
        }
        self.mmu.flush_batch();
        for resident in batch.iter().take(n).flatten() {
            self.release_page(backing, *resident);
        }
        // The pages unmapped in place, again from `start`: the map has not changed
        // since, and both walks go in address order.
        let mut done = 0;
        while done < rest {
            let k = take_batch(
                &mut self.resident,
                start..end,
                &mut batch,
                rest - done,
                |_| {},
            );
            for resident in batch.iter().take(k).flatten() {
                self.release_page(backing, *resident);
            }
            done += k;
            if k == 0 {
                break;
            }
        }
        n + done
    }

    fn unmap_range(&mut self, start: u64, len: u64) -> Result<(), MmError> {
        let end = user_range(start, len)?;
        self.split_both(start, end)?;
        // One region at a time, without a list: unmapping must not need memory.
        while let Some(s) = self.regions.range(start..end).map(|(&s, _)| s).next() {
            if let Some(region) = self.regions.remove(&s) {
                self.drop_region(s, region);
            }
        }
        Ok(())
    }

    /// Changes the protection of every page in `[start, start + len)`, which must be
    /// fully mapped. A zero length does nothing (as on Linux).
    pub fn mprotect(&mut self, start: u64, len: u64, prot: Prot) -> Result<(), MmError> {
        let r = self.protect_range(start, len, prot);
        self.settle_charge();
        r
    }

    fn protect_range(&mut self, start: u64, len: u64, prot: Prot) -> Result<(), MmError> {
        if len == 0 {
            return match start % PAGE_SIZE {
                0 => Ok(()),
                _ => Err(MmError::Unaligned(start)),
            };
        }
        let end = user_range(start, len)?;
        self.check_covered(start, end)?;
        self.check_allowed(start, end, prot)?;
        self.split_both(start, end)?;
        for (_, r) in self.regions.range_mut(start..end) {
            r.prot = prot;
        }
        let mut next = self.resident.range(start..end).map(|(&p, _)| p).next();
        while let Some(p) = next {
            // Only protection changes here: no table allocation, so no failure.
            let _ = self.sync_pte_flushed(p, Flush::Batched);
            next = self.next_resident(p, end);
        }
        self.mmu.flush_batch();
        self.merge_range(start, end);
        Ok(())
    }

    fn place(&self, placement: Placement, len: u64) -> Result<u64, MmError> {
        match placement {
            Placement::Anywhere => self.find_free(len),
            Placement::Hint(h) => match self.hint_usable(h, len) {
                Some(a) => Ok(a),
                None => self.find_free(len),
            },
            Placement::Fixed(a) => Self::check_fixed(a, len),
            Placement::FixedNoReplace(a) => {
                let a = Self::check_fixed(a, len)?;
                match self.is_free(a, a + len) {
                    true => Ok(a),
                    false => Err(MmError::Exists(a)),
                }
            }
        }
    }

    /// Linux's order of checks for a fixed address: range, alignment, minimum.
    fn check_fixed(addr: u64, len: u64) -> Result<u64, MmError> {
        if addr > TASK_SIZE - len {
            return Err(MmError::OutOfRange);
        }
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(MmError::Unaligned(addr));
        }
        if addr < MMAP_MIN_ADDR {
            return Err(MmError::BelowMinimum(addr));
        }
        Ok(addr)
    }

    fn hint_usable(&self, hint: u64, len: u64) -> Option<u64> {
        let h = hint.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
        let ok = h >= MMAP_MIN_ADDR && h <= TASK_SIZE - len && self.is_free(h, h + len);
        ok.then_some(h)
    }

    /// Highest free range of `len` bytes below [`MMAP_BASE`].
    fn find_free(&self, len: u64) -> Result<u64, MmError> {
        let mut top = MMAP_BASE;
        for (&s, r) in self.regions.range(..MMAP_BASE).rev() {
            if r.end <= top && top - r.end >= len {
                return Ok(top - len);
            }
            top = top.min(s);
        }
        match top.checked_sub(len) {
            Some(a) if a >= MMAP_MIN_ADDR => Ok(a),
            _ => Err(MmError::NoSpace),
        }
    }

    fn is_free(&self, start: u64, end: u64) -> bool {
        self.regions
            .range(..end)
            .next_back()
            .is_none_or(|(_, r)| r.end <= start)
    }

    /// Checks that `[start, start + len)` (page-aligned start; length rounded up)
    /// is mapped all through (msync): `NotMapped` at the first hole.
    pub fn check_mapped(&self, start: u64, len: u64) -> Result<(), MmError> {
        let end = user_range(start, len)?;
        self.check_covered(start, end)
    }

    /// Every region meeting `[start, end)` may have `prot` (its `max_prot`).
    fn check_allowed(&self, start: u64, end: u64, prot: Prot) -> Result<(), MmError> {
        let first = self.region_containing(start).map_or(start, |(s, _)| s);
        for (&s, r) in self.regions.range(first..end) {
            if !r.max_prot().contains(prot) {
                return Err(MmError::Forbidden(s.max(start)));
            }
        }
        Ok(())
    }

    fn check_covered(&self, start: u64, end: u64) -> Result<(), MmError> {
        let mut at = start;
        while at < end {
            let (_, r) = self.region_containing(at).ok_or(MmError::NotMapped(at))?;
            at = r.end;
        }
        Ok(())
    }

    fn region_containing(&self, addr: u64) -> Option<(u64, &Region)> {
        let (&s, r) = self.regions.range(..=addr).next_back()?;
        (addr < r.end).then_some((s, r))
    }

    /// Splits regions at `start` and at `end`; if the second split is refused, the
    /// first is merged back, so a refusal changes nothing.
    fn split_both(&mut self, start: u64, end: u64) -> Result<(), MmError> {
        self.split_at(start)?;
        self.split_at(end)
            .inspect_err(|_| self.merge_range(start, start))
    }

    /// Whether one more region may be made (see [`MAX_MAP_COUNT`]), and its charge
    /// taken (OutOfMemory when the owner's heap budget cannot hold it).
    fn room_for_a_region(&mut self) -> Result<(), MmError> {
        if self.regions.len() >= MAX_MAP_COUNT {
            return Err(MmError::TooManyRegions);
        }
        let want = (self.regions.len() as u64 + 1) * REGION_COST;
        match &mut self.kmem {
            Some(c) => c.set(want).map_err(|_| MmError::OutOfMemory),
            None => Ok(()),
        }
    }

    /// Brings the regions' charge back to what they are (after an operation that
    /// charged one ahead, merged or removed some).
    fn settle_charge(&mut self) {
        let have = self.regions.len() as u64 * REGION_COST;
        if let Some(c) = &mut self.kmem {
            let _ = c.set(have.min(c.bytes()));
        }
    }

    /// Charges the regions, from now on, to `account` (their present number at
    /// once: OutOfMemory, with nothing changed, if that does not fit).
    pub fn set_account(&mut self, account: &Arc<Account>) -> Result<(), MmError> {
        let c = account
            .charge(self.regions.len() as u64 * REGION_COST)
            .map_err(|_| MmError::OutOfMemory)?;
        self.kmem = Some(c);
        Ok(())
    }

    /// Heap bytes the regions are charged for now.
    pub fn charged(&self) -> u64 {
        self.kmem.as_ref().map_or(0, Charge::bytes)
    }

    /// Splits the region strictly containing `at` into `[start, at)` and `[at, end)`
    /// (TooManyRegions, with nothing changed, when the space has no room for one more).
    fn split_at(&mut self, at: u64) -> Result<(), MmError> {
        let Some((start, _)) = self.region_containing(at) else {
            return Ok(());
        };
        if start == at {
            return Ok(());
        }
        self.room_for_a_region()?;
        let Some(r) = self.regions.get(&start) else {
            return Ok(());
        };
        let mut upper = r.clone();
        if let Backing::Shared { first, .. } | Backing::File { first, .. } = &mut upper.backing {
            *first += (at - start) / PAGE_SIZE;
        }
        if let Some(lower) = self.regions.get_mut(&start) {
            lower.end = at;
        }
        self.regions.insert(at, upper);
        Ok(())
    }

    /// Merges alike neighbours at every region boundary in `[start, end]`.
    fn merge_range(&mut self, start: u64, end: u64) {
        // From the top down, without a list (a merge removes the boundary it
        // merges at, never one below it).
        let mut next = self.regions.range(start..=end).map(|(&s, _)| s).next_back();
        while let Some(at) = next {
            self.try_merge(at);
            next = self.regions.range(start..at).map(|(&s, _)| s).next_back();
        }
    }

    /// Merges the region ending at `at` with the one starting there, if they are alike.
    fn try_merge(&mut self, at: u64) {
        let Some((ls, lower)) = self.regions.range(..at).next_back() else {
            return;
        };
        let Some(upper) = self.regions.get(&at) else {
            return;
        };
        if lower.end != at || lower.prot != upper.prot || !Self::contiguous(*ls, lower, upper) {
            return;
        }
        let ls = *ls;
        if let Some(upper) = self.regions.remove(&at) {
            if let Some(lower) = self.regions.get_mut(&ls) {
                lower.end = upper.end;
            }
            self.release_backing(upper.backing);
        }
    }

    fn contiguous(lower_start: u64, lower: &Region, upper: &Region) -> bool {
        match (&lower.backing, &upper.backing) {
            (Backing::Private, Backing::Private) => true,
            (Backing::Shared { obj: a, first: fa }, Backing::Shared { obj: b, first: fb }) => {
                Arc::ptr_eq(a, b) && fa + (lower.end - lower_start) / PAGE_SIZE == *fb
            }
            (
                Backing::File {
                    file: a,
                    first: fa,
                    sharing: sa,
                    max_prot: ma,
                },
                Backing::File {
                    file: b,
                    first: fb,
                    sharing: sb,
                    max_prot: mb,
                },
            ) => {
                Arc::ptr_eq(a, b)
                    && (sa, ma) == (sb, mb)
                    && fa + (lower.end - lower_start) / PAGE_SIZE == *fb
            }
            _ => false,
        }
    }

    /// The first resident page after `page` and below `end`.
    fn next_resident(&self, page: u64, end: u64) -> Option<u64> {
        self.resident.range(page + 1..end).map(|(&p, _)| p).next()
    }

    /// Gives back the pages of a region already removed from the tree.
    fn drop_region(&mut self, start: u64, region: Region) {
        self.release_pages(start, region.end, usize::MAX, &region.backing);
        self.release_backing(region.backing);
    }

    /// Gives up a page's frame (which left the resident map): a private frame
    /// goes back unless a fork relative still owns it, a file's frame is unpinned,
    /// a shared object's stays with the object.
    fn release_page(&mut self, backing: &Backing, page: Resident) {
        match (page.owner, backing) {
            (Owner::Space, _) => self.release_private(page.frame),
            (Owner::Backing, Backing::File { file, .. }) => file.unpin(page.frame),
            (Owner::Backing, _) => {}
        }
    }

    fn release_backing(&mut self, backing: Backing) {
        if let Backing::Shared { obj, .. } = backing {
            release_object(obj, &mut self.frames);
        }
    }

    fn release_private(&mut self, frame: PhysFrame) {
        if self.cow.release(frame) {
            let _ = self.frames.free_frame(frame);
        }
    }

    // ---- page faults ----

    /// Resolves a fault at `addr` for `access`: populates the page (demand zero,
    /// the shared object's page or the file's page), breaks copy-on-write (also the
    /// first write to a file page of a private region), or refreshes the mapping.
    /// An error means the access is illegal (or memory ran out); the page table
    /// then still agrees with the resident map.
    /// Every frame a user page gets (demand zero, copy-on-write, a page table) is
    /// taken here: a failure for want of memory is also noted for
    /// [`take_out_of_memory`](Self::take_out_of_memory).
    pub fn handle_page_fault(&mut self, addr: u64, access: Access) -> Result<(), Fault> {
        let r = self
            .fault_site(addr)
            .and_then(|site| self.resolve_fault(addr, access, site));
        self.note_out_of_memory(r)
    }

    /// [`handle_page_fault`](Self::handle_page_fault), unless `addr` lies in a
    /// mapping of a file, whose faults take the file's locks: then `None`, and
    /// nothing changed (the caller takes the way that holds them). One region
    /// look-up answers both questions (the fault fast path).
    pub fn handle_fault_outside_files(
        &mut self,
        addr: u64,
        access: Access,
    ) -> Option<Result<(), Fault>> {
        let r = match self.fault_site(addr) {
            Ok(site) if site.file => return None,
            Ok(site) => self.resolve_fault(addr, access, site),
            Err(e) => Err(e),
        };
        Some(self.note_out_of_memory(r))
    }

    /// Notes a fault's want of memory for [`take_out_of_memory`](Self::take_out_of_memory).
    fn note_out_of_memory(&mut self, r: Result<(), Fault>) -> Result<(), Fault> {
        if r == Err(Fault::OutOfMemory) {
            self.out_of_memory = true;
        }
        r
    }

    /// The region a fault at `addr` lies in.
    fn fault_site(&self, addr: u64) -> Result<FaultSite, Fault> {
        if addr >= TASK_SIZE {
            return Err(Fault::KernelAddress(addr));
        }
        let (start, region) = self.region_containing(addr).ok_or(Fault::Unmapped(addr))?;
        Ok(FaultSite {
            start,
            prot: region.prot,
            private: matches!(region.backing, Backing::Private),
            file: matches!(region.backing, Backing::File { .. }),
        })
    }

    /// Resolves a fault at `addr` in the region `site` describes.
    fn resolve_fault(&mut self, addr: u64, access: Access, site: FaultSite) -> Result<(), Fault> {
        let page = addr & !(PAGE_SIZE - 1);
        if !allows(site.prot, access) {
            return Err(Fault::AccessDenied(addr));
        }
        let (start, prot, private) = (site.start, site.prot, site.private);
        // One walk of the resident map finds the page or the place it goes.
        let found = match self.resident.entry(page) {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) if private => {
                return fill_private(e, &mut self.frames, &mut self.mmu, page, prot)
            }
            Entry::Vacant(_) => None,
        };
        let resident = match found {
            Some(r) => r,
            None => {
                let fresh = self.populate(start, page, addr)?;
                // populate mapped it as the region allows: only a write to a
                // private mapping's file page still needs its copy.
                if access != Access::Write || fresh.owner == Owner::Space {
                    return Ok(());
                }
                fresh
            }
        };
        if access == Access::Write && self.must_copy(page, resident) {
            return self.break_cow(page, resident);
        }
        self.refresh_pte(page).map_err(|_| Fault::OutOfMemory)
    }

    /// [`sync_pte`](Self::sync_pte) for a fault on resident `page`: an entry that
    /// is already as wanted was widened since this CPU cached it, and the CPU drops
    /// its stale translation (see [`Mmu::refresh`]).
    fn refresh_pte(&mut self, page: u64) -> Result<(), MmuError> {
        if let Some(va) = user_page(page) {
            let entry = self.mmu.query(va);
            if entry.is_some() && entry == self.wanted_pte(page) {
                self.mmu.refresh(va);
                return Ok(());
            }
        }
        self.sync_pte(page)
    }

    /// Whether a write to resident `page` needs a private copy first: a private
    /// frame with another owner, or a file's frame in a private region.
    fn must_copy(&self, page: u64, resident: Resident) -> bool {
        let private =
            matches!(self.region_containing(page), Some((_, r)) if r.sharing() == Sharing::Private);
        private
            && match resident.owner {
                Owner::Backing => true,
                Owner::Space => self.cow.owners(resident.frame) > 1,
            }
    }

    /// Gives `page` of the region at `start` its frame and maps it (`addr` is
    /// the faulting address, for the error).
    fn populate(&mut self, start: u64, page: u64, addr: u64) -> Result<Resident, Fault> {
        let backing = self
            .regions
            .get(&start)
            .map(|r| r.backing.clone())
            .ok_or(Fault::Unmapped(addr))?;
        let index = backing.index(start, page);
        let resident = match &backing {
            Backing::Private => zeroed_frame(&mut self.frames).map(|frame| Resident {
                frame,
                owner: Owner::Space,
            }),
            Backing::Shared { obj, .. } => {
                obj.frame(index, &mut self.frames).map(|frame| Resident {
                    frame,
                    owner: Owner::Backing,
                })
            }
            Backing::File { file, .. } => {
                let frame = file.pin(index).map_err(|e| match e {
                    FilePageError::OutOfMemory => Fault::OutOfMemory,
                    FilePageError::BeyondEnd | FilePageError::NoSpace => Fault::Bus(addr),
                })?;
                Ok(Resident {
                    frame,
                    owner: Owner::Backing,
                })
            }
        }
        .map_err(|_| Fault::OutOfMemory)?;
        self.resident.insert(page, resident);
        if self.sync_pte(page).is_err() {
            self.resident.remove(&page);
            self.release_page(&backing, resident);
            return Err(Fault::OutOfMemory);
        }
        Ok(resident)
    }

    /// Gives `page` a private copy of the frame of `old` (a copy-on-write frame, or
    /// a file's frame in a private region), and gives `old` up.
    fn break_cow(&mut self, page: u64, old: Resident) -> Result<(), Fault> {
        let backing = self
            .region_containing(page)
            .map(|(_, r)| r.backing.clone())
            .ok_or(Fault::Unmapped(page))?;
        let new = self.frames.alloc_frame().map_err(|_| Fault::OutOfMemory)?;
        if phys::copy_frame(old.frame, new).is_err() {
            let _ = self.frames.free_frame(new);
            return Err(Fault::OutOfMemory);
        }
        if let Some(va) = user_page(page) {
            let _ = self.mmu.unmap(va);
        }
        let copy = Resident {
            frame: new,
            owner: Owner::Space,
        };
        self.resident.insert(page, copy);
        self.release_page(&backing, old);
        // Remapping a page just unmapped needs no new table: cannot fail.
        let _ = self.sync_pte(page);
        Ok(())
    }

    /// The page-table entry `page` should have (invariant 2), `None` for no mapping.
    fn wanted_pte(&self, page: u64) -> Option<(PhysFrame, Prot)> {
        let resident = *self.resident.get(&page)?;
        let (_, region) = self.region_containing(page)?;
        if region.prot.is_empty() {
            return None;
        }
        let mut prot = region.prot | Prot::READ;
        if self.must_copy(page, resident) {
            prot.remove(Prot::WRITE);
        }
        Some((resident.frame, prot))
    }

    /// Makes the page table agree with the resident map and regions for `page`.
    fn sync_pte(&mut self, page: u64) -> Result<(), MmuError> {
        self.sync_pte_flushed(page, Flush::Now)
    }

    /// [`sync_pte`](Self::sync_pte) for one page of a batch: a protection change
    /// reaches the other CPUs with the batch's `flush_batch`.
    fn sync_pte_flushed(&mut self, page: u64, flush: Flush) -> Result<(), MmuError> {
        let Some(va) = user_page(page) else {
            return Ok(());
        };
        match (self.mmu.query(va), self.wanted_pte(page)) {
            (None, None) => Ok(()),
            (Some(_), None) => self.mmu.unmap(va).map(|_| ()),
            (None, Some((frame, prot))) => self.mmu.map(va, frame, prot),
            (Some((f, old)), Some((frame, prot))) if f == frame => match (old == prot, flush) {
                (true, _) => Ok(()),
                (false, _) if prot.contains(old) => self.mmu.widen(va, prot),
                (false, Flush::Now) => self.mmu.protect(va, prot),
                (false, Flush::Batched) => self.mmu.protect_batched(va, prot),
            },
            (Some(_), Some((frame, prot))) => {
                self.mmu.unmap(va)?;
                self.mmu.map(va, frame, prot)
            }
        }
    }

    // ---- fork and teardown ----

    /// A copy of this space for a child process, whose page-table root is `root`.
    /// Private pages become copy-on-write in both; shared regions stay shared
    /// (file pages are pinned once more for the child). On failure the child is
    /// destroyed and this space is unchanged (apart from pages that may now fault
    /// once to regain write access).
    pub fn fork(&mut self, root: PhysFrame) -> Result<Self, MmError> {
        let mut child = Self::with_cow(root, self.frames.clone(), self.cow.clone())?;
        child.regions = self.regions.clone();
        // The resident map copied whole (a tree clone copies nodes, no insert per
        // page), then the child's shares counted, then its table filled.
        child.resident = self.resident.clone();
        if let Err(at) = self.share_with_child() {
            // Counted for the child: the private pages and the file pages below `at`.
            child
                .resident
                .retain(|&page, r| page < at || r.owner == Owner::Space);
            child.destroy();
            return Err(MmError::OutOfMemory);
        }
        let mapped = self.map_into_child(&mut child);
        self.mmu.flush_batch();
        if mapped.is_err() {
            child.destroy();
            return Err(MmError::OutOfMemory);
        }
        Ok(child)
    }

    /// Counts a fork child's share of every resident page: one more owner of each
    /// private frame (all under one lock), one more pin of each file frame. On a
    /// failed pin, `Err(page)`: the file pages from `page` on are not pinned.
    fn share_with_child(&self) -> Result<(), u64> {
        let private = self.resident.values().filter(|r| r.owner == Owner::Space);
        self.cow.share_all(private.map(|r| r.frame));
        for (&start, region) in &self.regions {
            let Backing::File { file, .. } = &region.backing else {
                continue;
            };
            for (&page, r) in self.resident.range(start..region.end) {
                if r.owner == Owner::Backing && file.repin(r.frame).is_err() {
                    return Err(page);
                }
            }
        }
        Ok(())
    }

    /// Maps every resident page into `child`'s (empty) table as invariant 2 wants
    /// it once the child's shares are counted: without `WRITE` in a private region
    /// (every private frame has two owners now, a file frame is copied on the first
    /// write), in this space's table too (batched: the caller flushes). One walk
    /// per region, no look-ups per page.
    fn map_into_child(&mut self, child: &mut Self) -> Result<(), MmuError> {
        for (&start, region) in &self.regions {
            if region.prot.is_empty() {
                continue;
            }
            let prot = region.prot | Prot::READ;
            let private = region.sharing() == Sharing::Private;
            let wanted = if private { prot - Prot::WRITE } else { prot };
            let downgrade = private && prot.contains(Prot::WRITE);
            for (&page, r) in self.resident.range(start..region.end) {
                let Some(va) = user_page(page) else {
                    continue;
                };
                child.mmu.map(va, r.frame, wanted)?;
                if downgrade {
                    // Downgrading an existing entry allocates nothing. The parent's
                    // other threads lose write access on every CPU before fork
                    // returns (the caller's flush).
                    let _ = self.mmu.protect_batched(va, wanted);
                }
            }
        }
        Ok(())
    }

    /// Tears the space down: every private frame this space was the last owner of,
    /// every shared object it was the last user of, every table and the root go back.
    pub fn destroy(mut self) {
        // No CPU may go on walking these tables while they are freed. None caches
        // their translations either (a CPU leaving a root drops its TLB, there are
        // no ASIDs), so the pages need no unmapping: their frames go back as they
        // are and the tables are freed whole by `mmu.destroy`.
        crate::arch::paging::retire_root(self.mmu.root());
        // Nothing is allocated here (an OOM kill tears spaces down).
        let resident = core::mem::take(&mut self.resident);
        let frames = &mut self.frames;
        let private = resident.values().filter(|r| r.owner == Owner::Space);
        self.cow.release_all(private.map(|r| r.frame), |frame| {
            let _ = frames.free_frame(frame);
        });
        for (&start, region) in &self.regions {
            if let Backing::File { file, .. } = &region.backing {
                let pages = resident.range(start..region.end).map(|(_, r)| r);
                pages
                    .filter(|r| r.owner == Owner::Backing)
                    .for_each(|r| file.unpin(r.frame));
            }
        }
        drop(resident);
        while let Some((_, region)) = self.regions.pop_first() {
            self.release_backing(region.backing);
        }
        self.mmu.destroy();
    }

    // ---- user memory access ----

    /// Copies `buf.len()` bytes from user address `src` into `buf`, faulting pages in
    /// as a user read would. Fails (possibly after a partial copy) on a bad pointer.
    pub fn copy_from_user(&mut self, src: u64, buf: &mut [u8]) -> Result<(), BadUserAddress> {
        // Through the MMU first, where the arch can and this space is the active
        // one (`arch::uaccess`); the walk below copies what that could not reach.
        let first = crate::arch::uaccess::read_user(self.root(), src, buf);
        if first == buf.len() {
            return Ok(());
        }
        let mut done = first;
        self.for_each_chunk(
            src + first as u64,
            buf.len() - first,
            Access::Read,
            |pa, range| {
                let n = range.len();
                let r = phys::read_bytes(pa, &mut buf[done..done + n]);
                done += n;
                r.is_ok()
            },
        )
    }

    /// Copies `data` to user address `dst`, faulting pages in (and breaking
    /// copy-on-write) as a user write would. Fails on a bad pointer.
    pub fn copy_to_user(&mut self, dst: u64, data: &[u8]) -> Result<(), BadUserAddress> {
        match dst.checked_add(data.len() as u64) {
            Some(end) if end <= TASK_SIZE => {}
            _ => return Err(BadUserAddress(dst)),
        }
        // Through the MMU first (as in `copy_from_user`): the rest, if any, as before.
        let first = crate::arch::uaccess::write_user(self.root(), dst, data);
        if first == data.len() {
            return Ok(());
        }
        let (dst, data) = (dst + first as u64, &data[first..]);
        let page = PAGE_SIZE as usize;
        let head = (page - (dst % PAGE_SIZE) as usize) % page;
        let head = head.min(data.len());
        self.for_each_chunk(dst, head, Access::Write, |pa, range| {
            phys::write_bytes(pa, &data[range]).is_ok()
        })?;
        // Whole pages that are not there yet get frames filled with their bytes
        // (exec copying a program in), instead of zeroed frames written over.
        let mut done = head;
        while data.len() - done >= page
            && self.fill_fresh_page(dst + done as u64, &data[done..done + page])
        {
            done += page;
        }
        let rest = &data[done..];
        self.for_each_chunk(dst + done as u64, rest.len(), Access::Write, |pa, range| {
            phys::write_bytes(pa, &rest[range]).is_ok()
        })
    }

    /// Writes `data` at `addr` as the kernel building a new image does (exec), not
    /// as a user store: into private anonymous regions whatever their protection,
    /// so an image's regions are mapped with their final rights at once (writing
    /// them first, then an mprotect pass over every page, was most of the loading
    /// work). A page not resident yet gets a fresh frame, zeroed only where `data`
    /// does not cover it; a resident one is written in place, which it must own
    /// alone. Fails on a page outside such a region or a shared one, or without
    /// memory (as a fault would, noted for [`take_out_of_memory`](Self::take_out_of_memory)).
    pub fn fill(&mut self, addr: u64, data: &[u8]) -> Result<(), BadUserAddress> {
        let end = addr
            .checked_add(data.len() as u64)
            .filter(|&end| end <= TASK_SIZE)
            .ok_or(BadUserAddress(addr))?;
        let mut at = addr;
        while at < end {
            let offset = at % PAGE_SIZE;
            let n = (PAGE_SIZE - offset).min(end - at);
            let done = (at - addr) as usize;
            if !self.fill_page(at - offset, offset, &data[done..done + n as usize]) {
                return Err(BadUserAddress(at));
            }
            at += n;
        }
        Ok(())
    }

    /// [`fill`](Self::fill) of one page: `bytes` at `offset` of `page` (aligned).
    /// `false` when refused; nothing changed then.
    fn fill_page(&mut self, page: u64, offset: u64, bytes: &[u8]) -> bool {
        let Some((_, region)) = self.region_containing(page) else {
            return false;
        };
        let (Backing::Private, Some(va)) = (&region.backing, user_page(page)) else {
            return false;
        };
        let prot = region.prot;
        let slot = match self.resident.entry(page) {
            Entry::Occupied(r) => {
                let frame = r.get().frame;
                return self.cow.owners(frame) == 1
                    && phys::write_bytes(frame.start_address + offset, bytes).is_ok();
            }
            Entry::Vacant(slot) => slot,
        };
        match place_fresh(
            slot,
            &mut self.frames,
            &mut self.mmu,
            va,
            prot,
            offset,
            bytes,
        ) {
            Ok(()) => true,
            Err(Fault::OutOfMemory) => {
                self.out_of_memory = true;
                false
            }
            Err(_) => false,
        }
    }

    /// Makes the page at `page` (aligned) resident with a new frame holding `bytes`
    /// (a page of them), if it lies in a private writable region and is not resident
    /// yet: what a write fault there does (see `fill_private`) but without zeroing a
    /// frame that is then overwritten whole. `false` (nothing changed) otherwise,
    /// also when memory ran out: the fault path then reports it.
    fn fill_fresh_page(&mut self, page: u64, bytes: &[u8]) -> bool {
        let Some((_, region)) = self.region_containing(page) else {
            return false;
        };
        if !allows(region.prot, Access::Write) || !matches!(region.backing, Backing::Private) {
            return false;
        }
        let prot = region.prot;
        let (Some(va), Entry::Vacant(slot)) = (user_page(page), self.resident.entry(page)) else {
            return false;
        };
        place_fresh(slot, &mut self.frames, &mut self.mmu, va, prot, 0, bytes).is_ok()
    }

    /// Calls `f(physical address, byte range within the buffer)` for each page-sized
    /// piece of `[addr, addr + len)`, after making each page accessible for `access`.
    fn for_each_chunk(
        &mut self,
        addr: u64,
        len: usize,
        access: Access,
        mut f: impl FnMut(PhysAddr, core::ops::Range<usize>) -> bool,
    ) -> Result<(), BadUserAddress> {
        match addr.checked_add(len as u64) {
            Some(end) if end <= TASK_SIZE => {}
            _ => return Err(BadUserAddress(addr)),
        }
        let mut done = 0usize;
        while done < len {
            let at = addr + done as u64;
            let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - done);
            let frame = self
                .user_frame(at, access)
                .map_err(|_| BadUserAddress(at))?;
            if !f(frame.start_address + at % PAGE_SIZE, done..done + n) {
                return Err(BadUserAddress(at));
            }
            done += n;
        }
        Ok(())
    }

    /// The frame behind user address `addr`, made accessible for `access`.
    fn user_frame(&mut self, addr: u64, access: Access) -> Result<PhysFrame, Fault> {
        let va = user_page(addr).ok_or(Fault::KernelAddress(addr))?;
        if let Some((frame, prot)) = self.mmu.query(va) {
            if allows(prot, access) {
                return Ok(frame);
            }
        }
        self.handle_page_fault(addr, access)?;
        self.mmu
            .query(va)
            .map(|(f, _)| f)
            .ok_or(Fault::Unmapped(addr))
    }

    /// Checks invariants 1, 2 and 3 (for tests): every resident page is inside a region
    /// and the page table holds exactly the entries the invariants require.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        for (&page, resident) in &self.resident {
            let (_, region) = self
                .region_containing(page)
                .ok_or("resident page outside every region")?;
            let owner_ok = match (&region.backing, resident.owner) {
                (Backing::Private, owner) => owner == Owner::Space,
                (Backing::Shared { .. }, owner) => owner == Owner::Backing,
                (Backing::File { sharing, .. }, owner) => {
                    *sharing == Sharing::Private || owner == Owner::Backing
                }
            };
            if !owner_ok {
                return Err("resident page owned by the wrong party");
            }
            let va = user_page(page).ok_or("resident page outside user space")?;
            let ok = match (self.mmu.query(va), self.wanted_pte(page)) {
                (None, None) => true,
                (Some((f, p)), Some((wf, wp))) => {
                    f == wf && wp.contains(p) && p.contains(wp - Prot::WRITE)
                }
                _ => false,
            };
            if !ok {
                return Err("page table out of sync with the resident map");
            }
        }
        let mut prev_end = 0;
        for (&s, r) in &self.regions {
            if s < prev_end
                || r.end <= s
                || !s.is_multiple_of(PAGE_SIZE)
                || !r.end.is_multiple_of(PAGE_SIZE)
            {
                return Err("regions overlap, are empty or unaligned");
            }
            prev_end = r.end;
        }
        Ok(())
    }
}

/// The start of the page containing user address `addr`, or `None` outside user space.
/// Demand zero: gives `page` (not resident, so without an entry: invariant 2) of a
/// private region with protection `prot` a zeroed frame and maps it, what
/// `populate` and `sync_pte` do for it without their look-ups (the fresh frame has
/// no other owner: nothing keeps it read-only). `slot` is the page's place in the
/// resident map, filled once the page is mapped; on failure nothing changed.
/// Gives `page` (not resident: `slot` is its place in the resident map) a fresh frame
/// holding `bytes` at `offset`, zeroed elsewhere (not at all when `bytes` is the whole
/// page), and maps it at `va` with `prot` unless that is PROT_NONE (invariant 2: the
/// frame is the space's alone, so with every right the region gives). What `fill`
/// and `copy_to_user`'s fresh pages share; on failure (OutOfMemory for want of a
/// frame) nothing changed.
fn place_fresh<M: Mmu<A>, A: FrameSource>(
    slot: VacantEntry<'_, u64, Resident>,
    frames: &mut A,
    mmu: &mut M,
    va: super::VirtAddr,
    prot: Prot,
    offset: u64,
    bytes: &[u8],
) -> Result<(), Fault> {
    let frame = frames.alloc_frame().map_err(|_| Fault::OutOfMemory)?;
    let whole = offset == 0 && bytes.len() as u64 == PAGE_SIZE;
    let filled = (whole || phys::zero_frame(frame).is_ok())
        && phys::write_bytes(frame.start_address + offset, bytes).is_ok();
    if !filled || (!prot.is_empty() && mmu.map(va, frame, prot | Prot::READ).is_err()) {
        let _ = frames.free_frame(frame);
        return Err(Fault::Unmapped(va.as_u64()));
    }
    slot.insert(Resident {
        frame,
        owner: Owner::Space,
    });
    Ok(())
}

fn fill_private<M: Mmu<A>, A: FrameSource>(
    slot: VacantEntry<'_, u64, Resident>,
    frames: &mut A,
    mmu: &mut M,
    page: u64,
    prot: Prot,
) -> Result<(), Fault> {
    let frame = zeroed_frame(frames).map_err(|_| Fault::OutOfMemory)?;
    let mapped = match user_page(page) {
        Some(va) if !prot.is_empty() => mmu.map(va, frame, prot | Prot::READ),
        _ => Ok(()),
    };
    if mapped.is_err() {
        let _ = frames.free_frame(frame);
        return Err(Fault::OutOfMemory);
    }
    slot.insert(Resident {
        frame,
        owner: Owner::Space,
    });
    Ok(())
}

/// Unmaps the user page at `page` (if it is one) with its flush left to the batch.
fn unmap_batched<A: FrameSource, M: Mmu<A>>(mmu: &mut M, page: u64) {
    if let Some(va) = user_page(page) {
        let _ = mmu.unmap_batched(va);
    }
}

/// Pages [`AddressSpace::release_pages`] takes out of the map at a time, on the stack.
const RELEASE_BATCH: usize = 32;

/// Takes up to `max` (at most a batch) resident pages of `range` out of `resident`
/// into `batch`, in one walk, calling `each` with every page's address; returns how
/// many. The pages after them stay in the map.
fn take_batch(
    resident: &mut BTreeMap<u64, Resident>,
    range: core::ops::Range<u64>,
    batch: &mut [Option<Resident>; RELEASE_BATCH],
    max: usize,
    mut each: impl FnMut(u64),
) -> usize {
    let limit = RELEASE_BATCH.min(max);
    let mut n = 0;
    let mut pages = resident.extract_if(range, |_, _| true);
    while n < limit {
        let Some((page, r)) = pages.next() else {
            break;
        };
        each(page);
        batch[n] = Some(r);
        n += 1;
    }
    // Dropped before the range is exhausted, it leaves the rest in the map.
    n
}

fn user_page(addr: u64) -> Option<super::VirtAddr> {
    if addr >= TASK_SIZE {
        return None;
    }
    super::VirtAddr::try_new(addr & !(PAGE_SIZE - 1)).ok()
}

#[cfg(test)]
pub(crate) mod test_frames;
#[cfg(test)]
mod tests;

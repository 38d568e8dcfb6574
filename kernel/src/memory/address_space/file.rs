//! File mappings: what an [`AddressSpace`](super::AddressSpace) needs from a file it
//! maps, and how a file region is described.
//!
//! * [`MappedFile`]: the seam to the file system. The address space never owns a
//!   file's frames: it *pins* a page's frame when it maps it ([`MappedFile::pin`])
//!   and unpins it when the page leaves the space (munmap, exit, exec, a private
//!   copy replacing it). The file system must not free a pinned frame, even when
//!   the page leaves the file (truncate, last unlink): that is what keeps a frame
//!   from going back to the allocator while a page table can reach it.
//! * The region holds an `Arc<dyn MappedFile>` (the open file description, as
//!   Linux's `vm_file`), so the file lives as long as a region maps it.
//! * [`FileMap`]: a request to back a new region by a file; [`FileRegion`]: what
//!   [`RegionInfo`](super::RegionInfo) reports about it (name and offset, for
//!   `/proc/PID/maps`).

use super::Prot;
use crate::memory::{PhysFrame, PAGE_SIZE};
use alloc::sync::Arc;

/// Why a file page could not be had for a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePageError {
    /// The page lies wholly beyond the end of the file (SIGBUS).
    BeyondEnd,
    /// The file system is full (SIGBUS, as Linux's shmem fault).
    NoSpace,
    /// No memory for the page or the file system's bookkeeping.
    OutOfMemory,
}

/// A file as a mapping sees it: page frames by index, pinned while mapped.
///
/// Contract: [`pin`](Self::pin) and [`repin`](Self::repin) count one pin of the
/// frame each, [`unpin`](Self::unpin) drops one; a frame with pins is never freed
/// by the file system, and the frame of a page that is still in the file is the
/// one `read(2)` and `write(2)` use (so a shared mapping and the file agree).
pub trait MappedFile: Send + Sync {
    /// The frame of page `index` of the file, pinned (a hole gets a zeroed page).
    fn pin(&self, index: u64) -> Result<PhysFrame, FilePageError>;
    /// One more pin of `frame`, which `pin` gave (fork copies a mapped page).
    fn repin(&self, frame: PhysFrame) -> Result<(), FilePageError>;
    /// Drops a pin of `frame`.
    fn unpin(&self, frame: PhysFrame);
    /// The file's name (the path it was opened by).
    fn name(&self) -> &[u8];
}

/// The file backing of a new mapping (see `AddressSpace::mmap_file`).
#[derive(Clone)]
pub struct FileMap {
    /// The file.
    pub file: Arc<dyn MappedFile>,
    /// The file page the mapping starts at (the mmap offset / [`PAGE_SIZE`]).
    pub first: u64,
    /// The most the region may ever allow: a shared mapping of a file not open
    /// for writing lacks [`Prot::WRITE`] (Linux's `VM_MAYWRITE`), so mprotect
    /// cannot add it.
    pub max_prot: Prot,
}

impl core::fmt::Debug for FileMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FileMap({:?} page {})",
            name_str(&*self.file),
            self.first
        )
    }
}

/// The file part of a [`RegionInfo`](super::RegionInfo).
#[derive(Clone)]
pub struct FileRegion {
    file: Arc<dyn MappedFile>,
    /// Byte offset in the file of the region's first byte.
    pub offset: u64,
}

impl FileRegion {
    pub(super) fn new(file: &Arc<dyn MappedFile>, first: u64) -> Self {
        FileRegion {
            file: file.clone(),
            offset: first.saturating_mul(PAGE_SIZE),
        }
    }

    /// The file's name.
    pub fn name(&self) -> &[u8] {
        self.file.name()
    }
}

impl PartialEq for FileRegion {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset
    }
}

impl Eq for FileRegion {}

impl core::fmt::Debug for FileRegion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FileRegion({:?} at {})",
            name_str(&*self.file),
            self.offset
        )
    }
}

fn name_str(file: &dyn MappedFile) -> &str {
    core::str::from_utf8(file.name()).unwrap_or("?")
}

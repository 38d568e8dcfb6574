//! mmap, munmap, mprotect, msync.
//!
//! What a mapping without `MAP_ANONYMOUS` maps depends on its fd:
//! * a regular file of a file system that maps files (tmpfs): the file
//!   ([`AddressSpace::mmap_file`](crate::memory::address_space::AddressSpace::mmap_file)).
//!   `MAP_SHARED` pages are the file's pages, so stores reach `read(2)` and writes
//!   reach the mapping without msync; `MAP_PRIVATE` maps them read-only and copies
//!   a page on its first write. The region holds the open file description (as
//!   Linux's `vm_file`), so a mapped file outlives its fd and its last name; the
//!   file system pins each resident page's frame (see
//!   [`crate::memory::address_space::file`] and [`crate::fs::tmpfs`], which says
//!   what truncate does to mapped pages). A page wholly beyond the end of the
//!   file is SIGBUS; the file never grows through a mapping.
//! * `/dev/zero`: anonymous memory, as on Linux.
//! * the test console (fds 0-2 of a process that has no terminal): anonymous
//!   memory, kept for the seed's `mmap(.., MAP_SHARED, 0, 0)`;
//! * anything else (pipes, directories, the terminal, other devices, procfs
//!   files): ENODEV, after Linux's EACCES checks of the access mode.

use super::blocking::PIECE_PAGES;
use super::fd::File;
use super::overcommit;
use super::rlimit::check_address_space;
use super::{Errno, Sys, EACCES, EBADF, EINVAL, ENODEV, ENOMEM, EOPNOTSUPP, EOVERFLOW};
use crate::fs::devfs::CharDevice;
use crate::fs::errno::{ENOSPC, ENXIO};
use crate::fs::file::{Access as FileAccess, OpenFile};
use crate::fs::MAX_FILE_SIZE;
use crate::memory::address_space::{Access, FileMap, FilePageError, MapRequest, MappedFile};
use crate::memory::address_space::{MmError, Placement, Prot, Sharing, TASK_SIZE};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::{PhysFrame, PAGE_SIZE};
use alloc::sync::Arc;

/// Readable.
pub const PROT_READ: usize = 1;
/// Writable.
pub const PROT_WRITE: usize = 2;
/// Executable.
pub const PROT_EXEC: usize = 4;
/// System V semaphores (accepted, meaningless here).
pub const PROT_SEM: usize = 8;
/// mprotect: extend to the start of a grows-down region.
pub const PROT_GROWSDOWN: usize = 0x0100_0000;
/// mprotect: extend to the end of a grows-up region.
pub const PROT_GROWSUP: usize = 0x0200_0000;

/// Shared mapping.
pub const MAP_SHARED: usize = 0x01;
/// Private (copy-on-write) mapping.
pub const MAP_PRIVATE: usize = 0x02;
/// Shared, with unknown flags refused.
pub const MAP_SHARED_VALIDATE: usize = 0x03;
/// Mask of the mapping type.
pub const MAP_TYPE: usize = 0x0f;
/// Exactly at `addr`, replacing what is there.
pub const MAP_FIXED: usize = 0x10;
/// Not backed by a file.
pub const MAP_ANONYMOUS: usize = 0x20;
/// Populate the pages now.
pub const MAP_POPULATE: usize = 0x8000;
/// A stack that grows down (not with MAP_SHARED).
pub const MAP_GROWSDOWN: usize = 0x100;
/// Huge pages (unsupported: EINVAL).
pub const MAP_HUGETLB: usize = 0x4_0000;
/// Exactly at `addr`, failing with EEXIST if something is there.
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;
/// Flags Linux knows (others are ignored, or refused under MAP_SHARED_VALIDATE).
const MAP_KNOWN: usize = 0x0f
    | 0x10
    | 0x20
    | 0x100
    | 0x800
    | 0x1000
    | 0x2000
    | 0x4000
    | 0x8000
    | 0x1_0000
    | 0x2_0000
    | 0x4_0000
    | 0x8_0000
    | 0x10_0000
    | 0x400_0000;

/// mmap(addr, len, prot, flags, fd, offset). Checks in Linux's order: offset
/// alignment (EINVAL), fd (EBADF), zero length (EINVAL), length overflow (ENOMEM),
/// offset overflow (EOVERFLOW), mapping type (EINVAL), the file (EOVERFLOW past
/// the largest file, EACCES, ENODEV: [`file_backing`]), `RLIMIT_AS` (ENOMEM), then
/// placement.
pub fn sys_mmap<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    len: usize,
    prot: usize,
    flags: usize,
    fd: usize,
    offset: usize,
) -> Result<usize, Errno> {
    let (addr, len, offset) = (addr as u64, len as u64, offset as u64);
    let prot = Prot::from_bits_truncate((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) as u32);
    if let Some(start) = populating(sys) {
        return populate(sys, start, page_count(len)?, prot);
    }
    if !offset.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    let file = match flags & MAP_ANONYMOUS {
        0 => Some(fd_file(sys, fd)?),
        _ => None,
    };
    // No huge pages here: MAP_HUGETLB is refused where Linux sets up its
    // hugetlbfs file, before it looks at the length.
    if flags & MAP_HUGETLB != 0 {
        return Err(EINVAL);
    }
    let pages = page_count(len)?;
    if (offset / PAGE_SIZE).checked_add(pages).is_none() {
        return Err(EOVERFLOW);
    }
    let sharing = sharing(flags)?;
    let backing = match file {
        Some(file) => file_backing(&file, sharing, prot, offset, pages)?,
        None => None,
    };
    let at = placement(addr, flags);
    let replaced = match at {
        Placement::Fixed(a) => a..a.saturating_add(pages * PAGE_SIZE),
        _ => 0..0,
    };
    check_address_space(sys, pages * PAGE_SIZE, replaced)?;
    if overcommit::accountable(prot, sharing, backing.is_none(), flags) {
        overcommit::check_commit(sys, pages)?;
    }
    let req = MapRequest::new(len, prot).sharing(sharing).at(at);
    let mut space = sys.space()?;
    let start = match backing {
        Some(map) => space.mmap_file(req, map)?,
        None => space.mmap(req)?,
    };
    drop(space);
    if flags & MAP_POPULATE != 0 {
        return populate(sys, start, pages, prot);
    }
    Ok(start as usize)
}

/// The file behind `fd` (EBADF if it is not open, or an `O_PATH` fd, which
/// Linux's mmap does not see).
fn fd_file<A: FrameSource + Clone>(sys: &Sys<'_, A>, fd: usize) -> Result<File, Errno> {
    let fd = usize::try_from(fd as i32).map_err(|_| EBADF)?;
    match super::fd::file(&sys.files()?, fd) {
        Some(File::Node(f)) if f.access() == FileAccess::Path => Err(EBADF),
        Some(file) => Ok(file),
        None => Err(EBADF),
    }
}

/// What a mapping of `file` is backed by: `Some` file, or `None` for anonymous
/// memory (see the module documentation). Linux's checks, in its order: the end
/// beyond the largest file size (EOVERFLOW, regular files), `MAP_SHARED` with
/// `PROT_WRITE` of a file not open for writing (EACCES), a file not open for
/// reading (EACCES), a file without mmap (ENODEV).
fn file_backing(
    file: &File,
    sharing: Sharing,
    prot: Prot,
    offset: u64,
    pages: u64,
) -> Result<Option<FileMap>, Errno> {
    let (access, node) = match file {
        File::ConsoleIn | File::ConsoleOut => return Ok(None),
        File::PipeRead(_) => (FileAccess::Read, None),
        File::PipeWrite(_) => (FileAccess::Write, None),
        File::Terminal(access) => (*access, None),
        File::Fifo(f) => (f.file.access(), None),
        File::Node(f) => (f.access(), Some(f)),
    };
    let regular = node.is_some_and(|f| f.node().mappable());
    if regular && pages * PAGE_SIZE > MAX_FILE_SIZE - offset.min(MAX_FILE_SIZE) {
        return Err(EOVERFLOW);
    }
    let shared = sharing == Sharing::Shared;
    if shared && prot.contains(Prot::WRITE) && !access.writes() {
        return Err(EACCES);
    }
    if !access.reads() {
        return Err(EACCES);
    }
    let node = node.ok_or(ENODEV)?;
    if node.node().char_device() == Some(CharDevice::Zero) {
        return Ok(None);
    }
    if !regular {
        return Err(ENODEV);
    }
    let max_prot = match shared && !access.writes() {
        true => Prot::READ | Prot::EXEC,
        false => Prot::all(),
    };
    let file: Arc<dyn MappedFile> = node.clone();
    Ok(Some(FileMap {
        file,
        first: offset / PAGE_SIZE,
        max_prot,
    }))
}

/// An open file description is what a file mapping holds (Linux's `vm_file`): its
/// pages come from its inode, pinned there.
impl MappedFile for OpenFile {
    fn pin(&self, index: u64) -> Result<PhysFrame, FilePageError> {
        self.node().pin_page(index).map_err(|e| match e {
            ENXIO => FilePageError::BeyondEnd,
            ENOSPC => FilePageError::NoSpace,
            _ => FilePageError::OutOfMemory,
        })
    }
    fn repin(&self, frame: PhysFrame) -> Result<(), FilePageError> {
        self.node()
            .repin_page(frame)
            .map_err(|_| FilePageError::OutOfMemory)
    }
    fn unpin(&self, frame: PhysFrame) {
        self.node().unpin_page(frame)
    }
    fn name(&self) -> &[u8] {
        self.path()
    }
}

/// Pages in `len` bytes: EINVAL for 0, ENOMEM when rounding overflows or the length
/// exceeds user space.
fn page_count(len: u64) -> Result<u64, Errno> {
    if len == 0 {
        return Err(EINVAL);
    }
    match len.checked_add(PAGE_SIZE - 1) {
        Some(l) if l / PAGE_SIZE * PAGE_SIZE <= TASK_SIZE => Ok(l / PAGE_SIZE),
        _ => Err(ENOMEM),
    }
}

fn sharing(flags: usize) -> Result<Sharing, Errno> {
    if flags & MAP_HUGETLB != 0 {
        return Err(EINVAL);
    }
    let shared = matches!(flags & MAP_TYPE, MAP_SHARED | MAP_SHARED_VALIDATE);
    if shared && flags & MAP_GROWSDOWN != 0 {
        return Err(EINVAL);
    }
    match flags & MAP_TYPE {
        MAP_SHARED => Ok(Sharing::Shared),
        MAP_SHARED_VALIDATE if flags & !MAP_KNOWN != 0 => Err(EOPNOTSUPP),
        // Linux: an anonymous mapping must be plainly shared or private.
        MAP_SHARED_VALIDATE if flags & MAP_ANONYMOUS != 0 => Err(EINVAL),
        MAP_SHARED_VALIDATE => Ok(Sharing::Shared),
        MAP_PRIVATE => Ok(Sharing::Private),
        _ => Err(EINVAL),
    }
}

fn placement(addr: u64, flags: usize) -> Placement {
    if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace(addr)
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed(addr)
    } else if addr != 0 {
        Placement::Hint(addr)
    } else {
        Placement::Anywhere
    }
}

/// MAP_POPULATE: faults every page in now, [`PIECE_PAGES`] at a time (the call is
/// issued again for each next piece, see `blocking`); answers the mapping's
/// address. Like Linux, running out of memory here is not an error of mmap (the
/// pages fault in later, or the fault fails then); the OOM killer runs first
/// ([`Sys::retry_on_oom`]), and populating goes on if it freed memory elsewhere.
fn populate<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    start: u64,
    pages: u64,
    prot: Prot,
) -> Result<usize, Errno> {
    let access = if prot.contains(Prot::WRITE) {
        Access::Write
    } else {
        Access::Read
    };
    let mut next = sys.resume_at();
    let end = pages.min(next + PIECE_PAGES);
    let filled = sys.retry_on_oom(|space| {
        while next < end {
            space
                .handle_page_fault(start + next * PAGE_SIZE, access)
                .map_err(|_| ENOMEM)?;
            next += 1;
        }
        Ok(())
    });
    match filled {
        Ok(()) if next < pages => sys.yield_piece(start as usize, next),
        _ => Ok(start as usize),
    }
}

/// The MAP_POPULATE of a mapping made by an earlier piece of this call, if this
/// is a re-issue (see `blocking`): its address.
fn populating<A: FrameSource + Clone>(sys: &Sys<'_, A>) -> Option<u64> {
    match sys.progress() {
        0 => None,
        start => Some(start as u64),
    }
}

/// munmap(addr, len): EINVAL for an unaligned address, a zero length, or a range that
/// leaves user space; unmapping nothing succeeds.
pub fn sys_munmap<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    len: usize,
) -> Result<usize, Errno> {
    let (addr, len) = (addr as u64, len as u64);
    if !addr.is_multiple_of(PAGE_SIZE) || addr > TASK_SIZE || len > TASK_SIZE - addr || len == 0 {
        return Err(EINVAL);
    }
    // A large resident range is given back in pieces that all run (see `blocking`).
    let done = sys
        .space()?
        .munmap_piece(addr, len, MUNMAP_PIECE_PAGES)
        .map_err(|e| match e {
            MmError::TooManyRegions | MmError::OutOfMemory => ENOMEM,
            _ => EINVAL,
        })?;
    match done {
        true => Ok(0),
        false => sys.yield_piece_to_finish(0),
    }
}

/// Resident pages munmap gives back per piece.
const MUNMAP_PIECE_PAGES: usize = 4 * PIECE_PAGES as usize;

/// mprotect(addr, len, prot): EINVAL for an unaligned address or unknown prot bits
/// (checked before the length, as Linux does); 0 for a zero length; ENOMEM when the
/// range wraps, leaves user space or has a hole.
pub fn sys_mprotect<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    len: usize,
    prot: usize,
) -> Result<usize, Errno> {
    let (addr, len) = (addr as u64, len as u64);
    // Linux's order: growing both ways (EINVAL), alignment, a zero length, the
    // range (ENOMEM), then the protection bits.
    if prot & (PROT_GROWSDOWN | PROT_GROWSUP) == PROT_GROWSDOWN | PROT_GROWSUP {
        return Err(EINVAL);
    }
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let end = len
        .checked_add(PAGE_SIZE - 1)
        .map(|l| l & !(PAGE_SIZE - 1))
        .and_then(|l| addr.checked_add(l));
    if end.is_none_or(|e| e <= addr) {
        return Err(ENOMEM);
    }
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_GROWSDOWN | PROT_GROWSUP) != 0
    {
        return Err(EINVAL);
    }
    if prot & (PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Err(EINVAL); // no grows-down/up regions exist
    }
    let prot = Prot::from_bits_truncate((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) as u32);
    if let Some(end) = end {
        overcommit::check_protect(sys, addr, end, prot)?;
    }
    sys.space()?
        .mprotect(addr, len, prot)
        .map_err(|e| match e {
            MmError::Unaligned(_) => EINVAL,
            MmError::Forbidden(_) => EACCES,
            _ => ENOMEM,
        })?;
    Ok(0)
}

/// msync: write back asynchronously.
pub const MS_ASYNC: usize = 1;
/// msync: invalidate other mappings of the file.
pub const MS_INVALIDATE: usize = 2;
/// msync: write back and wait.
pub const MS_SYNC: usize = 4;

/// msync(addr, len, flags): EINVAL for unknown flags, an unaligned address, or
/// `MS_ASYNC` with `MS_SYNC`; ENOMEM when the range wraps or any of it is not
/// mapped. Otherwise 0 at once: a shared file mapping's pages are the file's, so
/// there is nothing to write back.
pub fn sys_msync<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    len: usize,
    flags: usize,
) -> Result<usize, Errno> {
    let (addr, len) = (addr as u64, len as u64);
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 || !addr.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    if flags & MS_ASYNC != 0 && flags & MS_SYNC != 0 {
        return Err(EINVAL);
    }
    let end = len
        .checked_add(PAGE_SIZE - 1)
        .map(|l| l & !(PAGE_SIZE - 1))
        .and_then(|l| addr.checked_add(l))
        .ok_or(ENOMEM)?;
    if end == addr {
        return Ok(0);
    }
    sys.space()?
        .check_mapped(addr, end - addr)
        .map_err(|_| ENOMEM)?;
    Ok(0)
}

//! mmap, munmap, mprotect. While the kernel has no files, every mapping is anonymous
//! memory: a mapping without `MAP_ANONYMOUS` and with a non-negative fd (the seed maps
//! `MAP_SHARED` on fd 0) gets anonymous memory of the requested sharing.

use super::rlimit::check_address_space;
use super::{Errno, Sys, EBADF, EINVAL, ENOMEM, EOPNOTSUPP, EOVERFLOW};
use crate::memory::address_space::{Access, MapRequest, Placement, Prot, Sharing, TASK_SIZE};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::PAGE_SIZE;

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
/// offset overflow (EOVERFLOW), mapping type (EINVAL), `RLIMIT_AS` (ENOMEM), then
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
    if !offset.is_multiple_of(PAGE_SIZE) {
        return Err(EINVAL);
    }
    if flags & MAP_ANONYMOUS == 0 && (fd as i32) < 0 {
        return Err(EBADF);
    }
    let pages = page_count(len)?;
    if (offset / PAGE_SIZE).checked_add(pages).is_none() {
        return Err(EOVERFLOW);
    }
    let sharing = sharing(flags)?;
    let prot = Prot::from_bits_truncate((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) as u32);
    let at = placement(addr, flags);
    let replaced = match at {
        Placement::Fixed(a) => a..a.saturating_add(pages * PAGE_SIZE),
        _ => 0..0,
    };
    check_address_space(sys, pages * PAGE_SIZE, replaced)?;
    let req = MapRequest::new(len, prot).sharing(sharing).at(at);
    let space = sys.space()?;
    let start = space.mmap(req)?;
    if flags & MAP_POPULATE != 0 {
        populate(sys, start, pages, prot);
    }
    Ok(start as usize)
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

/// MAP_POPULATE: faults every page in now. Like Linux, running out of memory here is
/// not an error of mmap (the pages fault in later, or the fault fails then).
fn populate<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, start: u64, pages: u64, prot: Prot) {
    let access = if prot.contains(Prot::WRITE) {
        Access::Write
    } else {
        Access::Read
    };
    let Ok(space) = sys.space() else { return };
    for i in 0..pages {
        if space
            .handle_page_fault(start + i * PAGE_SIZE, access)
            .is_err()
        {
            return;
        }
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
    sys.space()?.munmap(addr, len).map_err(|_| EINVAL)?;
    Ok(0)
}

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
    sys.space()?
        .mprotect(addr, len, prot)
        .map_err(|e| match e {
            crate::memory::address_space::MmError::Unaligned(_) => EINVAL,
            _ => ENOMEM,
        })?;
    Ok(0)
}

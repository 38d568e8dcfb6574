//! Linux's heuristic overcommit (`vm.overcommit_memory = 0`, the default): memory
//! is promised freely, but a single request for more than the machine could ever
//! give (more pages than RAM and swap; this kernel has no swap) fails with ENOMEM.
//!
//! What is counted is what Linux accounts (`VM_ACCOUNT`): private writable
//! mappings and shared anonymous ones, unless `MAP_NORESERVE`; mprotect counts a
//! private region it makes writable; brk counts its growth. Read-only and
//! `PROT_NONE` private reservations, and shared file mappings, cost nothing, so
//! a 64 TiB `PROT_NONE` reservation succeeds as on Linux. The RAM figure is the
//! table's ([`crate::process::ProcessTable::ram_pages`]: every frame the
//! allocator manages, Linux's `totalram_pages`); without one nothing is refused.

use super::{Errno, Sys, ENOMEM};
use crate::memory::address_space::{Prot, Sharing};
use crate::memory::frame_allocator::FrameSource;

/// mmap: the pages are not accounted (Linux ignores it in mode 2 only).
pub const MAP_NORESERVE: usize = 0x4000;

/// Whether a new mapping with `prot` and `sharing` is accounted: private writable,
/// or shared anonymous; never with `MAP_NORESERVE`.
pub fn accountable(prot: Prot, sharing: Sharing, anonymous: bool, flags: usize) -> bool {
    if flags & MAP_NORESERVE != 0 {
        return false;
    }
    match sharing {
        Sharing::Private => prot.contains(Prot::WRITE),
        Sharing::Shared => anonymous,
    }
}

/// ENOMEM if committing `pages` more pages at once exceeds the machine's RAM.
pub fn check_commit<A: FrameSource + Clone>(sys: &Sys<'_, A>, pages: u64) -> Result<(), Errno> {
    match sys.table.ram_pages() {
        Some(ram) if pages > ram => Err(ENOMEM),
        _ => Ok(()),
    }
}

/// mprotect: ENOMEM if making `[start, end)` writable commits more than RAM in
/// one region (a private region that was not writable, as Linux counts per VMA).
pub fn check_protect<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    start: u64,
    end: u64,
    prot: Prot,
) -> Result<(), Errno> {
    if !prot.contains(Prot::WRITE) {
        return Ok(());
    }
    let largest = sys
        .space()?
        .regions_in(start, end)
        .filter(|r| r.sharing == Sharing::Private && !r.prot.contains(Prot::WRITE))
        .map(|r| (r.end.min(end) - r.start.max(start)) / crate::memory::PAGE_SIZE)
        .max()
        .unwrap_or(0);
    check_commit(sys, largest)
}

#[cfg(test)]
mod tests {
    use super::super::mmap::*;
    use super::super::tests::Machine;
    use super::super::*;
    use super::MAP_NORESERVE;

    const TIB: usize = 1 << 40;
    const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;
    const RW: usize = PROT_READ | PROT_WRITE;

    fn mmap(m: &mut Machine, len: usize, prot: usize, flags: usize) -> Result<usize, Errno> {
        m.sys(SYS_MMAP, [0, len, prot, flags, usize::MAX, 0])
    }

    #[test]
    fn a_mapping_larger_than_ram_is_enomem_unless_it_costs_nothing() {
        let mut m = Machine::new(8);
        let ram = m.table.ram_pages().unwrap() as usize * 4096;
        let regions = |m: &Machine| m.table.space(m.pid_of(m.init)).unwrap().regions().count();
        let before = regions(&m);
        assert_eq!(mmap(&mut m, 64 * TIB, RW, ANON), Err(ENOMEM));
        let shared = MAP_SHARED | MAP_ANONYMOUS;
        assert_eq!(mmap(&mut m, 64 * TIB, RW, shared), Err(ENOMEM));
        assert_eq!(mmap(&mut m, ram + 4096, RW, ANON), Err(ENOMEM));
        assert_eq!(regions(&m), before, "refusals map nothing");
        // As much as RAM is promised; so is anything not accounted.
        let whole = mmap(&mut m, ram, RW, ANON).unwrap();
        let noreserve = mmap(&mut m, 64 * TIB, RW, ANON | MAP_NORESERVE).unwrap();
        assert_eq!(m.sys(SYS_MUNMAP, [noreserve, 64 * TIB, 0, 0, 0, 0]), Ok(0));
        let none = mmap(&mut m, 64 * TIB, 0, ANON).unwrap();
        // Making the reservation writable commits it: refused, nothing changed.
        let mprotect = |m: &mut Machine, prot| m.sys(SYS_MPROTECT, [none, 64 * TIB, prot, 0, 0, 0]);
        assert_eq!(mprotect(&mut m, RW), Err(ENOMEM));
        let r = m
            .table
            .space(m.pid_of(m.init))
            .unwrap()
            .region_at(none as u64)
            .unwrap();
        assert_eq!(
            r.end - r.start,
            64 * TIB as u64,
            "still one PROT_NONE region"
        );
        assert_eq!(mprotect(&mut m, PROT_READ), Ok(0));
        let small = [none, 16 * 4096, RW, 0, 0, 0];
        assert_eq!(m.sys(SYS_MPROTECT, small), Ok(0), "a piece of it is fine");
        for (at, len) in [(whole, ram), (none, 64 * TIB)] {
            assert_eq!(m.sys(SYS_MUNMAP, [at, len, 0, 0, 0, 0]), Ok(0));
        }
        m.shut_down();
    }
}

//! The PVH boot information (`hvm_start_info`, Xen's `arch-x86/hvm/start_info.h`).
//!
//! Layout (all little endian):
//! ```text
//!  0 u32 magic (0x336ec578)   4 u32 version   8 u32 flags   12 u32 nr_modules
//! 16 u64 modlist_paddr       24 u64 cmdline_paddr          32 u64 rsdp_paddr
//! 40 u64 memmap_paddr        48 u32 memmap_entries         52 u32 reserved
//! ```
//! Memory-map entries (version >= 1) are 24 bytes: addr u64, size u64, type u32,
//! reserved u32. The cmdline is a NUL-terminated string. Module entries (QEMU's
//! `-initrd` is module 0) are 32 bytes: paddr u64, size u64, cmdline_paddr u64,
//! reserved u64.
//!
//! Everything is copied into [`BootInfo`] at once, through the physical window (the
//! boot identity map), so nothing points into firmware memory afterwards.

use crate::memory::memmap::{MapEntry, Reserved, MAX_MAP_ENTRIES};
use crate::memory::{phys, PhysAddr};

const MAGIC: u32 = 0x336e_c578;
const START_INFO_SIZE: u64 = 56;
const MEMMAP_ENTRY_SIZE: u64 = 24;
/// Longest command line kept.
pub const CMDLINE_MAX: usize = 256;

/// Why the boot information was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PvhError {
    /// The structure is not readable at the given address.
    Unreadable(PhysAddr),
    /// Wrong magic number.
    BadMagic(u32),
    /// Version 0 has no memory map.
    NoMemoryMap,
}

/// What the kernel keeps from the PVH start info.
pub struct BootInfo {
    map: [MapEntry; MAX_MAP_ENTRIES],
    map_len: usize,
    cmdline: [u8; CMDLINE_MAX],
    cmdline_len: usize,
    /// Physical address of the ACPI RSDP (0 if none).
    pub rsdp: PhysAddr,
    /// The first boot module (the initrd): physical address and size, if any.
    pub initrd: Option<(PhysAddr, u64)>,
    /// Where the firmware put the structures read here and the initrd (to keep out
    /// of the allocator).
    pub structures: [Reserved; 4],
}

impl BootInfo {
    /// The firmware memory map, as given.
    pub fn memory_map(&self) -> &[MapEntry] {
        &self.map[..self.map_len]
    }

    /// The kernel command line (`-append`), or "" if none or not UTF-8.
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }
}

fn read_u32(p: PhysAddr) -> Result<u32, PvhError> {
    let mut b = [0u8; 4];
    phys::read_bytes(p, &mut b).map_err(|_| PvhError::Unreadable(p))?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(p: PhysAddr) -> Result<u64, PvhError> {
    let mut b = [0u8; 8];
    phys::read_bytes(p, &mut b).map_err(|_| PvhError::Unreadable(p))?;
    Ok(u64::from_le_bytes(b))
}

fn range(start: u64, len: u64) -> Reserved {
    Reserved {
        start: PhysAddr(start),
        end: PhysAddr(start.saturating_add(len)),
    }
}

/// Reads and copies the start info at physical address `paddr`.
pub fn parse(paddr: u64) -> Result<BootInfo, PvhError> {
    let base = PhysAddr(paddr);
    let magic = read_u32(base)?;
    if magic != MAGIC {
        return Err(PvhError::BadMagic(magic));
    }
    if read_u32(base + 4)? < 1 {
        return Err(PvhError::NoMemoryMap);
    }
    let cmdline_paddr = read_u64(base + 24)?;
    let memmap_paddr = read_u64(base + 40)?;
    let entries = read_u32(base + 48)? as u64;
    let initrd = read_initrd(base)?;
    let (initrd_start, initrd_len) = initrd.map_or((0, 0), |(p, n)| (p.0, n));
    let mut info = BootInfo {
        map: [MapEntry::default(); MAX_MAP_ENTRIES],
        map_len: 0,
        cmdline: [0; CMDLINE_MAX],
        cmdline_len: 0,
        rsdp: PhysAddr(read_u64(base + 32)?),
        initrd,
        structures: [
            range(paddr, START_INFO_SIZE),
            range(memmap_paddr, entries * MEMMAP_ENTRY_SIZE),
            range(cmdline_paddr, CMDLINE_MAX as u64),
            range(initrd_start, initrd_len),
        ],
    };
    read_memory_map(&mut info, PhysAddr(memmap_paddr), entries)?;
    if cmdline_paddr != 0 {
        read_cmdline(&mut info, PhysAddr(cmdline_paddr));
    }
    Ok(info)
}

/// Module 0 (the initrd), if the start info lists one with a non-zero size.
fn read_initrd(base: PhysAddr) -> Result<Option<(PhysAddr, u64)>, PvhError> {
    let count = read_u32(base + 12)?;
    let list = read_u64(base + 16)?;
    if count == 0 || list == 0 {
        return Ok(None);
    }
    let paddr = read_u64(PhysAddr(list))?;
    let size = read_u64(PhysAddr(list) + 8)?;
    Ok((size > 0).then_some((PhysAddr(paddr), size)))
}

fn read_memory_map(info: &mut BootInfo, at: PhysAddr, entries: u64) -> Result<(), PvhError> {
    let count = entries.min(MAX_MAP_ENTRIES as u64) as usize;
    for i in 0..count {
        let e = at + i as u64 * MEMMAP_ENTRY_SIZE;
        info.map[i] = MapEntry {
            start: read_u64(e)?,
            size: read_u64(e + 8)?,
            kind: read_u32(e + 16)?,
        };
    }
    info.map_len = count;
    Ok(())
}

fn read_cmdline(info: &mut BootInfo, at: PhysAddr) {
    let _ = phys::read_bytes(at, &mut info.cmdline);
    info.cmdline_len = info
        .cmdline
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(CMDLINE_MAX);
}

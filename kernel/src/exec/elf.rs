//! ELF64 loader: validates a static (`ET_EXEC`) or static-pie (`ET_DYN`, no
//! interpreter) executable and turns it into a [`LoadPlan`].
//!
//! ## What it owns
//! Nothing but the parsing. The plan says *what* to map; the caller (execve) maps it
//! into a fresh address space. No byte of the file is trusted: every offset, size and
//! address is bounds-checked with checked arithmetic, and a malformed file yields an
//! [`ElfError`], never a panic.
//!
//! ## The plan's invariants
//! * `segments` are the `PT_LOAD` entries with a non-zero size, sorted by address, with
//!   disjoint byte ranges, each inside `[min_addr, user_end)` after the load bias;
//! * each segment's file bytes lie inside the file (`file_range` is a valid index
//!   range) and `file_len <= mem_len`;
//! * `regions` are page-aligned, sorted, pairwise disjoint and cover every segment; a
//!   page shared by two segments gets the union of their permissions;
//! * `entry` lies inside an executable segment.
//!
//! ## How to load a plan
//! 1. For each [`Region`]: map `pages` to fresh zeroed frames (writable for now).
//! 2. For each [`Segment`]: copy `file[file_range]` to `vaddr`. The rest of the
//!    segment (`bss`) and of its pages is already zero.
//! 3. Set each region's final permissions from `perms`.
//! 4. Put the break at `brk_start`, build the stack with
//!    [`super::initial_stack`], jump to `entry`.

use alloc::vec::Vec;
use bitflags::bitflags;
use core::fmt;
use core::ops::Range;

use crate::memory::addr::{VirtAddr, PAGE_SIZE};

/// Size of the ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header (the value of `AT_PHENT`).
pub const PHDR_SIZE: usize = 56;
/// Largest program-header table accepted, in bytes (Linux's limit).
pub const MAX_PHDR_TABLE: usize = 65536;
/// Largest segment alignment accepted (1 GiB).
pub const MAX_ALIGN: u64 = 1 << 30;

/// `ET_EXEC`: an executable at fixed addresses.
pub const ET_EXEC: u16 = 2;
/// `ET_DYN`: a position-independent image (static-pie here).
pub const ET_DYN: u16 = 3;
/// `EM_X86_64`.
pub const EM_X86_64: u16 = 62;
/// `EM_AARCH64`.
pub const EM_AARCH64: u16 = 183;

/// Program header types the loader looks at.
pub const PT_LOAD: u32 = 1;
/// Dynamic section (static-pie relocates itself from it).
pub const PT_DYNAMIC: u32 = 2;
/// Program interpreter: a dynamically linked binary, refused.
pub const PT_INTERP: u32 = 3;
/// The program header table itself.
pub const PT_PHDR: u32 = 6;
/// Thread-local storage template.
pub const PT_TLS: u32 = 7;
/// Stack permissions.
pub const PT_GNU_STACK: u32 = 0x6474_e551;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

bitflags! {
    /// Access permissions of a segment or region.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Perms: u8 {
        /// Readable.
        const READ = 1;
        /// Writable.
        const WRITE = 2;
        /// Executable.
        const EXEC = 4;
    }
}

impl Perms {
    /// Permissions from an ELF `p_flags` word (`PF_R`, `PF_W`, `PF_X`).
    pub fn from_elf_flags(flags: u32) -> Perms {
        let mut p = Perms::empty();
        p.set(Perms::READ, flags & PF_R != 0);
        p.set(Perms::WRITE, flags & PF_W != 0);
        p.set(Perms::EXEC, flags & PF_X != 0);
        p
    }
}

/// The CPU a binary must be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// x86_64 (`EM_X86_64`).
    X86_64,
    /// AArch64 (`EM_AARCH64`).
    Aarch64,
}

impl Machine {
    /// The `e_machine` value of this CPU.
    pub const fn e_machine(self) -> u16 {
        match self {
            Machine::X86_64 => EM_X86_64,
            Machine::Aarch64 => EM_AARCH64,
        }
    }
}

/// Static executable or static-pie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: loaded at its link addresses, load bias 0.
    Static,
    /// `ET_DYN` without `PT_INTERP`: loaded at [`LoadOptions::pie_base`].
    StaticPie,
}

/// Why a file was refused. Every variant maps to `ENOEXEC` ([`ElfError::errno`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// The file ends before a structure that must be in it.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// The first four bytes are not `\x7fELF`.
    BadMagic,
    /// `EI_CLASS` is not `ELFCLASS64`.
    NotElf64(u8),
    /// `EI_DATA` is not little-endian.
    NotLittleEndian(u8),
    /// `EI_VERSION` or `e_version` is not 1.
    BadVersion(u32),
    /// `EI_OSABI` is neither System V nor GNU/Linux.
    UnsupportedAbi(u8),
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN`.
    NotExecutable(u16),
    /// `e_machine` is not the CPU we run on.
    WrongMachine {
        /// The machine asked for.
        expected: u16,
        /// The file's machine.
        found: u16,
    },
    /// `e_ehsize` is smaller than an ELF64 header.
    BadHeaderSize(u16),
    /// `e_phentsize` is not 56.
    BadPhentSize(u16),
    /// The program-header table is empty or larger than [`MAX_PHDR_TABLE`].
    BadPhnum(u16),
    /// The program-header table does not lie inside the file.
    PhdrsOutOfFile,
    /// The binary wants a dynamic loader (`PT_INTERP`): only static binaries run.
    HasInterpreter,
    /// No `PT_LOAD` segment has a non-zero size.
    NoLoadSegment,
    /// Program header `index` has `p_filesz > p_memsz`.
    FileSizeExceedsMemSize {
        /// Index in the program-header table.
        index: usize,
    },
    /// Program header `index` names file bytes beyond the end of the file.
    SegmentOutOfFile {
        /// Index in the program-header table.
        index: usize,
    },
    /// Program header `index` has an alignment that is not a power of two or is above
    /// [`MAX_ALIGN`].
    BadAlignment {
        /// Index in the program-header table.
        index: usize,
    },
    /// Program header `index` has `p_vaddr` and `p_offset` that differ modulo the page
    /// size.
    MisalignedSegment {
        /// Index in the program-header table.
        index: usize,
    },
    /// Program header `index` lies (after the load bias) outside user space or wraps.
    OutsideUserSpace {
        /// Index in the program-header table.
        index: usize,
    },
    /// Two loadable segments overlap (program-header indices).
    Overlap {
        /// The lower segment.
        first: usize,
        /// The segment that overlaps it.
        second: usize,
    },
    /// The entry point is not inside an executable segment.
    EntryNotExecutable {
        /// The entry point after the load bias.
        entry: u64,
    },
    /// More than one `PT_TLS`, or one with bad sizes or alignment.
    BadTls,
}

/// `ENOEXEC`, the errno execve returns for a file it cannot run.
pub const ENOEXEC: i32 = 8;

impl ElfError {
    /// The positive Linux errno execve reports for this error (always `ENOEXEC`).
    pub const fn errno(&self) -> i32 {
        ENOEXEC
    }
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad ELF file: {self:?}")
    }
}

/// Where and how to load: the CPU, and the address range a user image may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// The CPU the binary must be built for.
    pub machine: Machine,
    /// Where a static-pie image's lowest page goes (rounded up to its alignment). An
    /// image whose own lowest address is above this stays where it is.
    pub pie_base: u64,
    /// Lowest address a segment may use (Linux's `mmap_min_addr`).
    pub min_addr: u64,
    /// One past the highest address a segment may use (`TASK_SIZE`).
    pub user_end: u64,
}

impl LoadOptions {
    /// Linux's choices on x86_64 without randomisation: static-pie at
    /// `0x5555_5555_4000` (`ELF_ET_DYN_BASE`), nothing below 64 KiB, user space ends
    /// at `0x7fff_ffff_f000`.
    pub const fn x86_64() -> Self {
        LoadOptions {
            machine: Machine::X86_64,
            pie_base: 0x5555_5555_4000,
            min_addr: 0x1_0000,
            user_end: 0x7fff_ffff_f000,
        }
    }

    /// The same choices for AArch64 with 48-bit user addresses.
    pub const fn aarch64() -> Self {
        LoadOptions {
            machine: Machine::Aarch64,
            ..Self::x86_64()
        }
    }
}

/// The fields of the ELF header the loader uses, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfHeader {
    /// Static or static-pie.
    pub kind: ElfKind,
    /// `e_machine`.
    pub machine: u16,
    /// `e_entry` (before the load bias).
    pub entry: u64,
    /// `e_phoff`: file offset of the program-header table.
    pub phoff: u64,
    /// `e_phnum`: number of program headers.
    pub phnum: u16,
}

/// One program header, as read from the file (not yet validated beyond its bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags` (`PF_R` = 4, `PF_W` = 2, `PF_X` = 1).
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

/// A loadable segment after validation and load bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Index of its program header.
    pub index: usize,
    /// First byte of the segment in memory (`p_vaddr` + bias; not page-aligned).
    pub vaddr: VirtAddr,
    /// Bytes of memory (`p_memsz`).
    pub mem_len: u64,
    /// File bytes to copy to `vaddr` (`p_offset .. p_offset + p_filesz`).
    pub file_range: Range<usize>,
    /// Access permissions.
    pub perms: Perms,
}

impl Segment {
    /// One past the segment's last byte.
    pub fn end(&self) -> VirtAddr {
        // Validated: vaddr + mem_len <= user_end.
        VirtAddr::new_truncate(self.vaddr.as_u64() + self.mem_len)
    }

    /// The page-aligned range of pages the segment touches.
    pub fn pages(&self) -> Range<VirtAddr> {
        let end = page_up(self.end().as_u64());
        self.vaddr.align_down(PAGE_SIZE)..VirtAddr::new_truncate(end)
    }

    /// The zero-filled part (`.bss`): from the end of the file bytes to the end.
    pub fn bss(&self) -> Range<VirtAddr> {
        let file_len = (self.file_range.end - self.file_range.start) as u64;
        VirtAddr::new_truncate(self.vaddr.as_u64() + file_len)..self.end()
    }

    /// The file bytes to copy, or `None` if `file` is not the file the plan came from.
    pub fn file_bytes<'a>(&self, file: &'a [u8]) -> Option<&'a [u8]> {
        file.get(self.file_range.clone())
    }
}

/// A page-aligned range to map with one set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First page (aligned).
    pub start: VirtAddr,
    /// One past the last page (aligned).
    pub end: VirtAddr,
    /// Final permissions of these pages.
    pub perms: Perms,
}

/// The `PT_TLS` template (after the load bias). The kernel does not set up TLS for
/// static binaries (libc does, from `AT_PHDR`); this is for inspection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsTemplate {
    /// Address of the initialised part.
    pub vaddr: VirtAddr,
    /// Bytes of initialised data (`p_filesz`).
    pub file_len: u64,
    /// Total bytes (`p_memsz`).
    pub mem_len: u64,
    /// Alignment (`p_align`, a power of two, at least 1).
    pub align: u64,
}

/// Everything execve needs to build the new image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// Static or static-pie.
    pub kind: ElfKind,
    /// Added to every address in the file (0 for `ET_EXEC`).
    pub load_bias: u64,
    /// Where user code starts (`e_entry` + bias; `AT_ENTRY`).
    pub entry: VirtAddr,
    /// The loadable segments, sorted by address.
    pub segments: Vec<Segment>,
    /// The pages to map, sorted and disjoint.
    pub regions: Vec<Region>,
    /// Address of the program headers in the loaded image (`AT_PHDR`), if they lie
    /// inside a segment's file bytes (they do in binaries from normal linkers).
    pub phdr: Option<VirtAddr>,
    /// Number of program headers (`AT_PHNUM`).
    pub phnum: u16,
    /// Stack permissions from `PT_GNU_STACK`; `READ | WRITE | EXEC` if absent (the
    /// x86_64 default for old binaries).
    pub stack_perms: Perms,
    /// The `PT_TLS` template, if any.
    pub tls: Option<TlsTemplate>,
    /// First address after the image, page-aligned: where the program break starts.
    pub brk_start: VirtAddr,
}

/// Little-endian field reads that fail instead of panicking.
fn read_bytes<const N: usize>(file: &[u8], off: usize) -> Result<[u8; N], ElfError> {
    let truncated = ElfError::Truncated {
        needed: off as u64 + N as u64,
        len: file.len() as u64,
    };
    let end = off.checked_add(N).ok_or(truncated)?;
    let bytes = file.get(off..end).ok_or(truncated)?;
    bytes.try_into().map_err(|_| truncated)
}

fn u16_at(file: &[u8], off: usize) -> Result<u16, ElfError> {
    read_bytes(file, off).map(u16::from_le_bytes)
}

fn u32_at(file: &[u8], off: usize) -> Result<u32, ElfError> {
    read_bytes(file, off).map(u32::from_le_bytes)
}

fn u64_at(file: &[u8], off: usize) -> Result<u64, ElfError> {
    read_bytes(file, off).map(u64::from_le_bytes)
}

/// Checks `e_ident`: magic, 64-bit, little-endian, version 1, System V or GNU ABI.
fn check_ident(file: &[u8]) -> Result<(), ElfError> {
    let ident: [u8; 16] = read_bytes(file, 0)?;
    if ident[..4] != *b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    if ident[4] != 2 {
        return Err(ElfError::NotElf64(ident[4]));
    }
    if ident[5] != 1 {
        return Err(ElfError::NotLittleEndian(ident[5]));
    }
    if ident[6] != 1 {
        return Err(ElfError::BadVersion(ident[6].into()));
    }
    match ident[7] {
        0 | 3 => Ok(()),
        abi => Err(ElfError::UnsupportedAbi(abi)),
    }
}

/// Parses and validates the ELF header for `machine`.
pub fn parse_header(file: &[u8], machine: Machine) -> Result<ElfHeader, ElfError> {
    if file.len() < EHDR_SIZE {
        return Err(ElfError::Truncated {
            needed: EHDR_SIZE as u64,
            len: file.len() as u64,
        });
    }
    check_ident(file)?;
    let kind = match u16_at(file, 16)? {
        ET_EXEC => ElfKind::Static,
        ET_DYN => ElfKind::StaticPie,
        other => return Err(ElfError::NotExecutable(other)),
    };
    let found = u16_at(file, 18)?;
    if found != machine.e_machine() {
        let expected = machine.e_machine();
        return Err(ElfError::WrongMachine { expected, found });
    }
    let version = u32_at(file, 20)?;
    if version != 1 {
        return Err(ElfError::BadVersion(version));
    }
    check_header_sizes(file)?;
    Ok(ElfHeader {
        kind,
        machine: found,
        entry: u64_at(file, 24)?,
        phoff: u64_at(file, 32)?,
        phnum: u16_at(file, 56)?,
    })
}

/// Checks `e_ehsize`, `e_phentsize` and `e_phnum`.
fn check_header_sizes(file: &[u8]) -> Result<(), ElfError> {
    let ehsize = u16_at(file, 52)?;
    if usize::from(ehsize) < EHDR_SIZE {
        return Err(ElfError::BadHeaderSize(ehsize));
    }
    let phentsize = u16_at(file, 54)?;
    if usize::from(phentsize) != PHDR_SIZE {
        return Err(ElfError::BadPhentSize(phentsize));
    }
    let phnum = u16_at(file, 56)?;
    if phnum == 0 || usize::from(phnum) * PHDR_SIZE > MAX_PHDR_TABLE {
        return Err(ElfError::BadPhnum(phnum));
    }
    Ok(())
}

/// Reads the program-header table of a file whose header `hdr` came from
/// [`parse_header`].
pub fn program_headers(file: &[u8], hdr: &ElfHeader) -> Result<Vec<ProgramHeader>, ElfError> {
    let table_len = usize::from(hdr.phnum) * PHDR_SIZE;
    let start = usize::try_from(hdr.phoff).map_err(|_| ElfError::PhdrsOutOfFile)?;
    let end = start
        .checked_add(table_len)
        .ok_or(ElfError::PhdrsOutOfFile)?;
    if end > file.len() {
        return Err(ElfError::PhdrsOutOfFile);
    }
    (0..usize::from(hdr.phnum))
        .map(|i| read_program_header(file, start + i * PHDR_SIZE))
        .collect()
}

fn read_program_header(file: &[u8], off: usize) -> Result<ProgramHeader, ElfError> {
    Ok(ProgramHeader {
        p_type: u32_at(file, off)?,
        flags: u32_at(file, off + 4)?,
        offset: u64_at(file, off + 8)?,
        vaddr: u64_at(file, off + 16)?,
        filesz: u64_at(file, off + 32)?,
        memsz: u64_at(file, off + 40)?,
        align: u64_at(file, off + 48)?,
    })
}

/// Rounds up to a page boundary; callers pass values below 2^63.
fn page_up(v: u64) -> u64 {
    (v + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Checks a `PT_LOAD` header against the file, before any bias is applied.
fn check_load_header(ph: &ProgramHeader, index: usize, file_len: usize) -> Result<(), ElfError> {
    if ph.filesz > ph.memsz {
        return Err(ElfError::FileSizeExceedsMemSize { index });
    }
    let file_end = ph.offset.checked_add(ph.filesz);
    if file_end.is_none_or(|end| end > file_len as u64) {
        return Err(ElfError::SegmentOutOfFile { index });
    }
    if ph.align > 1 && (!ph.align.is_power_of_two() || ph.align > MAX_ALIGN) {
        return Err(ElfError::BadAlignment { index });
    }
    if ph.vaddr % PAGE_SIZE != ph.offset % PAGE_SIZE {
        return Err(ElfError::MisalignedSegment { index });
    }
    if ph.vaddr.checked_add(ph.memsz).is_none() {
        return Err(ElfError::OutsideUserSpace { index });
    }
    Ok(())
}

/// The load bias: 0 for `ET_EXEC`; for static-pie, what moves the lowest page
/// (aligned to the largest `p_align`) to `pie_base` (rounded up the same way).
fn load_bias(kind: ElfKind, loads: &[(usize, ProgramHeader)], opts: &LoadOptions) -> u64 {
    if kind == ElfKind::Static {
        return 0;
    }
    let align = loads
        .iter()
        .map(|(_, ph)| ph.align)
        .fold(PAGE_SIZE, u64::max);
    let lowest = loads.iter().map(|(_, ph)| ph.vaddr).min().unwrap_or(0) & !(align - 1);
    let base = opts
        .pie_base
        .checked_add(align - 1)
        .map_or(0, |b| b & !(align - 1));
    base.saturating_sub(lowest)
}

/// Applies the bias and checks the result lies in user space.
fn place_segment(
    ph: &ProgramHeader,
    index: usize,
    bias: u64,
    opts: &LoadOptions,
) -> Result<Segment, ElfError> {
    let outside = ElfError::OutsideUserSpace { index };
    let start = ph.vaddr.checked_add(bias).ok_or(outside)?;
    let end = start.checked_add(ph.memsz).ok_or(outside)?;
    if start < opts.min_addr || end > opts.user_end {
        return Err(outside);
    }
    let vaddr = VirtAddr::try_new(start).map_err(|_| outside)?;
    // Validated against the file length in `check_load_header`.
    let file_start = ph.offset as usize;
    Ok(Segment {
        index,
        vaddr,
        mem_len: ph.memsz,
        file_range: file_start..file_start + ph.filesz as usize,
        perms: Perms::from_elf_flags(ph.flags),
    })
}

/// Sorts segments by address and refuses overlapping byte ranges.
fn sort_and_check_overlap(segments: &mut [Segment]) -> Result<(), ElfError> {
    segments.sort_by_key(|s| s.vaddr);
    for pair in segments.windows(2) {
        if pair[0].end() > pair[1].vaddr {
            let (first, second) = (pair[0].index, pair[1].index);
            return Err(ElfError::Overlap { first, second });
        }
    }
    Ok(())
}

/// Appends the pages of one segment (sorted, disjoint from earlier segments in
/// bytes) to `regions`, giving a page shared with the previous region both sets of
/// permissions.
fn add_region(regions: &mut Vec<Region>, pages: Range<VirtAddr>, perms: Perms) {
    let mut start = pages.start;
    if let Some(last) = regions.last_mut() {
        if last.end > start {
            // At most one page is shared, since the byte ranges are disjoint.
            let shared = Region {
                start,
                end: last.end.min(pages.end),
                perms: last.perms | perms,
            };
            last.end = start;
            if last.start == last.end {
                regions.pop();
            }
            start = shared.end;
            push_region(regions, shared);
        }
    }
    if start < pages.end {
        push_region(
            regions,
            Region {
                start,
                end: pages.end,
                perms,
            },
        );
    }
}

/// Pushes a region, merging it into the previous one when they touch with equal
/// permissions.
fn push_region(regions: &mut Vec<Region>, region: Region) {
    if let Some(last) = regions.last_mut() {
        if last.end == region.start && last.perms == region.perms {
            last.end = region.end;
            return;
        }
    }
    regions.push(region);
}

fn build_regions(segments: &[Segment]) -> Vec<Region> {
    let mut regions = Vec::new();
    for seg in segments {
        add_region(&mut regions, seg.pages(), seg.perms);
    }
    regions
}

/// `e_entry` + bias, which must fall inside an executable segment.
fn entry_point(hdr: &ElfHeader, bias: u64, segments: &[Segment]) -> Result<VirtAddr, ElfError> {
    let entry = hdr.entry.wrapping_add(bias);
    let bad = ElfError::EntryNotExecutable { entry };
    let seg = segments
        .iter()
        .find(|s| s.vaddr.as_u64() <= entry && entry < s.end().as_u64())
        .ok_or(bad)?;
    if !seg.perms.contains(Perms::EXEC) {
        return Err(bad);
    }
    VirtAddr::try_new(entry).map_err(|_| bad)
}

/// Where the program headers are in memory: inside the segment whose file bytes
/// contain them (what Linux reports as `AT_PHDR`).
fn phdr_address(hdr: &ElfHeader, segments: &[Segment]) -> Option<VirtAddr> {
    let start = usize::try_from(hdr.phoff).ok()?;
    let end = start.checked_add(usize::from(hdr.phnum) * PHDR_SIZE)?;
    let seg = segments
        .iter()
        .find(|s| s.file_range.start <= start && end <= s.file_range.end)?;
    seg.vaddr.checked_add((start - seg.file_range.start) as u64)
}

/// The `PT_TLS` template, validated; at most one is allowed.
fn tls_template(phdrs: &[ProgramHeader], bias: u64) -> Result<Option<TlsTemplate>, ElfError> {
    let mut tls = phdrs.iter().filter(|ph| ph.p_type == PT_TLS);
    let Some(ph) = tls.next() else {
        return Ok(None);
    };
    if tls.next().is_some() || ph.filesz > ph.memsz {
        return Err(ElfError::BadTls);
    }
    if ph.align > 1 && (!ph.align.is_power_of_two() || ph.align > MAX_ALIGN) {
        return Err(ElfError::BadTls);
    }
    let start = ph.vaddr.checked_add(bias).ok_or(ElfError::BadTls)?;
    start.checked_add(ph.memsz).ok_or(ElfError::BadTls)?;
    Ok(Some(TlsTemplate {
        vaddr: VirtAddr::try_new(start).map_err(|_| ElfError::BadTls)?,
        file_len: ph.filesz,
        mem_len: ph.memsz,
        align: ph.align.max(1),
    }))
}

fn stack_perms(phdrs: &[ProgramHeader]) -> Perms {
    phdrs
        .iter()
        .find(|ph| ph.p_type == PT_GNU_STACK)
        .map_or(Perms::all(), |ph| Perms::from_elf_flags(ph.flags))
}

/// The validated, non-empty `PT_LOAD` headers with their indices.
fn load_headers(
    phdrs: &[ProgramHeader],
    file_len: usize,
) -> Result<Vec<(usize, ProgramHeader)>, ElfError> {
    let mut loads = Vec::new();
    for (index, ph) in phdrs.iter().enumerate() {
        if ph.p_type == PT_LOAD && ph.memsz > 0 {
            check_load_header(ph, index, file_len)?;
            loads.push((index, *ph));
        }
    }
    if loads.is_empty() {
        return Err(ElfError::NoLoadSegment);
    }
    Ok(loads)
}

/// Validates `file` and computes how to load it.
pub fn load_plan(file: &[u8], opts: &LoadOptions) -> Result<LoadPlan, ElfError> {
    let hdr = parse_header(file, opts.machine)?;
    let phdrs = program_headers(file, &hdr)?;
    if phdrs.iter().any(|ph| ph.p_type == PT_INTERP) {
        return Err(ElfError::HasInterpreter);
    }
    let loads = load_headers(&phdrs, file.len())?;
    let bias = load_bias(hdr.kind, &loads, opts);
    let mut segments = loads
        .iter()
        .map(|(i, ph)| place_segment(ph, *i, bias, opts))
        .collect::<Result<Vec<_>, _>>()?;
    sort_and_check_overlap(&mut segments)?;
    let regions = build_regions(&segments);
    let entry = entry_point(&hdr, bias, &segments)?;
    // `regions` is not empty: there is at least one non-empty segment.
    let brk_start = regions.last().map_or(VirtAddr::new_truncate(0), |r| r.end);
    Ok(LoadPlan {
        kind: hdr.kind,
        load_bias: bias,
        entry,
        phdr: phdr_address(&hdr, &segments),
        phnum: hdr.phnum,
        stack_perms: stack_perms(&phdrs),
        tls: tls_template(&phdrs, bias)?,
        brk_start,
        segments,
        regions,
    })
}

#[cfg(test)]
pub(crate) mod tests;

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

const R: u32 = PF_R;
const RW: u32 = PF_R | PF_W;
const RX: u32 = PF_R | PF_X;

fn ph(p_type: u32, flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> ProgramHeader {
    ProgramHeader {
        p_type,
        flags,
        offset,
        vaddr,
        filesz,
        memsz,
        align: PAGE_SIZE,
    }
}

/// An ELF64 little-endian file: header, program headers at offset 64, padded with
/// 0xcc to `len` bytes.
fn build_elf(e_type: u16, entry: u64, phdrs: &[ProgramHeader], len: usize) -> Vec<u8> {
    let mut f = vec![0xccu8; len.max(64 + phdrs.len() * PHDR_SIZE)];
    f[..16].copy_from_slice(b"\x7fELF\x02\x01\x01\x00\0\0\0\0\0\0\0\0");
    f[16..18].copy_from_slice(&e_type.to_le_bytes());
    f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&entry.to_le_bytes());
    f[32..40].copy_from_slice(&64u64.to_le_bytes());
    f[40..48].copy_from_slice(&0u64.to_le_bytes());
    f[48..52].copy_from_slice(&0u32.to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    f[58..64].fill(0);
    for (i, p) in phdrs.iter().enumerate() {
        write_phdr(&mut f[64 + i * PHDR_SIZE..], p);
    }
    f
}

fn write_phdr(out: &mut [u8], p: &ProgramHeader) {
    out[0..4].copy_from_slice(&p.p_type.to_le_bytes());
    out[4..8].copy_from_slice(&p.flags.to_le_bytes());
    out[8..16].copy_from_slice(&p.offset.to_le_bytes());
    out[16..24].copy_from_slice(&p.vaddr.to_le_bytes());
    out[24..32].copy_from_slice(&p.vaddr.to_le_bytes());
    out[32..40].copy_from_slice(&p.filesz.to_le_bytes());
    out[40..48].copy_from_slice(&p.memsz.to_le_bytes());
    out[48..56].copy_from_slice(&p.align.to_le_bytes());
}

/// The shape of a classic static binary: headers+rodata (R), text (RX), data+bss (RW).
fn static_phdrs() -> Vec<ProgramHeader> {
    let mut tls = ph(PT_TLS, R, 0x2000, 0x403000, 0x8, 0x20);
    tls.align = 8;
    vec![
        ph(PT_LOAD, R, 0, 0x400000, 0x1000, 0x1000),
        ph(PT_LOAD, RX, 0x1000, 0x401000, 0x100, 0x100),
        ph(PT_LOAD, RW, 0x2000, 0x403000, 0x10, 0x2000),
        ph(PT_GNU_STACK, RW, 0, 0, 0, 0),
        tls,
    ]
}

pub(crate) fn static_elf() -> Vec<u8> {
    build_elf(ET_EXEC, 0x401010, &static_phdrs(), 0x2010)
}

fn plan(file: &[u8]) -> Result<LoadPlan, ElfError> {
    load_plan(file, &LoadOptions::x86_64())
}

fn va(a: u64) -> VirtAddr {
    VirtAddr::new(a)
}

/// Checks every invariant the module docs promise.
fn assert_sane(plan: &LoadPlan, file: &[u8], opts: &LoadOptions) {
    for s in &plan.segments {
        assert!(s.vaddr.as_u64() >= opts.min_addr && s.end().as_u64() <= opts.user_end);
        assert!(s.file_bytes(file).is_some());
        assert!((s.file_range.len() as u64) <= s.mem_len);
        let covered = plan
            .regions
            .iter()
            .filter(|r| r.start < s.pages().end && s.pages().start < r.end);
        let mut next = s.pages().start;
        for r in covered {
            assert!(r.start <= next && r.perms.contains(s.perms));
            next = r.end;
        }
        assert!(next >= s.pages().end, "segment {s:?} not covered");
    }
    for w in plan.segments.windows(2) {
        assert!(w[0].end() <= w[1].vaddr);
    }
    for r in &plan.regions {
        assert!(r.start.is_aligned(PAGE_SIZE) && r.end.is_aligned(PAGE_SIZE));
        assert!(r.start < r.end);
    }
    for w in plan.regions.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    let e = plan.entry;
    let seg = plan.segments.iter().find(|s| s.vaddr <= e && e < s.end());
    assert!(seg.is_some_and(|s| s.perms.contains(Perms::EXEC)));
    assert!(plan.brk_start >= plan.segments.last().unwrap().end());
}

#[test]
fn static_binary_plan() {
    let f = static_elf();
    let p = plan(&f).unwrap();
    assert_sane(&p, &f, &LoadOptions::x86_64());
    assert_eq!(p.kind, ElfKind::Static);
    assert_eq!(p.load_bias, 0);
    assert_eq!(p.entry, va(0x401010));
    assert_eq!(p.phdr, Some(va(0x400040)));
    assert_eq!(p.phnum, 5);
    assert_eq!(p.segments.len(), 3);
    assert_eq!(p.segments[2].bss(), va(0x403010)..va(0x405000));
    assert_eq!(p.segments[2].file_range, 0x2000..0x2010);
    assert_eq!(p.brk_start, va(0x405000));
    assert_eq!(p.stack_perms, Perms::READ | Perms::WRITE);
    let tls = p.tls.unwrap();
    assert_eq!(
        (tls.vaddr, tls.file_len, tls.mem_len, tls.align),
        (va(0x403000), 8, 0x20, 8)
    );
    let regions: Vec<_> = p
        .regions
        .iter()
        .map(|r| (r.start.as_u64(), r.end.as_u64()))
        .collect();
    assert_eq!(
        regions,
        [
            (0x400000, 0x401000),
            (0x401000, 0x402000),
            (0x403000, 0x405000)
        ]
    );
}

#[test]
fn static_pie_gets_a_bias() {
    let phdrs = [
        ph(PT_LOAD, R, 0, 0, 0x1000, 0x1000),
        ph(PT_LOAD, RX, 0x1000, 0x1000, 0x100, 0x100),
        ph(PT_DYNAMIC, RW, 0x1000, 0x1000, 0x10, 0x10),
    ];
    let f = build_elf(ET_DYN, 0x1004, &phdrs, 0x1100);
    let p = plan(&f).unwrap();
    assert_sane(&p, &f, &LoadOptions::x86_64());
    assert_eq!(p.kind, ElfKind::StaticPie);
    assert_eq!(p.load_bias, 0x5555_5555_4000);
    assert_eq!(p.entry, va(0x5555_5555_5004));
    assert_eq!(p.phdr, Some(va(0x5555_5555_4040)));
    assert_eq!(p.stack_perms, Perms::all(), "no PT_GNU_STACK: executable");
}

#[test]
fn static_pie_bias_respects_large_alignment() {
    let mut phdrs = [
        ph(PT_LOAD, R, 0, 0, 0x1000, 0x1000),
        ph(PT_LOAD, RX, 0x1000, 0x201000, 0x100, 0x100),
    ];
    phdrs[1].align = 0x20_0000;
    let f = build_elf(ET_DYN, 0x201000, &phdrs, 0x1100);
    let p = plan(&f).unwrap();
    assert_eq!(p.load_bias % 0x20_0000, 0);
    assert!(p.load_bias >= 0x5555_5555_4000);
}

#[test]
fn pages_shared_by_two_segments_get_both_permissions() {
    let phdrs = [
        ph(PT_LOAD, RX, 0, 0x400000, 0x1800, 0x1800),
        ph(PT_LOAD, RW, 0x1800, 0x401800, 0x100, 0x2000),
    ];
    let f = build_elf(ET_EXEC, 0x400100, &phdrs, 0x1900);
    let p = plan(&f).unwrap();
    assert_sane(&p, &f, &LoadOptions::x86_64());
    let got: Vec<_> = p
        .regions
        .iter()
        .map(|r| (r.start.as_u64(), r.perms))
        .collect();
    assert_eq!(
        got,
        [
            (0x400000, Perms::READ | Perms::EXEC),
            (0x401000, Perms::all()),
            (0x402000, Perms::READ | Perms::WRITE),
        ]
    );
    assert_eq!(p.regions[2].end, va(0x404000));
}

#[test]
fn three_segments_in_one_page() {
    let phdrs = [
        ph(PT_LOAD, RX, 0, 0x400000, 0x100, 0x100),
        ph(PT_LOAD, R, 0x200, 0x400200, 0x10, 0x10),
        ph(PT_LOAD, RW, 0x300, 0x400300, 0x10, 0x10),
    ];
    let f = build_elf(ET_EXEC, 0x400000, &phdrs, 0x400);
    let p = plan(&f).unwrap();
    assert_sane(&p, &f, &LoadOptions::x86_64());
    assert_eq!(p.regions.len(), 1);
    assert_eq!(p.regions[0].perms, Perms::all());
}

#[test]
fn empty_segments_are_ignored_and_unsorted_ones_sorted() {
    let phdrs = [
        ph(PT_LOAD, RW, 0x2000, 0x403000, 0x10, 0x10),
        ph(PT_LOAD, RW, 0, 0x900000, 0, 0),
        ph(PT_LOAD, RX, 0x1000, 0x401000, 0x100, 0x100),
    ];
    let f = build_elf(ET_EXEC, 0x401000, &phdrs, 0x2010);
    let p = plan(&f).unwrap();
    assert_eq!(
        p.segments.iter().map(|s| s.index).collect::<Vec<_>>(),
        [2, 0]
    );
    assert_eq!(p.phdr, None, "headers are in no segment");
}

/// Applies `edit` to a valid static file and expects `want`.
fn refused(edit: impl FnOnce(&mut Vec<u8>), want: ElfError) {
    let mut f = static_elf();
    edit(&mut f);
    assert_eq!(plan(&f), Err(want));
}

fn set_u16(f: &mut [u8], off: usize, v: u16) {
    f[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn set_u64(f: &mut [u8], off: usize, v: u64) {
    f[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn bad_headers_are_refused() {
    refused(|f| f[0] = 0, ElfError::BadMagic);
    refused(|f| f[4] = 1, ElfError::NotElf64(1));
    refused(|f| f[5] = 2, ElfError::NotLittleEndian(2));
    refused(|f| f[6] = 0, ElfError::BadVersion(0));
    refused(|f| f[7] = 9, ElfError::UnsupportedAbi(9));
    refused(|f| set_u16(f, 16, 1), ElfError::NotExecutable(1));
    refused(|f| set_u16(f, 16, 4), ElfError::NotExecutable(4));
    let wrong = ElfError::WrongMachine {
        expected: EM_X86_64,
        found: EM_AARCH64,
    };
    refused(|f| set_u16(f, 18, EM_AARCH64), wrong);
    refused(|f| f[20] = 2, ElfError::BadVersion(2));
    refused(|f| set_u16(f, 52, 32), ElfError::BadHeaderSize(32));
    refused(|f| set_u16(f, 54, 32), ElfError::BadPhentSize(32));
    refused(|f| set_u16(f, 56, 0), ElfError::BadPhnum(0));
    refused(|f| set_u16(f, 56, 0xffff), ElfError::BadPhnum(0xffff));
    refused(|f| set_u64(f, 32, 0x2000), ElfError::PhdrsOutOfFile);
    refused(|f| set_u64(f, 32, u64::MAX - 8), ElfError::PhdrsOutOfFile);
}

#[test]
fn wrong_machine_for_aarch64() {
    let e = load_plan(&static_elf(), &LoadOptions::aarch64());
    assert!(matches!(e, Err(ElfError::WrongMachine { .. })));
}

/// Offset of field `field_off` of program header `i` in [`build_elf`]'s layout.
fn ph_off(i: usize, field_off: usize) -> usize {
    64 + i * PHDR_SIZE + field_off
}

#[test]
fn bad_segments_are_refused() {
    refused(
        |f| set_u64(f, ph_off(1, 32), 0x200),
        ElfError::FileSizeExceedsMemSize { index: 1 },
    );
    refused(
        |f| set_u64(f, ph_off(2, 8), 0x3000),
        ElfError::SegmentOutOfFile { index: 2 },
    );
    refused(
        |f| set_u64(f, ph_off(2, 8), u64::MAX),
        ElfError::SegmentOutOfFile { index: 2 },
    );
    refused(
        |f| set_u64(f, ph_off(1, 48), 0x1001),
        ElfError::BadAlignment { index: 1 },
    );
    refused(
        |f| set_u64(f, ph_off(1, 48), 1 << 40),
        ElfError::BadAlignment { index: 1 },
    );
    refused(
        |f| set_u64(f, ph_off(1, 16), 0x401008),
        ElfError::MisalignedSegment { index: 1 },
    );
    refused(
        |f| set_u64(f, ph_off(0, 16), 0),
        ElfError::OutsideUserSpace { index: 0 },
    );
    let high = 0x7fff_ffff_f000;
    refused(
        |f| set_u64(f, ph_off(2, 16), high),
        ElfError::OutsideUserSpace { index: 2 },
    );
    let wrap = !0xfffu64;
    refused(
        |f| set_u64(f, ph_off(2, 16), wrap),
        ElfError::OutsideUserSpace { index: 2 },
    );
    let overlap = ElfError::Overlap {
        first: 1,
        second: 2,
    };
    refused(|f| set_u64(f, ph_off(2, 16), 0x401000), overlap);
    refused(|f| set_u64(f, ph_off(1, 40), 0x2001), overlap);
}

#[test]
fn bad_entry_and_interp_are_refused() {
    refused(
        |f| set_u64(f, 24, 0x400010),
        ElfError::EntryNotExecutable { entry: 0x400010 },
    );
    refused(
        |f| set_u64(f, 24, 0x500000),
        ElfError::EntryNotExecutable { entry: 0x500000 },
    );
    let set_type = |i: usize, t: u32| {
        move |f: &mut Vec<u8>| f[ph_off(i, 0)..ph_off(i, 4)].copy_from_slice(&t.to_le_bytes())
    };
    refused(set_type(3, PT_INTERP), ElfError::HasInterpreter);
    refused(|f| set_u64(f, ph_off(4, 32), 0x100), ElfError::BadTls);
    refused(set_type(3, PT_TLS), ElfError::BadTls);
    let no_load = |f: &mut Vec<u8>| {
        for i in 0..3 {
            f[ph_off(i, 0)] = 0;
        }
    };
    refused(no_load, ElfError::NoLoadSegment);
}

#[test]
fn every_truncation_is_refused_without_panic() {
    let f = static_elf();
    for len in 0..f.len() {
        assert!(plan(&f[..len]).is_err(), "prefix of {len} bytes accepted");
    }
}

#[test]
fn errno_is_enoexec() {
    assert_eq!(ElfError::BadMagic.errno(), 8);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = plan(&bytes);
    }

    #[test]
    fn random_headers_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut f = static_elf()[..64].to_vec();
        f.extend_from_slice(&tail);
        if let Ok(p) = plan(&f) {
            assert_sane(&p, &f, &LoadOptions::x86_64());
        }
    }

    #[test]
    fn mutations_never_panic(edits in proptest::collection::vec((0usize..0x200, any::<u8>()), 1..8)) {
        let mut f = static_elf();
        for (at, byte) in edits {
            f[at] = byte;
        }
        if let Ok(p) = plan(&f) {
            assert_sane(&p, &f, &LoadOptions::x86_64());
        }
    }
}

/// The user programs built by `xtask::user::build_all` (if they were built).
pub(in crate::exec) fn built_programs() -> Vec<PathBuf> {
    let dir = std::env::var_os("USER_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/user"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut bins: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none())
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.starts_with(b"\x7fELF")))
        .collect();
    bins.sort();
    bins
}

/// Loads a plan into a simulated memory (page -> bytes) the way execve will: map
/// every region zeroed, copy every segment's file bytes.
fn simulate_load(plan: &LoadPlan, file: &[u8]) -> BTreeMap<u64, Vec<u8>> {
    let mut mem = BTreeMap::new();
    for r in &plan.regions {
        for page in (r.start.as_u64()..r.end.as_u64()).step_by(PAGE_SIZE as usize) {
            assert!(mem.insert(page, vec![0u8; PAGE_SIZE as usize]).is_none());
        }
    }
    for s in &plan.segments {
        for (i, b) in s.file_bytes(file).unwrap().iter().enumerate() {
            write_byte(&mut mem, s.vaddr.as_u64() + i as u64, *b);
        }
    }
    mem
}

fn write_byte(mem: &mut BTreeMap<u64, Vec<u8>>, addr: u64, b: u8) {
    let page = mem
        .get_mut(&(addr & !(PAGE_SIZE - 1)))
        .expect("byte outside the regions");
    page[(addr % PAGE_SIZE) as usize] = b;
}

fn read_byte(mem: &BTreeMap<u64, Vec<u8>>, addr: u64) -> u8 {
    mem[&(addr & !(PAGE_SIZE - 1))][(addr % PAGE_SIZE) as usize]
}

/// The loaded image holds the program headers at AT_PHDR, and zeroes in the bss.
fn check_loaded(plan: &LoadPlan, file: &[u8]) {
    let mem = simulate_load(plan, file);
    let phdr = plan.phdr.unwrap().as_u64();
    let phoff = u64::from_le_bytes(file[32..40].try_into().unwrap()) as usize;
    for i in 0..usize::from(plan.phnum) * PHDR_SIZE {
        assert_eq!(read_byte(&mem, phdr + i as u64), file[phoff + i]);
    }
    for s in &plan.segments {
        let bss = s.bss();
        assert!((bss.start.as_u64()..bss.end.as_u64()).all(|a| read_byte(&mem, a) == 0));
    }
}

#[test]
fn synthetic_image_loads() {
    let f = static_elf();
    let p = plan(&f).unwrap();
    check_loaded(&p, &f);
}

#[test]
fn built_user_programs_load() {
    let bins = built_programs();
    if bins.is_empty() {
        println!("note: no user programs in target/user; build them to test real binaries");
        return;
    }
    let opts = LoadOptions::x86_64();
    for bin in bins {
        let file = std::fs::read(&bin).unwrap();
        let p = load_plan(&file, &opts).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert_sane(&p, &file, &opts);
        assert!(p.phdr.is_some(), "{}: AT_PHDR unknown", bin.display());
        check_loaded(&p, &file);
        assert!(!p.stack_perms.contains(Perms::EXEC), "{}", bin.display());
        assert!(p.segments.iter().any(|s| s.perms.contains(Perms::WRITE)));
        println!(
            "{}: {:?} entry {:?}, {} segments",
            bin.display(),
            p.kind,
            p.entry,
            p.segments.len()
        );
    }
}

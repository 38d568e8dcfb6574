use super::*;
use elf::tests::{built_programs, static_elf};
use initial_stack::{parse, AT_ENTRY, AT_PHDR, AT_PHNUM};

const TOP: u64 = 0x7fff_ffff_f000;

fn args<'a>(argv: &'a [&'a [u8]], envp: &'a [&'a [u8]]) -> ExecArgs<'a> {
    ExecArgs {
        argv,
        envp,
        execfn: b"/init",
        platform: b"x86_64",
        random: [7; 16],
        hwcap: 0,
        stack_top: VirtAddr::new(TOP),
        stack_limit: 128 * 1024,
    }
}

#[test]
fn prepare_ties_plan_and_stack_together() {
    let file = static_elf();
    let argv: [&[u8]; 2] = [b"/init", b"-v"];
    let img = prepare(&file, &LoadOptions::x86_64(), &args(&argv, &[])).unwrap();
    assert_eq!(img.stack_bytes.len(), img.stack.used);
    let buf = &img.stack_bytes;
    let p = parse(buf, VirtAddr::new(TOP), img.stack.rsp).unwrap();
    assert_eq!(p.argv, [b"/init".to_vec(), b"-v".to_vec()]);
    assert_eq!(p.aux(AT_ENTRY), Some(img.plan.entry.as_u64()));
    assert_eq!(p.aux(AT_PHDR), img.plan.phdr.map(VirtAddr::as_u64));
    assert_eq!(p.aux(AT_PHNUM), Some(u64::from(img.plan.phnum)));
}

#[test]
fn prepare_reports_errno() {
    let opts = LoadOptions::x86_64();
    let e = prepare(b"#!/bin/sh\n", &opts, &args(&[], &[])).unwrap_err();
    assert_eq!(e.errno(), 8, "ENOEXEC");
    let mut small = args(&[], &[]);
    small.stack_limit = 64;
    let e = prepare(&static_elf(), &opts, &small).unwrap_err();
    assert_eq!(e.errno(), 7, "E2BIG");
}

#[test]
fn built_programs_prepare() {
    for bin in built_programs() {
        let file = std::fs::read(&bin).unwrap();
        let argv: [&[u8]; 1] = [b"prog"];
        let img = prepare(&file, &LoadOptions::x86_64(), &args(&argv, &[b"A=1"]));
        assert!(img.is_ok(), "{}: {img:?}", bin.display());
    }
}

#[test]
fn map_image_puts_segments_stack_and_entry_in_place() {
    use crate::memory::address_space::test_frames::TestFrames;
    use crate::memory::frame_allocator::FrameSource;
    use crate::process::ProcessTable;
    let mut frames = TestFrames::new(8);
    let mut table = ProcessTable::new(frames.clone());
    let pid = table
        .create_process("exec".into(), frames.alloc_frame().unwrap())
        .unwrap();
    let file = static_elf();
    let argv: [&[u8]; 2] = [b"/init", b"-v"];
    let img = prepare(&file, &LoadOptions::x86_64(), &args(&argv, &[])).unwrap();
    let mut space = table.space_mut(pid).unwrap();
    let loaded = load::map_image(&mut space, &file, &img, load::USER_STACK_SIZE).unwrap();
    assert_eq!(loaded.entry, img.plan.entry.as_u64());
    assert_eq!(loaded.brk_start, img.plan.brk_start.as_u64());
    let mut argc = [0u8; 8];
    space.copy_from_user(loaded.sp, &mut argc).unwrap();
    assert_eq!(u64::from_le_bytes(argc), 2, "argc on top of the new stack");
    for s in &img.plan.segments {
        let want = s.file_bytes(&file).unwrap();
        let mut got = vec![0u8; want.len()];
        space.copy_from_user(s.vaddr.as_u64(), &mut got).unwrap();
        assert_eq!(got, want, "segment at {:#x}", s.vaddr.as_u64());
    }
    drop(space);
    let free_before_exit = frames.free();
    table.exit_process(pid, 0).unwrap();
    assert!(
        frames.free() > free_before_exit,
        "the mapped image is freed with the process"
    );
}

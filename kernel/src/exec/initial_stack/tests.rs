use super::*;
use proptest::prelude::*;

const TOP: u64 = 0x7fff_ffff_f000;
const RANDOM: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

fn aux() -> AuxInfo {
    AuxInfo {
        hwcap: 0x178b_fbff,
        phdr: 0x400040,
        phnum: 7,
        entry: 0x401000,
        uid: 1000,
        euid: 1000,
        gid: 100,
        egid: 100,
        ..AuxInfo::default()
    }
}

fn contents<'a>(argv: &'a [&'a [u8]], envp: &'a [&'a [u8]]) -> StackContents<'a> {
    StackContents {
        argv,
        envp,
        execfn: b"/bin/hello",
        platform: b"x86_64",
        random: RANDOM,
        aux: aux(),
    }
}

fn top() -> VirtAddr {
    VirtAddr::new(TOP)
}

/// Builds into a 64 KiB buffer and parses it back.
fn round_trip(c: &StackContents<'_>) -> (InitialStack, ParsedStack, Vec<u8>) {
    let mut buf = vec![0xaau8; 65536];
    let st = build(c, top(), &mut buf).unwrap();
    let parsed = parse(&buf, top(), st.rsp).unwrap();
    (st, parsed, buf)
}

/// The byte at virtual address `addr` of a 64 KiB buffer ending at TOP.
fn byte_at(buf: &[u8], addr: u64) -> u8 {
    buf[(addr - (TOP - buf.len() as u64)) as usize]
}

fn cstr_at(buf: &[u8], addr: u64) -> Vec<u8> {
    (addr..)
        .map(|a| byte_at(buf, a))
        .take_while(|&b| b != 0)
        .collect()
}

#[test]
fn argv_envp_auxv_round_trip() {
    let argv: [&[u8]; 3] = [b"hello", b"one two", b""];
    let envp: [&[u8]; 2] = [b"HOME=/", b"TERM=dumb"];
    let (st, p, buf) = round_trip(&contents(&argv, &envp));
    assert_eq!(p.argv, argv.map(<[u8]>::to_vec));
    assert_eq!(p.envp, envp.map(<[u8]>::to_vec));
    assert_eq!(st.rsp.as_u64() % 16, 0);
    assert_eq!(st.used as u64, TOP - st.rsp.as_u64());
    assert_eq!(p.aux(AT_PHDR), Some(0x400040));
    assert_eq!(p.aux(AT_PHENT), Some(56));
    assert_eq!(p.aux(AT_PHNUM), Some(7));
    assert_eq!(p.aux(AT_PAGESZ), Some(4096));
    assert_eq!(p.aux(AT_CLKTCK), Some(100));
    assert_eq!(p.aux(AT_ENTRY), Some(0x401000));
    assert_eq!(p.aux(AT_BASE), Some(0));
    assert_eq!(p.aux(AT_UID), Some(1000));
    assert_eq!(p.aux(AT_EGID), Some(100));
    assert_eq!(p.aux(AT_SECURE), Some(0));
    assert_eq!(p.aux(AT_HWCAP), Some(0x178b_fbff));
    let random = p.aux(AT_RANDOM).unwrap();
    let bytes: Vec<u8> = (random..random + 16).map(|a| byte_at(&buf, a)).collect();
    assert_eq!(bytes, RANDOM);
    assert_eq!(cstr_at(&buf, p.aux(AT_EXECFN).unwrap()), b"/bin/hello");
    assert_eq!(cstr_at(&buf, p.aux(AT_PLATFORM).unwrap()), b"x86_64");
}

#[test]
fn auxv_in_linux_order() {
    let (_, p, _) = round_trip(&contents(&[b"a"], &[]));
    let keys: Vec<u64> = p.auxv.iter().map(|(k, _)| *k).collect();
    let linux = [
        AT_HWCAP,
        AT_PAGESZ,
        AT_CLKTCK,
        AT_PHDR,
        AT_PHENT,
        AT_PHNUM,
        AT_BASE,
        AT_FLAGS,
        AT_ENTRY,
        AT_UID,
        AT_EUID,
        AT_GID,
        AT_EGID,
        AT_SECURE,
        AT_RANDOM,
        AT_HWCAP2,
        AT_EXECFN,
        AT_PLATFORM,
    ];
    assert_eq!(keys, linux);
}

#[test]
fn vdso_comes_first_and_platform_is_optional() {
    let mut c = contents(&[b"a"], &[]);
    c.aux.sysinfo_ehdr = Some(0x7fff_f7ff_e000);
    c.platform = b"";
    let (_, p, _) = round_trip(&c);
    assert_eq!(p.auxv[0], (AT_SYSINFO_EHDR, 0x7fff_f7ff_e000));
    assert_eq!(p.aux(AT_PLATFORM), None);
}

#[test]
fn strings_sit_at_the_top_in_linux_order() {
    let argv: [&[u8]; 2] = [b"prog", b"x"];
    let envp: [&[u8]; 1] = [b"A=b"];
    let (st, _, buf) = round_trip(&contents(&argv, &envp));
    // prog\0 x\0 A=b\0 /bin/hello\0 then 8 zero bytes up to TOP.
    let top_bytes: Vec<u8> = (st.arg_start.as_u64()..TOP)
        .map(|a| byte_at(&buf, a))
        .collect();
    assert_eq!(top_bytes, b"prog\0x\0A=b\0/bin/hello\0\0\0\0\0\0\0\0\0");
    assert_eq!(st.env_start.as_u64(), st.arg_start.as_u64() + 7);
    assert_eq!(st.env_end.as_u64(), TOP - 8 - 11);
    assert_eq!(st.argv.as_u64(), st.rsp.as_u64() + 8);
    assert_eq!(st.envp.as_u64(), st.rsp.as_u64() + 8 * 4);
}

#[test]
fn layout_matches_linux_arithmetic() {
    // Linux: p = top - 8 - strings; p &= ~15; p -= len("x86_64\0"); p -= 16;
    // rsp = (p - 8 * (words)) & ~15 where words = argc+1 + envc+1 + 1 + 2 * auxv pairs.
    let argv: [&[u8]; 1] = [b"hello"];
    let (st, p, _) = round_trip(&contents(&argv, &[]));
    let strings = 6 + 11;
    let mut sp = (TOP - 8 - strings) & !15;
    sp -= 7;
    assert_eq!(p.aux(AT_PLATFORM), Some(sp));
    sp -= 16;
    assert_eq!(p.aux(AT_RANDOM), Some(sp));
    let words = 2 + 1 + 1 + 2 * (p.auxv.len() as u64 + 1);
    assert_eq!(st.rsp.as_u64(), (sp - 8 * words) & !15);
}

#[test]
fn only_the_used_tail_is_written() {
    let mut buf = vec![0xaau8; 8192];
    let mut other = vec![0x55u8; 8192];
    let st = build(&contents(&[b"a"], &[]), top(), &mut buf).unwrap();
    build(&contents(&[b"a"], &[]), top(), &mut other).unwrap();
    let untouched = buf.len() - st.used;
    assert!(buf[..untouched].iter().all(|&b| b == 0xaa));
    assert_eq!(
        buf[untouched..],
        other[untouched..],
        "every used byte is written"
    );
}

#[test]
fn bad_input_is_refused() {
    let mut buf = vec![0u8; 4096];
    let nul: [&[u8]; 1] = [b"a\0b"];
    assert_eq!(
        build(&contents(&nul, &[]), top(), &mut buf),
        Err(StackError::NulInString)
    );
    assert_eq!(
        build(&contents(&[], &nul), top(), &mut buf),
        Err(StackError::NulInString)
    );
    let mut c = contents(&[], &[]);
    c.execfn = b"\0";
    assert_eq!(build(&c, top(), &mut buf), Err(StackError::NulInString));
    let unaligned = VirtAddr::new(TOP - 8);
    assert_eq!(
        build(&contents(&[], &[]), unaligned, &mut buf),
        Err(StackError::BadTop)
    );
    assert_eq!(
        build(&contents(&[], &[]), VirtAddr::new(0x100), &mut buf),
        Err(StackError::BadTop)
    );
    let long = vec![b'x'; MAX_ARG_STRLEN];
    let argv: [&[u8]; 1] = [&long];
    let mut big = vec![0u8; 4 * MAX_ARG_STRLEN];
    let e = build(&contents(&argv, &[]), top(), &mut big);
    assert_eq!(e, Err(StackError::StringTooLong));
    assert_eq!(StackError::TooBig.errno(), E2BIG);
}

#[test]
fn every_too_small_buffer_is_refused() {
    let argv: [&[u8]; 2] = [b"prog", b"arg"];
    let envp: [&[u8]; 1] = [b"K=v"];
    let c = contents(&argv, &envp);
    let mut buf = vec![0u8; 4096];
    let need = build(&c, top(), &mut buf).unwrap().used;
    for len in 0..need {
        let mut small = vec![0u8; len];
        assert_eq!(
            build(&c, top(), &mut small),
            Err(StackError::TooBig),
            "len {len}"
        );
    }
    let mut exact = vec![0u8; need];
    assert!(build(&c, top(), &mut exact).is_ok());
}

#[test]
fn parse_refuses_garbage() {
    let buf = vec![0xffu8; 256];
    assert!(parse(&buf, top(), VirtAddr::new(TOP - 256)).is_err());
    assert!(parse(&buf, top(), VirtAddr::new(TOP - 4)).is_err());
    assert!(parse(&buf, top(), VirtAddr::new(0xffff_ffff_ffff_fff8)).is_err());
}

proptest! {
    #[test]
    fn any_arguments_round_trip_aligned(
        argv in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 0..8),
        envp in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 0..8),
        execfn in proptest::collection::vec(1u8..=255, 0..30),
    ) {
        let a: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let e: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
        let mut c = contents(&a, &e);
        c.execfn = &execfn;
        let (st, p, buf) = round_trip(&c);
        prop_assert_eq!(st.rsp.as_u64() % 16, 0);
        prop_assert_eq!(&p.argv, &argv);
        prop_assert_eq!(&p.envp, &envp);
        prop_assert_eq!(cstr_at(&buf, p.aux(AT_EXECFN).unwrap()), execfn);
    }
}

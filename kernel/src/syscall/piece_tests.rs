//! Host tests of long calls cut into pieces (see [`super::blocking`]): each piece
//! is bounded, answers `ERESTARTSYS` without blocking, and the re-issued call goes
//! on from where the last piece ended; a signal between pieces ends the call with
//! what it has done.

use super::blocking::{end_call, PIECE_BYTES, PIECE_PAGES};
use super::mmap::{MAP_ANONYMOUS, MAP_FIXED, MAP_POPULATE, MAP_PRIVATE, PROT_READ, PROT_WRITE};
use super::tests::Machine;
use super::*;

const P: usize = 4096;
const BUF: usize = 0x3000_0000;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;

/// Issues the call once, as the task layer does before it lets interrupts in.
fn one_piece(m: &mut Machine, num: usize, a: [usize; 6]) -> Result<usize, Errno> {
    let tid = m.init;
    dispatch(&mut m.sys_of(tid), num, a)
}

fn resident(m: &Machine) -> usize {
    m.table.space(m.pid_of(m.init)).unwrap().resident_pages()
}

#[test]
fn a_long_getrandom_is_written_in_pieces_and_completes() {
    let mut m = Machine::new(8);
    let len = 4 * PIECE_BYTES + 100;
    let args = [BUF, len, RW, ANON | MAP_FIXED, usize::MAX, 0];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(BUF));
    let a = [BUF, len, 0, 0, 0, 0];
    assert_eq!(one_piece(&mut m, SYS_GETRANDOM, a), Err(ERESTARTSYS));
    assert!(m.sys_of(m.init).take_yielded(), "a piece, not a wait");
    assert_eq!(m.sys_of(m.init).progress(), PIECE_BYTES);
    assert_eq!(resident(&m), PIECE_BYTES / P, "no more than one piece");
    for _ in 0..3 {
        assert_eq!(one_piece(&mut m, SYS_GETRANDOM, a), Err(ERESTARTSYS));
    }
    assert_eq!(
        one_piece(&mut m, SYS_GETRANDOM, a),
        Ok(len),
        "the last piece"
    );
    end_call(&mut m.sys_of(m.init));
    assert_eq!(
        m.sys(SYS_GETRANDOM, a),
        Ok(len),
        "the machine re-issues pieces"
    );
    m.shut_down();
}

#[test]
fn map_populate_of_a_large_mapping_goes_on_where_it_stopped() {
    let mut m = Machine::new(8);
    let pages = 3 * PIECE_PAGES as usize + 5;
    let a = [
        BUF,
        pages * P,
        RW,
        ANON | MAP_FIXED | MAP_POPULATE,
        usize::MAX,
        0,
    ];
    assert_eq!(one_piece(&mut m, SYS_MMAP, a), Err(ERESTARTSYS));
    assert_eq!(resident(&m), PIECE_PAGES as usize);
    // What a signal between pieces would make the call answer: the mapping.
    assert_eq!(m.sys_of(m.init).progress(), BUF);
    let regions = m.table.space(m.pid_of(m.init)).unwrap().regions().count();
    for _ in 0..2 {
        assert_eq!(one_piece(&mut m, SYS_MMAP, a), Err(ERESTARTSYS));
    }
    assert_eq!(one_piece(&mut m, SYS_MMAP, a), Ok(BUF));
    end_call(&mut m.sys_of(m.init));
    assert_eq!(resident(&m), pages, "every page, once");
    let space = m.table.space(m.pid_of(m.init)).unwrap();
    assert_eq!(
        space.regions().count(),
        regions,
        "mapped once, not per piece"
    );
    drop(space);
    m.shut_down();
}

/// Opens `path` with `flags` in init; returns the fd.
fn open(m: &mut Machine, path: &str, flags: usize) -> usize {
    let name = BUF - P;
    let args = [name, P, RW, ANON | MAP_FIXED, usize::MAX, 0];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(name));
    let mut bytes = path.as_bytes().to_vec();
    bytes.push(0);
    let pid = m.pid_of(m.init);
    let mut space = m.table.space_mut(pid).unwrap();
    space.copy_to_user(name as u64, &bytes).unwrap();
    drop(space);
    m.sys(SYS_OPENAT, [fd::AT_FDCWD as usize, name, flags, 0, 0, 0])
        .unwrap()
}

/// Issues `num` piece by piece until it answers; returns the answer and the pieces.
fn pieces(m: &mut Machine, num: usize, a: [usize; 6]) -> (Result<usize, Errno>, usize) {
    let mut n = 1;
    let mut r = one_piece(m, num, a);
    while r == Err(ERESTARTSYS) && m.sys_of(m.init).take_yielded() {
        n += 1;
        r = one_piece(m, num, a);
    }
    end_call(&mut m.sys_of(m.init));
    (r, n)
}

#[test]
fn a_long_read_of_dev_zero_fills_every_byte_in_pieces() {
    let mut m = Machine::new(8);
    let len = 5 * PIECE_BYTES + 100;
    let args = [BUF, len, RW, ANON | MAP_FIXED, usize::MAX, 0];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(BUF));
    let fd = open(&mut m, "/dev/zero", 0);
    assert_eq!(
        one_piece(&mut m, SYS_READ, [fd, BUF, len, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    assert_eq!(
        resident(&m),
        PIECE_BYTES / P + 1,
        "one piece (and the name)"
    );
    end_call(&mut m.sys_of(m.init));
    let (r, n) = pieces(&mut m, SYS_READ, [fd, BUF, len, 0, 0, 0]);
    assert_eq!(
        (r, n),
        (Ok(len), 6),
        "read to the end, as Linux reads /dev/zero"
    );
    let (r, n) = pieces(&mut m, SYS_PREAD64, [fd, BUF, len, 7, 0, 0]);
    assert_eq!((r, n), (Ok(len), 6));
    m.shut_down();
}

#[test]
fn a_long_write_to_a_file_goes_on_where_it_stopped_and_dev_null_reads_nothing() {
    let mut m = Machine::new(8);
    let len = 3 * PIECE_BYTES + 10;
    let args = [BUF, len, RW, ANON | MAP_FIXED, usize::MAX, 0];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(BUF));
    assert_eq!(m.sys(SYS_GETRANDOM, [BUF, len, 0, 0, 0, 0]), Ok(len));
    let fd = open(&mut m, "/tmp-piece", 0o102); // O_RDWR | O_CREAT
    let (r, n) = pieces(&mut m, SYS_WRITE, [fd, BUF, len, 0, 0, 0]);
    assert_eq!((r, n), (Ok(len), 4));
    let (r, n) = pieces(&mut m, SYS_PWRITE64, [fd, BUF, len, len, 0, 0]);
    assert_eq!((r, n), (Ok(len), 4));
    let pid = m.pid_of(m.init);
    let mut want = alloc::vec![0u8; len];
    m.table
        .space_mut(pid)
        .unwrap()
        .copy_from_user(BUF as u64, &mut want)
        .unwrap();
    // Read it back over a fresh buffer: both copies, in order.
    assert_eq!(m.sys(SYS_MUNMAP, [BUF, len, 0, 0, 0, 0]), Ok(0));
    let args = [BUF, 2 * len, RW, ANON | MAP_FIXED, usize::MAX, 0];
    assert_eq!(m.sys(SYS_MMAP, args), Ok(BUF));
    let (r, _) = pieces(&mut m, SYS_PREAD64, [fd, BUF, 2 * len, 0, 0, 0]);
    assert_eq!(r, Ok(2 * len));
    let mut got = alloc::vec![0u8; 2 * len];
    m.table
        .space_mut(pid)
        .unwrap()
        .copy_from_user(BUF as u64, &mut got)
        .unwrap();
    assert!(got[..len] == want[..] && got[len..] == want[..]);
    // /dev/null takes any count of user space, mapped or not, in one go.
    let null = open(&mut m, "/dev/null", 1);
    assert_eq!(
        one_piece(&mut m, SYS_WRITE, [null, 0, 1 << 30, 0, 0, 0]),
        Ok(1 << 30)
    );
    let kernel = 0xffff_8000_0000_0000;
    assert_eq!(m.sys(SYS_WRITE, [null, kernel, 16, 0, 0, 0]), Err(EFAULT));
    m.shut_down();
}

#[test]
fn munmap_of_a_large_resident_range_runs_every_piece() {
    let mut m = Machine::new(8);
    let pages = 9 * PIECE_PAGES as usize + 3;
    let a = [
        BUF,
        pages * P,
        RW,
        ANON | MAP_FIXED | MAP_POPULATE,
        usize::MAX,
        0,
    ];
    assert_eq!(m.sys(SYS_MMAP, a), Ok(BUF));
    let free = m.frames.free();
    assert_eq!(
        one_piece(&mut m, SYS_MUNMAP, [BUF, pages * P, 0, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    assert_eq!(
        resident(&m),
        pages - 4 * PIECE_PAGES as usize,
        "one piece given back"
    );
    assert!(m.frames.free() > free);
    end_call(&mut m.sys_of(m.init));
    let (r, n) = pieces(&mut m, SYS_MUNMAP, [BUF, pages * P, 0, 0, 0, 0]);
    assert_eq!((r, n), (Ok(0), 2));
    assert_eq!(resident(&m), 0);
    let space = m.table.space(m.pid_of(m.init)).unwrap();
    assert!(space.region_at(BUF as u64).is_none(), "unmapped at the end");
    drop(space);
    m.shut_down();
}

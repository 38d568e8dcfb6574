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
    m.shut_down();
}

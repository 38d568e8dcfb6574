//! Host tests of mmap on files of the tmpfs tree, through `dispatch` as programs
//! reach it: MAP_SHARED pages are the file's (stores reach read(2), writes reach the
//! mapping), MAP_PRIVATE pages are copied on the first write, fork, unlink, truncate
//! and exec of mapped files, SIGBUS beyond the end, msync, Linux's errnos, and that
//! every frame comes back.

use super::mmap::*;
use super::tests::Machine;
use super::*;
use crate::memory::address_space::{Access, Fault, Prot, Sharing};

const BUF: usize = 0x1000_0000;
const P: usize = 4096;
const RW: usize = PROT_READ | PROT_WRITE;
const O_RDONLY: usize = 0;
const O_WRONLY: usize = 1;
const O_RDWR: usize = 2;
const O_PATH: usize = 0o10_000_000;

/// A machine with four scratch pages at [`BUF`] and the file `/tmp/f` holding
/// `size` bytes: `'a'` in the first page, `'b'` in the second, and so on.
fn machine(size: usize) -> Machine {
    let mut m = Machine::new(16);
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    assert_eq!(
        m.sys(SYS_MMAP, [BUF, 4 * P, RW, flags, usize::MAX, 0]),
        Ok(BUF)
    );
    let bytes: Vec<u8> = (0..size).map(|i| b'a' + (i / P) as u8).collect();
    m.put_file("/tmp/f", &bytes, 0o644);
    m
}

/// open(path, flags), the path put at BUF.
fn open(m: &mut Machine, path: &str, flags: usize) -> Result<usize, Errno> {
    let mut bytes = path.as_bytes().to_vec();
    bytes.push(0);
    m.poke_bytes(BUF, &bytes);
    m.sys(SYS_OPEN, [BUF, flags, 0o644, 0, 0, 0])
}

fn unlink(m: &mut Machine, path: &str) {
    let mut bytes = path.as_bytes().to_vec();
    bytes.push(0);
    m.poke_bytes(BUF, &bytes);
    assert_eq!(m.sys(SYS_UNLINK, [BUF, 0, 0, 0, 0, 0]), Ok(0));
}

fn close(m: &mut Machine, fd: usize) {
    assert_eq!(m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]), Ok(0));
}

/// mmap(NULL, len, prot, flags, fd, offset).
fn map(
    m: &mut Machine,
    len: usize,
    prot: usize,
    flags: usize,
    fd: usize,
    off: usize,
) -> Result<usize, Errno> {
    m.sys(SYS_MMAP, [0, len, prot, flags, fd, off])
}

fn munmap(m: &mut Machine, addr: usize, len: usize) {
    assert_eq!(m.sys(SYS_MUNMAP, [addr, len, 0, 0, 0, 0]), Ok(0));
}

/// pread(fd, n bytes at off), through BUF + 8 KiB.
fn pread(m: &mut Machine, fd: usize, off: usize, n: usize) -> Vec<u8> {
    let got = m.sys(SYS_PREAD64, [fd, BUF + 2 * P, n, off, 0, 0]).unwrap();
    m.peek_bytes(BUF + 2 * P, got)
}

/// pwrite(fd, bytes at off), through BUF + 8 KiB.
fn pwrite(m: &mut Machine, fd: usize, off: usize, bytes: &[u8]) {
    m.poke_bytes(BUF + 2 * P, bytes);
    let n = m.sys(SYS_PWRITE64, [fd, BUF + 2 * P, bytes.len(), off, 0, 0]);
    assert_eq!(n, Ok(bytes.len()));
}

/// The byte at `addr` of `tid`'s space, as a user load would see it.
fn load(m: &mut Machine, tid: Tid, addr: usize) -> Result<u8, Fault> {
    let pid = m.pid_of(tid);
    let mut space = m.table.space_mut(pid).unwrap();
    let mut b = [0u8];
    space.handle_page_fault(addr as u64, Access::Read)?;
    space
        .copy_from_user(addr as u64, &mut b)
        .map_err(|_| Fault::Unmapped(addr as u64))?;
    Ok(b[0])
}

/// Stores `v` at `addr` of `tid`'s space, as a user store would.
fn store(m: &mut Machine, tid: Tid, addr: usize, v: u8) -> Result<(), Fault> {
    let pid = m.pid_of(tid);
    let mut space = m.table.space_mut(pid).unwrap();
    space.handle_page_fault(addr as u64, Access::Write)?;
    space
        .copy_to_user(addr as u64, &[v])
        .map_err(|_| Fault::Unmapped(addr as u64))
}

/// [`load`] in the first process.
fn ld(m: &mut Machine, addr: usize) -> Result<u8, Fault> {
    load(m, m.init, addr)
}

/// [`store`] in the first process.
fn st(m: &mut Machine, addr: usize, v: u8) -> Result<(), Fault> {
    store(m, m.init, addr, v)
}

fn invariants(m: &Machine, tid: Tid) {
    let pid = m.pid_of(tid);
    m.table.space(pid).unwrap().check_invariants().unwrap();
}

/// The size of the file at `path`.
fn file_size(m: &Machine, path: &str) -> u64 {
    let tree = m.tree();
    let node = tree.resolve(
        tree.root(),
        path.as_bytes(),
        crate::fs::vfs::FollowLast::Follow,
    );
    tree.stat(node.unwrap()).unwrap().size
}

/// Free data blocks of the tmpfs at `/tmp`.
fn blocks_free(m: &Machine) -> u64 {
    let tree = m.tree();
    tree.statfs(tree.root()).unwrap().blocks_free
}

#[test]
fn shared_stores_reach_read_and_writes_reach_the_mapping() {
    let mut m = machine(2 * P);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let s = map(&mut m, 2 * P, RW, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(ld(&mut m, s), Ok(b'a'));
    assert_eq!(ld(&mut m, s + P), Ok(b'b'));
    st(&mut m, s + 100, b'S').unwrap();
    assert_eq!(pread(&mut m, fd, 100, 1), b"S", "no msync needed");
    pwrite(&mut m, fd, P + 5, b"W");
    assert_eq!(ld(&mut m, s + P + 5), Ok(b'W'));
    let info = m
        .table
        .space(m.pid_of(m.init))
        .unwrap()
        .region_at(s as u64)
        .unwrap();
    assert_eq!(info.sharing, Sharing::Shared);
    let file = info.file.expect("a file region");
    assert_eq!((file.name(), file.offset), (&b"/tmp/f"[..], 0));
    drop(file); // it holds the file open
    invariants(&m, m.init);
    munmap(&mut m, s, 2 * P);
    close(&mut m, fd);
    m.shut_down();
}

#[test]
fn private_writes_stay_private_and_untouched_pages_see_file_writes() {
    let mut m = machine(2 * P);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let p = map(&mut m, 2 * P, RW, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(
        ld(&mut m, p + P),
        Ok(b'b'),
        "read fault maps the file's page"
    );
    st(&mut m, p, b'P').unwrap();
    assert_eq!(pread(&mut m, fd, 0, 1), b"a", "the file is untouched");
    pwrite(&mut m, fd, 1, b"X");
    pwrite(&mut m, fd, P + 1, b"Y");
    assert_eq!(ld(&mut m, p + 1), Ok(b'a'), "the copy keeps its bytes");
    assert_eq!(
        ld(&mut m, p + P + 1),
        Ok(b'Y'),
        "an untouched page sees the file"
    );
    invariants(&m, m.init);
    close(&mut m, fd);
    assert_eq!(ld(&mut m, p), Ok(b'P'), "the mapping outlives the fd");
    munmap(&mut m, p, 2 * P);
    m.shut_down();
}

#[test]
fn a_private_mapping_of_a_read_only_fd_may_be_written_and_mprotected() {
    let mut m = machine(P);
    let fd = open(&mut m, "/tmp/f", O_RDONLY).unwrap();
    let p = map(&mut m, P, PROT_READ, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(m.sys(SYS_MPROTECT, [p, P, RW, 0, 0, 0]), Ok(0));
    st(&mut m, p, b'Q').unwrap();
    assert_eq!(pread(&mut m, fd, 0, 1), b"a");
    munmap(&mut m, p, P);
    close(&mut m, fd);
    m.shut_down();
}

#[test]
fn fork_shares_shared_pages_and_copies_private_ones_on_write() {
    let mut m = machine(P);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let s = map(&mut m, P, RW, MAP_SHARED, fd, 0).unwrap();
    let p = map(&mut m, P, RW, MAP_PRIVATE, fd, 0).unwrap();
    assert_eq!(ld(&mut m, s), Ok(b'a'));
    assert_eq!(ld(&mut m, p), Ok(b'a'));
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    store(&mut m, child, s + 1, b'C').unwrap();
    assert_eq!(
        ld(&mut m, s + 1),
        Ok(b'C'),
        "the parent sees the child's store"
    );
    assert_eq!(pread(&mut m, fd, 1, 1), b"C", "and so does the file");
    store(&mut m, child, p + 2, b'K').unwrap();
    assert_eq!(ld(&mut m, p + 2), Ok(b'a'), "private stays private");
    assert_eq!(pread(&mut m, fd, 2, 1), b"a");
    invariants(&m, m.init);
    invariants(&m, child);
    let cpid = m.pid_of(child);
    m.table.exit_process(cpid, 0).unwrap();
    m.table.reap_process(cpid).unwrap();
    assert_eq!(ld(&mut m, s + 1), Ok(b'C'));
    close(&mut m, fd);
    m.shut_down();
}

#[test]
fn unlink_while_mapped_keeps_the_data_until_munmap() {
    let mut m = machine(0);
    let before = blocks_free(&m);
    let fd = open(&mut m, "/tmp/g", O_RDWR | 0o100).unwrap();
    for page in 0..3 {
        pwrite(&mut m, fd, page * P, &[7u8; P]);
    }
    let s = map(&mut m, 3 * P, RW, MAP_SHARED, fd, 0).unwrap();
    st(&mut m, s + P, 9).unwrap();
    close(&mut m, fd);
    unlink(&mut m, "/tmp/g");
    assert_eq!(blocks_free(&m), before - 3, "the pages stay while mapped");
    assert_eq!(ld(&mut m, s + P), Ok(9));
    assert_eq!(ld(&mut m, s + 2 * P), Ok(7));
    munmap(&mut m, s, 3 * P);
    assert_eq!(blocks_free(&m), before, "munmap gives them back");
    m.shut_down();
}

#[test]
fn access_beyond_the_end_is_sigbus_and_the_tail_reads_zeros() {
    let mut m = machine(5000);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let s = map(&mut m, 3 * P, RW, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(ld(&mut m, s + 4999), Ok(b'b'));
    assert_eq!(ld(&mut m, s + 5000), Ok(0), "the tail past the end is zero");
    assert_eq!(ld(&mut m, s + 2 * P - 1), Ok(0));
    let beyond = (s + 2 * P) as u64;
    assert_eq!(ld(&mut m, s + 2 * P), Err(Fault::Bus(beyond)));
    assert_eq!(st(&mut m, s + 2 * P, 1), Err(Fault::Bus(beyond)));
    let p = map(&mut m, 3 * P, RW, MAP_PRIVATE, fd, 0).unwrap();
    let beyond = (p + 2 * P + 8) as u64;
    assert_eq!(st(&mut m, p + 2 * P + 8, 1), Err(Fault::Bus(beyond)));
    // A read(2) into the page beyond the end: EFAULT, as on Linux.
    assert_eq!(m.sys(SYS_READ, [fd, s + 2 * P, 10, 0, 0, 0]), Err(EFAULT));
    assert_eq!(
        file_size(&m, "/tmp/f"),
        5000,
        "the file does not grow through a mapping"
    );
    invariants(&m, m.init);
    close(&mut m, fd);
    m.shut_down();
}

#[test]
fn a_hole_is_allocated_in_the_file_when_touched() {
    let mut m = machine(0);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    assert_eq!(m.sys(SYS_FTRUNCATE, [fd, 2 * P, 0, 0, 0, 0]), Ok(0));
    let before = blocks_free(&m);
    let s = map(&mut m, 2 * P, RW, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(ld(&mut m, s), Ok(0));
    st(&mut m, s + P + 3, b'h').unwrap();
    assert_eq!(blocks_free(&m), before - 2);
    assert_eq!(pread(&mut m, fd, P + 3, 1), b"h");
    munmap(&mut m, s, 2 * P);
    assert_eq!(blocks_free(&m), before - 2, "the pages are the file's now");
    close(&mut m, fd);
    m.shut_down();
}

#[test]
fn truncate_of_a_mapped_file_frees_nothing_still_mapped() {
    let mut m = machine(3 * P);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let before = blocks_free(&m);
    let s = map(&mut m, 3 * P, RW, MAP_SHARED, fd, 0).unwrap();
    assert_eq!(ld(&mut m, s + 2 * P), Ok(b'c'));
    assert_eq!(m.sys(SYS_FTRUNCATE, [fd, P, 0, 0, 0, 0]), Ok(0));
    // Page 1 was not resident: beyond the new end it faults. Page 2 was: it
    // keeps its old frame (pinned) until the mapping lets go.
    let beyond = (s + P) as u64;
    assert_eq!(ld(&mut m, s + P), Err(Fault::Bus(beyond)));
    assert_eq!(ld(&mut m, s + 2 * P), Ok(b'c'));
    assert_eq!(blocks_free(&m), before + 1, "the unmapped page went back");
    // The file grows again: a fresh page, not the orphan.
    pwrite(&mut m, fd, 2 * P, b"n");
    assert_eq!(pread(&mut m, fd, 2 * P, 1), b"n");
    munmap(&mut m, s, 3 * P);
    assert_eq!(
        blocks_free(&m),
        before + 1,
        "the orphan went back at munmap"
    );
    close(&mut m, fd);
    m.shut_down();
}

#[test]
fn exec_and_exit_give_every_pin_back() {
    let mut m = machine(2 * P);
    let before = blocks_free(&m);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let s = map(&mut m, 2 * P, RW, MAP_SHARED, fd, 0).unwrap();
    let p = map(&mut m, 2 * P, RW, MAP_PRIVATE, fd, 0).unwrap();
    st(&mut m, s, b'1').unwrap();
    st(&mut m, p, b'2').unwrap();
    assert_eq!(ld(&mut m, p + P), Ok(b'b'));
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let cpid = m.pid_of(child);
    m.table.replace_space_fresh(cpid).unwrap();
    assert_eq!(m.call(child, SYS_CLOSE, [fd, 0, 0, 0, 0, 0]), Ok(0));
    close(&mut m, fd);
    let pid = m.pid_of(m.init);
    m.table.replace_space_fresh(pid).unwrap();
    assert_eq!(blocks_free(&m), before, "no pin is left");
    let tree = m.tree();
    tree.unlink(tree.root(), b"/tmp/f").unwrap();
    drop(tree);
    assert_eq!(
        blocks_free(&m),
        before + 2,
        "unlink frees the pages at once"
    );
    m.shut_down();
}

#[test]
fn mmap_errnos_are_linuxs() {
    let mut m = machine(P);
    let ro = open(&mut m, "/tmp/f", O_RDONLY).unwrap();
    let wo = open(&mut m, "/tmp/f", O_WRONLY).unwrap();
    let rw = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let dir = open(&mut m, "/tmp", O_RDONLY).unwrap();
    let path = open(&mut m, "/tmp/f", O_PATH).unwrap();
    assert_eq!(map(&mut m, P, RW, MAP_SHARED, ro, 0), Err(EACCES));
    assert_eq!(map(&mut m, P, PROT_READ, MAP_SHARED, wo, 0), Err(EACCES));
    assert_eq!(map(&mut m, P, PROT_READ, MAP_PRIVATE, wo, 0), Err(EACCES));
    assert_eq!(map(&mut m, P, RW, MAP_SHARED, wo, 0), Err(EACCES));
    assert_eq!(map(&mut m, P, PROT_READ, MAP_PRIVATE, dir, 0), Err(ENODEV));
    assert_eq!(map(&mut m, P, PROT_READ, MAP_PRIVATE, ro, 100), Err(EINVAL));
    assert_eq!(
        map(&mut m, P, PROT_READ, MAP_PRIVATE, ro, 1 << 63),
        Err(EOVERFLOW)
    );
    let huge = (i64::MAX as usize) & !(P - 1);
    assert_eq!(
        map(&mut m, 2 * P, PROT_READ, MAP_PRIVATE, ro, huge),
        Err(EOVERFLOW)
    );
    assert_eq!(map(&mut m, P, PROT_READ, MAP_PRIVATE, 99, 0), Err(EBADF));
    assert_eq!(map(&mut m, P, PROT_READ, MAP_PRIVATE, path, 0), Err(EBADF));
    assert_eq!(map(&mut m, P, PROT_READ, MAP_TYPE, ro, 0), Err(EINVAL));
    m.poke_bytes(BUF + 3 * P, &[0; 8]);
    assert_eq!(m.sys(SYS_PIPE2, [BUF + 3 * P, 0, 0, 0, 0, 0]), Ok(0));
    let fds = m.peek_bytes(BUF + 3 * P, 8);
    let (pr, pw) = (fds[0] as usize, fds[4] as usize);
    assert_eq!(map(&mut m, P, PROT_READ, MAP_SHARED, pr, 0), Err(ENODEV));
    assert_eq!(map(&mut m, P, PROT_READ, MAP_SHARED, pw, 0), Err(EACCES));
    // Read-only shared: mprotect may not add write; a read-write fd may.
    let s = map(&mut m, P, PROT_READ, MAP_SHARED, ro, 0).unwrap();
    assert_eq!(m.sys(SYS_MPROTECT, [s, P, RW, 0, 0, 0]), Err(EACCES));
    assert_eq!(m.sys(SYS_MPROTECT, [s, P, 0, 0, 0, 0]), Ok(0));
    let t = map(&mut m, P, PROT_READ, MAP_SHARED, rw, 0).unwrap();
    assert_eq!(m.sys(SYS_MPROTECT, [t, P, RW, 0, 0, 0]), Ok(0));
    st(&mut m, t, b'z').unwrap();
    assert_eq!(pread(&mut m, ro, 0, 1), b"z");
    // /dev/zero maps anonymous memory.
    let zero = open(&mut m, "/dev/zero", O_RDWR).unwrap();
    let z = map(&mut m, P, RW, MAP_PRIVATE, zero, 0).unwrap();
    st(&mut m, z, 5).unwrap();
    assert_eq!(ld(&mut m, z), Ok(5));
    for fd in [ro, wo, rw, dir, path, pr, pw, zero] {
        close(&mut m, fd);
    }
    m.shut_down();
}

#[test]
fn msync_checks_its_arguments_and_the_range() {
    let mut m = machine(2 * P);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    let s = map(&mut m, 2 * P, RW, MAP_SHARED, fd, 0).unwrap();
    let msync =
        |m: &mut Machine, a: usize, l: usize, f: usize| m.sys(SYS_MSYNC, [a, l, f, 0, 0, 0]);
    assert_eq!(msync(&mut m, s, 2 * P, MS_SYNC), Ok(0));
    assert_eq!(msync(&mut m, s, 100, MS_ASYNC), Ok(0));
    assert_eq!(msync(&mut m, s, 2 * P, MS_INVALIDATE), Ok(0));
    assert_eq!(msync(&mut m, s + 1, P, MS_SYNC), Err(EINVAL));
    assert_eq!(msync(&mut m, s, P, MS_SYNC | MS_ASYNC), Err(EINVAL));
    assert_eq!(msync(&mut m, s, P, 8), Err(EINVAL));
    assert_eq!(msync(&mut m, s, 0, MS_SYNC), Ok(0));
    assert_eq!(
        msync(&mut m, s, 3 * P, MS_SYNC),
        Err(ENOMEM),
        "a hole after it"
    );
    assert_eq!(msync(&mut m, s, usize::MAX - P, MS_SYNC), Err(ENOMEM));
    munmap(&mut m, s + P, P);
    assert_eq!(msync(&mut m, s, 2 * P, MS_ASYNC), Err(ENOMEM));
    munmap(&mut m, s, P);
    close(&mut m, fd);
    m.shut_down();
}

#[test]
fn populate_and_prot_flags_of_file_mappings() {
    let mut m = machine(P + 1);
    let fd = open(&mut m, "/tmp/f", O_RDWR).unwrap();
    // MAP_POPULATE faults the pages within the file and stops at the end.
    let s = map(&mut m, 4 * P, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0).unwrap();
    let space = m.table.space(m.pid_of(m.init)).unwrap();
    assert_eq!(space.region_at(s as u64).unwrap().prot, Prot::READ);
    drop(space);
    invariants(&m, m.init);
    // A mapping at an offset starts at that page of the file.
    let o = map(&mut m, P, PROT_READ, MAP_PRIVATE, fd, P).unwrap();
    assert_eq!(ld(&mut m, o), Ok(b'b'));
    let info = m
        .table
        .space(m.pid_of(m.init))
        .unwrap()
        .region_at(o as u64)
        .unwrap();
    assert_eq!(info.file.map(|f| f.offset), Some(P as u64));
    close(&mut m, fd);
    m.shut_down();
}

//! Host tests of the resource limits through `dispatch`, as user programs reach
//! them: getrlimit/setrlimit/prlimit64 answers and errnos, inheritance by fork and
//! exec, and their enforcement (RLIMIT_NOFILE in the fd calls, RLIMIT_AS in mmap and
//! brk, RLIMIT_STACK in exec); and the errnos of path names that are too long and
//! of clone with a bad thread pointer.

use super::rlimit::{stack_size, Resource, MAX_STACK, MIN_STACK, NR_OPEN, RLIM_INFINITY};
use super::tests::Machine;
use super::*;
use crate::exec::load::{USER_STACK_SIZE, USER_STACK_TOP};
use crate::process::Pid;

/// A mapped, writable page for the calls' structures.
const BUF: usize = 0x1000_0000;
const NOFILE: usize = Resource::Nofile as usize;
const AS: usize = Resource::As as usize;
const STACK: usize = Resource::Stack as usize;
const KERNEL: usize = 0xffff_8000_0000_0000;
const ANON_FIXED: usize = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_FIXED;
const RW: usize = mmap::PROT_READ | mmap::PROT_WRITE;

fn machine() -> Machine {
    let mut m = Machine::new(4);
    assert_eq!(
        m.sys(SYS_MMAP, [BUF, 4096, RW, ANON_FIXED, usize::MAX, 0]),
        Ok(BUF)
    );
    m
}

impl Machine {
    fn put_words(&mut self, at: usize, words: &[u64]) {
        let pid = self.pid_of(self.init);
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_to_user(at as u64, &bytes).unwrap();
    }

    fn words_at(&mut self, tid: Tid, at: usize) -> [u64; 2] {
        let pid = self.pid_of(tid);
        let mut b = [0u8; 16];
        let mut space = self.table.space_mut(pid).unwrap();
        space.copy_from_user(at as u64, &mut b).unwrap();
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        [word(0), word(8)]
    }

    /// getrlimit(resource) of thread `tid`, through its own memory at BUF.
    fn limit_of(&mut self, tid: Tid, resource: usize) -> Result<[u64; 2], Errno> {
        self.call(tid, SYS_GETRLIMIT, [resource, BUF + 256, 0, 0, 0, 0])?;
        Ok(self.words_at(tid, BUF + 256))
    }

    fn set_limit(&mut self, resource: usize, cur: u64, max: u64) -> Result<usize, Errno> {
        self.put_words(BUF, &[cur, max]);
        self.sys(SYS_SETRLIMIT, [resource, BUF, 0, 0, 0, 0])
    }
}

#[test]
fn a_new_process_has_linux_initial_limits() {
    let mut m = machine();
    let inf = RLIM_INFINITY;
    assert_eq!(m.limit_of(m.init, NOFILE), Ok([1024, 4096]));
    assert_eq!(m.limit_of(m.init, STACK), Ok([8 << 20, inf]));
    assert_eq!(m.limit_of(m.init, Resource::Core as usize), Ok([0, inf]));
    assert_eq!(m.limit_of(m.init, AS), Ok([inf, inf]));
    assert_eq!(m.limit_of(m.init, Resource::Data as usize), Ok([inf, inf]));
    assert_eq!(m.limit_of(m.init, Resource::Nice as usize), Ok([0, 0]));
    for r in 0..16 {
        let [cur, max] = m.limit_of(m.init, r).unwrap();
        assert!(cur <= max, "resource {r}: soft within hard");
    }
    m.shut_down();
}

#[test]
fn setrlimit_checks_like_linux_and_changes_nothing_on_error() {
    let mut m = machine();
    assert_eq!(m.set_limit(NOFILE, 100, 200), Ok(0));
    assert_eq!(m.limit_of(m.init, NOFILE), Ok([100, 200]));
    assert_eq!(m.set_limit(NOFILE, 300, 200), Err(EINVAL), "soft > hard");
    assert_eq!(m.set_limit(16, 1, 1), Err(EINVAL), "no resource 16");
    assert_eq!(m.set_limit(NOFILE, 10, NR_OPEN + 1), Err(EPERM), "nr_open");
    assert_eq!(m.limit_of(m.init, NOFILE), Ok([100, 200]), "unchanged");
    assert_eq!(
        m.set_limit(NOFILE, 64, NR_OPEN),
        Ok(0),
        "root raises a hard limit"
    );
    // The resource is an unsigned int: the upper half of the register is ignored.
    assert_eq!(m.limit_of(m.init, (1 << 32) | NOFILE), Ok([64, NR_OPEN]));
    assert_eq!(m.limit_of(m.init, usize::MAX), Err(EINVAL));
    assert_eq!(
        m.sys(SYS_SETRLIMIT, [NOFILE, KERNEL, 0, 0, 0, 0]),
        Err(EFAULT)
    );
    assert_eq!(
        m.sys(SYS_SETRLIMIT, [99, KERNEL, 0, 0, 0, 0]),
        Err(EFAULT),
        "the pointer is read before the resource is checked"
    );
    assert_eq!(
        m.sys(SYS_GETRLIMIT, [99, KERNEL, 0, 0, 0, 0]),
        Err(EINVAL),
        "the resource is checked before the pointer is written"
    );
    assert_eq!(
        m.sys(SYS_GETRLIMIT, [NOFILE, KERNEL, 0, 0, 0, 0]),
        Err(EFAULT)
    );
    m.shut_down();
}

#[test]
fn prlimit64_reads_and_sets_any_process_and_answers_esrch_for_none() {
    let mut m = machine();
    let me = m.pid_of(m.init).0 as usize;
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    m.put_words(BUF, &[50, 60]);
    let prlimit = |m: &mut Machine, pid: usize, r: usize, new: usize, old: usize| {
        m.sys(SYS_PRLIMIT64, [pid, r, new, old, 0, 0])
    };
    assert_eq!(prlimit(&mut m, 0, NOFILE, BUF, BUF + 64), Ok(0));
    assert_eq!(m.words_at(m.init, BUF + 64), [1024, 4096], "the old limit");
    assert_eq!(prlimit(&mut m, me, NOFILE, 0, BUF + 64), Ok(0));
    assert_eq!(m.words_at(m.init, BUF + 64), [50, 60], "own pid");
    assert_eq!(m.limit_of(child, NOFILE), Ok([1024, 4096]), "forked before");
    m.put_words(BUF, &[7, 8]);
    assert_eq!(prlimit(&mut m, child.0 as usize, NOFILE, BUF, 0), Ok(0));
    assert_eq!(m.limit_of(child, NOFILE), Ok([7, 8]), "set from the parent");
    assert_eq!(
        m.limit_of(m.init, NOFILE),
        Ok([50, 60]),
        "the parent's stay"
    );
    for pid in [30_000, usize::MAX, 0x8000_0000] {
        assert_eq!(prlimit(&mut m, pid, NOFILE, 0, BUF + 64), Err(ESRCH));
    }
    assert_eq!(prlimit(&mut m, 0, 16, 0, BUF + 64), Err(EINVAL));
    assert_eq!(prlimit(&mut m, 0, NOFILE, KERNEL, 0), Err(EFAULT));
    m.put_words(BUF, &[9, 9]);
    assert_eq!(
        prlimit(&mut m, 0, NOFILE, BUF, KERNEL),
        Err(EFAULT),
        "the old limit cannot be written"
    );
    assert_eq!(
        m.limit_of(m.init, NOFILE),
        Ok([9, 9]),
        "but the new one is set"
    );
    m.shut_down();
}

#[test]
fn fork_copies_the_limits_and_threads_share_them() {
    let mut m = machine();
    assert_eq!(m.set_limit(NOFILE, 77, 88), Ok(0));
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    assert_eq!(m.limit_of(child, NOFILE), Ok([77, 88]), "inherited");
    let flags = clone::CLONE_VM | clone::CLONE_THREAD | clone::CLONE_SIGHAND;
    let thread = Tid(m.sys(SYS_CLONE, [flags, 0x2000_0000, 0, 0, 0, 0]).unwrap() as u32);
    m.put_words(BUF, &[33, 88]);
    assert_eq!(
        m.call(thread, SYS_SETRLIMIT, [NOFILE, BUF, 0, 0, 0, 0]),
        Ok(0)
    );
    assert_eq!(m.limit_of(m.init, NOFILE), Ok([33, 88]), "one per process");
    assert_eq!(
        m.limit_of(child, NOFILE),
        Ok([77, 88]),
        "a copy in the child"
    );
    m.shut_down();
}

#[test]
fn nofile_bounds_every_new_fd_with_linux_errnos() {
    let mut m = machine();
    assert_eq!(m.sys(SYS_DUP2, [1, 500, 0, 0, 0, 0]), Ok(500));
    assert_eq!(m.set_limit(NOFILE, 10, 4096), Ok(0));
    for want in 3..10 {
        assert_eq!(m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]), Ok(want));
    }
    assert_eq!(m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]), Err(EMFILE));
    assert_eq!(m.sys(SYS_PIPE2, [BUF, 0, 0, 0, 0, 0]), Err(EMFILE));
    m.put_words(BUF + 128, &[u64::from_le_bytes(*b"/dev/nul"), 0x6c]);
    assert_eq!(m.sys(SYS_OPEN, [BUF + 128, 0, 0, 0, 0, 0]), Err(EMFILE));
    m.put_words(BUF + 128, &[u64::from_le_bytes(*b"/nowhere"), 0]);
    assert_eq!(
        m.sys(SYS_OPEN, [BUF + 128, 0, 0, 0, 0, 0]),
        Err(EMFILE),
        "a full table is found before the path is looked up"
    );
    assert_eq!(m.sys(SYS_FCNTL, [1, 0, 5, 0, 0, 0]), Err(EMFILE), "F_DUPFD");
    assert_eq!(m.sys(SYS_FCNTL, [1, 0, 10, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_FCNTL, [1, 1030, 10, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_DUP2, [1, 10, 0, 0, 0, 0]), Err(EBADF));
    assert_eq!(m.sys(SYS_DUP3, [1, 10, 0, 0, 0, 0]), Err(EBADF));
    assert_eq!(
        m.sys(SYS_DUP2, [1, 9, 0, 0, 0, 0]),
        Ok(9),
        "below: replaces"
    );
    assert_eq!(
        m.sys(SYS_WRITE, [500, BUF, 0, 0, 0, 0]),
        Ok(0),
        "fd 500 lives"
    );
    assert_eq!(m.sys(SYS_DUP2, [500, 500, 0, 0, 0, 0]), Ok(500));
    assert_eq!(m.sys(SYS_CLOSE, [9, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        m.sys(SYS_PIPE2, [BUF, 0, 0, 0, 0, 0]),
        Err(EMFILE),
        "1 free"
    );
    assert_eq!(m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]), Ok(9), "fd 9 still free");
    assert_eq!(m.set_limit(NOFILE, 12, 4096), Ok(0));
    assert_eq!(m.sys(SYS_PIPE2, [BUF, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.words_at(m.init, BUF)[0], 10 | 11 << 32, "fds 10 and 11");
    assert_eq!(m.set_limit(NOFILE, 0, 4096), Ok(0));
    assert_eq!(m.sys(SYS_DUP, [1, 0, 0, 0, 0, 0]), Err(EMFILE));
    m.shut_down();
}

#[test]
fn address_space_limit_refuses_mmap_and_brk_growth() {
    let mut m = machine();
    let pid = m.pid_of(m.init);
    let anon = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS;
    let mmap = |m: &mut Machine, addr: usize, len: usize, flags: usize| {
        m.sys(SYS_MMAP, [addr, len, RW, flags, usize::MAX, 0])
    };
    // One page is mapped (BUF): allow 64 KiB in all.
    assert_eq!(m.set_limit(AS, 64 << 10, RLIM_INFINITY), Ok(0));
    assert_eq!(mmap(&mut m, 0, 1 << 20, anon), Err(ENOMEM));
    assert_eq!(
        mmap(&mut m, 0, 64 << 10, anon),
        Err(ENOMEM),
        "one page over"
    );
    let a = mmap(&mut m, 0, 60 << 10, anon).unwrap();
    assert_eq!(mmap(&mut m, 0, 4096, anon), Err(ENOMEM), "full");
    assert_eq!(
        mmap(&mut m, a, 60 << 10, ANON_FIXED),
        Ok(a),
        "MAP_FIXED over what it replaces does not grow"
    );
    assert_eq!(
        mmap(&mut m, a + (56 << 10), 8 << 10, ANON_FIXED),
        Err(ENOMEM),
        "half over the end grows by one page"
    );
    assert_eq!(m.sys(SYS_MUNMAP, [a, 4096, 0, 0, 0, 0]), Ok(0));
    assert!(mmap(&mut m, 0, 4096, anon).is_ok(), "room again");
    m.table.process_mut(pid).unwrap().brk = Some(brk::Brk::at(0x2000_0000));
    assert_eq!(
        m.sys(SYS_BRK, [0x2000_1000, 0, 0, 0, 0, 0]),
        Ok(0x2000_0000),
        "the break stays"
    );
    assert_eq!(m.set_limit(AS, RLIM_INFINITY, RLIM_INFINITY), Ok(0));
    assert_eq!(
        m.sys(SYS_BRK, [0x2000_1000, 0, 0, 0, 0, 0]),
        Ok(0x2000_1000)
    );
    m.shut_down();
}

#[test]
fn exec_keeps_the_limits_and_sizes_the_stack_by_rlimit_stack() {
    let mut m = machine();
    super::io_tests::put_prog(&m);
    let pid = m.pid_of(m.init);
    assert_eq!(m.set_limit(STACK, 1 << 20, RLIM_INFINITY), Ok(0));
    assert_eq!(m.set_limit(NOFILE, 20, 30), Ok(0));
    m.put_words(BUF + 512, &[u64::from_le_bytes(*b"/prog\0\0\0")]);
    assert_eq!(m.sys(SYS_EXECVE, [BUF + 512, 0, 0, 0, 0, 0]), Ok(0));
    let p = m.table.process(pid).unwrap();
    assert_eq!(p.limits.get(Resource::Nofile).cur, 20, "kept across exec");
    let space = m.table.space_mut(pid).unwrap();
    let stack = space.region_at(USER_STACK_TOP - 1).unwrap();
    assert_eq!(stack.end - stack.start, 1 << 20, "RLIMIT_STACK's size");
    drop(space);
    m.shut_down();
}

#[test]
fn stack_size_follows_the_soft_limit_within_bounds() {
    assert_eq!(stack_size(8 << 20), USER_STACK_SIZE);
    assert_eq!(stack_size(0), MIN_STACK);
    assert_eq!(stack_size((1 << 20) + 1), (1 << 20) + 4096, "whole pages");
    assert_eq!(stack_size(RLIM_INFINITY), MAX_STACK);
}

#[test]
fn a_path_component_beyond_name_max_is_enametoolong() {
    let mut m = machine();
    let open = |m: &mut Machine, name: &[u8]| {
        let pid = m.pid_of(m.init);
        let mut bytes = name.to_vec();
        bytes.push(0);
        let mut space = m.table.space_mut(pid).unwrap();
        space.copy_to_user(BUF as u64, &bytes).unwrap();
        drop(space);
        m.sys(SYS_OPEN, [BUF, 0, 0, 0, 0, 0])
    };
    let name = |n: usize| alloc::vec![b'a'; n];
    assert_eq!(open(&mut m, &name(255)), Err(ENOENT));
    assert_eq!(open(&mut m, &name(256)), Err(ENAMETOOLONG));
    assert_eq!(open(&mut m, &name(4095)), Err(ENAMETOOLONG), "issue 15");
    let mut deep = b"/x/".to_vec();
    deep.extend(name(300));
    deep.extend(b"/y");
    assert_eq!(
        open(&mut m, &deep),
        Err(ENOENT),
        "the walk stops at the missing /x first, as Linux's"
    );
    m.put_file("/x", b"", 0o644);
    assert_eq!(open(&mut m, &deep), Err(ENOTDIR), "/x is a file");
    let tree = m.tree();
    tree.unlink(tree.root(), b"/x").unwrap();
    tree.mkdir(tree.root(), b"/x", crate::fs::NodeAttrs::root(0o755))
        .unwrap();
    assert_eq!(open(&mut m, &deep), Err(ENAMETOOLONG), "in the middle");
    let ok: Vec<u8> = (0..20)
        .flat_map(|_| name(200).into_iter().chain([b'/']))
        .collect();
    assert_eq!(open(&mut m, &ok), Err(ENOENT), "long path, short parts");
    m.shut_down();
}

#[test]
fn clone_settls_outside_user_space_is_eperm_and_creates_nothing() {
    let mut m = machine();
    let flags = clone::CLONE_VM | clone::CLONE_THREAD | clone::CLONE_SIGHAND | clone::CLONE_SETTLS;
    let threads = m.table.thread_count();
    for tls in [
        KERNEL,
        0x8000_0000_0000,
        crate::memory::address_space::TASK_SIZE as usize,
    ] {
        assert_eq!(
            m.sys(SYS_CLONE, [flags, 0x2000_0000, 0, 0, tls, 0]),
            Err(EPERM),
            "tls {tls:#x}"
        );
    }
    let fork_flags = clone::CLONE_SETTLS | 17;
    assert_eq!(
        m.sys(SYS_CLONE, [fork_flags, 0, 0, 0, KERNEL, 0]),
        Err(EPERM)
    );
    assert_eq!(m.table.thread_count(), threads, "nothing created");
    let t = Tid(m
        .sys(SYS_CLONE, [flags, 0x2000_0000, 0, 0, 0x7000_0000, 0])
        .unwrap() as u32);
    assert_eq!(m.table.thread(t).unwrap().user.tls, 0x7000_0000);
    assert!(
        m.table.process(Pid(t.0)).is_none(),
        "a thread, not a process"
    );
    m.shut_down();
}

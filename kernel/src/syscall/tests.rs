use super::clone::*;
use super::mmap::*;
use super::wait::WNOHANG;
use super::*;
use crate::memory::address_space::test_frames::TestFrames;
use crate::memory::address_space::{MMAP_MIN_ADDR, TASK_SIZE};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::VirtAddr;
use crate::process::wait_queue::WakeReason;
use crate::process::{NewTask, Priority, ThreadState};
use proptest::prelude::*;

const P: usize = 4096;
const RW: usize = PROT_READ | PROT_WRITE;
const ANON: usize = MAP_PRIVATE | MAP_ANONYMOUS;

/// A process table and scheduler over `mib` MiB of private RAM, with one process
/// whose one thread is running: what a system call acts on. Shared with the other
/// syscall test files.
pub(super) struct Machine {
    pub(super) table: ProcessTable<TestFrames>,
    pub(super) sched: Scheduler,
    pub(super) frames: TestFrames,
    pub(super) start_free: u64,
    pub(super) init: Tid,
}

impl Machine {
    /// One process with one running thread.
    pub(super) fn new(mib: u64) -> Self {
        let mut frames = TestFrames::new(mib);
        let start_free = frames.free();
        let mut table = ProcessTable::new(frames.clone());
        table.set_ram_pages(start_free);
        let tree = crate::fs::system::build(
            frames.clone(),
            start_free / 2,
            || 1_000_000_000,
            Some(random::fill),
            None,
            proc_view::procfs(),
        )
        .expect("a tree fits in the test machine");
        table.set_tree(tree.tree);
        let pid = table
            .create_process("init".into(), frames.alloc_frame().unwrap())
            .unwrap();
        let task = NewTask::new(VirtAddr::new(0x40_0000), VirtAddr::new(0x9000))
            .priority(Priority::Normal);
        let init = table.create_thread(pid, task).unwrap();
        let mut sched = Scheduler::new();
        sched.add(init, Priority::Normal).unwrap();
        assert_eq!(sched.schedule(), Some(init));
        Machine {
            table,
            sched,
            frames,
            start_free,
            init,
        }
    }

    pub(super) fn call(&mut self, tid: Tid, num: usize, a: [usize; 6]) -> Result<usize, Errno> {
        let mut sys = Sys {
            table: &mut self.table,
            sched: (&mut self.sched).into(),
            tid,
        };
        let mut result = dispatch(&mut sys, num, a);
        // As the task layer does: a call that ended a piece goes on at once (there
        // are no interrupts to let in), one that did not ask to be re-issued is over.
        while result == Err(ERESTARTSYS) && sys.take_yielded() {
            result = dispatch(&mut sys, num, a);
        }
        if result != Err(ERESTARTSYS) {
            super::blocking::end_call(&mut sys);
        }
        result
    }

    pub(super) fn sys(&mut self, num: usize, a: [usize; 6]) -> Result<usize, Errno> {
        self.call(self.init, num, a)
    }

    fn mmap(&mut self, addr: usize, len: usize, prot: usize, flags: usize) -> Result<usize, Errno> {
        self.sys(SYS_MMAP, [addr, len, prot, flags, usize::MAX, 0])
    }

    /// A system-call context for `tid` on this machine's tables.
    pub(super) fn sys_of(&mut self, tid: Tid) -> Sys<'_, TestFrames> {
        Sys {
            table: &mut self.table,
            sched: (&mut self.sched).into(),
            tid,
        }
    }

    pub(super) fn pid_of(&self, tid: Tid) -> Pid {
        self.table.thread(tid).unwrap().pid
    }

    fn poke(&mut self, tid: Tid, addr: usize, v: u8) {
        let pid = self.pid_of(tid);
        self.table
            .space_mut(pid)
            .unwrap()
            .copy_to_user(addr as u64, &[v])
            .unwrap();
    }

    fn peek(&mut self, tid: Tid, addr: usize) -> u8 {
        let pid = self.pid_of(tid);
        let mut b = [0u8];
        self.table
            .space_mut(pid)
            .unwrap()
            .copy_from_user(addr as u64, &mut b)
            .unwrap();
        b[0]
    }

    /// Ends every process and checks that every frame came back.
    pub(super) fn shut_down(mut self) {
        let init = self.pid_of(self.init);
        let _ = self.table.exit_process(init, 0);
        while self.table.process_count() > 0 {
            let pids: Vec<Pid> = (1..=crate::process::PID_MAX)
                .map(Pid)
                .filter(|p| self.table.process(*p).is_some())
                .collect();
            for p in pids {
                let _ = self.table.exit_process(p, 0);
                let _ = self.table.reap_process(p);
            }
        }
        self.table.forget_tree();
        assert_eq!(self.frames.free(), self.start_free, "every frame back");
    }

    /// The tree the machine's processes see.
    pub(super) fn tree(&self) -> alloc::sync::Arc<crate::fs::vfs::Vfs> {
        self.table.tree()
    }

    /// Makes the regular file `path` (absolute) with `bytes` and permissions `perm`.
    pub(super) fn put_file(&self, path: &str, bytes: &[u8], perm: u32) {
        use crate::fs::vfs::{CreateMode, FollowLast};
        let tree = self.tree();
        let node = tree
            .create(
                tree.root(),
                path.as_bytes(),
                CreateMode::Exclusive,
                FollowLast::Follow,
                crate::fs::NodeAttrs::root(perm),
            )
            .expect("create");
        let file = tree.open(node).expect("open");
        assert_eq!(file.write(0, bytes), Ok(bytes.len()));
    }
}

#[test]
fn ids() {
    let mut m = Machine::new(2);
    let pid = m.pid_of(m.init);
    assert_eq!(m.sys(SYS_GETPID, [0; 6]), Ok(pid.0 as usize));
    assert_eq!(m.sys(SYS_GETTID, [0; 6]), Ok(m.init.0 as usize));
    assert_eq!(m.sys(SYS_GETPPID, [0; 6]), Ok(0));
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    assert_eq!(m.call(child, SYS_GETPPID, [0; 6]), Ok(pid.0 as usize));
    assert_eq!(m.call(child, SYS_GETPID, [0; 6]), Ok(child.0 as usize));
    assert_eq!(m.call(Tid(4242), SYS_GETPID, [0; 6]), Err(ESRCH));
    m.shut_down();
}

#[test]
fn unknown_numbers_are_enosys() {
    let mut m = Machine::new(2);
    for n in [SYS_ARCH_PRCTL, 9999, usize::MAX] {
        assert_eq!(m.sys(n, [0; 6]), Err(ENOSYS));
    }
    m.shut_down();
}

#[test]
fn seed_mmap_shared_fd0_then_munmap() {
    let mut m = Machine::new(2);
    let a = m
        .sys(SYS_MMAP, [0x1000_0000, 4096, 0x3, 0x1, 0, 0])
        .unwrap();
    assert_eq!(a, 0x1000_0000);
    m.poke(m.init, a, 9);
    assert_eq!(m.peek(m.init, a), 9);
    assert_eq!(m.sys(SYS_MUNMAP, [a, 4096, 0, 0, 0, 0]), Ok(0));
    m.shut_down();
}

#[test]
fn mmap_bad_arguments_give_linux_errnos() {
    let mut m = Machine::new(2);
    let fixed = ANON | MAP_FIXED;
    assert_eq!(m.mmap(0, 0, RW, ANON), Err(EINVAL), "zero length");
    assert_eq!(
        m.sys(SYS_MMAP, [0, P, RW, ANON, usize::MAX, 5]),
        Err(EINVAL),
        "unaligned offset"
    );
    assert_eq!(
        m.sys(SYS_MMAP, [0, P, RW, MAP_PRIVATE, usize::MAX, 0]),
        Err(EBADF),
        "no fd, not anonymous"
    );
    assert_eq!(
        m.mmap(0, P, RW, MAP_ANONYMOUS),
        Err(EINVAL),
        "no mapping type"
    );
    assert_eq!(
        m.mmap(0, P, RW, MAP_ANONYMOUS | 0xf),
        Err(EINVAL),
        "bad mapping type"
    );
    assert_eq!(
        m.mmap(0, usize::MAX, RW, ANON),
        Err(ENOMEM),
        "length overflows"
    );
    assert_eq!(
        m.mmap(0, 1 << 50, RW, ANON),
        Err(ENOMEM),
        "longer than user space"
    );
    // pgoff + pages cannot wrap on 64 bits (Linux's EOVERFLOW needs 32-bit longs):
    // an anonymous mapping ignores a huge aligned offset.
    assert!(m
        .sys(
            SYS_MMAP,
            [0, 2 * P, RW, ANON, usize::MAX, usize::MAX & !0xfff]
        )
        .is_ok());
    assert_eq!(
        m.mmap(0x1000_0001, P, RW, fixed),
        Err(EINVAL),
        "unaligned fixed"
    );
    assert_eq!(
        m.mmap(0x1000, P, RW, fixed),
        Err(EPERM),
        "below mmap_min_addr"
    );
    assert_eq!(
        m.mmap(TASK_SIZE as usize, P, RW, fixed),
        Err(ENOMEM),
        "fixed beyond user space"
    );
    assert_eq!(
        m.mmap(0xffff_8000_0000_0000, P, RW, fixed),
        Err(ENOMEM),
        "kernel address"
    );
    assert_eq!(m.mmap(0, P, RW, ANON | MAP_HUGETLB), Err(EINVAL));
    assert_eq!(
        m.mmap(0, P, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x800_0000),
        Err(EOPNOTSUPP)
    );
    let a = m.mmap(0x2000_0000, P, RW, fixed).unwrap();
    assert_eq!(m.mmap(a, P, RW, ANON | MAP_FIXED_NOREPLACE), Err(EEXIST));
    assert_eq!(
        m.table
            .space_mut(m.pid_of(m.init))
            .unwrap()
            .regions()
            .count(),
        2,
        "only the two successful mappings"
    );
    m.shut_down();
}

#[test]
fn mmap_hint_fixed_prot_and_populate() {
    let mut m = Machine::new(4);
    let hint = m.mmap(0x3000_0000, 3 * P, RW, ANON).unwrap();
    assert_eq!(hint, 0x3000_0000);
    let moved = m.mmap(0x3000_0000, P, RW, ANON).unwrap();
    assert_ne!(moved, hint);
    let low = m.mmap(0x10, P, RW, ANON).unwrap();
    assert!(
        low >= MMAP_MIN_ADDR as usize,
        "hint below the minimum is raised"
    );
    let ro = m.mmap(0, P, PROT_READ, ANON | MAP_POPULATE).unwrap();
    let pid = m.pid_of(m.init);
    assert_eq!(
        m.table.space_mut(pid).unwrap().resident_pages(),
        1,
        "populated"
    );
    assert!(
        m.table
            .space_mut(pid)
            .unwrap()
            .copy_to_user(ro as u64, &[1])
            .is_err(),
        "read-only"
    );
    m.poke(m.init, hint + P, 5);
    let again = m.mmap(hint, 3 * P, RW, ANON | MAP_FIXED).unwrap();
    assert_eq!(again, hint);
    assert_eq!(
        m.peek(m.init, hint + P),
        0,
        "MAP_FIXED replaced the old pages"
    );
    m.shut_down();
}

#[test]
fn munmap_and_mprotect_bad_arguments() {
    let mut m = Machine::new(2);
    let a = m.mmap(0x1000_0000, 4 * P, RW, ANON | MAP_FIXED).unwrap();
    assert_eq!(m.sys(SYS_MUNMAP, [a + 1, P, 0, 0, 0, 0]), Err(EINVAL));
    assert_eq!(m.sys(SYS_MUNMAP, [a, 0, 0, 0, 0, 0]), Err(EINVAL));
    assert_eq!(
        m.sys(SYS_MUNMAP, [TASK_SIZE as usize - P, 2 * P, 0, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_MUNMAP, [0xffff_8000_0000_0000, P, 0, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_MUNMAP, [0x5000_0000, P, 0, 0, 0, 0]),
        Ok(0),
        "nothing mapped there: fine"
    );
    assert_eq!(
        m.sys(SYS_MPROTECT, [a + 1, P, PROT_READ, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_MPROTECT, [a + 1, 0, PROT_READ, 0, 0, 0]),
        Err(EINVAL),
        "alignment before length"
    );
    assert_eq!(
        m.sys(SYS_MPROTECT, [a, 0, 0xffff, 0, 0, 0]),
        Ok(0),
        "zero length before prot"
    );
    assert_eq!(
        m.sys(SYS_MPROTECT, [a, P, 0x40, 0, 0, 0]),
        Err(EINVAL),
        "unknown prot bit"
    );
    assert_eq!(
        m.sys(SYS_MPROTECT, [a, P, PROT_READ | PROT_GROWSDOWN, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_MPROTECT, [a, 5 * P, PROT_READ, 0, 0, 0]),
        Err(ENOMEM),
        "hole"
    );
    assert_eq!(
        m.sys(SYS_MPROTECT, [a, usize::MAX - a, PROT_READ, 0, 0, 0]),
        Err(ENOMEM),
        "wraps"
    );
    assert_eq!(m.sys(SYS_MPROTECT, [a + P, P, PROT_READ, 0, 0, 0]), Ok(0));
    assert_eq!(m.sys(SYS_MUNMAP, [a + P, 2 * P, 0, 0, 0, 0]), Ok(0));
    let pid = m.pid_of(m.init);
    assert_eq!(
        m.table.space_mut(pid).unwrap().regions().count(),
        2,
        "split"
    );
    m.shut_down();
}

#[test]
fn fork_copies_memory_on_write_and_admits_the_child() {
    let mut m = Machine::new(4);
    let a = m.mmap(0x1000_0000, 2 * P, RW, ANON | MAP_FIXED).unwrap();
    let s = m
        .mmap(0x2000_0000, P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED)
        .unwrap();
    m.poke(m.init, a, 1);
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    assert_eq!(m.sched.state(child), Some(ThreadState::Ready));
    assert_eq!(m.table.thread(child).unwrap().user.ret, 0);
    m.poke(child, a, 2);
    m.poke(child, s, 3);
    assert_eq!(m.peek(m.init, a), 1);
    assert_eq!(m.peek(m.init, s), 3, "MAP_SHARED stays shared");
    m.shut_down();
}

#[test]
fn clone_follows_linux_flags() {
    let mut m = Machine::new(4);
    let pid = m.pid_of(m.init);
    let clone =
        |m: &mut Machine, flags: usize, stack: usize, ptid: usize, ctid: usize, tls: usize| {
            m.sys(SYS_CLONE, [flags, stack, ptid, ctid, tls, 0])
        };
    // flags 0 (the seed): a new process on the given stack.
    let c = Tid(clone(&mut m, 0, 0x7fff_ffff_0000, 0, 0, 0).unwrap() as u32);
    assert_ne!(m.pid_of(c), pid);
    assert_eq!(m.table.thread(c).unwrap().user.sp, 0x7fff_ffff_0000);
    // Bad combinations.
    assert_eq!(
        clone(&mut m, CLONE_THREAD | CLONE_VM, 0, 0, 0, 0),
        Err(EINVAL),
        "THREAD without SIGHAND"
    );
    assert_eq!(
        clone(&mut m, CLONE_SIGHAND, 0, 0, 0, 0),
        Err(EINVAL),
        "SIGHAND without VM"
    );
    assert_eq!(
        clone(&mut m, CLONE_NEWNS | CLONE_FS, 0, 0, 0, 0),
        Err(EINVAL)
    );
    assert_eq!(
        clone(&mut m, 0x4000_0000, 0, 0, 0, 0),
        Err(EPERM),
        "CLONE_NEWNET"
    );
    assert_eq!(clone(&mut m, CLONE_PIDFD, 0, 0, 0, 0), Err(EINVAL));
    // The flag set musl and Rust std use for threads.
    let tids = m.mmap(0x1000_0000, P, RW, ANON | MAP_FIXED).unwrap();
    let flags = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID;
    let t = Tid(clone(&mut m, flags, 0x5000_0000, tids, tids + 8, 0x1234).unwrap() as u32);
    let th = m.table.thread(t).unwrap();
    assert_eq!(
        (th.pid, th.user.sp, th.user.tls, th.clear_child_tid),
        (pid, 0x5000_0000, 0x1234, Some(tids as u64 + 8))
    );
    let mut b = [0u8; 4];
    m.table
        .space_mut(pid)
        .unwrap()
        .copy_from_user(tids as u64, &mut b)
        .unwrap();
    assert_eq!(u32::from_le_bytes(b), t.0, "CLONE_PARENT_SETTID");
    // CLONE_VM without CLONE_THREAD: a process sharing memory.
    let v = Tid(clone(&mut m, CLONE_VM | CLONE_CHILD_SETTID, 0, 0, tids + 16, 0).unwrap() as u32);
    assert_ne!(m.pid_of(v), pid);
    m.table
        .space_mut(pid)
        .unwrap()
        .copy_from_user(tids as u64 + 16, &mut b)
        .unwrap();
    assert_eq!(
        u32::from_le_bytes(b),
        v.0,
        "CLONE_CHILD_SETTID in the shared memory"
    );
    // Bad tid pointers are ignored, as on Linux.
    assert!(clone(&mut m, CLONE_PARENT_SETTID, 0, 0xffff_8000_0000_0000, 0, 0).is_ok());
    m.shut_down();
}

#[test]
fn exit_and_wait4() {
    let mut m = Machine::new(4);
    let status = m.mmap(0x1000_0000, P, RW, ANON | MAP_FIXED).unwrap();
    assert_eq!(m.sys(SYS_WAIT4, [usize::MAX, 0, 0, 0, 0, 0]), Err(ECHILD));
    assert_eq!(
        m.sys(SYS_WAIT4, [usize::MAX, 0, 0x100, 0, 0, 0]),
        Err(EINVAL)
    );
    let c = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    assert_eq!(
        m.sys(SYS_WAIT4, [usize::MAX, status, WNOHANG, 0, 0, 0]),
        Ok(0)
    );
    assert_eq!(
        m.sys(SYS_WAIT4, [usize::MAX, status, 0, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    assert_eq!(m.sched.schedule(), Some(c));
    assert_eq!(m.call(c, SYS_EXIT_GROUP, [0x1_07, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.sched.state(c), None, "left the scheduler");
    assert_eq!(
        m.sched.state(m.init),
        Some(ThreadState::Ready),
        "parent woken"
    );
    assert_eq!(
        m.sys(SYS_WAIT4, [c.0 as usize, status, 0, 0, 0, 0]),
        Ok(c.0 as usize)
    );
    let mut b = [0u8; 4];
    m.table
        .space_mut(m.pid_of(m.init))
        .unwrap()
        .copy_from_user(status as u64, &mut b)
        .unwrap();
    assert_eq!(i32::from_le_bytes(b), 7 << 8);
    // exit of the last thread ends the process; a bad status pointer is EFAULT.
    let c2 = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let t2 = Tid(m
        .call(
            c2,
            SYS_CLONE,
            [CLONE_VM | CLONE_SIGHAND | CLONE_THREAD, 0, 0, 0, 0, 0],
        )
        .unwrap() as u32);
    assert_eq!(m.call(t2, SYS_EXIT, [1, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        m.sys(SYS_WAIT4, [c2.0 as usize, 0, WNOHANG, 0, 0, 0]),
        Ok(0),
        "one thread left"
    );
    assert_eq!(m.call(c2, SYS_EXIT, [2, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        m.sys(
            SYS_WAIT4,
            [c2.0 as usize, 0xffff_8000_0000_0000, 0, 0, 0, 0]
        ),
        Err(EFAULT)
    );
    m.shut_down();
}

#[test]
fn fork_limit_is_eagain_and_loses_nothing() {
    let mut m = Machine::new(4);
    m.table.set_max_processes(2);
    m.sys(SYS_FORK, [0; 6]).unwrap();
    assert_eq!(m.sys(SYS_FORK, [0; 6]), Err(EAGAIN));
    assert_eq!(m.sys(SYS_CLONE, [0, 0, 0, 0, 0, 0]), Err(EAGAIN));
    m.shut_down();
}

#[test]
fn fork_without_memory_is_enomem_and_loses_nothing() {
    let mut m = Machine::new(1);
    let mut hoard = Vec::new();
    while let Ok(f) = m.frames.alloc_frame() {
        hoard.push(f);
    }
    assert_eq!(m.sys(SYS_FORK, [0; 6]), Err(ENOMEM));
    assert_eq!(m.table.process_count(), 1);
    for f in hoard {
        m.frames.free_frame(f).unwrap();
    }
    m.shut_down();
}

#[test]
fn global_handle_syscall_needs_a_current_thread() {
    let _g = crate::process::tests::GLOBAL_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    crate::process::scheduler::init_scheduler();
    assert_eq!(handle_syscall(SYS_GETPID, 0, 0, 0, 0, 0, 0), Err(ESRCH));
}

// ---- fuzz: random calls with adversarial arguments ----

fn arg() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(usize::MAX),
        Just(0xffff_8000_0000_0000usize),
        Just(TASK_SIZE as usize),
        (0..16usize).prop_map(|p| 0x1000_0000 + p * P),
        (0..16usize).prop_map(|p| 0x1000_0000 + p * P + 1),
        (1..20usize).prop_map(|n| n * P),
        any::<usize>(),
        0..64usize,
    ]
}

fn call() -> impl Strategy<Value = (usize, [usize; 6])> {
    let num = prop_oneof![
        Just(SYS_MMAP),
        Just(SYS_MUNMAP),
        Just(SYS_MPROTECT),
        Just(SYS_FORK),
        Just(SYS_CLONE),
        Just(SYS_GETPID),
        Just(SYS_WAIT4),
        Just(SYS_SCHED_YIELD),
        any::<usize>(),
    ];
    (num, proptest::array::uniform6(arg()))
}

const ERRNOS: [Errno; 12] = [
    EPERM, ESRCH, EBADF, ECHILD, EAGAIN, ENOMEM, EFAULT, EEXIST, EINVAL, ENOSYS, EOVERFLOW,
    EOPNOTSUPP,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn fuzz_never_panics_and_never_leaks(calls in proptest::collection::vec(call(), 1..40)) {
        let mut m = Machine::new(8);
        m.table.set_max_processes(16);
        for (num, mut a) in calls {
            if num == SYS_WAIT4 {
                a[2] |= WNOHANG; // the fuzzer has no second thread to wake it
            }
            match m.sys(num, a) {
                Ok(_) => {}
                Err(e) => prop_assert!(ERRNOS.contains(&e) || e == ERESTARTSYS, "errno {:?} for {} {:x?}", e, num, a),
            }
            // vfork/CLONE_VFORK may have suspended init: resume it, as the child would.
            if m.sched.state(m.init) == Some(ThreadState::Blocked) {
                super::blocking::end_call(&mut m.sys_of(m.init));
                m.sched.unblock(m.init).unwrap();
            }
            // fork/yield may have picked another thread; put init back on the CPU.
            for _ in 0..64 {
                if m.sched.current() == Some(m.init) {
                    break;
                }
                m.sched.schedule();
            }
            prop_assert_eq!(m.sched.current(), Some(m.init));
            let pid = m.pid_of(m.init);
            m.table.space_mut(pid).unwrap().check_invariants().unwrap();
        }
        m.shut_down();
    }
}

#[test]
fn set_tid_address_and_clear_at_thread_exit() {
    let mut m = Machine::new(2);
    let a = m.mmap(0x1000_0000, P, RW, ANON | MAP_FIXED).unwrap();
    let flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD | CLONE_PARENT_SETTID;
    let t = Tid(m.sys(SYS_CLONE, [flags, 0, a, 0, 0, 0]).unwrap() as u32);
    assert_eq!(m.peek(m.init, a), t.0 as u8);
    assert_eq!(
        m.call(t, SYS_SET_TID_ADDRESS, [a, 0, 0, 0, 0, 0]),
        Ok(t.0 as usize)
    );
    assert_eq!(m.call(t, SYS_EXIT, [0; 6]), Ok(0));
    assert_eq!(m.peek(m.init, a), 0, "cleared at exit");
    m.shut_down();
}

#[test]
fn nanosleep_checks_and_sleeps_in_ticks() {
    let mut m = Machine::new(2);
    let a = m.mmap(0x1000_0000, P, RW, ANON | MAP_FIXED).unwrap();
    let pid = m.pid_of(m.init);
    let put = |m: &mut Machine, sec: i64, nsec: i64| {
        let mut b = sec.to_le_bytes().to_vec();
        b.extend_from_slice(&nsec.to_le_bytes());
        m.table
            .space_mut(pid)
            .unwrap()
            .copy_to_user(a as u64, &b)
            .unwrap();
    };
    assert_eq!(
        m.sys(SYS_NANOSLEEP, [0xffff_8000_0000_0000, 0, 0, 0, 0, 0]),
        Err(EFAULT)
    );
    put(&mut m, -1, 0);
    assert_eq!(m.sys(SYS_NANOSLEEP, [a, 0, 0, 0, 0, 0]), Err(EINVAL));
    put(&mut m, 0, 1_000_000_000);
    assert_eq!(m.sys(SYS_NANOSLEEP, [a, 0, 0, 0, 0, 0]), Err(EINVAL));
    put(&mut m, 0, 0);
    assert_eq!(m.sys(SYS_NANOSLEEP, [a, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.sched.current(), Some(m.init), "zero sleep does not block");
    put(&mut m, 0, 25_000_000); // 2.5 ticks -> 3
    assert_eq!(m.sys(SYS_NANOSLEEP, [a, 0, 0, 0, 0, 0]), Err(ERESTARTSYS));
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Sleeping));
    m.sched.tick();
    m.sched.tick();
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Sleeping));
    assert_eq!(m.sched.timer_tick(), Some(m.init));
    assert_eq!(m.sched.take_wake_reason(m.init), Some(WakeReason::TimedOut));
    assert_eq!(
        m.sys(SYS_NANOSLEEP, [a, 0, 0, 0, 0, 0]),
        Ok(0),
        "re-issued: done"
    );
    m.shut_down();
}

#[test]
fn vfork_suspends_the_parent_until_the_child_exits() {
    let mut m = Machine::new(4);
    let a = m.mmap(0x1000_0000, P, RW, ANON | MAP_FIXED).unwrap();
    let act: [u64; 4] = [0x40_1000, signal::SA_RESTORER, 0x40_2000, 0];
    let raw: Vec<u8> = act.iter().flat_map(|v| v.to_le_bytes()).collect();
    m.poke_bytes(a + 64, &raw);
    assert_eq!(m.sys(SYS_RT_SIGACTION, [10, a + 64, 0, 8, 0, 0]), Ok(0));
    assert_eq!(
        m.sys(SYS_VFORK, [0; 6]),
        Err(ERESTARTSYS),
        "the parent waits"
    );
    let c = m.table.thread(m.init).unwrap().call.vfork_child.unwrap();
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    assert_eq!(m.sched.schedule(), Some(c));
    m.poke(c, a, 4);
    assert_eq!(
        m.peek(m.init, a),
        4,
        "the child borrows the parent's memory"
    );
    // A signal to the waiting parent does not end its wait: it stays pending.
    let me = m.pid_of(m.init);
    assert_eq!(m.call(c, SYS_KILL, [me.0 as usize, 10, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    let shared = m.table.process(me).unwrap().shared_pending.set();
    assert_eq!(shared, signal::bit(10));
    assert_eq!(m.call(c, SYS_EXIT, [0; 6]), Ok(0));
    m.sched.apply_wakeups();
    assert_eq!(
        m.sched.state(m.init),
        Some(ThreadState::Ready),
        "parent resumes"
    );
    assert_eq!(m.sched.schedule(), Some(m.init));
    assert_eq!(
        m.sys(SYS_VFORK, [0; 6]),
        Ok(c.0 as usize),
        "re-issued: the pid"
    );
    // CLONE_VFORK through clone does the same; a non-running caller is refused.
    let clone = [CLONE_VM | CLONE_VFORK, 0, 0, 0, 0, 0];
    assert_eq!(m.sys(SYS_CLONE, clone), Err(ERESTARTSYS));
    let c2 = m.table.thread(m.init).unwrap().call.vfork_child.unwrap();
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Blocked));
    assert_eq!(m.sched.current(), Some(c2), "the child runs");
    assert_eq!(m.call(c2, SYS_EXIT_GROUP, [0; 6]), Ok(0));
    m.sched.apply_wakeups();
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Ready));
    assert_eq!(m.sched.schedule(), Some(m.init));
    assert_eq!(m.sys(SYS_CLONE, clone), Ok(c2.0 as usize));
    m.shut_down();
}

#[test]
fn wait4_is_woken_only_by_a_child_exit() {
    let mut m = Machine::new(4);
    let c = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let t = Tid(m
        .sys(
            SYS_CLONE,
            [CLONE_VM | CLONE_SIGHAND | CLONE_THREAD, 0, 0, 0, 0, 0],
        )
        .unwrap() as u32);
    assert_eq!(
        m.sys(SYS_WAIT4, [usize::MAX, 0, 0, 0, 0, 0]),
        Err(ERESTARTSYS)
    );
    let queue = m
        .table
        .process(m.pid_of(m.init))
        .unwrap()
        .child_exit
        .clone();
    assert_eq!(queue.len(), 1, "init waits on its child-exit queue");
    assert_eq!(m.call(t, SYS_EXIT, [0; 6]), Ok(0));
    assert_eq!(
        m.sched.state(m.init),
        Some(ThreadState::Blocked),
        "a sibling thread's exit is not a child's"
    );
    assert_eq!(m.call(c, SYS_EXIT, [0; 6]), Ok(0));
    assert_eq!(m.sched.state(m.init), Some(ThreadState::Ready));
    assert_eq!(m.sched.take_wake_reason(m.init), Some(WakeReason::Woken));
    assert_eq!(m.sched.schedule(), Some(m.init));
    assert_eq!(
        m.sys(SYS_WAIT4, [usize::MAX, 0, 0, 0, 0, 0]),
        Ok(c.0 as usize)
    );
    assert!(queue.is_empty(), "the call is over: off the queue");
    m.shut_down();
}

mod fuzz;

#[test]
fn a_group_stop_is_reported_when_the_last_running_thread_exits() {
    let mut m = Machine::new(4);
    let child = Tid(m.sys(SYS_FORK, [0; 6]).unwrap() as u32);
    let pid = m.pid_of(child);
    let flags = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD;
    let other = Tid(m.call(child, SYS_CLONE, [flags, 0, 0, 0, 0, 0]).unwrap() as u32);
    // A stop: the child's main thread parks, the other thread has not stopped yet.
    m.table.process_mut(pid).unwrap().job.stopped = Some(signal::SIGSTOP);
    let mut s = m.sys_of(child);
    signal::thread_stopped(&mut s, child);
    assert!(
        !m.table.process(pid).unwrap().job.stop_reported,
        "one thread still runs"
    );
    assert_eq!(m.call(other, SYS_EXIT, [0, 0, 0, 0, 0, 0]), Ok(0));
    let job = &m.table.process(pid).unwrap().job;
    assert!(
        job.stop_reported,
        "the exit completed the stop: the parent is told"
    );
    m.shut_down();
}

#[test]
fn affinity_and_getcpu_follow_linux() {
    let mut m = Machine::new(2);
    m.sched.set_online(1);
    let buf = m.mmap(0, 4096, 3, 0x22).unwrap();
    // Two CPUs online: the caller may run on both; 8 bytes written.
    assert_eq!(m.sys(SYS_SCHED_GETAFFINITY, [0, 128, buf, 0, 0, 0]), Ok(8));
    assert_eq!(m.peek(m.init, buf), 0b11);
    // Too small for the CPUs, or not a multiple of a long: EINVAL.
    assert_eq!(
        m.sys(SYS_SCHED_GETAFFINITY, [0, 0, buf, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sys(SYS_SCHED_GETAFFINITY, [0, 4, buf, 0, 0, 0]),
        Err(EINVAL)
    );
    // No such thread, a bad pointer.
    assert_eq!(
        m.sys(SYS_SCHED_GETAFFINITY, [4242, 8, buf, 0, 0, 0]),
        Err(ESRCH)
    );
    assert_eq!(
        m.sys(SYS_SCHED_GETAFFINITY, [0, 8, 0, 0, 0, 0]),
        Err(EFAULT)
    );
    // A mask with no online CPU is refused and changes nothing.
    m.poke(m.init, buf, 0b100);
    assert_eq!(
        m.sys(SYS_SCHED_SETAFFINITY, [0, 8, buf, 0, 0, 0]),
        Err(EINVAL)
    );
    assert_eq!(
        m.sched.affinity(m.init),
        Some(super::super::process::scheduler::ALL_CPUS)
    );
    // CPU 1 only: the thread leaves CPU 0 and is queued on CPU 1.
    m.poke(m.init, buf, 0b10);
    assert_eq!(m.sys(SYS_SCHED_SETAFFINITY, [0, 1, buf, 0, 0, 0]), Ok(0));
    assert_eq!(m.sched.affinity(m.init), Some(0b10));
    assert_eq!(m.sched.current_on(0), None);
    assert_eq!(m.sched.cpu_of(m.init), Some(1));
    assert_eq!(m.sched.schedule_on(0), None, "CPU 0 may not take it");
    assert_eq!(m.sched.schedule_on(1), Some(m.init));
    m.sched.check_invariants().unwrap();
    // getcpu: the host runs as CPU 0, node 0; NULL pointers are allowed.
    assert_eq!(m.sys(SYS_GETCPU, [buf, buf + 4, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.peek(m.init, buf), 0);
    assert_eq!(m.sys(SYS_GETCPU, [0, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(m.sys(SYS_GETCPU, [1, 0, 0, 0, 0, 0]), Err(EFAULT));
    m.shut_down();
}

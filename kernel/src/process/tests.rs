use super::*;
use crate::memory::address_space::test_frames::TestFrames;
use crate::memory::address_space::{MapRequest, Placement, Prot};
use crate::memory::frame_allocator::FrameSource;

/// Serialises the unit tests that touch the global table or scheduler.
pub(crate) static GLOBAL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

type Table = ProcessTable<TestFrames>;

fn table(mib: u64) -> (Table, TestFrames) {
    let frames = TestFrames::new(mib);
    (ProcessTable::new(frames.clone()), frames)
}

fn task() -> NewTask {
    NewTask::new(VirtAddr::new(0x40_0000), VirtAddr::new(0x9000))
}

fn process_with_thread(t: &mut Table, frames: &mut TestFrames) -> (Pid, Tid) {
    let pid = t
        .create_process("p".into(), frames.alloc_frame().unwrap())
        .unwrap();
    let tid = t.create_thread(pid, task()).unwrap();
    (pid, tid)
}

#[test]
fn create_and_look_up() {
    let (mut t, mut frames) = table(2);
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    assert_ne!(pid.0, tid.0, "one id space");
    let th = t.thread(tid).unwrap();
    assert_eq!((th.pid, th.priority), (pid, Priority::Normal));
    assert_eq!(th.context.resume_address(), VirtAddr::new(0x40_0000));
    assert_eq!(th.context.stack_pointer(), VirtAddr::new(0x9000));
    assert!(t.process(pid).unwrap().threads.contains(&tid));
    assert_eq!(t.process(pid).unwrap().parent, None);
}

#[test]
fn unknown_ids_are_errors() {
    let (mut t, mut frames) = table(2);
    assert_eq!(
        t.create_thread(Pid(77), task()),
        Err(ProcessError::NoSuchProcess(Pid(77)))
    );
    assert_eq!(
        t.clone_thread(Tid(77), CloneOptions::process()),
        Err(ProcessError::NoSuchThread(Tid(77)))
    );
    assert_eq!(
        t.exit_process(Pid(77), 0),
        Err(ProcessError::NoSuchProcess(Pid(77)))
    );
    assert_eq!(
        t.exit_thread(Tid(77), 0),
        Err(ProcessError::NoSuchThread(Tid(77)))
    );
    assert_eq!(
        t.reap_process(Pid(77)),
        Err(ProcessError::NoSuchProcess(Pid(77)))
    );
    assert_eq!(
        t.reap_thread(Tid(77)),
        Err(ProcessError::NoSuchThread(Tid(77)))
    );
    assert_eq!(
        t.wait_child(Pid(77), None),
        Err(ProcessError::NoSuchProcess(Pid(77)))
    );
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    assert_eq!(t.reap_process(pid), Err(ProcessError::ProcessAlive(pid)));
    assert_eq!(t.reap_thread(tid), Err(ProcessError::ThreadAlive(tid)));
    assert_eq!(t.wait_child(pid, None), Err(ProcessError::NoChildren));
    assert_eq!(t.process_count(), 1);
}

#[test]
fn fork_child_has_tid_equal_pid_and_links() {
    let (mut t, mut frames) = table(4);
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    t.thread_mut(tid).unwrap().user = UserRegs {
        ip: 0x40_1000,
        sp: 0x7000,
        ret: 99,
        tls: 5,
    };
    let child = t.clone_thread(tid, CloneOptions::process()).unwrap();
    let cpid = t.thread(child).unwrap().pid;
    assert_eq!(cpid.0, child.0);
    assert_eq!(t.process(cpid).unwrap().parent, Some(pid));
    assert!(t.process(pid).unwrap().children.contains(&cpid));
    assert_eq!(
        t.thread(child).unwrap().user,
        UserRegs {
            ip: 0x40_1000,
            sp: 0x7000,
            ret: 0,
            tls: 5
        }
    );
    let th = t
        .clone_thread(tid, CloneOptions::thread().stack(0x5000).tls(9))
        .unwrap();
    assert_eq!(t.thread(th).unwrap().pid, pid);
    assert_eq!(t.thread(th).unwrap().user.sp, 0x5000);
    assert_eq!(t.thread(th).unwrap().user.tls, 9);
}

#[test]
fn fork_copies_memory_and_threads_share_it() {
    let (mut t, mut frames) = table(4);
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    let a = 0x1000_0000;
    let mut s = t.space_mut(pid).unwrap();
    s.mmap(MapRequest::new(4096, Prot::READ | Prot::WRITE).at(Placement::Fixed(a)))
        .unwrap();
    s.copy_to_user(a, &[1]).unwrap();
    drop(s);
    let child = t.clone_thread(tid, CloneOptions::process()).unwrap();
    let thread = t.clone_thread(tid, CloneOptions::thread()).unwrap();
    let vm_sharer = t
        .clone_thread(tid, CloneOptions::process().memory(MemoryMode::Share))
        .unwrap();
    t.space_mut(Pid(child.0))
        .unwrap()
        .copy_to_user(a, &[2])
        .unwrap();
    t.space_mut(Pid(vm_sharer.0))
        .unwrap()
        .copy_to_user(a + 1, &[3])
        .unwrap();
    let mut b = [0u8; 2];
    t.space_mut(pid).unwrap().copy_from_user(a, &mut b).unwrap();
    assert_eq!(b, [1, 3], "fork child isolated, CLONE_VM child shares");
    assert_eq!(t.thread(thread).unwrap().pid, pid);
}

#[test]
fn everything_comes_back_after_exit_and_reap() {
    let (mut t, mut frames) = table(4);
    let start = frames.free();
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    let a = 0x1000_0000;
    let mut s = t.space_mut(pid).unwrap();
    s.mmap(MapRequest::new(8 * 4096, Prot::READ | Prot::WRITE).at(Placement::Fixed(a)))
        .unwrap();
    s.copy_to_user(a, &[7; 8 * 4096]).unwrap();
    drop(s);
    let c1 = t.clone_thread(tid, CloneOptions::process()).unwrap();
    let c2 = t.clone_thread(c1, CloneOptions::process()).unwrap();
    let th = t.clone_thread(c1, CloneOptions::thread()).unwrap();
    let vm = t
        .clone_thread(tid, CloneOptions::process().memory(MemoryMode::Share))
        .unwrap();
    t.space_mut(Pid(c2.0))
        .unwrap()
        .copy_to_user(a, &[1; 3 * 4096])
        .unwrap();
    t.exit_thread(th, 0).unwrap();
    assert_eq!(t.reap_thread(th), Ok(0));
    assert_eq!(t.exit_thread(c1, 3).unwrap().gone, vec![c1]);
    assert_eq!(
        t.process(Pid(c1.0)).unwrap().state,
        ProcessState::Zombie { status: 3 }
    );
    assert_eq!(t.wait_child(pid, Some(Pid(c1.0))), Ok(Some((Pid(c1.0), 3))));
    // c2 was orphaned (no pid 1 alive besides... pid 1 is `pid` itself here).
    t.exit_process(Pid(c2.0), 0).unwrap();
    t.exit_process(Pid(vm.0), 0).unwrap();
    assert!(t.space_mut(pid).is_ok(), "VM sharer's exit keeps the space");
    t.exit_process(pid, 0).unwrap();
    assert_eq!(t.process_count(), 0);
    assert_eq!(t.thread_count(), 0);
    assert_eq!(frames.free(), start);
}

#[test]
fn zombies_take_no_threads_and_wait_reports_them() {
    let (mut t, mut frames) = table(2);
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    let child = t.clone_thread(tid, CloneOptions::process()).unwrap();
    let cpid = Pid(child.0);
    assert_eq!(t.wait_child(pid, None), Ok(None));
    assert_eq!(
        t.wait_child(pid, Some(Pid(12345))),
        Err(ProcessError::NoChildren)
    );
    t.exit_process(cpid, 42).unwrap();
    assert_eq!(
        t.create_thread(cpid, task()),
        Err(ProcessError::ProcessExited(cpid))
    );
    assert_eq!(
        t.clone_thread(child, CloneOptions::process()),
        Err(ProcessError::ProcessExited(cpid))
    );
    assert_eq!(
        t.exit_process(cpid, 1),
        Err(ProcessError::ProcessExited(cpid))
    );
    assert!(t.space_mut(cpid).is_err());
    assert_eq!(t.wait_child(pid, None), Ok(Some((cpid, 42))));
    assert_eq!(t.wait_child(pid, None), Err(ProcessError::NoChildren));
}

#[test]
fn orphans_go_to_pid_one() {
    let (mut t, mut frames) = table(2);
    let (init, _) = process_with_thread(&mut t, &mut frames);
    assert_eq!(init, Pid(1));
    let (p, ptid) = process_with_thread(&mut t, &mut frames);
    let child = Pid(t.clone_thread(ptid, CloneOptions::process()).unwrap().0);
    t.exit_process(p, 0).unwrap();
    assert!(t.process(p).is_none(), "parentless zombie reaped at once");
    assert_eq!(t.process(child).unwrap().parent, Some(init));
    assert!(t.process(init).unwrap().children.contains(&child));
}

#[test]
fn process_limit_gives_too_many_and_leaks_nothing() {
    let (mut t, mut frames) = table(2);
    t.set_max_processes(3);
    let (_, tid) = process_with_thread(&mut t, &mut frames);
    let free = frames.free();
    t.clone_thread(tid, CloneOptions::process()).unwrap();
    t.clone_thread(tid, CloneOptions::process()).unwrap();
    let used = free - frames.free();
    assert_eq!(
        t.clone_thread(tid, CloneOptions::process()),
        Err(ProcessError::TooManyProcesses)
    );
    assert_eq!(free - frames.free(), used);
    t.clone_thread(tid, CloneOptions::thread())
        .expect("threads are not limited");
}

#[test]
fn out_of_memory_on_fork_leaks_nothing() {
    let (mut t, mut frames) = table(1);
    let (_, tid) = process_with_thread(&mut t, &mut frames);
    let mut hoard = Vec::new();
    while let Ok(f) = frames.alloc_frame() {
        hoard.push(f);
    }
    // No frame left: the child's root table does not fit (the table takes no kernel
    // stack for a clone child: the arch gives it one).
    assert_eq!(
        t.clone_thread(tid, CloneOptions::process()),
        Err(ProcessError::OutOfMemory)
    );
    assert_eq!(frames.free(), 0);
    assert_eq!(t.process_count(), 1);
    assert_eq!(t.thread_count(), 1);
}

#[test]
fn context_addresses_are_stable() {
    let (mut t, mut frames) = table(2);
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    let p = t.thread_mut(tid).unwrap().context_ptr();
    for _ in 0..200 {
        t.create_thread(pid, task()).unwrap();
    }
    assert_eq!(t.thread_mut(tid).unwrap().context_ptr(), p);
}

#[test]
fn ids_wrap_and_skip_ids_in_use() {
    let (mut t, mut frames) = table(2);
    let (pid, _) = process_with_thread(&mut t, &mut frames);
    // Use up the ids below PID_MAX, then free them again.
    let used: Vec<Tid> = (3..PID_MAX)
        .map(|_| t.create_thread(pid, task()).unwrap())
        .collect();
    assert_eq!(used.last(), Some(&Tid(PID_MAX - 1)));
    for tid in used {
        t.exit_thread(tid, 0).unwrap();
        t.reap_thread(tid).unwrap();
    }
    let a = t.create_thread(pid, task()).unwrap();
    let b = t.create_thread(pid, task()).unwrap();
    assert_eq!(a, Tid(PID_MAX));
    assert_eq!(b, Tid(3), "1 and 2 are taken");
}

#[test]
fn priorities_order_and_raise() {
    assert!(Priority::High > Priority::Normal && Priority::Normal > Priority::Low);
    assert_eq!(Priority::Low.raised(), Some(Priority::Normal));
    assert_eq!(Priority::High.raised(), None);
    assert_eq!(Priority::from_level(3), None);
}

#[test]
fn global_facade_creates_and_reports() {
    let _g = GLOBAL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // A root frame from private RAM: this test never exits the process.
    let mut frames = TestFrames::new(1);
    let root = frames.alloc_frame().unwrap();
    let pid = create_process("facade".into(), root).unwrap();
    let tid = create_thread(
        pid,
        Priority::High,
        VirtAddr::new(0x40_0000),
        VirtAddr::new(0x9000),
        None,
    )
    .unwrap();
    assert_eq!(thread_priority(tid), Some(Priority::High));
    assert_eq!(process_of(tid), Some(pid));
    assert_eq!(thread_state(tid), Ok(ThreadState::Ready));
    assert_eq!(
        create_thread(
            Pid(u32::MAX),
            Priority::Low,
            VirtAddr::new(0),
            VirtAddr::new(0),
            None
        ),
        Err(ProcessError::NoSuchProcess(Pid(u32::MAX)))
    );
    assert_eq!(
        thread_state(Tid(u32::MAX)),
        Err(ProcessError::NoSuchThread(Tid(u32::MAX)))
    );
}

#[test]
fn global_switch_info_and_user_faults() {
    use crate::memory::address_space::{Access, Fault};
    let _g = GLOBAL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut frames = TestFrames::new(1);
    let root = frames.alloc_frame().unwrap();
    let pid = create_process("switch".into(), root).unwrap();
    let tid = create_thread(
        pid,
        Priority::Normal,
        VirtAddr::new(0x40_0000),
        VirtAddr::new(0x9008),
        None,
    )
    .unwrap();
    let info = switch_info(tid).unwrap();
    assert_eq!(info.root, root);
    assert_eq!(info.kernel_stack_top, VirtAddr::new(0x9008));
    assert_eq!(
        info.context,
        PROCESS_TABLE.lock().thread_mut(tid).unwrap().context_ptr()
    );
    assert_eq!(switch_info(Tid(u32::MAX)), None);
    scheduler::init_scheduler();
    assert_eq!(
        handle_user_fault(0x1000, Access::Read),
        Err(Fault::Unmapped(0x1000)),
        "no current thread"
    );
    scheduler::add_thread(tid).unwrap();
    assert_eq!(scheduler::schedule(), Some(tid));
    let a = 0x1000_0000;
    let req = MapRequest::new(4096, Prot::READ).at(Placement::Fixed(a));
    PROCESS_TABLE
        .lock()
        .space_mut(pid)
        .unwrap()
        .mmap(req)
        .unwrap();
    assert_eq!(
        handle_user_fault(a + 0x1000, Access::Read),
        Err(Fault::Unmapped(a + 0x1000))
    );
    assert_eq!(
        handle_user_fault(a, Access::Write),
        Err(Fault::AccessDenied(a))
    );
    assert_eq!(
        handle_user_fault(1 << 63, Access::Read),
        Err(Fault::KernelAddress(1 << 63))
    );
    scheduler::init_scheduler();
}

#[test]
fn new_spaces_share_the_kernel_half() {
    use crate::memory::paging::{Page, PageFlags, PageTable, PageTableMapper};
    let (mut t, mut frames) = table(4);
    let start = frames.free();
    let mut kernel = PageTable::<UserFormat, TestFrames>::with_source(
        frames.alloc_frame().unwrap(),
        frames.clone(),
    );
    kernel.populate_upper_half().unwrap();
    t.set_kernel_root(kernel.root());
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    let child = Pid(t.clone_thread(tid, CloneOptions::process()).unwrap().0);
    let kva = VirtAddr::new(0xffff_8000_0010_0000);
    let kframe = frames.alloc_frame().unwrap();
    kernel
        .map_to(
            Page::containing_address(kva),
            kframe,
            PageFlags::PRESENT | PageFlags::WRITABLE,
        )
        .unwrap()
        .ignore();
    for p in [pid, child] {
        let root = t.space_mut(p).unwrap().root();
        let view = PageTable::<UserFormat, TestFrames>::from_root(root, frames.clone());
        assert_eq!(
            view.translate(kva),
            Some(kframe.start_address),
            "mapped after the space was made"
        );
    }
    t.exit_process(Pid(child.0), 0).unwrap();
    t.exit_process(pid, 0).unwrap();
    kernel
        .unmap(Page::containing_address(kva))
        .unwrap()
        .1
        .ignore();
    frames.free_frame(kframe).unwrap();
    let kroot = kernel.destroy();
    frames.free_frame(kroot).unwrap();
    assert_eq!(
        frames.free(),
        start,
        "borrowed kernel tables were not freed by the processes"
    );
}

/// A fork's copy made before the call took the table (`task::fork_like`): the
/// child gets that copy (isolated from the parent), and a copy the call did not use
/// (it failed, or it ended) is destroyed with every frame back.
#[test]
fn staged_fork_copy_is_the_childs_or_given_back() {
    let (mut t, mut frames) = table(4);
    let start = frames.free();
    let (pid, tid) = process_with_thread(&mut t, &mut frames);
    let a = 0x1000_0000;
    let mut s = t.space_mut(pid).unwrap();
    s.mmap(MapRequest::new(4 * 4096, Prot::READ | Prot::WRITE).at(Placement::Fixed(a)))
        .unwrap();
    s.copy_to_user(a, &[5; 4 * 4096]).unwrap();
    drop(s);
    let with_parent = frames.free();

    // Staged, then used by the fork: no copy is made under the table.
    let stage = |t: &mut Table| {
        let (cell, mut source) = t.fork_source(tid).unwrap();
        let root = source.alloc_frame().unwrap();
        let copy = cell.lock_live().unwrap().fork(root).unwrap();
        t.stage_fork_copy(tid, copy).unwrap();
    };
    stage(&mut t);
    let staged = frames.free();
    assert!(staged < with_parent, "the copy has its own tables");
    let child = Pid(t.clone_thread(tid, CloneOptions::process()).unwrap().0);
    assert_eq!(frames.free(), staged, "the child got the staged copy");
    assert_eq!(t.thread(tid).unwrap().call.forked_space, None);
    t.space_mut(child).unwrap().copy_to_user(a, &[9]).unwrap();
    let mut b = [0u8; 1];
    t.space_mut(pid).unwrap().copy_from_user(a, &mut b).unwrap();
    assert_eq!(b, [5], "the staged copy is copy-on-write");
    t.exit_process(child, 0).unwrap();
    assert_eq!(t.wait_child(pid, Some(child)), Ok(Some((child, 0))));
    assert_eq!(frames.free(), with_parent);

    // Staged, then the call failed: discarded, everything back.
    stage(&mut t);
    t.discard_fork_copy(tid);
    assert_eq!(frames.free(), with_parent);
    assert_eq!(t.thread(tid).unwrap().call.forked_space, None);

    // Staged twice (a call that never used the first): the first is destroyed.
    stage(&mut t);
    stage(&mut t);
    assert_eq!(frames.free(), staged);
    // At the process limit the source refuses before any copy.
    t.set_max_processes(1);
    assert_eq!(
        t.fork_source(tid).err(),
        Some(ProcessError::TooManyProcesses)
    );
    t.set_max_processes(64);
    // A thread that goes with a staged copy gives it back too.
    t.exit_process(pid, 0).unwrap();
    assert_eq!(t.process_count(), 0);
    assert_eq!(frames.free(), start);
}

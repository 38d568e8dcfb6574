//! clone: a new process or thread, as Linux's flags say.
//!
//! Supported: `CLONE_VM`, `CLONE_THREAD`, `CLONE_SIGHAND`, `CLONE_FS`, `CLONE_FILES`,
//! `CLONE_SYSVSEM`, `CLONE_IO` (a new process shares its fd table, dispositions and
//! working directory with the caller under `CLONE_FILES`, `CLONE_SIGHAND`,
//! `CLONE_FS`, and gets copies otherwise; a new thread shares its process's),
//! `CLONE_SETTLS`, `CLONE_PARENT_SETTID`, `CLONE_CHILD_SETTID`,
//! `CLONE_CHILD_CLEARTID`, `CLONE_VFORK` (the caller sleeps until the child exits),
//! `CLONE_DETACHED`/`CLONE_UNTRACED`/`CLONE_PTRACE` (ignored, as Linux ignores the
//! first and we have no tracer). Namespaces give EPERM (we grant no privilege);
//! `CLONE_PIDFD` and `CLONE_PARENT` give EINVAL (not supported). On x86_64 a
//! `CLONE_SETTLS` pointer outside user space gives EPERM, as Linux's FS-base check
//! does, and nothing is created.

use super::user_mem::UserPtr;
use super::{Errno, Sys, EINVAL, EPERM};
use crate::memory::frame_allocator::FrameSource;
use crate::process::{CloneOptions, MemoryMode, Shared, Tid};

/// Low byte: the signal sent to the parent when the child exits.
pub const CSIGNAL: usize = 0xff;
/// Share the address space.
pub const CLONE_VM: usize = 0x100;
/// Share filesystem information.
pub const CLONE_FS: usize = 0x200;
/// Share the file descriptor table.
pub const CLONE_FILES: usize = 0x400;
/// Share signal handlers.
pub const CLONE_SIGHAND: usize = 0x800;
/// Return a pidfd (unsupported).
pub const CLONE_PIDFD: usize = 0x1000;
/// Continue tracing (ignored).
pub const CLONE_PTRACE: usize = 0x2000;
/// Suspend the parent until the child execs or exits.
pub const CLONE_VFORK: usize = 0x4000;
/// Same parent as the caller (unsupported).
pub const CLONE_PARENT: usize = 0x8000;
/// Same thread group: a new thread.
pub const CLONE_THREAD: usize = 0x10000;
/// New mount namespace.
pub const CLONE_NEWNS: usize = 0x20000;
/// Share System V semaphore undo lists.
pub const CLONE_SYSVSEM: usize = 0x40000;
/// Set the thread pointer from the `tls` argument.
pub const CLONE_SETTLS: usize = 0x80000;
/// Store the child's tid at `parent_tid` in the parent's memory.
pub const CLONE_PARENT_SETTID: usize = 0x10_0000;
/// Zero `child_tid` in the child's memory at its exit and wake a futex there.
pub const CLONE_CHILD_CLEARTID: usize = 0x20_0000;
/// Ignored (historic).
pub const CLONE_DETACHED: usize = 0x40_0000;
/// Ignored (no tracer).
pub const CLONE_UNTRACED: usize = 0x80_0000;
/// Store the child's tid at `child_tid` in the child's memory.
pub const CLONE_CHILD_SETTID: usize = 0x100_0000;
/// All namespace flags.
pub const CLONE_NEW_ANY: usize =
    CLONE_NEWNS | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// clone(flags, stack, parent_tid, child_tid, tls) (the x86_64 argument order).
/// Returns the child's tid (its pid when a process is created).
pub fn sys_clone<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    flags: usize,
    stack: usize,
    parent_tid: usize,
    child_tid: usize,
    tls: usize,
) -> Result<usize, Errno> {
    if let Some(answer) = super::fork::vfork_wait(sys) {
        return answer; // a re-issued CLONE_VFORK: the wait for the child
    }
    let flags = flags & 0xffff_ffff; // the flags argument is an unsigned long, but only 32 bits mean anything
    check_flags(flags)?;
    if flags & CLONE_SETTLS != 0 {
        check_tls(tls as u64)?;
    }
    let opts = options(flags, stack, child_tid, tls);
    let child = sys.table.clone_thread(sys.tid, opts)?;
    sys.admit(child)?;
    store_tids(sys, flags, child, parent_tid, child_tid);
    if flags & CLONE_VFORK != 0 {
        return super::fork::suspend_for_vfork(sys, child);
    }
    Ok(child.0 as usize)
}

/// Linux's consistency rules, in Linux's order.
fn check_flags(flags: usize) -> Result<(), Errno> {
    let has = |f: usize| flags & f != 0;
    if (has(CLONE_NEWNS) || has(0x1000_0000)) && has(CLONE_FS) {
        return Err(EINVAL);
    }
    if has(CLONE_THREAD) && !has(CLONE_SIGHAND) {
        return Err(EINVAL);
    }
    if has(CLONE_SIGHAND) && !has(CLONE_VM) {
        return Err(EINVAL);
    }
    if has(CLONE_PIDFD) || has(CLONE_PARENT) {
        return Err(EINVAL);
    }
    if has(CLONE_NEW_ANY) {
        return Err(EPERM);
    }
    Ok(())
}

/// x86_64: the thread pointer is the FS base, which Linux only takes below
/// `TASK_SIZE` (a kernel or non-canonical address would fault or reach the kernel
/// half): EPERM otherwise. The host tests run the x86_64 rules.
#[cfg(not(target_arch = "aarch64"))]
fn check_tls(tls: u64) -> Result<(), Errno> {
    match tls < crate::memory::address_space::TASK_SIZE {
        true => Ok(()),
        false => Err(EPERM),
    }
}

/// aarch64: TPIDR_EL0 holds any value, and Linux takes any.
#[cfg(target_arch = "aarch64")]
fn check_tls(_tls: u64) -> Result<(), Errno> {
    Ok(())
}

fn options(flags: usize, stack: usize, child_tid: usize, tls: usize) -> CloneOptions {
    let mut opts = match (flags & CLONE_THREAD != 0, flags & CLONE_VM != 0) {
        (true, _) => CloneOptions::thread(),
        (false, true) => CloneOptions::process().memory(MemoryMode::Share),
        (false, false) => CloneOptions::process(),
    };
    let mut share = Shared::empty();
    share.set(Shared::FILES, flags & CLONE_FILES != 0);
    share.set(Shared::SIGNAL_HANDLERS, flags & CLONE_SIGHAND != 0);
    share.set(Shared::FS, flags & CLONE_FS != 0);
    opts = opts.share(share);
    if stack != 0 {
        opts = opts.stack(stack as u64);
    }
    if flags & CLONE_SETTLS != 0 {
        opts = opts.tls(tls as u64);
    }
    if flags & CLONE_CHILD_CLEARTID != 0 {
        opts = opts.clear_child_tid(child_tid as u64);
    }
    opts
}

/// CLONE_PARENT_SETTID / CLONE_CHILD_SETTID. Like Linux, a bad address is ignored.
fn store_tids<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    flags: usize,
    child: Tid,
    parent_tid: usize,
    child_tid: usize,
) {
    if flags & CLONE_PARENT_SETTID != 0 {
        if let Ok(mut space) = sys.space() {
            let _ = UserPtr::<u32>::new(parent_tid).write(&mut space, &child.0);
        }
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        let pid = sys.table.thread(child).map(|t| t.pid);
        if let Some(mut space) = pid.and_then(|p| sys.table.space_mut(p).ok()) {
            let _ = UserPtr::<u32>::new(child_tid).write(&mut space, &child.0);
        }
    }
}

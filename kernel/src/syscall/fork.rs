//! fork and vfork: a new process with a copy-on-write copy of the caller's address
//! space (fork) or sharing it while the caller waits (vfork: until the child execs
//! or exits, on a wait queue of the child, see [`super::blocking`]).

use super::{Errno, Sys};
use crate::memory::frame_allocator::FrameSource;
use crate::process::wait_queue::WaitQueue;
use crate::process::{CloneOptions, MemoryMode, Tid};
use alloc::sync::Arc;

/// Returns the child's pid to the parent; the child (tid == pid) returns 0 (its saved
/// user return value) once it runs. EAGAIN at the process limit, ENOMEM without memory.
pub fn sys_fork<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    let child = sys.table.clone_thread(sys.tid, CloneOptions::process())?;
    sys.admit(child)?;
    Ok(child.0 as usize)
}

/// Like fork, but the child borrows the caller's address space and the caller
/// waits until the child execs or exits. The first issue makes the child and waits
/// (`ERESTARTSYS`, the child recorded in the call); the re-issued call answers the
/// child's pid once the child has let the parent go. ESRCH if the caller is not the
/// running thread.
pub fn sys_vfork<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    if let Some(answer) = vfork_wait(sys) {
        return answer;
    }
    sys.caller_must_be_current()?;
    let opts = CloneOptions::process().memory(MemoryMode::Share);
    let child = sys.table.clone_thread(sys.tid, opts)?;
    sys.admit(child)?;
    suspend_for_vfork(sys, child)
}

/// Makes the caller wait (on a queue of the child, Linux's `vfork_done`) until
/// `child` execs or exits: answers `ERESTARTSYS` (the call is re-issued, see
/// [`vfork_wait`]). The wait is not ended by signals (only by death, as Linux's
/// killable wait): they are delivered once the vfork returns.
pub(super) fn suspend_for_vfork<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    child: Tid,
) -> Result<usize, Errno> {
    let done = Arc::new(WaitQueue::new());
    if let Some(c) = sys.table.thread_mut(child) {
        c.vfork_parent = Some(sys.tid);
        c.vfork_done = Some(done.clone());
    }
    if let Some(p) = sys.table.thread_mut(sys.tid) {
        p.call.vfork_child = Some(child);
    }
    sys.wait_on(&done)?;
    sys.block()
}

/// For a re-issued vfork (or clone with CLONE_VFORK): the child's pid once it has
/// let the caller go, or another wait; `None` for a first issue.
pub(super) fn vfork_wait<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
) -> Option<Result<usize, Errno>> {
    let child = sys.table.thread(sys.tid)?.call.vfork_child?;
    let waiting = sys
        .table
        .thread(child)
        .is_some_and(|c| c.vfork_parent == Some(sys.tid));
    Some(match waiting {
        true => sys.block(),
        false => Ok(child.0 as usize),
    })
}

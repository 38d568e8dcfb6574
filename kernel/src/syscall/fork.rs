//! fork and vfork: a new process with a copy-on-write copy of the caller's address
//! space (fork) or sharing it while the caller is suspended (vfork).

use super::{Errno, Sys};
use crate::memory::frame_allocator::FrameSource;
use crate::process::{CloneOptions, MemoryMode, Tid, Wait};

/// Returns the child's pid to the parent; the child (tid == pid) returns 0 (its saved
/// user return value) once it runs. EAGAIN at the process limit, ENOMEM without memory.
pub fn sys_fork<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    let child = sys.table.clone_thread(sys.tid, CloneOptions::process())?;
    sys.admit(child)?;
    Ok(child.0 as usize)
}

/// Like fork, but the child borrows the caller's address space and the caller is
/// suspended until the child exits. Returns the child's pid (delivered when the
/// caller resumes). ESRCH if the caller is not the running thread.
pub fn sys_vfork<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    sys.caller_must_be_current()?;
    let opts = CloneOptions::process().memory(MemoryMode::Share);
    let child = sys.table.clone_thread(sys.tid, opts)?;
    sys.admit(child)?;
    suspend_for_vfork(sys, child);
    Ok(child.0 as usize)
}

/// Blocks the calling (running) thread until `child` exits.
pub(super) fn suspend_for_vfork<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, child: Tid) {
    if sys.caller_must_be_current().is_err() {
        return;
    }
    if let Some(c) = sys.table.thread_mut(child) {
        c.vfork_parent = Some(sys.tid);
    }
    if let Some(p) = sys.table.thread_mut(sys.tid) {
        p.waiting = Some(Wait::VforkChild(child));
    }
    let _ = sys.sched.block_current();
}

//! exit and exit_group.
//!
//! On bare metal these never return to the caller: the arch entry sees that the
//! calling thread has left the scheduler and switches away (after switching to the
//! kernel's own page table, since the process's tables are gone).

use super::{Errno, Sys};
use crate::memory::frame_allocator::FrameSource;
use crate::process::{Pid, Tid};

/// Ends the calling thread; the last thread ends the process.
pub fn sys_exit<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, code: usize) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    clear_child_tid(sys);
    let gone = sys.table.exit_thread(sys.tid, (code & 0xff) as i32)?;
    finish(sys, pid, &gone);
    Ok(0)
}

/// Ends every thread of the calling process.
pub fn sys_exit_group<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    code: usize,
) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    let gone = sys.table.exit_process(pid, (code & 0xff) as i32)?;
    finish(sys, pid, &gone);
    Ok(0)
}

/// CLONE_CHILD_CLEARTID / set_tid_address: zero the u32 there (errors ignored, as
/// on Linux). The futex wake comes with futex support.
fn clear_child_tid<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) {
    let Some(addr) = sys.table.thread(sys.tid).and_then(|t| t.clear_child_tid) else {
        return;
    };
    if let Ok(space) = sys.space() {
        let _ = space.copy_to_user(addr, &0u32.to_le_bytes());
    }
}

/// Takes the exited threads off the scheduler and wakes the parent's threads blocked
/// in wait4 (they re-check their children).
fn finish<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid, gone: &[Tid]) {
    for t in gone {
        let _ = sys.sched.remove(*t);
    }
    let parent = sys.table.process(pid).and_then(|p| p.parent);
    let waiters: alloc::vec::Vec<Tid> = parent
        .and_then(|pp| sys.table.process(pp))
        .map(|p| p.threads.iter().copied().collect())
        .unwrap_or_default();
    for t in waiters {
        let _ = sys.sched.unblock(t);
    }
}

//! exit and exit_group.
//!
//! On bare metal these never return to the caller: the arch entry sees that the
//! calling thread has left the scheduler and switches away (after switching to the
//! kernel's own page table, since the process's tables are gone).

use super::user_mem::UserPtr;
use super::{Errno, Sys};
use crate::memory::frame_allocator::FrameSource;
use crate::process::apply_exit;

/// Ends the calling thread; the last thread ends the process.
pub fn sys_exit<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, code: usize) -> Result<usize, Errno> {
    clear_child_tid(sys);
    let pid = sys.pid()?;
    let report = sys.table.exit_thread(sys.tid, (code & 0xff) as i32)?;
    apply_exit(&mut sys.sched, &report);
    // The others may all be stopped already: the stop is complete now.
    super::signal::report_stop_if_complete(sys, pid);
    Ok(0)
}

/// Ends every thread of the calling process.
pub fn sys_exit_group<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    code: usize,
) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    let report = sys.table.exit_process(pid, (code & 0xff) as i32)?;
    apply_exit(&mut sys.sched, &report);
    Ok(0)
}

/// CLONE_CHILD_CLEARTID / set_tid_address: zero the u32 there (errors ignored, as
/// on Linux) and wake one futex waiter on it (pthread_join).
fn clear_child_tid<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) {
    let Some(addr) = sys.table.thread(sys.tid).and_then(|t| t.clear_child_tid) else {
        return;
    };
    if let Ok(mut space) = sys.space() {
        let _ = UserPtr::<u32>::new(addr as usize).write(&mut space, &0);
    }
    super::futex::wake(sys, addr, 1);
}

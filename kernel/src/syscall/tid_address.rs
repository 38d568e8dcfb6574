//! set_tid_address.

use super::{Errno, Sys, ESRCH};
use crate::memory::frame_allocator::FrameSource;

/// Records `addr` as the caller's clear-child-tid address (zeroed when it exits);
/// returns the caller's tid. Any address is accepted, as on Linux.
pub fn sys_set_tid_address<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
) -> Result<usize, Errno> {
    let t = sys.table.thread_mut(sys.tid).ok_or(ESRCH)?;
    t.clear_child_tid = (addr != 0).then_some(addr as u64);
    Ok(sys.tid.0 as usize)
}

//! getpid, getppid, gettid.

use super::{Errno, Sys};
use crate::memory::frame_allocator::FrameSource;

/// The calling process's id (the thread-group id).
pub fn sys_getpid<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    Ok(sys.pid()?.0 as usize)
}

/// The parent's pid, 0 if the caller has none.
pub fn sys_getppid<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    Ok(sys
        .table
        .process(pid)
        .and_then(|p| p.parent)
        .map_or(0, |p| p.0 as usize))
}

/// The calling thread's id.
pub fn sys_gettid<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    Ok(sys.tid.0 as usize)
}

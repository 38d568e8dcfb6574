//! fork: a new process with a copy-on-write copy of the caller's address space.

use super::{Errno, Sys};
use crate::memory::frame_allocator::FrameSource;
use crate::process::CloneOptions;

/// Returns the child's pid to the parent; the child (tid == pid) returns 0 (its saved
/// user return value) once it runs. EAGAIN at the process limit, ENOMEM without memory.
pub fn sys_fork<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    let child = sys.table.clone_thread(sys.tid, CloneOptions::process())?;
    sys.admit(child)?;
    Ok(child.0 as usize)
}

//! sched_yield.

use super::{Errno, Sys};
use crate::memory::frame_allocator::FrameSource;

/// The caller goes to the back of its run queue; always succeeds.
pub fn sys_sched_yield<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    sys.sched.yield_now();
    Ok(0)
}

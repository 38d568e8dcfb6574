//! brk: the program break, a private read-write region that grows and shrinks
//! above the loaded image.
//!
//! The break is the `brk` field of [`crate::process::Process`] (`start`, `current`):
//! exec sets the start ([`Brk::at`]), fork copies the parent's with the process. Growth maps
//! anonymous memory with `FixedNoReplace` (so it never overwrites another mapping),
//! shrinking unmaps whole pages. Like Linux, a refused request returns the old
//! break, and a request below the start, or growth beyond `RLIMIT_AS`, is refused.

use super::rlimit::check_address_space;
use super::{Errno, Sys};
use crate::memory::address_space::{MapRequest, Placement, Prot, TASK_SIZE};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::PAGE_SIZE;

/// Largest break area (Linux's overcommit heuristic refuses what exceeds RAM).
pub const MAX_BRK_BYTES: u64 = 1 << 30;

/// A process's program break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brk {
    /// Where the break area starts (just above the loaded image).
    pub start: u64,
    /// The current break.
    pub current: u64,
}

impl Brk {
    /// An empty break area at `start` (exec).
    pub fn at(start: u64) -> Brk {
        Brk {
            start,
            current: start,
        }
    }
}

fn page_up(a: u64) -> u64 {
    a.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// brk(addr): returns the new break, or the current one if `addr` is refused.
pub fn sys_brk<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, addr: usize) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    let Some(b) = sys.table.process(pid).and_then(|p| p.brk) else {
        return Ok(0);
    };
    let addr = addr as u64;
    if addr < b.start || addr > TASK_SIZE || addr - b.start > MAX_BRK_BYTES {
        return Ok(b.current as usize);
    }
    let (old_end, new_end) = (page_up(b.current), page_up(addr));
    if new_end > old_end && check_address_space(sys, new_end - old_end, 0..0).is_err() {
        return Ok(b.current as usize); // RLIMIT_AS
    }
    let growth = new_end.saturating_sub(old_end) / PAGE_SIZE;
    if super::overcommit::check_commit(sys, growth).is_err() {
        return Ok(b.current as usize); // more than RAM at once
    }
    let mut space = sys.space()?;
    if new_end > old_end {
        let req = MapRequest::new(new_end - old_end, Prot::READ | Prot::WRITE)
            .at(Placement::FixedNoReplace(old_end));
        if space.mmap(req).is_err() {
            return Ok(b.current as usize);
        }
    } else if new_end < old_end && space.munmap(new_end, old_end - new_end).is_err() {
        return Ok(b.current as usize);
    }
    drop(space);
    if let Some(p) = sys.table.process_mut(pid) {
        p.brk = Some(Brk { current: addr, ..b });
    }
    Ok(addr as usize)
}

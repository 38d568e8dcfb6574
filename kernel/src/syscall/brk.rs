//! brk: the program break, a private read-write region that grows and shrinks
//! above the loaded image.
//!
//! The break of each process is kept here by pid (`start`, `current`); exec sets the
//! start ([`set_start`]), fork copies the parent's ([`inherit`]). Growth maps
//! anonymous memory with `FixedNoReplace` (so it never overwrites another mapping),
//! shrinking unmaps whole pages. Like Linux, a refused request returns the old
//! break, and a request below the start is refused.

use super::{Errno, Sys};
use crate::memory::address_space::{MapRequest, Placement, Prot, TASK_SIZE};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::PAGE_SIZE;
use crate::process::Pid;
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;

/// Largest break area (Linux's overcommit heuristic refuses what exceeds RAM).
pub const MAX_BRK_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy)]
struct Brk {
    start: u64,
    current: u64,
}

static BREAKS: IrqMutex<BTreeMap<u32, Brk>> = IrqMutex::new(BTreeMap::new());

/// Exec: the break of `pid` starts (empty) at `start`.
pub fn set_start(pid: Pid, start: u64) {
    let b = Brk {
        start,
        current: start,
    };
    BREAKS.lock().insert(pid.0, b);
}

/// Fork: `child` starts with `parent`'s break.
pub fn inherit(parent: Pid, child: Pid) {
    let mut breaks = BREAKS.lock();
    if let Some(b) = breaks.get(&parent.0).copied() {
        breaks.insert(child.0, b);
    }
}

/// Forgets the break of a process that is gone.
pub fn forget(pid: Pid) {
    BREAKS.lock().remove(&pid.0);
}

/// Forgets the breaks of processes `alive` says are gone.
pub fn retain(alive: impl Fn(Pid) -> bool) {
    BREAKS.lock().retain(|&p, _| alive(Pid(p)));
}

fn page_up(a: u64) -> u64 {
    a.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// brk(addr): returns the new break, or the current one if `addr` is refused.
pub fn sys_brk<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, addr: usize) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    let Some(b) = BREAKS.lock().get(&pid.0).copied() else {
        return Ok(0);
    };
    let addr = addr as u64;
    if addr < b.start || addr > TASK_SIZE || addr - b.start > MAX_BRK_BYTES {
        return Ok(b.current as usize);
    }
    let (old_end, new_end) = (page_up(b.current), page_up(addr));
    let space = sys.space()?;
    if new_end > old_end {
        let req = MapRequest::new(new_end - old_end, Prot::READ | Prot::WRITE)
            .at(Placement::FixedNoReplace(old_end));
        if space.mmap(req).is_err() {
            return Ok(b.current as usize);
        }
    } else if new_end < old_end && space.munmap(new_end, old_end - new_end).is_err() {
        return Ok(b.current as usize);
    }
    let new = Brk { current: addr, ..b };
    BREAKS.lock().insert(pid.0, new);
    Ok(addr as usize)
}

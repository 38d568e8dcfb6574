//! File descriptors: while the kernel has no files, a process's fd table is which of
//! the console fds 0, 1 and 2 are still open. Fork copies it, threads share it
//! (it is kept by pid), close removes an fd (EBADF if it was not open).

use super::{Errno, Sys, EBADF};
use crate::memory::frame_allocator::FrameSource;
use crate::process::Pid;
use crate::sync::IrqMutex;
use alloc::collections::BTreeMap;

/// close.
pub const SYS_CLOSE: usize = 3;
const ALL_OPEN: u8 = 0b111;

/// Open-fd masks of processes that closed something (absent: all three open).
static TABLES: IrqMutex<BTreeMap<u32, u8>> = IrqMutex::new(BTreeMap::new());

/// Whether `fd` is open in `pid`.
pub fn is_open(pid: Pid, fd: usize) -> bool {
    fd < 3 && TABLES.lock().get(&pid.0).copied().unwrap_or(ALL_OPEN) & (1 << fd) != 0
}

/// Fork: `child` gets a copy of `parent`'s table.
pub fn inherit(parent: Pid, child: Pid) {
    let mut t = TABLES.lock();
    match t.get(&parent.0).copied() {
        Some(mask) => t.insert(child.0, mask),
        None => t.remove(&child.0),
    };
}

/// A new program in a fresh process: all three open.
pub fn reset(pid: Pid) {
    TABLES.lock().remove(&pid.0);
}

/// Forgets the tables of processes `alive` says are gone.
pub fn retain(alive: impl Fn(Pid) -> bool) {
    TABLES.lock().retain(|&p, _| alive(Pid(p)));
}

/// close(fd).
pub fn sys_close<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, fd: usize) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    if !is_open(pid, fd) {
        return Err(EBADF);
    }
    let mut t = TABLES.lock();
    let mask = t.get(&pid.0).copied().unwrap_or(ALL_OPEN);
    t.insert(pid.0, mask & !(1 << fd));
    Ok(0)
}

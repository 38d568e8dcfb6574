//! wait4: reap a zombie child.

use super::user_mem::UserPtr;
use super::{Errno, Sys, EINVAL};
use crate::memory::frame_allocator::FrameSource;
use crate::process::Pid;

/// Return immediately if no child has exited.
pub const WNOHANG: usize = 1;
const WUNTRACED: usize = 2;
const WCONTINUED: usize = 8;
const WNOTHREAD: usize = 0x2000_0000;
const WALL: usize = 0x4000_0000;
const WCLONE: usize = 0x8000_0000;

/// wait4(pid, status, options, rusage): `pid > 0` waits for that child, anything else
/// for any child (there are no process groups). Writes `status << 8` (a normal exit)
/// to `status` if it is not null. Waits on the process's `child_exit` queue unless
/// WNOHANG.
pub fn sys_wait4<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
    status: usize,
    options: usize,
    _rusage: usize,
) -> Result<usize, Errno> {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(EINVAL);
    }
    let which = match pid as i32 {
        p if p > 0 => Some(Pid(p as u32)),
        _ => None,
    };
    let me = sys.pid()?;
    // No child ready: join the queue children's exits wake, look once more (a child
    // that ended in between is not missed), then block.
    let mut joined = false;
    loop {
        match sys.table.wait_child(me, which)? {
            Some((child, code)) => {
                write_status(sys, status, code)?;
                return Ok(child.0 as usize);
            }
            None if options & WNOHANG != 0 => return Ok(0),
            None if !joined => {
                let queue = sys.process()?.child_exit.clone();
                sys.wait_on(&queue)?;
                joined = true;
            }
            None => return sys.block(),
        }
    }
}

fn write_status<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    code: i32,
) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    UserPtr::<i32>::new(addr).write(sys.space()?, &super::signal::wait_status(code))
}

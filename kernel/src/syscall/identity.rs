//! Who a process is: its user and group ids (everyone is root: getuid and friends
//! answer 0 in `dispatch`), its supplementary groups (none), and its name as
//! prctl sets and reads it.
//!
//! prctl: PR_SET_NAME and PR_GET_NAME (the name `/proc/PID/comm`, `stat` and
//! `status` show; at most 15 bytes), the flags programs set at start that change
//! nothing here (PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS,
//! PR_SET_CHILD_SUBREAPER, PR_SET_KEEPCAPS) and their readers; anything else EINVAL.

use super::user_mem::{read_cstr, UserSlice};
use super::{Errno, Sys, EINVAL, ESRCH};
use crate::memory::frame_allocator::FrameSource;

const PR_SET_PDEATHSIG: usize = 1;
const PR_GET_PDEATHSIG: usize = 2;
const PR_GET_DUMPABLE: usize = 3;
const PR_SET_DUMPABLE: usize = 4;
const PR_GET_KEEPCAPS: usize = 7;
const PR_SET_KEEPCAPS: usize = 8;
const PR_SET_NAME: usize = 15;
const PR_GET_NAME: usize = 16;
const PR_SET_CHILD_SUBREAPER: usize = 36;
const PR_SET_NO_NEW_PRIVS: usize = 38;
const PR_GET_NO_NEW_PRIVS: usize = 39;
/// Bytes of a task's name, its NUL included (Linux's TASK_COMM_LEN).
const COMM_LEN: usize = 16;

/// getgroups(size, list): no supplementary groups.
pub fn sys_getgroups<A: FrameSource + Clone>(
    _sys: &mut Sys<'_, A>,
    size: usize,
) -> Result<usize, Errno> {
    match (size as i32) < 0 {
        true => Err(EINVAL),
        false => Ok(0),
    }
}

/// setgroups(size, list): root may set them; none are kept (nothing checks them).
pub fn sys_setgroups<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    size: usize,
    list: usize,
) -> Result<usize, Errno> {
    if size > 65_536 {
        return Err(EINVAL);
    }
    // The list is read (EFAULT for a bad one) and dropped: there are no groups.
    let mut gid = [0u8; 4];
    for i in 0..size {
        super::user_mem::UserSlice::new(list + 4 * i, 4).read(&mut *sys.space()?, &mut gid)?;
    }
    Ok(0)
}

/// prctl(option, arg2, ...): see the module documentation.
pub fn sys_prctl<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    option: usize,
    arg2: usize,
) -> Result<usize, Errno> {
    match option {
        PR_SET_NAME => {
            let name = read_cstr(&mut *sys.space()?, arg2, COMM_LEN - 1, EINVAL);
            let name = name.or_else(|e| {
                // A name longer than the buffer Linux copies: its first 15 bytes.
                let mut raw = [0u8; COMM_LEN - 1];
                UserSlice::new(arg2, raw.len())
                    .read(&mut *sys.space()?, &mut raw)
                    .map_err(|_| e)?;
                Ok::<_, Errno>(raw.to_vec())
            })?;
            let name = &name[..name.len().min(COMM_LEN - 1)];
            let pid = sys.pid()?;
            let p = sys.table.process_mut(pid).ok_or(ESRCH)?;
            p.name = alloc::string::String::from_utf8_lossy(name).into_owned();
            Ok(0)
        }
        PR_GET_NAME => {
            let mut out = [0u8; COMM_LEN];
            let name = sys.process()?.name.as_bytes();
            let n = name.len().min(COMM_LEN - 1);
            out[..n].copy_from_slice(&name[..n]);
            UserSlice::new(arg2, COMM_LEN).write(&mut *sys.space()?, &out)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG if arg2 > 64 => Err(EINVAL),
        PR_SET_PDEATHSIG | PR_SET_CHILD_SUBREAPER | PR_SET_NO_NEW_PRIVS => Ok(0),
        PR_SET_DUMPABLE if arg2 > 1 => Err(EINVAL),
        PR_SET_DUMPABLE => Ok(0),
        PR_GET_DUMPABLE => Ok(1),
        PR_GET_NO_NEW_PRIVS | PR_GET_KEEPCAPS => Ok(0),
        PR_SET_KEEPCAPS if arg2 > 1 => Err(EINVAL),
        PR_SET_KEEPCAPS => Ok(0),
        PR_GET_PDEATHSIG => {
            UserSlice::new(arg2, 4).write(&mut *sys.space()?, &0u32.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

//! Calls libc and Rust std make at startup that need no real machinery yet:
//! signal dispositions and masks (accepted, as there is no signal delivery: every
//! handler reads back as SIG_DFL, every mask as empty, the alternate stack as
//! disabled), poll on the console fds, and uname.

use super::{Errno, Sys, EFAULT, EINVAL};
use crate::memory::frame_allocator::FrameSource;

/// poll.
pub const SYS_POLL: usize = 7;
/// sigaltstack.
pub const SYS_SIGALTSTACK: usize = 131;

const SIGSET_SIZE: usize = 8;
const SIGKILL: usize = 9;
const SIGSTOP: usize = 19;
const SS_DISABLE: u32 = 2;
const POLLIN: u16 = 0x1;
const POLLOUT: u16 = 0x4;
const POLLNVAL: u16 = 0x20;
const MAX_POLL_FDS: usize = 1024;
const UTS_FIELD: usize = 65;

fn put<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    bytes: &[u8],
) -> Result<(), Errno> {
    sys.space()?
        .copy_to_user(addr as u64, bytes)
        .map_err(|_| EFAULT)
}

/// rt_sigaction(sig, act, oldact, sigsetsize): checks like Linux, reports SIG_DFL.
pub fn sys_rt_sigaction<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    sig: usize,
    act: usize,
    oldact: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    if sigsetsize != SIGSET_SIZE || !(1..=64).contains(&sig) {
        return Err(EINVAL);
    }
    if act != 0 && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(EINVAL);
    }
    if oldact != 0 {
        put(sys, oldact, &[0u8; 32])?;
    }
    Ok(0)
}

/// rt_sigprocmask(how, set, oldset, sigsetsize): the mask reads back empty.
pub fn sys_rt_sigprocmask<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    how: usize,
    set: usize,
    oldset: usize,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    if sigsetsize != SIGSET_SIZE || (set != 0 && how > 2) {
        return Err(EINVAL);
    }
    if oldset != 0 {
        put(sys, oldset, &[0u8; 8])?;
    }
    Ok(0)
}

/// sigaltstack(ss, old): the old stack reads back as disabled.
pub fn sys_sigaltstack<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    _ss: usize,
    old: usize,
) -> Result<usize, Errno> {
    if old != 0 {
        let mut b = [0u8; 24];
        b[8..12].copy_from_slice(&SS_DISABLE.to_le_bytes());
        put(sys, old, &b)?;
    }
    Ok(0)
}

/// The events a console fd is ready for (fd 0 is /dev/null: readable at EOF; 1 and
/// 2 a pipe: writable); closed and other fds are invalid.
fn console_events(fd: i32, events: u16, open: bool) -> u16 {
    match fd {
        f if f < 0 => 0,
        _ if !open => POLLNVAL,
        0 => events & POLLIN,
        1 | 2 => events & POLLOUT,
        _ => POLLNVAL,
    }
}

/// poll(fds, nfds, timeout): answers at once (the console never blocks); returns the
/// number of fds with events. With none ready and a timeout, still returns 0.
pub fn sys_poll<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fds: usize,
    nfds: usize,
    _timeout: usize,
) -> Result<usize, Errno> {
    if nfds > MAX_POLL_FDS {
        return Err(EINVAL);
    }
    let mut ready = 0;
    for i in 0..nfds {
        let at = fds as u64 + 8 * i as u64;
        let mut b = [0u8; 8];
        sys.space()?
            .copy_from_user(at, &mut b)
            .map_err(|_| EFAULT)?;
        let fd = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let open = fd >= 0 && super::fd::is_open(sys.pid()?, fd as usize);
        let revents = console_events(fd, u16::from_le_bytes([b[4], b[5]]), open);
        ready += usize::from(revents != 0);
        put(sys, at as usize + 6, &revents.to_le_bytes())?;
    }
    Ok(ready)
}

/// uname(buf): six NUL-padded 65-byte fields.
pub fn sys_uname<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, buf: usize) -> Result<usize, Errno> {
    let fields: [&[u8]; 6] = [
        b"Linux",
        b"localhost",
        b"6.1.0",
        b"#1 SMP",
        b"x86_64",
        b"(none)",
    ];
    let mut out = [0u8; 6 * UTS_FIELD];
    for (i, f) in fields.iter().enumerate() {
        out[i * UTS_FIELD..i * UTS_FIELD + f.len()].copy_from_slice(f);
    }
    put(sys, buf, &out)?;
    Ok(0)
}

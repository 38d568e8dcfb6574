//! Process groups and sessions: setpgid, getpgid, getpgrp, setsid, getsid, with
//! Linux's rules and errnos. The ids live in each process's [`Job`]
//! (`crate::process::job`); kill and wait4 address groups through them.
//!
//! [`Job`]: crate::process::job::Job

use super::{Errno, Sys, EINVAL, EPERM, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::process::{Pid, ProcessState};

/// The process `pid` names (0: the caller's).
fn target<A: FrameSource + Clone>(sys: &Sys<'_, A>, pid: usize) -> Result<Pid, Errno> {
    match pid as i32 {
        0 => sys.pid(),
        p if p > 0 => {
            let pid = Pid(p as u32);
            sys.table.process(pid).ok_or(ESRCH)?;
            Ok(pid)
        }
        _ => Err(ESRCH),
    }
}

/// setpgid(pid, pgid): moves the caller or one of its children (`pid`, 0: the
/// caller) into group `pgid` (0: a group of its own, led by it). EINVAL for a
/// negative group; ESRCH for a process that is neither; EPERM for a session leader,
/// a child in another session, or a group that does not exist in the caller's
/// session.
pub fn sys_setpgid<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
    pgid: usize,
) -> Result<usize, Errno> {
    if (pgid as i32) < 0 {
        return Err(EINVAL);
    }
    let me = sys.pid()?;
    let who = target(sys, pid)?;
    let p = sys.table.process(who).ok_or(ESRCH)?;
    if who != me && p.parent != Some(me) {
        return Err(ESRCH);
    }
    let my_sid = sys.process()?.job.sid;
    if p.job.sid == p.pid || p.job.sid != my_sid {
        return Err(EPERM);
    }
    let group = match pgid as i32 {
        0 => who,
        g => Pid(g as u32),
    };
    let exists = group == who
        || sys
            .table
            .processes()
            .any(|q| q.job.pgid == group && q.job.sid == my_sid && q.state == ProcessState::Alive);
    if !exists {
        return Err(EPERM);
    }
    if let Some(p) = sys.table.process_mut(who) {
        p.job.pgid = group;
    }
    Ok(0)
}

/// getpgid(pid): the process group of `pid` (0: the caller); ESRCH if none.
pub fn sys_getpgid<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
) -> Result<usize, Errno> {
    let who = target(sys, pid)?;
    Ok(sys.table.process(who).ok_or(ESRCH)?.job.pgid.0 as usize)
}

/// getsid(pid): the session of `pid` (0: the caller); ESRCH if none.
pub fn sys_getsid<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
) -> Result<usize, Errno> {
    let who = target(sys, pid)?;
    Ok(sys.table.process(who).ok_or(ESRCH)?.job.sid.0 as usize)
}

/// setsid(): the caller leads a new session and a new group (both its pid); EPERM
/// if it already leads a process group.
pub fn sys_setsid<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    let me = sys.pid()?;
    let taken = sys
        .table
        .processes()
        .any(|q| q.job.pgid == me && q.state == ProcessState::Alive);
    if taken {
        return Err(EPERM);
    }
    let p = sys.table.process_mut(me).ok_or(ESRCH)?;
    p.job.pgid = me;
    p.job.sid = me;
    Ok(me.0 as usize)
}

//! wait4 and waitid: a parent learns that a child exited (and reaps it), stopped or
//! continued.
//!
//! Both look through the caller's children for one that matches (a pid, a process
//! group, or any) and has something to report: an exit first (the zombie is reaped
//! unless WNOWAIT), then with WUNTRACED/WSTOPPED a stop, with WCONTINUED a resume
//! ([`crate::process::job::ChildReport`], taken once). Without one they wait on the
//! process's `child_exit` queue (see [`super::blocking`]) unless WNOHANG; ECHILD when
//! no child matches at all.

use super::signal::{
    wait_status, CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED, KILLED, SIGCHLD,
};
use super::user_mem::{UserPtr, UserSlice};
use super::{Errno, Sys, ECHILD, EINVAL, ERESTARTSYS};
use crate::memory::frame_allocator::FrameSource;
use crate::process::job::ChildReport;
use crate::process::{Pid, ProcessState};

/// Return immediately if no child has exited.
pub const WNOHANG: usize = 1;
const WUNTRACED: usize = 2;
const WEXITED: usize = 4;
const WCONTINUED: usize = 8;
const WNOWAIT: usize = 0x0100_0000;
const WNOTHREAD: usize = 0x2000_0000;
const WALL: usize = 0x4000_0000;
const WCLONE: usize = 0x8000_0000;

const P_ALL: usize = 0;
const P_PID: usize = 1;
const P_PGID: usize = 2;

/// Which children a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Any,
    Pid(Pid),
    Group(Pid),
}

/// What a child has to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// It ended with this process-table status.
    Exited(i32),
    /// It stopped or continued.
    Changed(ChildReport),
}

/// The first matching child with something `options` asks for, taken (reaped, or
/// its report consumed) unless WNOWAIT; `Ok(None)` if matching children have
/// nothing yet, ECHILD if none matches.
fn find_child<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    who: Who,
    options: usize,
) -> Result<Option<(Pid, Found)>, Errno> {
    let children: alloc::vec::Vec<Pid> = sys.process()?.children.iter().copied().collect();
    let matching = children.into_iter().filter(|c| {
        let p = sys.table.process(*c);
        match who {
            Who::Any => true,
            Who::Pid(pid) => *c == pid,
            Who::Group(g) => p.is_some_and(|p| p.job.pgid == g),
        }
    });
    let mut any = false;
    let mut found = None;
    for c in matching {
        any = true;
        let Some(p) = sys.table.process(c) else {
            continue;
        };
        let what = match (p.state, p.job.report) {
            (ProcessState::Zombie { status }, _) if options & WEXITED != 0 => Found::Exited(status),
            (ProcessState::Alive, Some(r @ ChildReport::Stopped(_)))
                if options & WUNTRACED != 0 =>
            {
                Found::Changed(r)
            }
            (ProcessState::Alive, Some(ChildReport::Continued)) if options & WCONTINUED != 0 => {
                Found::Changed(ChildReport::Continued)
            }
            _ => continue,
        };
        found = Some((c, what));
        break;
    }
    if !any {
        return Err(ECHILD);
    }
    let Some((c, what)) = found else {
        return Ok(None);
    };
    if options & WNOWAIT == 0 {
        match what {
            Found::Exited(_) => {
                sys.table.reap_process(c)?;
            }
            Found::Changed(_) => {
                if let Some(p) = sys.table.process_mut(c) {
                    p.job.report = None;
                }
            }
        }
    }
    Ok(Some((c, what)))
}

/// Waits on the child-exit queue (see [`Sys::wait_until`]) until [`find_child`]
/// finds something, unless WNOHANG.
fn wait_child<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    who: Who,
    options: usize,
) -> Result<Option<(Pid, Found)>, Errno> {
    let mut found = None;
    let waited = sys.wait_until(
        |sys| Ok(sys.process()?.child_exit.clone()),
        |sys| {
            found = find_child(sys, who, options)?;
            Ok((found.is_some() || options & WNOHANG != 0).then_some(0))
        },
    );
    waited.map(|_| found)
}

/// wait4(pid, status, options, rusage): `pid > 0` that child, `0` a child of the
/// caller's process group, `-1` any child, `< -1` a child of group `-pid`. Writes
/// the status word (exit, signal, stop `0x7f | sig << 8`, continue `0xffff`) to
/// `status` if it is not null and returns the child's pid; 0 with WNOHANG when
/// nothing is ready.
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
    let who = match pid as i32 {
        p if p > 0 => Who::Pid(Pid(p as u32)),
        -1 => Who::Any,
        0 => Who::Group(sys.process()?.job.pgid),
        p => Who::Group(Pid(p.unsigned_abs())),
    };
    let Some((child, found)) = wait_child(sys, who, options | WEXITED)? else {
        return Ok(0);
    };
    if status != 0 {
        let word = match found {
            Found::Exited(code) => wait_status(code),
            Found::Changed(ChildReport::Stopped(sig)) => 0x7f | (sig << 8),
            Found::Changed(ChildReport::Continued) => 0xffff,
        };
        UserPtr::<i32>::new(status).write(&mut *sys.space()?, &word)?;
    }
    Ok(child.0 as usize)
}

/// waitid(idtype, id, infop, options, rusage): P_ALL, P_PID or P_PGID (id 0: the
/// caller's group); options must ask for at least one of WEXITED, WSTOPPED,
/// WCONTINUED. Fills the `siginfo_t` at `infop` (SIGCHLD, CLD_* code, pid, status);
/// with WNOHANG and nothing ready it is zeroed and the answer is 0.
/// The children waitid(idtype, id, .., options) waits for (EINVAL for unknown
/// options or id types).
fn waitid_target<A: FrameSource + Clone>(
    sys: &Sys<'_, A>,
    idtype: usize,
    id: usize,
    options: usize,
) -> Result<Who, Errno> {
    let known = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WEXITED | WUNTRACED | WCONTINUED) == 0 {
        return Err(EINVAL);
    }
    Ok(match idtype {
        P_ALL => Who::Any,
        P_PID if (id as i32) > 0 => Who::Pid(Pid(id as u32)),
        P_PGID if id as i32 == 0 => Who::Group(sys.process()?.job.pgid),
        P_PGID if (id as i32) > 0 => Who::Group(Pid(id as u32)),
        _ => return Err(EINVAL),
    })
}

pub fn sys_waitid<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    idtype: usize,
    id: usize,
    infop: usize,
    options: usize,
) -> Result<usize, Errno> {
    let found =
        waitid_target(sys, idtype, id, options).and_then(|who| wait_child(sys, who, options));
    if infop == 0 || found == Err(ERESTARTSYS) {
        return found.map(|_| 0);
    }
    // siginfo_t for SIGCHLD: si_signo, si_errno, si_code, (pad), si_pid, si_uid,
    // si_status; the rest of its 128 bytes zero. Linux writes it whatever the wait
    // found, an error included, so a bad `infop` makes any answer EFAULT.
    let mut info = [0u8; 128];
    if let Ok(Some((child, what))) = found {
        let (code, value) = match what {
            Found::Exited(status) if status & KILLED != 0 => (CLD_KILLED, status & 0x7f),
            Found::Exited(status) => (CLD_EXITED, status & 0xff),
            Found::Changed(ChildReport::Stopped(sig)) => (CLD_STOPPED, sig),
            Found::Changed(ChildReport::Continued) => (CLD_CONTINUED, super::signal::SIGCONT),
        };
        info[0..4].copy_from_slice(&SIGCHLD.to_le_bytes());
        info[8..12].copy_from_slice(&code.to_le_bytes());
        info[16..20].copy_from_slice(&child.0.to_le_bytes());
        info[24..28].copy_from_slice(&value.to_le_bytes());
    }
    UserSlice::new(infop, info.len()).write(&mut *sys.space()?, &info)?;
    found.map(|_| 0)
}

//! kill, and the deaths signals cause.
//!
//! There are no signal handlers yet: a signal whose default action terminates the
//! process ends it at once ([`kill_process`]); signals that are ignored by default
//! (SIGCHLD, SIGCONT, SIGURG, SIGWINCH) and the stop signals (unsupported) do
//! nothing. The process table keeps a death by signal as the status
//! [`KILLED`]` | signal`, which wait4 reports as a signal ([`wait_status`]).

use super::{Errno, Sys, EINVAL, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::process::{apply_exit, Pid, ProcessState, Tid};

/// SIGKILL.
pub const SIGKILL: i32 = 9;
/// SIGSEGV.
pub const SIGSEGV: i32 = 11;
/// Flag in a process-table exit status: killed by the signal in the low 7 bits.
pub const KILLED: i32 = 0x1_0000;
/// Highest signal number.
const SIGRTMAX: i32 = 64;

/// The wait4 status word for a process-table exit status.
pub fn wait_status(code: i32) -> i32 {
    if code & KILLED != 0 {
        code & 0x7f
    } else {
        (code & 0xff) << 8
    }
}

/// Whether `sig`'s default action leaves the process running.
fn ignored_by_default(sig: i32) -> bool {
    matches!(sig, 17 | 18 | 23 | 28) || (19..=22).contains(&sig)
}

/// kill(pid, sig): `pid > 0` that process; `0` the caller's (there are no process
/// groups, so the group is the caller); `< -1` the process `-pid`; `-1` (broadcast)
/// is not supported (ESRCH). EINVAL for a bad signal, ESRCH for no such process.
/// Signal 0 only checks that the target exists; a zombie target succeeds.
pub fn sys_kill<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
    sig: usize,
) -> Result<usize, Errno> {
    if sig > SIGRTMAX as usize {
        return Err(EINVAL);
    }
    let sig = sig as i32;
    if !(0..=SIGRTMAX).contains(&sig) {
        return Err(EINVAL);
    }
    let target = match pid as i32 {
        p if p > 0 => Pid(p as u32),
        0 => sys.pid()?,
        -1 => return Err(ESRCH),
        p => Pid(p.unsigned_abs()),
    };
    let state = sys.table.process(target).map(|p| p.state).ok_or(ESRCH)?;
    if sig == 0 || ignored_by_default(sig) || state != ProcessState::Alive {
        return Ok(0);
    }
    kill_process(sys, target, sig)?;
    Ok(0)
}

/// Ends `pid` as killed by `sig`: its threads leave the scheduler, its parent's
/// threads blocked in wait4 (and a vfork parent) wake up.
pub fn kill_process<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: Pid,
    sig: i32,
) -> Result<(), Errno> {
    let report = sys.table.exit_process(pid, KILLED | (sig & 0x7f))?;
    apply_exit(sys.sched, &report);
    Ok(())
}

/// [`kill_process`] on the global tables (the arch kills a faulting process).
pub fn kill_process_now(pid: Pid, sig: i32) {
    let mut table = crate::process::PROCESS_TABLE.lock();
    let mut sched = crate::process::scheduler::SCHEDULER.lock();
    let tid = sched.current().unwrap_or(Tid(pid.0));
    let mut sys = Sys {
        table: &mut table,
        sched: &mut sched,
        tid,
    };
    let _ = kill_process(&mut sys, pid, sig);
}

//! kill, and the deaths signals cause.
//!
//! Dispositions are recorded (rt_sigaction) but handlers are never run: a signal
//! set to SIG_IGN is discarded, and one whose default action terminates the process
//! ends it at once ([`kill_process`]), also when a handler is installed (there is no
//! delivery yet); signals ignored by default (SIGCHLD, SIGCONT, SIGURG, SIGWINCH) and
//! the stop signals (unsupported) do nothing. Dispositions belong to the process
//! ([`SignalActions`]): fork copies them (`CLONE_SIGHAND` shares them), exec resets
//! handlers to SIG_DFL (SIG_IGN stays), as on Linux. The process table keeps a death
//! by signal as the status
//! [`KILLED`]` | signal`, which wait4 reports as a signal ([`wait_status`]).

use super::{Errno, Sys, EINVAL, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::process::{apply_exit, Pid, ProcessState, Tid};
use crate::sync::IrqMutex;
use alloc::sync::Arc;

/// SIGKILL.
pub const SIGKILL: i32 = 9;
/// SIGSEGV.
pub const SIGSEGV: i32 = 11;
/// SIGPIPE.
pub const SIGPIPE: i32 = 13;
/// The name Linux gives signal `sig` (`"SIG?"` for numbers without one).
pub fn name(sig: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "SIG0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("SIG?")
}

/// The default action.
pub const SIG_DFL: u64 = 0;
/// Ignore the signal.
pub const SIG_IGN: u64 = 1;

/// A process's signal dispositions (SIG_DFL, SIG_IGN or a handler address) for
/// signals 1..=64; the `signals` field of [`crate::process::Process`], shared by its
/// threads and by processes made with `CLONE_SIGHAND`.
#[derive(Debug, Clone)]
pub struct SignalActions {
    handlers: [u64; SIGRTMAX as usize],
}

impl Default for SignalActions {
    fn default() -> Self {
        SignalActions {
            handlers: [SIG_DFL; SIGRTMAX as usize],
        }
    }
}

impl SignalActions {
    /// The disposition of `sig` (SIG_DFL for a number out of range).
    pub fn get(&self, sig: i32) -> u64 {
        Self::index(sig).map_or(SIG_DFL, |i| self.handlers[i])
    }

    /// Records `handler` for `sig`; returns the old disposition.
    pub fn set(&mut self, sig: i32, handler: u64) -> u64 {
        match Self::index(sig) {
            Some(i) => core::mem::replace(&mut self.handlers[i], handler),
            None => SIG_DFL,
        }
    }

    /// Exec: handlers go back to SIG_DFL, SIG_IGN stays.
    pub fn reset_handlers(&mut self) {
        for h in &mut self.handlers {
            if *h != SIG_IGN {
                *h = SIG_DFL;
            }
        }
    }

    fn index(sig: i32) -> Option<usize> {
        (1..=SIGRTMAX).contains(&sig).then(|| sig as usize - 1)
    }
}

/// Signal dispositions as processes hold them.
pub type Actions = Arc<IrqMutex<SignalActions>>;

/// Default dispositions, for a new process.
pub fn default_actions() -> Actions {
    Arc::new(IrqMutex::new(SignalActions::default()))
}

/// A copy of `actions` (fork without `CLONE_SIGHAND`).
pub fn copy_actions(actions: &Actions) -> Actions {
    Arc::new(IrqMutex::new(actions.lock().clone()))
}

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
    let handlers = sys.table.process(target).map(|p| p.signals.clone());
    let ignored = handlers.is_some_and(|h| h.lock().get(sig) == SIG_IGN);
    if sig == 0 || ignored || ignored_by_default(sig) || state != ProcessState::Alive {
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

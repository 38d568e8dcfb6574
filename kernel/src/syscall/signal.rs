//! kill, and the deaths signals cause.
//!
//! Sending ([`send`] behind kill, tkill, tgkill; [`post`] for timers): a signal
//! with a handler becomes pending on a thread (the task layer runs the handler when
//! the thread returns to user mode); one with the default action ends the process
//! at once ([`kill_process`]), stops it ([`stop_process`], resumed by SIGCONT), or
//! does nothing, as [`default_action`] says; init ignores default actions. Dispositions belong to the process
//! ([`SignalActions`]): fork copies them (`CLONE_SIGHAND` shares them), exec resets
//! handlers to SIG_DFL (SIG_IGN stays), as on Linux. The process table keeps a death
//! by signal as the status
//! [`KILLED`]` | signal`, which wait4 reports as a signal ([`wait_status`]).

use super::{Errno, Sys, EAGAIN, EINVAL, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::process::job::ChildReport;
use crate::process::{apply_exit, Pid, Process, ProcessState, ProcessTable, Thread, Tid};
use crate::sync::IrqMutex;
use alloc::sync::Arc;

/// SIGKILL.
pub const SIGKILL: i32 = 9;
/// SIGSEGV.
pub const SIGSEGV: i32 = 11;
/// SIGPIPE.
pub const SIGPIPE: i32 = 13;
/// SIGSTOP.
pub const SIGSTOP: i32 = 19;
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

/// One signal's action, as `struct sigaction` (kernel layout on both architectures:
/// handler, flags, restorer, mask) gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigAction {
    /// SIG_DFL, SIG_IGN or the handler's address.
    pub handler: u64,
    /// SA_* flags.
    pub flags: u64,
    /// Where the handler returns to (SA_RESTORER; libc's `__restore_rt`).
    pub restorer: u64,
    /// Signals blocked while the handler runs (besides the signal itself).
    pub mask: u64,
}

/// Run the handler with (sig, siginfo, ucontext).
pub const SA_SIGINFO: u64 = 4;
/// Use `restorer` as the handler's return address.
pub const SA_RESTORER: u64 = 0x0400_0000;
/// Restart a call the handler interrupted.
pub const SA_RESTART: u64 = 0x1000_0000;
/// Deliver on the alternate signal stack (not supported yet: the current stack).
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// Do not block the signal while its handler runs.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// Reset the action to SIG_DFL once the handler is entered.
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// `si_code`: sent by kill.
pub const SI_USER: i32 = 0;
/// `si_code`: sent by the kernel (a timer).
pub const SI_KERNEL: i32 = 0x80;
/// `si_code`: sent by rt_sigqueueinfo with this code (any negative code but
/// SI_TKILL a process may choose).
pub const SI_QUEUE: i32 = -1;
/// `si_code`: sent by tkill or tgkill.
pub const SI_TKILL: i32 = -6;

/// What a signal's `siginfo_t` says (the same 128-byte layout on x86_64 and
/// aarch64): kept with a pending signal and written into its handler's frame or
/// rt_sigtimedwait's `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    /// si_signo.
    pub sig: i32,
    /// si_code (SI_USER, SI_TKILL, SI_QUEUE, SI_KERNEL, a CLD_* or fault code).
    pub code: i32,
    /// si_pid of the sender (or the child, for SIGCHLD); si_uid is always 0.
    pub pid: u32,
    /// The word after si_pid/si_uid: si_status for SIGCHLD, si_value for SI_QUEUE.
    pub value: u64,
    /// si_addr of a fault, which takes the place of si_pid/si_uid.
    pub addr: Option<u64>,
}

impl SigInfo {
    /// `sig` as kill from process `pid` sends it.
    pub fn user(sig: i32, pid: u32) -> SigInfo {
        SigInfo {
            sig,
            code: SI_USER,
            pid,
            value: 0,
            addr: None,
        }
    }

    /// `sig` as the kernel sends it (a terminal's ^C, a timer).
    pub fn kernel(sig: i32) -> SigInfo {
        SigInfo {
            code: SI_KERNEL,
            ..SigInfo::user(sig, 0)
        }
    }

    /// The `siginfo_t` bytes.
    pub fn to_bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        self.write_over_zeroes(&mut b);
        b
    }

    /// Writes the fields of the `siginfo_t` into `b`, its 128 bytes, zero (a
    /// signal frame being built): what [`Self::to_bytes`] gives, without a second
    /// 128-byte buffer to zero and copy.
    pub fn write_over_zeroes(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&self.sig.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        match self.addr {
            Some(addr) => b[16..24].copy_from_slice(&addr.to_le_bytes()),
            None => {
                b[16..20].copy_from_slice(&self.pid.to_le_bytes());
                b[24..32].copy_from_slice(&self.value.to_le_bytes());
            }
        }
    }
}

/// The bit of `sig` in a signal set.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that can be neither caught nor blocked.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// A process's signal actions for signals 1..=64; the `signals` field of
/// [`crate::process::Process`], shared by its threads and by processes made with
/// `CLONE_SIGHAND`.
#[derive(Debug, Clone)]
pub struct SignalActions {
    actions: [SigAction; SIGRTMAX as usize],
}

impl Default for SignalActions {
    fn default() -> Self {
        SignalActions {
            actions: [SigAction::default(); SIGRTMAX as usize],
        }
    }
}

impl SignalActions {
    /// The disposition of `sig` (SIG_DFL for a number out of range).
    pub fn get(&self, sig: i32) -> u64 {
        self.action(sig).handler
    }

    /// The whole action of `sig`.
    pub fn action(&self, sig: i32) -> SigAction {
        Self::index(sig).map_or(SigAction::default(), |i| self.actions[i])
    }

    /// Records `handler` for `sig` (no flags); returns the old disposition.
    pub fn set(&mut self, sig: i32, handler: u64) -> u64 {
        let new = SigAction {
            handler,
            ..SigAction::default()
        };
        self.set_action(sig, new).handler
    }

    /// Records `action` for `sig`; returns the old one.
    pub fn set_action(&mut self, sig: i32, action: SigAction) -> SigAction {
        match Self::index(sig) {
            Some(i) => core::mem::replace(&mut self.actions[i], action),
            None => SigAction::default(),
        }
    }

    /// Exec: handlers go back to SIG_DFL, SIG_IGN stays.
    pub fn reset_handlers(&mut self) {
        for a in &mut self.actions {
            if a.handler != SIG_IGN {
                *a = SigAction::default();
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

/// What a signal does when its action is SIG_DFL (`signal(7)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    /// Ends the process (also the "core" signals: no core file is written).
    Terminate,
    /// Nothing (SIGCHLD, SIGURG, SIGWINCH).
    Ignore,
    /// Stops the process (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU).
    Stop,
    /// Resumes a stopped process (SIGCONT).
    Continue,
}

/// SIGCHLD.
pub const SIGCHLD: i32 = 17;
/// SIGCONT.
pub const SIGCONT: i32 = 18;
/// The stop signals.
pub const STOP_SIGNALS: u64 = (1 << (SIGSTOP - 1)) | (1 << 19) | (1 << 20) | (1 << 21);
/// SIGCHLD `si_code`: the child exited.
pub const CLD_EXITED: i32 = 1;
/// SIGCHLD `si_code`: the child was killed.
pub const CLD_KILLED: i32 = 2;
/// SIGCHLD `si_code`: the child stopped.
pub const CLD_STOPPED: i32 = 5;
/// SIGCHLD `si_code`: the child continued.
pub const CLD_CONTINUED: i32 = 6;
/// sigaction flag: no SIGCHLD when a child stops or continues.
pub const SA_NOCLDSTOP: u64 = 1;

/// `sig`'s default action.
pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        17 | 23 | 28 => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        19..=22 => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// Whether `sig`'s default action leaves the process running (ignore, stop,
/// continue).
pub fn ignored_by_default(sig: i32) -> bool {
    default_action(sig) != DefaultAction::Terminate
}

/// kill(pid, sig): `pid > 0` that process; `0` every process of the caller's
/// process group; `-1` every process but init and the caller; `< -1` every process
/// of group `-pid`. ESRCH when no process is found; signal 0 only checks.
pub fn sys_kill<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
    sig: usize,
) -> Result<usize, Errno> {
    check_signal(sig)?;
    let sig = sig as i32;
    let me = sys.pid()?;
    let targets: alloc::vec::Vec<Pid> = match pid as i32 {
        p if p > 0 => return send(sys, Pid(p as u32), None, SigInfo::user(sig, me.0)),
        -1 => sys
            .table
            .processes()
            .filter(|p| p.pid.0 > 1 && p.pid != me && p.state == ProcessState::Alive)
            .map(|p| p.pid)
            .collect(),
        p => {
            let group = match p {
                0 => sys.process()?.job.pgid,
                p => Pid(p.unsigned_abs()),
            };
            return signal_group(sys, group, SigInfo::user(sig, me.0)).map(|_| 0);
        }
    };
    if targets.is_empty() {
        return Err(ESRCH);
    }
    for target in targets {
        let _ = send(sys, target, None, SigInfo::user(sig, me.0));
    }
    Ok(0)
}

/// `info` to every live process of group `pgid` (kill of a negative pid, the
/// terminal's ^C); ESRCH if the group has none.
pub fn signal_group<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pgid: Pid,
    info: SigInfo,
) -> Result<(), Errno> {
    let members: alloc::vec::Vec<Pid> = sys
        .table
        .processes()
        .filter(|p| p.job.pgid == pgid && p.state == ProcessState::Alive)
        .map(|p| p.pid)
        .collect();
    if members.is_empty() {
        return Err(ESRCH);
    }
    for target in members {
        let _ = send(sys, target, None, info);
    }
    Ok(())
}

/// tkill(tid, sig): `sig` to thread `tid` (what musl's raise() uses).
pub fn sys_tkill<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    tid: usize,
    sig: usize,
) -> Result<usize, Errno> {
    let tid = Tid(u32::try_from(tid).map_err(|_| EINVAL)?);
    let pid = sys
        .table
        .thread(tid)
        .filter(|t| !t.has_exited())
        .ok_or(ESRCH)?
        .pid;
    check_signal(sig)?;
    let info = SigInfo {
        code: SI_TKILL,
        ..SigInfo::user(sig as i32, sys.pid()?.0)
    };
    send(sys, pid, Some(tid), info)
}

/// tgkill(tgid, tid, sig): like tkill, and ESRCH unless `tid` belongs to `tgid`.
pub fn sys_tgkill<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    tgid: usize,
    tid: usize,
    sig: usize,
) -> Result<usize, Errno> {
    let owner = u32::try_from(tid)
        .ok()
        .and_then(|t| sys.table.thread(Tid(t)))
        .map(|t| t.pid);
    if (tgid as i32) <= 0 || (tid as i32) <= 0 {
        return Err(EINVAL);
    }
    if owner != Some(Pid(tgid as u32)) {
        return Err(ESRCH);
    }
    sys_tkill(sys, tid, sig)
}

/// `sig` as a signal number (1..=64, or 0 to only check), else EINVAL.
pub fn checked_signal(sig: usize) -> Result<i32, Errno> {
    check_signal(sig).map(|_| sig as i32)
}

/// [`send`] for the other signal calls (rt_sigqueueinfo): `info` to `target` (to
/// its thread `thread` if given).
pub fn send_info<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    target: Pid,
    thread: Option<Tid>,
    info: SigInfo,
) -> Result<usize, Errno> {
    send(sys, target, thread, info)
}

fn check_signal(sig: usize) -> Result<(), Errno> {
    match sig <= SIGRTMAX as usize {
        true => Ok(()),
        false => Err(EINVAL),
    }
}

/// Whether `t` blocks `sig` for a sender: in its mask, or awaited in
/// rt_sigtimedwait (Linux's `blocked | real_blocked`), so it is queued whatever
/// its action.
fn holds(t: &Thread, sig: i32) -> bool {
    (t.signal_mask | t.call.signals) & bit(sig) != 0
}

/// Whether `t` may take `sig` now (Linux's `wants_signal`): alive, and not
/// blocking it unless it waits for it in rt_sigtimedwait.
fn wants(t: &Thread, sig: i32) -> bool {
    !t.has_exited() && t.signal_mask & !t.call.signals & bit(sig) == 0
}

/// The thread of `pid` that stands for the process (its main thread, else its first
/// live one). The main thread is found by its id alone (a thread of `pid` is one of
/// its threads): the process is looked at only when that one is gone.
fn main_thread<A: FrameSource + Clone>(table: &ProcessTable<A>, pid: Pid) -> Option<&Thread> {
    let live = |tid: Tid| {
        table
            .thread(tid)
            .filter(|t| t.pid == pid && !t.has_exited())
    };
    live(Tid(pid.0)).or_else(|| table.process(pid)?.threads.iter().find_map(|&t| live(t)))
}

/// Whether `action` drops `sig` when sent unblocked (Linux's `sig_task_ignored`):
/// SIG_IGN, or SIG_DFL where the default ignores it or the process is init.
fn dropped(action: &SigAction, sig: i32, unkillable: bool) -> bool {
    let dfl_ignores = matches!(
        default_action(sig),
        DefaultAction::Ignore | DefaultAction::Continue
    );
    action.handler == SIG_IGN || (action.handler == SIG_DFL && (dfl_ignores || unkillable))
}

/// Where a signal is queued: on one thread, or on the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Thread(Tid),
    Process,
}

/// What a process's action for a signal is, as [`queue`] needs it: the action, and
/// whether the process is init (which drops default actions).
#[derive(Debug, Clone, Copy)]
struct Disposition {
    action: SigAction,
    unkillable: bool,
}

impl Disposition {
    fn of(p: &Process, sig: i32) -> Disposition {
        Disposition {
            action: p.signals.lock().action(sig),
            unkillable: p.unkillable,
        }
    }
}

/// The thread [`queue`] picked to take a signal now, with what its sender decides
/// by.
#[derive(Debug, Clone, Copy)]
struct Receiver {
    tid: Tid,
    /// It waits for the signal in rt_sigtimedwait.
    awaited: bool,
    /// A wait it is in ends for the signal (not a vfork parent's, which only its
    /// child ends, as on Linux).
    wakeable: bool,
}

/// Queues `info` for process `pid` (on thread `to`, or shared), as Linux's
/// `__send_signal` and `complete_signal`: nothing if it is ignored there (see
/// [`dropped`]; a blocked signal is always queued); else it becomes pending, and the
/// thread that should take it is picked (the target thread if it does not block it;
/// for a process-directed signal its main thread if that does not block it, else
/// another one) and told to look; `None` when every thread blocks it (it stays
/// pending). EAGAIN when a real-time signal finds the queue full.
fn queue<A: FrameSource + Clone>(
    table: &mut ProcessTable<A>,
    pid: Pid,
    to: Target,
    info: SigInfo,
) -> Result<Option<Receiver>, Errno> {
    let disposition = Disposition::of(table.process(pid).ok_or(ESRCH)?, info.sig);
    queue_as(table, pid, to, info, disposition)
}

/// [`queue`] with the process's `disposition` for the signal already read.
fn queue_as<A: FrameSource + Clone>(
    table: &mut ProcessTable<A>,
    pid: Pid,
    to: Target,
    info: SigInfo,
    disposition: Disposition,
) -> Result<Option<Receiver>, Errno> {
    let sig = info.sig;
    let stand_in = match to {
        Target::Thread(t) => table.thread(t),
        Target::Process => main_thread(table, pid),
    };
    let held = stand_in.is_some_and(|t| holds(t, sig));
    // Whether the stand-in takes it now (which does not depend on what is pending).
    let stand_in_takes = stand_in.filter(|t| wants(t, sig)).map(|t| t.tid);
    if !held && dropped(&disposition.action, sig, disposition.unkillable) {
        return Ok(None);
    }
    // The queue limit only matters to what may be refused a siginfo entry: a
    // real-time signal, or a standard one with a negative si_code (sigqueue's), see
    // `SigPending::add`; counting the entries walks every thread of the process.
    let limited = sig >= super::sigqueue::SIGRTMIN || info.code < 0;
    let room = !limited || super::sigqueue::has_room(table, pid);
    let pending = match to {
        Target::Thread(t) => &mut table.thread_mut(t).ok_or(ESRCH)?.pending,
        Target::Process => &mut table.process_mut(pid).ok_or(ESRCH)?.shared_pending,
    };
    pending.add(info, room).map_err(|_| EAGAIN)?;
    let receiver = match (to, stand_in_takes) {
        (_, Some(t)) => Some(t),
        (Target::Thread(_), None) => None,
        (Target::Process, None) => {
            let p = table.process(pid).ok_or(ESRCH)?;
            let wanting = |t: &Tid| table.thread(*t).is_some_and(|t| wants(t, sig));
            p.threads.iter().copied().find(wanting)
        }
    };
    let Some(t) = receiver.and_then(|t| table.thread_mut(t)) else {
        return Ok(None);
    };
    t.shared_notice = true;
    Ok(Some(Receiver {
        tid: t.tid,
        awaited: t.call.signals & bit(sig) != 0,
        wakeable: t.call.vfork_child.is_none(),
    }))
}

/// Takes the next signal thread `me` may take: the lowest of its own it does not
/// block, else the lowest of its process's shared set it does not block if it has
/// been told of them (Linux's `dequeue_signal`), with its siginfo. Delivery
/// (`task::signal`) runs its handler or default action.
pub fn take_next<A: FrameSource + Clone>(table: &mut ProcessTable<A>, me: Tid) -> Option<SigInfo> {
    let (t, p) = table.thread_and_process_mut(me)?;
    take_next_of(t, p)
}

/// [`take_next`] of thread `t` of process `p`, both already found.
pub fn take_next_of(t: &mut Thread, p: &mut Process) -> Option<SigInfo> {
    let allowed = !t.signal_mask;
    if let Some(info) = t.pending.take_first(allowed) {
        return Some(info);
    }
    match t.shared_notice {
        true => p.shared_pending.take_first(allowed),
        false => None,
    }
}

/// [`queue`] for a process-directed signal the kernel sends from the process table
/// (SIGCHLD when a child ends): the thread to wake, if one takes it now.
pub fn queue_for_process<A: FrameSource + Clone>(
    table: &mut ProcessTable<A>,
    pid: Pid,
    info: SigInfo,
) -> Result<Option<Tid>, Errno> {
    Ok(queue(table, pid, Target::Process, info)?.map(|r| r.tid))
}

/// Sends `info.sig` to process `target` (to its thread `thread` if given), as
/// Linux's `send_signal` does: nothing for signal 0 or a zombie; SIGCONT resumes a
/// stopped process whatever its action, and a stop signal discards a pending
/// SIGCONT (and SIGCONT pending stops). The signal is queued (see [`queue`]) on the
/// thread, or on the process (any thread that does not block it takes it). When a
/// thread takes it now and its action is the default, a stop signal stops the
/// process and any other fatal one ends it at once; otherwise the thread is woken
/// from a wait to run the handler.
fn send<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    target: Pid,
    thread: Option<Tid>,
    info: SigInfo,
) -> Result<usize, Errno> {
    let sig = info.sig;
    let p = sys.table.process(target).ok_or(ESRCH)?;
    if sig == 0 || p.state != ProcessState::Alive {
        return Ok(0);
    }
    // Read once: what follows changes pending signals and stops, not actions.
    let disposition = Disposition::of(p, sig);
    match default_action(sig) {
        DefaultAction::Continue => continue_process(sys, target),
        DefaultAction::Stop => discard_pending_in(sys, target, bit(SIGCONT)),
        _ => {}
    }
    let to = thread.map_or(Target::Process, Target::Thread);
    let Some(receiver) = queue_as(sys.table, target, to, info, disposition)? else {
        return Ok(0);
    };
    if disposition.action.handler != SIG_DFL || disposition.unkillable || receiver.awaited {
        wake_for_signal(sys, receiver);
        return Ok(0);
    }
    match default_action(sig) {
        DefaultAction::Ignore | DefaultAction::Continue => Ok(0),
        DefaultAction::Stop => {
            discard_pending_in(sys, target, bit(sig));
            stop_process(sys, target, sig);
            Ok(0)
        }
        DefaultAction::Terminate => {
            kill_process(sys, target, sig)?;
            Ok(0)
        }
    }
}

/// Forgets the pending signals of `set` on `pid` and every thread of it.
pub fn discard_pending_in<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid, set: u64) {
    let threads: alloc::vec::Vec<Tid> = match sys.table.process_mut(pid) {
        Some(p) => {
            p.shared_pending.discard(set);
            p.threads.iter().copied().collect()
        }
        None => return,
    };
    for t in threads {
        if let Some(t) = sys.table.thread_mut(t) {
            t.pending.discard(set);
        }
    }
}

/// Starts a group stop of `pid` (stopped by `sig`): each of its threads stops when
/// it next returns to user mode (a pending SIGSTOP is the request, see
/// `task::signal`; a thread waiting in a call is woken for it). The parent hears of
/// the stop (wait4 WUNTRACED, SIGCHLD unless SA_NOCLDSTOP) once every thread has
/// stopped ([`thread_stopped`]), as Linux's `do_signal_stop`.
pub fn stop_process<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid, sig: i32) {
    let Some(p) = sys.table.process_mut(pid) else {
        return;
    };
    if p.job.stopped.is_some() {
        return;
    }
    p.job.stopped = Some(sig);
    p.job.stop_reported = false;
    let threads: alloc::vec::Vec<Tid> = p.threads.iter().copied().collect();
    for t in threads {
        if let Some(th) = sys.table.thread_mut(t) {
            if !th.has_exited() {
                th.pending.add_bare(SIGSTOP);
            }
        }
        // A thread waiting in a call wakes, finds no handler to run and waits on
        // after the stop; one that runs stops at its next return to user mode.
        sys.sched.interrupt(t);
    }
}

/// Thread `me` of a process in a group stop has stopped (`task::signal` parks it
/// on the process's resume queue): the last of its live threads to stop makes the
/// stop known to the parent.
pub fn thread_stopped<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, me: Tid) {
    let Some(pid) = sys.table.thread(me).map(|t| t.pid) else {
        return;
    };
    if let Some(t) = sys.table.thread_mut(me) {
        t.stopped = true;
    }
    report_stop_if_complete(sys, pid);
}

/// A group stop of `pid` is told to its parent (once) when every live thread is
/// stopped: after a thread stops, and after one exits while the others are stopped
/// (Linux's group_stop_count reaching 0 either way).
pub fn report_stop_if_complete<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid) {
    let Some(p) = sys
        .table
        .process(pid)
        .filter(|p| p.state == ProcessState::Alive)
    else {
        return;
    };
    let all = p.threads.iter().all(|t| {
        sys.table
            .thread(*t)
            .is_none_or(|t| t.has_exited() || t.stopped)
    });
    let Some(sig) = p.job.stopped.filter(|_| all && !p.job.stop_reported) else {
        return;
    };
    if let Some(p) = sys.table.process_mut(pid) {
        p.job.stop_reported = true;
        p.job.report = Some(ChildReport::Stopped(sig));
    }
    tell_parent(sys, pid, CLD_STOPPED, sig);
}

/// SIGCONT for `pid`: a stopped process runs again (its threads wake) and the parent
/// hears of it if it had heard of the stop (wait4 WCONTINUED, SIGCHLD unless
/// SA_NOCLDSTOP); pending stop signals are discarded.
fn continue_process<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid) {
    discard_pending_in(sys, pid, STOP_SIGNALS);
    let Some(p) = sys.table.process_mut(pid) else {
        return;
    };
    if p.job.stopped.take().is_none() {
        return;
    }
    p.job.resume.wake_all();
    if core::mem::take(&mut p.job.stop_reported) {
        p.job.report = Some(ChildReport::Continued);
        tell_parent(sys, pid, CLD_CONTINUED, SIGCONT);
    }
}

/// The parent of `pid` learns that it stopped or continued: its wait4 callers wake,
/// and it gets SIGCHLD if it has a handler without SA_NOCLDSTOP.
fn tell_parent<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid, code: i32, status: i32) {
    let Some(pp) = sys.table.process(pid).and_then(|p| p.parent) else {
        return;
    };
    let Some(parent) = sys.table.process(pp) else {
        return;
    };
    parent.child_exit.wake_all();
    let action = parent.signals.lock().action(SIGCHLD);
    if action.flags & SA_NOCLDSTOP == 0 {
        let info = SigInfo {
            sig: SIGCHLD,
            code,
            pid: pid.0,
            value: status as u64,
            addr: None,
        };
        let _ = send(sys, pp, None, info);
    }
}

/// Makes `sig` pending for process `pid` whatever its action (a timer's signal, sent
/// from the timer interrupt, where no process may be ended): the thread that takes
/// it runs the handler, or takes the default action, when it next returns to user
/// mode.
pub fn post<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid, sig: i32) {
    let alive = sys
        .table
        .process(pid)
        .is_some_and(|p| p.state == ProcessState::Alive);
    if !alive {
        return;
    }
    if let Ok(Some(receiver)) = queue(sys.table, pid, Target::Process, SigInfo::kernel(sig)) {
        wake_for_signal(sys, receiver);
    }
}

/// The thread picked to take a signal (it does not block it) wakes up from a wait
/// (pause, a pipe, poll, wait4, a sleep, a futex) to take it: the call it was in
/// ends with EINTR or restarts. A vfork parent keeps waiting for its child (as on
/// Linux, only death ends that). The caller itself (kill of its own process,
/// raise) is in no wait: it is running this call, takes the signal on its way back
/// to user mode, and a wait it begins later finds the signal pending first
/// (`Sys::block`), so the scheduler (and its lock) is left alone, as Linux's
/// signal_wake_up of the running task only sets TIF_SIGPENDING.
fn wake_for_signal<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, receiver: Receiver) {
    if receiver.wakeable && receiver.tid != sys.tid {
        sys.sched.interrupt(receiver.tid);
    }
}

/// Ends `pid` as killed by `sig`: its threads leave the scheduler, its parent's
/// threads blocked in wait4 (and a vfork parent) wake up.
pub fn kill_process<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: Pid,
    sig: i32,
) -> Result<(), Errno> {
    let report = sys.table.exit_process(pid, KILLED | (sig & 0x7f))?;
    apply_exit(&mut sys.sched, &report);
    Ok(())
}

/// [`kill_process`] on the global tables (the arch kills a faulting process).
pub fn kill_process_now(pid: Pid, sig: i32) {
    let mut table = crate::process::PROCESS_TABLE.lock();
    let mut sched = crate::process::scheduler::SCHEDULER.lock();
    let tid = sched.current().unwrap_or(Tid(pid.0));
    let mut sys = Sys {
        table: &mut table,
        sched: (&mut *sched).into(),
        tid,
    };
    let _ = kill_process(&mut sys, pid, sig);
}

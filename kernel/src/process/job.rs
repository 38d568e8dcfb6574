//! Job control state of a process ([`Job`], the `job` field of
//! [`super::Process`]): its process group and session, and whether it is stopped.
//!
//! A stop signal (SIGSTOP, or SIGTSTP/SIGTTIN/SIGTTOU without a handler) marks the
//! process stopped (a group stop) and asks each of its threads to stop where it
//! next returns to user mode (it waits there on [`Job::resume`]); once all have
//! stopped the parent is told. SIGCONT clears the mark and wakes them. Each change
//! is left for the parent's wait4/waitid (WUNTRACED / WCONTINUED) as a
//! [`ChildReport`], taken once.
//!
//! ```text
//!  running --stop signal--> stopping --last thread stops--> stopped (reported)
//!     ^                        |                                 |
//!     +--------SIGCONT---------+-------------SIGCONT-------------+ (reported: Continued)
//! ```
//! The process table's lock covers all of it.

use super::wait_queue::WaitQueue;
use super::Pid;
use alloc::sync::Arc;

/// A change of a child that its parent has not yet waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildReport {
    /// Stopped by this signal.
    Stopped(i32),
    /// Resumed by SIGCONT.
    Continued,
}

/// A process's process group, session and stop state.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its process group.
    pub pgid: Pid,
    /// Its session.
    pub sid: Pid,
    /// The signal that stopped it, while it is stopped or stopping.
    pub stopped: Option<i32>,
    /// Whether every thread has stopped and the parent was told (the group stop is
    /// complete, Linux's SIGNAL_STOP_STOPPED).
    pub stop_reported: bool,
    /// A stop or continue its parent has not waited for.
    pub report: Option<ChildReport>,
    /// Where its stopped threads wait for SIGCONT.
    pub resume: Arc<WaitQueue>,
}

impl Job {
    /// A process in group `pgid` of session `sid`, running.
    pub fn new(pgid: Pid, sid: Pid) -> Job {
        Job {
            pgid,
            sid,
            stopped: None,
            stop_reported: false,
            report: None,
            resume: Arc::new(WaitQueue::new()),
        }
    }

    /// A child's job state: the same group and session, running.
    pub fn inherited(&self) -> Job {
        Job::new(self.pgid, self.sid)
    }
}

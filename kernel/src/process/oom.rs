//! The OOM killer's choice (policy only): which process to end when a frame for user
//! memory cannot be found.
//!
//! As Linux's `oom_badness`, simplified: each alive process weighs what its address
//! space holds ([`crate::memory::address_space::AddressSpace::badness`]: resident
//! pages plus page tables); the heaviest is the victim, the younger (higher pid) of
//! two that weigh the same. Never chosen:
//! * an unkillable process (init, [`super::Process::unkillable`]): when it is the
//!   only one with memory there is no victim and the call that needed a frame fails
//!   (Linux would panic instead);
//! * a process that weighs nothing: kernel threads map no user memory, and killing a
//!   process without pages (a zombie, one whose space is shared with the caller's
//!   heavier process) frees nothing.
//!
//! Killing and reporting are the system-call layer's (`syscall::oom`), which holds
//! the tables.

#![deny(unsafe_code)]

use super::{Pid, ProcessState, ProcessTable};
use crate::memory::frame_allocator::FrameSource;

/// One process the killer may end, and what it weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The process.
    pub pid: Pid,
    /// Its badness in pages.
    pub badness: u64,
}

/// The process to kill to free memory, if any may be killed (see the module docs).
pub fn choose_victim<A: FrameSource + Clone>(table: &ProcessTable<A>) -> Option<Candidate> {
    table
        .processes()
        .filter(|p| p.state == ProcessState::Alive && !p.unkillable)
        .filter_map(|p| {
            let badness = table.space(p.pid)?.badness();
            Some(Candidate {
                pid: p.pid,
                badness,
            })
        })
        .filter(|c| c.badness > 0)
        .max_by_key(|c| (c.badness, c.pid.0))
}

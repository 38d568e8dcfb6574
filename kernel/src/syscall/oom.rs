//! The OOM killer's action: what happens when a frame for user memory cannot be had.
//!
//! Every frame a user mapping gets is taken in one place,
//! [`crate::memory::address_space::AddressSpace::handle_page_fault`] (user faults,
//! `copy_to_user` from inside the kernel, MAP_POPULATE, page-table growth), from the
//! space's frame source, which in the kernel is the global allocator's facade and so
//! never takes the frames kept for the kernel (`frame_allocator::set_heap_reserve`,
//! set to `task::KERNEL_RESERVE_FRAMES`). A failure there is noted in the space. The
//! layer that holds the tables then runs [`Sys::out_of_memory`]:
//! * the victim is [`crate::process::oom::choose_victim`]'s (the heaviest process,
//!   never init while another can be chosen, never a kernel thread);
//! * another process is killed at once (SIGKILL, its memory freed): the caller goes
//!   on, retrying what failed ([`Sys::retry_on_oom`] in a system call; the faulting
//!   instruction runs again after a user fault);
//! * the caller itself gets SIGKILL pending: its call fails as Linux's does (EFAULT
//!   for a copy, a short count, MAP_POPULATE stops) and the process dies on its way
//!   back to user mode, where its address space can be freed safely;
//! * with no victim (init alone holds memory) the call just fails.
//!
//! Each kill is reported on the console as Linux does, behind the kernel's marker
//! byte: `\u{1}kernel: Out of memory: Killed process N (name) ...`.

use super::{machine, signal, Sys};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::PAGE_SIZE;
use crate::process::oom::{choose_victim, Candidate};
use crate::process::{Pid, UserSpace};
use core::sync::atomic::{AtomicU64, Ordering};

/// SIGKILL.
const SIGKILL: i32 = 9;

/// Processes the OOM killer has ended since boot (the task layer retires their
/// threads' stacks when this moves).
static KILLS: AtomicU64 = AtomicU64::new(0);

/// What [`Sys::out_of_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomOutcome {
    /// Another process was killed and its memory is back: try again.
    Freed(Pid),
    /// The caller's own process is the victim: SIGKILL is pending for it.
    CallerKilled,
    /// Nothing may be killed: the allocation fails.
    NoVictim,
}

/// How many processes the OOM killer has ended since boot.
pub fn kills() -> u64 {
    KILLS.load(Ordering::Relaxed)
}

impl<A: FrameSource + Clone> Sys<'_, A> {
    /// Frees memory by killing the OOM killer's victim (see the module docs).
    pub fn out_of_memory(&mut self) -> OomOutcome {
        let Some(victim) = choose_victim(self.table) else {
            return OomOutcome::NoVictim;
        };
        report(self, victim);
        KILLS.fetch_add(1, Ordering::Relaxed);
        if self.pid().ok() == Some(victim.pid) {
            signal::post(self, victim.pid, SIGKILL);
            return OomOutcome::CallerKilled;
        }
        let _ = signal::kill_process(self, victim.pid, SIGKILL);
        OomOutcome::Freed(victim.pid)
    }

    /// Runs `op` on the caller's address space, a step that fills its memory and
    /// goes on from its own progress when run again; while a fault in it ran out of
    /// memory and the OOM killer freed some by killing another process, runs it
    /// again. Returns `op`'s last answer. The space is locked once per run, and its
    /// out-of-memory mark is cleared before the step and read after it under that
    /// one lock (a pipe read that waits makes three such runs per call).
    pub fn retry_on_oom<T>(
        &mut self,
        mut op: impl FnMut(&mut UserSpace<A>) -> Result<T, super::Errno>,
    ) -> Result<T, super::Errno> {
        loop {
            let (r, ran_out) = {
                let mut space = self.space()?;
                // A shortage noted before this step is not its own.
                space.take_out_of_memory();
                let r = op(&mut space);
                (r, space.take_out_of_memory())
            };
            if !ran_out {
                return r;
            }
            match self.out_of_memory() {
                OomOutcome::Freed(_) => continue,
                OomOutcome::CallerKilled | OomOutcome::NoVictim => return r,
            }
        }
    }
}

/// Linux's `Out of memory: Killed process` line for `victim`.
fn report<A: FrameSource + Clone>(sys: &Sys<'_, A>, victim: Candidate) {
    let kib = PAGE_SIZE / 1024;
    let name = sys
        .table
        .process(victim.pid)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let (vm, rss) = sys.table.space(victim.pid).map_or((0, 0), |s| {
        let vm: u64 = s.regions().map(|r| (r.end - r.start) / PAGE_SIZE).sum();
        (vm, s.resident_pages() as u64)
    });
    let line = alloc::format!(
        "\u{1}kernel: Out of memory: Killed process {} ({name}) total-vm:{}kB, rss:{}kB, pgtables:{}kB\n",
        victim.pid.0,
        vm * kib,
        rss * kib,
        victim.badness.saturating_sub(rss) * kib,
    );
    machine::console_write(line.as_bytes());
}

//! Interrupts between CPUs on x86_64: a fixed-vector IPI through the local APIC's
//! interrupt command register. Its handler ([`on_interrupt`]) carries out what the
//! sender posted in the target's mailbox (`crate::smp`): TLB flushes, leaving a
//! dying address space, a reschedule.

use crate::smp::PerCpu;
use core::sync::atomic::Ordering;

/// The vector of the kernel's IPI.
pub const IPI_VECTOR: u8 = 0xf0;

/// Interrupts `cpu` with [`IPI_VECTOR`].
pub fn send(cpu: &PerCpu) {
    super::timer::send_ipi(cpu.hw_id.load(Ordering::Relaxed), IPI_VECTOR);
}

/// Installs the kernel's tables (a request to leave the running address space).
pub fn leave_user_root() {
    crate::task::leave_user_tables();
}

/// Drops every cached translation of this CPU.
pub fn flush_everything_local() {
    super::paging::flush_everything_local();
}

/// The IPI handler (interrupts masked): serve the mailbox, acknowledge, and
/// reschedule if asked to.
pub(super) fn on_interrupt() {
    super::timer::end_of_interrupt();
    crate::smp::serve_requests();
    super::thread::on_reschedule_request();
}

/// Nothing to do here: other CPUs are reached by `smp::fence_others` through their
/// mailboxes (only the host's threads need a fence of their own).
pub fn fence_other_threads() {}

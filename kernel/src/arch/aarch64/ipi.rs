//! Interrupts between CPUs on aarch64: a software-generated interrupt (SGI) through
//! the GIC. Its handler carries out what the sender posted in the target's mailbox
//! (`crate::smp`): leaving a dying address space, a reschedule. TLB flushes need no
//! interrupt here (inner-shareable TLBIs are broadcast by the hardware).

use crate::smp::PerCpu;

/// The SGI the kernel uses.
pub const IPI_SGI: u32 = 1;

/// Interrupts `cpu` with [`IPI_SGI`].
pub fn send(cpu: &PerCpu) {
    super::gic::send_sgi(cpu, IPI_SGI);
}

/// Installs the kernel's tables in TTBR0 (a request to leave the running address
/// space).
pub fn leave_user_root() {
    crate::task::leave_user_tables();
}

/// Drops every cached translation of this CPU.
pub fn flush_everything_local() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            options(nostack)
        )
    };
}

/// The SGI handler (interrupts masked): serve the mailbox and reschedule if asked.
pub(super) fn on_interrupt() {
    crate::smp::serve_requests();
    super::thread::on_reschedule_request();
}

/// Nothing to do here: other CPUs are reached by `smp::fence_others` through their
/// mailboxes (only the host's threads need a fence of their own).
pub fn fence_other_threads() {}

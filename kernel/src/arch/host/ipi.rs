//! Interrupts between CPUs: the host has one CPU, so there is nobody to interrupt.

use crate::smp::PerCpu;

/// Nothing to send on the host.
pub fn send(_cpu: &PerCpu) {}

/// Nothing is installed on the host.
pub fn leave_user_root() {}

/// The host has no TLB.
pub fn flush_everything_local() {}

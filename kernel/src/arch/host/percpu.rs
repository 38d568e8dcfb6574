//! The host runs everything as CPU 0.

use crate::smp::{PerCpu, CPUS};

/// Nothing to install on the host.
pub fn install(_cpu: &'static PerCpu) {}

/// CPU 0's record.
pub fn this() -> &'static PerCpu {
    &CPUS[0]
}

//! Interrupts between CPUs: the host has no CPUs to interrupt, but its threads are
//! simulated CPUs (see `cpu`), and [`fence_other_threads`] reaches them.

use crate::smp::PerCpu;
use std::sync::Once;

/// `membarrier` commands (`uapi/linux/membarrier.h`).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// Nothing to send on the host.
pub fn send(_cpu: &PerCpu) {}

/// Nothing is installed on the host.
pub fn leave_user_root() {}

/// The host has no TLB.
pub fn flush_everything_local() {}

/// Makes every other thread of this process execute a full memory barrier before
/// this returns (Linux's `membarrier`, private expedited: an IPI to each CPU that
/// runs one of our threads; a thread that does not run went through a context
/// switch, itself a barrier). What an IPI and its acknowledgement do for a CPU on
/// bare metal (`smp::fence_others`).
pub fn fence_other_threads() {
    static REGISTER: Once = Once::new();
    // Registering only enables the expedited command for this process.
    REGISTER.call_once(|| membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED));
    membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
}

/// The membarrier system call with command `cmd` (it must succeed).
fn membarrier(cmd: libc::c_long) {
    // SAFETY: membarrier takes no pointers; its commands only make CPUs fence.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long) };
    assert!(r == 0, "membarrier (command {cmd}) failed");
}

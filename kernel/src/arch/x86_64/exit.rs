//! Leaving QEMU through the `isa-debug-exit` device (I/O port 0xf4).
//!
//! Writing `v` makes QEMU exit with status `(v << 1) | 1`. The kernel uses
//! [`ExitCode::Success`] (status 33, which xtask maps to 0) and
//! [`ExitCode::Failure`] (status 35).

use super::port::outl;

const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What QEMU's exit status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything passed: QEMU exits with status 33.
    Success = 0x10,
    /// A test failed, a fault or a panic: QEMU exits with status 35.
    Failure = 0x11,
}

/// Exits QEMU with `code`; halts forever if the exit device is missing.
pub fn exit_qemu(code: ExitCode) -> ! {
    outl(DEBUG_EXIT_PORT, code as u32);
    super::cpu::halt_forever()
}

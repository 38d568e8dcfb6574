//! The few things system calls need from the machine, handed in once by the arch at
//! boot ([`install`]): where console output goes, a nanosecond clock since boot, a
//! fast-changing counter to stir random numbers with, and what programs execve takes
//! (ELF machine, AT_PLATFORM, AT_HWCAP). Until then (and on the host,
//! in tests) the last output is kept in a buffer ([`take_console_output`]), the clock reads 0
//! and entropy is a constant, so host tests see fixed values.

use crate::exec::elf::LoadOptions;
use crate::sync::IrqMutex;
use alloc::vec::Vec;

/// The programs this machine runs.
#[derive(Debug, Clone, Copy)]
pub struct ExecTarget {
    /// What the ELF loader accepts.
    pub elf: LoadOptions,
    /// AT_PLATFORM.
    pub platform: &'static [u8],
    /// AT_HWCAP.
    pub hwcap: fn() -> u64,
    /// Code that calls rt_sigreturn, mapped into every program at
    /// [`crate::exec::load::SIGRETURN_PAGE`] when not empty: where a handler
    /// installed without SA_RESTORER returns (aarch64's vDSO trampoline, which
    /// glibc relies on); empty where Linux requires SA_RESTORER (x86_64).
    pub sigreturn: &'static [u8],
}

/// Without a machine (the host): x86_64 programs, no hardware capabilities.
const HOST_TARGET: ExecTarget = ExecTarget {
    elf: LoadOptions::x86_64(),
    platform: b"x86_64",
    hwcap: || 0,
    sigreturn: &[],
};

/// The machine's hooks.
#[derive(Debug, Clone, Copy)]
pub struct MachineHooks {
    /// Writes a user program's bytes to the console.
    pub console: fn(&[u8]),
    /// Nanoseconds since the machine started.
    pub uptime_ns: fn() -> u64,
    /// A counter that changes fast (a cycle counter).
    pub entropy: fn() -> u64,
    /// The programs execve takes.
    pub exec: ExecTarget,
}

static HOOKS: IrqMutex<Option<MachineHooks>> = IrqMutex::new(None);
/// Console output while no console is installed (the last [`KEPT_MAX`] bytes).
static KEPT: IrqMutex<Vec<u8>> = IrqMutex::new(Vec::new());
/// Most bytes kept without a console.
pub const KEPT_MAX: usize = 64 * 1024;

/// Installs the machine's hooks (the arch, once at boot).
pub fn install(hooks: MachineHooks) {
    *HOOKS.lock() = Some(hooks);
}

fn hooks() -> Option<MachineHooks> {
    *HOOKS.lock()
}

/// Writes `bytes` to the console (or keeps them, without one).
pub fn console_write(bytes: &[u8]) {
    match hooks() {
        Some(h) => (h.console)(bytes),
        None => {
            let mut kept = KEPT.lock();
            kept.extend_from_slice(bytes);
            let excess = kept.len().saturating_sub(KEPT_MAX);
            kept.drain(..excess);
        }
    }
}

/// What was written while no console was installed (and forgets it).
pub fn take_console_output() -> Vec<u8> {
    core::mem::take(&mut *KEPT.lock())
}

/// Nanoseconds since boot (0 without a clock).
pub fn uptime_ns() -> u64 {
    hooks().map_or(0, |h| (h.uptime_ns)())
}

/// A fast-changing counter (a constant without one).
pub fn entropy() -> u64 {
    hooks().map_or(0x5eed, |h| (h.entropy)())
}

/// What execve takes on this machine.
pub fn exec_target() -> ExecTarget {
    hooks().map_or(HOST_TARGET, |h| h.exec)
}

//! EL0 on aarch64: the mechanism [`crate::task`] runs user threads on.
//!
//! * [`Frame`] is the [`TrapFrame`] the vector code pushes on `SP_EL1` for every
//!   exception: general registers, `SP_EL0`, `ELR_EL1`, `SPSR_EL1` and the SIMD/FP
//!   registers (the kernel itself uses FP/NEON, so every entry saves them; that is
//!   also the user's FP/SIMD switching, and [`FpuState`] has nothing left to do).
//! * A user thread's frame sits at the top of its kernel stack: when the vector code
//!   `eret`s after popping it, `SP_EL1` is back at the top, so the next exception
//!   from EL0 pushes its frame at the same place (no per-thread stack register to
//!   set, unlike x86_64's TSS). A new or forked thread's saved context resumes at the
//!   vector code's restore path ([`super::exceptions::trap_return`]).
//! * System calls: `svc #0`, number in x8 (the generic table, translated by
//!   [`super::syscall::translate`]), arguments in x0..x5, result in x0.
//! * Address spaces: the process's root in `TTBR0_EL1` (the user half), the kernel's
//!   in `TTBR1_EL1` for good ([`install_root`]). No ASIDs yet: a switch to another
//!   root flushes the whole TLB (`tlbi vmalle1`).
//! * The thread pointer is `TPIDR_EL0`, which user code writes itself: [`save_tls`]
//!   keeps it when a thread leaves the CPU, [`enter`] restores it.
//! * Synchronous exceptions from EL0 other than `svc` become a [`UserFault`]
//!   ([`on_user_sync`]), with the signal Linux's `arm64` fault tables give.

use super::exceptions::TrapFrame;
use super::{paging, syscall, timer};
use crate::exec::elf::LoadOptions;
use crate::memory::address_space::Access;
use crate::memory::PhysFrame;
use crate::process::{Aarch64Context, Tid};
use crate::syscall::Errno;
use crate::task::{self, Trap, UserFault, UserFrame};

pub use super::signal::{pop_signal_frame, push_signal_frame};

/// The user registers as the vector code saves them.
pub type Frame = TrapFrame;

/// AT_PLATFORM.
pub const PLATFORM: &[u8] = b"aarch64";
/// `mov x8, #139` (rt_sigreturn); `svc #0`: the return path of a handler installed
/// without SA_RESTORER, as Linux's vDSO `__kernel_rt_sigreturn` (glibc's aarch64
/// sigaction sets no restorer).
pub const SIGRETURN_TRAMPOLINE: &[u8] = &[0x68, 0x11, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4];
/// What exec accepts.
pub const ELF: LoadOptions = LoadOptions::aarch64();

/// ESR_EL1.EC values of exceptions from EL0 (ARM ARM D17.2.37).
mod ec {
    pub const UNKNOWN: u64 = 0x00;
    pub const ILLEGAL_STATE: u64 = 0x0e;
    pub const SVC64: u64 = 0x15;
    pub const SYSREG: u64 = 0x18;
    pub const INSTRUCTION_ABORT: u64 = 0x20;
    pub const PC_ALIGNMENT: u64 = 0x22;
    pub const DATA_ABORT: u64 = 0x24;
    pub const SP_ALIGNMENT: u64 = 0x26;
    pub const FP_EXCEPTION: u64 = 0x2c;
    pub const BREAKPOINT: u64 = 0x30;
    pub const SOFTWARE_STEP: u64 = 0x32;
    pub const WATCHPOINT: u64 = 0x34;
    pub const BRK: u64 = 0x3c;
}

const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGBUS: i32 = 7;
const SIGFPE: i32 = 8;
const SIGSEGV: i32 = 11;

impl UserFrame for TrapFrame {
    fn entry(pc: u64, sp: u64) -> Self {
        // SPSR 0: EL0t, interrupts unmasked, flags clear.
        TrapFrame {
            sp_el0: sp,
            elr: pc,
            ..TrapFrame::default()
        }
    }
    fn syscall(&self) -> Option<(usize, [usize; 6])> {
        let x = |i: usize| self.x[i] as usize;
        syscall::translate(x(8), [x(0), x(1), x(2), x(3), x(4), x(5)])
    }
    fn syscall_number(&self) -> Option<usize> {
        syscall::canonical(self.x[8] as usize)
    }
    fn set_return(&mut self, value: u64) {
        self.x[0] = value;
    }
    fn ip(&self) -> u64 {
        self.elr
    }
    fn sp(&self) -> u64 {
        self.sp_el0
    }
    fn set_sp(&mut self, sp: u64) {
        self.sp_el0 = sp;
    }
}

/// FP/SIMD state kept apart from the frame: none (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct FpuState;

impl FpuState {
    /// The state of a new thread.
    pub fn initial() -> FpuState {
        FpuState
    }
    /// Nothing to save: the frame holds the user's FP/SIMD registers.
    pub fn save(&mut self) {}
    /// Nothing to restore.
    pub fn restore(&self) {}
}

/// Prepares EL0: the core's user-task state. Call once after the kernel tables are
/// live.
pub fn init() {
    task::init();
}

/// The saved context of a thread whose kernel stack holds only a user frame, at
/// `frame_at`: it resumes by popping it and returning to EL0.
pub fn resume_context(frame_at: u64) -> Aarch64Context {
    Aarch64Context {
        sp: frame_at,
        lr: super::exceptions::trap_return(),
        ..Aarch64Context::default()
    }
}

/// Installs `root` as the user half (TTBR0) unless it is already there.
pub fn install_root(root: PhysFrame) {
    if root.start_address.0 != 0 && paging::active_user_root() != root {
        paging::set_user_root(root);
    }
}

/// The CPU state of the user thread about to run: its thread pointer.
pub fn enter(_stack_top: u64, tls: u64) {
    // SAFETY: TPIDR_EL0 is the user's thread pointer; the kernel never uses it.
    unsafe { core::arch::asm!("msr tpidr_el0, {}", in(reg) tls, options(nomem, nostack)) };
}

/// Makes the `svc` in `frame` run again when the thread returns to EL0 (x8 and
/// x0..x5 are as the caller left them): 4 bytes back.
pub fn rewind_syscall(frame: &mut TrapFrame) {
    frame.elr -= 4;
}

/// Keeps the thread pointer user code may have written (`TPIDR_EL0`) in `tls`.
pub fn save_tls(tls: &mut u64) {
    // SAFETY: reading TPIDR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, tpidr_el0", out(reg) * tls, options(nomem, nostack)) };
}

/// Calls only aarch64 has: none yet.
pub fn machine_call(_me: Tid, _num: usize, _a: [usize; 6]) -> Option<Result<usize, Errno>> {
    None
}

/// Nanoseconds since the VM started (the generic timer's virtual counter).
pub fn uptime_ns() -> u64 {
    timer::uptime_ns()
}

/// A fast-changing counter to stir the kernel's random numbers with.
pub fn entropy() -> u64 {
    timer::counter()
}

/// AT_HWCAP as Linux's arm64 builds it (`HWCAP_FP`, `HWCAP_ASIMD`, and the
/// crypto, CRC32 and atomics bits that ID_AA64ISAR0_EL1 reports).
pub fn hwcap() -> u64 {
    let isar0: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, id_aa64isar0_el1", out(reg) isar0, options(nomem, nostack))
    };
    let field = |shift: u32| (isar0 >> shift) & 0xf;
    let mut caps = (1 << 0) | (1 << 1); // FP, ASIMD
    if field(4) >= 1 {
        caps |= 1 << 3; // AES
    }
    if field(4) >= 2 {
        caps |= 1 << 4; // PMULL
    }
    if field(8) >= 1 {
        caps |= 1 << 5; // SHA1
    }
    if field(12) >= 1 {
        caps |= 1 << 6; // SHA2
    }
    if field(16) >= 1 {
        caps |= 1 << 7; // CRC32
    }
    if field(20) >= 2 {
        caps |= 1 << 8; // ATOMICS
    }
    caps
}

/// Access kind of a data abort (ESR.ISS.WnR) or instruction abort.
fn access_of(class: u64, esr: u64) -> Access {
    match (class, esr & (1 << 6) != 0) {
        (ec::INSTRUCTION_ABORT, _) => Access::Execute,
        (_, true) => Access::Write,
        (_, false) => Access::Read,
    }
}

/// What an abort from EL0 is: translation, access-flag and permission faults may be
/// resolved by the address space; an alignment fault is SIGBUS; the rest SIGSEGV.
fn abort_fault(class: u64, esr: u64, far: u64) -> UserFault {
    match esr & 0x3f {
        0x04..=0x0f => UserFault::Page {
            addr: far,
            access: access_of(class, esr),
        },
        0x21 => UserFault::Signal(SIGBUS),
        _ => UserFault::Signal(SIGSEGV),
    }
}

/// A synchronous exception from EL0 (`esr`, `far` as the CPU reported them): a
/// system call, or a fault for the core.
pub(super) fn on_user_sync(frame: &mut TrapFrame, esr: u64, far: u64) {
    let class = esr >> 26;
    let fault = match class {
        ec::SVC64 => return task::on_trap(frame, Trap::Syscall),
        ec::DATA_ABORT | ec::INSTRUCTION_ABORT => abort_fault(class, esr, far),
        ec::PC_ALIGNMENT | ec::SP_ALIGNMENT => UserFault::Signal(SIGBUS),
        ec::FP_EXCEPTION => UserFault::Signal(SIGFPE),
        ec::BRK | ec::BREAKPOINT | ec::SOFTWARE_STEP | ec::WATCHPOINT => UserFault::Signal(SIGTRAP),
        ec::UNKNOWN | ec::ILLEGAL_STATE | ec::SYSREG => UserFault::Signal(SIGILL),
        _ => UserFault::Signal(SIGILL),
    };
    task::on_trap(frame, Trap::Fault(fault));
}

//! Running code at EL0: the mechanism a user-process layer builds on.
//!
//! [`run`] loads a thread's user registers ([`UserContext`]) and drops to EL0 with
//! `eret`; it returns when the user code traps synchronously (a system call or a
//! fault), with the registers saved back and the reason ([`Trap`]). The caller decides
//! what happens next (answer the call and [`run`] again, or kill the process): a user
//! fault never reaches the kernel's fault reporter.
//!
//! How: `arch_user_enter` saves the callee-saved registers (x19..x30, d8..d15) and the
//! context pointer on the thread's kernel stack (`SP_EL1`), loads the user's general
//! and SIMD/FP registers, then `eret`s. Exceptions from EL0 use that
//! same stack: the vector code pushes a [`TrapFrame`] right below the save area. An
//! IRQ is handled in place (the thread may be preempted there, its frame waiting on
//! its own stack) and returns to EL0; a synchronous exception goes to [`leave`], which
//! copies the frame into the context and returns from `arch_user_enter` by restoring
//! the save area (the trap frame is dropped).
//!
//! The user's PSTATE is forced to EL0t with interrupts unmasked; only the condition
//! flags (NZCV) are kept from the context.

use super::exceptions::TrapFrame;
use crate::process::Tid;
use core::mem::{offset_of, size_of};

/// The user-visible registers of a thread at EL0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserContext {
    /// x0..=x30.
    pub x: [u64; 31],
    /// The user stack pointer (`SP_EL0`).
    pub sp: u64,
    /// Where user code continues (`ELR_EL1`): after a system call, the instruction
    /// after the `svc`; after a fault, the faulting instruction.
    pub pc: u64,
    /// PSTATE (`SPSR_EL1`); only NZCV is honoured on entry.
    pub pstate: u64,
    /// `ESR_EL1` of the last trap.
    pub esr: u64,
    /// `FAR_EL1` of the last trap (the faulting address of an abort).
    pub far: u64,
    /// The SIMD/FP registers q0..=q31.
    pub fp: [u128; 32],
    /// FP control register.
    pub fpcr: u64,
    /// FP status register.
    pub fpsr: u64,
}

/// Why user code stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    /// `svc #imm`: a system call (number in x8, arguments in x0..x5).
    Syscall,
    /// Any other synchronous exception (abort, undefined instruction, ...), with its
    /// exception class (ESR bits 31:26); `UserContext::esr` / `far` say more.
    Fault {
        /// ESR_EL1.EC.
        class: u8,
    },
}

/// ESR exception class of `svc` from AArch64.
const EC_SVC64: u64 = 0x15;
/// Bytes `arch_user_enter` keeps on the kernel stack: x19..x30, the context pointer
/// (and a pad), d8..d15.
const SAVE_AREA: usize = 176;
const SAVE_CONTEXT: usize = 96;
const SAVE_D8: usize = 112;
/// PSTATE bits user code may choose: the condition flags.
const PSTATE_NZCV: u64 = 0xf000_0000;

core::arch::global_asm!(
    r#"
.section .text.user, "ax"
.global arch_user_enter
arch_user_enter:
    sub sp, sp, #{save}
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    str x0, [sp, #{save_ctx}]
    stp d8, d9, [sp, #{save_d8}]
    stp d10, d11, [sp, #{save_d8} + 16]
    stp d12, d13, [sp, #{save_d8} + 32]
    stp d14, d15, [sp, #{save_d8} + 48]
    add x1, x0, #{fp_off}
    ldp q0, q1, [x1, #0]
    ldp q2, q3, [x1, #32]
    ldp q4, q5, [x1, #64]
    ldp q6, q7, [x1, #96]
    ldp q8, q9, [x1, #128]
    ldp q10, q11, [x1, #160]
    ldp q12, q13, [x1, #192]
    ldp q14, q15, [x1, #224]
    ldp q16, q17, [x1, #256]
    ldp q18, q19, [x1, #288]
    ldp q20, q21, [x1, #320]
    ldp q22, q23, [x1, #352]
    ldp q24, q25, [x1, #384]
    ldp q26, q27, [x1, #416]
    ldp q28, q29, [x1, #448]
    ldp q30, q31, [x1, #480]
    ldr x1, [x0, #{fpcr_off}]
    msr fpcr, x1
    ldr x1, [x0, #{fpsr_off}]
    msr fpsr, x1
    ldr x1, [x0, #{sp_off}]
    msr sp_el0, x1
    ldr x1, [x0, #{pc_off}]
    msr elr_el1, x1
    ldr x1, [x0, #{pstate_off}]
    and x1, x1, #{nzcv}
    msr spsr_el1, x1
    ldp x2, x3, [x0, #16]
    ldp x4, x5, [x0, #32]
    ldp x6, x7, [x0, #48]
    ldp x8, x9, [x0, #64]
    ldp x10, x11, [x0, #80]
    ldp x12, x13, [x0, #96]
    ldp x14, x15, [x0, #112]
    ldp x16, x17, [x0, #128]
    ldp x18, x19, [x0, #144]
    ldp x20, x21, [x0, #160]
    ldp x22, x23, [x0, #176]
    ldp x24, x25, [x0, #192]
    ldp x26, x27, [x0, #208]
    ldp x28, x29, [x0, #224]
    ldr x30, [x0, #240]
    ldp x0, x1, [x0, #0]
    eret

.global arch_user_leave
arch_user_leave:
    mov sp, x0
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #{save_d8}]
    ldp d10, d11, [sp, #{save_d8} + 16]
    ldp d12, d13, [sp, #{save_d8} + 32]
    ldp d14, d15, [sp, #{save_d8} + 48]
    add sp, sp, #{save}
    ret
"#,
    save = const SAVE_AREA,
    save_ctx = const SAVE_CONTEXT,
    save_d8 = const SAVE_D8,
    fp_off = const offset_of!(UserContext, fp),
    fpcr_off = const offset_of!(UserContext, fpcr),
    fpsr_off = const offset_of!(UserContext, fpsr),
    sp_off = const offset_of!(UserContext, sp),
    pc_off = const offset_of!(UserContext, pc),
    pstate_off = const offset_of!(UserContext, pstate),
    nzcv = const PSTATE_NZCV,
);

const _: () = assert!(offset_of!(UserContext, x) == 0);
const _: () = assert!(SAVE_CONTEXT + 8 <= SAVE_D8 && SAVE_D8 + 64 == SAVE_AREA);

extern "C" {
    fn arch_user_enter(ctx: *mut UserContext);
    fn arch_user_leave(save_area: usize) -> !;
}

/// Runs `ctx` at EL0 until it traps; see the module docs. The user half of the
/// active translation table must map the code and stack the context points at (with
/// `PageFlags::USER`); interrupts are unmasked while user code runs.
pub fn run(ctx: &mut UserContext) -> Trap {
    // SAFETY: `arch_user_enter` only returns through `arch_user_leave` (called by
    // `leave` with the save area it pushed), with the callee-saved registers and the
    // stack pointer restored as the ABI expects; `ctx` is exclusively borrowed for
    // the whole time and written only by `leave`. User code runs at EL0 and cannot
    // touch kernel memory (kernel pages lack AP[1]).
    unsafe { arch_user_enter(ctx) };
    match ctx.esr >> 26 {
        EC_SVC64 => Trap::Syscall,
        class => Trap::Fault { class: class as u8 },
    }
}

/// Called by the exception handler for a synchronous exception from EL0: saves the
/// user registers into the context `run` was given and returns from `run`.
pub(super) fn leave(frame: &TrapFrame, esr: u64, far: u64) -> ! {
    let save_area = frame as *const TrapFrame as usize + size_of::<TrapFrame>();
    // SAFETY: an exception from EL0 only happens while `arch_user_enter` has dropped
    // to EL0; the vector code pushed `frame` directly below its save area on the same
    // stack, whose context slot holds the `&mut UserContext` passed to `run`, still
    // exclusively borrowed by it.
    let ctx = unsafe { &mut **((save_area + SAVE_CONTEXT) as *const *mut UserContext) };
    ctx.x = frame.x;
    ctx.sp = frame.sp_el0;
    ctx.pc = frame.elr;
    ctx.pstate = frame.spsr;
    ctx.esr = esr;
    ctx.far = far;
    ctx.fp = frame.q;
    ctx.fpcr = frame.fpcr;
    ctx.fpsr = frame.fpsr;
    // SAFETY: `save_area` is the area `arch_user_enter` pushed (see above); restoring
    // it returns from `arch_user_enter` into `run`. The frames between (this
    // function, the trap handler, the trap frame) hold nothing that needs dropping.
    unsafe { arch_user_leave(save_area) }
}

/// Installs what thread `next` needs before it runs. User processes on aarch64 still
/// run on the kernel's tables (see the module docs), so there is nothing to switch.
pub fn activate(_next: Option<Tid>) {}

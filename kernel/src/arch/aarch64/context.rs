//! The context switch: save the running thread's callee-saved registers (AAPCS64:
//! x19..x28, the frame pointer x29, the link register x30) and stack pointer, load
//! another's.
//!
//! Field offsets come from `offset_of!` on the `#[repr(C)]`
//! [`Aarch64Context`], never from hand-written numbers. Caller-saved registers need no
//! saving: the switch is an ordinary function call for the compiler. A thread
//! preempted by the timer is switched away from inside the IRQ handler, so its
//! interrupted registers stay in the [`TrapFrame`] on its own kernel stack until it is
//! resumed.
//!
//! The switch pushes x29/x30 and the callee-saved FP registers d8..d15 (the kernel is
//! compiled with FP/NEON) on the old stack and saves `lr` = [`resume_point`], so a
//! saved context always resumes there and pops them. A context whose `lr` is neither
//! [`resume_point`] nor [`kernel_thread_start`] has never run (its `lr` is the
//! thread's entry, as `ThreadContext::new_thread` leaves it): [`prepare_first_run`]
//! turns it into one that enters through [`kernel_thread_start`], which unmasks
//! interrupts, calls the entry (kept in x19) and ends the thread when it returns.
//!
//! [`TrapFrame`]: super::exceptions::TrapFrame

pub use crate::process::context::Aarch64Context;

/// A context no thread has run in yet.
pub const EMPTY: Aarch64Context = Aarch64Context {
    x19_x28: [0; 10],
    fp: 0,
    lr: 0,
    sp: 0,
    on_cpu: 0,
};
use core::mem::offset_of;

core::arch::global_asm!(
    r#"
.section .text.context_switch, "ax"
.global arch_context_switch
arch_context_switch:
    stp x29, x30, [sp, #-16]!
    stp d8, d9, [sp, #-16]!
    stp d10, d11, [sp, #-16]!
    stp d12, d13, [sp, #-16]!
    stp d14, d15, [sp, #-16]!
    stp x19, x20, [x0, #{regs}]
    stp x21, x22, [x0, #{regs} + 16]
    stp x23, x24, [x0, #{regs} + 32]
    stp x25, x26, [x0, #{regs} + 48]
    stp x27, x28, [x0, #{regs} + 64]
    adr x9, arch_context_resume
    stp x29, x9, [x0, #{fp}]
    mov x9, sp
    str x9, [x0, #{sp}]
    add x9, x0, #{on_cpu}
    stlr xzr, [x9]
    ldp x19, x20, [x1, #{regs}]
    ldp x21, x22, [x1, #{regs} + 16]
    ldp x23, x24, [x1, #{regs} + 32]
    ldp x25, x26, [x1, #{regs} + 48]
    ldp x27, x28, [x1, #{regs} + 64]
    ldp x29, x30, [x1, #{fp}]
    ldr x9, [x1, #{sp}]
    mov sp, x9
    ret
.global arch_context_resume
arch_context_resume:
    ldp d14, d15, [sp], #16
    ldp d12, d13, [sp], #16
    ldp d10, d11, [sp], #16
    ldp d8, d9, [sp], #16
    ldp x29, x30, [sp], #16
    ret

.global arch_kernel_thread_start
arch_kernel_thread_start:
    msr daifclr, #3
    mov x29, xzr
    blr x19
    bl {exit}
    brk #0
"#,
    regs = const offset_of!(Aarch64Context, x19_x28),
    fp = const offset_of!(Aarch64Context, fp),
    sp = const offset_of!(Aarch64Context, sp),
    on_cpu = const offset_of!(Aarch64Context, on_cpu),
    exit = sym super::thread::exit_current_thread,
);

const _: () = assert!(offset_of!(Aarch64Context, lr) == offset_of!(Aarch64Context, fp) + 8);

extern "C" {
    fn arch_context_switch(from: *mut Aarch64Context, to: *const Aarch64Context);
    fn arch_context_resume();
    fn arch_kernel_thread_start();
}

/// Where a switched-out context resumes.
pub fn resume_point() -> u64 {
    arch_context_resume as *const () as u64
}

/// Where a new kernel thread starts (the entry is in x19).
pub fn kernel_thread_start() -> u64 {
    arch_kernel_thread_start as *const () as u64
}

/// Makes a never-run context (`lr` = the thread's entry) enter through
/// [`kernel_thread_start`]. Contexts that already ran, and those of user threads
/// (which resume at the vector code's restore path), are left alone.
pub fn prepare_first_run(ctx: &mut Aarch64Context) {
    let user = super::exceptions::trap_return();
    if ctx.lr != resume_point() && ctx.lr != kernel_thread_start() && ctx.lr != user {
        ctx.x19_x28[0] = ctx.lr;
        ctx.lr = kernel_thread_start();
        ctx.fp = 0;
    }
}

/// Saves the running context into `from` and resumes `to`.
///
/// # Safety
/// * interrupts are masked and no spinlock is held;
/// * `from` and `to` point to live contexts that nothing else touches during the
///   switch; `to` was filled by a previous switch or by [`prepare_first_run`], with a
///   stack that is mapped and not in use.
pub unsafe fn switch(from: *mut Aarch64Context, to: *const Aarch64Context) {
    // SAFETY: the caller guarantees the contexts and stacks are valid (see above).
    unsafe { arch_context_switch(from, to) };
}

//! Kernel-thread context switch (AAPCS64).
//!
//! A switch happens inside a function call, so only what the callee must preserve is
//! saved: x19..x28, the frame pointer x29, the link register x30 (where the thread
//! resumes) and the stack pointer. Everything else is either dead at the call or, for
//! a thread preempted by the timer, already in the [`TrapFrame`] the vector code
//! pushed on that thread's stack.
//!
//! [`Context`] is `#[repr(C)]` and the assembly addresses its fields through
//! `offset_of!`. A new thread starts in `aarch64_thread_start`, which unmasks
//! interrupts and calls `entry(arg)` (kept in x19/x20 by [`Context::new_thread`]).
//!
//! [`TrapFrame`]: super::exceptions::TrapFrame

use core::mem::offset_of;

/// Callee-saved state of a thread that is not running.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// x19..=x28.
    pub x19_x28: [u64; 10],
    /// Frame pointer (x29).
    pub fp: u64,
    /// Link register (x30): where the thread resumes.
    pub lr: u64,
    /// Stack pointer (SP_EL1).
    pub sp: u64,
}

/// Entry function of a kernel thread; it must never return.
pub type ThreadEntry = extern "C" fn(usize) -> !;

extern "C" {
    fn aarch64_switch_context(from: *mut Context, to: *const Context);
    fn aarch64_thread_start();
}

core::arch::global_asm!(
    r#"
.section .text.switch, "ax"
.global aarch64_switch_context
aarch64_switch_context:
    stp x19, x20, [x0, #{regs}]
    stp x21, x22, [x0, #{regs} + 16]
    stp x23, x24, [x0, #{regs} + 32]
    stp x25, x26, [x0, #{regs} + 48]
    stp x27, x28, [x0, #{regs} + 64]
    stp x29, x30, [x0, #{fp}]
    mov x9, sp
    str x9, [x0, #{sp}]
    ldp x19, x20, [x1, #{regs}]
    ldp x21, x22, [x1, #{regs} + 16]
    ldp x23, x24, [x1, #{regs} + 32]
    ldp x25, x26, [x1, #{regs} + 48]
    ldp x27, x28, [x1, #{regs} + 64]
    ldp x29, x30, [x1, #{fp}]
    ldr x9, [x1, #{sp}]
    mov sp, x9
    ret

.global aarch64_thread_start
aarch64_thread_start:
    msr daifclr, #3
    mov x0, x20
    blr x19
1:
    wfe
    b 1b
"#,
    regs = const offset_of!(Context, x19_x28),
    fp = const offset_of!(Context, fp),
    sp = const offset_of!(Context, sp),
);

const _: () = assert!(offset_of!(Context, lr) == offset_of!(Context, fp) + 8);

impl Context {
    /// A context that, when switched to, runs `entry(arg)` on the stack whose top is
    /// `stack_top` (rounded down to 16 bytes), with interrupts unmasked.
    pub fn new_thread(entry: ThreadEntry, arg: usize, stack_top: u64) -> Self {
        let mut regs = [0; 10];
        regs[0] = entry as *const () as u64;
        regs[1] = arg as u64;
        Context {
            x19_x28: regs,
            fp: 0,
            lr: aarch64_thread_start as *const () as u64,
            sp: stack_top & !15,
        }
    }
}

/// Saves the running thread's registers in `from` and continues with `to`. Returns
/// when some other thread switches back to `from`.
///
/// # Safety
/// * `from` must stay valid (and not be read by anyone else) until the switch back;
/// * `to` must hold a context saved by this function or made by
///   [`Context::new_thread`], whose stack is still allocated and unused by others;
/// * interrupts must be masked (the IRQ handler or an `IrqMutex` held by the caller).
pub unsafe fn switch(from: *mut Context, to: *const Context) {
    // SAFETY: the caller's contract above is exactly what the routine needs.
    unsafe { aarch64_switch_context(from, to) }
}

/// What the timer tick does with the scheduler's choice. Kernel threads are switched
/// by whoever owns their contexts (the process layer, or a test's tick hook, see
/// [`super::irq::set_tick_hook`]); until the process layer registers, nothing is
/// switched here.
pub fn preempt(_next: Option<crate::process::Tid>) {}

//! The context switch: save the running thread's callee-saved registers, flags, stack
//! pointer and resume address, load another's.
//!
//! Field offsets come from `offset_of!` on the `#[repr(C)]` context struct, never from
//! hand-written numbers. Caller-saved registers need no saving: the switch is an
//! ordinary function call for the compiler. A thread preempted by the timer is
//! switched away from inside the interrupt handler, so its interrupted registers stay
//! in the trap frame on its own kernel stack until it is resumed.
//!
//! A context whose `rip` is neither [`resume_point`], [`kernel_thread_start`] nor
//! the ring-3 return (`syscall_entry::user_return`) has never run: [`prepare_first_run`] turns it into one that enters through
//! [`kernel_thread_start`], which unmasks interrupts, calls the entry with a
//! correctly aligned stack and ends the thread when the entry returns.

pub use crate::process::context::X86_64Context;

/// A context no thread has run in yet (interrupts off, reserved RFLAGS bit 1 set).
pub const EMPTY: X86_64Context = X86_64Context {
    rbx: 0,
    rbp: 0,
    r12: 0,
    r13: 0,
    r14: 0,
    r15: 0,
    rflags: 0x2,
    rsp: 0,
    rip: 0,
    on_cpu: 0,
};
use core::mem::offset_of;

core::arch::global_asm!(
    r#"
.section .text.context_switch, "ax"
.global arch_context_switch
arch_context_switch:
    mov [rdi + {rbx}], rbx
    mov [rdi + {rbp}], rbp
    mov [rdi + {r12}], r12
    mov [rdi + {r13}], r13
    mov [rdi + {r14}], r14
    mov [rdi + {r15}], r15
    pushfq
    pop qword ptr [rdi + {rflags}]
    mov [rdi + {rsp}], rsp
    lea rax, [rip + arch_context_resume]
    mov [rdi + {rip}], rax
    mov qword ptr [rdi + {on_cpu}], 0
    mov rbx, [rsi + {rbx}]
    mov rbp, [rsi + {rbp}]
    mov r12, [rsi + {r12}]
    mov r13, [rsi + {r13}]
    mov r14, [rsi + {r14}]
    mov r15, [rsi + {r15}]
    mov rsp, [rsi + {rsp}]
    push qword ptr [rsi + {rflags}]
    popfq
    jmp qword ptr [rsi + {rip}]
.global arch_context_resume
arch_context_resume:
    ret

.global arch_kernel_thread_start
arch_kernel_thread_start:
    sti
    and rsp, -16
    call r12
    call {exit}
    ud2
"#,
    rbx = const offset_of!(X86_64Context, rbx),
    rbp = const offset_of!(X86_64Context, rbp),
    r12 = const offset_of!(X86_64Context, r12),
    r13 = const offset_of!(X86_64Context, r13),
    r14 = const offset_of!(X86_64Context, r14),
    r15 = const offset_of!(X86_64Context, r15),
    rflags = const offset_of!(X86_64Context, rflags),
    rsp = const offset_of!(X86_64Context, rsp),
    rip = const offset_of!(X86_64Context, rip),
    on_cpu = const offset_of!(X86_64Context, on_cpu),
    exit = sym super::thread::exit_current_thread,
);

extern "C" {
    fn arch_context_switch(from: *mut X86_64Context, to: *const X86_64Context);
    fn arch_context_resume();
    fn arch_kernel_thread_start();
}

/// Where a switched-out context resumes.
pub fn resume_point() -> u64 {
    arch_context_resume as *const () as u64
}

/// Where a new kernel thread starts (the entry is in `r12`).
pub fn kernel_thread_start() -> u64 {
    arch_kernel_thread_start as *const () as u64
}

/// Makes a never-run context (`rip` = the thread's entry) enter through
/// [`kernel_thread_start`]. Contexts that already ran are left alone.
pub fn prepare_first_run(ctx: &mut X86_64Context) {
    let user = super::syscall_entry::user_return();
    if ctx.rip != resume_point() && ctx.rip != kernel_thread_start() && ctx.rip != user {
        ctx.r12 = ctx.rip;
        ctx.rip = kernel_thread_start();
        ctx.rflags = 0x2;
    }
}

/// Saves the running context into `from` and resumes `to`.
///
/// # Safety
/// * interrupts are masked and no spinlock is held;
/// * `from` and `to` point to live contexts that nothing else touches during the
///   switch; `to` was filled by a previous switch or by [`prepare_first_run`], with a
///   stack that is mapped and not in use.
pub unsafe fn switch(from: *mut X86_64Context, to: *const X86_64Context) {
    // SAFETY: the caller guarantees the contexts and stacks are valid (see above).
    unsafe { arch_context_switch(from, to) };
}

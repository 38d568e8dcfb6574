//! The `syscall` instruction: MSR setup, the entry stub and the way back to ring 3.
//!
//! ## Entry
//! `syscall` leaves the user `rip` in `rcx` and `rflags` in `r11`, loads CS/SS from
//! STAR and masks IF/DF/TF/AC (FMASK), but keeps the user stack. The stub saves the
//! user `rsp` in a scratch slot, switches to the running thread's kernel stack
//! ([`SYSCALL_STACK`], the same top as TSS.RSP0, set on every thread switch) and
//! pushes a [`TrapFrame`] exactly as an interrupt from ring 3 would (SS, RSP,
//! RFLAGS, CS, RIP, error code 0, vector [`SYSCALL_VECTOR`], then the general
//! registers). So a user thread in the kernel always has its user registers in one
//! frame at the top of its kernel stack, whichever way it entered.
//!
//! Interrupts stay masked for the whole system call (the handler switches threads
//! when a call blocks; the switch keeps them masked). The scratch slot and the stack
//! top are the CPU's own ([`PerCpu`] through GS, see `percpu`).
//!
//! GS: the kernel's GS base is the CPU's `PerCpu` (see `percpu`); ring 3 has its
//! own (a user may load any selector into GS), kept in IA32_KERNEL_GS_BASE while
//! the kernel runs. Every way in from ring 3 starts with `swapgs`, every way back
//! ends with one (the interrupt entry in `idt` does the same when the frame's CS is
//! ring 3's).
//!
//! ## Exit
//! [`user_return`] pops a frame and returns to ring 3. After a system call it uses
//! `sysretq` when the return address is canonical (with `rcx = rip`, `r11 = rflags`
//! as Linux leaves them); otherwise, and for every other frame (interrupts, new
//! threads), `iretq`: `sysret` with a non-canonical `rcx` would fault in ring 0.

use super::cpu::{rdmsr, wrmsr};
use super::gdt::{KERNEL_CS, USER_CS, USER_DS};
use super::idt::TrapFrame;
use crate::smp::PerCpu;
use core::mem::offset_of;
use core::sync::atomic::Ordering;

/// Vector number recorded in the frames of system calls.
pub const SYSCALL_VECTOR: u64 = 0x100;

const IA32_EFER: u32 = 0xc000_0080;
const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
const EFER_SCE: u64 = 1;
/// RFLAGS bits cleared on entry: TF, IF, DF, IOPL, NT, AC (as Linux).
const FMASK: u64 = 0x4_7700;

/// RFLAGS bits ring 3 never returns with: IOPL (0x3000) and NT (0x4000).
const USER_FLAGS_CLEARED: u64 = 0x7000;
/// RFLAGS.IF.
const RFLAGS_IF: u64 = 0x200;

core::arch::global_asm!(
    r#"
.section .text.syscall, "ax"
.global arch_syscall_entry
arch_syscall_entry:
    swapgs
    mov gs:[{user_rsp}], rsp
    mov rsp, gs:[{stack}]
    push {user_ds}
    push qword ptr gs:[{user_rsp}]
    push r11
    push {user_cs}
    push rcx
    push 0
    push {vector}
"#,
    push_gprs!(),
    r#"
    mov rdi, rsp
    cld
    call {dispatch}
    test rax, rax
    jz arch_user_return
"#,
    pop_gprs!(),
    r#"
    mov rsp, [rsp + 40]
    swapgs
    sysretq

.global arch_user_return
arch_user_return:
"#,
    pop_gprs!(),
    r#"
    add rsp, 16
    swapgs
    iretq
"#,
    user_rsp = const offset_of!(PerCpu, user_sp),
    stack = const offset_of!(PerCpu, syscall_stack),
    user_ds = const USER_DS as u64,
    user_cs = const USER_CS as u64,
    vector = const SYSCALL_VECTOR,
    dispatch = sym syscall_dispatch,
);

extern "C" {
    fn arch_syscall_entry();
    fn arch_user_return();
}

/// Where a thread whose kernel stack holds only a user [`TrapFrame`] (at the saved
/// `rsp`) resumes: it pops the frame and enters ring 3.
pub fn user_return() -> u64 {
    arch_user_return as *const () as u64
}

/// Turns `syscall` on: EFER.SCE, the selectors (STAR), the entry (LSTAR) and the
/// flags to mask (FMASK). See `gdt` for why the selector bases are 0x08 and 0x10.
pub fn init() {
    let star = (u64::from(KERNEL_DS_FOR_SYSRET) << 48) | (u64::from(KERNEL_CS) << 32);
    // SAFETY: these MSRs exist on every x86_64 CPU; the entry stub is ready and the
    // GDT has the selector layout STAR describes.
    unsafe {
        wrmsr(IA32_EFER, rdmsr(IA32_EFER) | EFER_SCE);
        wrmsr(IA32_STAR, star);
        wrmsr(IA32_LSTAR, arch_syscall_entry as *const () as u64);
        wrmsr(IA32_FMASK, FMASK);
    }
}

/// STAR's SYSRET base: user SS = base + 8 (0x1b), user CS = base + 16 (0x23).
const KERNEL_DS_FOR_SYSRET: u16 = super::gdt::KERNEL_DS;

/// Sets the kernel stack this CPU's next `syscall` switches to (the running
/// thread's top).
pub fn set_stack(top: u64) {
    crate::smp::this()
        .syscall_stack
        .store(top, Ordering::Relaxed);
}

/// Called by the stub with the saved frame; returns whether `sysretq` may be used.
extern "C" fn syscall_dispatch(frame: &mut TrapFrame) -> u64 {
    crate::task::on_trap(frame, crate::task::Trap::Syscall);
    // Whatever happened to the frame, ring 3 gets interrupts on, IOPL 0, NT clear.
    frame.rflags = (frame.rflags & !USER_FLAGS_CLEARED) | RFLAGS_IF;
    let sysret_ok = frame.vector == SYSCALL_VECTOR
        && frame.rip < 0x0000_8000_0000_0000
        && frame.cs == u64::from(USER_CS)
        && frame.ss == u64::from(USER_DS);
    if sysret_ok {
        frame.rcx = frame.rip;
        frame.r11 = frame.rflags;
    }
    u64::from(sysret_ok)
}

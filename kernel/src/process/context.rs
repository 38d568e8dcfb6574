//! Saved CPU contexts of threads that are not running.
//!
//! A context holds exactly what a cooperative kernel-to-kernel switch must preserve:
//! the callee-saved registers of the platform ABI, the stack pointer, and the address
//! at which the thread resumes. Everything else (caller-saved registers, the user-mode
//! register file) lives on the thread's kernel stack, pushed by the trap entry.
//!
//! Both structs are `#[repr(C)]` so the arch switch routine (`global_asm!` or a naked
//! function) can address fields with `core::mem::offset_of!`, never hand-written
//! numbers. [`Context`] names the one for the compiled target (x86_64 on the host).
//!
//! Invariant: a context is only read or written by the switch routine while its thread
//! is not running, and it lives inside a boxed [`Thread`](super::Thread), so its
//! address is stable for the thread's whole life.

use crate::memory::VirtAddr;

/// Callee-saved state of an x86_64 thread (System V ABI).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct X86_64Context {
    /// Callee-saved general-purpose registers.
    pub rbx: u64,
    /// Frame pointer.
    pub rbp: u64,
    /// Callee-saved.
    pub r12: u64,
    /// Callee-saved.
    pub r13: u64,
    /// Callee-saved.
    pub r14: u64,
    /// Callee-saved.
    pub r15: u64,
    /// Flags at the switch (interrupt flag included).
    pub rflags: u64,
    /// Kernel stack pointer.
    pub rsp: u64,
    /// Where the thread resumes (the switch routine `jmp`s / `ret`s there).
    pub rip: u64,
    /// Non-zero while a CPU runs on this context (its registers are not saved
    /// here yet); the switch routine clears it once they are.
    pub on_cpu: u64,
}

/// Callee-saved state of an aarch64 thread (AAPCS64).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aarch64Context {
    /// Callee-saved x19..=x28.
    pub x19_x28: [u64; 10],
    /// Frame pointer (x29).
    pub fp: u64,
    /// Link register (x30): where the thread resumes.
    pub lr: u64,
    /// Kernel stack pointer (SP_EL1).
    pub sp: u64,
    /// Non-zero while a CPU runs on this context (its registers are not saved
    /// here yet); the switch routine clears it once they are.
    pub on_cpu: u64,
}

/// Interface the scheduler-side code needs from a context, for either architecture.
pub trait ThreadContext: Default + Copy {
    /// A context that starts at `entry` on a stack whose top is `stack_top` (the top
    /// is rounded down to 16 bytes, as both ABIs require).
    fn new_thread(entry: VirtAddr, stack_top: VirtAddr) -> Self;
    /// The address the thread resumes at.
    fn resume_address(&self) -> VirtAddr;
    /// The saved stack pointer.
    fn stack_pointer(&self) -> VirtAddr;
}

/// RFLAGS with only the reserved bit 1 set: interrupts stay masked until the entry
/// code enables them.
const RFLAGS_INITIAL: u64 = 0x2;

impl ThreadContext for X86_64Context {
    fn new_thread(entry: VirtAddr, stack_top: VirtAddr) -> Self {
        let rsp = stack_top.align_down(16).as_u64();
        X86_64Context {
            rsp,
            rip: entry.as_u64(),
            rflags: RFLAGS_INITIAL,
            ..Default::default()
        }
    }
    fn resume_address(&self) -> VirtAddr {
        VirtAddr::new_truncate(self.rip)
    }
    fn stack_pointer(&self) -> VirtAddr {
        VirtAddr::new_truncate(self.rsp)
    }
}

impl ThreadContext for Aarch64Context {
    fn new_thread(entry: VirtAddr, stack_top: VirtAddr) -> Self {
        let sp = stack_top.align_down(16).as_u64();
        Aarch64Context {
            sp,
            lr: entry.as_u64(),
            ..Default::default()
        }
    }
    fn resume_address(&self) -> VirtAddr {
        VirtAddr::new_truncate(self.lr)
    }
    fn stack_pointer(&self) -> VirtAddr {
        VirtAddr::new_truncate(self.sp)
    }
}

/// The context type of the compiled target.
#[cfg(not(target_arch = "aarch64"))]
pub type Context = X86_64Context;
/// The context type of the compiled target.
#[cfg(target_arch = "aarch64")]
pub type Context = Aarch64Context;

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn x86_layout_is_stable() {
        assert_eq!(offset_of!(X86_64Context, rbx), 0);
        assert_eq!(offset_of!(X86_64Context, r15), 40);
        assert_eq!(offset_of!(X86_64Context, rsp), 56);
        assert_eq!(offset_of!(X86_64Context, rip), 64);
        assert_eq!(offset_of!(X86_64Context, on_cpu), 72);
        assert_eq!(core::mem::size_of::<X86_64Context>(), 80);
    }

    #[test]
    fn aarch64_layout_is_stable() {
        assert_eq!(offset_of!(Aarch64Context, fp), 80);
        assert_eq!(offset_of!(Aarch64Context, lr), 88);
        assert_eq!(offset_of!(Aarch64Context, sp), 96);
    }

    #[test]
    fn new_thread_aligns_stack() {
        let c = X86_64Context::new_thread(VirtAddr::new(0x400000), VirtAddr::new(0x8009));
        assert_eq!(c.stack_pointer().as_u64(), 0x8000);
        assert_eq!(c.resume_address().as_u64(), 0x400000);
        let a = Aarch64Context::new_thread(VirtAddr::new(0x400000), VirtAddr::new(0x800f));
        assert_eq!(a.sp, 0x8000);
        assert_eq!(a.lr, 0x400000);
    }
}

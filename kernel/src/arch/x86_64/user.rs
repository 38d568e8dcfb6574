//! Ring 3 on x86_64: the mechanism [`crate::task`] runs user threads on.
//!
//! * [`Frame`] is the [`TrapFrame`] the `syscall` entry ([`super::syscall_entry`]) and
//!   the exception entry ([`super::idt`]) push at the top of a user thread's kernel
//!   stack; system calls use Linux x86_64's numbering, which is the kernel's own.
//! * A new or forked thread's saved context resumes at
//!   [`syscall_entry::user_return`], which pops that frame into ring 3 with `iretq`.
//! * Switching to a user thread ([`enter`], [`install_root`]): TSS.RSP0 and the
//!   `syscall` stack = its kernel stack top, CR3 = its process's root (reloaded only
//!   when it differs), FS base = its thread pointer (`UserRegs::tls`, kept current by
//!   arch_prctl and clone). The x87/SSE registers are [`FpuState`], moved lazily by the
//!   core (the kernel itself is built soft-float and never touches them).
//! * Exceptions from ring 3 become a [`UserFault`] for the core ([`on_user_exception`]).

use super::cpu::{self, FpuState as CpuFpuState};
use super::idt::TrapFrame;
use super::{gdt, paging, syscall_entry, timer};
use crate::exec::elf::LoadOptions;
use crate::memory::address_space::{Access, TASK_SIZE};
use crate::memory::PhysFrame;
use crate::process::{Tid, X86_64Context, PROCESS_TABLE};
use crate::syscall::{self as sys, Errno, EINVAL, EPERM};
use crate::task::{self, Trap, UserFault, UserFrame};

pub use super::signal::{pop_signal_frame, push_signal_frame};

/// The user registers as the entries save them.
pub type Frame = TrapFrame;
/// The x87/SSE registers of a user thread.
pub type FpuState = CpuFpuState;

/// AT_PLATFORM.
pub const PLATFORM: &[u8] = b"x86_64";
/// None: on x86_64 Linux a handler needs SA_RESTORER (libc always sets it).
pub const SIGRETURN_TRAMPOLINE: &[u8] = &[];
/// What exec accepts.
pub const ELF: LoadOptions = LoadOptions::x86_64();
/// RFLAGS of a thread entering user mode: IF and the reserved bit 1.
const USER_RFLAGS: u64 = 0x202;
const ARCH_SET_FS: usize = 0x1002;
const ARCH_GET_FS: usize = 0x1003;

impl UserFrame for TrapFrame {
    fn entry(rip: u64, rsp: u64) -> Self {
        TrapFrame {
            r15: 0,
            r14: 0,
            r13: 0,
            r12: 0,
            r11: 0,
            r10: 0,
            r9: 0,
            r8: 0,
            rbp: 0,
            rdi: 0,
            rsi: 0,
            rdx: 0,
            rcx: 0,
            rbx: 0,
            rax: 0,
            vector: 0,
            error_code: 0,
            rip,
            cs: u64::from(gdt::USER_CS),
            rflags: USER_RFLAGS,
            rsp,
            ss: u64::from(gdt::USER_DS),
        }
    }
    fn syscall(&self) -> Option<(usize, [usize; 6])> {
        let args = [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9];
        Some((self.rax as usize, args.map(|a| a as usize)))
    }
    fn syscall_number(&self) -> Option<usize> {
        Some(self.rax as usize)
    }
    fn set_return(&mut self, value: u64) {
        self.rax = value;
    }
    fn ip(&self) -> u64 {
        self.rip
    }
    fn sp(&self) -> u64 {
        self.rsp
    }
    fn set_sp(&mut self, sp: u64) {
        self.rsp = sp;
    }
}

/// Prepares ring 3: the core's user-task state, SSE on, the `syscall` MSRs. Call
/// once after the kernel tables are live.
pub fn init() {
    task::init();
    cpu::enable_sse();
    syscall_entry::init();
}

/// The saved context of a thread whose kernel stack holds only a user frame, at
/// `frame_at`: it resumes by popping it into ring 3.
pub fn resume_context(frame_at: u64) -> X86_64Context {
    X86_64Context {
        rsp: frame_at,
        rip: syscall_entry::user_return(),
        rflags: 0x2,
        ..X86_64Context::default()
    }
}

/// Installs `root` in CR3 unless it is already there.
pub fn install_root(root: PhysFrame) {
    if paging::active_root() != Some(root) && root.start_address.0 != 0 {
        paging::set_active_root(root);
    }
}

/// The CPU state of the user thread about to run: the stack its next entry into
/// ring 0 uses, and its thread pointer.
pub fn enter(stack_top: u64, tls: u64) {
    gdt::set_kernel_stack(stack_top);
    syscall_entry::set_stack(stack_top);
    cpu::set_fs_base(tls);
}

/// Makes the `syscall` in `frame` run again when the thread returns to ring 3 (the
/// number is still in rax, the arguments in their registers): 2 bytes back.
pub fn rewind_syscall(frame: &mut TrapFrame) {
    frame.rip -= 2;
}

/// Nothing to do: user code cannot change the FS base without arch_prctl, which
/// keeps `UserRegs::tls` current.
pub fn save_tls(_tls: &mut u64) {}

/// Calls only x86_64 has: arch_prctl.
pub fn machine_call(me: Tid, num: usize, a: [usize; 6]) -> Option<Result<usize, Errno>> {
    (num == sys::SYS_ARCH_PRCTL).then(|| arch_prctl(me, a[0], a[1]))
}

fn arch_prctl(me: Tid, code: usize, addr: usize) -> Result<usize, Errno> {
    match code {
        ARCH_SET_FS => {
            if addr as u64 >= TASK_SIZE {
                return Err(EPERM);
            }
            let mut table = PROCESS_TABLE.lock();
            table.thread_mut(me).ok_or(sys::ESRCH)?.user.tls = addr as u64;
            cpu::set_fs_base(addr as u64);
            Ok(0)
        }
        ARCH_GET_FS => {
            let tls = PROCESS_TABLE.lock().thread(me).ok_or(sys::ESRCH)?.user.tls;
            task::with_space(me, |s| Ok(s.copy_to_user(addr as u64, &tls.to_le_bytes())?))?;
            Ok(0)
        }
        _ => Err(EINVAL),
    }
}

/// Nanoseconds since the VM started (TSC).
pub fn uptime_ns() -> u64 {
    let per_ms = timer::tsc_per_ms().max(1);
    let tsc = cpu::rdtsc();
    (tsc / per_ms) * 1_000_000 + (tsc % per_ms) * 1_000_000 / per_ms
}

/// A fast-changing counter to stir the kernel's random numbers with.
pub fn entropy() -> u64 {
    cpu::rdtsc()
}

/// AT_HWCAP on x86_64: CPUID leaf 1, EDX.
pub fn hwcap() -> u64 {
    u64::from(core::arch::x86_64::__cpuid(1).edx)
}

/// Linux's signal for an exception vector raised in user mode.
fn signal_for(vector: u64) -> i32 {
    match vector {
        0 | 16 | 19 => 8, // divide error, x87, SIMD: SIGFPE
        1 | 3 => 5,       // debug, breakpoint: SIGTRAP
        6 => 4,           // invalid opcode: SIGILL
        17 => 7,          // alignment check: SIGBUS
        _ => 11,          // page fault, general protection, ...: SIGSEGV
    }
}

fn access_of(error_code: u64) -> Access {
    if error_code & (1 << 4) != 0 {
        Access::Execute
    } else if error_code & (1 << 1) != 0 {
        Access::Write
    } else {
        Access::Read
    }
}

/// An exception in ring 3, handed to the core as a page fault or a signal.
pub(super) fn on_user_exception(frame: &mut TrapFrame) {
    let fault = match frame.vector {
        14 => UserFault::Page {
            addr: cpu::read_cr2(),
            access: access_of(frame.error_code),
        },
        v => UserFault::Signal(signal_for(v)),
    };
    task::on_trap(frame, Trap::Fault(fault));
}

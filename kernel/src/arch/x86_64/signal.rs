//! The x86_64 signal frame: Linux's `struct rt_sigframe` on the user stack.
//!
//! ```text
//! frame + 0     pretcode            the restorer (SA_RESTORER; libc's __restore_rt)
//! frame + 8     struct ucontext:    uc_flags, uc_link, uc_stack (ss_sp, ss_flags, ss_size),
//! frame + 48      uc_mcontext       struct sigcontext: r8..r15, rdi, rsi, rbp, rbx, rdx,
//!                                   rax, rcx, rsp, rip, eflags, cs/gs/fs/ss, err, trapno,
//!                                   oldmask, cr2, fpstate pointer, 8 reserved words
//! frame + 304     uc_sigmask        the mask to restore
//! frame + 312   struct siginfo      si_signo, si_errno, si_code, si_pid, si_uid (128 bytes)
//! above         the FXSAVE image    512 bytes, 64-byte aligned (`fpstate` points here)
//! ```
//! The frame sits below the 128-byte red zone, 16-byte aligned minus 8 (as after a
//! `call`), and the handler starts with rdi = signal, rsi = &siginfo, rdx = &ucontext.
//! The handler returns into the restorer, whose `rt_sigreturn` finds the frame at
//! rsp - 8 (the `ret` popped pretcode).

use super::cpu::FpuState;
use super::gdt;
use super::idt::TrapFrame;
use crate::memory::address_space::TASK_SIZE;
use crate::memory::frame_allocator::GlobalFrames;
use crate::process::UserSpace;
use crate::syscall::misc::StackT;
use crate::syscall::{Errno, EFAULT};
use crate::task::signal::{get_u64, put_u64, Delivery};

const RED_ZONE: u64 = 128;
const FRAME_SIZE: u64 = 440;
const UC: usize = 8;
const MCONTEXT: usize = UC + 40;
const SIGMASK: usize = UC + 296;
const SIGINFO: usize = 312;
const FPSTATE_SIZE: u64 = 512;
/// uc_flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, as Linux sets them.
const UC_FLAGS: u64 = 0x6;
/// RFLAGS bits a signal frame may set (Linux's FIX_EFLAGS): CF PF AF ZF SF TF DF OF
/// AC (the rest, IF among them, is the kernel's).
const USER_FLAGS: u64 = 0x4_0dd5;
/// RFLAGS bits cleared for the handler: TF, DF, RF.
const HANDLER_CLEARS: u64 = 0x1_0500;
/// MXCSR bits that may be set (the rest would fault in `fxrstor`).
const MXCSR_VALID: u32 = 0xffbf;

/// The general registers in `struct sigcontext` order (r8 first).
fn gregs(f: &TrapFrame) -> [u64; 17] {
    [
        f.r8, f.r9, f.r10, f.r11, f.r12, f.r13, f.r14, f.r15, f.rdi, f.rsi, f.rbp, f.rbx, f.rdx,
        f.rax, f.rcx, f.rsp, f.rip,
    ]
}

/// Builds the frame for `d` below `frame.rsp` and points `frame` at the handler.
pub fn push_signal_frame(
    space: &mut UserSpace<GlobalFrames>,
    frame: &mut TrapFrame,
    d: &Delivery,
) -> Result<(), Errno> {
    // The red zone below rsp belongs to the interrupted code; an alternate stack is
    // used from its top.
    let sp = d.stack_top.unwrap_or(frame.rsp.wrapping_sub(RED_ZONE));
    let fpstate = (sp.wrapping_sub(FPSTATE_SIZE)) & !63;
    let at = ((fpstate - FRAME_SIZE) & !15) - 8;
    let mut fpu = FpuState::initial();
    fpu.save(); // the thread runs: its x87/SSE state is in the registers
    let mut buf = [0u8; FRAME_SIZE as usize];
    put_u64(&mut buf, 0, d.action.restorer);
    put_u64(&mut buf, UC, UC_FLAGS);
    d.put_uc_stack(&mut buf, UC + 16);
    for (i, r) in gregs(frame).iter().enumerate() {
        put_u64(&mut buf, MCONTEXT + 8 * i, *r);
    }
    put_u64(&mut buf, MCONTEXT + 136, frame.rflags);
    let csgsfs = frame.cs | (frame.ss << 48);
    put_u64(&mut buf, MCONTEXT + 144, csgsfs);
    put_u64(&mut buf, MCONTEXT + 168, d.saved_mask); // oldmask
    put_u64(&mut buf, MCONTEXT + 184, fpstate);
    put_u64(&mut buf, SIGMASK, d.saved_mask);
    buf[SIGINFO..SIGINFO + 128].copy_from_slice(&d.info.to_bytes());
    space.copy_to_user(fpstate, &fpu.0).map_err(|_| EFAULT)?;
    space.copy_to_user(at, &buf).map_err(|_| EFAULT)?;
    frame.rdi = d.sig as u64;
    frame.rsi = at + SIGINFO as u64;
    frame.rdx = at + UC as u64;
    frame.rax = 0;
    frame.rsp = at;
    frame.rip = d.action.handler;
    frame.rflags &= !HANDLER_CLEARS;
    frame.cs = u64::from(gdt::USER_CS);
    frame.ss = u64::from(gdt::USER_DS);
    FpuState::initial().restore(); // the handler starts with a clean FPU, as on Linux
    Ok(())
}

/// rt_sigreturn: restores `frame` (and the x87/SSE state) from the frame at
/// rsp - 8; returns the saved mask and `uc_stack`. A return address or stack outside user space
/// is refused (EFAULT): `iretq` to it would fault in the kernel.
pub fn pop_signal_frame(
    space: &mut UserSpace<GlobalFrames>,
    frame: &mut TrapFrame,
) -> Result<(u64, StackT), Errno> {
    let at = frame.rsp.wrapping_sub(8);
    let mut buf = [0u8; FRAME_SIZE as usize];
    space.copy_from_user(at, &mut buf).map_err(|_| EFAULT)?;
    let r = |i: usize| get_u64(&buf, MCONTEXT + 8 * i);
    let (rsp, rip) = (r(15), r(16));
    if rip >= TASK_SIZE || rsp >= TASK_SIZE {
        return Err(EFAULT);
    }
    let fpstate = get_u64(&buf, MCONTEXT + 184);
    let mut fpu = FpuState::initial();
    if fpstate != 0 {
        space
            .copy_from_user(fpstate, &mut fpu.0)
            .map_err(|_| EFAULT)?;
        let mxcsr = u32::from_le_bytes([fpu.0[24], fpu.0[25], fpu.0[26], fpu.0[27]]);
        fpu.0[24..28].copy_from_slice(&(mxcsr & MXCSR_VALID).to_le_bytes());
    }
    [
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
    ] = [r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)];
    [frame.rdi, frame.rsi, frame.rbp, frame.rbx, frame.rdx] = [r(8), r(9), r(10), r(11), r(12)];
    [frame.rax, frame.rcx, frame.rsp, frame.rip] = [r(13), r(14), rsp, rip];
    let flags = get_u64(&buf, MCONTEXT + 136);
    frame.rflags = (frame.rflags & !USER_FLAGS) | (flags & USER_FLAGS);
    frame.cs = u64::from(gdt::USER_CS);
    frame.ss = u64::from(gdt::USER_DS);
    frame.vector = 0; // return with iretq: every register as restored
    fpu.restore();
    Ok((
        get_u64(&buf, SIGMASK),
        Delivery::get_uc_stack(&buf, UC + 16),
    ))
}

//! The aarch64 signal frame: Linux's arm64 `struct rt_sigframe` on the user stack.
//!
//! ```text
//! frame + 0      struct siginfo     si_signo, si_errno, si_code, si_pid, si_uid (128 bytes)
//! frame + 128    struct ucontext:   uc_flags, uc_link, uc_stack (ss_sp, ss_flags, ss_size),
//! frame + 168      uc_sigmask       the mask to restore (then 120 unused bytes)
//! frame + 304      uc_mcontext      struct sigcontext: fault_address, x0..x30, sp, pc,
//!                                   pstate, then 4096 bytes of records from +288:
//!                                   fpsimd_context (magic 0x46508001, size 528: fpsr,
//!                                   fpcr, v0..v31) and a terminating empty record
//! frame + 4688   frame record       the interrupted x29 and x30 (x29 points here)
//! ```
//! The handler starts with x0 = signal, x1 = &siginfo, x2 = &ucontext, sp = frame,
//! x30 = the restorer (SA_RESTORER: libc's `__restore_rt`, there is no vDSO), and
//! `rt_sigreturn` finds the frame at its sp.

use super::exceptions::TrapFrame;
use crate::memory::frame_allocator::GlobalFrames;
use crate::process::UserSpace;
use crate::syscall::misc::StackT;
use crate::syscall::{Errno, EFAULT};
use crate::task::signal::{get_u32, get_u64, put_u32, put_u64, Delivery};

const SIGINFO: usize = 0;
const UC: usize = 128;
const SIGMASK: usize = UC + 40;
const MCONTEXT: usize = UC + 176;
const REGS: usize = MCONTEXT + 8;
const SP: usize = MCONTEXT + 256;
const PC: usize = MCONTEXT + 264;
const PSTATE: usize = MCONTEXT + 272;
const RESERVED: usize = MCONTEXT + 288;
const FRAME_SIZE: usize = MCONTEXT + 288 + 4096;
const FPSIMD_MAGIC: u32 = 0x4650_8001;
const FPSIMD_SIZE: u32 = 528;
/// The bytes of the frame that are written and read back: everything before the
/// records, the fpsimd record and the empty record that ends them. The rest of the
/// 4096 bytes of records is left as it was, as Linux leaves it (copying the whole
/// frame both ways was most of a signal's cost).
const USED: usize = RESERVED + FPSIMD_SIZE as usize + 16;
/// PSTATE bits a signal frame may set: the condition flags (EL0t, interrupts on).
const PSTATE_NZCV: u64 = 0xf000_0000;

/// The used bytes of a frame, staged 16-byte aligned: the target is strict-align, so
/// the compiler reads and writes the registers' words in it whole only where it
/// knows the alignment (byte by byte in a plain byte array).
#[repr(C, align(16))]
struct Staged([u8; USED]);

/// Builds the frame for `d` below `frame.sp_el0` and points `frame` at the handler.
pub fn push_signal_frame(
    space: &mut UserSpace<GlobalFrames>,
    frame: &mut TrapFrame,
    d: &Delivery,
) -> Result<(), Errno> {
    let sp = d.stack_top.unwrap_or(frame.sp_el0);
    let record = (sp.wrapping_sub(16)) & !15;
    let at = (record - FRAME_SIZE as u64) & !15;
    let mut staged = Staged([0u8; USED]);
    let buf = &mut staged.0;
    d.info.write_over_zeroes(&mut buf[SIGINFO..SIGINFO + 128]);
    d.put_uc_stack(buf, UC + 16);
    put_u64(buf, SIGMASK, d.saved_mask);
    for (i, r) in frame.x.iter().enumerate() {
        put_u64(buf, REGS + 8 * i, *r);
    }
    put_u64(buf, SP, frame.sp_el0);
    put_u64(buf, PC, frame.elr);
    put_u64(buf, PSTATE, frame.spsr);
    put_u32(buf, RESERVED, FPSIMD_MAGIC);
    put_u32(buf, RESERVED + 4, FPSIMD_SIZE);
    put_u32(buf, RESERVED + 8, frame.fpsr as u32);
    put_u32(buf, RESERVED + 12, frame.fpcr as u32);
    for (i, q) in frame.q.iter().enumerate() {
        buf[RESERVED + 16 + 16 * i..RESERVED + 32 + 16 * i].copy_from_slice(&q.to_le_bytes());
    }
    let mut frame_record = [0u8; 16];
    frame_record[..8].copy_from_slice(&frame.x[29].to_le_bytes());
    frame_record[8..].copy_from_slice(&frame.x[30].to_le_bytes());
    space
        .copy_to_user(record, &frame_record)
        .map_err(|_| EFAULT)?;
    space.copy_to_user(at, buf).map_err(|_| EFAULT)?;
    frame.x[0] = d.sig as u64;
    frame.x[1] = at + SIGINFO as u64;
    frame.x[2] = at + UC as u64;
    frame.x[29] = record;
    frame.x[30] = match d.action.flags & crate::syscall::signal::SA_RESTORER != 0 {
        true => d.action.restorer,
        false => crate::exec::load::SIGRETURN_PAGE,
    };
    frame.sp_el0 = at;
    frame.elr = d.action.handler;
    frame.spsr &= PSTATE_NZCV;
    Ok(())
}

/// rt_sigreturn: restores `frame` (FP/SIMD included) from the frame at sp; returns
/// the saved mask and `uc_stack`. A misaligned stack or a frame without its FP/SIMD record is
/// refused (EFAULT), as Linux refuses it.
pub fn pop_signal_frame(
    space: &mut UserSpace<GlobalFrames>,
    frame: &mut TrapFrame,
) -> Result<(u64, StackT), Errno> {
    let at = frame.sp_el0;
    if !at.is_multiple_of(16) {
        return Err(EFAULT);
    }
    // Only the part that is read back comes in, in one copy (as Linux reads it):
    // from uc_stack to the end of the fpsimd record, not the siginfo.
    let mut staged = Staged([0u8; USED]);
    let read_back = UC + 16..RESERVED + FPSIMD_SIZE as usize;
    space
        .copy_from_user(at + read_back.start as u64, &mut staged.0[read_back])
        .map_err(|_| EFAULT)?;
    let buf = &staged.0;
    if get_u32(buf, RESERVED) != FPSIMD_MAGIC || get_u32(buf, RESERVED + 4) != FPSIMD_SIZE {
        return Err(EFAULT);
    }
    for (i, r) in frame.x.iter_mut().enumerate() {
        *r = get_u64(buf, REGS + 8 * i);
    }
    frame.sp_el0 = get_u64(buf, SP);
    frame.elr = get_u64(buf, PC);
    frame.spsr = get_u64(buf, PSTATE) & PSTATE_NZCV;
    frame.fpsr = u64::from(get_u32(buf, RESERVED + 8));
    frame.fpcr = u64::from(get_u32(buf, RESERVED + 12));
    for (i, q) in frame.q.iter_mut().enumerate() {
        let mut b = [0u8; 16];
        b.copy_from_slice(&buf[RESERVED + 16 + 16 * i..RESERVED + 32 + 16 * i]);
        *q = u128::from_le_bytes(b);
    }
    Ok((get_u64(buf, SIGMASK), Delivery::get_uc_stack(buf, UC + 16)))
}

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
use crate::smp::MAX_CPUS;
use crate::sync::IrqMutex;
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

/// Where the FXSAVE image sits above the frame's start: the image is 64-byte
/// aligned and the frame starts 16-byte aligned minus 8 below it, `FRAME_SIZE` bytes
/// and the alignment gap apart, so always this far (see `push_signal_frame`).
const FPSTATE_AT: usize = 456;
const _: () = assert!(FPSTATE_AT == (FRAME_SIZE as usize).next_multiple_of(16) + 8);

/// The frame and its FXSAVE image as they lie on the user stack, built in one piece
/// so that they go to (and come from) user memory in one copy. `frame` starts
/// 8 bytes into the 16-aligned struct, so `fpu` is 16-aligned for `fxsave`.
#[repr(C, align(16))]
struct Image {
    pad: [u8; 8],
    frame: [u8; FRAME_SIZE as usize],
    gap: [u8; FPSTATE_AT - FRAME_SIZE as usize],
    fpu: FpuState,
}

const _: () = assert!(core::mem::offset_of!(Image, fpu) == 8 + FPSTATE_AT);

/// Bytes of an [`Image`] on the user stack (from the frame to the image's end).
const IMAGE_LEN: usize = FPSTATE_AT + FPSTATE_SIZE as usize;

/// Per CPU, the image rt_sigreturn reads a frame into: a whole copy from user
/// memory fills it, so it is not zeroed for each call as a fresh one would be
/// (976 bytes: 144 instructions of every rt_sigreturn). Only its CPU takes it,
/// under the table lock (interrupts masked), and nothing of it is read but what
/// the call has just copied in.
static SCRATCH: [IrqMutex<Image>; MAX_CPUS] = [const { IrqMutex::new(Image::zeroed()) }; MAX_CPUS];

/// Per CPU, the image delivery builds a frame in. Only `push_signal_frame` writes
/// it, and always the same fields (every register, the masks, the stack, the
/// pointers), so what it never writes stays as it started, zero: uc_link, err,
/// trapno, cr2, the reserved words, the gap and the FXSAVE image's last 48 bytes
/// (`fxsave` does not write them). Only siginfo, whose fields differ from signal
/// to signal, is zeroed per frame: a fresh zeroed image cost 144 instructions of
/// every delivery. Taken as `SCRATCH` is (its CPU, interrupts masked).
static FRAMES: [IrqMutex<Image>; MAX_CPUS] = [const { IrqMutex::new(Image::zeroed()) }; MAX_CPUS];

impl Image {
    const fn zeroed() -> Image {
        Image {
            pad: [0; 8],
            frame: [0; FRAME_SIZE as usize],
            gap: [0; FPSTATE_AT - FRAME_SIZE as usize],
            fpu: FpuState([0; FPSTATE_SIZE as usize]),
        }
    }

    /// The bytes from `frame` to the end of `fpu`.
    fn bytes(&self) -> &[u8] {
        // SAFETY: `Image` is repr(C) of byte arrays (the FpuState too) with no
        // padding between them (the offsets are checked above), so the IMAGE_LEN
        // bytes after `pad` are initialised bytes of `self`.
        unsafe { core::slice::from_raw_parts(self.frame.as_ptr(), IMAGE_LEN) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; any byte values are valid for these fields.
        unsafe { core::slice::from_raw_parts_mut(self.frame.as_mut_ptr(), IMAGE_LEN) }
    }
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
    debug_assert_eq!(fpstate - at, FPSTATE_AT as u64);
    let mut image = FRAMES[crate::smp::this_index()].lock();
    let img = &mut *image;
    img.fpu.save(); // the thread runs: its x87/SSE state is in the registers
    let buf = &mut img.frame;
    put_u64(buf, 0, d.action.restorer);
    put_u64(buf, UC, UC_FLAGS);
    d.put_uc_stack(buf, UC + 16);
    for (i, r) in gregs(frame).iter().enumerate() {
        put_u64(buf, MCONTEXT + 8 * i, *r);
    }
    put_u64(buf, MCONTEXT + 136, frame.rflags);
    let csgsfs = frame.cs | (frame.ss << 48);
    put_u64(buf, MCONTEXT + 144, csgsfs);
    put_u64(buf, MCONTEXT + 168, d.saved_mask); // oldmask
    put_u64(buf, MCONTEXT + 184, fpstate);
    put_u64(buf, SIGMASK, d.saved_mask);
    let info = &mut buf[SIGINFO..SIGINFO + 128];
    info.fill(0);
    d.info.write_over_zeroes(info);
    space.copy_to_user(at, img.bytes()).map_err(|_| EFAULT)?;
    drop(image);
    frame.rdi = d.sig as u64;
    frame.rsi = at + SIGINFO as u64;
    frame.rdx = at + UC as u64;
    frame.rax = 0;
    frame.rsp = at;
    frame.rip = d.action.handler;
    frame.rflags &= !HANDLER_CLEARS;
    frame.cs = u64::from(gdt::USER_CS);
    frame.ss = u64::from(gdt::USER_DS);
    FpuState::restore_initial(); // the handler starts with a clean FPU, as on Linux
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
    let mut scratch = SCRATCH[crate::smp::this_index()].lock();
    let img = &mut *scratch;
    // The image where delivery put it (the handler may have moved the pointer, or
    // the memory above the frame may be gone): frame and image in one copy;
    // otherwise the frame alone, then the image it points at (also when that is
    // beside the frame: the whole copy did not fill `img.fpu`).
    let beside = at.wrapping_add(FPSTATE_AT as u64);
    let whole = space.copy_from_user(at, img.bytes_mut()).is_ok();
    if !whole || get_u64(&img.frame, MCONTEXT + 184) != beside {
        space
            .copy_from_user(at, &mut img.frame)
            .map_err(|_| EFAULT)?;
    }
    let buf = &img.frame;
    let r = |i: usize| get_u64(buf, MCONTEXT + 8 * i);
    let (rsp, rip) = (r(15), r(16));
    if rip >= TASK_SIZE || rsp >= TASK_SIZE {
        return Err(EFAULT);
    }
    let fpstate = get_u64(buf, MCONTEXT + 184);
    let mut elsewhere = None;
    let mut fpu = match fpstate {
        0 => None,
        p if p == beside && whole => Some(&mut img.fpu),
        p => {
            let fpu = elsewhere.insert(FpuState::initial());
            space.copy_from_user(p, &mut fpu.0).map_err(|_| EFAULT)?;
            Some(fpu)
        }
    };
    if let Some(fpu) = &mut fpu {
        let mxcsr = u32::from_le_bytes([fpu.0[24], fpu.0[25], fpu.0[26], fpu.0[27]]);
        fpu.0[24..28].copy_from_slice(&(mxcsr & MXCSR_VALID).to_le_bytes());
    }
    [
        frame.r8, frame.r9, frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
    ] = [r(0), r(1), r(2), r(3), r(4), r(5), r(6), r(7)];
    [frame.rdi, frame.rsi, frame.rbp, frame.rbx, frame.rdx] = [r(8), r(9), r(10), r(11), r(12)];
    [frame.rax, frame.rcx, frame.rsp, frame.rip] = [r(13), r(14), rsp, rip];
    let flags = get_u64(buf, MCONTEXT + 136);
    frame.rflags = (frame.rflags & !USER_FLAGS) | (flags & USER_FLAGS);
    frame.cs = u64::from(gdt::USER_CS);
    frame.ss = u64::from(gdt::USER_DS);
    frame.vector = 0; // return with iretq: every register as restored
    match fpu {
        Some(fpu) => fpu.restore(),
        None => FpuState::restore_initial(),
    }
    Ok((get_u64(buf, SIGMASK), Delivery::get_uc_stack(buf, UC + 16)))
}

//! The exception vector table (`VBAR_EL1`) and what each exception does.
//!
//! The table has 16 entries of 0x80 bytes: {sync, IRQ, FIQ, SError} for each of
//! {current EL with SP_EL0, current EL with SP_ELx, lower EL AArch64, lower EL
//! AArch32}. Every entry saves the general registers, `SP_EL0`, `ELR_EL1`,
//! `SPSR_EL1` and the SIMD/FP registers (the kernel itself is compiled with FP/NEON)
//! into a [`TrapFrame`] on the current stack and calls [`aarch64_trap`],
//! which
//! * handles IRQs (the timer) through [`super::irq`],
//! * hands synchronous exceptions from EL0 (system calls, user faults) to the user
//!   task layer through [`super::user`], with the frame in place,
//! * resumes an *expected* data abort at its recovery address (see [`probe_write`]),
//! * and reports anything else (ESR, ELR, FAR, SPSR) and exits QEMU with failure.
//!
//! Frame offsets in the assembly come from `offset_of!`, never hand-written numbers.
//!
//! Per CPU (by `smp` index, no locks: each CPU touches only its own): the emergency
//! stack of a kernel-stack overflow (the vector code finds its CPU's through
//! `TPIDR_EL1`) and [`probe_write`]'s recovery slot.

use crate::smp::{self, PerCpu, MAX_CPUS};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU64, Ordering};

/// The registers saved on exception entry, restored by `eret`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct TrapFrame {
    /// x0..=x30.
    pub x: [u64; 31],
    /// The user stack pointer.
    pub sp_el0: u64,
    /// Where the exception returns to.
    pub elr: u64,
    /// The saved PSTATE.
    pub spsr: u64,
    /// The SIMD/FP registers q0..=q31 (the kernel is compiled with FP/NEON, so any
    /// handler may use them).
    pub q: [u128; 32],
    /// FP control register.
    pub fpcr: u64,
    /// FP status register.
    pub fpsr: u64,
}

const _: () = assert!(size_of::<TrapFrame>().is_multiple_of(16));

/// Exception class (ESR_EL1 bits 31:26) of a data abort taken without an EL change.
const EC_DATA_ABORT_SAME_EL: u64 = 0x25;
/// Vector index of an IRQ from the current EL (SP_ELx) and from a lower EL.
const VECTOR_IRQ_CURRENT: u64 = 5;
const VECTOR_IRQ_LOWER: u64 = 9;
/// Vector index of a synchronous exception from EL0 (AArch64).
const VECTOR_SYNC_LOWER: u64 = 8;
/// Pseudo vector index: a synchronous exception whose trap frame did not fit on the
/// kernel stack (it ran into its guard page).
const VECTOR_STACK_OVERFLOW: u64 = 16;
/// Bytes of each CPU's emergency stack: a power of two (the vector code shifts by
/// its log).
const EMERGENCY_STACK_SIZE: usize = 16 * 1024;
const EMERGENCY_STACK_SHIFT: u32 = EMERGENCY_STACK_SIZE.trailing_zeros();
const _: () = assert!(EMERGENCY_STACK_SIZE.is_power_of_two());

/// The stack a CPU's vector code switches to when a kernel stack overflowed; only
/// used to report the overflow and exit. CPU `i`'s is the `i`th.
#[repr(C, align(16))]
struct EmergencyStack([u8; EMERGENCY_STACK_SIZE]);

static mut EMERGENCY_STACKS: [EmergencyStack; MAX_CPUS] =
    [const { EmergencyStack([0; EMERGENCY_STACK_SIZE]) }; MAX_CPUS];

core::arch::global_asm!(
    r#"
.macro VENTRY kind
.balign 0x80
    sub sp, sp, #{frame}
    stp x0, x1, [sp, #0]
    mov x0, #\kind
    b aarch64_trap_common
.endm

// Synchronous exception from EL1 on SP_EL1: first check (with the address
// translation instruction) that the trap frame can be pushed; if not, the kernel
// stack overflowed into its guard page: continue on this CPU's emergency stack, the
// top of entry `index` = (index + 1) << shift above the array's base (SP itself holds
// the offset meanwhile: x0 is the only free register).
.macro VENTRY_SYNC_CHECKED
.balign 0x80
    msr tpidrro_el0, x0
    mov x0, sp
    sub x0, x0, #{frame}
    at s1e1w, x0
    isb
    mrs x0, par_el1
    tbnz x0, #0, 1f
    mrs x0, tpidrro_el0
    msr tpidrro_el0, xzr
    sub sp, sp, #{frame}
    stp x0, x1, [sp, #0]
    mov x0, #4
    b aarch64_trap_common
1:
    mrs x0, tpidr_el1
    ldr w0, [x0, #{cpu_index}]
    add x0, x0, #1
    lsl x0, x0, #{emergency_shift}
    mov sp, x0
    adrp x0, {emergency}
    add x0, x0, :lo12:{emergency}
    add sp, sp, x0
    mrs x0, tpidrro_el0
    msr tpidrro_el0, xzr
    sub sp, sp, #{frame}
    stp x0, x1, [sp, #0]
    mov x0, #{overflow}
    b aarch64_trap_common
.endm

.section .text.vectors, "ax"
.balign 0x800
.global exception_vectors
exception_vectors:
    VENTRY 0
    VENTRY 1
    VENTRY 2
    VENTRY 3
    VENTRY_SYNC_CHECKED
    VENTRY 5
    VENTRY 6
    VENTRY 7
    VENTRY 8
    VENTRY 9
    VENTRY 10
    VENTRY 11
    VENTRY 12
    VENTRY 13
    VENTRY 14
    VENTRY 15

.balign 4
aarch64_trap_common:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x1, sp_el0
    stp x30, x1, [sp, #{x30}]
    mrs x1, elr_el1
    mrs x2, spsr_el1
    stp x1, x2, [sp, #{elr}]
    add x9, sp, #{q}
    stp q0, q1, [x9, #0]
    stp q2, q3, [x9, #32]
    stp q4, q5, [x9, #64]
    stp q6, q7, [x9, #96]
    stp q8, q9, [x9, #128]
    stp q10, q11, [x9, #160]
    stp q12, q13, [x9, #192]
    stp q14, q15, [x9, #224]
    stp q16, q17, [x9, #256]
    stp q18, q19, [x9, #288]
    stp q20, q21, [x9, #320]
    stp q22, q23, [x9, #352]
    stp q24, q25, [x9, #384]
    stp q26, q27, [x9, #416]
    stp q28, q29, [x9, #448]
    stp q30, q31, [x9, #480]
    mrs x1, fpcr
    str x1, [sp, #{fpcr}]
    mrs x1, fpsr
    str x1, [sp, #{fpsr}]
    mov x1, x0
    mov x0, sp
    bl {trap}
.global aarch64_trap_return
aarch64_trap_return:
    add x9, sp, #{q}
    ldp q0, q1, [x9, #0]
    ldp q2, q3, [x9, #32]
    ldp q4, q5, [x9, #64]
    ldp q6, q7, [x9, #96]
    ldp q8, q9, [x9, #128]
    ldp q10, q11, [x9, #160]
    ldp q12, q13, [x9, #192]
    ldp q14, q15, [x9, #224]
    ldp q16, q17, [x9, #256]
    ldp q18, q19, [x9, #288]
    ldp q20, q21, [x9, #320]
    ldp q22, q23, [x9, #352]
    ldp q24, q25, [x9, #384]
    ldp q26, q27, [x9, #416]
    ldp q28, q29, [x9, #448]
    ldp q30, q31, [x9, #480]
    ldr x1, [sp, #{fpcr}]
    msr fpcr, x1
    ldr x1, [sp, #{fpsr}]
    msr fpsr, x1
    ldp x1, x2, [sp, #{elr}]
    msr elr_el1, x1
    msr spsr_el1, x2
    ldp x30, x1, [sp, #{x30}]
    msr sp_el0, x1
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldp x0, x1, [sp, #0]
    add sp, sp, #{frame}
    eret
"#,
    frame = const size_of::<TrapFrame>(),
    emergency = sym EMERGENCY_STACKS,
    emergency_shift = const EMERGENCY_STACK_SHIFT,
    cpu_index = const offset_of!(PerCpu, index),
    overflow = const VECTOR_STACK_OVERFLOW,
    x30 = const offset_of!(TrapFrame, x) + 30 * 8,
    q = const offset_of!(TrapFrame, q),
    fpcr = const offset_of!(TrapFrame, fpcr),
    fpsr = const offset_of!(TrapFrame, fpsr),
    elr = const offset_of!(TrapFrame, elr),
    trap = sym aarch64_trap,
);

extern "C" {
    static exception_vectors: u8;
    fn aarch64_trap_return();
}

/// The vector code's restore path: with `sp` at a [`TrapFrame`], it pops the frame
/// and `eret`s to where it says (how a new user thread first enters EL0).
pub fn trap_return() -> u64 {
    aarch64_trap_return as *const () as u64
}

/// Installs the vector table in `VBAR_EL1`.
pub fn init() {
    let base = core::ptr::addr_of!(exception_vectors) as u64;
    // SAFETY: the table handles every exception kind; installing it changes only
    // where exceptions go.
    unsafe { core::arch::asm!("msr vbar_el1, {}", "isb", in(reg) base, options(nostack)) };
}

/// Per CPU: where an expected fault resumes (0: no fault expected).
static RECOVERY: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per CPU: ESR of the last expected fault taken (0: none).
static RECOVERED_ESR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// A fault taken on purpose by [`probe_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// `ESR_EL1`: why (bits 31:26 exception class, 5:0 fault status code).
    pub esr: u64,
}

/// Writes `value` to `addr` and reports whether the MMU refused (a permission or
/// translation fault) instead of crashing. For tests of page-table permissions.
/// Runs with interrupts masked, so the thread stays on this CPU (and its slot)
/// throughout.
pub fn probe_write(addr: *mut u8, value: u8) -> Result<(), Fault> {
    let saved = super::interrupts::save_and_disable();
    let me = smp::this_index();
    RECOVERED_ESR[me].store(0, Ordering::SeqCst);
    // SAFETY: the store either succeeds (the caller passes an address whose content
    // it may change, e.g. a byte it will restore) or faults; the handler then sees
    // RECOVERY set, resumes at label 2 and clears it. All registers are restored by
    // the exception return.
    unsafe {
        core::arch::asm!(
            "adr {tmp}, 2f",
            "str {tmp}, [{slot}]",
            "dsb ish",
            "strb {val:w}, [{addr}]",
            "2:",
            "str xzr, [{slot}]",
            tmp = out(reg) _,
            slot = in(reg) RECOVERY[me].as_ptr(),
            val = in(reg) value as u32,
            addr = in(reg) addr,
            options(nostack)
        )
    };
    let esr = RECOVERED_ESR[me].swap(0, Ordering::SeqCst);
    super::interrupts::restore(saved);
    match esr {
        0 => Ok(()),
        esr => Err(Fault { esr }),
    }
}

fn read_esr_far() -> (u64, u64) {
    let (esr, far): (u64, u64);
    // SAFETY: reading the syndrome registers has no side effects.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", "mrs {}, far_el1", out(reg) esr, out(reg) far,
            options(nomem, nostack))
    };
    (esr, far)
}

/// Called by the vector table with the saved frame and the vector index (0..16).
extern "C" fn aarch64_trap(frame: &mut TrapFrame, kind: u64) {
    if kind == VECTOR_IRQ_CURRENT || kind == VECTOR_IRQ_LOWER {
        super::irq::handle(frame);
        if kind == VECTOR_IRQ_LOWER {
            crate::task::on_return_to_user(frame);
        }
        return;
    }
    let (esr, far) = read_esr_far();
    if kind == VECTOR_SYNC_LOWER {
        return super::user::on_user_sync(frame, esr, far);
    }
    let me = smp::this_index();
    let recovery = RECOVERY[me].load(Ordering::SeqCst);
    if kind == 4 && esr >> 26 == EC_DATA_ABORT_SAME_EL && recovery != 0 {
        RECOVERY[me].store(0, Ordering::SeqCst);
        RECOVERED_ESR[me].store(esr.max(1), Ordering::SeqCst);
        frame.elr = recovery;
        return;
    }
    if kind == VECTOR_STACK_OVERFLOW {
        use core::fmt::Write;
        let _ = write!(
            super::console::UnlockedWriter,
            "\nEXCEPTION: kernel stack overflow (guard page hit): ESR={esr:#010x} ELR={:#x} FAR={far:#x}\n",
            frame.elr
        );
        super::exit::exit(3)
    }
    report(frame, kind, esr, far);
    super::exit::exit(3)
}

/// Prints what happened, without locks (the faulting code may hold the console's).
fn report(frame: &TrapFrame, kind: u64, esr: u64, far: u64) {
    use core::fmt::Write;
    let mut out = super::console::UnlockedWriter;
    let names = ["sync", "IRQ", "FIQ", "SError"];
    let origin = ["EL1t", "EL1h", "EL0 (AArch64)", "EL0 (AArch32)"];
    let _ = write!(
        out,
        "\nEXCEPTION: {} from {}: ESR={:#010x} (EC={:#x}) ELR={:#x} FAR={:#x} SPSR={:#x}\n",
        names[(kind % 4) as usize],
        origin[((kind / 4) % 4) as usize],
        esr,
        esr >> 26,
        frame.elr,
        far,
        frame.spsr
    );
}

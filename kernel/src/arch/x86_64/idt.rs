//! The IDT, the interrupt entry stubs and the Rust dispatcher.
//!
//! Every vector the kernel uses enters through a small stub that pushes an error code
//! (a 0 where the CPU pushes none) and the vector number, then `isr_common` saves
//! all general registers into a [`TrapFrame`] on the current stack and calls
//! [`trap_dispatch`]. A timer interrupt may switch threads inside the dispatcher: the
//! frame stays on the old thread's kernel stack until it is resumed.
//!
//! Vectors: 0-31 CPU exceptions (from ring 3: the user-process code's; in the
//! kernel fatal, print and exit QEMU, but for a page fault of a user copy, which
//! resumes at its fixup, see `uaccess`), 32 the LAPIC timer,
//! 36 COM1's receive interrupt (ISA IRQ 4 through the I/O APIC), 0xf0 the kernel's
//! IPI (`ipi`), 0xff the LAPIC spurious vector (ignored). Double fault runs on IST1.

use super::gdt::{DOUBLE_FAULT_IST, KERNEL_CS};
use core::cell::UnsafeCell;
use core::fmt::Write;

/// The LAPIC timer's vector.
pub const TIMER_VECTOR: u8 = 32;
/// The LAPIC spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// COM1's receive interrupt (ISA IRQ 4, routed by the I/O APIC).
pub const SERIAL_VECTOR: u8 = 36;

core::arch::global_asm!(
    r#"
.section .text.isr, "ax"
.irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31,32,36,255,240
isr_\n:
    push 0
    push \n
    jmp isr_common
.endr
.irp n, 8,10,11,12,13,14,17,21,29,30
isr_\n:
    push \n
    jmp isr_common
.endr

isr_common:
    // From ring 3 (CS in the frame, above the vector and error code): the
    // kernel's GS base comes in, the user's goes to IA32_KERNEL_GS_BASE.
    test byte ptr [rsp + 24], 3
    jz 1f
    swapgs
1:
"#,
    push_gprs!(),
    r#"
    mov rdi, rsp
    cld
    call {dispatch}
"#,
    pop_gprs!(),
    r#"
    add rsp, 16
    test byte ptr [rsp + 8], 3
    jz 2f
    swapgs
2:
    iretq

.section .rodata.isr_table, "a"
.p2align 3
.global isr_table
isr_table:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,36,255,240
    .quad isr_\n
.endr
"#,
    dispatch = sym trap_dispatch,
);

extern "C" {
    /// Stub addresses for vectors 0..=32, then 36 and 255 (see the asm above).
    static isr_table: [u64; 36];
}

/// The registers saved by `isr_common`, then what the stub and the CPU pushed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// One 16-byte IDT gate.
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    _zero: u32,
}

impl Gate {
    const MISSING: Gate = Gate {
        offset_low: 0,
        selector: 0,
        ist: 0,
        type_attr: 0,
        offset_mid: 0,
        offset_high: 0,
        _zero: 0,
    };

    /// A present 64-bit interrupt gate (IF cleared on entry), DPL 0.
    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist,
            type_attr: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            _zero: 0,
        }
    }

    /// The same gate with DPL 3: ring 3 may raise it with `int N` (`int3`, `into`),
    /// as Linux allows for the breakpoint and overflow vectors. Without it `int3` in
    /// user mode is a general-protection fault (SIGSEGV instead of SIGTRAP).
    fn callable_from_user(self) -> Gate {
        Gate {
            type_attr: 0xee,
            ..self
        }
    }
}

/// Vectors user code may raise with `int N`: breakpoint (3) and overflow (4).
const USER_RAISED: [usize; 2] = [3, 4];

struct Idt(UnsafeCell<[Gate; 256]>);

// SAFETY: written only by `init`, on the boot CPU, before interrupts are enabled.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([Gate::MISSING; 256]));

/// Fills and loads the IDT.
pub fn init() {
    // SAFETY: `isr_table` is a read-only table defined in the asm above.
    let stubs = unsafe { &isr_table };
    // SAFETY: interrupts are off and the IDT is not loaded yet, so nobody reads it.
    let idt = unsafe { &mut *IDT.0.get() };
    for (vector, &stub) in stubs.iter().enumerate().take(33) {
        let ist = if vector == 8 { DOUBLE_FAULT_IST } else { 0 };
        idt[vector] = Gate::interrupt(stub, ist);
    }
    for v in USER_RAISED {
        idt[v] = idt[v].callable_from_user();
    }
    idt[usize::from(SERIAL_VECTOR)] = Gate::interrupt(stubs[33], 0);
    idt[usize::from(SPURIOUS_VECTOR)] = Gate::interrupt(stubs[34], 0);
    idt[usize::from(super::ipi::IPI_VECTOR)] = Gate::interrupt(stubs[35], 0);
    load();
}

/// Loads the IDT on this CPU (every CPU shares the one table).
pub fn load() {
    // SAFETY: the table is filled by `init` before any CPU loads it, and never
    // written again.
    let idt = unsafe { &*IDT.0.get() };
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: idt.as_ptr() as u64,
    };
    // SAFETY: the table is static and every present gate points at a stub above.
    unsafe {
        core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags))
    };
}

/// Called by `isr_common` with the saved registers.
/// Exceptions from ring 3 go to the user-process code (which resolves page faults or
/// kills the process); exceptions in the kernel are fatal.
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        v if v == u64::from(TIMER_VECTOR) => {
            super::timer::on_interrupt();
            if frame.cs & 3 == 3 {
                crate::task::on_return_to_user(frame);
            }
        }
        v if v == u64::from(SERIAL_VECTOR) => {
            super::console::on_receive_interrupt();
            super::timer::end_of_interrupt();
            // A ^C may have made a signal pending for the interrupted thread.
            if frame.cs & 3 == 3 {
                crate::task::on_return_to_user(frame);
            }
        }
        v if v == u64::from(SPURIOUS_VECTOR) => {}
        v if v == u64::from(super::ipi::IPI_VECTOR) => {
            super::ipi::on_interrupt();
            if frame.cs & 3 == 3 {
                crate::task::on_return_to_user(frame);
            }
        }
        v if v < 32 && frame.cs & 3 == 3 => super::user::on_user_exception(frame),
        // A user copy that met a page it cannot reach goes on at its fixup.
        14 => {
            if !super::uaccess::fixup(frame, super::cpu::read_cr2()) {
                fatal_exception(frame)
            }
        }
        _ => fatal_exception(frame),
    }
}

const NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor overrun",
    "invalid TSS",
    "segment not present",
    "stack-segment fault",
    "general protection",
    "page fault",
    "reserved",
    "x87 floating point",
    "alignment check",
    "machine check",
    "SIMD floating point",
    "virtualization",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security",
    "reserved",
];

/// Prints what happened and exits QEMU with the failure status.
fn fatal_exception(frame: &TrapFrame) -> ! {
    let name = NAMES
        .get(frame.vector as usize)
        .copied()
        .unwrap_or("unknown");
    let mut out = super::console::EmergencyConsole;
    let _ = write!(
        out,
        "\nEXCEPTION: vector {} ({}), error code {:#x}, RIP {:#x}, RSP {:#x}",
        frame.vector, name, frame.error_code, frame.rip, frame.rsp
    );
    if frame.vector == 14 {
        let _ = write!(out, ", CR2 {:#x}", super::cpu::read_cr2());
    }
    let _ = writeln!(out);
    super::exit::exit_qemu(super::exit::ExitCode::Failure)
}

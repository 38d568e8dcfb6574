//! Starting the other CPUs on aarch64: the device tree's `cpu@N` nodes name them (by
//! MPIDR affinity), PSCI CPU_ON (`/psci`: `hvc` or `smc`, function 0xc4000003)
//! starts each at [`aarch64_secondary_entry`], at its physical address with the MMU
//! off, and the boot CPU waits (at most [`START_TIMEOUT_US`]) until it is online.
//!
//! ## Numbering
//! The boot CPU is index 0 of `smp::CPUS`; the others take 1, 2, ... in device-tree
//! order (on QEMU `virt` the boot CPU is the tree's first, so an index is also the
//! CPU's position in the tree, as the NUMA topology numbers CPUs). A CPU's `hw_id` is
//! its MPIDR affinity Aff2.Aff1.Aff0 (`reg` & 0xff_ffff; Aff3 is 0 on `virt`).
//!
//! ## The secondary entry
//! PSCI passes the context id in `x0`: the physical address of the CPU's
//! [`Handoff`], which the boot CPU filled and cleaned to the point of coherency (the
//! CPU reads it with the MMU and caches off). The entry drops from EL2 to EL1 if
//! needed, enables FP/SIMD, loads the boot CPU's MAIR_EL1 and TCR_EL1, and turns the
//! MMU on (the boot CPU's SCTLR_EL1) with
//! * TTBR0 = the entry's boot tables (`boot_l0` of `boot/aarch64/src/entry.rs`,
//!   still intact in the reserved image): their identity map of the first 2 GiB
//!   keeps the entry's own page mapped for the instant the MMU turns on;
//! * TTBR1 = the kernel's own root (the image at its higher-half addresses, the
//!   direct map, the stacks).
//!
//! It then jumps to the higher half, takes its stack (a guarded kernel stack from
//! `arch::stack`) and calls [`secondary_main`], whose first act after installing its
//! `PerCpu` is to put the kernel's root in TTBR0 too (`paging::set_active_root`):
//! the boot tables' identity map is in use for a few instructions only, so the
//! kernel's tables never map anything in the user half.
//!
//! [`secondary_main`] then installs the vector table, its GIC CPU interface (and its
//! IPI), its timer at 100 Hz, and becomes the CPU's idle context
//! (`thread::secondary_idle`, which marks it online).
//!
//! ## Locks
//! None. The boot CPU starts one CPU at a time; a [`Handoff`] is written by the boot
//! CPU before CPU_ON and only read afterwards.

use super::{exceptions, gic, paging, percpu, stack, timer};
use crate::firmware::devicetree::{CpuInfo, MachineInfo, Psci, PsciConduit};
use crate::memory::paging::PageTableMapper;
use crate::memory::{PhysAddr, PhysFrame, VirtAddr};
use crate::smp::{self, MAX_CPUS};
use core::mem::offset_of;
use core::sync::atomic::{AtomicU64, Ordering};

/// How long the boot CPU waits for a started CPU to come online.
pub const START_TIMEOUT_US: u64 = 1_000_000;
/// Bytes of kernel stack each secondary CPU's idle context runs on.
const SECONDARY_STACK: u64 = 48 * 1024;
/// MPIDR_EL1's affinity fields (Aff3 at 39:32, Aff2..Aff0 at 23:0), as the device
/// tree's `reg` gives them.
const MPIDR_AFFINITY: u64 = 0xff_00ff_ffff;

/// What a starting CPU needs before it can run Rust: read by the entry code at
/// their `offset_of!`, first through the physical address (MMU off), then through
/// `this` (MMU on). One line of 64 bytes.
#[repr(C, align(64))]
struct Handoff {
    mair: AtomicU64,
    tcr: AtomicU64,
    sctlr: AtomicU64,
    /// The kernel's root table (physical), for TTBR1 and then TTBR0.
    root: AtomicU64,
    /// This record's virtual address.
    this: AtomicU64,
    /// Virtual address of the higher-half continuation.
    high: AtomicU64,
    stack_top: AtomicU64,
    index: AtomicU64,
}

impl Handoff {
    const fn new() -> Handoff {
        Handoff {
            mair: AtomicU64::new(0),
            tcr: AtomicU64::new(0),
            sctlr: AtomicU64::new(0),
            root: AtomicU64::new(0),
            this: AtomicU64::new(0),
            high: AtomicU64::new(0),
            stack_top: AtomicU64::new(0),
            index: AtomicU64::new(0),
        }
    }
}

/// One record per CPU (by index), in the kernel image (which the boot tables map).
static HANDOFF: [Handoff; MAX_CPUS] = [const { Handoff::new() }; MAX_CPUS];

core::arch::global_asm!(
    r#"
.section .boot.text, "ax"
.balign 4
.global aarch64_secondary_entry
aarch64_secondary_entry:
    mov x19, x0
    mrs x0, CurrentEL
    lsr x0, x0, #2
    cmp x0, #2
    b.ne 1f
    // EL2 -> EL1, as boot/aarch64's `_start`: EL1 is AArch64, timers accessible.
    mov x0, #(1 << 31)
    msr hcr_el2, x0
    mrs x0, cnthctl_el2
    orr x0, x0, #3
    msr cnthctl_el2, x0
    msr cntvoff_el2, xzr
    mov x0, #0x3c5
    msr spsr_el2, x0
    adr x0, 1f
    msr elr_el2, x0
    eret
1:
    msr spsel, #1
    mov x0, #(3 << 20)
    msr cpacr_el1, x0
    isb
    ldr x0, [x19, #{mair}]
    msr mair_el1, x0
    ldr x0, [x19, #{tcr}]
    msr tcr_el1, x0
    adrp x0, boot_l0
    add x0, x0, :lo12:boot_l0
    msr ttbr0_el1, x0
    ldr x0, [x19, #{root}]
    msr ttbr1_el1, x0
    isb
    tlbi vmalle1
    dsb nsh
    isb
    ldr x20, [x19, #{this}]
    ldr x1, [x19, #{high}]
    ldr x0, [x19, #{sctlr}]
    msr sctlr_el1, x0
    isb
    br x1

.section .text.aarch64_secondary_high, "ax"
.balign 4
.global aarch64_secondary_high
aarch64_secondary_high:
    ldr x0, [x20, #{stack_top}]
    mov sp, x0
    ldr x0, [x20, #{index}]
    mov x29, xzr
    mov x30, xzr
    bl {main}
2:
    wfe
    b 2b
"#,
    mair = const offset_of!(Handoff, mair),
    tcr = const offset_of!(Handoff, tcr),
    sctlr = const offset_of!(Handoff, sctlr),
    root = const offset_of!(Handoff, root),
    this = const offset_of!(Handoff, this),
    high = const offset_of!(Handoff, high),
    stack_top = const offset_of!(Handoff, stack_top),
    index = const offset_of!(Handoff, index),
    main = sym secondary_main,
);

extern "C" {
    fn aarch64_secondary_entry();
    fn aarch64_secondary_high();
}

/// The entry's physical address. The symbol is linked at its physical address
/// (`.boot.text`), beyond the reach of PC-relative addressing from the higher half,
/// so it is built from its absolute value, 16 bits at a time.
fn entry_phys() -> u64 {
    let at: u64;
    // SAFETY: materialises a link-time constant in a register; nothing else.
    unsafe {
        core::arch::asm!(
            "movz {0}, #:abs_g3:{entry}",
            "movk {0}, #:abs_g2_nc:{entry}",
            "movk {0}, #:abs_g1_nc:{entry}",
            "movk {0}, #:abs_g0_nc:{entry}",
            out(reg) at,
            entry = sym aarch64_secondary_entry,
            options(nomem, nostack)
        )
    };
    at
}

/// Why a CPU did not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// More CPUs than `smp::MAX_CPUS`.
    TooMany,
    /// No kernel stack for it.
    Stack(stack::StackError),
    /// PSCI refused (its return code: -2 invalid parameters, -4 already on, ...).
    Psci(i64),
    /// It was started but did not say it is up in time.
    Timeout,
}

/// The calling CPU's MPIDR affinity bits.
fn mpidr() -> u64 {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack)) };
    v & MPIDR_AFFINITY
}

/// `hw_id` of a CPU: Aff2.Aff1.Aff0 (see the module docs).
fn hw_id(mpidr: u64) -> u32 {
    (mpidr & 0xff_ffff) as u32
}

/// Records the boot CPU (index 0): its MPIDR and, from the tree, its node.
pub fn describe_boot_cpu(machine: &MachineInfo) {
    let me = mpidr();
    let node = machine
        .cpus()
        .iter()
        .find(|c| c.mpidr & MPIDR_AFFINITY == me)
        .and_then(|c| c.node);
    smp::describe(0, hw_id(me), node.unwrap_or(0));
}

/// Starts every CPU of the device tree but the boot CPU (call once, on the boot
/// CPU, after `arch::init`, with interrupts masked). Returns how many came up; a CPU
/// that does not is reported on the console and left out.
pub fn start_secondaries(machine: &MachineInfo) -> usize {
    let Some(psci) = machine.psci else {
        if machine.cpus().len() > 1 {
            crate::println!("smp: no /psci in the device tree: one CPU only");
        }
        return 0;
    };
    let me = mpidr();
    let others = machine
        .cpus()
        .iter()
        .filter(|c| c.mpidr & MPIDR_AFFINITY != me);
    let mut up = 0;
    for (n, cpu) in others.enumerate() {
        match start_one(psci, n + 1, cpu) {
            Ok(()) => up += 1,
            Err(e) => crate::println!("smp: cpu mpidr {:#x} not started: {:?}", cpu.mpidr, e),
        }
    }
    up
}

/// Starts `cpu` as CPU `index` and waits until it is online.
fn start_one(psci: Psci, index: usize, cpu: &CpuInfo) -> Result<(), StartError> {
    if index >= MAX_CPUS {
        return Err(StartError::TooMany);
    }
    smp::describe(index, hw_id(cpu.mpidr), cpu.node.unwrap_or(0));
    let stack = stack::allocate(SECONDARY_STACK).map_err(StartError::Stack)?;
    let context = fill_handoff(index, stack.top.as_u64());
    let ret = psci_call(psci, cpu.mpidr & MPIDR_AFFINITY, entry_phys(), context);
    if ret != 0 {
        stack::free(stack);
        return Err(StartError::Psci(ret));
    }
    // A CPU that answers later keeps the stack (it may already run on it).
    let deadline = timer::uptime_us() + START_TIMEOUT_US;
    while !smp::CPUS[index].is_online() {
        if timer::uptime_us() > deadline {
            return Err(StartError::Timeout);
        }
        core::hint::spin_loop();
    }
    Ok(())
}

/// Reads a system register of the boot CPU that the starting one copies.
macro_rules! sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an EL1 control register has no side effects.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack))
        };
        v
    }};
}

/// Fills CPU `index`'s [`Handoff`] and cleans it to the point of coherency; returns
/// its physical address (the context id).
fn fill_handoff(index: usize, stack_top: u64) -> u64 {
    let h = &HANDOFF[index];
    let root = paging::active_root().map_or(0, |f| f.start_address.0);
    let this = h as *const Handoff as u64;
    for (slot, value) in [
        (&h.mair, sysreg!("mair_el1")),
        (&h.tcr, sysreg!("tcr_el1")),
        (&h.sctlr, sysreg!("sctlr_el1")),
        (&h.root, root),
        (&h.this, this),
        (&h.high, aarch64_secondary_high as *const () as u64),
        (&h.stack_top, stack_top),
        (&h.index, index as u64),
    ] {
        slot.store(value, Ordering::SeqCst);
    }
    clean_to_coherency(this, core::mem::size_of::<Handoff>() as u64);
    paging::kernel_table()
        .and_then(|t| t.translate(VirtAddr::new(this)))
        .map_or(0, |p| p.0)
}

/// Writes the data-cache lines of `[start, start + len)` back to memory, for a reader
/// with its caches off.
fn clean_to_coherency(start: u64, len: u64) {
    let ctr = sysreg!("ctr_el0");
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut at = start & !(line - 1);
    while at < start + len {
        // SAFETY: cleaning a data-cache line writes back what is already there.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) at, options(nostack)) };
        at += line;
    }
    // SAFETY: a barrier has no memory effects of its own.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// PSCI CPU_ON (SMC calling convention): x0 = function id, x1 = target MPIDR, x2 =
/// entry (physical), x3 = context id; returns x0 (0 = success).
fn psci_call(psci: Psci, target: u64, entry: u64, context: u64) -> i64 {
    let mut x0 = u64::from(psci.cpu_on);
    match psci.conduit {
        // SAFETY: a PSCI call into the firmware (QEMU's, at EL2/EL3) that starts
        // another CPU at `entry`; the firmware may clobber what the SMC calling
        // convention lets it (the C ABI's caller-saved registers cover that).
        PsciConduit::Hvc => unsafe {
            core::arch::asm!("hvc #0", inout("x0") x0, in("x1") target, in("x2") entry,
                in("x3") context, clobber_abi("C"), options(nostack))
        },
        // SAFETY: as for `hvc`.
        PsciConduit::Smc => unsafe {
            core::arch::asm!("smc #0", inout("x0") x0, in("x1") target, in("x2") entry,
                in("x3") context, clobber_abi("C"), options(nostack))
        },
    }
    x0 as i64
}

/// The Rust side of a secondary CPU's bring-up (see the module docs), on its own
/// stack, with interrupts masked.
extern "C" fn secondary_main(index: u64) -> ! {
    let index = (index as usize).min(MAX_CPUS - 1);
    percpu::install(&smp::CPUS[index]);
    let root = HANDOFF[index].root.load(Ordering::SeqCst);
    paging::set_active_root(PhysFrame::containing_address(PhysAddr(root)));
    exceptions::init();
    if let Err(e) = gic::init_this_cpu() {
        crate::println!("smp: cpu{index}: no interrupts ({e:?}), parked");
        loop {
            super::cpu::halt();
        }
    }
    timer::start_this_cpu();
    super::thread::secondary_idle()
}

//! The interrupt controller of QEMU `virt`: a GICv2 (the default) or a GICv3
//! (`-M virt,gic-version=3`), whichever the device tree describes.
//!
//! Both have a *distributor* (GICD, memory-mapped) that enables and prioritises
//! interrupts. The per-CPU side differs: GICv2 has a memory-mapped CPU interface
//! (GICC, see [`gicv2`]); GICv3 has a memory-mapped *redistributor* per CPU (GICR,
//! which owns the CPU's private interrupts) and a CPU interface in system registers
//! (`ICC_*_EL1`, see [`gicv3`]).
//!
//! Interrupt ids: 0-15 SGIs, 16-31 PPIs (per CPU: the timers), 32+ SPIs. An
//! acknowledge value of [`SPURIOUS`] means "nothing pending". All registers are
//! reached through the physical-memory window (mapped as Device memory).

pub mod gicv2;
pub mod gicv3;

use crate::firmware::devicetree::Gic;
use crate::memory::{phys::phys_to_virt, PhysAddr};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// IAR value meaning "no interrupt pending".
pub const SPURIOUS: u32 = 1023;

const V2: u8 = 2;
const V3: u8 = 3;

static VERSION: AtomicU8 = AtomicU8::new(V2);
/// GICD base.
static DIST: AtomicU64 = AtomicU64::new(gicv2::DEFAULT_DISTRIBUTOR);
/// GICC base (v2) or the boot CPU's GICR base (v3).
static CPU: AtomicU64 = AtomicU64::new(gicv2::DEFAULT_CPU_INTERFACE);

/// Uses the controller the device tree describes.
pub fn configure(gic: Gic) {
    let (version, dist, cpu) = match gic {
        Gic::V2 {
            distributor,
            cpu_interface,
        } => (V2, distributor, cpu_interface),
        Gic::V3 {
            distributor,
            redistributor,
        } => (V3, distributor, redistributor),
    };
    VERSION.store(version, Ordering::Relaxed);
    DIST.store(dist, Ordering::Relaxed);
    CPU.store(cpu, Ordering::Relaxed);
}

/// The GIC version in use (2 or 3).
pub fn version() -> u8 {
    VERSION.load(Ordering::Relaxed)
}

/// The physical register ranges to map as Device memory: (base, bytes).
pub fn mmio_ranges() -> [(u64, u64); 2] {
    let cpu_bytes = if version() == V3 {
        gicv3::REDIST_BYTES
    } else {
        0x1_0000
    };
    [
        (DIST.load(Ordering::Relaxed), 0x1_0000),
        (CPU.load(Ordering::Relaxed), cpu_bytes),
    ]
}

/// A 32-bit register at physical `base + offset`.
pub(super) fn reg(base: u64, offset: u64) -> *mut u32 {
    phys_to_virt(PhysAddr(base + offset)).as_mut_ptr()
}

/// Writes the 32-bit device register at `base + offset`.
pub(super) fn write(base: u64, offset: u64, value: u32) {
    // SAFETY: callers pass a GIC register of the controller in use, mapped as Device
    // memory in the window; the GIC takes 32-bit accesses.
    unsafe { reg(base, offset).write_volatile(value) }
}

/// Reads the 32-bit device register at `base + offset`.
pub(super) fn read(base: u64, offset: u64) -> u32 {
    // SAFETY: as in `write`.
    unsafe { reg(base, offset).read_volatile() }
}

/// Sets byte `id % 4` of the byte-per-interrupt register array at `base + array`.
pub(super) fn set_byte(base: u64, array: u64, id: u32, value: u8) {
    let at = array + (id as u64 & !3);
    let shift = (id % 4) * 8;
    let old = read(base, at);
    write(
        base,
        at,
        (old & !(0xff << shift)) | ((value as u32) << shift),
    );
}

/// Turns on the distributor and this CPU's interface, letting every priority through.
pub fn init() {
    let (dist, cpu) = (DIST.load(Ordering::Relaxed), CPU.load(Ordering::Relaxed));
    match version() {
        V3 => gicv3::init(dist, cpu),
        _ => gicv2::init(dist, cpu),
    }
}

/// Enables interrupt `id` at a middle priority (SPIs are routed to the boot CPU).
pub fn enable(id: u32) {
    let (dist, cpu) = (DIST.load(Ordering::Relaxed), CPU.load(Ordering::Relaxed));
    match version() {
        V3 => gicv3::enable(dist, cpu, id),
        _ => gicv2::enable(dist, id),
    }
}

/// Acknowledges the highest-priority pending interrupt; returns the raw value (pass
/// it to [`end_of_interrupt`]) whose low 10 bits are the id.
pub fn acknowledge() -> u32 {
    match version() {
        V3 => gicv3::acknowledge(),
        _ => gicv2::acknowledge(CPU.load(Ordering::Relaxed)),
    }
}

/// Signals the end of handling of the interrupt `iar` came from.
pub fn end_of_interrupt(iar: u32) {
    match version() {
        V3 => gicv3::end_of_interrupt(iar),
        _ => gicv2::end_of_interrupt(CPU.load(Ordering::Relaxed), iar),
    }
}

/// Sends software-generated interrupt `sgi` (0-15) to `cpu`.
pub fn send_sgi(cpu: &crate::smp::PerCpu, sgi: u32) {
    let hw = u64::from(cpu.hw_id.load(Ordering::Relaxed));
    match version() {
        V3 => gicv3::send_sgi(hw, sgi),
        _ => gicv2::send_sgi(DIST.load(Ordering::Relaxed), cpu.id() as u32, sgi),
    }
}

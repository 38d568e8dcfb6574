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
//!
//! Every CPU sets up its own side ([`init_this_cpu`]; the boot CPU's in [`init`]):
//! SGIs and PPIs are enabled per CPU, so [`enable`] of an id below 32 acts on the
//! calling CPU only. No locks: the distributor's shared registers are written by the
//! boot CPU before the others start; a CPU touches only its own banked registers.

pub mod gicv2;
pub mod gicv3;

use crate::firmware::devicetree::Gic;
use crate::memory::{phys::phys_to_virt, PhysAddr};
use crate::smp::{self, MAX_CPUS};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// IAR value meaning "no interrupt pending".
pub const SPURIOUS: u32 = 1023;

const V2: u8 = 2;
const V3: u8 = 3;

static VERSION: AtomicU8 = AtomicU8::new(V2);
/// GICD base.
static DIST: AtomicU64 = AtomicU64::new(gicv2::DEFAULT_DISTRIBUTOR);
/// GICC base (v2: one address, banked per CPU) or the redistributor region's base (v3).
static CPU: AtomicU64 = AtomicU64::new(gicv2::DEFAULT_CPU_INTERFACE);
/// Bytes of the redistributor region that are mapped (v3): the frames of the CPUs
/// the device tree lists, at most the region.
static REDIST_MAPPED: AtomicU64 = AtomicU64::new(gicv3::REDIST_BYTES);
/// Per CPU (by `smp` index), written by that CPU in [`init_this_cpu`]: its
/// redistributor's base (v3) or its CPU-interface mask for GICD_SGIR (v2; 0: not
/// known yet).
static THIS_CPU: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Uses the controller the device tree describes, on a machine of `cpus` CPUs.
pub fn configure(gic: Gic, cpus: usize) {
    let (version, dist, cpu) = match gic {
        Gic::V2 {
            distributor,
            cpu_interface,
        } => (V2, distributor, cpu_interface),
        Gic::V3 {
            distributor,
            redistributor,
            redistributor_size,
        } => {
            let wanted = gicv3::MAX_REDIST_STRIDE * cpus.clamp(1, MAX_CPUS) as u64;
            let mapped = wanted.min(redistributor_size.max(gicv3::REDIST_BYTES));
            REDIST_MAPPED.store(mapped, Ordering::Relaxed);
            (V3, distributor, redistributor)
        }
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
        REDIST_MAPPED.load(Ordering::Relaxed)
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

/// Turns on the distributor and the boot CPU's interface (see [`init_this_cpu`]).
pub fn init() {
    let dist = DIST.load(Ordering::Relaxed);
    match version() {
        V3 => gicv3::init_distributor(dist),
        _ => gicv2::init_distributor(dist),
    }
    if init_this_cpu().is_err() {
        // The boot CPU's redistributor is the region's first (QEMU's layout).
        let first = CPU.load(Ordering::Relaxed);
        THIS_CPU[smp::this_index()].store(first, Ordering::Relaxed);
        gicv3::init_cpu(first);
        enable(super::ipi::IPI_SGI);
    }
}

/// Why a CPU's interface could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// GICv3: no mapped redistributor has this CPU's affinity (`GICR_TYPER`).
    NoRedistributor(u64),
}

/// This CPU's affinity (MPIDR_EL1's Aff3..Aff0 as Aff3 << 24 | Aff2 << 16 | Aff1 << 8
/// | Aff0, the layout of GICR_TYPER's upper word).
fn affinity() -> u64 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24
}

/// Turns on the calling CPU's side of the GIC, letting every priority through, and
/// enables the kernel's IPI ([`super::ipi::IPI_SGI`]) on it: GICv2, its banked CPU
/// interface (and it learns its interface mask); GICv3, its own redistributor (found
/// by affinity and woken) and its system-register interface. Call once per CPU,
/// after the distributor is on ([`init`]).
pub fn init_this_cpu() -> Result<(), GicError> {
    let me = smp::this_index();
    match version() {
        V3 => {
            let (base, bytes) = (
                CPU.load(Ordering::Relaxed),
                REDIST_MAPPED.load(Ordering::Relaxed),
            );
            let aff = affinity();
            let redist = gicv3::find_redistributor(base, bytes, aff)
                .ok_or(GicError::NoRedistributor(aff))?;
            THIS_CPU[me].store(redist, Ordering::Relaxed);
            gicv3::init_cpu(redist);
        }
        _ => {
            let mask = gicv2::this_cpu_mask(DIST.load(Ordering::Relaxed));
            THIS_CPU[me].store(u64::from(mask), Ordering::Relaxed);
            gicv2::init_cpu(CPU.load(Ordering::Relaxed));
        }
    }
    enable(super::ipi::IPI_SGI);
    Ok(())
}

/// Enables interrupt `id` at a middle priority: an SGI or PPI (id < 32) on the
/// calling CPU only, an SPI routed to the boot CPU.
pub fn enable(id: u32) {
    let dist = DIST.load(Ordering::Relaxed);
    match version() {
        V3 => gicv3::enable(
            dist,
            THIS_CPU[smp::this_index()].load(Ordering::Relaxed),
            id,
        ),
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
        _ => {
            let mask = match THIS_CPU[cpu.id()].load(Ordering::Relaxed) {
                0 => 1 << (cpu.id() & 7),
                m => m as u8,
            };
            gicv2::send_sgi(DIST.load(Ordering::Relaxed), mask, sgi)
        }
    }
}

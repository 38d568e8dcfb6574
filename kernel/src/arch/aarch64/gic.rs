//! The GICv2 interrupt controller of QEMU `virt` (distributor + CPU interface).
//!
//! Registers used (ARM IHI 0048B):
//! ```text
//! GICD_CTLR        0x000  bit 0: forward interrupts to CPU interfaces
//! GICD_ISENABLERn  0x100  one bit per interrupt id: write 1 to enable
//! GICD_IPRIORITYRn 0x400  one byte per interrupt id (lower = more urgent)
//! GICD_ITARGETSRn  0x800  one byte per SPI: CPU mask (PPIs are banked, read-only)
//! GICC_CTLR        0x000  bit 0: signal interrupts to the CPU
//! GICC_PMR         0x004  priority mask: only priorities below it are signalled
//! GICC_IAR         0x00c  read: acknowledge, low 10 bits = interrupt id
//! GICC_EOIR        0x010  write the IAR value: end of interrupt
//! ```
//! Interrupt ids: 0-15 SGIs, 16-31 PPIs (per CPU: the timers), 32+ SPIs. 1023 from
//! IAR means "spurious". Registers are reached through the physical-memory window.

use crate::memory::{phys::phys_to_virt, PhysAddr};
use core::sync::atomic::{AtomicU64, Ordering};

/// QEMU `virt`'s distributor base (the device tree may say otherwise).
pub const DEFAULT_DISTRIBUTOR: u64 = 0x0800_0000;
/// QEMU `virt`'s CPU-interface base.
pub const DEFAULT_CPU_INTERFACE: u64 = 0x0801_0000;
/// IAR value meaning "no interrupt pending".
pub const SPURIOUS: u32 = 1023;

static GICD: AtomicU64 = AtomicU64::new(DEFAULT_DISTRIBUTOR);
static GICC: AtomicU64 = AtomicU64::new(DEFAULT_CPU_INTERFACE);

fn reg(base: &AtomicU64, offset: u64) -> *mut u32 {
    phys_to_virt(PhysAddr(base.load(Ordering::Relaxed) + offset)).as_mut_ptr()
}

fn write(base: &AtomicU64, offset: u64, value: u32) {
    // SAFETY: `offset` is one of the GIC registers listed above, mapped as Device
    // memory in the window; the GIC takes 32-bit accesses.
    unsafe { reg(base, offset).write_volatile(value) }
}

fn read(base: &AtomicU64, offset: u64) -> u32 {
    // SAFETY: as in `write`.
    unsafe { reg(base, offset).read_volatile() }
}

/// Uses the GIC at these physical addresses (from the device tree).
pub fn set_base(distributor: u64, cpu_interface: u64) {
    GICD.store(distributor, Ordering::Relaxed);
    GICC.store(cpu_interface, Ordering::Relaxed);
}

/// Physical bases in use: (distributor, CPU interface).
pub fn bases() -> (u64, u64) {
    (GICD.load(Ordering::Relaxed), GICC.load(Ordering::Relaxed))
}

/// Turns on the distributor and this CPU's interface, letting every priority through.
pub fn init() {
    write(&GICD, 0x000, 1);
    write(&GICC, 0x004, 0xff);
    write(&GICC, 0x000, 1);
}

/// Enables interrupt `id` at a middle priority (SPIs are routed to CPU 0).
pub fn enable(id: u32) {
    let prio = 0x400 + (id as u64 & !3);
    let shift = (id % 4) * 8;
    let old = read(&GICD, prio);
    write(&GICD, prio, (old & !(0xff << shift)) | (0x80 << shift));
    if id >= 32 {
        let target = 0x800 + (id as u64 & !3);
        let old = read(&GICD, target);
        write(&GICD, target, (old & !(0xff << shift)) | (1 << shift));
    }
    write(&GICD, 0x100 + 4 * (id as u64 / 32), 1 << (id % 32));
}

/// Acknowledges the highest-priority pending interrupt; returns the raw IAR value
/// (pass it to [`end_of_interrupt`]) — its low 10 bits are the id.
pub fn acknowledge() -> u32 {
    read(&GICC, 0x00c)
}

/// Signals the end of handling of the interrupt `iar` came from.
pub fn end_of_interrupt(iar: u32) {
    write(&GICC, 0x010, iar);
}

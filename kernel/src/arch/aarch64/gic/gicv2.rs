//! GICv2 (ARM IHI 0048B): distributor and memory-mapped CPU interface.
//!
//! ```text
//! GICD_CTLR        0x000  bit 0: forward interrupts to CPU interfaces
//! GICD_ISENABLERn  0x100  one bit per interrupt id: write 1 to enable
//! GICD_IPRIORITYRn 0x400  one byte per interrupt id (lower = more urgent)
//! GICD_ITARGETSRn  0x800  one byte per SPI: CPU mask (0-7 banked, read-only: each
//!                         byte reads as the reading CPU's own mask)
//! GICC_CTLR        0x000  bit 0: signal interrupts to the CPU
//! GICC_PMR         0x004  priority mask: only priorities below it are signalled
//! GICC_IAR         0x00c  read: acknowledge, low 10 bits = interrupt id
//! GICC_EOIR        0x010  write the IAR value: end of interrupt
//! ```

use super::{read, set_byte, write};

/// QEMU `virt`'s distributor base.
pub const DEFAULT_DISTRIBUTOR: u64 = 0x0800_0000;
/// QEMU `virt`'s CPU-interface base.
pub const DEFAULT_CPU_INTERFACE: u64 = 0x0801_0000;

/// Turns on the distributor.
pub fn init_distributor(dist: u64) {
    write(dist, 0x000, 1);
}

/// Turns on the calling CPU's (banked) CPU interface; every priority passes.
pub fn init_cpu(cpu: u64) {
    write(cpu, 0x004, 0xff);
    write(cpu, 0x000, 1);
}

/// The calling CPU's interface mask (its bit for GICD_SGIR's target list).
pub fn this_cpu_mask(dist: u64) -> u8 {
    read(dist, 0x800) as u8
}

/// Enables `id` at priority 0x80, SPIs targeted at CPU 0.
pub fn enable(dist: u64, id: u32) {
    set_byte(dist, 0x400, id, 0x80);
    if id >= 32 {
        set_byte(dist, 0x800, id, 1);
    }
    write(dist, 0x100 + 4 * (id as u64 / 32), 1 << (id % 32));
}

/// Reads GICC_IAR.
pub fn acknowledge(cpu: u64) -> u32 {
    read(cpu, 0x00c)
}

/// Writes GICC_EOIR.
pub fn end_of_interrupt(cpu: u64, iar: u32) {
    write(cpu, 0x010, iar);
}

/// GICD_SGIR: software-generated interrupts.
const GICD_SGIR: u64 = 0xf00;

/// Sends SGI `sgi` to the CPUs of the interface mask `targets`.
pub fn send_sgi(dist: u64, targets: u8, sgi: u32) {
    super::write(dist, GICD_SGIR, (u32::from(targets) << 16) | (sgi & 0xf));
}

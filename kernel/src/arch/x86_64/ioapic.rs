//! The I/O APIC: routes a legacy ISA interrupt line (COM1's IRQ 4) to a vector on
//! the boot CPU's local APIC (the 8259 PICs stay masked, see `timer`).
//!
//! Registers (Intel 82093AA datasheet): `IOREGSEL` at base + 0x00 selects a
//! register, `IOWIN` at base + 0x10 reads or writes it. Redirection entry n is the
//! register pair 0x10 + 2n (low: vector bits 0-7, delivery mode 8-10 = fixed,
//! destination mode 11 = physical, polarity 13 = active high, trigger 15 = edge,
//! mask 16) and 0x11 + 2n (high: destination APIC id in bits 24-31). ISA IRQ n is
//! pin n on QEMU's pc and microvm (no MADT override for IRQ 4), and the chip is at
//! its conventional address, which `kernel_map` maps uncached.

use crate::sync::IrqMutex;

/// Physical address of the (first) I/O APIC on QEMU's pc and microvm machines.
pub const PHYS_BASE: u64 = 0xfec0_0000;
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REDIRECTION_BASE: u32 = 0x10;

/// IOREGSEL then IOWIN is a two-step access: keep it whole.
static LOCK: IrqMutex<()> = IrqMutex::new(());

fn reg(offset: u64) -> *mut u32 {
    (super::phys::window_base() + PHYS_BASE + offset) as *mut u32
}

fn write(index: u32, value: u32) {
    // SAFETY: the I/O APIC page is mapped uncached in the physical window
    // (`kernel_map::build`); 32-bit volatile accesses are what the chip expects.
    unsafe {
        core::ptr::write_volatile(reg(IOREGSEL), index);
        core::ptr::write_volatile(reg(IOWIN), value);
    }
}

/// Delivers ISA interrupt `irq` (edge, active high) as `vector` to the local APIC
/// `apic_id`, unmasked.
pub fn route_isa_irq(irq: u8, vector: u8, apic_id: u8) {
    let _guard = LOCK.lock();
    let entry = REDIRECTION_BASE + 2 * u32::from(irq);
    write(entry + 1, u32::from(apic_id) << 24);
    write(entry, u32::from(vector));
}

//! GICv3 (ARM IHI 0069): distributor, each CPU's redistributor and the
//! system-register CPU interface. Single security state (QEMU `virt` without EL3).
//!
//! ```text
//! GICD_CTLR          0x0000  bit 0 EnableGrp0, bit 1 EnableGrp1, bit 4 ARE (affinity
//!                            routing), bit 31 RWP (write pending)
//! GICD_IGROUPRn      0x0080  one bit per SPI: 1 = group 1
//! GICD_ISENABLERn    0x0100  one bit per SPI: write 1 to enable
//! GICD_IPRIORITYRn   0x0400  one byte per SPI
//! GICD_IROUTERn      0x6000  8 bytes per SPI: target affinity
//! GICR_TYPER (RD)    0x0008  bit 1 VLPIS (GICv4: four frames), bit 4 Last (the
//!                            region's last redistributor), bits 63:32 the CPU's
//!                            affinity (Aff3.Aff2.Aff1.Aff0)
//! GICR_WAKER (RD)    0x0014  bit 1 ProcessorSleep, bit 2 ChildrenAsleep
//! GICR_IGROUPR0 (SGI)  0x0080, GICR_ISENABLER0 0x0100, GICR_IPRIORITYR 0x0400:
//!                            the same, for the CPU's SGIs and PPIs (ids 0-31)
//! ICC_SRE_EL1  bit 0: use the system-register interface
//! ICC_PMR_EL1  priority mask;  ICC_IGRPEN1_EL1 bit 0: signal group-1 interrupts
//! ICC_IAR1_EL1 acknowledge;    ICC_EOIR1_EL1 end of interrupt
//! ```
//! A redistributor is two 64 KiB frames: RD_base, then SGI_base (four on GICv4:
//! then VLPI_base and a reserved one); a CPU's follow each other in the region.

use super::{read, set_byte, write};

/// Bytes of one CPU's redistributor (RD_base + SGI_base frames).
pub const REDIST_BYTES: u64 = 0x2_0000;
/// Bytes of one CPU's redistributor with GICv4's virtual-LPI frames.
pub const MAX_REDIST_STRIDE: u64 = 0x4_0000;
const GICR_TYPER: u64 = 0x0008;
const TYPER_VLPIS: u32 = 1 << 1;
const TYPER_LAST: u32 = 1 << 4;
const SGI_BASE: u64 = 0x1_0000;
const CTLR_RWP: u32 = 1 << 31;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// Bound on polling a register bit (the GIC answers in a few accesses).
const POLL_LIMIT: u32 = 1_000_000;

fn wait_while(base: u64, offset: u64, bit: u32) {
    for _ in 0..POLL_LIMIT {
        if read(base, offset) & bit == 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

/// Turns on the distributor (affinity routing, both groups).
pub fn init_distributor(dist: u64) {
    write(dist, 0x0000, (1 << 4) | (1 << 1) | 1);
    wait_while(dist, 0x0000, CTLR_RWP);
}

/// The redistributor of the CPU with affinity `affinity` (GICR_TYPER's upper word)
/// among the `bytes` of the region at `base`.
pub fn find_redistributor(base: u64, bytes: u64, affinity: u64) -> Option<u64> {
    let mut at = base;
    while at + REDIST_BYTES <= base + bytes {
        let typer = read(at, GICR_TYPER);
        if u64::from(read(at, GICR_TYPER + 4)) == affinity {
            return Some(at);
        }
        if typer & TYPER_LAST != 0 {
            return None;
        }
        at += if typer & TYPER_VLPIS != 0 {
            MAX_REDIST_STRIDE
        } else {
            REDIST_BYTES
        };
    }
    None
}

/// Wakes the calling CPU's redistributor `redist` and enables its system-register CPU
/// interface for group 1.
pub fn init_cpu(redist: u64) {
    let waker = read(redist, 0x0014);
    write(redist, 0x0014, waker & !WAKER_PROCESSOR_SLEEP);
    wait_while(redist, 0x0014, WAKER_CHILDREN_ASLEEP);
    // SAFETY: GICv3 CPU-interface registers of this CPU: enable the system-register
    // interface, let every priority through, enable group-1 interrupts. No memory
    // is affected.
    unsafe {
        core::arch::asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "msr icc_pmr_el1, {pmr}",
            "msr icc_igrpen1_el1, {one}",
            "isb",
            t = out(reg) _,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            options(nomem, nostack)
        )
    };
}

/// Enables `id` in group 1 at priority 0x80: ids below 32 in the calling CPU's
/// redistributor `redist`, SPIs in the distributor (routed to affinity 0.0.0.0).
pub fn enable(dist: u64, redist: u64, id: u32) {
    let (base, bit) = (id as u64 / 32 * 4, 1u32 << (id % 32));
    if id < 32 {
        let sgi = redist + SGI_BASE;
        write(sgi, 0x0080, read(sgi, 0x0080) | bit);
        set_byte(sgi, 0x0400, id, 0x80);
        write(sgi, 0x0100, bit);
    } else {
        write(dist, 0x0080 + base, read(dist, 0x0080 + base) | bit);
        set_byte(dist, 0x0400, id, 0x80);
        write(dist, 0x6000 + 8 * id as u64, 0);
        write(dist, 0x6004 + 8 * id as u64, 0);
        write(dist, 0x0100 + base, bit);
    }
}

/// Reads ICC_IAR1_EL1.
pub fn acknowledge() -> u32 {
    let iar: u64;
    // SAFETY: acknowledging only changes the GIC's state of the pending interrupt.
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nomem, nostack)) };
    iar as u32
}

/// Writes ICC_EOIR1_EL1.
pub fn end_of_interrupt(iar: u32) {
    // SAFETY: ends the handling of the interrupt `iar` names; no memory effects.
    unsafe {
        core::arch::asm!("msr icc_eoir1_el1, {}", in(reg) iar as u64, options(nomem, nostack))
    };
}

/// Sends SGI `sgi` to the CPU whose MPIDR affinity is `mpidr` (Aff0 | Aff1 << 8 |
/// Aff2 << 16), through ICC_SGI1R_EL1: target list bit Aff0 in cluster Aff2.Aff1.
pub fn send_sgi(mpidr: u64, sgi: u32) {
    let aff0 = mpidr & 0xf;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let value = (1u64 << aff0) | (aff1 << 16) | (u64::from(sgi & 0xf) << 24) | (aff2 << 32);
    // SAFETY: writing ICC_SGI1R_EL1 only raises an SGI at the named CPU.
    unsafe { core::arch::asm!("msr S3_0_C12_C11_5, {}", "isb", in(reg) value, options(nostack)) };
}

//! The PL011 UART of QEMU `virt` as the kernel console.
//!
//! Registers used (ARM PL011 TRM): `DR` (offset 0x00) takes the byte to send, `FR`
//! (offset 0x18) bit 5 `TXFF` says the transmit FIFO is full. QEMU's UART needs no
//! baud-rate or enable setup to transmit. The registers are reached through the
//! physical-memory window, which maps them as Device memory in both phases (see
//! [`super::phys`]). A lock keeps lines of different CPUs and threads whole.
//!
//! Input, once [`enable_receive_interrupt`] ran, comes by interrupt: `IMSC`
//! (0x38) bits 4 `RXIM` and 6 `RTIM` (receive, receive timeout) raise SPI 1, INTID
//! [`RX_INTID`] on QEMU `virt`; the handler reads `DR` while `FR` bit 4 `RXFE` (receive
//! FIFO empty) is clear, into a small buffer on its stack, clears the interrupt in
//! `ICR` (0x44) and hands the bytes to `crate::tty::console_input` (no allocation).

use crate::memory::{phys::phys_to_virt, PhysAddr};
use crate::sync::IrqMutex;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where QEMU `virt` puts the PL011 (the device tree may say otherwise).
pub const DEFAULT_BASE: u64 = 0x0900_0000;
const DR: u64 = 0x00;
const FR: u64 = 0x18;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
const CR: u64 = 0x30;
const IMSC: u64 = 0x38;
const ICR: u64 = 0x44;
/// CR: UART, transmit and receive enabled.
const CR_UARTEN_TXE_RXE: u32 = 0x301;
/// IMSC/ICR bits: receive and receive timeout.
const INT_RX_RT: u32 = (1 << 4) | (1 << 6);
/// The PL011's interrupt on QEMU `virt` (device tree: SPI 1).
pub const RX_INTID: u32 = 33;

static BASE: AtomicU64 = AtomicU64::new(DEFAULT_BASE);
static LOCK: IrqMutex<()> = IrqMutex::new(());
/// Quiet: the kernel's own messages are dropped (user output and faults still print).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Drops (true) or prints (false) the kernel's own messages from now on.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Uses the PL011 at physical `base` from now on.
pub fn set_base(base: u64) {
    BASE.store(base, Ordering::Relaxed);
}

/// Physical address of the UART in use.
pub fn base() -> u64 {
    BASE.load(Ordering::Relaxed)
}

fn reg(offset: u64) -> *mut u32 {
    phys_to_virt(PhysAddr(base() + offset)).as_mut_ptr()
}

fn put_byte(b: u8) {
    // SAFETY: FR and DR are PL011 registers, mapped as Device memory in the window;
    // 32-bit volatile accesses are what the device expects.
    unsafe {
        while reg(FR).read_volatile() & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        reg(DR).write_volatile(b as u32);
    }
}

/// Writes `s` to the UART (`\n` becomes `\r\n`), unless quiet.
pub fn write_str(s: &str) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let _guard = LOCK.lock();
    write_str_unlocked(s);
}

/// Writes a user program's bytes (`\n` becomes `\r\n`), quiet or not.
pub fn write_bytes(bytes: &[u8]) {
    let _guard = LOCK.lock();
    crate::console::put_crlf(bytes, put_byte);
}

/// Writes bytes to the UART as they are (a terminal's already processed echo and
/// output).
pub fn write_raw(bytes: &[u8]) {
    let _guard = LOCK.lock();
    for &b in bytes {
        put_byte(b);
    }
}

fn write_reg(offset: u64, value: u32) {
    // SAFETY: a PL011 register, mapped as Device memory in the window.
    unsafe { reg(offset).write_volatile(value) }
}

fn read_reg(offset: u64) -> u32 {
    // SAFETY: as in `write_reg`.
    unsafe { reg(offset).read_volatile() }
}

/// Turns on the PL011's receive interrupts and enables its INTID at the GIC.
pub fn enable_receive_interrupt() {
    write_reg(CR, CR_UARTEN_TXE_RXE);
    write_reg(ICR, INT_RX_RT);
    write_reg(IMSC, read_reg(IMSC) | INT_RX_RT);
    super::gic::enable(RX_INTID);
    // Bytes that came before the interrupt was on: take them now.
    on_receive_interrupt();
}

/// The receive interrupt: drains the FIFO and feeds the bytes to the console
/// terminal.
pub(super) fn on_receive_interrupt() {
    let mut buf = [0u8; 16];
    // Bounded, so a stuck status register cannot hold the CPU here.
    for _ in 0..64 {
        // Clear first, then drain: a byte that arrives after the last look at the
        // FIFO raises an interrupt nobody clears. (Clearing after draining lost it:
        // QEMU raises RX only when the FIFO goes from empty to one byte.)
        write_reg(ICR, INT_RX_RT);
        let mut n = 0;
        while n < buf.len() && read_reg(FR) & FR_RXFE == 0 {
            buf[n] = read_reg(DR) as u8;
            n += 1;
        }
        if n == 0 {
            return;
        }
        crate::tty::console_input(&buf[..n]);
    }
}

/// Writes `s` without taking the lock (`\n` becomes `\r\n`): for the exception and
/// panic paths, where the lock may be held by the code that faulted.
pub fn write_str_unlocked(s: &str) {
    crate::console::put_crlf(s.as_bytes(), put_byte);
}

/// A `fmt::Write` over [`write_str_unlocked`].
pub struct UnlockedWriter;

impl core::fmt::Write for UnlockedWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_str_unlocked(s);
        Ok(())
    }
}

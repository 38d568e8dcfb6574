//! The serial console: COM1, a 16550 UART at I/O port 0x3f8, 115200 8N1. Output is
//! polled; input, once [`enable_receive_interrupt`] ran, comes by interrupt (IRQ 4,
//! vector `idt::SERIAL_VECTOR`): the handler drains the receive FIFO into a small
//! buffer on its stack and hands it to `crate::tty::console_input` (no allocation).
//!
//! Output is serialised by an [`IrqMutex`] so lines from different threads do not
//! interleave. Fault and panic paths use [`emergency_write_str`], which takes no lock
//! (the faulting code may hold it).

use super::port::{inb, outb};
use crate::sync::IrqMutex;
use core::sync::atomic::{AtomicBool, Ordering};

const COM1: u16 = 0x3f8;
/// Line status register bit: transmit holding register empty.
const LSR_THR_EMPTY: u8 = 1 << 5;
/// Line status register bit: a received byte is waiting.
const LSR_DATA_READY: u8 = 1 << 0;
/// Interrupt enable register bit: received data available.
const IER_RX_AVAILABLE: u8 = 1 << 0;
/// Modem control: DTR, RTS and OUT2 (on PC UARTs OUT2 gates the IRQ line).
const MCR_DTR_RTS_OUT2: u8 = 0x0b;
/// ISA interrupt line of COM1.
const COM1_IRQ: u8 = 4;

static LOCK: IrqMutex<()> = IrqMutex::new(());
/// Quiet: the kernel's own messages are dropped (user output and faults still print).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Drops (true) or prints (false) the kernel's own messages from now on.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Programs the UART: 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on,
/// no interrupts.
pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB on: next two registers are the divisor
    outb(COM1, 0x01); // divisor 1 = 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // DLAB off, 8N1
    outb(COM1 + 2, 0xc7); // FIFO on, cleared, 14-byte threshold
    outb(COM1 + 4, 0x03); // DTR, RTS
}

fn put_byte(b: u8) {
    // Bounded wait: a missing UART must not hang the kernel.
    for _ in 0..100_000 {
        if inb(COM1 + 5) & LSR_THR_EMPTY != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    outb(COM1, b);
}

fn put_str(s: &str) {
    crate::console::put_crlf(s.as_bytes(), put_byte);
}

/// Writes `s` to the serial port (`\n` becomes `\r\n`), unless quiet.
pub fn write_str(s: &str) {
    if QUIET.load(Ordering::Relaxed) {
        return;
    }
    let _guard = LOCK.lock();
    put_str(s);
}

/// Writes a user program's bytes (`\n` becomes `\r\n`), quiet or not.
pub fn write_bytes(bytes: &[u8]) {
    let _guard = LOCK.lock();
    crate::console::put_crlf(bytes, put_byte);
}

/// Writes bytes to the serial port as they are (a terminal's already processed echo
/// and output).
pub fn write_raw(bytes: &[u8]) {
    let _guard = LOCK.lock();
    for &b in bytes {
        put_byte(b);
    }
}

/// Turns on COM1's receive interrupt and routes IRQ 4 to this CPU.
pub fn enable_receive_interrupt() {
    super::ioapic::route_isa_irq(
        COM1_IRQ,
        super::idt::SERIAL_VECTOR,
        super::timer::lapic_id(),
    );
    outb(COM1 + 4, MCR_DTR_RTS_OUT2);
    outb(COM1 + 1, IER_RX_AVAILABLE);
    // Bytes that came before the interrupt was on raise none: take them now.
    on_receive_interrupt();
}

/// The receive interrupt: drains the FIFO (reading RBR clears the interrupt) and
/// feeds the bytes to the console terminal.
pub(super) fn on_receive_interrupt() {
    let mut buf = [0u8; 16];
    // Bounded: a missing UART reads as all ones ("data ready" forever).
    for _ in 0..64 {
        let mut n = 0;
        while n < buf.len() && inb(COM1 + 5) & LSR_DATA_READY != 0 {
            buf[n] = inb(COM1);
            n += 1;
        }
        if n == 0 {
            return;
        }
        crate::tty::console_input(&buf[..n]);
    }
}

/// Writes `s` without taking the console lock: for fault and panic handlers only.
pub fn emergency_write_str(s: &str) {
    put_str(s);
}

/// `core::fmt::Write` over [`emergency_write_str`].
pub struct EmergencyConsole;

impl core::fmt::Write for EmergencyConsole {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        emergency_write_str(s);
        Ok(())
    }
}

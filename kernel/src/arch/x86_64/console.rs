//! The serial console: COM1, a 16550 UART at I/O port 0x3f8, 115200 8N1, polled.
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

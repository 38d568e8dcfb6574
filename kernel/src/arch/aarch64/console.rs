//! The PL011 UART of QEMU `virt` as the kernel console.
//!
//! Registers used (ARM PL011 TRM): `DR` (offset 0x00) takes the byte to send, `FR`
//! (offset 0x18) bit 5 `TXFF` says the transmit FIFO is full. QEMU's UART needs no
//! baud-rate or enable setup to transmit. The registers are reached through the
//! physical-memory window, which maps them as Device memory in both phases (see
//! [`super::phys`]). A lock keeps lines of different CPUs and threads whole.

use crate::memory::{phys::phys_to_virt, PhysAddr};
use crate::sync::IrqMutex;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where QEMU `virt` puts the PL011 (the device tree may say otherwise).
pub const DEFAULT_BASE: u64 = 0x0900_0000;
const DR: u64 = 0x00;
const FR: u64 = 0x18;
const FR_TXFF: u32 = 1 << 5;

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

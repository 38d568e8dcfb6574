//! Time: the local APIC timer (periodic, the scheduler tick) and the TSC (the
//! kernel's clock), both calibrated once against the PIT's fixed 1.193182 MHz.
//!
//! Calibration polls PIT channel 0 in mode 0 (no PIT interrupt, the 8259 PICs are
//! remapped and masked) for 10 ms and counts how far the TSC and a free-running
//! LAPIC one-shot count advanced. If the PIT does not count (no PIT), defaults are
//! used and a warning printed.

use super::port::{inb, outb};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const PIT_HZ: u64 = 1_193_182;
const CALIBRATION_MS: u64 = 10;

// LAPIC registers (offsets from the APIC base) and bits.
const LAPIC_ID: u64 = 0x20;
const LAPIC_TPR: u64 = 0x80;
const LAPIC_EOI: u64 = 0xb0;
const LAPIC_SVR: u64 = 0xf0;
const LAPIC_LVT_TIMER: u64 = 0x320;
const LAPIC_TIMER_INIT: u64 = 0x380;
const LAPIC_TIMER_CURRENT: u64 = 0x390;
const LAPIC_TIMER_DIVIDE: u64 = 0x3e0;
const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
const DIVIDE_BY_16: u32 = 0x3;
const IA32_APIC_BASE: u32 = 0x1b;

static TSC_PER_MS: AtomicU64 = AtomicU64::new(1_000_000);
static LAPIC_PER_MS: AtomicU64 = AtomicU64::new(1_000);
static HZ: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Physical address of the local APIC's registers.
pub fn lapic_phys_base() -> u64 {
    super::cpu::rdmsr(IA32_APIC_BASE) & 0x000f_ffff_ffff_f000
}

fn lapic_reg(offset: u64) -> *mut u32 {
    (super::phys::window_base() + lapic_phys_base() + offset) as *mut u32
}

fn lapic_write(offset: u64, value: u32) {
    // SAFETY: the LAPIC page is mapped (uncached) in the physical window: by the boot
    // identity map, then explicitly by `memory::build_kernel_tables`.
    unsafe { core::ptr::write_volatile(lapic_reg(offset), value) };
}

fn lapic_read(offset: u64) -> u32 {
    // SAFETY: as in `lapic_write`.
    unsafe { core::ptr::read_volatile(lapic_reg(offset)) }
}

/// Remaps the legacy 8259 PICs to vectors 0xe0-0xef and masks every line, so they
/// never raise an interrupt on an exception vector.
fn disable_pic() {
    for (cmd, data, base, cascade) in [(0x20, 0x21, 0xe0, 4), (0xa0, 0xa1, 0xe8, 2)] {
        outb(cmd, 0x11); // ICW1: init, ICW4 follows
        outb(data, base); // ICW2: vector base
        outb(data, cascade); // ICW3: cascade wiring
        outb(data, 0x01); // ICW4: 8086 mode
        outb(data, 0xff); // mask all
    }
}

fn pit_count() -> u16 {
    outb(0x43, 0x00); // latch channel 0
    let lo = inb(0x40);
    let hi = inb(0x40);
    u16::from_le_bytes([lo, hi])
}

/// Busy-waits `ticks` PIT ticks (< 0xffff); false if the PIT does not count.
fn pit_wait(ticks: u16) -> bool {
    outb(0x43, 0x30); // channel 0, lo/hi byte, mode 0, binary
    outb(0x40, 0xff);
    outb(0x40, 0xff);
    for _ in 0..50_000_000u64 {
        if 0xffff - pit_count() >= ticks {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

/// Enables the LAPIC, masks the PICs and measures the TSC and LAPIC timer rates.
pub fn init() {
    disable_pic();
    lapic_write(LAPIC_TPR, 0);
    lapic_write(
        LAPIC_SVR,
        SVR_ENABLE | u32::from(super::idt::SPURIOUS_VECTOR),
    );
    lapic_write(LAPIC_TIMER_DIVIDE, DIVIDE_BY_16);
    lapic_write(
        LAPIC_LVT_TIMER,
        LVT_MASKED | u32::from(super::idt::TIMER_VECTOR),
    );
    lapic_write(LAPIC_TIMER_INIT, u32::MAX);
    let tsc0 = super::cpu::rdtsc();
    let counted = pit_wait((PIT_HZ * CALIBRATION_MS / 1000) as u16);
    let tsc1 = super::cpu::rdtsc();
    let lapic_elapsed = u64::from(u32::MAX - lapic_read(LAPIC_TIMER_CURRENT));
    lapic_write(LAPIC_TIMER_INIT, 0);
    if counted {
        TSC_PER_MS.store(((tsc1 - tsc0) / CALIBRATION_MS).max(1), Ordering::Relaxed);
        LAPIC_PER_MS.store((lapic_elapsed / CALIBRATION_MS).max(1), Ordering::Relaxed);
    } else {
        crate::println!("timer: the PIT does not count; using default rates");
    }
}

/// Starts the periodic LAPIC timer at `hz` interrupts per second.
pub fn start(hz: u32) {
    let hz = hz.max(1);
    let count =
        (LAPIC_PER_MS.load(Ordering::Relaxed) * 1000 / u64::from(hz)).clamp(1, u64::from(u32::MAX));
    HZ.store(hz, Ordering::Relaxed);
    lapic_write(LAPIC_TIMER_DIVIDE, DIVIDE_BY_16);
    lapic_write(
        LAPIC_LVT_TIMER,
        LVT_PERIODIC | u32::from(super::idt::TIMER_VECTOR),
    );
    lapic_write(LAPIC_TIMER_INIT, count as u32);
}

/// The running timer's frequency (0 before [`start`]).
pub fn hz() -> u32 {
    HZ.load(Ordering::Relaxed)
}

/// Timer ticks since [`start`].
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// TSC ticks per millisecond (calibrated).
pub fn tsc_per_ms() -> u64 {
    TSC_PER_MS.load(Ordering::Relaxed)
}

/// LAPIC timer ticks (after the divide-by-16) per millisecond (calibrated).
pub fn lapic_per_ms() -> u64 {
    LAPIC_PER_MS.load(Ordering::Relaxed)
}

/// Microseconds since the CPU's TSC was 0 (QEMU starts it at 0 when the VM starts).
pub fn uptime_us() -> u64 {
    let per_ms = tsc_per_ms();
    let tsc = super::cpu::rdtsc();
    (tsc / per_ms) * 1000 + (tsc % per_ms) * 1000 / per_ms
}

/// Signals the end of an interrupt (other than the timer's) to the local APIC.
pub(super) fn end_of_interrupt() {
    lapic_write(LAPIC_EOI, 0);
}

const LAPIC_ICR_LOW: u64 = 0x300;
const LAPIC_ICR_HIGH: u64 = 0x310;
/// ICR: the previous IPI is still being sent.
const ICR_PENDING: u32 = 1 << 12;
/// ICR: level assert (required for everything but INIT de-assert).
const ICR_ASSERT: u32 = 1 << 14;
const ICR_INIT: u32 = 5 << 8;
const ICR_STARTUP: u32 = 6 << 8;

/// Writes the interrupt command register: `low` to the CPU with APIC id `apic_id`,
/// once the previous command left. Interrupts are masked around the two writes,
/// so a handler's IPI cannot slip between them.
fn send_command(apic_id: u32, low: u32) {
    let saved = super::interrupts::save_and_disable();
    for _ in 0..1_000_000 {
        if lapic_read(LAPIC_ICR_LOW) & ICR_PENDING == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
    lapic_write(LAPIC_ICR_LOW, low);
    super::interrupts::restore(saved);
}

/// Sends a fixed interrupt with `vector` to the CPU with APIC id `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send_command(apic_id, ICR_ASSERT | u32::from(vector));
}

/// Sends INIT (the start of INIT-SIPI-SIPI) to the CPU with APIC id `apic_id`.
pub fn send_init(apic_id: u32) {
    send_command(apic_id, ICR_ASSERT | ICR_INIT);
}

/// Sends a start-up IPI: the CPU with APIC id `apic_id` starts in real mode at
/// physical `page << 12`.
pub fn send_startup(apic_id: u32, page: u8) {
    send_command(apic_id, ICR_ASSERT | ICR_STARTUP | u32::from(page));
}

/// Turns on this CPU's local APIC as [`init`] left the boot CPU's (an AP's own
/// set-up: the calibration is shared).
pub fn init_this_cpu() {
    lapic_write(LAPIC_TPR, 0);
    lapic_write(
        LAPIC_SVR,
        SVR_ENABLE | u32::from(super::idt::SPURIOUS_VECTOR),
    );
}

/// This CPU's local APIC id (bits 24-31 of the ID register).
pub fn lapic_id() -> u8 {
    (lapic_read(LAPIC_ID) >> 24) as u8
}

/// Called by the timer interrupt: acknowledge, count, let the scheduler decide.
pub(super) fn on_interrupt() {
    lapic_write(LAPIC_EOI, 0);
    if crate::smp::this_index() == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
    }
    super::thread::on_timer_tick();
}

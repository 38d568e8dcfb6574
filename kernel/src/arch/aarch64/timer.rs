//! The ARM generic timer as the periodic tick: the EL1 virtual timer (`CNTV_*`),
//! PPI 11 on QEMU `virt` (GIC id 27; the device tree's `/timer` says which).
//!
//! The counter runs at `CNTFRQ_EL0` Hz (62.5 MHz on QEMU). Each tick sets the compare
//! value one period after the previous deadline (`CNTV_CVAL_EL0`), so ticks do not
//! drift with handler latency. `CNTV_CTL_EL0`: bit 0 ENABLE, bit 1 IMASK, bit 2
//! ISTATUS.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// PPI number of the virtual timer on QEMU `virt`.
pub const DEFAULT_PPI: u32 = 11;

static PPI: AtomicU32 = AtomicU32::new(DEFAULT_PPI);
static HZ: AtomicU32 = AtomicU32::new(0);
static PERIOD: AtomicU64 = AtomicU64::new(0);
static DEADLINE: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Counter frequency in Hz.
pub fn frequency() -> u64 {
    let f: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    f
}

/// The virtual counter.
pub fn counter() -> u64 {
    let c: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects; `isb` keeps it in order.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) c, options(nomem, nostack)) };
    c
}

/// Nanoseconds since the counter started (boot).
pub fn uptime_ns() -> u64 {
    let f = frequency().max(1);
    ((counter() as u128 * 1_000_000_000) / f as u128) as u64
}

/// Uses the virtual timer PPI `ppi` (from the device tree).
pub fn set_ppi(ppi: u32) {
    PPI.store(ppi, Ordering::Relaxed);
}

/// GIC interrupt id of the timer.
pub fn irq_id() -> u32 {
    PPI.load(Ordering::Relaxed) + 16
}

fn set_compare(cval: u64) {
    // SAFETY: programming the EL1 virtual timer affects only its interrupt.
    unsafe {
        core::arch::asm!(
            "msr cntv_cval_el0, {}",
            "msr cntv_ctl_el0, {}",
            "isb",
            in(reg) cval,
            in(reg) 1u64,
            options(nomem, nostack)
        )
    };
}

/// Starts periodic interrupts at `hz` (enabled in the GIC; IRQs stay masked in
/// DAIF until the caller unmasks them).
pub fn start(hz: u32) {
    let hz = hz.max(1);
    let period = (frequency() / hz as u64).max(1);
    HZ.store(hz, Ordering::Relaxed);
    PERIOD.store(period, Ordering::Relaxed);
    let deadline = counter() + period;
    DEADLINE.store(deadline, Ordering::Relaxed);
    super::gic::enable(irq_id());
    set_compare(deadline);
}

/// Handles one timer interrupt: counts the tick and sets the next deadline (skipping
/// deadlines already missed).
pub fn on_interrupt() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    let period = PERIOD.load(Ordering::Relaxed).max(1);
    let now = counter();
    let mut next = DEADLINE.load(Ordering::Relaxed) + period;
    if next <= now {
        next = now + period;
    }
    DEADLINE.store(next, Ordering::Relaxed);
    set_compare(next);
}

/// Timer interrupts handled since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// The programmed frequency in Hz (0 before [`start`]).
pub fn hz() -> u32 {
    HZ.load(Ordering::Relaxed)
}

/// Microseconds since the counter started (boot).
pub fn uptime_us() -> u64 {
    uptime_ns() / 1000
}

//! The ARM generic timer as the periodic tick: the EL1 virtual timer (`CNTV_*`),
//! PPI 11 on QEMU `virt` (GIC id 27; the device tree's `/timer` says which).
//!
//! The counter runs at `CNTFRQ_EL0` Hz (62.5 MHz on QEMU). Each tick sets the compare
//! value one period after the previous deadline (`CNTV_CVAL_EL0`), so ticks do not
//! drift with handler latency. `CNTV_CTL_EL0`: bit 0 ENABLE, bit 1 IMASK, bit 2
//! ISTATUS.
//!
//! Every CPU has its own virtual timer (banked registers, a PPI of its own), started
//! by [`start`] on the boot CPU and [`start_this_cpu`] on the others: the period is
//! shared, the deadline is per CPU ([`DEADLINE`], by `smp` index, touched only by its
//! CPU), and the others tick in phase with the boot CPU. [`ticks`] counts the boot CPU's ticks (so it keeps meaning "ticks at 100 Hz
//! since the timer started"); each CPU's own count is its `PerCpu::ticks`.

use crate::smp::{self, MAX_CPUS};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// PPI number of the virtual timer on QEMU `virt`.
pub const DEFAULT_PPI: u32 = 11;

static PPI: AtomicU32 = AtomicU32::new(DEFAULT_PPI);
static HZ: AtomicU32 = AtomicU32::new(0);
static PERIOD: AtomicU64 = AtomicU64::new(0);
static DEADLINE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
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

/// Starts the calling CPU's periodic interrupts at `hz` (enabled in the GIC; IRQs
/// stay masked in DAIF until the caller unmasks them); the other CPUs follow at the
/// same rate ([`start_this_cpu`]).
pub fn start(hz: u32) {
    let hz = hz.max(1);
    let period = (frequency() / hz as u64).max(1);
    HZ.store(hz, Ordering::Relaxed);
    PERIOD.store(period, Ordering::Relaxed);
    start_this_cpu();
}

/// Starts the calling CPU's timer at the rate [`start`] chose (at
/// [`crate::process::scheduler::TICK_HZ`] if it has not run yet).
pub fn start_this_cpu() {
    if PERIOD.load(Ordering::Relaxed) == 0 {
        return start(crate::process::scheduler::TICK_HZ);
    }
    let period = PERIOD.load(Ordering::Relaxed);
    let now = counter();
    // In phase with the boot CPU's ticks, so every CPU's tick falls where the
    // scheduler's clock (uptime / period) steps.
    let deadline = match DEADLINE[0].load(Ordering::Relaxed) {
        0 => now + period,
        boot => now + period - (now.saturating_sub(boot) % period),
    };
    DEADLINE[smp::this_index()].store(deadline, Ordering::Relaxed);
    super::gic::enable(irq_id());
    set_compare(deadline);
}

/// Handles one timer interrupt of the calling CPU: counts the tick and sets its next
/// deadline (skipping deadlines already missed).
pub fn on_interrupt() {
    let me = smp::this();
    if me.id() == 0 {
        TICKS.fetch_add(1, Ordering::Relaxed);
    }
    let period = PERIOD.load(Ordering::Relaxed).max(1);
    let now = counter();
    let deadline = &DEADLINE[me.id()];
    let mut next = deadline.load(Ordering::Relaxed) + period;
    if next <= now {
        next = now + period;
    }
    deadline.store(next, Ordering::Relaxed);
    set_compare(next);
}

/// Timer interrupts the boot CPU handled since boot.
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

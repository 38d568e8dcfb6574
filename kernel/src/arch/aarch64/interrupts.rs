//! Interrupt masking (the `I` and `F` bits of `DAIF`) and the periodic timer.
//!
//! [`save_and_disable`] / [`restore`] nest: each saves whether IRQs were unmasked
//! and `restore` only unmasks them again if they were. [`crate::sync::IrqMutex`] is
//! built on them.

/// DAIF.I: IRQs masked.
const DAIF_I: u64 = 1 << 7;

/// Whether interrupts were enabled before [`save_and_disable`].
#[derive(Debug, Clone, Copy)]
pub struct IrqState(bool);

fn daif() -> u64 {
    let v: u64;
    // SAFETY: reading DAIF has no side effects.
    unsafe { core::arch::asm!("mrs {}, daif", out(reg) v, options(nomem, nostack)) };
    v
}

/// Whether IRQs are unmasked on this CPU.
pub fn are_enabled() -> bool {
    daif() & DAIF_I == 0
}

/// Masks interrupts and returns the previous state.
pub fn save_and_disable() -> IrqState {
    let was = are_enabled();
    disable();
    IrqState(was)
}

/// Restores the state saved by [`save_and_disable`].
pub fn restore(state: IrqState) {
    if state.0 {
        enable();
    }
}

/// Unmasks IRQs and FIQs.
pub fn enable() {
    // SAFETY: the vector table is installed before anything unmasks interrupts (see
    // `super::init`); unmasking has no memory effects. Not `nomem`: it must not be
    // reordered with the memory accesses it protects.
    unsafe { core::arch::asm!("msr daifclr, #3", options(nostack)) };
}

/// Lets the interrupts that are pending in (the timer's, which may switch threads
/// in place) and masks them again: a preemption point for code that runs masked.
/// Call with interrupts masked and no lock held.
pub fn take_pending() {
    // SAFETY: as in `enable`; the `isb` makes the unmasking take effect, so a
    // pending IRQ is taken there, before `daifset` masks it again.
    unsafe {
        core::arch::asm!(
            "msr daifclr, #3",
            "isb",
            "msr daifset, #3",
            options(nostack)
        )
    };
}

/// Halts until an interrupt is pending, takes it (its handler may switch threads
/// in place) and masks interrupts again. Call with interrupts masked and no lock
/// held: `wfi` ends on a pending interrupt even while it is masked, so one that came
/// before the halt ends it at once.
pub fn halt_then_take_pending() {
    // SAFETY: `wfi` only pauses the CPU; the rest is `take_pending`'s window.
    unsafe {
        core::arch::asm!(
            "wfi",
            "msr daifclr, #3",
            "isb",
            "msr daifset, #3",
            options(nostack)
        )
    };
}

/// Masks IRQs and FIQs.
pub fn disable() {
    // SAFETY: masking has no memory effects; ordered like `enable`.
    unsafe { core::arch::asm!("msr daifset, #3", options(nostack)) };
}

/// Waits for the next interrupt (with IRQs unmasked it is then handled).
pub fn wait_for_interrupt() {
    // SAFETY: `wfi` only pauses the CPU.
    unsafe { core::arch::asm!("wfi", options(nomem, nostack)) };
}

/// Arms the periodic timer at [`crate::process::scheduler::TICK_HZ`] and unmasks
/// interrupts: from now on each tick calls the scheduler and may preempt.
pub fn init_timer() {
    super::timer::start(crate::process::scheduler::TICK_HZ);
    enable();
}

/// The programmed timer frequency in Hz (0 before [`init_timer`]).
pub fn timer_hz() -> u32 {
    super::timer::hz()
}

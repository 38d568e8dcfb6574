//! Interrupt masking (RFLAGS.IF) and the periodic timer.
//!
//! [`save_and_disable`] / [`restore`] nest: each saves whether interrupts were on and
//! `restore` only turns them back on if they were. [`crate::sync::IrqMutex`] is built
//! on them.

/// RFLAGS interrupt-enable bit.
const RFLAGS_IF: u64 = 1 << 9;

/// Whether interrupts were enabled before [`save_and_disable`].
#[derive(Debug, Clone, Copy)]
pub struct IrqState(bool);

fn rflags() -> u64 {
    let flags: u64;
    // SAFETY: pushes and pops RFLAGS on the current stack; no other effect.
    unsafe { core::arch::asm!("pushfq; pop {}", out(reg) flags, options(nomem, preserves_flags)) };
    flags
}

/// Whether interrupts are enabled on this CPU.
pub fn are_enabled() -> bool {
    rflags() & RFLAGS_IF != 0
}

/// Masks interrupts and returns the previous state.
pub fn save_and_disable() -> IrqState {
    let was = are_enabled();
    // SAFETY: `cli` only masks maskable interrupts on this CPU.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    IrqState(was)
}

/// Restores the state saved by [`save_and_disable`].
pub fn restore(state: IrqState) {
    if state.0 {
        enable();
    }
}

/// Unmasks interrupts.
pub fn enable() {
    // SAFETY: the IDT is loaded before anything enables interrupts (see `init`).
    unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
}

/// Lets the interrupts that are pending in (the timer's, which may switch threads
/// in place) and masks them again: a preemption point for code that runs masked.
/// Call with interrupts masked and no lock held.
pub fn take_pending() {
    // SAFETY: as in `enable`; `sti` takes effect after the next instruction, so the
    // `nop` is where a pending interrupt is taken, before `cli` masks it again. Not
    // `nomem`: memory accesses must not move across the window.
    unsafe { core::arch::asm!("sti", "nop", "cli", options(nostack)) };
}

/// Halts until an interrupt comes, takes it (its handler may switch threads in
/// place) and masks interrupts again. Call with interrupts masked and no lock held:
/// one that became pending while they were masked ends the halt at once, since
/// `sti` takes effect only after `hlt` has begun.
pub fn halt_then_take_pending() {
    // SAFETY: as in `enable`; `hlt` only pauses the CPU. Not `nomem`: memory
    // accesses must not move across the window.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nostack)) };
}

/// Masks interrupts.
pub fn disable() {
    // SAFETY: `cli` only masks maskable interrupts on this CPU.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
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

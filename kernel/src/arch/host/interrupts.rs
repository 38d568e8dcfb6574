//! Interrupts on the host: there are none to mask, and the "timer" is a counter that
//! tests advance by calling [`timer_interrupt`], which does exactly what the bare-metal
//! timer handler does.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Whether interrupts were enabled before [`save_and_disable`].
#[derive(Debug, Clone, Copy)]
pub struct IrqState(());

static TIMER_HZ: AtomicU32 = AtomicU32::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Masks interrupts and returns the previous state (a no-op on the host).
pub fn save_and_disable() -> IrqState {
    IrqState(())
}

/// Restores the state saved by [`save_and_disable`].
pub fn restore(_state: IrqState) {}

/// A preemption point for code that runs masked (nothing is pending on the host).
pub fn take_pending() {}

/// A halt until the next interrupt: on the host, where another thread holds what the
/// caller waits for, a pause.
pub fn halt_then_take_pending() {
    core::hint::spin_loop();
}

/// Arms the periodic timer at [`crate::process::scheduler::TICK_HZ`]. On the host
/// ticks arrive when [`timer_interrupt`] is called.
pub fn init_timer() {
    TIMER_HZ.store(crate::process::scheduler::TICK_HZ, Ordering::Relaxed);
    ENABLED.store(true, Ordering::Relaxed);
}

/// The programmed timer frequency in Hz (0 before [`init_timer`]).
pub fn timer_hz() -> u32 {
    TIMER_HZ.load(Ordering::Relaxed)
}

/// What the timer interrupt handler does: account one tick and, when the running
/// thread's slice is used up, pick the next thread. Returns the thread that should
/// run now (on bare metal the handler switches to it).
pub fn timer_interrupt() -> Option<crate::process::Tid> {
    crate::process::scheduler::timer_tick()
}

//! Kernel threads on x86_64: the timer's preemption hook (being written).

/// Called from the timer interrupt after the EOI.
pub(super) fn on_timer_tick() {
    let _ = crate::process::scheduler::timer_tick();
}

//! The scheduler (being written).

/// Timer ticks per second.
pub const TICK_HZ: u32 = 100;

/// Called by the timer interrupt.
pub fn timer_tick() -> Option<super::Tid> {
    None
}

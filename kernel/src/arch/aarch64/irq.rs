//! IRQ dispatch: acknowledge at the GIC, run the handler, signal end of interrupt.
//!
//! The timer tick is the only interrupt the kernel enables so far. After its EOI the
//! tick handler (by default the scheduler's `timer_tick`, see [`set_tick_hook`]) runs
//! with IRQs still masked and may switch threads: the interrupted thread's
//! [`TrapFrame`] stays on its own stack until it is switched back to, then the vector
//! code restores it and returns to where the thread was interrupted.

use super::exceptions::TrapFrame;
use super::{gic, timer};
use core::sync::atomic::{AtomicUsize, Ordering};

/// What runs on each tick after the timer is re-armed (0 = the scheduler).
static TICK_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Replaces the default tick action (the scheduler's `timer_tick` + switch) with
/// `hook`, or restores the default with `None`. The hook runs in interrupt context
/// with IRQs masked; it may call [`super::thread::switch`].
pub fn set_tick_hook(hook: Option<fn()>) {
    TICK_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::SeqCst);
}

fn on_tick() {
    match TICK_HOOK.load(Ordering::SeqCst) {
        0 => super::thread::preempt(crate::process::scheduler::timer_tick()),
        f => {
            // SAFETY: the only non-zero values stored are `fn()` pointers
            // (`set_tick_hook`).
            let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(f) };
            hook()
        }
    }
}

/// Handles one IRQ exception.
pub fn handle(_frame: &mut TrapFrame) {
    let iar = gic::acknowledge();
    let id = iar & 0x3ff;
    if id == gic::SPURIOUS {
        return;
    }
    if id == timer::irq_id() {
        timer::on_interrupt();
        gic::end_of_interrupt(iar);
        on_tick();
    } else {
        gic::end_of_interrupt(iar);
    }
}

//! IRQ dispatch: acknowledge at the GIC, run the handler, signal end of interrupt.
//!
//! Interrupts: each CPU's timer tick, the kernel's IPI ([`ipi::IPI_SGI`], handled
//! after its EOI like the tick: it may switch threads) and, once the console terminal is on, the PL011's
//! receive interrupt (handled before its EOI, so the level-triggered line is low
//! again when the GIC looks). After its EOI the
//! tick handler ([`super::thread`]: the scheduler's `timer_tick`, then a switch if it
//! chose another thread) runs with IRQs still masked: the interrupted thread's
//! [`TrapFrame`] stays on its own stack until it is switched back to, then the vector
//! code restores it and returns to where the thread was interrupted.

use super::exceptions::TrapFrame;
use super::{gic, ipi, timer};

fn on_tick() {
    super::thread::on_timer_tick();
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
    } else if id == ipi::IPI_SGI {
        gic::end_of_interrupt(iar);
        ipi::on_interrupt();
    } else if id == super::console::RX_INTID {
        super::console::on_receive_interrupt();
        gic::end_of_interrupt(iar);
    } else {
        gic::end_of_interrupt(iar);
    }
}

//! Kernel threads on x86_64: the timer's preemption hook and thread exit
//! (being written).

/// Called from the timer interrupt after the EOI.
pub(super) fn on_timer_tick() {
    let _ = crate::process::scheduler::timer_tick();
}

/// Where a kernel thread's entry function returns to.
pub(super) extern "C" fn exit_current_thread() -> ! {
    crate::println!("thread exit: not yet supported");
    super::exit::exit_qemu(super::exit::ExitCode::Failure)
}

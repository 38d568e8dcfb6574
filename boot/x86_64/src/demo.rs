//! The demo: the seed's Complete Example run for real (`kernel::demo`), then user
//! programs from `user/` as Linux binaries in their own address spaces.

use kernel::arch::x86_64::{exit, interrupts, timer};
use kernel::println;

/// Runs the demo, prints the boot timeline and exits QEMU.
pub fn run() -> ! {
    let (threads_done, free_before) = kernel::demo::complete_example();
    let users_ok = kernel::task::init::demo();
    interrupts::disable();
    kernel::demo::report(threads_done, free_before);
    let done = threads_done && users_ok;
    println!(
        "boot timeline (guest TSC since VM start): demo done at {} ms",
        timer::uptime_us() / 1000
    );
    exit::exit_qemu(if done {
        exit::ExitCode::Success
    } else {
        exit::ExitCode::Failure
    })
}

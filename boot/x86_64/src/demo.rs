//! The demo: the seed's Complete Example, run for real. Two deviations from the
//! text, both forced by real hardware: RAM comes from the PVH memory map (the
//! allocator already owns it, so it is not re-initialised with a made-up region), and
//! each thread's entry is a real function on a guarded kernel stack (the seed's
//! `0x400000` and a physical address are not code and stack in a higher-half kernel).

use core::sync::atomic::{AtomicU32, Ordering};
use kernel::arch::x86_64::{exit, interrupts, thread, timer};
use kernel::memory::{frame_allocator, heap};
use kernel::println;
use kernel::process::{create_process, scheduler, Priority};

static FINISHED: AtomicU32 = AtomicU32::new(0);

fn worker(name: &str) {
    for round in 1..=3 {
        println!("  [{name}] round {round} (tick {})", timer::ticks());
        thread::sleep_ticks(2);
    }
    FINISHED.fetch_add(1, Ordering::SeqCst);
}

fn process_1_main() {
    worker("process_1/High");
}

fn process_2_main() {
    worker("process_2/Normal");
}

/// Runs the demo, prints the boot timeline and exits QEMU.
pub fn run() -> ! {
    heap::init_heap();
    scheduler::init_scheduler();
    let free_before = frame_allocator::free_frame_count();
    let p1_frame = frame_allocator::allocate_frame().expect("frame");
    let pid1 = create_process("process_1".into(), p1_frame).expect("process 1");
    let tid1 = thread::spawn(pid1, Priority::High, process_1_main).expect("thread 1");
    let p2_frame = frame_allocator::allocate_frame().expect("frame");
    let pid2 = create_process("process_2".into(), p2_frame).expect("process 2");
    let tid2 = thread::spawn(pid2, Priority::Normal, process_2_main).expect("thread 2");
    println!("demo: {pid1:?}/{tid1:?} High, {pid2:?}/{tid2:?} Normal");
    interrupts::init_timer();
    let current = scheduler::schedule();
    assert_eq!(current, Some(tid1));
    println!("demo: scheduler picked {current:?} first; running the threads");
    let done = thread::idle_until(|| FINISHED.load(Ordering::SeqCst) == 2, 10_000);
    let users_ok = crate::userland::demo();
    let done = done && users_ok;
    interrupts::disable();
    println!(
        "demo: {} ({} frames in use after the threads exited)",
        if done {
            "both threads finished"
        } else {
            "TIMEOUT"
        },
        free_before.saturating_sub(frame_allocator::free_frame_count())
    );
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

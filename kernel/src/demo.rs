//! The seed's Complete Example run for real on bare metal, shared by the x86_64 and
//! aarch64 demos (`boot/*/src/demo.rs`). Two deviations from the text, both forced by
//! real hardware: RAM comes from the firmware (the allocator already owns it, so it is
//! not re-initialised with a made-up region), and each thread's entry is a real
//! function on a guarded kernel stack (the seed's `0x400000` and a physical address
//! are not code and stack in a higher-half kernel).

use crate::arch::{interrupts, thread, timer};
use crate::memory::{frame_allocator, heap};
use crate::println;
use crate::process::{create_process, scheduler, Priority};
use core::sync::atomic::{AtomicU32, Ordering};

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

/// Two processes, a High and a Normal thread, the timer on: the High thread is picked
/// first and both run to the end. Returns whether they finished in time (10 s) and the
/// free-frame count from before the processes existed; the timer stays on.
pub fn complete_example() -> (bool, u64) {
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
    (done, free_before)
}

/// The demo's closing line about the threads.
pub fn report(done: bool, free_before: u64) {
    println!(
        "demo: {} ({} frames in use after the threads exited)",
        if done {
            "both threads finished"
        } else {
            "TIMEOUT"
        },
        free_before.saturating_sub(frame_allocator::free_frame_count())
    );
}

//! The seed API contract (`shared/seed/kernel-usage.md`), run verbatim.
//!
//! This is the "Complete Example", as one block; the only additions are the `use`
//! lines it needs.
//!
//! This file runs in its own process (integration tests are one binary per file), so
//! the global kernel state it builds is its own.
#![allow(unused_must_use, unused_variables, unused_imports, unused_mut)]

extern crate alloc;

/// The seed's "Complete Example: Multi-Process System".
#[test]
#[rustfmt::skip]
fn seed_complete_example() {
    use kernel::arch::interrupts; // added
    use kernel::memory::{frame_allocator, heap, MemoryRegion, PhysAddr, VirtAddr}; // added
    use kernel::process::{create_process, create_thread, scheduler, Priority}; // added
    // Initialize memory management
    let regions = [MemoryRegion::new(PhysAddr::new(0x100000), 0x10000000)];
    frame_allocator::init_frame_allocator(&regions);
    heap::init_heap();

    // Initialize scheduler
    scheduler::init_scheduler();

    // Create first process
    let p1_frame = frame_allocator::allocate_frame().unwrap();
    let pid1 = create_process("process_1".into(), p1_frame).unwrap();

    // Create thread for process 1
    let stack1 = frame_allocator::allocate_frame().unwrap();
    let tid1 = create_thread(
        pid1,
        Priority::High,
        VirtAddr::new(0x400000),
        VirtAddr::new(stack1.start_address.0 + 4096),
        None
    ).unwrap();
    scheduler::add_thread(tid1);

    // Create second process
    let p2_frame = frame_allocator::allocate_frame().unwrap();
    let pid2 = create_process("process_2".into(), p2_frame).unwrap();

    // Create thread for process 2
    let stack2 = frame_allocator::allocate_frame().unwrap();
    let tid2 = create_thread(
        pid2,
        Priority::Normal,
        VirtAddr::new(0x500000),
        VirtAddr::new(stack2.start_address.0 + 4096),
        None
    ).unwrap();
    scheduler::add_thread(tid2);

    // Initialize timer for preemptive scheduling
    interrupts::init_timer();

    // Start scheduling (high priority thread runs first)
    let current = scheduler::schedule().unwrap();
    assert_eq!(current, tid1);
}

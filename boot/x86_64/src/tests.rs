//! In-QEMU tests: what only the real machine can show (page tables in use, interrupts,
//! context switches). Each test is a function that panics on failure; the panic
//! handler reports it and exits QEMU with the failure status.
//!
//! Command line: `test --list` prints `test-name: NAME` lines; `test NAME` runs one
//! test; `test` runs all. Each prints `test NAME ... ok`.
//!
//! Tests named `should_fault_*` must end in a reported exception or panic (QEMU's
//! failure status and an `EXCEPTION`/`KERNEL PANIC` line): xtask checks that.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use kernel::arch::x86_64::{exit, interrupts, timer};
use kernel::memory::frame_allocator;
use kernel::println;
use kernel::selftest as sched;

/// A named in-kernel test.
struct Test {
    name: &'static str,
    run: fn(),
}

const TESTS: &[Test] = &[
    Test {
        name: "heap_collections",
        run: heap_collections,
    },
    Test {
        name: "frame_alloc_roundtrip",
        run: frame_alloc_roundtrip,
    },
    Test {
        name: "timer_ticks_at_100hz",
        run: timer_ticks_at_100hz,
    },
    Test {
        name: "context_switch_pingpong",
        run: context_switch_pingpong,
    },
    Test {
        name: "identity_map_gone_direct_map_live",
        run: identity_map_gone_direct_map_live,
    },
    Test {
        name: "kernel_section_permissions",
        run: kernel_section_permissions,
    },
    Test {
        name: "kernel_stack_has_guard_page",
        run: kernel_stack_has_guard_page,
    },
    Test {
        name: "threads_complete_example",
        run: sched::complete_example,
    },
    Test {
        name: "two_threads_preempt_each_other",
        run: sched::two_threads_preempt_each_other,
    },
    Test {
        name: "high_preempts_normal",
        run: sched::high_preempts_normal,
    },
    Test {
        name: "low_runs_by_aging",
        run: sched::low_runs_by_aging,
    },
    Test {
        name: "block_and_unblock",
        run: sched::block_and_unblock,
    },
    Test {
        name: "timer_sleep",
        run: sched::timer_sleep,
    },
    Test {
        name: "user_storm_leaves_no_frame",
        run: user_storm_leaves_no_frame,
    },
    Test {
        name: "user_exhaustion_leaves_no_frame",
        run: user_exhaustion_leaves_no_frame,
    },
    Test {
        name: "user_hog_does_not_stop_others",
        run: user_hog_does_not_stop_others,
    },
    Test {
        name: "lanes_run_beside_the_table_lock",
        run: lanes_run_beside_the_table_lock,
    },
    Test {
        name: "numa_local_allocation",
        run: numa_local_allocation,
    },
    Test {
        name: "numa_local_on_every_cpu",
        run: numa_local_on_every_cpu,
    },
    Test {
        name: "should_fault_stack_overflow_hits_guard",
        run: should_fault_stack_overflow_hits_guard,
    },
    Test {
        name: "should_fault_panic_reports",
        run: should_fault_panic_reports,
    },
];

/// Runs what the command line after `test` asks for, then exits QEMU.
pub fn main(args: &str) -> ! {
    let arg = args.trim();
    if arg == "--list" {
        TESTS.iter().for_each(|t| println!("test-name: {}", t.name));
        exit::exit_qemu(exit::ExitCode::Success);
    }
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|t| arg.is_empty() || t.name == arg)
        .collect();
    if selected.is_empty() {
        println!("no test named {arg:?}");
        exit::exit_qemu(exit::ExitCode::Failure);
    }
    for t in selected {
        println!("test {} ...", t.name);
        (t.run)();
        println!("test {} ... ok", t.name);
    }
    exit::exit_qemu(exit::ExitCode::Success)
}

fn heap_collections() {
    let mut v: Vec<u64> = (0..10_000).collect();
    v.retain(|x| x % 3 == 0);
    assert_eq!(v.len(), 3334);
    let mut m = BTreeMap::new();
    for i in 0..1000u32 {
        m.insert(i, alloc::format!("value {i}"));
    }
    assert_eq!(m.get(&999).map(|s| s.as_str()), Some("value 999"));
}

fn frame_alloc_roundtrip() {
    let mut frames = Vec::with_capacity(64);
    let before = frame_allocator::free_frame_count();
    frames.extend((0..64).map(|_| frame_allocator::allocate_frame().expect("frame")));
    assert_eq!(frame_allocator::free_frame_count(), before - 64);
    for f in frames {
        frame_allocator::deallocate_frame(f).expect("free");
    }
    assert_eq!(frame_allocator::free_frame_count(), before);
}

fn timer_ticks_at_100hz() {
    interrupts::init_timer();
    let start_us = timer::uptime_us();
    let start = timer::ticks();
    while timer::ticks() < start + 20 {
        kernel::arch::x86_64::cpu::halt();
    }
    let elapsed_ms = (timer::uptime_us() - start_us) / 1000;
    println!("  20 ticks took {elapsed_ms} ms (TSC)");
    assert!(
        (150..=300).contains(&elapsed_ms),
        "20 ticks at 100 Hz took {elapsed_ms} ms"
    );
}

mod pingpong {
    //! Two contexts switching back and forth on their own stacks.
    use core::cell::UnsafeCell;
    use kernel::arch::x86_64::context::{self, X86_64Context};

    pub struct Shared {
        pub main: UnsafeCell<X86_64Context>,
        pub other: UnsafeCell<X86_64Context>,
        pub stack: UnsafeCell<[u8; 16384]>,
        pub counter: UnsafeCell<u32>,
    }
    // SAFETY: only touched by the test, one CPU, interrupts off.
    unsafe impl Sync for Shared {}

    pub static S: Shared = Shared {
        main: UnsafeCell::new(X86_64Context {
            rbx: 0,
            rbp: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            rflags: 2,
            rsp: 0,
            rip: 0,
            on_cpu: 0,
        }),
        other: UnsafeCell::new(X86_64Context {
            rbx: 0,
            rbp: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            rflags: 2,
            rsp: 0,
            rip: 0,
            on_cpu: 0,
        }),
        stack: UnsafeCell::new([0; 16384]),
        counter: UnsafeCell::new(0),
    };

    fn other_entry() {
        loop {
            // SAFETY: the main side is suspended while this runs.
            unsafe {
                *S.counter.get() += 1;
                kernel::arch::x86_64::interrupts::disable();
                context::switch(S.other.get(), S.main.get());
            }
        }
    }

    pub fn run() {
        // SAFETY: the other side has not started; we own the statics.
        unsafe {
            let other = &mut *S.other.get();
            other.rsp = S.stack.get() as u64 + 16384;
            other.rip = other_entry as *const () as u64;
            context::prepare_first_run(other);
            for i in 1..=5u32 {
                kernel::arch::x86_64::interrupts::disable();
                context::switch(S.main.get(), S.other.get());
                assert_eq!(*S.counter.get(), i);
            }
        }
    }
}

fn context_switch_pingpong() {
    pingpong::run();
}

fn identity_map_gone_direct_map_live() {
    use kernel::arch::x86_64::phys;
    use kernel::memory::paging::{PageTableMapper, X86_64PageTable};
    use kernel::memory::VirtAddr;
    let table = X86_64PageTable::active();
    assert_eq!(phys::window_base(), phys::DIRECT_MAP_BASE);
    assert!(
        table.translate(VirtAddr::new(0x20_0000)).is_none(),
        "low identity map still present"
    );
    let f = frame_allocator::allocate_frame().expect("frame");
    let v = kernel::memory::phys::phys_to_virt(f.start_address);
    assert_eq!(table.translate(v), Some(f.start_address));
    kernel::memory::phys::write_u64(f.start_address, 0xdead_beef).expect("write");
    assert_eq!(
        kernel::memory::phys::read_u64(f.start_address),
        Ok(0xdead_beef)
    );
    frame_allocator::deallocate_frame(f).expect("free");
}

fn kernel_section_permissions() {
    use kernel::memory::paging::{PageFlags, X86_64PageTable};
    let layout = crate::bare::layout();
    let table = X86_64PageTable::active();
    let flags = |v| table.lookup(v).expect("mapped").flags;
    let text = flags(layout.text.start);
    assert!(
        !text.contains(PageFlags::WRITABLE) && !text.contains(PageFlags::NO_EXECUTE),
        "text {text:?}"
    );
    let ro = flags(layout.rodata.start);
    assert!(
        !ro.contains(PageFlags::WRITABLE) && ro.contains(PageFlags::NO_EXECUTE),
        "rodata {ro:?}"
    );
    let data = flags(layout.data.start);
    assert!(
        data.contains(PageFlags::WRITABLE) && data.contains(PageFlags::NO_EXECUTE),
        "data {data:?}"
    );
    assert!(
        table.lookup(layout.guards[0]).is_err(),
        "boot stack guard page is mapped"
    );
}

fn kernel_stack_has_guard_page() {
    use kernel::arch::x86_64::stack;
    use kernel::memory::paging::{PageTableMapper, X86_64PageTable};
    use kernel::memory::VirtAddr;
    let before = frame_allocator::free_frame_count();
    let s = stack::allocate(16 * 1024).expect("stack");
    let table = X86_64PageTable::active();
    assert!(table.translate(s.bottom).is_some());
    assert!(table.translate(VirtAddr::new(s.top.as_u64() - 8)).is_some());
    assert!(
        table
            .translate(VirtAddr::new(s.bottom.as_u64() - 4096))
            .is_none(),
        "guard page mapped"
    );
    stack::free(s);
    // Kept mapped for reuse: the next stack of that size is the same one, and
    // takes no frame.
    let cached = stack::cached_stacks();
    assert!(cached >= 1);
    let free = frame_allocator::free_frame_count();
    let again = stack::allocate(16 * 1024).expect("stack");
    assert_eq!(again, s, "a freed stack is reused");
    assert_eq!(frame_allocator::free_frame_count(), free);
    assert_eq!(stack::cached_stacks(), cached - 1);
    stack::free(again);
    stack::drain_cache();
    assert_eq!(stack::cached_stacks(), 0);
    assert!(table.translate(s.bottom).is_none());
    assert!(frame_allocator::free_frame_count() >= before);
}

/// Fork, thread and mmap storms from `user/` (each run as a fresh process, output
/// on the console), twice. After each round every frame is back: free frames plus
/// the frames the kernel heap holds (its slabs, and the one empty slab per size class
/// it caches, grew during the first round) equal what they were before the first
/// process started; and the second round leaves the heap (almost) where the first
/// did, so nothing piles up per round.
fn user_storm_leaves_no_frame() {
    use kernel::task::init::frames_accounted;
    kernel::process::scheduler::init_scheduler();
    let before = frames_accounted();
    let first = storm_round();
    let second = storm_round();
    println!(
        "  frames free {} -> {} -> {}, heap-held {} -> {} -> {}, user threads left {}",
        before.0,
        first.0,
        second.0,
        before.1,
        first.1,
        second.1,
        kernel::task::user_thread_count()
    );
    assert_eq!(before.0 + before.1, first.0 + first.1, "frames leaked");
    assert_eq!(before.0 + before.1, second.0 + second.1, "frames leaked");
    // The heap's own bookkeeping (e.g. the kernel-stack slot free list) may still grow
    // a little with the peak number of threads; it must not grow per round.
    assert!(second.1 <= first.1 + 4, "the heap keeps growing: a leak");
    kernel_root_has_no_user_pages();
}

/// The kernel's own tables (installed while no user thread runs) map nothing in the
/// user half: programs were loaded into their own address spaces only.
fn kernel_root_has_no_user_pages() {
    use kernel::memory::paging::{PageTableMapper, X86_64PageTable};
    use kernel::memory::VirtAddr;
    let table = X86_64PageTable::active();
    for addr in [
        0x40_0000u64,
        0x5555_5555_4000,
        0x7fff_ffff_e000,
        0x1000_0000,
    ] {
        assert!(
            table.translate(VirtAddr::new(addr)).is_none(),
            "user address {addr:#x} mapped in the kernel's tables"
        );
    }
}

/// Runs the storm programs once; returns the frame accounting afterwards.
fn storm_round() -> (u64, u64) {
    use kernel::task::init::{frames_accounted, run_program, TEST_ENV};
    for name in [
        "cow",
        "threads",
        "mmap",
        "forktree",
        "exec",
        "mtexit",
        "futex",
        "isolation",
        "hog",
        "rs_threads",
        "rs_alloc",
    ] {
        let status = run_program(&[name.as_bytes()], &TEST_ENV, 60_000);
        assert_eq!(status, Some(0), "{name} did not run to a clean exit");
    }
    let saved = interrupts::save_and_disable();
    let (free, held) = frames_accounted();
    interrupts::restore(saved);
    // The scheduler's entries are indexed by thread id: they grow with the ids the
    // round used up, in blocks of 2^k frames (a large heap allocation), and are
    // not counted as held (the total stays exact: free + held is unchanged).
    let table = kernel::process::scheduler::entry_table_bytes();
    let table_frames = match table.div_ceil(4096) {
        0 => 0,
        n if table > kernel::memory::heap::MAX_SMALL => n.next_power_of_two() as u64,
        _ => 0,
    };
    (free + table_frames, held - table_frames)
}

/// `exhaust` (from `user/`, not compared with Linux): a fork bomb until fork says
/// ENOMEM (the kernel keeps a reserve), every child killed and reaped, then a child
/// touching memory until the OOM kill. The kernel survives, and afterwards every
/// frame is back (free + heap-held, as in the storm test).
fn user_exhaustion_leaves_no_frame() {
    use kernel::task::init::{frames_accounted, run_program, TEST_ENV};
    kernel::process::scheduler::init_scheduler();
    let before = frames_accounted();
    let status = run_program(&[b"exhaust"], &TEST_ENV, 60_000);
    let saved = interrupts::save_and_disable();
    let after = frames_accounted();
    interrupts::restore(saved);
    println!(
        "  frames free {} -> {}, heap-held {} -> {}",
        before.0, after.0, before.1, after.1
    );
    assert_eq!(status, Some(0), "exhaust reported a failure");
    assert_eq!(before.0 + before.1, after.0 + after.1, "frames leaked");
}

/// `hog`: a child spinning in ring 3 without a system call does not stop its
/// sleeping parent (timer preemption of user mode), and SIGKILL ends it.
fn user_hog_does_not_stop_others() {
    kernel::process::scheduler::init_scheduler();
    let status = kernel::task::init::run_program(&[b"hog"], &kernel::task::init::TEST_ENV, 60_000);
    assert_eq!(status, Some(0));
}

fn lanes_run_beside_the_table_lock() {
    kernel::selftest::lanes_run_beside_the_table_lock();
}

/// `allocate_numa_local` takes memory from the asking CPU's node while it has any,
/// then from the nearest other node; everything goes back.
fn numa_local_allocation() {
    use kernel::memory::numa::{allocate_numa_local, free_numa_local, NUMA_TOPOLOGY};
    let topology = NUMA_TOPOLOGY.lock().clone();
    let me = topology.node_of_cpu(kernel::arch::cpu::current_cpu_id());
    // Frames cached by the heap (empty slabs it keeps) count as free.
    let free =
        || frame_allocator::free_frame_count() + kernel::memory::heap::heap_stats().slab_frames;
    let free_before = free();
    let mut held = Vec::new();
    let first = allocate_numa_local(4096).expect("a frame");
    assert_eq!(first.node, me, "local node first");
    held.push(first);
    let (order, len) = topology.fallback_order(me);
    if len >= 2 {
        held.reserve(frame_allocator::free_frame_count() as usize);
        let local_left = || frame_allocator::free_frame_count_on(me);
        while local_left() > 0 {
            let a = allocate_numa_local(4096).expect("local frame");
            assert_eq!(a.node, me, "still local while the node has memory");
            held.push(a);
        }
        let spill = allocate_numa_local(4096).expect("remote frame");
        assert_eq!(spill.node, order[1], "then the nearest node");
        println!(
            "  node {} full after {} frames; next frame from node {}",
            me.id,
            held.len(),
            spill.node.id
        );
        held.push(spill);
    }
    for a in held {
        free_numa_local(a).expect("free");
    }
    assert_eq!(free(), free_before);
}

fn numa_local_on_every_cpu() {
    for line in sched::numa_local_on_every_cpu() {
        println!("  numa: {line}");
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let buf = [depth; 64];
    core::hint::black_box(&buf);
    if core::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + buf[3]
}

fn should_fault_stack_overflow_hits_guard() {
    println!("  recursing until the boot stack's guard page");
    core::hint::black_box(recurse(0));
}

fn should_fault_panic_reports() {
    let v: Option<u32> = core::hint::black_box(None);
    v.expect("this panic is the test");
}

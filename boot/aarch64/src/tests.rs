//! In-QEMU tests: what only the real machine can show (the firmware's RAM and NUMA
//! description, page tables in use, interrupts, context switches). Each test is a
//! function that panics on failure; the panic handler reports it and exits QEMU with
//! a failure status.
//!
//! Command line (`-append`): `test --list` prints `test-name: NAME` lines; `test NAME`
//! runs one test; `test` runs all. Each prints `test NAME ... ok`. Words of the form
//! `key=value` after the name tell the tests what QEMU was started with:
//! `ram_mib=256` (`-m`), `nodes=2` and `distance=20` (`-numa`).
//!
//! Tests named `should_fault_*` must end in a reported exception or panic (QEMU's
//! failure status and an `EXCEPTION`/`KERNEL PANIC` line): xtask checks that.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::arch::aarch64::{exceptions, exit, gic, interrupts, phys, stack, thread, timer, Boot};
use kernel::memory::frame_allocator::{self, FRAME_ALLOCATOR};
use kernel::memory::numa::{NumaNode, NUMA_TOPOLOGY};
use kernel::memory::paging::{ArmLpaePageTable, PageFlags};
use kernel::memory::{PhysAddr, VirtAddr, PAGE_SIZE};
use kernel::println;
use kernel::process::{create_process, scheduler, Priority};
use kernel::selftest as sched;

/// A named in-kernel test.
struct Test {
    name: &'static str,
    run: fn(&Boot, &Params),
}

const TESTS: &[Test] = &[
    Test {
        name: "ram_total_matches_qemu",
        run: ram_total_matches_qemu,
    },
    Test {
        name: "numa_from_device_tree",
        run: numa_from_device_tree,
    },
    Test {
        name: "numa_local_on_every_cpu",
        run: numa_local_on_every_cpu,
    },
    Test {
        name: "interrupt_controller_from_device_tree",
        run: interrupt_controller_from_device_tree,
    },
    Test {
        name: "heap_collections",
        run: heap_collections,
    },
    Test {
        name: "frame_alloc_roundtrip",
        run: frame_alloc_roundtrip,
    },
    Test {
        name: "kernel_section_permissions",
        run: kernel_section_permissions,
    },
    Test {
        name: "write_to_rodata_faults",
        run: write_to_rodata_faults,
    },
    Test {
        name: "identity_map_gone_direct_map_live",
        run: identity_map_gone_direct_map_live,
    },
    Test {
        name: "timer_ticks_at_100hz",
        run: timer_ticks_at_100hz,
    },
    Test {
        name: "kernel_stack_has_guard_page",
        run: kernel_stack_has_guard_page,
    },
    Test {
        name: "threads_complete_example",
        run: |_, _| sched::complete_example(),
    },
    Test {
        name: "two_threads_preempt_each_other",
        run: |_, _| sched::two_threads_preempt_each_other(),
    },
    Test {
        name: "high_preempts_normal",
        run: |_, _| sched::high_preempts_normal(),
    },
    Test {
        name: "low_runs_by_aging",
        run: |_, _| sched::low_runs_by_aging(),
    },
    Test {
        name: "block_and_unblock",
        run: |_, _| sched::block_and_unblock(),
    },
    Test {
        name: "timer_sleep",
        run: |_, _| sched::timer_sleep(),
    },
    Test {
        name: "mem_routines_match_bytewise",
        run: mem_routines_match_bytewise,
    },
    Test {
        name: "simd_registers_survive_preemption",
        run: fp::simd_registers_survive_preemption,
    },
    Test {
        name: "lanes_run_beside_the_table_lock",
        run: |_, _| sched::lanes_run_beside_the_table_lock(),
    },
    Test {
        name: "should_fault_write_to_text",
        run: should_fault_write_to_text,
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

/// What QEMU was started with, as the command line says.
#[derive(Default)]
struct Params {
    ram_mib: Option<u64>,
    nodes: Option<usize>,
    distance: Option<u8>,
    gic: Option<u8>,
}

impl Params {
    fn parse(words: &[&str]) -> Self {
        let mut p = Params::default();
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                continue;
            };
            match k {
                "ram_mib" => p.ram_mib = v.parse().ok(),
                "nodes" => p.nodes = v.parse().ok(),
                "distance" => p.distance = v.parse().ok(),
                "gic" => p.gic = v.parse().ok(),
                _ => {}
            }
        }
        p
    }
}

/// Runs what the command line after `test` asks for, then exits QEMU.
pub fn main(boot: &Boot, args: &str) -> ! {
    let words: Vec<&str> = args.split_whitespace().collect();
    let name = words.first().copied().filter(|w| !w.contains('='));
    if name == Some("--list") {
        TESTS.iter().for_each(|t| println!("test-name: {}", t.name));
        exit::exit(0);
    }
    let params = Params::parse(&words);
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|t| name.is_none_or(|n| t.name == n))
        .collect();
    if selected.is_empty() {
        println!("no test named {name:?}");
        exit::exit(1);
    }
    for t in selected {
        println!("test {} ...", t.name);
        (t.run)(boot, &params);
        println!("test {} ... ok", t.name);
    }
    exit::exit(0)
}

fn ram_total_matches_qemu(boot: &Boot, p: &Params) {
    let ram = boot.machine.memory_total();
    println!("  device tree: {} MiB of RAM", ram >> 20);
    if let Some(mib) = p.ram_mib {
        assert_eq!(ram, mib << 20, "RAM in the device tree differs from -m");
    }
    let (dtb, image) = (boot.dtb.1, 4 << 20);
    assert!(
        boot.memory.usable_bytes + dtb + image >= ram,
        "too much RAM held back"
    );
    assert!(boot.memory.usable_bytes < ram);
    let managed = boot.memory.managed_frames * PAGE_SIZE;
    let metadata = boot.memory.usable_bytes / PAGE_SIZE + 16 * PAGE_SIZE;
    assert!(managed <= boot.memory.usable_bytes && managed + metadata >= boot.memory.usable_bytes);
    assert_eq!(FRAME_ALLOCATOR.total_frames(), boot.memory.managed_frames);
}

/// Each CPU's frames come from its node (a kernel thread pinned to each checks the
/// physical ranges): on the NUMA machine, CPU i is in node i.
fn numa_local_on_every_cpu(_boot: &Boot, p: &Params) {
    let lines = sched::numa_local_on_every_cpu();
    for line in &lines {
        println!("  numa: {line}");
    }
    if let Some(nodes) = p.nodes.filter(|&n| n > 1) {
        for (i, line) in lines.iter().enumerate().take(nodes) {
            assert!(
                line.starts_with(&alloc::format!("cpu {i} node {i}:")),
                "{line}"
            );
        }
    }
}

fn numa_from_device_tree(boot: &Boot, p: &Params) {
    let topo = NUMA_TOPOLOGY.lock();
    let nodes: Vec<NumaNode> = topo.nodes().collect();
    println!(
        "  {} node(s), {} CPU(s)",
        nodes.len(),
        boot.machine.cpus().len()
    );
    assert_eq!(nodes.len(), p.nodes.unwrap_or(1));
    let ram = boot.machine.memory_total();
    for &n in &nodes {
        let mem: u64 = topo.memory_of(n).map(|r| r.size).sum();
        println!("  node {}: {} MiB", n.id, mem >> 20);
        assert_eq!(mem, ram / nodes.len() as u64, "memory of node {}", n.id);
        for &m in &nodes {
            let d = topo.distance(n, m).unwrap_or(0);
            let want = if n == m { 10 } else { p.distance.unwrap_or(20) };
            println!("  distance {} -> {}: {}", n.id, m.id, d);
            assert_eq!(d, want);
        }
    }
    for (i, cpu) in boot.machine.cpus().iter().enumerate() {
        let want = if nodes.len() > 1 { i as u32 } else { 0 };
        assert_eq!(
            topo.node_of_cpu(i as u32).id,
            want,
            "node of cpu {} ({:?})",
            i,
            cpu
        );
    }
    drop(topo);
    for &n in &nodes {
        assert!(
            FRAME_ALLOCATOR.free_frames_on(n) > 0,
            "node {} has no free frames",
            n.id
        );
    }
}

fn interrupt_controller_from_device_tree(boot: &Boot, p: &Params) {
    let want = p.gic.unwrap_or(2);
    println!("  {:?}, timer {:?}", boot.machine.gic, boot.machine.timer);
    assert_eq!(gic::version(), want);
    let v3 = matches!(
        boot.machine.gic,
        Some(kernel::firmware::devicetree::Gic::V3 { .. })
    );
    assert_eq!(v3, want == 3);
    assert_eq!(timer::irq_id(), 27, "virtual timer PPI 11");
    for (base, _) in gic::mmio_ranges() {
        let f = flags_of(boot, phys::DIRECT_MAP_BASE + base);
        assert!(
            f.contains(PageFlags::NO_CACHE | PageFlags::NO_EXECUTE),
            "{base:#x}: {f:?}"
        );
    }
}

/// The kernel's memcpy, memmove and memset (`arch::aarch64::mem`) against a model
/// that moves one byte at a time (through `black_box`, so that it is not turned
/// into a call of what it checks): every length below 300 at mixed alignments of
/// both ends, and moves that overlap in both directions.
fn mem_routines_match_bytewise(_: &Boot, _: &Params) {
    use core::hint::black_box;
    const N: usize = 1024;
    let fresh = || (0..N).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>();
    let model_move = |b: &mut [u8], src: usize, dst: usize, len: usize| {
        let tmp: Vec<u8> = (0..len).map(|i| black_box(b[src + i])).collect();
        (0..len).for_each(|i| b[dst + i] = black_box(tmp[i]));
    };
    for len in 0..300 {
        for (src, dst) in [(0, 0), (1, 0), (0, 3), (5, 9), (8, 8), (15, 1), (16, 48)] {
            let (src, dst) = (src, 512 + dst);
            let (mut got, mut want) = (fresh(), fresh());
            // SAFETY: both ranges lie in `got` and do not overlap.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    got.as_ptr().add(src),
                    got.as_mut_ptr().add(dst),
                    black_box(len),
                )
            };
            model_move(&mut want, src, dst, len);
            assert!(got == want, "memcpy len {len} src {src} dst {dst}");
            let (mut got, mut want) = (fresh(), fresh());
            // SAFETY: the range lies in `got`.
            unsafe { core::ptr::write_bytes(got.as_mut_ptr().add(dst), 0xa5, black_box(len)) };
            (0..len).for_each(|i| want[dst + i] = black_box(0xa5));
            assert!(got == want, "memset len {len} at {dst}");
        }
        for shift in [-33isize, -16, -3, -1, 1, 2, 16, 17, 40] {
            let src = 400;
            let dst = (src as isize + shift) as usize;
            let (mut got, mut want) = (fresh(), fresh());
            // SAFETY: both ranges lie in `got` (they may overlap: `copy` is memmove).
            unsafe {
                core::ptr::copy(
                    got.as_ptr().add(src),
                    got.as_mut_ptr().add(dst),
                    black_box(len),
                )
            };
            model_move(&mut want, src, dst, len);
            assert!(got == want, "memmove len {len} shift {shift}");
        }
    }
}

fn heap_collections(_: &Boot, _: &Params) {
    let mut v: Vec<u64> = (0..10_000).collect();
    v.retain(|x| x % 3 == 0);
    assert_eq!(v.len(), 3334);
    let mut m = BTreeMap::new();
    for i in 0..1000u32 {
        m.insert(i, alloc::format!("value {i}"));
    }
    assert_eq!(m.get(&999).map(|s| s.as_str()), Some("value 999"));
}

fn frame_alloc_roundtrip(_: &Boot, _: &Params) {
    let mut frames = Vec::with_capacity(64);
    let before = frame_allocator::free_frame_count();
    frames.extend((0..64).map(|_| frame_allocator::allocate_frame().expect("frame")));
    assert_eq!(frame_allocator::free_frame_count(), before - 64);
    for f in frames {
        kernel::memory::phys::zero_frame(f).expect("frame in the direct map");
        frame_allocator::deallocate_frame(f).expect("free");
    }
    assert_eq!(frame_allocator::free_frame_count(), before);
}

fn kernel_table(boot: &Boot) -> ArmLpaePageTable {
    ArmLpaePageTable::from_root(boot.memory.root, Default::default())
}

fn flags_of(boot: &Boot, addr: u64) -> PageFlags {
    let t = kernel_table(boot);
    match t.lookup(VirtAddr::new(addr)) {
        Ok(m) => m.flags,
        Err(e) => panic!("{addr:#x} is not mapped: {e:?}"),
    }
}

fn kernel_section_permissions(boot: &Boot, _: &Params) {
    let l = crate::bare::layout();
    let text = flags_of(boot, l.text.start.as_u64());
    let rodata = flags_of(boot, l.rodata.start.as_u64());
    let data = flags_of(boot, l.data.start.as_u64());
    println!("  text {text:?}\n  rodata {rodata:?}\n  data {data:?}");
    assert!(!text.contains(PageFlags::WRITABLE) && !text.contains(PageFlags::NO_EXECUTE));
    assert!(!rodata.contains(PageFlags::WRITABLE) && rodata.contains(PageFlags::NO_EXECUTE));
    assert!(data.contains(PageFlags::WRITABLE) && data.contains(PageFlags::NO_EXECUTE));
    for f in [text, rodata, data] {
        assert!(!f.contains(PageFlags::USER) && !f.contains(PageFlags::NO_CACHE));
    }
    let guard = l.guards[0].as_u64();
    assert!(
        kernel_table(boot).lookup(VirtAddr::new(guard)).is_err(),
        "guard page mapped"
    );
    let uart = flags_of(boot, phys::DIRECT_MAP_BASE + 0x0900_0000);
    assert!(
        uart.contains(PageFlags::NO_CACHE | PageFlags::NO_EXECUTE),
        "UART: {uart:?}"
    );
    let ram = flags_of(boot, phys::DIRECT_MAP_BASE + boot.machine.memory()[0].start);
    assert!(!ram.contains(PageFlags::NO_CACHE) && ram.contains(PageFlags::NO_EXECUTE));
}

/// Data-fault status codes (ESR ISS bits 5:0) of permission faults, levels 0-3.
fn is_permission_fault(esr: u64) -> bool {
    (esr >> 26) == 0x25 && (esr & 0x3c) == 0x0c
}

/// ... and of translation faults.
fn is_translation_fault(esr: u64) -> bool {
    (esr >> 26) == 0x25 && (esr & 0x3c) == 0x04
}

static RODATA_BYTE: u8 = 0x5a;
static mut DATA_BYTE: u8 = 0;

fn write_to_rodata_faults(_: &Boot, _: &Params) {
    let ro = core::ptr::addr_of!(RODATA_BYTE) as *mut u8;
    let fault = exceptions::probe_write(ro, 1).expect_err("write to rodata succeeded");
    println!("  write to rodata {ro:p}: ESR={:#x}", fault.esr);
    assert!(is_permission_fault(fault.esr));
    assert_eq!(RODATA_BYTE, 0x5a);
    let rw = core::ptr::addr_of_mut!(DATA_BYTE);
    assert_eq!(exceptions::probe_write(rw, 7), Ok(()));
    // SAFETY: DATA_BYTE is only touched by this test, on one CPU.
    assert_eq!(unsafe { rw.read_volatile() }, 7);
}

fn identity_map_gone_direct_map_live(boot: &Boot, _: &Params) {
    let l = crate::bare::layout();
    let identity = l.phys.start.0 + 0x3000;
    let fault = exceptions::probe_write(identity as *mut u8, 0).expect_err("identity map live");
    println!("  write to identity {identity:#x}: ESR={:#x}", fault.esr);
    assert!(is_translation_fault(fault.esr));
    assert_eq!(phys::window_base(), phys::DIRECT_MAP_BASE);
    let f = frame_allocator::allocate_frame().expect("frame");
    kernel::memory::phys::write_u64(f.start_address, 0x1234).expect("write");
    let va = phys::DIRECT_MAP_BASE + f.start_address.0;
    // SAFETY: `va` is the direct-map address of the frame just allocated.
    assert_eq!(unsafe { (va as *const u64).read_volatile() }, 0x1234);
    frame_allocator::deallocate_frame(f).expect("free");
    let last = boot.memory.ram_end - PAGE_SIZE;
    let t = kernel_table(boot);
    assert_eq!(
        kernel::memory::paging::PageTableMapper::translate(
            &t,
            VirtAddr::new(phys::DIRECT_MAP_BASE + last)
        ),
        Some(PhysAddr(last))
    );
}

fn timer_ticks_at_100hz(_: &Boot, _: &Params) {
    interrupts::init_timer();
    let freq = timer::frequency();
    let (t0, c0) = (timer::ticks(), timer::counter());
    while timer::counter() - c0 < freq / 2 {
        interrupts::wait_for_interrupt();
    }
    let (ticks, elapsed) = (timer::ticks() - t0, timer::counter() - c0);
    let hz = ticks * freq / elapsed;
    println!("  {ticks} ticks in {} ms: {hz} Hz", elapsed * 1000 / freq);
    assert!((90..=110).contains(&hz), "tick rate {hz} Hz");
}

fn kernel_stack_has_guard_page(boot: &Boot, _: &Params) {
    let s = stack::allocate(stack::DEFAULT_STACK_SIZE).expect("stack");
    let t = kernel_table(boot);
    let below = s.bottom.as_u64() - PAGE_SIZE;
    assert!(
        t.lookup(VirtAddr::new(below)).is_err(),
        "guard page is mapped"
    );
    let f = flags_of(boot, s.bottom.as_u64());
    assert!(f.contains(PageFlags::WRITABLE | PageFlags::NO_EXECUTE));
    let fault = exceptions::probe_write(below as *mut u8, 0).expect_err("guard writable");
    assert!(is_translation_fault(fault.esr));
    stack::free(s);
    // Kept mapped for reuse: the next stack of that size is the same one.
    let cached = stack::cached_stacks();
    assert!(cached >= 1);
    let again = stack::allocate(stack::DEFAULT_STACK_SIZE).expect("stack");
    assert_eq!(again, s, "a freed stack is reused");
    assert_eq!(stack::cached_stacks(), cached - 1);
    stack::free(again);
    stack::drain_cache();
    assert_eq!(stack::cached_stacks(), 0);
    assert!(t.lookup(s.bottom).is_err(), "freed stack still mapped");
}

static OVERFLOW_DEPTH: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let buf = [depth; 64];
    OVERFLOW_DEPTH.store(depth, Ordering::Relaxed);
    // black_box keeps the frame (and the recursion) from being optimised away.
    core::hint::black_box(&buf);
    recurse(depth + 1) + core::hint::black_box(buf[3])
}

/// A kernel thread recursing without end hits its guard page; the fault is reported
/// (on the emergency stack) instead of corrupting memory.
fn should_fault_stack_overflow_hits_guard(_: &Boot, _: &Params) {
    scheduler::init_scheduler();
    let frame = frame_allocator::allocate_frame().expect("frame");
    let pid = create_process("overflow".into(), frame).expect("process");
    thread::spawn(pid, Priority::High, || {
        recurse(0);
    })
    .expect("spawn");
    interrupts::init_timer();
    thread::idle_until(|| false, 5_000);
    println!(
        "no overflow after {} calls",
        OVERFLOW_DEPTH.load(Ordering::Relaxed)
    );
}

fn should_fault_write_to_text(_: &Boot, _: &Params) {
    let text = should_fault_write_to_text as *const () as *mut u32;
    // SAFETY: none: this write must fault (text is read-only), which the exception
    // handler reports before exiting QEMU with failure.
    unsafe { text.write_volatile(0) };
    println!("write to text did not fault");
}

fn should_fault_panic_reports(_: &Boot, _: &Params) {
    let v: Vec<u32> = Vec::new();
    let i = v.len() + 3;
    panic!("deliberate panic, index {i}");
}

mod fp {
    //! SIMD/FP registers survive preemption: each thread fills v0..v31 with its own
    //! pattern, spins across several timer ticks (while the other thread runs and
    //! fills them with its pattern), then checks every register.
    use super::{Boot, Params};
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
    use kernel::arch::aarch64::{interrupts, thread, timer};
    use kernel::memory::frame_allocator;
    use kernel::println;
    use kernel::process::{create_process, scheduler, Priority};

    static MISMATCH: AtomicU64 = AtomicU64::new(0);
    static ROUNDS: AtomicU64 = AtomicU64::new(0);
    static DONE: AtomicU32 = AtomicU32::new(0);

    /// Fills v0..v31 with `pattern` in both lanes, spins `spins` iterations, and
    /// returns the OR of (register ^ pattern) over all lanes (0 = all intact).
    fn hold_pattern(pattern: u64, spins: u64) -> u64 {
        let bad: u64;
        // SAFETY: only registers are touched; every vector register is declared
        // clobbered.
        unsafe {
            core::arch::asm!(
            "dup v0.2d, {p}",
            "dup v1.2d, {p}",
            "dup v2.2d, {p}",
            "dup v3.2d, {p}",
            "dup v4.2d, {p}",
            "dup v5.2d, {p}",
            "dup v6.2d, {p}",
            "dup v7.2d, {p}",
            "dup v8.2d, {p}",
            "dup v9.2d, {p}",
            "dup v10.2d, {p}",
            "dup v11.2d, {p}",
            "dup v12.2d, {p}",
            "dup v13.2d, {p}",
            "dup v14.2d, {p}",
            "dup v15.2d, {p}",
            "dup v16.2d, {p}",
            "dup v17.2d, {p}",
            "dup v18.2d, {p}",
            "dup v19.2d, {p}",
            "dup v20.2d, {p}",
            "dup v21.2d, {p}",
            "dup v22.2d, {p}",
            "dup v23.2d, {p}",
            "dup v24.2d, {p}",
            "dup v25.2d, {p}",
            "dup v26.2d, {p}",
            "dup v27.2d, {p}",
            "dup v28.2d, {p}",
            "dup v29.2d, {p}",
            "dup v30.2d, {p}",
            "dup v31.2d, {p}",
            "1:",
            "subs {n}, {n}, #1",
            "b.ne 1b",
            "mov {bad}, xzr",
            "umov {t}, v0.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v0.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v1.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v1.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v2.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v2.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v3.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v3.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v4.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v4.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v5.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v5.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v6.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v6.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v7.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v7.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v8.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v8.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v9.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v9.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v10.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v10.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v11.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v11.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v12.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v12.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v13.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v13.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v14.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v14.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v15.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v15.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v16.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v16.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v17.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v17.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v18.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v18.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v19.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v19.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v20.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v20.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v21.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v21.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v22.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v22.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v23.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v23.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v24.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v24.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v25.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v25.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v26.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v26.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v27.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v27.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v28.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v28.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v29.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v29.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v30.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v30.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            "umov {t}, v31.d[0]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}", "umov {t}, v31.d[1]", "eor {t}, {t}, {p}", "orr {bad}, {bad}, {t}",
            p = in(reg) pattern,
            n = inout(reg) spins => _,
            t = out(reg) _,
            bad = out(reg) bad,
            out("v0") _,
            out("v1") _,
            out("v2") _,
            out("v3") _,
            out("v4") _,
            out("v5") _,
            out("v6") _,
            out("v7") _,
            out("v8") _,
            out("v9") _,
            out("v10") _,
            out("v11") _,
            out("v12") _,
            out("v13") _,
            out("v14") _,
            out("v15") _,
            out("v16") _,
            out("v17") _,
            out("v18") _,
            out("v19") _,
            out("v20") _,
            out("v21") _,
            out("v22") _,
            out("v23") _,
            out("v24") _,
            out("v25") _,
            out("v26") _,
            out("v27") _,
            out("v28") _,
            out("v29") _,
            out("v30") _,
            out("v31") _,
            options(nostack, nomem)
            )
        };
        bad
    }

    fn worker(pattern: u64) {
        let t0 = timer::ticks();
        while timer::ticks() < t0 + 30 {
            MISMATCH.fetch_or(hold_pattern(pattern, 2_000_000), SeqCst);
            ROUNDS.fetch_add(1, SeqCst);
        }
        DONE.fetch_add(1, SeqCst);
    }

    pub fn simd_registers_survive_preemption(_: &Boot, _: &Params) {
        scheduler::init_scheduler();
        let frame = frame_allocator::allocate_frame().expect("frame");
        let pid = create_process("fp".into(), frame).expect("process");
        thread::spawn(pid, Priority::Normal, || worker(0x1111_2222_3333_4444)).expect("a");
        thread::spawn(pid, Priority::Normal, || worker(0x5555_6666_7777_8888)).expect("b");
        interrupts::init_timer();
        assert!(
            thread::idle_until(|| DONE.load(SeqCst) == 2, 10_000),
            "threads hung"
        );
        interrupts::disable();
        println!(
            "  {} rounds, mismatch bits {:#x}",
            ROUNDS.load(SeqCst),
            MISMATCH.load(SeqCst)
        );
        assert_eq!(
            MISMATCH.load(SeqCst),
            0,
            "a vector register changed under a thread"
        );
    }
}

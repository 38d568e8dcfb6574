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
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use kernel::arch::aarch64::{exceptions, exit, interrupts, irq, phys, thread, timer, Boot};
use kernel::memory::frame_allocator::{self, FRAME_ALLOCATOR};
use kernel::memory::numa::{NumaNode, NUMA_TOPOLOGY};
use kernel::memory::paging::{ArmLpaePageTable, PageFlags};
use kernel::memory::{PhysAddr, VirtAddr, PAGE_SIZE};
use kernel::println;

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
        name: "threads_preempt_each_other",
        run: threads_preempt_each_other,
    },
    Test {
        name: "should_fault_write_to_text",
        run: should_fault_write_to_text,
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
    assert_eq!(
        FRAME_ALLOCATOR.lock().total_frames(),
        boot.memory.managed_frames
    );
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
    let fa = FRAME_ALLOCATOR.lock();
    for &n in &nodes {
        assert!(fa.free_frames_on(n) > 0, "node {} has no free frames", n.id);
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

// ---- two threads preempted by the timer ----

static mut CONTEXTS: [thread::Context; 3] = [thread::Context {
    x19_x28: [0; 10],
    fp: 0,
    lr: 0,
    sp: 0,
}; 3];
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static COUNTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static SWITCHES: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicBool = AtomicBool::new(false);

/// Switches from context `from` to `to` (indices into CONTEXTS).
fn switch(from: usize, to: usize) {
    CURRENT.store(to, Ordering::SeqCst);
    // SAFETY: interrupts are masked (tick hook or the test before it unmasks them);
    // `from` is the running thread's slot, `to` a thread made by `new_thread` or
    // saved by an earlier switch, each with its own live stack.
    unsafe {
        let ctx = core::ptr::addr_of_mut!(CONTEXTS) as *mut thread::Context;
        thread::switch(ctx.add(from), ctx.add(to));
    }
}

/// Round-robin between threads 1 and 2 on each tick; back to 0 when done.
fn round_robin_tick() {
    let cur = CURRENT.load(Ordering::SeqCst);
    if cur == 0 {
        return;
    }
    if DONE.load(Ordering::SeqCst) {
        switch(cur, 0);
        return;
    }
    SWITCHES.fetch_add(1, Ordering::SeqCst);
    switch(cur, 3 - cur);
}

/// Spins forever, counting; never yields: only the timer takes the CPU away.
extern "C" fn busy_worker(me: usize) -> ! {
    loop {
        COUNTS[me].fetch_add(1, Ordering::Relaxed);
        let both = COUNTS[1].load(Ordering::Relaxed) > 0 && COUNTS[2].load(Ordering::Relaxed) > 0;
        if both && SWITCHES.load(Ordering::Relaxed) >= 10 {
            DONE.store(true, Ordering::SeqCst);
        }
    }
}

fn threads_preempt_each_other(_: &Boot, _: &Params) {
    const STACK_ORDER: u8 = 2;
    for i in 1..3 {
        let stack = frame_allocator::allocate_frames(STACK_ORDER).expect("stack");
        let top = phys::DIRECT_MAP_BASE + stack.start_address.0 + (PAGE_SIZE << STACK_ORDER);
        let ctx = thread::Context::new_thread(busy_worker, i, top);
        // SAFETY: no thread runs yet; the slots are written before any switch.
        unsafe { (*core::ptr::addr_of_mut!(CONTEXTS))[i] = ctx };
    }
    irq::set_tick_hook(Some(round_robin_tick));
    interrupts::disable();
    if interrupts::timer_hz() == 0 {
        timer::start(kernel::process::scheduler::TICK_HZ);
    }
    let t0 = timer::ticks();
    switch(0, 1);
    irq::set_tick_hook(None);
    interrupts::enable();
    let (a, b) = (
        COUNTS[1].load(Ordering::SeqCst),
        COUNTS[2].load(Ordering::SeqCst),
    );
    let switches = SWITCHES.load(Ordering::SeqCst);
    println!(
        "  {switches} preemptions in {} ticks; counts {a} / {b}",
        timer::ticks() - t0
    );
    assert!(a > 0 && b > 0 && switches >= 10);
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

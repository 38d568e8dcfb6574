//! In-kernel tests of scheduling with real threads, real timer interrupts and real
//! context switches, and of user programs beside the kernel's locks, shared by the x86_64 and aarch64 test kernels (`boot/*/src/tests.rs`
//! list them by name). Each test panics on failure; the boot crate's panic handler
//! reports it and exits QEMU with the failure status.

use crate::arch::{interrupts, thread, timer};
use crate::memory::frame_allocator;
use crate::println;
use crate::process::{create_process, scheduler, Pid, Priority, ThreadState};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};

/// Bound on any wait in these tests (guest clock).
const LIMIT_MS: u64 = 5_000;

fn new_process(name: &str) -> Pid {
    scheduler::init_scheduler();
    let frame = frame_allocator::allocate_frame().expect("frame");
    create_process(name.into(), frame).expect("process")
}

fn spin_until(flag: &AtomicBool) -> bool {
    let deadline = timer::uptime_us() + LIMIT_MS * 1000;
    while !flag.load(SeqCst) {
        if timer::uptime_us() > deadline {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

fn run_until(count: &AtomicU32, n: u32) {
    interrupts::init_timer();
    assert!(
        thread::idle_until(|| count.load(SeqCst) >= n, LIMIT_MS * 2),
        "threads did not finish"
    );
    interrupts::disable();
}

static RAN: AtomicU32 = AtomicU32::new(0);
static ORDER: AtomicU64 = AtomicU64::new(0);

fn record(id: u64) {
    ORDER
        .fetch_update(SeqCst, SeqCst, |o| Some(o * 10 + id))
        .ok();
    RAN.fetch_add(1, SeqCst);
}

/// The seed's Complete Example with threads that execute: High is picked first
/// and runs before Normal.
pub fn complete_example() {
    // Both on this CPU, so the policy decides what runs first: with more CPUs an
    // idle one could otherwise take the High thread before this CPU picks.
    let here = crate::smp::this_index();
    let pid1 = new_process("process_1");
    let tid1 = thread::spawn_on(here, pid1, Priority::High, || record(1)).expect("tid1");
    let p2_frame = frame_allocator::allocate_frame().expect("f");
    let pid2 = create_process("process_2".into(), p2_frame).expect("p2");
    let tid2 = thread::spawn_on(here, pid2, Priority::Normal, || record(2)).expect("tid2");
    assert_ne!(tid1, tid2);
    let current = scheduler::schedule();
    assert_eq!(current, Some(tid1));
    run_until(&RAN, 2);
    assert_eq!(ORDER.load(SeqCst), 12, "High must run before Normal");
}

static COUNTS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static INTERLEAVINGS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static DONE_PAIR: AtomicU32 = AtomicU32::new(0);

/// Counts without ever yielding; notes each time the other thread made progress
/// meanwhile (it can only have, if the timer preempted this one).
fn spinner(me: usize) {
    let other = 1 - me;
    let deadline = timer::uptime_us() + LIMIT_MS * 1000;
    let mut seen = COUNTS[other].load(SeqCst);
    while INTERLEAVINGS.iter().any(|i| i.load(SeqCst) < 5) && timer::uptime_us() < deadline {
        COUNTS[me].fetch_add(1, SeqCst);
        let now = COUNTS[other].load(SeqCst);
        if now != seen {
            seen = now;
            INTERLEAVINGS[me].fetch_add(1, SeqCst);
        }
    }
    DONE_PAIR.fetch_add(1, SeqCst);
}

/// Two Normal threads that never yield both make progress, each resumed several
/// times after the other ran: the timer preempts them.
pub fn two_threads_preempt_each_other() {
    let pid = new_process("pair");
    let t0 = timer::ticks();
    thread::spawn(pid, Priority::Normal, || spinner(0)).expect("a");
    thread::spawn(pid, Priority::Normal, || spinner(1)).expect("b");
    run_until(&DONE_PAIR, 2);
    let i = [INTERLEAVINGS[0].load(SeqCst), INTERLEAVINGS[1].load(SeqCst)];
    println!(
        "  {} ticks; counts {} / {}; each resumed after the other {:?} times",
        timer::ticks() - t0,
        COUNTS[0].load(SeqCst),
        COUNTS[1].load(SeqCst),
        i
    );
    assert!(i[0] >= 5 && i[1] >= 5, "threads were not preempted: {i:?}");
}

static NORMAL_PROGRESS: AtomicU64 = AtomicU64::new(0);
static HIGH_SAW: AtomicU64 = AtomicU64::new(0);
static HIGH_DONE: AtomicBool = AtomicBool::new(false);
static DONE2: AtomicU32 = AtomicU32::new(0);

fn normal_spinner() {
    // Never yields: only preemption lets the High thread run.
    let deadline = timer::uptime_us() + LIMIT_MS * 1000;
    while !HIGH_DONE.load(SeqCst) && timer::uptime_us() < deadline {
        NORMAL_PROGRESS.fetch_add(1, SeqCst);
    }
    DONE2.fetch_add(1, SeqCst);
}

fn high_sleeper() {
    thread::sleep_ticks(5);
    HIGH_SAW.store(NORMAL_PROGRESS.load(SeqCst), SeqCst);
    HIGH_DONE.store(true, SeqCst);
    DONE2.fetch_add(1, SeqCst);
}

/// A High thread that wakes from sleep preempts a Normal thread spinning without
/// ever yielding.
pub fn high_preempts_normal() {
    let pid = new_process("preempt");
    thread::spawn(pid, Priority::High, high_sleeper).expect("high");
    thread::spawn(pid, Priority::Normal, normal_spinner).expect("normal");
    run_until(&DONE2, 2);
    assert!(HIGH_DONE.load(SeqCst), "the High thread never ran");
    assert!(
        HIGH_SAW.load(SeqCst) > 0,
        "the Normal thread had not run before the High woke"
    );
    println!(
        "  High preempted Normal after {} Normal iterations",
        HIGH_SAW.load(SeqCst)
    );
}

static LOW_RAN: AtomicBool = AtomicBool::new(false);
static LOW_AT_TICK: AtomicU64 = AtomicU64::new(0);
static HOG_OK: AtomicBool = AtomicBool::new(false);
static DONE3: AtomicU32 = AtomicU32::new(0);

/// A Normal hog that spins until the Low thread has run.
pub fn low_runs_by_aging() {
    let pid = new_process("aging");
    thread::spawn(pid, Priority::Normal, || {
        HOG_OK.store(spin_until(&LOW_RAN), SeqCst);
        DONE3.fetch_add(1, SeqCst);
    })
    .expect("hog");
    thread::spawn(pid, Priority::Low, || {
        LOW_AT_TICK.store(timer::ticks(), SeqCst);
        LOW_RAN.store(true, SeqCst);
        DONE3.fetch_add(1, SeqCst);
    })
    .expect("low");
    run_until(&DONE3, 2);
    assert!(
        HOG_OK.load(SeqCst),
        "the Low thread never ran while a Normal thread hogged the CPU"
    );
    println!(
        "  Low thread ran at tick {} despite the Normal hog",
        LOW_AT_TICK.load(SeqCst)
    );
}

static BLOCKED_TID: AtomicU32 = AtomicU32::new(0);
static STEP: AtomicU32 = AtomicU32::new(0);
static DONE4: AtomicU32 = AtomicU32::new(0);

/// A thread blocks; it stays blocked (while others run) until unblocked.
pub fn block_and_unblock() {
    let pid = new_process("block");
    let waiter = thread::spawn(pid, Priority::Normal, || {
        STEP.store(1, SeqCst);
        thread::block_current();
        assert_eq!(STEP.load(SeqCst), 2, "woke up before unblock");
        STEP.store(3, SeqCst);
        DONE4.fetch_add(1, SeqCst);
    })
    .expect("waiter");
    BLOCKED_TID.store(waiter.0, SeqCst);
    thread::spawn(pid, Priority::Normal, || {
        let tid = crate::process::Tid(BLOCKED_TID.load(SeqCst));
        while STEP.load(SeqCst) != 1 {
            thread::yield_now();
        }
        for _ in 0..5 {
            thread::sleep_ticks(1);
            assert_eq!(crate::process::thread_state(tid), Ok(ThreadState::Blocked));
        }
        STEP.store(2, SeqCst);
        thread::unblock(tid).expect("unblock");
        DONE4.fetch_add(1, SeqCst);
    })
    .expect("waker");
    run_until(&DONE4, 2);
    assert_eq!(STEP.load(SeqCst), 3);
}

static SLEPT_MS: AtomicU64 = AtomicU64::new(0);
static SLEPT_TICKS: AtomicU64 = AtomicU64::new(0);
static DONE5: AtomicU32 = AtomicU32::new(0);

/// sleep_ticks(10) sleeps about 100 ms of guest time, and others run meanwhile.
pub fn timer_sleep() {
    let pid = new_process("sleep");
    thread::spawn(pid, Priority::High, || {
        // Ticks of the scheduler's clock, which sleeps are counted in: it follows
        // the guest's time, whichever CPU's timer fires. (The boot CPU's own count
        // of interrupts missed some when four vCPUs shared two host cores.)
        let (t0, k0) = (timer::uptime_us(), crate::process::scheduler::now());
        thread::sleep_ticks(10);
        SLEPT_MS.store((timer::uptime_us() - t0) / 1000, SeqCst);
        SLEPT_TICKS.store(crate::process::scheduler::now() - k0, SeqCst);
        DONE5.fetch_add(1, SeqCst);
    })
    .expect("sleeper");
    thread::spawn(pid, Priority::Low, || {
        RAN.fetch_add(100, SeqCst);
        DONE5.fetch_add(1, SeqCst);
    })
    .expect("other");
    run_until(&DONE5, 2);
    let (ms, ticks) = (SLEPT_MS.load(SeqCst), SLEPT_TICKS.load(SeqCst));
    println!("  sleep_ticks(10) took {ms} ms, {ticks} ticks");
    // Never fewer than asked; a few more when the sleeper runs late (as the time).
    assert!((10..=15).contains(&ticks), "slept {ticks} ticks");
    assert!((80..=150).contains(&ms), "slept {ms} ms");
    assert!(
        RAN.load(SeqCst) >= 100,
        "the other thread did not run during the sleep"
    );
}

/// Waits for the next interrupt (the timer's at the latest).
fn wait_for_interrupt() {
    #[cfg(target_arch = "x86_64")]
    crate::arch::cpu::halt();
    #[cfg(target_arch = "aarch64")]
    crate::arch::interrupts::wait_for_interrupt();
}

/// A debug session of the console terminal (kernel command line `ttyecho`): turns
/// the UART receive interrupt on and prints what each read of the console `Tty`
/// returns, so typed or piped serial input shows the line discipline at work. The
/// line `raw` switches to non-canonical mode without echo (each byte read is
/// printed; `q` switches back); `quit`, an EOF (^D at the start of a line) or 60 s of
/// guest time end it. Signal characters are reported as requests for group 0.
pub fn tty_echo() {
    use crate::tty::{self, termios, ReadResult, SetWhen, Termios};
    tty::init_console().expect("console buffers");
    tty::set_signal_hook(|pgid, signal| {
        println!("tty: signal {} for group {pgid}", signal.number())
    });
    interrupts::init_timer();
    println!("tty: ready (lines are echoed back; raw, quit, ^D)");
    let console = tty::console().expect("console made above");
    let deadline = timer::uptime_us() + 60_000_000;
    let mut buf = [0u8; 256];
    while timer::uptime_us() < deadline {
        let read = console.lock().read(&mut buf);
        let n = match read {
            ReadResult::WouldBlock => {
                wait_for_interrupt();
                continue;
            }
            ReadResult::Eof => {
                println!("tty: EOF");
                return;
            }
            ReadResult::Data(n) => n,
        };
        let data = &buf[..n];
        let canonical = console.lock().termios().l(termios::lflag::ICANON);
        if !canonical {
            println!("tty: raw byte {:#04x}", data[0]);
            if data.contains(&b'q') {
                console.lock().set_termios(Termios::default(), SetWhen::Now);
                println!("tty: canonical again");
            }
            continue;
        }
        println!(
            "tty: line {:?}",
            core::str::from_utf8(data).unwrap_or("<not utf-8>")
        );
        match data {
            b"quit\n" => return,
            b"raw\n" => {
                let mut t = Termios::default();
                t.c_lflag &= !(termios::lflag::ICANON | termios::lflag::ECHO);
                console.lock().set_termios(t, SetWhen::Now);
                println!("tty: raw mode");
            }
            _ => {}
        }
    }
    println!("tty: timed out");
}

/// Frames allocated on each CPU, and how many came from that CPU's node.
static NUMA_TAKEN: [AtomicU32; crate::smp::MAX_CPUS] =
    [const { AtomicU32::new(0) }; crate::smp::MAX_CPUS];
static NUMA_LOCAL: [AtomicU32; crate::smp::MAX_CPUS] =
    [const { AtomicU32::new(0) }; crate::smp::MAX_CPUS];
/// Frames in each CPU's magazine after it gave its frames back, and whether the
/// magazine's node was the CPU's.
static NUMA_PARKED: [AtomicU32; crate::smp::MAX_CPUS] =
    [const { AtomicU32::new(0) }; crate::smp::MAX_CPUS];
static NUMA_PARKED_LOCAL: [AtomicBool; crate::smp::MAX_CPUS] =
    [const { AtomicBool::new(false) }; crate::smp::MAX_CPUS];
static NUMA_DONE: AtomicU32 = AtomicU32::new(0);
const NUMA_FRAMES: usize = 64;

/// On the calling CPU: takes [`NUMA_FRAMES`] single frames, counts those whose
/// physical address lies in this CPU's node, gives them back, and records what its
/// magazine then holds (the frames went through it, so it holds some, of its node).
fn allocate_here() {
    let me = crate::smp::this();
    let node = me.node.load(SeqCst);
    let topology = crate::memory::numa::NUMA_TOPOLOGY.lock().clone();
    let mut frames = alloc::vec::Vec::new();
    for _ in 0..NUMA_FRAMES {
        if let Ok(f) = frame_allocator::allocate_frame() {
            frames.push(f);
        }
    }
    let local = frames
        .iter()
        // Without a firmware NUMA description all memory is node 0's.
        .filter(|f| topology.node_of_addr(f.start_address).map_or(0, |n| n.id) == node)
        .count();
    NUMA_TAKEN[me.id()].store(frames.len() as u32, SeqCst);
    NUMA_LOCAL[me.id()].store(local as u32, SeqCst);
    for f in frames {
        let _ = frame_allocator::deallocate_frame(f);
    }
    let cpu = crate::arch::cpu::current_cpu_id();
    if let Some((parked, on)) = frame_allocator::FRAME_ALLOCATOR.magazine_of(cpu) {
        NUMA_PARKED[me.id()].store(parked as u32, SeqCst);
        NUMA_PARKED_LOCAL[me.id()].store(on.id == node, SeqCst);
    }
    NUMA_DONE.fetch_add(1, SeqCst);
}

/// Every CPU takes its frames from its own node: a kernel thread pinned to each CPU
/// allocates there and checks the physical ranges (the node's memory, from the
/// firmware's SRAT or device tree), through its magazine, which then holds frames
/// of that node. Returns two lines per CPU: frames, then magazine.
pub fn numa_local_on_every_cpu() -> alloc::vec::Vec<alloc::string::String> {
    let pid = new_process("numa");
    let cpus: alloc::vec::Vec<usize> = crate::smp::online().map(|c| c.id()).collect();
    for &cpu in &cpus {
        thread::spawn_on(cpu, pid, Priority::Normal, allocate_here).expect("pinned thread");
    }
    run_until(&NUMA_DONE, cpus.len() as u32);
    let mut lines: alloc::vec::Vec<alloc::string::String> = cpus
        .iter()
        .map(|&cpu| {
            let (taken, local) = (NUMA_TAKEN[cpu].load(SeqCst), NUMA_LOCAL[cpu].load(SeqCst));
            let node = crate::smp::CPUS[cpu].node.load(SeqCst);
            assert_eq!(taken as usize, NUMA_FRAMES, "cpu {cpu} got its frames");
            assert_eq!(local, taken, "cpu {cpu}: every frame from node {node}");
            alloc::format!("cpu {cpu} node {node}: {local} of {taken} frames from its node")
        })
        .collect();
    for &cpu in &cpus {
        let parked = NUMA_PARKED[cpu].load(SeqCst);
        let node = crate::smp::CPUS[cpu].node.load(SeqCst);
        assert!(
            parked > 0,
            "cpu {cpu}: its frames went through its magazine"
        );
        assert!(
            NUMA_PARKED_LOCAL[cpu].load(SeqCst),
            "cpu {cpu}: magazine of node {node}"
        );
        lines.push(alloc::format!(
            "cpu {cpu} magazine: {parked} frames of node {node}"
        ));
    }
    lines
}

/// `lanes` (from `user/`) pinned to another CPU keeps making the calls and page
/// faults a CPU answers from its lane (getpid, gettid, clock calls, pipe writes and
/// reads, first touches of anonymous pages) while this CPU holds the process
/// table's lock for 300 ms: both kinds go on meanwhile. On one CPU there is no
/// other CPU to run on, and the program just runs. Needs the user programs in the
/// initrd.
pub fn lanes_run_beside_the_table_lock() {
    use crate::process::lane::{counted, Kind};
    use crate::task::init::{run_program, run_program_beside, TEST_ENV};
    use core::sync::atomic::Ordering::Relaxed;
    crate::process::scheduler::init_scheduler();
    let cpus = crate::smp::online_count();
    if cpus == 1 {
        assert_eq!(run_program(&[b"lanes", b"1"], &TEST_ENV, 60_000), Some(0));
        println!("  one CPU: nothing runs beside the lock");
        return;
    }
    let me = crate::smp::this_index();
    let other = crate::smp::online()
        .map(|c| c.id())
        .find(|&c| c != me)
        .unwrap();
    let cpu_arg = alloc::format!("{other}");
    let during = [AtomicU64::new(0), AtomicU64::new(0)];
    let status = run_program_beside(
        &[b"lanes", b"2", cpu_arg.as_bytes()],
        &TEST_ENV,
        60_000,
        || {
            let calls = counted(other, Kind::Call);
            let running = crate::arch::thread::idle_until(
                || counted(other, Kind::Call) > calls + 100,
                10_000,
            );
            assert!(running, "lanes did not start on CPU {other}");
            let table = crate::process::PROCESS_TABLE.lock();
            let (calls, faults) = (counted(other, Kind::Call), counted(other, Kind::Fault));
            let until = crate::syscall::machine::uptime_ns() + 300_000_000;
            while crate::syscall::machine::uptime_ns() < until {
                core::hint::spin_loop();
            }
            during[0].store(counted(other, Kind::Call) - calls, Relaxed);
            during[1].store(counted(other, Kind::Fault) - faults, Relaxed);
            drop(table);
        },
    );
    let (calls, faults) = (during[0].load(Relaxed), during[1].load(Relaxed));
    println!("  while CPU {me} held the process table for 300 ms, CPU {other} answered {calls} calls and {faults} page faults");
    assert_eq!(status, Some(0), "lanes reported a failure");
    assert!(calls >= 100, "the calls waited for the table's lock");
    assert!(faults >= 10, "the page faults waited for the table's lock");
}

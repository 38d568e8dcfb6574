//! The demo: what the firmware said (RAM, NUMA nodes and distances), then the seed's
//! Complete Example run for real (`kernel::demo`).

use kernel::arch::aarch64::{exit, interrupts, timer, Boot};
use kernel::memory::numa::NUMA_TOPOLOGY;
use kernel::{print, println};

fn print_numa() {
    let topo = NUMA_TOPOLOGY.lock();
    for n in topo.nodes() {
        let mem: u64 = topo.memory_of(n).map(|r| r.size).sum();
        let cpus = topo.cpus_of(n).count();
        print!(
            "numa: node {}: {} MiB, {} CPU(s), distances",
            n.id,
            mem >> 20,
            cpus
        );
        for m in topo.nodes() {
            print!(" {}", topo.distance(n, m).unwrap_or(0));
        }
        println!();
    }
}

/// Runs the demo, prints the boot timeline and exits QEMU.
pub fn run(_boot: &Boot) -> ! {
    print_numa();
    let (done, free_before) = kernel::demo::complete_example();
    interrupts::disable();
    kernel::demo::report(done, free_before);
    let users_ok = kernel::task::init::demo();
    interrupts::disable();
    println!(
        "boot timeline (guest counter since VM start): demo done at {} ms",
        timer::uptime_us() / 1000
    );
    exit::exit(if done && users_ok { 0 } else { 1 })
}

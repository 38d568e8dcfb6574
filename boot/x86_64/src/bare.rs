//! Bare-metal main: `kmain`, the panic handler and the kernel's layout from the
//! linker script.

use core::fmt::Write;
use kernel::arch::x86_64::{self as arch, exit, KernelLayout};
use kernel::memory::{PhysAddr, VirtAddr};
use kernel::task::init as userland;
use kernel::{print, println};

extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __boot_stack_guard: u8;
}

#[global_allocator]
static HEAP: kernel::memory::heap::GlobalHeap = kernel::memory::heap::GlobalHeap;

/// Higher-half offset of the image (KERNEL_VMA in linker.ld).
const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

pub(crate) fn layout() -> KernelLayout {
    // SAFETY: the linker script defines these symbols; only their addresses are used.
    unsafe {
        KernelLayout {
            phys: PhysAddr(sym(&__kernel_phys_start))..PhysAddr(sym(&__kernel_phys_end)),
            virt_offset: KERNEL_VMA,
            text: VirtAddr::new(sym(&__text_start))..VirtAddr::new(sym(&__text_end)),
            rodata: VirtAddr::new(sym(&__rodata_start))..VirtAddr::new(sym(&__rodata_end)),
            data: VirtAddr::new(sym(&__data_start))..VirtAddr::new(sym(&__data_end)),
            guards: [VirtAddr::new(sym(&__boot_stack_guard))],
        }
    }
}

/// The first Rust code: called by the PVH entry on the boot stack.
#[no_mangle]
extern "C" fn kmain(start_info: u64) -> ! {
    let boot = match arch::init(start_info, &layout()) {
        Ok(boot) => boot,
        Err(e) => panic!("boot failed: {:?}", e),
    };
    let m = &boot.memory;
    println!(
        "boot: kernel entered {} us after VM start; calibrated TSC {} kHz, LAPIC timer {} kHz",
        boot.entry_us,
        arch::timer::tsc_per_ms(),
        arch::timer::lapic_per_ms()
    );
    println!(
        "memory: {} MiB usable RAM, {} frames managed, RAM ends at {:#x}",
        m.usable_bytes >> 20,
        m.managed_frames,
        m.ram_end
    );
    report_numa(boot.numa_nodes);
    let cmdline = boot.info.cmdline();
    start_other_cpus(&boot, cmdline);
    match cmdline.split_once(' ').unwrap_or((cmdline, "")) {
        ("test", rest) => crate::tests::main(rest),
        ("memtest", _) => exit::exit_qemu(exit::ExitCode::Success),
        ("ttyecho", _) => {
            kernel::selftest::tty_echo();
            exit::exit_qemu(exit::ExitCode::Success)
        }
        _ => match userland::init_request() {
            Some((argv, envp)) => {
                userland::run_init(&argv, &envp, cmdline);
                exit::exit_qemu(exit::ExitCode::Success)
            }
            None => crate::demo::run(),
        },
    }
}

/// Starts the CPUs the MADT lists (unless the command line says `nosmp`) and says
/// which run.
fn start_other_cpus(boot: &arch::Boot, cmdline: &str) {
    if cmdline.split(' ').any(|w| w == "nosmp") || boot.info.rsdp.0 == 0 {
        return;
    }
    match arch::smp::start_secondaries(boot.info.rsdp) {
        Ok(n) if n > 1 => println!("{}", kernel::smp::report("apic")),
        Ok(_) => {}
        Err(e) => println!("smp: one CPU ({e:?})"),
    }
}

/// One line per NUMA node the firmware described: its free memory and distances.
fn report_numa(nodes: usize) {
    use kernel::memory::numa::NUMA_TOPOLOGY;
    if nodes == 0 {
        println!("numa: no SRAT, one node");
        return;
    }
    let topology = NUMA_TOPOLOGY.lock().clone();
    for node in topology.nodes() {
        let free_mib = kernel::memory::frame_allocator::free_frame_count_on(node) >> 8;
        print!("numa: node {} {} MiB free, distances", node.id, free_mib);
        for other in topology.nodes() {
            print!(" {}", topology.distance(node, other).unwrap_or(0));
        }
        println!();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    arch::interrupts::disable();
    let _ = writeln!(arch::console::EmergencyConsole, "\nKERNEL PANIC: {}", info);
    exit::exit_qemu(exit::ExitCode::Failure)
}

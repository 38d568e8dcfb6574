//! Bare-metal main: `kmain`, the panic handler and the kernel's layout from the
//! linker script.

use core::fmt::Write;
use kernel::arch::aarch64::{self as arch, console, exit, timer, KernelLayout};
use kernel::memory::{PhysAddr, VirtAddr};
use kernel::println;

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

/// `virtual - physical` of the higher-half image (KERNEL_OFFSET in linker.ld).
const KERNEL_OFFSET: u64 = 0xffff_ffff_8000_0000 - 0x4000_0000;

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// The kernel's sections, from the linker script's symbols.
pub(crate) fn layout() -> KernelLayout {
    // SAFETY: the linker script defines these symbols; only their addresses are used.
    unsafe {
        KernelLayout {
            phys: PhysAddr(sym(&__kernel_phys_start))..PhysAddr(sym(&__kernel_phys_end)),
            virt_offset: KERNEL_OFFSET,
            text: VirtAddr::new(sym(&__text_start))..VirtAddr::new(sym(&__text_end)),
            rodata: VirtAddr::new(sym(&__rodata_start))..VirtAddr::new(sym(&__rodata_end)),
            data: VirtAddr::new(sym(&__data_start))..VirtAddr::new(sym(&__data_end)),
            guards: [VirtAddr::new(sym(&__boot_stack_guard))],
        }
    }
}

/// The first Rust code: called by the entry on the boot stack with the device tree's
/// physical address.
#[no_mangle]
extern "C" fn kmain(dtb: u64) -> ! {
    let boot = match arch::init(dtb, &layout()) {
        Ok(boot) => boot,
        Err(e) => panic!("boot failed: {:?}", e),
    };
    let m = &boot.memory;
    println!(
        "aarch64: {} MiB RAM in {} range(s), {} MiB usable, {} frames managed, {} CPU(s), dtb at {:#x}",
        m.ram_bytes >> 20,
        boot.machine.memory().len(),
        m.usable_bytes >> 20,
        m.managed_frames,
        boot.machine.cpus().len(),
        boot.dtb.0
    );
    println!(
        "boot timeline (guest counter since VM start): first line at {} ms",
        timer::uptime_us() / 1000
    );
    let args = boot.machine.bootargs();
    start_other_cpus(&boot, args);
    if let Some(rest) = args.strip_prefix("test") {
        crate::tests::main(&boot, rest)
    }
    if args.starts_with("ttyecho") {
        kernel::selftest::tty_echo();
        exit::exit(0)
    }
    match kernel::task::init::init_request() {
        Some((argv, envp)) => {
            kernel::task::init::run_init(&argv, &envp, args);
            exit::exit(0)
        }
        None => crate::demo::run(&boot),
    }
}

/// Starts the CPUs the device tree lists (unless the command line says `nosmp`) and
/// says which run.
fn start_other_cpus(boot: &arch::Boot, cmdline: &str) {
    if cmdline.split(' ').any(|w| w == "nosmp") {
        return;
    }
    if arch::smp::start_secondaries(&boot.machine) > 0 {
        println!("{}", kernel::smp::report("mpidr"));
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::arch::interrupts::disable();
    let _ = writeln!(console::UnlockedWriter, "KERNEL PANIC: {info}");
    exit::exit(1)
}

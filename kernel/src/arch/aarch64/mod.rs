//! aarch64 bare metal: the machine behind the kernel when QEMU `virt` boots it (see
//! `boot/aarch64`).
//!
//! Offers the names every arch offers (`phys`, `interrupts`, `cpu`, `paging`, `uaccess`,
//! `console`) and the aarch64 mechanism behind them: the PL011 console, the exception
//! vector table, the GIC (v2 or v3) and the generic timer, the kernel's page tables, context
//! switches, semihosting exit.
//!
//! Bring-up order ([`init`]): vector table, device tree, console and GIC addresses,
//! NUMA topology, kernel page tables + TTBR switch (direct map of all RAM), frame
//! allocator, the initrd (`initrd=START,SIZE` on the command line), heap, user mode
//! ([`user`], for [`crate::task`]), GIC. Interrupts stay masked until `interrupts::init_timer`.
//! The other CPUs are started afterwards ([`smp::start_secondaries`], from the boot
//! binary, unless the command line says `nosmp`).

pub mod console;
pub mod context;
pub mod cpu;
pub mod exceptions;
pub mod exit;
pub mod gic;
pub mod interrupts;
pub mod ipi;
pub mod irq;
pub mod mem;
pub mod memory;
pub mod paging;
pub mod percpu;
pub mod phys;
pub use super::kstack as stack;
pub mod signal;
pub mod smp;
pub mod syscall;
pub use super::kthread as thread;
pub mod timer;
pub mod uaccess;
pub mod user;

pub use memory::{KernelLayout, MemorySummary};

use crate::firmware::devicetree::{DeviceTree, DtError, MachineInfo};
use crate::memory::numa::NUMA_TOPOLOGY;
use crate::memory::{phys::phys_to_virt, PhysAddr};

/// What [`init`] learnt.
pub struct Boot {
    /// The machine as the device tree describes it.
    pub machine: MachineInfo,
    /// Physical address and size of the device tree blob.
    pub dtb: (u64, u64),
    /// The memory bring-up totals.
    pub memory: MemorySummary,
}

/// Why bring-up stopped.
#[derive(Debug, Clone, Copy)]
pub enum BootError {
    /// The device tree is unusable.
    DeviceTree(DtError),
    /// The device tree lies outside the boot window.
    DeviceTreeOutside(u64),
    /// The kernel's page tables could not be built.
    Memory(memory::MemoryError),
}

/// The device tree at physical `dtb`, validated, as a slice of the window.
fn device_tree(dtb: u64) -> Result<(DeviceTree<'static>, u64), BootError> {
    let window = phys::window_size();
    if dtb.checked_add(8).is_none_or(|end| end > window) {
        return Err(BootError::DeviceTreeOutside(dtb));
    }
    let mut header = [0u8; 8];
    crate::memory::phys::read_bytes(PhysAddr(dtb), &mut header)
        .map_err(|_| BootError::DeviceTreeOutside(dtb))?;
    let size = crate::firmware::devicetree::total_size(&header).map_err(BootError::DeviceTree)?;
    if dtb.checked_add(size as u64).is_none_or(|end| end > window) {
        return Err(BootError::DeviceTreeOutside(dtb));
    }
    let ptr: *const u8 = phys_to_virt(PhysAddr(dtb)).as_ptr();
    // SAFETY: `[dtb, dtb + size)` lies inside the window (checked above), which stays
    // mapped for the kernel's whole life (the direct map covers all RAM, and the blob
    // is reserved from the frame allocator); nothing writes to the blob.
    let blob = unsafe { core::slice::from_raw_parts(ptr, size) };
    let tree = DeviceTree::parse(blob).map_err(BootError::DeviceTree)?;
    Ok((tree, size as u64))
}

/// The initrd's physical range from the word `initrd=START,SIZE` of the command line
/// (xtask loads the archive with QEMU's `-device loader`: an ELF kernel gets no
/// `linux,initrd-start` in its device tree).
fn initrd_of(bootargs: &str) -> Option<(u64, u64)> {
    let (start, size) = bootargs
        .split(' ')
        .find_map(|w| w.strip_prefix("initrd="))?
        .split_once(',')?;
    let start = u64::from_str_radix(start.strip_prefix("0x").unwrap_or(start), 16).ok()?;
    Some((start, size.parse().ok()?))
}

/// Hands the initrd to the core, if it lies inside RAM (the direct map is live).
fn publish_initrd((start, size): (u64, u64), ram_end: u64) {
    if size == 0 || start.checked_add(size).is_none_or(|end| end > ram_end) {
        return;
    }
    let ptr: *const u8 = phys_to_virt(PhysAddr(start)).as_ptr();
    // SAFETY: `[start, start + size)` is RAM inside the direct map (checked above)
    // that was kept out of the frame allocator (reserved in `memory::init`), and
    // nothing writes to it.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, size as usize) };
    crate::initrd::set_boot_image(bytes);
}

/// Brings the machine up (see the module docs). Runs once, on the boot CPU, with
/// interrupts masked, while the entry's boot tables are live.
pub fn init(dtb: u64, layout: &KernelLayout) -> Result<Boot, BootError> {
    percpu::install(&crate::smp::CPUS[0]);
    crate::smp::mark_online();
    exceptions::init();
    let (tree, dtb_size) = device_tree(dtb)?;
    let machine = MachineInfo::from_tree(&tree);
    if let Some(uart) = machine.uart {
        console::set_base(uart);
    }
    if let Some(g) = machine.gic {
        gic::configure(g, machine.cpus().len());
    }
    smp::describe_boot_cpu(&machine);
    if let Some(t) = machine.timer {
        timer::set_ppi(t.virt);
    }
    machine.apply_numa(&mut NUMA_TOPOLOGY.lock());
    if machine.bootargs().split(' ').any(|w| w == "quiet") {
        console::set_quiet(true);
    }
    let initrd = initrd_of(machine.bootargs()).unwrap_or((0, 0));
    let memory =
        memory::init(&machine, (dtb, dtb_size), initrd, layout).map_err(BootError::Memory)?;
    publish_initrd(initrd, memory.ram_end);
    crate::memory::heap::init_heap();
    // Frames only the kernel heap may take: user memory (and every frame not for the
    // heap) stops short of them, so the kernel can still end the offenders.
    crate::memory::frame_allocator::set_heap_reserve(crate::task::KERNEL_RESERVE_FRAMES);
    user::init();
    gic::init();
    Ok(Boot {
        machine,
        dtb: (dtb, dtb_size),
        memory,
    })
}

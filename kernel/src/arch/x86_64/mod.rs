//! x86_64 bare metal: the machine behind the kernel when QEMU boots it through the PVH
//! entry (see `boot/x86_64`).
//!
//! Offers the names every arch offers (`phys`, `interrupts`, `cpu`, `paging`, `uaccess`,
//! `console`) and the x86_64 mechanism behind them: GDT/TSS, IDT and exception
//! reporting, the LAPIC timer, the kernel's page tables, context switches, and ring 3:
//! the mechanism user threads run on ([`user`], for [`crate::task`]), the `syscall`
//! entry ([`syscall_entry`]) and the initrd ([`bootfs`]).
//!
//! Bring-up order ([`init`]): serial console, GDT/TSS, IDT, PVH boot info, frame
//! allocator (RAM below 4 GiB), kernel page tables ([`kernel_map`]) + CR3 switch
//! (the identity map is gone from then on), RAM above 4 GiB, heap, timer calibration, ring 3 (SSE on, `syscall` MSRs, the kernel
//! root every address space shares). NUMA nodes come from the ACPI SRAT/SLIT
//! when the firmware has them ([`numa`]), before the first frame is handed out. Interrupts stay off until `interrupts::init_timer`.

/// Assembly that pushes the general-purpose registers in the order of
/// `idt::TrapFrame` (rax first, so r15 ends up at the lowest address). Shared by the
/// exception entry and the `syscall` entry, which build the same frame.
macro_rules! push_gprs {
    () => {
        "
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
"
    };
}

/// The inverse of `push_gprs!`.
macro_rules! pop_gprs {
    () => {
        "
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
"
    };
}

pub mod bootfs;
pub mod console;
pub mod context;
pub mod cpu;
pub mod exit;
pub mod gdt;
pub mod idt;
pub mod interrupts;
pub mod ioapic;
pub mod ipi;
pub mod kernel_map;
pub mod memory;
pub mod numa;
pub mod paging;
pub mod percpu;
pub mod phys;
pub mod port;
pub mod pvh;
pub mod signal;
pub mod smp;
pub use super::kstack as stack;
pub mod syscall_entry;
pub use super::kthread as thread;
pub mod timer;
pub mod uaccess;
pub mod user;

pub use memory::{KernelLayout, MemorySummary};

/// What [`init`] learnt.
pub struct Boot {
    /// The PVH boot information.
    pub info: pvh::BootInfo,
    /// The memory bring-up totals.
    pub memory: MemorySummary,
    /// Microseconds from VM start (TSC 0) to the kernel's first instruction in Rust.
    pub entry_us: u64,
    /// NUMA nodes the firmware described (0: no SRAT, one node).
    pub numa_nodes: usize,
}

/// Why bring-up stopped.
#[derive(Debug, Clone, Copy)]
pub enum BootError {
    /// The PVH start info is unusable.
    Pvh(pvh::PvhError),
    /// The kernel page tables could not be built.
    Paging(crate::memory::paging::MapToError),
}

/// Installs the kernel tables and moves the physical window to the direct map. No
/// physical access may happen between the two steps (interrupts are off).
fn switch_to_kernel_tables(root: crate::memory::PhysFrame, direct_end: u64) {
    paging::set_active_root(root);
    phys::set_direct_map(direct_end);
}

/// Brings the machine up (see the module docs). Runs once, on the boot CPU, with
/// interrupts off.
pub fn init(start_info: u64, layout: &KernelLayout) -> Result<Boot, BootError> {
    let entry_tsc = cpu::rdtsc();
    percpu::install(&crate::smp::CPUS[0]);
    crate::smp::mark_online();
    console::init();
    gdt::init();
    idt::init();
    let info = pvh::parse(start_info).map_err(BootError::Pvh)?;
    if info.cmdline().split(' ').any(|w| w == "quiet") {
        console::set_quiet(true);
    }
    crate::println!("kernel: x86_64, PVH entry (TSC {entry_tsc})");
    let ram = memory::usable_regions(&info, layout);
    let numa_nodes = numa::discover(&info);
    memory::init_low(&ram);
    let (root, direct_end) =
        kernel_map::build(layout, info.memory_map()).map_err(BootError::Paging)?;
    switch_to_kernel_tables(root, direct_end);
    memory::add_high(&ram);
    if let Some((start, len)) = info.initrd {
        bootfs::set(start, len);
    }
    crate::memory::heap::init_heap();
    // Frames only the kernel heap may take: user memory (and every frame not for the
    // heap) stops short of them, so the kernel can still end the offenders.
    crate::memory::frame_allocator::set_heap_reserve(crate::task::KERNEL_RESERVE_FRAMES);
    timer::init();
    user::init();
    let entry_us = entry_tsc / (timer::tsc_per_ms() / 1000).max(1);
    Ok(Boot {
        info,
        memory: memory::summary(&ram),
        entry_us,
        numa_nodes,
    })
}

//! Starting the other CPUs on x86_64: the ACPI MADT lists their local APICs; each
//! gets INIT, then up to two start-up IPIs (Intel SDM vol. 3, 10.4.4, "MP
//! initialization protocol"), and runs the trampoline below from physical
//! [`TRAMPOLINE`], in real mode.
//!
//! ## The trampoline
//! A start-up IPI starts a CPU in 16-bit real mode at `vector << 12`, so the code
//! is copied below 1 MiB (the kernel never hands out low memory, see `memory`). It
//! loads its own small GDT, enters 32-bit protected mode, turns on PAE, long mode
//! and paging with a temporary PML4 ([`TEMP_PML4`]: the first 2 MiB identity, so
//! the trampoline goes on running, and the kernel half copied from the kernel's
//! root, so the kernel is there), and jumps to [`secondary_entry`] in the higher
//! half on the stack the boot CPU left in the trampoline's data. The temporary
//! PML4 is below 4 GiB, as a 32-bit `mov cr3` needs. Addresses inside the
//! trampoline are its offsets plus [`TRAMPOLINE`], computed by the assembler.
//!
//! ## A secondary CPU's own set-up
//! [`secondary_entry`]: its GS base (its `PerCpu`), the kernel's root, its own GDT
//! and TSS, the shared IDT, SSE and the `syscall` MSRs, its local APIC and timer at
//! 100 Hz; it says it is up and becomes that CPU's idle context
//! (`thread::secondary_idle`).
//!
//! ## Locks
//! None: the boot CPU starts one CPU at a time and waits for it ([`UP`]).

use super::{cpu, gdt, idt, paging, syscall_entry, timer};
use crate::firmware::acpi::AcpiTables;
use crate::memory::numa::NUMA_TOPOLOGY;
use crate::memory::{phys, PhysAddr, PhysFrame};
use crate::smp::{self, MAX_CPUS};
use core::sync::atomic::{AtomicU64, Ordering};

/// Physical address the trampoline is copied to (start-up vector 0x08).
pub const TRAMPOLINE: u64 = 0x8000;
/// The temporary PML4, its PDPT and PD (identity for the first 2 MiB).
const TEMP_PML4: u64 = 0x9000;
const TEMP_PDPT: u64 = 0xa000;
const TEMP_PD: u64 = 0xb000;
/// Where the trampoline's GDT (4 entries, then its 6-byte pointer) and data slots
/// (cr3, stack top, CPU index, entry: four u64 the boot CPU fills) sit in it; the
/// code before them is shorter.
const GDT_OFFSET: u64 = 0x100;
const SLOTS_OFFSET: u64 = 0x130;
/// Bytes of kernel stack each secondary CPU's idle context runs on.
const SECONDARY_STACK: u64 = super::stack::DEFAULT_STACK_SIZE;

core::arch::global_asm!(
    r#"
.section .rodata.ap_trampoline, "a"
.p2align 12
.global ap_trampoline_start
ap_trampoline_start:
.code16
    cli
    cld
    mov ax, cs
    mov ds, ax
    lgdt [{gdtr}]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    // ljmpl 0x08, TRAMPOLINE + (ap_pm32 - start)
    .byte 0x66, 0xea
    .long {base} + (ap_pm32 - ap_trampoline_start)
    .word 0x08
.code32
ap_pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, dword ptr [{base} + {slots}]
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x900
    wrmsr
    mov eax, cr0
    or eax, 0x80010001
    mov cr0, eax
    // ljmp 0x18, TRAMPOLINE + (ap_lm64 - start)
    .byte 0xea
    .long {base} + (ap_lm64 - ap_trampoline_start)
    .word 0x18
.code64
ap_lm64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov ebx, {base}
    mov rsp, qword ptr [rbx + {slots} + 8]
    mov rdi, qword ptr [rbx + {slots} + 16]
    mov rax, qword ptr [rbx + {slots} + 24]
    xor ebp, ebp
    jmp rax

.org {gdt}
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
ap_gdtr:
    .word 31
    .long {base} + (ap_gdt - ap_trampoline_start)
.org {slots}
    .quad 0, 0, 0, 0
.global ap_trampoline_end
ap_trampoline_end:
.text
"#,
    base = const TRAMPOLINE,
    gdt = const GDT_OFFSET,
    gdtr = const GDT_OFFSET + 32,
    slots = const SLOTS_OFFSET,
);

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// The index of the CPU that last said it is up.
static UP: AtomicU64 = AtomicU64::new(0);

/// Why a CPU could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// No MADT (e.g. `-M microvm` without ACPI): one CPU.
    NoMadt,
    /// Low memory for the trampoline is not in the physical window.
    LowMemory,
}

/// Starts every CPU the MADT lists besides the boot CPU (at most
/// [`MAX_CPUS`]), one after the other; returns how many CPUs run, the boot CPU
/// included. `rsdp` is the ACPI root the PVH start info gave.
pub fn start_secondaries(rsdp: PhysAddr) -> Result<usize, StartError> {
    let me = timer::lapic_id() as u32;
    smp::describe(0, me, node_of(me));
    let cpus = AcpiTables::from_rsdp(rsdp)
        .and_then(|t| t.read_cpus())
        .map_err(|_| StartError::NoMadt)?;
    prepare_trampoline().map_err(|_| StartError::LowMemory)?;
    let mut next = 1;
    for &id in cpus.apic_ids().iter().filter(|&&id| id != me) {
        if next >= MAX_CPUS {
            crate::println!("smp: only {MAX_CPUS} CPUs are used");
            break;
        }
        if start_one(next, id) {
            next += 1;
        } else {
            crate::println!("smp: the CPU with APIC id {id} did not start");
        }
    }
    Ok(next)
}

/// The NUMA node of the CPU with APIC id `apic_id` (the SRAT's, else 0).
fn node_of(apic_id: u32) -> u32 {
    NUMA_TOPOLOGY.lock().node_of_cpu(apic_id).id
}

/// Copies the trampoline to [`TRAMPOLINE`] and builds the temporary tables.
fn prepare_trampoline() -> Result<(), phys::OutsideWindow> {
    // SAFETY: the linker keeps the bytes between the two symbols; they are read-only
    // data of the kernel image.
    let code = unsafe {
        let start = core::ptr::addr_of!(ap_trampoline_start);
        let len = core::ptr::addr_of!(ap_trampoline_end) as usize - start as usize;
        core::slice::from_raw_parts(start, len)
    };
    phys::write_bytes(PhysAddr(TRAMPOLINE), code)?;
    for table in [TEMP_PML4, TEMP_PDPT, TEMP_PD] {
        phys::zero_frame(PhysFrame::containing_address(PhysAddr(table)))?;
    }
    const PRESENT_WRITABLE: u64 = 0x3;
    const HUGE: u64 = 0x80;
    phys::write_u64(PhysAddr(TEMP_PML4), TEMP_PDPT | PRESENT_WRITABLE)?;
    phys::write_u64(PhysAddr(TEMP_PDPT), TEMP_PD | PRESENT_WRITABLE)?;
    phys::write_u64(PhysAddr(TEMP_PD), HUGE | PRESENT_WRITABLE)?;
    let root = paging::active_root().map_or(0, |r| r.start_address.0);
    for i in 256..512u64 {
        let entry = phys::read_u64(PhysAddr(root + i * 8))?;
        phys::write_u64(PhysAddr(TEMP_PML4 + i * 8), entry)?;
    }
    Ok(())
}

/// INIT-SIPI-SIPI to the CPU with APIC id `apic_id`, to become CPU `index`; waits
/// up to a second for it to say it is up.
fn start_one(index: usize, apic_id: u32) -> bool {
    let Ok(stack) = super::stack::allocate(SECONDARY_STACK) else {
        return false;
    };
    smp::describe(index, apic_id, node_of(apic_id));
    let slots = TRAMPOLINE + SLOTS_OFFSET;
    let entry = secondary_entry as *const () as u64;
    let filled = [TEMP_PML4, stack.top.as_u64(), index as u64, entry]
        .iter()
        .enumerate()
        .all(|(i, &v)| phys::write_u64(PhysAddr(slots + 8 * i as u64), v).is_ok());
    if !filled {
        super::stack::free(stack);
        return false;
    }
    timer::send_init(apic_id);
    wait_us(10_000);
    for _ in 0..2 {
        timer::send_startup(apic_id, (TRAMPOLINE >> 12) as u8);
        if wait_until_up(index, 200_000) {
            // The stack is the CPU's idle context's from now on: never freed.
            return true;
        }
    }
    // A CPU that never came is not on the stack.
    super::stack::free(stack);
    false
}

fn wait_us(us: u64) {
    let end = timer::uptime_us() + us;
    while timer::uptime_us() < end {
        core::hint::spin_loop();
    }
}

fn wait_until_up(index: usize, us: u64) -> bool {
    let end = timer::uptime_us() + us;
    while timer::uptime_us() < end {
        if UP.load(Ordering::Acquire) == index as u64 {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

/// Where a secondary CPU enters the kernel (from the trampoline, on its own stack,
/// interrupts off), as CPU `index`.
extern "C" fn secondary_entry(index: u64) -> ! {
    let index = (index as usize).min(MAX_CPUS - 1);
    super::percpu::install(&smp::CPUS[index]);
    if let Some(root) = crate::task::kernel_root_frame() {
        paging::set_active_root(root);
    }
    gdt::init_secondary();
    idt::load();
    cpu::enable_sse();
    syscall_entry::init();
    timer::init_this_cpu();
    timer::start(crate::process::scheduler::TICK_HZ);
    UP.store(index as u64, Ordering::Release);
    super::thread::secondary_idle()
}

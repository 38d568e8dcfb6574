//! The GDT and the TSS.
//!
//! Segments (index: selector):
//! ```text
//! 0: null  1: 0x08 kernel code (64-bit)  2: 0x10 kernel data
//! 3: 0x1b user data (DPL 3)  4: 0x23 user code (64-bit, DPL 3)  5-6: 0x28 TSS
//! ```
//! The order suits `syscall`/`sysret`: STAR.SYSRET base 0x10 gives user SS =
//! 0x10 + 8 and user CS = 0x10 + 16 (with RPL 3), STAR.SYSCALL base 0x08 gives kernel
//! CS = 0x08 and SS = 0x10.
//!
//! The TSS holds `rsp0`, the kernel stack the CPU switches to on an interrupt from
//! ring 3 (set per thread by [`set_kernel_stack`]), and IST1, a separate stack for
//! double faults (so a kernel stack overflow still reports instead of triple
//! faulting).
//!
//! Every CPU has its own GDT and TSS (a TSS descriptor is marked busy by `ltr`, and
//! `rsp0` is the running thread's): the boot CPU's are a static, a secondary CPU's
//! come from the heap when it starts ([`init_secondary`]) and live forever.
//! [`TSS_OF`] finds each CPU's TSS.

use crate::smp::MAX_CPUS;
use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data/stack selector.
pub const KERNEL_DS: u16 = 0x10;
/// User data/stack selector (RPL 3).
pub const USER_DS: u16 = 0x1b;
/// User 64-bit code selector (RPL 3).
pub const USER_CS: u16 = 0x23;
/// TSS selector.
pub const TSS_SEL: u16 = 0x28;
/// IST index (1-based, as in the IDT entry) of the double-fault stack.
pub const DOUBLE_FAULT_IST: u8 = 1;

const IST_STACK_SIZE: usize = 16 * 1024;

/// The 64-bit task-state segment (Intel SDM vol. 3, 8.7).
#[repr(C, packed(4))]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

/// Statics the CPU reads (and, for the GDT's TSS descriptor, writes).
struct CpuTables {
    gdt: UnsafeCell<[u64; 7]>,
    tss: UnsafeCell<Tss>,
    df_stack: UnsafeCell<[u8; IST_STACK_SIZE]>,
}

// SAFETY: each CPU's tables are written only by that CPU: by `init` or
// `init_secondary` (before its interrupts are on) and `set_kernel_stack` (with
// interrupts off, by its thread switch path).
unsafe impl Sync for CpuTables {}

/// Each CPU's TSS (0: not started), by CPU index.
static TSS_OF: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

#[repr(align(16))]
struct Aligned(CpuTables);

const GDT_TEMPLATE: [u64; 7] = [
    0,
    0x00af_9a00_0000_ffff, // kernel code: P, DPL0, code, readable, L
    0x00cf_9200_0000_ffff, // kernel data: P, DPL0, data, writable
    0x00cf_f200_0000_ffff, // user data: P, DPL3, data, writable
    0x00af_fa00_0000_ffff, // user code: P, DPL3, code, readable, L
    0,
    0,
];

const TSS_TEMPLATE: Tss = Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    iomap_base: core::mem::size_of::<Tss>() as u16,
};

/// The boot CPU's tables.
static TABLES: Aligned = Aligned(CpuTables {
    gdt: UnsafeCell::new(GDT_TEMPLATE),
    tss: UnsafeCell::new(TSS_TEMPLATE),
    df_stack: UnsafeCell::new([0; IST_STACK_SIZE]),
});

/// The two GDT words of an available 64-bit TSS descriptor for `base`.
fn tss_descriptor(base: u64) -> [u64; 2] {
    let limit = (core::mem::size_of::<Tss>() - 1) as u64;
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40) // P, type 9 = available 64-bit TSS
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

/// Loads the boot CPU's GDT, reloads the segment registers and the task register.
pub fn init() {
    install(&TABLES.0);
}

/// Gives the calling secondary CPU its own GDT and TSS (from the heap, never freed)
/// and loads them.
pub fn init_secondary() {
    // Zeroed on the heap, not built on this CPU's small boot stack and moved.
    // SAFETY: all-zero bytes are a valid `CpuTables` (plain integers and arrays).
    let tables: &'static Aligned = Box::leak(unsafe { Box::<Aligned>::new_zeroed().assume_init() });
    // SAFETY: the tables are this CPU's alone and not loaded yet.
    unsafe {
        *tables.0.gdt.get() = GDT_TEMPLATE;
        *tables.0.tss.get() = TSS_TEMPLATE;
    }
    install(&tables.0);
}

/// Loads `t` on this CPU and records its TSS.
fn install(t: &'static CpuTables) {
    TSS_OF[crate::smp::this_index()].store(t.tss.get() as u64, Ordering::Release);
    let df_top = t.df_stack.get() as u64 + IST_STACK_SIZE as u64;
    let [lo, hi] = tss_descriptor(t.tss.get() as u64);
    // SAFETY: interrupts are off and no other CPU uses these tables; the GDT
    // keeps the selectors the boot code used (0x08 code, 0x10 data), so reloading is
    // seamless.
    unsafe {
        (*t.tss.get()).ist[usize::from(DOUBLE_FAULT_IST) - 1] = df_top;
        let gdt = &mut *t.gdt.get();
        gdt[5] = lo;
        gdt[6] = hi;
        load(gdt.as_ptr() as u64, (gdt.len() * 8 - 1) as u16);
    }
}

/// # Safety
/// `base`/`limit` describe a valid GDT with the selectors above, living forever.
unsafe fn load(base: u64, limit: u16) {
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let ptr = Pointer { limit, base };
    // SAFETY: the caller vouches for the table; the far return reloads CS with the
    // kernel code selector of that table.
    unsafe {
        core::arch::asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "ltr {tss:x}",
            ptr = in(reg) &ptr,
            cs = in(reg) u64::from(KERNEL_CS),
            ds = in(reg) u64::from(KERNEL_DS),
            tss = in(reg) u64::from(TSS_SEL),
            tmp = lateout(reg) _,
        );
    }
}

/// Sets the stack the CPU switches to on an interrupt or exception from ring 3
/// (the running thread's kernel stack top).
pub fn set_kernel_stack(top: u64) {
    let saved = super::interrupts::save_and_disable();
    let tss = TSS_OF[crate::smp::this_index()].load(Ordering::Acquire) as *mut Tss;
    if !tss.is_null() {
        // SAFETY: the TSS is this CPU's (`install`), alive forever; interrupts are
        // off, so nothing else on this CPU touches it now, and other CPUs never do;
        // the CPU reads rsp0 only on a ring change.
        unsafe { (*tss).rsp[0] = top };
    }
    super::interrupts::restore(saved);
}

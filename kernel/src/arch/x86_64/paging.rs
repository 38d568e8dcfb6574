//! The MMU's view of the active address space: CR3 and TLB invalidation.

use crate::memory::{PhysAddr, PhysFrame, VirtAddr};

/// CR3 bits that hold the root table's physical address.
const CR3_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The active root table (PML4) from CR3.
pub fn active_root() -> Option<PhysFrame> {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects; we run in ring 0.
    unsafe {
        core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags))
    };
    Some(PhysFrame::containing_address(PhysAddr(cr3 & CR3_ADDR_MASK)))
}

/// Installs `root` as the active PML4 (flushing all non-global TLB entries).
///
/// The caller guarantees (by construction of the kernel's tables) that `root` maps
/// the kernel's code, stacks and data exactly as the current tables do.
pub fn set_active_root(root: PhysFrame) {
    // Published before the load: a TLB shootdown that misses this CPU can only
    // have changed the table before the CPU walks it (see `smp::shootdown`).
    crate::smp::this()
        .active_root
        .store(root.start_address.0, core::sync::atomic::Ordering::SeqCst);
    // SAFETY: every root the kernel installs shares the kernel half built by
    // `arch::x86_64::memory`, so the code and stack in use stay mapped.
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) root.start_address.0, options(nostack, preserves_flags))
    };
}

/// Invalidates the TLB entry of the page containing `addr`.
pub fn flush_page(addr: VirtAddr) {
    // SAFETY: `invlpg` only drops a cached translation.
    unsafe {
        core::arch::asm!("invlpg [{}]", in(reg) addr.as_u64(), options(nostack, preserves_flags))
    };
}

/// Invalidates the page at `addr` of the table `root` on every CPU that may cache
/// it: here, and through a shootdown (see [`crate::smp::shootdown`]) on the other
/// CPUs running on `root`, or on all of them for a kernel address. Returns once
/// every one has flushed.
pub fn flush_page_everywhere(root: PhysFrame, addr: VirtAddr) {
    flush_page(addr);
    let kernel = addr.as_u64() >= 0xffff_8000_0000_0000;
    crate::smp::shootdown(match kernel {
        true => crate::smp::Reach::Everyone,
        false => crate::smp::Reach::RunningOn(root.start_address.0),
    });
}

/// Drops every translation of the table `root` that the other CPUs running on it
/// may cache (after a batch of changes flushed here page by page).
pub fn flush_root_everywhere(root: PhysFrame) {
    crate::smp::shootdown(crate::smp::Reach::RunningOn(root.start_address.0));
}

/// Drops the kernel-half translations every other CPU may cache (after a batch of
/// kernel mappings went away, flushed here page by page).
pub fn flush_kernel_everywhere() {
    crate::smp::shootdown(crate::smp::Reach::Everyone);
}

/// Makes sure no other CPU runs on the table `root` any more (before it is torn
/// down): those that do switch to the kernel's root (see [`crate::smp::retire_root`]).
///
/// This CPU too leaves it if it runs on it: a process that ends itself (kill of its
/// own pid with a fatal signal) tears its space down while its tables are installed
/// here, and its caller need not leave them beforehand on every call that might.
pub fn retire_root(root: PhysFrame) {
    let here = crate::smp::this()
        .active_root
        .load(core::sync::atomic::Ordering::SeqCst);
    if here == root.start_address.0 {
        super::ipi::leave_user_root();
    }
    crate::smp::retire_root(root.start_address.0);
}

/// Drops every cached translation of this CPU, global ones (the kernel half) too:
/// what a shootdown asks of it. Toggling CR4.PGE flushes everything.
pub fn flush_everything_local() {
    const CR4_PGE: u64 = 1 << 7;
    // SAFETY: clearing and restoring PGE only flushes the TLB; the tables in use
    // map the running code either way.
    unsafe {
        core::arch::asm!(
            "mov {tmp}, cr4",
            "mov {orig}, {tmp}",
            "and {tmp}, {mask}",
            "mov cr4, {tmp}",
            "mov cr4, {orig}",
            tmp = out(reg) _,
            orig = out(reg) _,
            mask = in(reg) !CR4_PGE,
            options(nostack, preserves_flags)
        )
    };
    // Without PGE there are no global entries and the toggle did nothing.
    flush_all();
}

/// Invalidates all non-global TLB entries (reloads CR3).
pub fn flush_all() {
    if let Some(root) = active_root() {
        set_active_root(root);
    }
}

/// The kernel's page tables as the walker sees them (the kernel half is the same in
/// every address space, so the active root will do).
pub type KernelTable = crate::memory::paging::X86_64PageTable;

/// The active tables, for mapping into the kernel half.
pub fn kernel_table() -> Option<KernelTable> {
    Some(crate::memory::paging::X86_64PageTable::active())
}

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

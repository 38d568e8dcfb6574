//! The active translation tables and TLB maintenance.
//!
//! The kernel uses one root table in both `TTBR0_EL1` (lower half, user) and
//! `TTBR1_EL1` (upper half, kernel): with 48-bit regions in both, a canonical address
//! indexes the same L0 slot either way (lower half: slots 0..256, upper half:
//! 256..512), so the generic walker's picture of "one 512-entry root" is exactly
//! what the MMU sees. The kernel's own switch loads both registers; a user process's
//! root goes into TTBR0 alone ([`set_user_root`]): its upper half is a copy of the
//! kernel's, but the MMU walks the kernel half through TTBR1.

use crate::memory::{PhysAddr, PhysFrame, VirtAddr};

const BADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// The active root table (from `TTBR1_EL1`).
pub fn active_root() -> Option<PhysFrame> {
    let ttbr: u64;
    // SAFETY: reading TTBR1_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ttbr1_el1", out(reg) ttbr, options(nomem, nostack)) };
    Some(PhysFrame::containing_address(PhysAddr(ttbr & BADDR_MASK)))
}

/// Installs `root` in TTBR0 and TTBR1 and drops all stale translations.
///
/// The caller (the kernel's own page-table code) guarantees that `root` maps the
/// kernel image, its stacks and the direct map as the current tables do.
pub fn set_active_root(root: PhysFrame) {
    crate::smp::this()
        .active_root
        .store(root.start_address.0, core::sync::atomic::Ordering::SeqCst);
    let addr = root.start_address.0;
    // SAFETY: `root` maps the kernel as the old tables did (caller's contract), so
    // execution continues at the same addresses; the barriers order the table writes
    // before the switch and the TLB flush after it.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "msr ttbr0_el1, {0}",
            "msr ttbr1_el1, {0}",
            "isb",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            in(reg) addr,
            options(nostack)
        )
    };
}

/// The user half's root (from `TTBR0_EL1`).
pub fn active_user_root() -> PhysFrame {
    let ttbr: u64;
    // SAFETY: reading TTBR0_EL1 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ttbr0_el1", out(reg) ttbr, options(nomem, nostack)) };
    PhysFrame::containing_address(PhysAddr(ttbr & BADDR_MASK))
}

/// Installs `root` in TTBR0 only (the user half; the kernel half stays in TTBR1) and
/// drops this CPU's cached translations. No ASIDs: the flush is what keeps the old
/// space's entries from being used.
pub fn set_user_root(root: PhysFrame) {
    // Published before the switch (see `smp::retire_root`).
    crate::smp::this()
        .active_root
        .store(root.start_address.0, core::sync::atomic::Ordering::SeqCst);
    // SAFETY: the kernel runs from the upper half (TTBR1), which does not change; the
    // barriers order the table writes before the switch and the flush after it.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "msr ttbr0_el1, {0}",
            "isb",
            "tlbi vmalle1",
            "dsb nsh",
            "isb",
            in(reg) root.start_address.0,
            options(nostack)
        )
    };
}

/// Invalidates this CPU's translations of the page at `addr` (all ASIDs). Local,
/// as on x86_64: the other CPUs hear of a change through the `*_everywhere`
/// functions. An inner-shareable TLBI per page made every vCPU stop and flush
/// (QEMU runs it synchronised on all of them), once per page of every fork and
/// munmap, whether or not they ran the table: a fork + wait on 4 vCPUs cost 2.4 ms.
pub fn flush_page(addr: VirtAddr) {
    let operand = (addr.as_u64() >> 12) & 0x0000_0fff_ffff_ffff;
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vaae1, {}",
            "dsb nsh",
            "isb",
            in(reg) operand,
            options(nostack)
        )
    };
}

/// Invalidates the page at `addr` on every CPU (the inner-shareable TLBI, broadcast
/// by the hardware; `dsb ish` waits until every CPU carried it out).
fn flush_page_all_cpus(addr: VirtAddr) {
    let operand = (addr.as_u64() >> 12) & 0x0000_0fff_ffff_ffff;
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vaae1is, {}",
            "dsb ish",
            "isb",
            in(reg) operand,
            options(nostack)
        )
    };
}

/// Invalidates the page at `addr` of the table `root` on every CPU that may cache
/// it, before returning: a kernel page, or a user page of a table other CPUs run
/// on, with the broadcast TLBI (as Linux's arm64 does); a user page of a table no
/// other CPU runs on here only (a fork's copy-on-write marking of a one-thread
/// parent, most faults), with no CPU stopped for it (QEMU carries out each
/// broadcast TLBI on every vCPU in turn). No ASIDs: a CPU that switched away from
/// `root` flushed its TLB then, and one that takes `root` up publishes it first
/// (see [`others_run_on`]).
pub fn flush_page_everywhere(root: PhysFrame, addr: VirtAddr) {
    if addr.as_u64() >= 0xffff_0000_0000_0000 || others_run_on(root) {
        return flush_page_all_cpus(addr);
    }
    flush_page(addr);
}

/// Drops every translation of the table `root` that the other CPUs running on it
/// may cache (after a batch of changes flushed here page by page): one broadcast
/// flush if there are any.
pub fn flush_root_everywhere(root: PhysFrame) {
    if others_run_on(root) {
        flush_all();
    }
}

/// Whether another CPU runs on `root` (and may cache its entries). The barrier
/// orders the caller's table writes before the look: a CPU publishes its root
/// (`active_root`, `dsb ishst`) before it loads it, so either this look sees it
/// there or that CPU's walks see the new entries.
fn others_run_on(root: PhysFrame) -> bool {
    // SAFETY: a barrier only.
    unsafe { core::arch::asm!("dsb ish", options(nostack, preserves_flags)) };
    let me = crate::smp::this_index();
    crate::smp::online().any(|c| {
        c.id() != me
            && c.active_root.load(core::sync::atomic::Ordering::SeqCst) == root.start_address.0
    })
}

/// Drops the kernel-half translations every other CPU may cache (after a batch of
/// kernel unmaps flushed here page by page): one broadcast flush.
pub fn flush_kernel_everywhere() {
    flush_all();
}

/// Makes sure no other CPU runs on the user table `root` any more (before it is
/// torn down): those that do switch TTBR0 to the kernel's root (see
/// [`crate::smp::retire_root`]).
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

/// Invalidates all translations of this VM (all CPUs).
pub fn flush_all() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "tlbi vmalle1is",
            "dsb ish",
            "isb",
            options(nostack)
        )
    };
}

/// The kernel's page tables as the walker sees them.
pub type KernelTable = crate::memory::paging::ArmLpaePageTable;

/// The active tables (TTBR1's root), for mapping into the kernel half; `None` before
/// the MMU is on.
pub fn kernel_table() -> Option<KernelTable> {
    use crate::memory::frame_allocator::GlobalFrames;
    active_root().map(|root| KernelTable::from_root(root, GlobalFrames))
}

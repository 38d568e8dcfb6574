//! The host's "CR3": which page-table root is active. The host has no MMU and no TLB,
//! so flushes are no-ops; translation is done by software walks of the same tables.

use crate::memory::PhysFrame;
use spin::Mutex;

static ACTIVE_ROOT: Mutex<Option<PhysFrame>> = Mutex::new(None);

/// The active root table, if one has been installed.
pub fn active_root() -> Option<PhysFrame> {
    *ACTIVE_ROOT.lock()
}

/// Installs `root` as the active root table.
pub fn set_active_root(root: PhysFrame) {
    *ACTIVE_ROOT.lock() = Some(root);
}

/// Invalidates the TLB entry of one page (nothing to do on the host).
pub fn flush_page(_addr: crate::memory::VirtAddr) {}

/// Invalidates all non-global TLB entries (nothing to do on the host).
pub fn flush_all() {}

/// Invalidates one page of the table `root` on every CPU (nothing to do on the host).
pub fn flush_page_everywhere(_root: PhysFrame, _addr: crate::memory::VirtAddr) {}

/// The host has no TLB.
pub fn flush_root_everywhere(_root: PhysFrame) {}

/// Makes sure no CPU runs on the table `root` any more (the host has one CPU).
pub fn retire_root(_root: PhysFrame) {}

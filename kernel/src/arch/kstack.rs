//! Kernel stacks on bare metal (both architectures): each in its own 64 KiB slot of a
//! dedicated region of the kernel half, mapped page by page from the frame allocator,
//! with the slot's lowest page left unmapped as a guard, so an overflow faults (and is
//! reported) instead of corrupting memory. Each arch re-exports this module as
//! `arch::<name>::stack` and supplies `paging::kernel_table()`.
//!
//! The region's root slot got its table from `populate_upper_half` at boot, so stacks
//! mapped here are visible in every address space that shares the kernel half.
//!
//! Freed stacks are kept mapped, up to [`CACHED_STACKS`], and handed out again as
//! they are: reusing one needs neither frames nor page-table changes, and freeing
//! one needs no TLB shootdown (a mapping that stays may stay in every CPU's TLB).
//! Unmapping does need one, to every CPU, and a fork+exit on 2 CPUs paid an IPI
//! round trip for each child's stack; Linux keeps freed vmap stacks cached per CPU
//! for the same reason. A frame balance gives them back first ([`drain_cache`]).
//!
//! ## Locks
//! `SLOTS` (the free slots and the cache) is also held while the region's page tables change:
//! they are every CPU's, and two CPUs mapping into the same table at once could
//! each add an intermediate table and lose the other's.

use super::paging::{kernel_table, KernelTable};
use crate::memory::frame_allocator;
use crate::memory::paging::{PageFlags, PageTableMapper};
use crate::memory::{Page, VirtAddr, PAGE_SIZE};
use crate::sync::IrqMutex;
use alloc::vec::Vec;

/// First address of the stack region (root-table slot 508, in the kernel half).
pub const STACK_REGION: u64 = 0xffff_fe00_0000_0000;
/// Bytes of address space per stack (guard page included).
pub const SLOT_SIZE: u64 = 64 * 1024;
/// Most stacks at once.
pub const MAX_STACKS: u64 = 1 << 20;
/// Default kernel stack size.
pub const DEFAULT_STACK_SIZE: u64 = 32 * 1024;

/// Why a stack could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// Size 0 or more than a slot minus its guard page.
    BadSize(u64),
    /// No frame or no slot left, or no active table.
    OutOfMemory,
}

/// A mapped kernel stack; give it back with [`free`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelStack {
    /// Lowest mapped byte (the guard page is just below).
    pub bottom: VirtAddr,
    /// One past the highest byte: the initial stack pointer.
    pub top: VirtAddr,
}

/// Freed stacks kept mapped for reuse, at most.
pub const CACHED_STACKS: usize = 16;

/// A freed stack still mapped: its slot and its mapped pages.
#[derive(Clone, Copy)]
struct Cached {
    slot: u64,
    pages: u64,
}

struct Slots {
    next: u64,
    free: Vec<u64>,
    /// `cached[..cached_len]`: freed stacks still mapped, newest last.
    cached: [Cached; CACHED_STACKS],
    cached_len: usize,
}

static SLOTS: IrqMutex<Slots> = IrqMutex::new(Slots {
    next: 0,
    free: Vec::new(),
    cached: [Cached { slot: 0, pages: 0 }; CACHED_STACKS],
    cached_len: 0,
});

impl Slots {
    /// A cached stack of exactly `pages` pages, taken out of the cache.
    fn take_cached(&mut self, pages: u64) -> Option<u64> {
        let i = self.cached[..self.cached_len]
            .iter()
            .rposition(|c| c.pages == pages)?;
        let slot = self.cached[i].slot;
        self.cached_len -= 1;
        self.cached[i] = self.cached[self.cached_len];
        Some(slot)
    }

    /// Keeps the stack mapped in the cache, if there is room.
    fn cache(&mut self, slot: u64, pages: u64) -> bool {
        if self.cached_len == CACHED_STACKS {
            return false;
        }
        self.cached[self.cached_len] = Cached { slot, pages };
        self.cached_len += 1;
        true
    }
}

/// Unmaps the stacks kept for reuse and gives their frames (and the page tables
/// only they needed) back, with one shootdown: what a frame balance does first.
pub fn drain_cache() {
    let mut slots = SLOTS.lock();
    if slots.cached_len == 0 {
        return;
    }
    let Some(mut table) = kernel_table() else {
        return;
    };
    while slots.cached_len > 0 {
        slots.cached_len -= 1;
        let Cached { slot, pages } = slots.cached[slots.cached_len];
        let bottom = stack_in(slot, pages).bottom.as_u64();
        unmap_pages(&mut table, bottom, pages);
        slots.free.push(slot);
    }
}

/// How many freed stacks are kept mapped for reuse.
pub fn cached_stacks() -> usize {
    SLOTS.lock().cached_len
}

fn stack_in(slot: u64, pages: u64) -> KernelStack {
    let top = STACK_REGION + (slot + 1) * SLOT_SIZE;
    KernelStack {
        bottom: VirtAddr::new(top - pages * PAGE_SIZE),
        top: VirtAddr::new(top),
    }
}

fn take_slot(s: &mut Slots) -> Option<u64> {
    if let Some(slot) = s.free.pop() {
        return Some(slot);
    }
    (s.next < MAX_STACKS).then(|| {
        s.next += 1;
        s.next - 1
    })
}

/// Maps a stack of `size` bytes (rounded up to pages) below a guard page.
pub fn allocate(size: u64) -> Result<KernelStack, StackError> {
    let pages = size.div_ceil(PAGE_SIZE);
    if pages == 0 || pages > SLOT_SIZE / PAGE_SIZE - 1 {
        return Err(StackError::BadSize(size));
    }
    // Held while the region's tables change: every CPU shares them, and two
    // walkers adding or freeing the same intermediate table would lose a mapping.
    let mut slots = SLOTS.lock();
    if let Some(slot) = slots.take_cached(pages) {
        return Ok(stack_in(slot, pages));
    }
    let mut table = kernel_table().ok_or(StackError::OutOfMemory)?;
    let slot = take_slot(&mut slots).ok_or(StackError::OutOfMemory)?;
    let top = STACK_REGION + (slot + 1) * SLOT_SIZE;
    let bottom = top - pages * PAGE_SIZE;
    let flags = PageFlags::WRITABLE | PageFlags::NO_EXECUTE | PageFlags::GLOBAL;
    for i in 0..pages {
        let page = Page::containing_address(VirtAddr::new(bottom + i * PAGE_SIZE));
        let mapped = frame_allocator::allocate_frame()
            .map_err(|_| StackError::OutOfMemory)
            .and_then(|f| {
                table.map_to(page, f, flags).map_err(|_| {
                    let _ = frame_allocator::deallocate_frame(f);
                    StackError::OutOfMemory
                })
            });
        match mapped {
            Ok(flush) => flush.flush_local(),
            Err(e) => {
                unmap_pages(&mut table, bottom, i);
                slots.free.push(slot);
                return Err(e);
            }
        }
    }
    Ok(stack_in(slot, pages))
}

/// Unmaps the stack's pages, makes every CPU forget them with one shootdown, then
/// gives their frames back (a slot holds at most `SLOT_SIZE / PAGE_SIZE` pages).
fn unmap_pages(table: &mut KernelTable, bottom: u64, pages: u64) {
    const MOST: usize = (SLOT_SIZE / PAGE_SIZE) as usize;
    let mut frames = [None; MOST];
    for (i, slot) in frames.iter_mut().enumerate().take(pages as usize) {
        let page = Page::containing_address(VirtAddr::new(bottom + i as u64 * PAGE_SIZE));
        if let Ok((frame, flush)) = table.unmap(page) {
            flush.flush_local();
            *slot = Some(frame);
        }
    }
    super::paging::flush_kernel_everywhere();
    for frame in frames.into_iter().flatten() {
        let _ = frame_allocator::deallocate_frame(frame);
    }
}

/// Gives `stack` back: kept mapped in the cache if there is room, else unmapped
/// (its frames and slot given back). The stack must not be in use.
pub fn free(stack: KernelStack) {
    let (bottom, top) = (stack.bottom.as_u64(), stack.top.as_u64());
    if bottom < STACK_REGION || top <= bottom || !(top - STACK_REGION).is_multiple_of(SLOT_SIZE) {
        return;
    }
    let (slot, pages) = (
        (top - STACK_REGION) / SLOT_SIZE - 1,
        (top - bottom) / PAGE_SIZE,
    );
    let mut slots = SLOTS.lock();
    if slots.cache(slot, pages) {
        return;
    }
    let Some(mut table) = kernel_table() else {
        return;
    };
    unmap_pages(&mut table, bottom, pages);
    slots.free.push(slot);
}

/// Writes `value` at the top of `stack` (the highest `size_of::<T>()` bytes, rounded
/// down to 16) and returns its address: the trap frame a new user thread starts from.
pub fn place_at_top<T: Copy>(stack: &KernelStack, value: T) -> u64 {
    let size = core::mem::size_of::<T>() as u64;
    let at = (stack.top.as_u64() - size) & !15;
    assert!(at >= stack.bottom.as_u64(), "value larger than the stack");
    // SAFETY: `[at, at + size)` lies inside the mapped stack (checked above), 16-byte
    // aligned (enough for any trap frame), and nothing runs on the stack yet.
    unsafe { core::ptr::write(at as *mut T, value) };
    at
}

//! The kernel heap: size-class slabs for small objects, whole frame blocks for large
//! ones, all memory taken from the frame allocator on demand and given back when
//! unused.
//!
//! ## Layout
//! * Requests up to [`MAX_SMALL`] bytes (and alignment up to 64) are served from
//!   *slabs*: 16 KiB blocks (order 2, aligned to 16 KiB) cut into objects of one
//!   size class. A slab starts with a [`SlabHeader`]; the header of any object is
//!   found by rounding its address down to 16 KiB, so freeing needs no search.
//! * Each class keeps a doubly linked list of slabs that have free objects; each slab
//!   keeps its own free list (links stored in the free objects). Allocation pops from
//!   the first partial slab; freeing pushes back and, when a slab becomes empty and
//!   the class already caches one empty slab, returns its frames.
//! * Larger requests take a block of 2^k frames straight from the frame allocator.
//!
//! Every operation is O(1). Exhaustion is reported as [`HeapError::Exhausted`] (and as
//! a null pointer through `GlobalAlloc`), never a panic.
//!
//! On bare metal [`GlobalHeap`] is the `#[global_allocator]`; on the host the same
//! [`KernelHeap`] is an ordinary value that tests create over private RAM.

use super::addr::{PhysFrame, VirtAddr, PAGE_SIZE};
use super::frame_allocator::{FrameError, FrameSource, HeapFrames, MAX_ORDER};
use super::phys::phys_to_virt;
use crate::sync::IrqMutex;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

/// Object sizes of the slab classes; all multiples of 16.
const CLASSES: [usize; 14] = [
    16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
];
/// Largest request served from slabs.
pub const MAX_SMALL: usize = 2048;
/// Largest alignment served from slabs.
const MAX_SMALL_ALIGN: usize = 64;
const SLAB_ORDER: u8 = 2;
const SLAB_BYTES: usize = (PAGE_SIZE as usize) << SLAB_ORDER;
/// Bytes reserved at the start of a slab for its header (keeps objects 64-aligned).
const HEADER_BYTES: usize = 64;

/// Why an allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapError {
    /// The frame allocator has no memory left for the heap to grow.
    Exhausted,
    /// The request is larger than the largest frame block or its alignment is too big.
    Unsupported,
    /// The heap has not been initialised (global heap only).
    Uninitialised,
}

impl From<FrameError> for HeapError {
    fn from(_: FrameError) -> Self {
        HeapError::Exhausted
    }
}

/// Start of every slab. Lives in the slab's first [`HEADER_BYTES`].
#[repr(C)]
struct SlabHeader {
    class: usize,
    in_use: usize,
    /// First free object of this slab, or null.
    free: *mut u8,
    /// Neighbours in the class's list of partial slabs.
    next: *mut SlabHeader,
    prev: *mut SlabHeader,
    /// Whether the slab is on that list.
    listed: bool,
}

/// What the heap holds, for tests, benchmarks and leak accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Frames held in slabs (used or cached).
    pub slab_frames: u64,
    /// Frames held by large allocations.
    pub large_frames: u64,
    /// Bytes handed out and not yet freed (as requested).
    pub bytes_in_use: u64,
}

/// The heap allocator over a [`FrameSource`]. See the module documentation.
pub struct KernelHeap<S: FrameSource> {
    source: S,
    partial: [*mut SlabHeader; CLASSES.len()],
    /// One empty slab kept per class so alloc/free at a boundary does not thrash.
    cached_empty: [*mut SlabHeader; CLASSES.len()],
    stats: HeapStats,
}

// SAFETY: the raw pointers point into frames this heap owns exclusively; moving the
// heap to another thread moves that ownership with it.
unsafe impl<S: FrameSource + Send> Send for KernelHeap<S> {}

/// Class index for each size in 16-byte steps: `CLASS_OF[(size + 15) / 16]` is the
/// smallest class that holds `size` bytes.
const CLASS_OF: [u8; MAX_SMALL / 16 + 1] = {
    let mut table = [0u8; MAX_SMALL / 16 + 1];
    let (mut i, mut c) = (0, 0);
    while i < table.len() {
        while CLASSES[c] < i * 16 {
            c += 1;
        }
        table[i] = c as u8;
        i += 1;
    }
    table
};

/// The slab class for `layout`, or `None` if it goes to whole frames. O(1): the size
/// is rounded up to the alignment first; every class at or above a multiple of 32
/// (64) is itself a multiple of 32 (64), so the class found is suitably aligned.
#[inline]
fn class_for(layout: Layout) -> Option<usize> {
    let align = layout.align();
    if align > MAX_SMALL_ALIGN {
        return None;
    }
    let size = (layout.size().max(1) + align - 1) & !(align - 1);
    if size > MAX_SMALL {
        return None;
    }
    Some(CLASS_OF[size.div_ceil(16)] as usize)
}

fn large_order(layout: Layout) -> Option<u8> {
    let bytes = layout.size().max(layout.align()) as u64;
    let frames = bytes.div_ceil(PAGE_SIZE).next_power_of_two();
    let order = frames.trailing_zeros() as u8;
    (order <= MAX_ORDER).then_some(order)
}

fn frame_ptr(frame: PhysFrame) -> *mut u8 {
    phys_to_virt(frame.start_address).as_mut_ptr()
}

fn ptr_frame(p: *mut u8) -> Option<PhysFrame> {
    let virt = VirtAddr::try_new(p as u64).ok()?;
    let base = crate::arch::phys::window_base();
    let phys = virt.as_u64().checked_sub(base)?;
    Some(PhysFrame::containing_address(super::addr::PhysAddr(phys)))
}

impl<S: FrameSource> KernelHeap<S> {
    /// An empty heap that will grow from `source`.
    pub const fn new(source: S) -> Self {
        KernelHeap {
            source,
            partial: [ptr::null_mut(); CLASSES.len()],
            cached_empty: [ptr::null_mut(); CLASSES.len()],
            stats: HeapStats {
                slab_frames: 0,
                large_frames: 0,
                bytes_in_use: 0,
            },
        }
    }

    /// What the heap holds now.
    pub fn stats(&self) -> HeapStats {
        self.stats
    }

    /// Allocates memory for `layout`.
    pub fn alloc(&mut self, layout: Layout) -> Result<NonNull<u8>, HeapError> {
        let p = match class_for(layout) {
            Some(class) => self.alloc_small(class)?,
            None => self.alloc_large(layout)?,
        };
        self.stats.bytes_in_use += layout.size() as u64;
        Ok(p)
    }

    /// Frees memory from [`alloc`](Self::alloc).
    ///
    /// # Safety
    /// `ptr` must come from `self.alloc(layout)` with the same `layout`, and must not
    /// have been freed since.
    pub unsafe fn dealloc(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.stats.bytes_in_use -= layout.size() as u64;
        match class_for(layout) {
            // SAFETY: forwarded from our caller.
            Some(_) => unsafe { self.free_small(ptr.as_ptr()) },
            None => self.free_large(ptr.as_ptr(), layout),
        }
    }

    fn alloc_large(&mut self, layout: Layout) -> Result<NonNull<u8>, HeapError> {
        let order = large_order(layout).ok_or(HeapError::Unsupported)?;
        if layout.align() as u64 > PAGE_SIZE << order {
            return Err(HeapError::Unsupported);
        }
        let frame = self.source.alloc_frames(order)?;
        self.stats.large_frames += 1 << order;
        NonNull::new(frame_ptr(frame)).ok_or(HeapError::Exhausted)
    }

    fn free_large(&mut self, p: *mut u8, layout: Layout) {
        if let (Some(order), Some(frame)) = (large_order(layout), ptr_frame(p)) {
            if self.source.free_frames(frame, order).is_ok() {
                self.stats.large_frames -= 1 << order;
            }
        }
    }

    fn alloc_small(&mut self, class: usize) -> Result<NonNull<u8>, HeapError> {
        if self.partial[class].is_null() {
            let slab = self.new_slab(class)?;
            self.push_partial(class, slab);
        }
        let slab = self.partial[class];
        // SAFETY: slabs on the partial list are live slabs of this heap with at least
        // one free object; the object's first word holds the next free pointer.
        unsafe {
            let obj = (*slab).free;
            (*slab).free = *(obj as *mut *mut u8);
            (*slab).in_use += 1;
            if (*slab).free.is_null() {
                self.unlink_partial(class, slab);
            }
            if self.cached_empty[class] == slab {
                self.cached_empty[class] = ptr::null_mut();
            }
            NonNull::new(obj).ok_or(HeapError::Exhausted)
        }
    }

    /// # Safety
    /// `obj` is a live object of a slab of this heap.
    unsafe fn free_small(&mut self, obj: *mut u8) {
        let slab = (obj as usize & !(SLAB_BYTES - 1)) as *mut SlabHeader;
        // SAFETY: the caller guarantees `obj` lies in one of our slabs, whose header
        // sits at the 16 KiB boundary below it.
        unsafe {
            let class = (*slab).class;
            *(obj as *mut *mut u8) = (*slab).free;
            (*slab).free = obj;
            (*slab).in_use -= 1;
            if !(*slab).listed {
                self.push_partial(class, slab);
            }
            if (*slab).in_use == 0 {
                self.retire_empty(class, slab);
            }
        }
    }

    /// Keeps one empty slab per class; returns the frames of any other.
    ///
    /// # Safety
    /// `slab` is a live, empty, listed slab of class `class`.
    unsafe fn retire_empty(&mut self, class: usize, slab: *mut SlabHeader) {
        let cached = self.cached_empty[class];
        if cached.is_null() {
            self.cached_empty[class] = slab;
            return;
        }
        self.unlink_partial(class, slab);
        if let Some(frame) = ptr_frame(slab as *mut u8) {
            if self.source.free_frames(frame, SLAB_ORDER).is_ok() {
                self.stats.slab_frames -= 1 << SLAB_ORDER;
            }
        }
    }

    fn new_slab(&mut self, class: usize) -> Result<*mut SlabHeader, HeapError> {
        let frame = self.source.alloc_frames(SLAB_ORDER)?;
        self.stats.slab_frames += 1 << SLAB_ORDER;
        let base = frame_ptr(frame);
        let size = CLASSES[class];
        let count = (SLAB_BYTES - HEADER_BYTES) / size;
        // SAFETY: the 16 KiB block is ours and mapped through the physical window;
        // the header and every object lie inside it.
        unsafe {
            let mut free = ptr::null_mut();
            for i in (0..count).rev() {
                let obj = base.add(HEADER_BYTES + i * size);
                *(obj as *mut *mut u8) = free;
                free = obj;
            }
            let slab = base as *mut SlabHeader;
            slab.write(SlabHeader {
                class,
                in_use: 0,
                free,
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                listed: false,
            });
            Ok(slab)
        }
    }

    fn push_partial(&mut self, class: usize, slab: *mut SlabHeader) {
        let head = self.partial[class];
        // SAFETY: `slab` and `head` (if any) are live slab headers of this heap.
        unsafe {
            (*slab).next = head;
            (*slab).prev = ptr::null_mut();
            (*slab).listed = true;
            if !head.is_null() {
                (*head).prev = slab;
            }
        }
        self.partial[class] = slab;
    }

    fn unlink_partial(&mut self, class: usize, slab: *mut SlabHeader) {
        // SAFETY: `slab` is a listed slab header; its neighbours are live headers.
        unsafe {
            let (next, prev) = ((*slab).next, (*slab).prev);
            if prev.is_null() {
                self.partial[class] = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*slab).listed = false;
        }
        if self.cached_empty[class] == slab {
            self.cached_empty[class] = ptr::null_mut();
        }
    }
}

/// The kernel's heap; `None` until [`init_heap`].
pub static KERNEL_HEAP: IrqMutex<Option<KernelHeap<HeapFrames>>> = IrqMutex::new(None);

/// Sets up the kernel heap over the global frame allocator. It grows on demand, so
/// this takes no memory yet. Calling it again keeps the existing heap.
pub fn init_heap() {
    let mut heap = KERNEL_HEAP.lock();
    if heap.is_none() {
        *heap = Some(KernelHeap::new(HeapFrames));
    }
}

/// Statistics of the global heap (all zero before [`init_heap`]).
pub fn heap_stats() -> HeapStats {
    KERNEL_HEAP
        .lock()
        .as_ref()
        .map(|h| h.stats())
        .unwrap_or_default()
}

/// Allocates from the global heap.
pub fn allocate(layout: Layout) -> Result<NonNull<u8>, HeapError> {
    KERNEL_HEAP
        .lock()
        .as_mut()
        .ok_or(HeapError::Uninitialised)?
        .alloc(layout)
}

/// The global heap as a `GlobalAlloc`: the `#[global_allocator]` on bare metal.
pub struct GlobalHeap;

// SAFETY: `alloc` returns memory of at least `layout.size()` bytes aligned to
// `layout.align()` that no one else uses, or null; `dealloc` takes back exactly that.
unsafe impl GlobalAlloc for GlobalHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        allocate(layout)
            .map(NonNull::as_ptr)
            .unwrap_or(ptr::null_mut())
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if let (Some(heap), Some(p)) = (KERNEL_HEAP.lock().as_mut(), NonNull::new(p)) {
            // SAFETY: GlobalAlloc's contract: `p` came from `alloc` with `layout`.
            unsafe { heap.dealloc(p, layout) };
        }
    }
}

#[cfg(test)]
mod tests;

//! Frames shared between address spaces.
//!
//! * [`SharedObject`]: the memory behind a `MAP_SHARED` anonymous mapping. It owns its
//!   frames (one per page index, allocated on first touch). Every region that maps it
//!   holds an `Arc`; the frames go back to the allocator when the last region is
//!   dropped ([`release_object`]). Mappings never own these frames. A page no region
//!   covers any more (after a partial munmap) stays until the object dies, as Linux
//!   keeps the pages of a shmem object.
//! * [`CowRefs`]: owner counts of *private* frames shared copy-on-write after fork.
//!   One table is shared (by `Arc`) by an address space and all its fork descendants.
//!   A frame absent from the table has exactly one owner; present, it has `count >= 2`.
//!
//! Lock rules: each structure has its own [`IrqMutex`]; they are leaves (nothing else
//! is locked while one is held, except the frame allocator inside `FrameSource`).

use crate::memory::frame_allocator::{FrameError, FrameSource};
use crate::memory::{phys, PhysFrame};
use crate::sync::IrqMutex;
use alloc::collections::btree_map::Entry;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;

/// The pages of one shared anonymous mapping.
pub struct SharedObject {
    /// Page index within the object -> its frame.
    pages: IrqMutex<BTreeMap<u64, PhysFrame>>,
}

impl core::fmt::Debug for SharedObject {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SharedObject({} pages)", self.pages.lock().len())
    }
}

impl SharedObject {
    /// An empty object.
    pub fn new() -> Arc<Self> {
        Arc::new(SharedObject {
            pages: IrqMutex::new(BTreeMap::new()),
        })
    }

    /// The frame of page `index`, allocated and zeroed on first use.
    pub fn frame(
        &self,
        index: u64,
        source: &mut impl FrameSource,
    ) -> Result<PhysFrame, FrameError> {
        let mut pages = self.pages.lock();
        if let Some(f) = pages.get(&index) {
            return Ok(*f);
        }
        let frame = zeroed_frame(source)?;
        pages.insert(index, frame);
        Ok(frame)
    }

    /// Number of pages allocated so far.
    pub fn resident(&self) -> usize {
        self.pages.lock().len()
    }
}

/// Drops one region's reference to `obj`; the last reference frees every frame.
pub fn release_object(obj: Arc<SharedObject>, source: &mut impl FrameSource) {
    if let Ok(last) = Arc::try_unwrap(obj) {
        let pages = core::mem::take(&mut *last.pages.lock());
        for frame in pages.into_values() {
            let _ = source.free_frame(frame);
        }
    }
}

/// A frame from `source`, zero-filled.
pub fn zeroed_frame(source: &mut impl FrameSource) -> Result<PhysFrame, FrameError> {
    let frame = source.alloc_frame()?;
    if phys::zero_frame(frame).is_err() {
        let _ = source.free_frame(frame);
        return Err(FrameError::OutsideWindow(frame.start_address));
    }
    Ok(frame)
}

/// Drops one owner of `frame` from `counts`; whether it was the last.
fn drop_owner(counts: &mut BTreeMap<PhysFrame, u32>, frame: PhysFrame) -> bool {
    // One search through the entry (a look-up, then a remove, was two).
    match counts.entry(frame) {
        Entry::Vacant(_) => true,
        Entry::Occupied(c) if *c.get() <= 2 => {
            c.remove();
            false
        }
        Entry::Occupied(mut c) => {
            *c.get_mut() -= 1;
            false
        }
    }
}

/// Owner counts of private frames shared by fork.
pub struct CowRefs {
    counts: IrqMutex<BTreeMap<PhysFrame, u32>>,
}

impl core::fmt::Debug for CowRefs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CowRefs({} shared frames)", self.shared_frames())
    }
}

impl CowRefs {
    /// An empty table (every frame has one owner).
    pub fn new() -> Arc<Self> {
        Arc::new(CowRefs {
            counts: IrqMutex::new(BTreeMap::new()),
        })
    }

    /// Records one more owner of `frame`.
    pub fn share(&self, frame: PhysFrame) {
        let mut counts = self.counts.lock();
        let c = counts.entry(frame).or_insert(1);
        *c = c.saturating_add(1);
    }

    /// Number of owners of `frame` (1 if it is not shared).
    pub fn owners(&self, frame: PhysFrame) -> u32 {
        self.counts.lock().get(&frame).copied().unwrap_or(1)
    }

    /// Records one more owner of each of `frames`, under one lock (fork shares
    /// every private page at once: a lock per page was most of its cost here).
    pub fn share_all(&self, frames: impl Iterator<Item = PhysFrame>) {
        let mut counts = self.counts.lock();
        for frame in frames {
            let c = counts.entry(frame).or_insert(1);
            *c = c.saturating_add(1);
        }
    }

    /// Drops one owner; returns whether the caller was the last (and must free it).
    pub fn release(&self, frame: PhysFrame) -> bool {
        drop_owner(&mut self.counts.lock(), frame)
    }

    /// [`release`](Self::release) of each of `frames` under one lock (an exit
    /// gives back every private page at once); calls `last` with each frame the
    /// caller was the last owner of (it frees it: the frame allocator is the one
    /// lock that may be taken inside this one).
    pub fn release_all(
        &self,
        frames: impl Iterator<Item = PhysFrame>,
        mut last: impl FnMut(PhysFrame),
    ) {
        let mut counts = self.counts.lock();
        for frame in frames {
            if drop_owner(&mut counts, frame) {
                last(frame);
            }
        }
    }

    /// Number of frames currently shared.
    pub fn shared_frames(&self) -> usize {
        self.counts.lock().len()
    }
}

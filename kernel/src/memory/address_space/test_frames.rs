//! Test support: a private frame allocator over fresh simulated RAM, shareable (by
//! cloning the handle) between an address space, its page table and its children.

use crate::memory::frame_allocator::{FrameAllocator, FrameError, FrameSource};
use crate::memory::{phys, MemoryRegion, PhysFrame};
use alloc::sync::Arc;
use spin::Mutex;

/// A cloneable handle to a private allocator.
#[derive(Clone)]
pub struct TestFrames(Arc<Mutex<FrameAllocator>>);

impl TestFrames {
    /// An allocator over `mib` MiB of RAM nobody else uses.
    pub fn new(mib: u64) -> Self {
        let bytes = mib << 20;
        let start = phys::host_fresh_range(bytes);
        let mut fa = FrameAllocator::new();
        fa.add_region(MemoryRegion::new(start, bytes))
            .expect("fresh region");
        TestFrames(Arc::new(Mutex::new(fa)))
    }
    /// Free frames now.
    pub fn free(&self) -> u64 {
        self.0.lock().free_frames()
    }
}

impl FrameSource for TestFrames {
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError> {
        self.0.lock().allocate()
    }
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        self.0.lock().deallocate(frame)
    }
}

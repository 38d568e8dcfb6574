//! [`MemoryRegion`]: a range of usable RAM as the firmware reports it, tagged with the
//! NUMA node it belongs to.
#![deny(unsafe_code)]

use super::addr::PhysAddr;
use super::numa::NumaNode;

/// A contiguous range of usable physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First byte of the region.
    pub start: PhysAddr,
    /// Length in bytes.
    pub size: u64,
    /// NUMA node the memory belongs to (node 0 unless the firmware says otherwise).
    pub node: NumaNode,
}

impl MemoryRegion {
    /// A region of `size` bytes at `start` on node 0.
    pub const fn new(start: PhysAddr, size: u64) -> Self {
        MemoryRegion {
            start,
            size,
            node: NumaNode { id: 0 },
        }
    }
    /// The same region, on `node`.
    pub const fn on_node(self, node: NumaNode) -> Self {
        MemoryRegion { node, ..self }
    }
    /// One past the last byte (saturating).
    pub const fn end(&self) -> PhysAddr {
        PhysAddr(self.start.0.saturating_add(self.size))
    }
}

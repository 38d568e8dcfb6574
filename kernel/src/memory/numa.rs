//! NUMA topology: which nodes exist, how far apart they are, which memory and CPUs
//! each holds, and allocation close to the CPU that asks.
//!
//! ## What it owns
//! [`NumaTopology`] is plain data (fixed arrays, usable before the heap exists). The
//! global [`NUMA_TOPOLOGY`] is filled at boot from the firmware (ACPI SRAT/SLIT or the
//! device tree) or by hand, as the seed does.
//!
//! ## How allocation uses it
//! The frame allocator keeps one pool per node and, for each node, an order in which
//! to try the others. When a [`TopologyGuard`] is dropped, the topology is *published*
//! to the allocator: each node's fallback order (nearest first, by distance, ties by
//! id) and each CPU's node (which node's frames its magazine holds).
//! [`allocate_numa_local`] then takes only the allocator's locks (for one frame, the
//! CPU's magazine), so it can be called while the topology is locked (as the seed
//! does) and from contexts that must not wait for the topology.
//!
//! Distances follow ACPI SLIT conventions: 10 means local, larger is farther, and a
//! pair with no distance set counts as 10 (same node) or 20 (different nodes).
#![deny(unsafe_code)]

use super::addr::{PhysAddr, PhysFrame, PAGE_SIZE};
use super::frame_allocator::{
    FrameAllocator, FrameError, PerCpuFrames, FRAME_ALLOCATOR, MAX_CPUS, MAX_NODES,
};
use super::region::MemoryRegion;
use crate::sync::{IrqMutex, IrqMutexGuard};
use core::ops::{Deref, DerefMut};

/// A NUMA node, named by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NumaNode {
    /// The node's number (ACPI proximity domain or device-tree `numa-node-id`).
    pub id: u32,
}

/// Distance between a node and itself, as ACPI SLIT defines it.
pub const LOCAL_DISTANCE: u8 = 10;
/// Distance assumed between two different nodes when none was set.
pub const REMOTE_DISTANCE: u8 = 20;
/// Most memory ranges the topology records.
pub const MAX_RANGES: usize = 64;

/// Why a topology update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumaError {
    /// The node id is not below [`MAX_NODES`].
    BadNode(NumaNode),
    /// The node has not been added.
    UnknownNode(NumaNode),
    /// A node's distance to itself must be [`LOCAL_DISTANCE`]; to others, more.
    BadDistance(u8),
    /// The CPU number is not below [`MAX_CPUS`].
    BadCpu(u32),
    /// Already [`MAX_RANGES`] memory ranges.
    TooManyRanges,
}

/// Nodes, distances, memory ranges and CPUs. See the module documentation.
#[derive(Debug, Clone)]
pub struct NumaTopology {
    present: [bool; MAX_NODES],
    /// `0` means "not set": see [`NumaTopology::distance`].
    distance: [[u8; MAX_NODES]; MAX_NODES],
    ranges: [Option<MemoryRegion>; MAX_RANGES],
    cpu_node: [Option<u8>; MAX_CPUS],
}

impl Default for NumaTopology {
    fn default() -> Self {
        Self::new()
    }
}

impl NumaTopology {
    /// A topology with no nodes.
    pub const fn new() -> Self {
        NumaTopology {
            present: [false; MAX_NODES],
            distance: [[0; MAX_NODES]; MAX_NODES],
            ranges: [None; MAX_RANGES],
            cpu_node: [None; MAX_CPUS],
        }
    }

    fn index(node: NumaNode) -> Result<usize, NumaError> {
        let i = node.id as usize;
        if i < MAX_NODES {
            Ok(i)
        } else {
            Err(NumaError::BadNode(node))
        }
    }

    fn known(&self, node: NumaNode) -> Result<usize, NumaError> {
        let i = Self::index(node)?;
        if self.present[i] {
            Ok(i)
        } else {
            Err(NumaError::UnknownNode(node))
        }
    }

    /// Adds a node (adding it twice is harmless).
    pub fn add_node(&mut self, node: NumaNode) -> Result<(), NumaError> {
        let i = Self::index(node)?;
        self.present[i] = true;
        Ok(())
    }

    /// The nodes, by id.
    pub fn nodes(&self) -> impl Iterator<Item = NumaNode> + '_ {
        (0..MAX_NODES)
            .filter(|&i| self.present[i])
            .map(|i| NumaNode { id: i as u32 })
    }

    /// Sets the distance from `from` to `to` (one direction; SLIT may be asymmetric).
    pub fn set_distance(&mut self, from: NumaNode, to: NumaNode, d: u8) -> Result<(), NumaError> {
        let (f, t) = (self.known(from)?, self.known(to)?);
        let valid = if f == t {
            d == LOCAL_DISTANCE
        } else {
            d > LOCAL_DISTANCE
        };
        if !valid {
            return Err(NumaError::BadDistance(d));
        }
        self.distance[f][t] = d;
        Ok(())
    }

    /// The distance from `from` to `to`, or `None` if either node is unknown.
    pub fn distance(&self, from: NumaNode, to: NumaNode) -> Option<u8> {
        let (f, t) = (self.known(from).ok()?, self.known(to).ok()?);
        Some(match self.distance[f][t] {
            0 if f == t => LOCAL_DISTANCE,
            0 => REMOTE_DISTANCE,
            d => d,
        })
    }

    /// Records that `[start, start + size)` is memory of `node`.
    pub fn add_memory(
        &mut self,
        node: NumaNode,
        start: PhysAddr,
        size: u64,
    ) -> Result<(), NumaError> {
        self.known(node)?;
        let slot = self
            .ranges
            .iter_mut()
            .find(|r| r.is_none())
            .ok_or(NumaError::TooManyRanges)?;
        *slot = Some(MemoryRegion::new(start, size).on_node(node));
        Ok(())
    }

    /// The memory ranges of `node`.
    pub fn memory_of(&self, node: NumaNode) -> impl Iterator<Item = MemoryRegion> + '_ {
        self.ranges
            .iter()
            .flatten()
            .copied()
            .filter(move |r| r.node == node)
    }

    /// The node that holds physical address `addr`, if a range says so.
    pub fn node_of_addr(&self, addr: PhysAddr) -> Option<NumaNode> {
        self.ranges
            .iter()
            .flatten()
            .find(|r| addr >= r.start && addr < r.end())
            .map(|r| r.node)
    }

    /// Cuts `region` at node boundaries: each piece gets the node whose memory range
    /// holds it (node 0 where no range says). Writes up to `out.len()` pieces and
    /// returns how many.
    pub fn split_by_node(&self, region: MemoryRegion, out: &mut [MemoryRegion]) -> usize {
        let (mut at, end, mut n) = (region.start, region.end(), 0);
        while at < end && n < out.len() {
            let here = self
                .ranges
                .iter()
                .flatten()
                .find(|r| at >= r.start && at < r.end());
            let (stop, node) = match here {
                Some(r) => (r.end().min(end), r.node),
                None => {
                    let next = self
                        .ranges
                        .iter()
                        .flatten()
                        .map(|r| r.start)
                        .filter(|&s| s > at);
                    (next.min().unwrap_or(end).min(end), NumaNode { id: 0 })
                }
            };
            out[n] = MemoryRegion::new(at, stop - at).on_node(node);
            n += 1;
            at = stop;
        }
        n
    }

    /// Records that CPU `cpu` belongs to `node`.
    pub fn add_cpu(&mut self, cpu: u32, node: NumaNode) -> Result<(), NumaError> {
        let n = self.known(node)?;
        let slot = self
            .cpu_node
            .get_mut(cpu as usize)
            .ok_or(NumaError::BadCpu(cpu))?;
        *slot = Some(n as u8);
        Ok(())
    }

    /// The CPUs of `node`.
    pub fn cpus_of(&self, node: NumaNode) -> impl Iterator<Item = u32> + '_ {
        let want = node.id as u8;
        (0..MAX_CPUS as u32).filter(move |&c| self.cpu_node[c as usize] == Some(want))
    }

    /// The node of CPU `cpu` (node 0 for CPUs nobody placed).
    pub fn node_of_cpu(&self, cpu: u32) -> NumaNode {
        let id = self
            .cpu_node
            .get(cpu as usize)
            .copied()
            .flatten()
            .unwrap_or(0);
        NumaNode { id: id as u32 }
    }

    /// All known nodes ordered by distance from `node` (itself first, ties by id).
    /// Returns the array and how many entries are valid.
    pub fn fallback_order(&self, node: NumaNode) -> ([NumaNode; MAX_NODES], usize) {
        let mut out = [NumaNode::default(); MAX_NODES];
        let mut len = 0;
        for n in self.nodes() {
            out[len] = n;
            len += 1;
        }
        out[..len].sort_by_key(|&n| (self.distance(node, n).unwrap_or(u8::MAX), n != node, n.id));
        (out, len)
    }

    /// Installs this topology's fallback orders and CPU placement in `fa`.
    pub fn publish_to(&self, fa: &mut impl Placement) {
        for node in self.nodes() {
            let (order, len) = self.fallback_order(node);
            let _ = fa.set_fallback_order(node, &order[..len]);
        }
        for cpu in 0..MAX_CPUS as u32 {
            if self.cpu_node[cpu as usize].is_some() {
                let _ = fa.set_cpu_node(cpu, self.node_of_cpu(cpu));
            }
        }
    }
}

/// What a topology is published to: a frame allocator's fallback orders and CPU
/// placement (a plain [`FrameAllocator`], or the per-CPU one whose magazines must
/// follow their CPU's node).
pub trait Placement {
    /// Nodes to try for allocations near `node`, in order.
    fn set_fallback_order(&mut self, node: NumaNode, order: &[NumaNode]) -> Result<(), FrameError>;
    /// `cpu` sits on `node`.
    fn set_cpu_node(&mut self, cpu: u32, node: NumaNode) -> Result<(), FrameError>;
}

impl Placement for FrameAllocator {
    fn set_fallback_order(&mut self, node: NumaNode, order: &[NumaNode]) -> Result<(), FrameError> {
        FrameAllocator::set_fallback_order(self, node, order)
    }
    fn set_cpu_node(&mut self, cpu: u32, node: NumaNode) -> Result<(), FrameError> {
        FrameAllocator::set_cpu_node(self, cpu, node)
    }
}

impl Placement for &PerCpuFrames {
    fn set_fallback_order(&mut self, node: NumaNode, order: &[NumaNode]) -> Result<(), FrameError> {
        PerCpuFrames::set_fallback_order(self, node, order)
    }
    fn set_cpu_node(&mut self, cpu: u32, node: NumaNode) -> Result<(), FrameError> {
        PerCpuFrames::set_cpu_node(self, cpu, node)
    }
}

/// The global topology's lock. Its guard publishes the topology to the frame
/// allocator when dropped.
pub struct TopologyLock {
    inner: IrqMutex<NumaTopology>,
}

/// Access to the global topology; publishes it to the frame allocator on drop.
pub struct TopologyGuard<'a> {
    guard: IrqMutexGuard<'a, NumaTopology>,
}

impl TopologyLock {
    const fn new() -> Self {
        TopologyLock {
            inner: IrqMutex::new(NumaTopology::new()),
        }
    }
    /// Locks the topology.
    pub fn lock(&self) -> TopologyGuard<'_> {
        TopologyGuard {
            guard: self.inner.lock(),
        }
    }
}

impl Deref for TopologyGuard<'_> {
    type Target = NumaTopology;
    fn deref(&self) -> &NumaTopology {
        &self.guard
    }
}

impl DerefMut for TopologyGuard<'_> {
    fn deref_mut(&mut self) -> &mut NumaTopology {
        &mut self.guard
    }
}

impl Drop for TopologyGuard<'_> {
    fn drop(&mut self) {
        // Lock order: topology, then frame allocator (magazines, then the shared
        // lock). Nothing takes them the other way.
        self.guard.publish_to(&mut &FRAME_ALLOCATOR);
    }
}

/// The system's NUMA topology.
pub static NUMA_TOPOLOGY: TopologyLock = TopologyLock::new();

/// Memory from [`allocate_numa_local`]: 2^order contiguous frames on `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "memory from allocate_numa_local must be given back with free_numa_local"]
pub struct NumaAllocation {
    /// First frame of the block.
    pub frame: PhysFrame,
    /// The block holds 2^order frames.
    pub order: u8,
    /// The node the memory is on.
    pub node: NumaNode,
}

impl NumaAllocation {
    /// Size of the block in bytes (at least what was asked for).
    pub fn size(&self) -> u64 {
        PAGE_SIZE << self.order
    }
}

/// The smallest order whose block holds `size` bytes (at least one frame).
pub fn order_for(size: usize) -> u8 {
    let frames = (size as u64).div_ceil(PAGE_SIZE).max(1);
    frames.next_power_of_two().trailing_zeros() as u8
}

/// Allocates at least `size` bytes of physically contiguous memory on the calling
/// CPU's node, or on the nearest node with room.
/// Single frames come from the CPU's magazine, as the kernel's other allocations do.
pub fn allocate_numa_local(size: usize) -> Result<NumaAllocation, FrameError> {
    let order = order_for(size);
    let frame = FRAME_ALLOCATOR.allocate_order(order)?;
    let node = FRAME_ALLOCATOR.node_of(frame).unwrap_or_default();
    Ok(NumaAllocation { frame, order, node })
}

/// Gives back memory from [`allocate_numa_local`].
pub fn free_numa_local(mem: NumaAllocation) -> Result<(), FrameError> {
    FRAME_ALLOCATOR.deallocate_order(mem.frame, mem.order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: u32) -> NumaNode {
        NumaNode { id }
    }

    fn four_nodes() -> NumaTopology {
        // A ring: 0-1-2-3-0, neighbours at 20, opposite at 30.
        let mut t = NumaTopology::new();
        for i in 0..4 {
            t.add_node(n(i)).unwrap();
        }
        for a in 0..4u32 {
            for b in 0..4u32 {
                let d = match (a as i32 - b as i32).rem_euclid(4) {
                    0 => 10,
                    2 => 30,
                    _ => 20,
                };
                t.set_distance(n(a), n(b), d).unwrap();
            }
        }
        t
    }

    #[test]
    fn distances_and_defaults() {
        let mut t = NumaTopology::new();
        t.add_node(n(0)).unwrap();
        t.add_node(n(1)).unwrap();
        assert_eq!(t.distance(n(0), n(0)), Some(10));
        assert_eq!(t.distance(n(0), n(1)), Some(20));
        t.set_distance(n(0), n(1), 31).unwrap();
        assert_eq!(t.distance(n(0), n(1)), Some(31));
        assert_eq!(t.distance(n(1), n(0)), Some(20), "one direction only");
        assert_eq!(t.distance(n(0), n(5)), None);
    }

    #[test]
    fn bad_updates_are_refused() {
        let mut t = NumaTopology::new();
        t.add_node(n(0)).unwrap();
        assert_eq!(
            t.add_node(n(MAX_NODES as u32)),
            Err(NumaError::BadNode(n(MAX_NODES as u32)))
        );
        assert_eq!(
            t.set_distance(n(0), n(1), 20),
            Err(NumaError::UnknownNode(n(1)))
        );
        assert_eq!(
            t.set_distance(n(0), n(0), 20),
            Err(NumaError::BadDistance(20))
        );
        t.add_node(n(1)).unwrap();
        assert_eq!(
            t.set_distance(n(0), n(1), 10),
            Err(NumaError::BadDistance(10))
        );
        assert_eq!(
            t.add_cpu(MAX_CPUS as u32, n(0)),
            Err(NumaError::BadCpu(MAX_CPUS as u32))
        );
        assert_eq!(
            t.add_memory(n(3), PhysAddr(0), 4096),
            Err(NumaError::UnknownNode(n(3)))
        );
        assert_eq!(t.nodes().count(), 2);
    }

    #[test]
    fn fallback_is_nearest_first() {
        let t = four_nodes();
        let (order, len) = t.fallback_order(n(1));
        assert_eq!(&order[..len], &[n(1), n(0), n(2), n(3)]);
        let (order, len) = t.fallback_order(n(3));
        assert_eq!(&order[..len], &[n(3), n(0), n(2), n(1)]);
    }

    #[test]
    fn memory_and_cpus_per_node() {
        let mut t = four_nodes();
        t.add_memory(n(2), PhysAddr(0x1_0000_0000), 1 << 30)
            .unwrap();
        t.add_cpu(5, n(2)).unwrap();
        t.add_cpu(6, n(2)).unwrap();
        assert_eq!(t.memory_of(n(2)).count(), 1);
        assert_eq!(t.node_of_addr(PhysAddr(0x1_0000_1000)), Some(n(2)));
        assert_eq!(t.node_of_addr(PhysAddr(0x1000)), None);
        assert_eq!(t.cpus_of(n(2)).collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(t.node_of_cpu(5), n(2));
        assert_eq!(t.node_of_cpu(7), n(0));
    }

    #[test]
    fn regions_are_split_at_node_boundaries() {
        let mut t = four_nodes();
        t.add_memory(n(1), PhysAddr(0x1000), 0x1000).unwrap();
        t.add_memory(n(3), PhysAddr(0x3000), 0x2000).unwrap();
        let mut out = [MemoryRegion::new(PhysAddr(0), 0); 8];
        let k = t.split_by_node(MemoryRegion::new(PhysAddr(0x800), 0x4000), &mut out);
        let got: Vec<_> = out[..k]
            .iter()
            .map(|r| (r.start.0, r.size, r.node.id))
            .collect();
        assert_eq!(
            got,
            vec![
                (0x800, 0x800, 0),
                (0x1000, 0x1000, 1),
                (0x2000, 0x1000, 0),
                (0x3000, 0x1800, 3)
            ]
        );
    }

    /// Locality and fallback through a private allocator, the way the global
    /// facade does it: each CPU's allocations come from its node until it is full,
    /// then from the nearest node.
    #[test]
    fn published_topology_drives_allocation() {
        let t = {
            let mut t = four_nodes();
            t.add_cpu(0, n(0)).unwrap();
            t.add_cpu(3, n(3)).unwrap();
            t
        };
        let base = crate::memory::phys::host_fresh_range(64 << 20);
        let mut fa = FrameAllocator::new();
        for i in 0..4u64 {
            let r = MemoryRegion::new(base + i * (16 << 20), 4 << 20).on_node(n(i as u32));
            fa.add_region(r).unwrap();
        }
        t.publish_to(&mut fa);
        let local = fa.free_frames_on(n(3));
        let mut got = Vec::new();
        for _ in 0..local {
            let f = fa.allocate_near(t.node_of_cpu(3), 0).unwrap();
            assert_eq!(fa.node_of(f), Some(n(3)));
            got.push(f);
        }
        // Node 3 is full: nodes 0 and 2 are both at 20; 0 wins the tie by id.
        let next = fa.allocate_near(t.node_of_cpu(3), 0).unwrap();
        assert_eq!(fa.node_of(next), Some(n(0)));
        assert_eq!(order_for(1), 0);
        assert_eq!(order_for(4096), 0);
        assert_eq!(order_for(4097), 1);
        assert_eq!(order_for(1 << 21), 9);
    }
}

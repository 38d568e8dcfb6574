//! The physical frame allocator: a binary buddy allocator over many regions, with one
//! pool of free lists per NUMA node.
//!
//! ## What it owns
//! Every frame of every region handed to [`FrameAllocator::add_region`]. It is the
//! single source of truth about which frames are free; a [`PhysFrame`] value is only
//! a name.
//!
//! ## How
//! * Each region (a *zone*) keeps one state byte per frame in a metadata array carved
//!   from the start of the region itself (1 byte per 4 KiB, 0.02 %): so the allocator
//!   needs no heap and works before one exists, for 64 GiB as for 16 MiB.
//! * A state byte says: head of a free block of order k, head of an allocated block of
//!   order k, tail of a block, or reserved (the metadata itself).
//! * Free blocks of order k (2^k frames, aligned to 2^k frames *physically*, so 2 MiB
//!   blocks suit 2 MiB pages) sit on a doubly linked list per (node, order); the links
//!   live in the first 16 bytes of the free block.
//! * Allocation pops a list and splits; freeing merges with the buddy while the buddy
//!   is a free block of the same order. Both are O(MAX_ORDER); the smallest non-empty
//!   list is found in one step (a bit per list says whether it has blocks). Finding a
//!   frame's zone is a scan of up to 8 zones, a binary search over more (at most
//!   [`MAX_REGIONS`]).
//!
//! ## The per-node frame cache (the fast path of single frames)
//! Each node keeps up to [`CACHE_FRAMES`] free single frames in front of its buddy
//! lists, as a small array of *runs* (neighbouring frames of one zone), newest last:
//! * allocating one frame takes the low end of the newest run and marks the frame
//!   used (one state byte); freeing one checks its state byte (so double and foreign
//!   frees are refused as before), marks it *cached* and puts it at either end of the
//!   newest run if it fits there, else starts a run. Neither touches the buddy lists,
//!   the frame itself or a counter, and frames freed in the order they were handed
//!   out stay one run.
//! * An empty cache is refilled with up to [`CACHE_BATCH`] frames, a block at a time
//!   (each block one run, one unlink): the smallest block that holds a whole batch,
//!   split down to [`CACHE_BATCH`] frames, or else the smallest blocks there are.
//!   So a 2 MiB block is split only once no 1 MiB block is left; a refill never
//!   takes fragments one by one while a batch-sized block exists. The batch is large
//!   (256 frames) so that runs of many allocations, or frees, pay for a refill or a
//!   drain rarely: a batch of 1,000 single frames costs four of each, not thirty.
//! * A full cache gives its oldest [`CACHE_BATCH`] frames back, the oldest runs
//!   first, each as whole aligned blocks (then merged as usual).
//! * A larger block that cannot be found drains the node's cache and tries again;
//!   adding a region drains every cache (runs name their zone by index).
//! * Cached frames count as free ([`FrameAllocator::free_frames`] adds the cache
//!   lengths, so it stays exact) and are *not* allocated as far as frees go: their
//!   state byte says so.
//!
//! ## Per-CPU magazines in front (the kernel's global instance; locks)
//! [`FrameAllocator`] is a plain instance type (`&mut self`): whoever owns one
//! locks it. The global [`FRAME_ALLOCATOR`] is a [`PerCpuFrames`]: this allocator
//! behind one lock (the *shared* allocator), with a small magazine of free single
//! frames per CPU in front, touched without a lock by its own CPU (other CPUs
//! revoke it first; see [`percpu`]); a magazine also keeps a few free 2 MiB blocks
//! (taken from and given back to the buddy lists by `take_blocks`
//! and `put_blocks`). So the common single-frame path takes no lock
//! and no atomic read-modify-write; the node caches above become
//! the second tier, refilling and draining magazines a batch at a time. Frames in a
//! magazine are `CACHED` too and count as free.
//!
//! ## Errors, never corruption
//! Freeing a frame twice, a frame never handed out, a block with the wrong order or an
//! unaligned address is refused by looking at the state byte before anything changes.
//!
//! ## The heap's reserve
//! The global facade ([`allocate_frame`], [`allocate_frames`], [`GlobalFrames`]) leaves
//! [`set_heap_reserve`] frames free (frames in magazines count as free): only the
//! kernel heap ([`HeapFrames`]) may take them. So when user memory runs out, page faults, forks and mmaps fail with ENOMEM
//! while the kernel can still allocate the small objects it needs to clean up (an
//! allocation failure of the heap is a panic). The reserve is 0 unless set.
#![deny(unsafe_code)]

use super::addr::{PhysAddr, PhysFrame, PAGE_SIZE};
use super::numa::NumaNode;
use super::phys;
use super::region::MemoryRegion;
use core::sync::atomic::{AtomicU64, Ordering};

pub mod percpu;
pub use percpu::{PerCpuFrames, BLOCK_ORDER, MAGAZINE_BATCH, MAGAZINE_BLOCKS, MAGAZINE_FRAMES};

/// Largest block order: 2^18 frames = 1 GiB.
pub const MAX_ORDER: u8 = 18;
/// Most regions one allocator manages.
pub const MAX_REGIONS: usize = 64;
/// Most NUMA nodes.
pub const MAX_NODES: usize = 8;
/// Most CPUs whose node the allocator remembers.
pub const MAX_CPUS: usize = 64;

const ORDERS: usize = MAX_ORDER as usize + 1;
const NIL: u64 = u64::MAX;

// Per-frame state bytes. TAIL is 0 so zeroing the metadata marks everything as tail.
const TAIL: u8 = 0x00;
const RESERVED: u8 = 0xff;
const FREE: u8 = 0x80;
const USED: u8 = 0x40;
/// A single frame parked in its node's cache or a CPU's magazine: free, but not on a
/// buddy list.
const CACHED: u8 = 0x20;
// A block parked in a CPU's magazine has `CACHED | order` on its head (order > 0):
// neither FREE nor USED, so frees refuse it and merges pass it by.
const ORDER_MASK: u8 = 0x3f;
/// Single free frames each node keeps in its cache, at most (2 MiB).
pub const CACHE_FRAMES: usize = 512;
/// Frames a refill brings into the cache and a drain sends back, at most.
pub const CACHE_BATCH: usize = CACHE_FRAMES / 2;
/// Largest block a refill takes whole (2^REFILL_ORDER = [`CACHE_BATCH`] frames).
const REFILL_ORDER: u8 = CACHE_BATCH.trailing_zeros() as u8;
/// Up to this many zones, finding a frame's zone is a linear scan.
const LINEAR_ZONES: usize = 8;
const _: () = assert!(1 << REFILL_ORDER == CACHE_BATCH);
const _: () = assert!(ORDERS <= u32::BITS as usize);
const _: () = assert!(MAX_NODES <= u8::BITS as usize);

/// Why a frame operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No free block of the requested order on any allowed node.
    OutOfMemory,
    /// The address is not aligned to the block size.
    Unaligned(PhysAddr),
    /// The frame is not allocated: a double free, or a frame never handed out.
    NotAllocated(PhysAddr),
    /// The frame heads an allocated block of another order.
    WrongOrder {
        /// The block's address.
        addr: PhysAddr,
        /// The order it was allocated with.
        allocated: u8,
    },
    /// The order is above [`MAX_ORDER`].
    InvalidOrder(u8),
    /// The region overlaps one already managed.
    Overlap(PhysAddr),
    /// The region is too small to hold its own metadata and one frame.
    RegionTooSmall(PhysAddr),
    /// The region lies (partly) outside the physical-memory window.
    OutsideWindow(PhysAddr),
    /// Already [`MAX_REGIONS`] regions.
    TooManyRegions,
    /// The node id is not below [`MAX_NODES`].
    BadNode(NumaNode),
}

/// One region: frames `[first_pfn, end_pfn)`, metadata at `meta`.
#[derive(Clone, Copy)]
struct Zone {
    first_pfn: u64,
    end_pfn: u64,
    meta: PhysAddr,
    node: u8,
}

impl Zone {
    const EMPTY: Zone = Zone {
        first_pfn: 0,
        end_pfn: 0,
        meta: PhysAddr(0),
        node: 0,
    };

    fn state_addr(&self, pfn: u64) -> PhysAddr {
        PhysAddr(self.meta.0 + (pfn - self.first_pfn))
    }
}

/// A buddy allocator of physical frames; see the module documentation.
pub struct FrameAllocator {
    zones: [Zone; MAX_REGIONS],
    zone_count: usize,
    /// Head pfn of the free list of each (node, order), or `NIL`.
    heads: [[u64; ORDERS]; MAX_NODES],
    /// Per node, bit `o` set iff the list of order `o` is not empty (so the smallest
    /// usable list is one `trailing_zeros`, not a walk over the orders).
    nonempty: [u32; MAX_NODES],
    /// Free frames on each node's buddy lists (its cached frames are counted by the
    /// cache's length, so the fast path updates no counter).
    free: [u64; MAX_NODES],
    total: [u64; MAX_NODES],
    /// For each node, the nodes to try in order (itself first), `fallback_len` long.
    fallback: [[u8; MAX_NODES]; MAX_NODES],
    fallback_len: [u8; MAX_NODES],
    cpu_node: [u8; MAX_CPUS],
    /// The CPUs `set_cpu_node` placed, by bit (the others count as node 0's).
    cpus_placed: u64,
    /// Whether some CPU sits on a node other than 0 (else allocations skip asking
    /// which CPU runs).
    cpus_off_node0: bool,
    /// Bit `n` set iff node `n` has memory: the nodes a count visits (the shared
    /// allocator's count is taken at every unlock of the kernel's instance, and
    /// most machines have one node).
    nodes_with_memory: u8,
    /// Per node, free single frames parked in front of the buddy lists.
    caches: [FrameCache; MAX_NODES],
}

/// Free single frames of one node, as runs of neighbouring frames of one zone: a
/// refilled block is one run, and frames freed next to a run's ends join it. The
/// last run is the most recent: frames are taken from its low end, and join it at
/// either end. Every frame here has the state byte `CACHED`.
#[derive(Clone, Copy)]
struct FrameCache {
    runs: [Run; CACHE_FRAMES],
    /// Runs in use, oldest first.
    run_count: usize,
    /// Frames in all runs (at most [`CACHE_FRAMES`]).
    len: usize,
}

/// Frames `[start, start + len)` of zone `zone`.
#[derive(Clone, Copy)]
struct Run {
    start: u64,
    len: u32,
    zone: u32,
}

impl FrameCache {
    const EMPTY: FrameCache = FrameCache {
        runs: [Run {
            start: 0,
            len: 0,
            zone: 0,
        }; CACHE_FRAMES],
        run_count: 0,
        len: 0,
    };

    /// Takes the lowest frame of the newest run; returns it with its zone index.
    #[inline]
    fn pop(&mut self) -> Option<(u64, usize)> {
        let top = self.run_count.checked_sub(1)?;
        let run = &mut self.runs[top];
        let pfn = run.start;
        let zone = run.zone as usize;
        run.start += 1;
        run.len -= 1;
        if run.len == 0 {
            self.run_count = top;
        }
        self.len -= 1;
        Some((pfn, zone))
    }

    /// Adds the `n` frames from `pfn` of zone `zone` (the cache has room for them):
    /// at an end of the newest run if they continue it, else as a run of their own.
    fn push_run(&mut self, pfn: u64, n: u32, zone: usize) {
        self.len += n as usize;
        if let Some(top) = self.run_count.checked_sub(1) {
            let run = &mut self.runs[top];
            if run.zone as usize == zone {
                if pfn + n as u64 == run.start {
                    run.start = pfn;
                    run.len += n;
                    return;
                }
                if pfn == run.start + run.len as u64 {
                    run.len += n;
                    return;
                }
            }
        }
        self.runs[self.run_count] = Run {
            start: pfn,
            len: n,
            zone: zone as u32,
        };
        self.run_count += 1;
    }

    /// Adds frame `pfn` of zone `zone` (the cache is not full).
    #[inline]
    fn push(&mut self, pfn: u64, zone: usize) {
        self.len += 1;
        if let Some(top) = self.run_count.checked_sub(1) {
            let run = &mut self.runs[top];
            if run.zone as usize == zone {
                if pfn + 1 == run.start {
                    run.start = pfn;
                    run.len += 1;
                    return;
                }
                if pfn == run.start + run.len as u64 {
                    run.len += 1;
                    return;
                }
            }
        }
        self.runs[self.run_count] = Run {
            start: pfn,
            len: 1,
            zone: zone as u32,
        };
        self.run_count += 1;
    }
}

impl Default for FrameAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameAllocator {
    /// An allocator that manages nothing yet.
    pub const fn new() -> Self {
        let mut fallback = [[0u8; MAX_NODES]; MAX_NODES];
        let mut n = 0;
        while n < MAX_NODES {
            // Default order: own node, then the others by id.
            let mut i = 0;
            fallback[n][0] = n as u8;
            let mut k = 1;
            while i < MAX_NODES {
                if i != n {
                    fallback[n][k] = i as u8;
                    k += 1;
                }
                i += 1;
            }
            n += 1;
        }
        FrameAllocator {
            zones: [Zone::EMPTY; MAX_REGIONS],
            zone_count: 0,
            heads: [[NIL; ORDERS]; MAX_NODES],
            nonempty: [0; MAX_NODES],
            free: [0; MAX_NODES],
            total: [0; MAX_NODES],
            fallback,
            fallback_len: [MAX_NODES as u8; MAX_NODES],
            cpu_node: [0; MAX_CPUS],
            cpus_placed: 0,
            cpus_off_node0: false,
            nodes_with_memory: 0,
            caches: [FrameCache::EMPTY; MAX_NODES],
        }
    }

    /// Forgets every region and free frame, in place (the allocator is too big for a
    /// fresh one to be built on a kernel stack). The NUMA placement of CPUs and the
    /// fallback orders stay.
    pub fn forget_memory(&mut self) {
        self.zones.iter_mut().for_each(|z| *z = Zone::EMPTY);
        self.zone_count = 0;
        self.heads.iter_mut().for_each(|h| h.fill(NIL));
        self.nonempty = [0; MAX_NODES];
        self.free = [0; MAX_NODES];
        self.total = [0; MAX_NODES];
        self.nodes_with_memory = 0;
        for cache in &mut self.caches {
            cache.run_count = 0;
            cache.len = 0;
        }
    }

    /// Takes ownership of the RAM in `region` (rounded inwards to whole frames).
    /// The first frames of the region hold its metadata and are never handed out.
    pub fn add_region(&mut self, region: MemoryRegion) -> Result<(), FrameError> {
        let node = region.node.id as usize;
        if node >= MAX_NODES {
            return Err(FrameError::BadNode(region.node));
        }
        let first = region.start.align_up(PAGE_SIZE).0 / PAGE_SIZE;
        let end = region.end().align_down(PAGE_SIZE).0 / PAGE_SIZE;
        if region.end().0 > phys::limit() {
            return Err(FrameError::OutsideWindow(region.start));
        }
        let frames = end.saturating_sub(first);
        let meta_frames = frames.div_ceil(PAGE_SIZE);
        if frames <= meta_frames {
            return Err(FrameError::RegionTooSmall(region.start));
        }
        if self.zone_count == MAX_REGIONS {
            return Err(FrameError::TooManyRegions);
        }
        let pos = self.zones[..self.zone_count].partition_point(|z| z.first_pfn < first);
        let overlaps_prev = pos > 0 && self.zones[pos - 1].end_pfn > first;
        let overlaps_next = pos < self.zone_count && self.zones[pos].first_pfn < end;
        if overlaps_prev || overlaps_next {
            return Err(FrameError::Overlap(region.start));
        }
        let zone = Zone {
            first_pfn: first,
            end_pfn: end,
            meta: PhysAddr(first * PAGE_SIZE),
            node: node as u8,
        };
        phys::zero(zone.meta, frames).map_err(|_| FrameError::OutsideWindow(region.start))?;
        for pfn in first..first + meta_frames {
            self.set_state(&zone, pfn, RESERVED);
        }
        // Cache entries name zones by index, and the indices are about to shift.
        (0..MAX_NODES).for_each(|n| self.drain_cache(n));
        self.zones.copy_within(pos..self.zone_count, pos + 1);
        self.zones[pos] = zone;
        self.zone_count += 1;
        self.total[node] += frames - meta_frames;
        self.nodes_with_memory |= 1 << node;
        self.free_range(pos, first + meta_frames, end);
        Ok(())
    }

    /// Frees `[pfn, end)` of zone `zi` as the largest aligned blocks that fit.
    fn free_range(&mut self, zi: usize, mut pfn: u64, end: u64) {
        while pfn < end {
            let mut order = (pfn.trailing_zeros() as u8).min(MAX_ORDER);
            while pfn + (1 << order) > end {
                order -= 1;
            }
            let zone = self.zones[zi];
            self.set_state(&zone, pfn, FREE | order);
            self.push(zone.node as usize, order, pfn);
            self.free[zone.node as usize] += 1 << order;
            pfn += 1 << order;
        }
    }

    /// One frame, from the calling CPU's node or the nearest one with room.
    #[inline]
    pub fn allocate(&mut self) -> Result<PhysFrame, FrameError> {
        self.allocate_order(0)
    }

    /// 2^order contiguous frames aligned to 2^order frames, from the calling CPU's
    /// node or the nearest one with room. Returns the first frame.
    #[inline]
    pub fn allocate_order(&mut self, order: u8) -> Result<PhysFrame, FrameError> {
        let node = self.current_node();
        self.allocate_near(NumaNode { id: node as u32 }, order)
    }

    /// The node of the calling CPU.
    #[inline]
    fn current_node(&self) -> u8 {
        if !self.cpus_off_node0 {
            return 0;
        }
        let cpu = crate::arch::cpu::current_cpu_id() as usize;
        self.cpu_node.get(cpu).copied().unwrap_or(0)
    }

    /// 2^order frames from `node`, or else from the other nodes in its fallback order
    /// (nearest first).
    #[inline]
    pub fn allocate_near(&mut self, node: NumaNode, order: u8) -> Result<PhysFrame, FrameError> {
        let n = node.id as usize;
        if n >= MAX_NODES {
            return Err(FrameError::BadNode(node));
        }
        if order == 0 {
            if let Some(f) = self.pop_cached(n) {
                return Ok(f);
            }
        }
        self.allocate_fallback(n, order)
    }

    /// [`allocate_near`](Self::allocate_near) past the fast path.
    fn allocate_fallback(&mut self, n: usize, order: u8) -> Result<PhysFrame, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::InvalidOrder(order));
        }
        for i in 0..self.fallback_len[n] as usize {
            let candidate = self.fallback[n][i] as usize;
            if let Ok(f) = self.allocate_exact(candidate, order) {
                return Ok(f);
            }
        }
        Err(FrameError::OutOfMemory)
    }

    /// 2^order frames from `node` only.
    pub fn allocate_on(&mut self, node: NumaNode, order: u8) -> Result<PhysFrame, FrameError> {
        if node.id as usize >= MAX_NODES {
            return Err(FrameError::BadNode(node));
        }
        self.allocate_exact(node.id as usize, order)
    }

    fn allocate_exact(&mut self, node: usize, order: u8) -> Result<PhysFrame, FrameError> {
        if order > MAX_ORDER {
            return Err(FrameError::InvalidOrder(order));
        }
        if order == 0 {
            if self.caches[node].len == 0 {
                self.refill_cache(node);
            }
            return self.pop_cached(node).ok_or(FrameError::OutOfMemory);
        }
        let mut found = self.smallest_list(node, order);
        if found.is_none() && self.caches[node].len > 0 {
            // Cached frames may complete a larger block once merged back.
            self.drain_cache(node);
            found = self.smallest_list(node, order);
        }
        let o = found.ok_or(FrameError::OutOfMemory)?;
        let (zi, pfn) = self.take_block(node, o, order)?;
        self.set_state(&self.zones[zi], pfn, USED | order);
        self.free[node] -= 1 << order;
        Ok(PhysFrame::from_number(pfn))
    }

    /// The smallest order >= `order` whose free list on `node` is not empty.
    #[inline]
    fn smallest_list(&self, node: usize, order: u8) -> Option<u8> {
        let usable = self.nonempty[node] >> order;
        (usable != 0).then(|| order + usable.trailing_zeros() as u8)
    }

    /// Unlinks the first block of order `o` on `node` and splits it down to `order`,
    /// giving the upper halves back. Returns the block's zone index and first pfn; its
    /// state byte is the caller's to set.
    fn take_block(
        &mut self,
        node: usize,
        mut o: u8,
        order: u8,
    ) -> Result<(usize, u64), FrameError> {
        let pfn = self.heads[node][o as usize];
        self.unlink(node, o, pfn);
        let zi = self.zone_index(pfn).ok_or(FrameError::OutOfMemory)?;
        let zone = self.zones[zi];
        // Split: keep the lower half, give the upper half back at each step.
        while o > order {
            o -= 1;
            let upper = pfn + (1 << o);
            self.set_state(&zone, upper, FREE | o);
            self.push(node, o, upper);
        }
        Ok((zi, pfn))
    }

    /// Gives back one frame obtained from [`allocate`](Self::allocate).
    #[inline]
    pub fn deallocate(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        self.deallocate_order(frame, 0)
    }

    /// Gives back a block of 2^order frames obtained with the same order.
    #[inline]
    pub fn deallocate_order(&mut self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        if order == 0 && self.try_park(frame) {
            return Ok(());
        }
        self.deallocate_slow(frame, order)
    }

    /// The fast path of freeing one frame: if `frame` is an allocated single frame
    /// and its node's cache has room, caches it and says so; else changes nothing.
    #[inline]
    fn try_park(&mut self, frame: PhysFrame) -> bool {
        let pfn = frame.number();
        if !frame.start_address.is_aligned(PAGE_SIZE) {
            return false;
        }
        let Some(zi) = self.zone_index(pfn) else {
            return false;
        };
        let zone = &self.zones[zi];
        let node = zone.node as usize;
        let (w, at) = (phys::window(), zone.state_addr(pfn));
        if w.read_u8(at) != Ok(USED) || self.caches[node].len == CACHE_FRAMES {
            return false;
        }
        let _ = w.write_u8(at, CACHED);
        self.caches[node].push(pfn, zi);
        true
    }

    /// [`deallocate_order`](Self::deallocate_order) past the fast path: every check
    /// with its error, draining a full cache, merging blocks.
    #[inline(never)]
    fn deallocate_slow(&mut self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        let (zi, pfn) = self.check_allocated(frame, order)?;
        let node = self.zones[zi].node as usize;
        if order == 0 {
            self.park(node, zi, pfn);
        } else {
            self.free[node] += 1 << order;
            let zone = self.zones[zi];
            self.merge_and_push(&zone, pfn, order);
        }
        Ok(())
    }

    /// Checks that `frame` heads an allocated block of `order`; returns its zone index
    /// and pfn. Nothing changes.
    #[inline]
    fn check_allocated(&self, frame: PhysFrame, order: u8) -> Result<(usize, u64), FrameError> {
        let addr = frame.start_address;
        if order > MAX_ORDER {
            return Err(FrameError::InvalidOrder(order));
        }
        if !addr.is_aligned(PAGE_SIZE << order) {
            return Err(FrameError::Unaligned(addr));
        }
        let pfn = frame.number();
        let zi = self.zone_index(pfn).ok_or(FrameError::NotAllocated(addr))?;
        let state = self.state(&self.zones[zi], pfn);
        if state == USED | order {
            return Ok((zi, pfn));
        }
        if state & (FREE | USED) != USED {
            return Err(FrameError::NotAllocated(addr));
        }
        Err(FrameError::WrongOrder {
            addr,
            allocated: state & ORDER_MASK,
        })
    }

    /// Puts the free block at `pfn` on its free list, merged with its buddies.
    fn merge_and_push(&mut self, zone: &Zone, mut pfn: u64, order: u8) {
        let node = zone.node as usize;
        let mut o = order;
        while o < MAX_ORDER {
            let buddy = pfn ^ (1 << o);
            let in_zone = buddy >= zone.first_pfn && buddy < zone.end_pfn;
            if !in_zone || self.state(zone, buddy) != FREE | o {
                break;
            }
            self.unlink(node, o, buddy);
            // The higher of the two heads becomes a tail of the merged block.
            self.set_state(zone, pfn.max(buddy), TAIL);
            pfn = pfn.min(buddy);
            o += 1;
        }
        self.set_state(zone, pfn, FREE | o);
        self.push(node, o, pfn);
    }

    // ---- the per-node cache of single frames ----

    /// Takes a cached frame of `node` (the lowest of the newest run) and marks it used.
    #[inline]
    fn pop_cached(&mut self, node: usize) -> Option<PhysFrame> {
        let (pfn, zi) = self.caches[node].pop()?;
        let _ = phys::window().write_u8(self.zones[zi].state_addr(pfn), USED);
        Some(PhysFrame::from_number(pfn))
    }

    /// Caches the free frame `pfn` of zone `zi` (on `node`), making room first if the
    /// cache is full.
    #[inline]
    fn park(&mut self, node: usize, zi: usize, pfn: u64) {
        if self.caches[node].len == CACHE_FRAMES {
            self.drain_oldest(node, CACHE_BATCH);
        }
        self.set_state(&self.zones[zi], pfn, CACHED);
        self.caches[node].push(pfn, zi);
    }

    /// Moves up to [`CACHE_BATCH`] frames of `node` from the buddy lists into its
    /// (empty) cache, a block at a time: the smallest block that holds a whole batch
    /// (split down to [`CACHE_BATCH`] frames), or else the smallest blocks there are.
    #[cold]
    fn refill_cache(&mut self, node: usize) {
        while self.caches[node].len < CACHE_BATCH {
            let best_fit = self.smallest_list(node, REFILL_ORDER);
            let Some(o) = best_fit.or_else(|| self.smallest_list(node, 0)) else {
                return;
            };
            let Ok((zi, pfn)) = self.take_block(node, o, o.min(REFILL_ORDER)) else {
                return;
            };
            let frames = 1usize << o.min(REFILL_ORDER);
            self.free[node] -= frames as u64;
            let _ = phys::write_bytes(
                self.zones[zi].state_addr(pfn),
                &[CACHED; CACHE_BATCH][..frames],
            );
            let cache = &mut self.caches[node];
            cache.runs[cache.run_count] = Run {
                start: pfn,
                len: frames as u32,
                zone: zi as u32,
            };
            cache.run_count += 1;
            cache.len += frames;
        }
    }

    /// Gives every cached frame of `node` back to the buddy lists.
    fn drain_cache(&mut self, node: usize) {
        self.drain_oldest(node, self.caches[node].len);
    }

    /// Gives the `n` oldest cached frames of `node` back to the buddy lists: the
    /// oldest runs (the last of them perhaps in part, from its low end), each as
    /// whole aligned blocks.
    #[cold]
    fn drain_oldest(&mut self, node: usize, n: usize) {
        let mut left = n.min(self.caches[node].len);
        let mut done = 0;
        while left > 0 {
            let run = &mut self.caches[node].runs[done];
            let take = left.min(run.len as usize);
            let (start, zi) = (run.start, run.zone as usize);
            run.start += take as u64;
            run.len -= take as u32;
            if run.len == 0 {
                done += 1;
            }
            left -= take;
            self.caches[node].len -= take;
            self.free[node] += take as u64;
            self.free_run(zi, start, start + take as u64);
        }
        let cache = &mut self.caches[node];
        cache.runs.copy_within(done..cache.run_count, 0);
        cache.run_count -= done;
    }

    /// Gives the cached frames `[pfn, end)` of zone `zi` back as the largest aligned
    /// blocks that fit, each merged with its buddies.
    fn free_run(&mut self, zi: usize, mut pfn: u64, end: u64) {
        let zone = self.zones[zi];
        while pfn < end {
            let mut order = (pfn.trailing_zeros() as u8).min(MAX_ORDER);
            while pfn + (1 << order) > end {
                order -= 1;
            }
            if order > 0 {
                // The block's other frames become its tails.
                let _ = phys::zero(zone.state_addr(pfn + 1), (1 << order) - 1);
            }
            self.merge_and_push(&zone, pfn, order);
            pfn += 1 << order;
        }
    }

    // ---- cached frames to and from the per-CPU magazines ----

    /// Moves up to `out.len()` free single frames of `node` out of its cache (refilled
    /// from the buddy lists when it runs dry) into `out` as magazine entries, lowest
    /// first; returns how many. They keep the state byte `CACHED`: free, on no list,
    /// and no longer counted here (the magazine counts them).
    pub(crate) fn take_cached(&mut self, node: usize, out: &mut [u64]) -> usize {
        let mut n = 0;
        while n < out.len() {
            if self.caches[node].len == 0 {
                self.refill_cache(node);
            }
            // A run at a time, from its low end (as `pop` takes frames).
            let cache = &mut self.caches[node];
            let Some(top) = cache.run_count.checked_sub(1) else {
                break;
            };
            let run = &mut cache.runs[top];
            let take = (run.len as usize).min(out.len() - n);
            let (start, zi) = (run.start, run.zone as usize);
            for (slot, pfn) in out[n..n + take].iter_mut().zip(start..) {
                *slot = percpu::pack(pfn, zi);
            }
            run.start += take as u64;
            run.len -= take as u32;
            if run.len == 0 {
                cache.run_count = top;
            }
            cache.len -= take;
            n += take;
        }
        n
    }

    /// Takes back magazine entries of `node` (state `CACHED`) into the node's cache,
    /// making room in it as a free does. Neighbouring frames (in either order) go
    /// in as one run: a magazine's frames were mostly handed out, and given back,
    /// in runs.
    pub(crate) fn put_cached(&mut self, node: usize, entries: impl IntoIterator<Item = u64>) {
        let mut entries = entries.into_iter().map(percpu::unpack);
        let Some((mut start, mut zone)) = entries.next() else {
            return;
        };
        let mut len = 1;
        for (pfn, zi) in entries {
            if zi == zone && pfn == start + len {
                len += 1;
            } else if zi == zone && pfn + 1 == start {
                start = pfn;
                len += 1;
            } else {
                self.put_run(node, start, len, zone);
                (start, len, zone) = (pfn, 1, zi);
            }
        }
        self.put_run(node, start, len, zone);
    }

    /// Puts the cached frames `[start, start + len)` of zone `zone` in `node`'s
    /// cache, draining its oldest frames whenever it is full.
    fn put_run(&mut self, node: usize, mut start: u64, mut len: u64, zone: usize) {
        while len > 0 {
            if self.caches[node].len == CACHE_FRAMES {
                self.drain_oldest(node, CACHE_BATCH);
            }
            let take = len.min((CACHE_FRAMES - self.caches[node].len) as u64);
            self.caches[node].push_run(start, take as u32, zone);
            start += take;
            len -= take;
        }
    }

    /// Moves up to `out.len()` free blocks of `order` of `node` off its buddy lists
    /// into `out` as magazine entries (their first frame and zone); returns how many.
    /// Each is split from the smallest block that holds it, as an allocation would,
    /// and its head gets the state byte `CACHED | order`: free, on no list, and no
    /// longer counted here (the magazine counts it). Cached single frames are not
    /// drained for them: the caller's ordinary path does that when none is left.
    pub(crate) fn take_blocks(&mut self, node: usize, order: u8, out: &mut [u64]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let Some(o) = self.smallest_list(node, order) else {
                break;
            };
            let Ok((zi, pfn)) = self.take_block(node, o, order) else {
                break;
            };
            self.set_state(&self.zones[zi], pfn, CACHED | order);
            self.free[node] -= 1 << order;
            out[n] = percpu::pack(pfn, zi);
            n += 1;
        }
        n
    }

    /// Takes back blocks of `order` from [`take_blocks`](Self::take_blocks) (or
    /// parked by a free: head state `CACHED | order`) onto the buddy lists, each
    /// merged with its buddies.
    pub(crate) fn put_blocks(&mut self, order: u8, entries: impl IntoIterator<Item = u64>) {
        for (pfn, zi) in entries.into_iter().map(percpu::unpack) {
            let zone = self.zones[zi];
            self.free[zone.node as usize] += 1 << order;
            self.merge_and_push(&zone, pfn, order);
        }
    }

    /// The zones, in order, as (first pfn, end pfn, metadata address, node): what
    /// the magazines' mirror of them copies.
    pub(crate) fn zone_bounds(&self) -> impl Iterator<Item = (u64, u64, PhysAddr, u8)> + '_ {
        self.zones[..self.zone_count]
            .iter()
            .map(|z| (z.first_pfn, z.end_pfn, z.meta, z.node))
    }

    /// Whether `frame` is the head of an allocated block (of any order).
    pub fn is_allocated(&self, frame: PhysFrame) -> bool {
        let pfn = frame.number();
        match self.zone_index(pfn) {
            Some(zi) => self.state(&self.zones[zi], pfn) & (FREE | USED) == USED,
            None => false,
        }
    }

    /// Free frames on all nodes.
    pub fn free_frames(&self) -> u64 {
        let mut nodes = self.nodes_with_memory;
        let mut sum = 0;
        while nodes != 0 {
            let n = nodes.trailing_zeros() as usize;
            sum += self.free[n] + self.caches[n].len as u64;
            nodes &= nodes - 1;
        }
        sum
    }
    /// Free frames on `node`.
    pub fn free_frames_on(&self, node: NumaNode) -> u64 {
        let n = node.id as usize;
        match (self.free.get(n), self.caches.get(n)) {
            (Some(&free), Some(cache)) => free + cache.len as u64,
            _ => 0,
        }
    }
    /// Frames managed (excluding metadata), all nodes.
    pub fn total_frames(&self) -> u64 {
        self.total.iter().sum()
    }
    /// The node a frame belongs to, if this allocator manages it.
    pub fn node_of(&self, frame: PhysFrame) -> Option<NumaNode> {
        let zi = self.zone_index(frame.number())?;
        Some(NumaNode {
            id: self.zones[zi].node as u32,
        })
    }

    /// Sets the order in which nodes are tried for allocations near `node` (`node`
    /// should come first). Nodes not listed are not used as fallback.
    pub fn set_fallback_order(
        &mut self,
        node: NumaNode,
        order: &[NumaNode],
    ) -> Result<(), FrameError> {
        let n = node.id as usize;
        if n >= MAX_NODES {
            return Err(FrameError::BadNode(node));
        }
        if let Some(bad) = order.iter().find(|m| m.id as usize >= MAX_NODES) {
            return Err(FrameError::BadNode(*bad));
        }
        let len = order.len().min(MAX_NODES);
        for (slot, m) in self.fallback[n].iter_mut().zip(&order[..len]) {
            *slot = m.id as u8;
        }
        self.fallback_len[n] = len as u8;
        Ok(())
    }

    /// Records that `cpu` sits on `node` (CPUs default to node 0).
    pub fn set_cpu_node(&mut self, cpu: u32, node: NumaNode) -> Result<(), FrameError> {
        if node.id as usize >= MAX_NODES {
            return Err(FrameError::BadNode(node));
        }
        if let Some(slot) = self.cpu_node.get_mut(cpu as usize) {
            *slot = node.id as u8;
            self.cpus_off_node0 |= node.id != 0;
            self.cpus_placed |= 1 << cpu;
        }
        Ok(())
    }

    /// How many CPUs [`set_cpu_node`](Self::set_cpu_node) placed on `node` (at least
    /// one: before any is placed, the boot CPU stands for them).
    pub fn cpus_on(&self, node: usize) -> u64 {
        let placed = (0..MAX_CPUS)
            .filter(|&c| self.cpus_placed & (1 << c) != 0 && self.cpu_node[c] as usize == node)
            .count() as u64;
        placed.max(1)
    }

    // ---- metadata and free lists ----

    /// The zone holding `pfn`. With few zones, a scan whose branches the CPU predicts:
    /// the index is then known before `pfn` is (a binary search by conditional moves
    /// would make every later access wait for it); else a binary search.
    #[inline]
    fn zone_index(&self, pfn: u64) -> Option<usize> {
        let zones = &self.zones[..self.zone_count];
        let i = if zones.len() <= LINEAR_ZONES {
            zones.iter().rposition(|z| z.first_pfn <= pfn)?
        } else {
            zones
                .partition_point(|z| z.first_pfn <= pfn)
                .checked_sub(1)?
        };
        (pfn < zones[i].end_pfn).then_some(i)
    }

    #[inline]
    fn state(&self, zone: &Zone, pfn: u64) -> u8 {
        phys::read_u8(zone.state_addr(pfn)).unwrap_or(RESERVED)
    }

    #[inline]
    fn set_state(&self, zone: &Zone, pfn: u64, state: u8) {
        let _ = phys::write_u8(zone.state_addr(pfn), state);
    }

    fn link_addr(pfn: u64) -> (PhysAddr, PhysAddr) {
        let base = PhysAddr(pfn * PAGE_SIZE);
        (base, base + 8)
    }

    fn read_link(addr: PhysAddr) -> u64 {
        phys::read_u64(addr).unwrap_or(NIL)
    }

    fn write_link(addr: PhysAddr, v: u64) {
        let _ = phys::write_u64(addr, v);
    }

    fn push(&mut self, node: usize, order: u8, pfn: u64) {
        let head = self.heads[node][order as usize];
        let (next, prev) = Self::link_addr(pfn);
        Self::write_link(next, head);
        Self::write_link(prev, NIL);
        if head != NIL {
            Self::write_link(Self::link_addr(head).1, pfn);
        }
        self.heads[node][order as usize] = pfn;
        self.nonempty[node] |= 1 << order;
    }

    fn unlink(&mut self, node: usize, order: u8, pfn: u64) {
        let (next_a, prev_a) = Self::link_addr(pfn);
        let next = Self::read_link(next_a);
        let prev = Self::read_link(prev_a);
        if prev == NIL {
            self.heads[node][order as usize] = next;
            if next == NIL {
                self.nonempty[node] &= !(1 << order);
            }
        } else {
            Self::write_link(Self::link_addr(prev).0, next);
        }
        if next != NIL {
            Self::write_link(Self::link_addr(next).1, prev);
        }
    }
}

// ---- the global instance and the seed's free functions ----

/// The kernel's frame allocator: the shared buddy allocator with a magazine of free
/// frames per CPU in front (see [`percpu`]).
pub static FRAME_ALLOCATOR: PerCpuFrames = PerCpuFrames::new();

/// (Re)initialises the global allocator with `regions`. Regions that cannot be used
/// (overlapping, too small, outside the window) are skipped; the number of frames
/// managed is returned.
pub fn init_frame_allocator(regions: &[MemoryRegion]) -> u64 {
    FRAME_ALLOCATOR.init(regions)
}

/// Frames the global facade leaves for the kernel heap (see the module docs).
static HEAP_RESERVE: AtomicU64 = AtomicU64::new(0);

/// Keeps `frames` free frames for the kernel heap from now on.
pub fn set_heap_reserve(frames: u64) {
    HEAP_RESERVE.store(frames, Ordering::Relaxed);
}

/// One frame from the global allocator (never from the heap's reserve).
#[inline]
pub fn allocate_frame() -> Result<PhysFrame, FrameError> {
    FRAME_ALLOCATOR.allocate_keeping(HEAP_RESERVE.load(Ordering::Relaxed))
}

/// 2^order contiguous, aligned frames from the global allocator (never from the
/// heap's reserve).
pub fn allocate_frames(order: u8) -> Result<PhysFrame, FrameError> {
    FRAME_ALLOCATOR.allocate_order_keeping(order, HEAP_RESERVE.load(Ordering::Relaxed))
}

/// Gives a frame back to the global allocator.
#[inline]
pub fn deallocate_frame(frame: PhysFrame) -> Result<(), FrameError> {
    FRAME_ALLOCATOR.deallocate(frame)
}

/// Gives a 2^order block back to the global allocator.
pub fn deallocate_frames(frame: PhysFrame, order: u8) -> Result<(), FrameError> {
    FRAME_ALLOCATOR.deallocate_order(frame, order)
}

/// Free frames in the global allocator (those in the CPUs' magazines included).
pub fn free_frame_count() -> u64 {
    FRAME_ALLOCATOR.free_frames()
}

/// Whether the global allocator has at least `n` free frames (a check on a hot
/// path: usually without a lock, see [`PerCpuFrames::has_free`]).
pub fn has_free_frames(n: u64) -> bool {
    FRAME_ALLOCATOR.has_free(n)
}

/// Free frames of `node` in the global allocator (magazines included).
pub fn free_frame_count_on(node: NumaNode) -> u64 {
    FRAME_ALLOCATOR.free_frames_on(node)
}

/// Frames the global allocator manages, free or not.
pub fn total_frame_count() -> u64 {
    FRAME_ALLOCATOR.total_frames()
}

/// Where page tables, the heap and address spaces get their frames: the global
/// allocator in the kernel, a private instance in tests.
pub trait FrameSource {
    /// One frame (contents undefined).
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError>;
    /// Gives one frame back.
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError>;
    /// 2^order contiguous frames aligned to their size. Sources that only deal in
    /// single frames refuse every order above 0.
    fn alloc_frames(&mut self, order: u8) -> Result<PhysFrame, FrameError> {
        match order {
            0 => self.alloc_frame(),
            _ => Err(FrameError::OutOfMemory),
        }
    }
    /// Gives back a block from [`alloc_frames`](Self::alloc_frames).
    fn free_frames(&mut self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        match order {
            0 => self.free_frame(frame),
            _ => Err(FrameError::InvalidOrder(order)),
        }
    }
}

/// The global allocator as a [`FrameSource`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalFrames;

impl FrameSource for GlobalFrames {
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError> {
        allocate_frame()
    }
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        deallocate_frame(frame)
    }
    fn alloc_frames(&mut self, order: u8) -> Result<PhysFrame, FrameError> {
        allocate_frames(order)
    }
    fn free_frames(&mut self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        deallocate_frames(frame, order)
    }
}

/// The global allocator for the kernel heap: may take the reserve too.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapFrames;

impl FrameSource for HeapFrames {
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError> {
        FRAME_ALLOCATOR.allocate()
    }
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        deallocate_frame(frame)
    }
    fn alloc_frames(&mut self, order: u8) -> Result<PhysFrame, FrameError> {
        FRAME_ALLOCATOR.allocate_order(order)
    }
    fn free_frames(&mut self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        deallocate_frames(frame, order)
    }
}

impl FrameSource for FrameAllocator {
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError> {
        self.allocate()
    }
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        self.deallocate(frame)
    }
    fn alloc_frames(&mut self, order: u8) -> Result<PhysFrame, FrameError> {
        self.allocate_order(order)
    }
    fn free_frames(&mut self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        self.deallocate_order(frame, order)
    }
}

impl<T: FrameSource + ?Sized> FrameSource for &mut T {
    fn alloc_frame(&mut self) -> Result<PhysFrame, FrameError> {
        (**self).alloc_frame()
    }
    fn free_frame(&mut self, frame: PhysFrame) -> Result<(), FrameError> {
        (**self).free_frame(frame)
    }
    fn alloc_frames(&mut self, order: u8) -> Result<PhysFrame, FrameError> {
        (**self).alloc_frames(order)
    }
    fn free_frames(&mut self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        (**self).free_frames(frame, order)
    }
}

#[cfg(test)]
mod tests;

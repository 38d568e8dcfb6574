//! [`FramePool`]: the buddy allocator behind its lock, with a magazine of free single
//! frames per CPU in front (see "The per-CPU magazines" in the parent module's doc).
//!
//! ## Locks
//! * each CPU's magazine: an [`IrqMutex`] that only its CPU takes on the fast path;
//!   another CPU takes it only to drain the magazine (memory ran short, a larger
//!   block failed). Uncontended, so no cache line moves between CPUs.
//! * the buddy allocator's [`IrqMutex`]: refills, drains, larger blocks, frees of
//!   other nodes' frames, and whatever needs the whole picture.
//!
//! Order: a magazine, then the buddy lock; never two magazines at once (a drain of
//! other CPUs' magazines takes each in turn with nothing else held).
//!
//! ## Invariants
//! * A frame in a magazine has the state byte `MAGAZINE`; only the magazine's
//!   holder changes it (to `USED` when it hands the frame out, `CACHED` when it
//!   gives it back). A free turns `USED` into `MAGAZINE` by compare-exchange, so of
//!   two frees of one frame exactly one succeeds, on any CPUs, with or without
//!   locks.
//! * `buddy_free` is never above the buddy allocator's free count: it is lowered
//!   before a locked operation takes frames out and set exactly when the lock is
//!   dropped. So the fast path's reserve check ("more than the reserve is free in
//!   the buddy lists alone") needs no lock and can only err on the safe side.
#![deny(unsafe_code)]

use super::{
    not_allocated_error, FrameAllocator, FrameError, Zone, MAGAZINE, MAX_ORDER, MAX_REGIONS, USED,
};
use crate::memory::addr::{PhysAddr, PhysFrame, PAGE_SIZE};
use crate::memory::numa::NumaNode;
use crate::memory::phys;
use crate::memory::region::MemoryRegion;
use crate::sync::{IrqMutex, IrqMutexGuard};
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

/// Free single frames one CPU's magazine holds, at most.
pub const MAGAZINE_FRAMES: usize = 64;
/// Frames an empty magazine takes from the buddy allocator, and a full one gives back.
pub const MAGAZINE_BATCH: usize = MAGAZINE_FRAMES / 2;
/// CPUs with a magazine: one per `smp` CPU index.
pub const MAGAZINES: usize = crate::smp::MAX_CPUS;

/// The CPU an operation is done for: its magazine (the `smp` index) and its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnCpu {
    /// Index of the CPU (`smp::PerCpu::index`); at or above [`MAGAZINES`] the
    /// operation goes to the buddy allocator directly.
    pub index: usize,
    /// The CPU's NUMA node: its frames come from there first.
    pub node: NumaNode,
}

impl OnCpu {
    /// The CPU running this code (a thread moved to another CPU right after this
    /// call still uses this CPU's magazine, under its lock: correct, only slower).
    #[inline]
    pub fn current() -> OnCpu {
        let me = crate::smp::this();
        OnCpu {
            index: me.id(),
            node: NumaNode {
                id: me.node.load(Ordering::Relaxed),
            },
        }
    }
}

/// Whether an allocation must leave the heap's reserve free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Fail rather than go below [`FramePool::set_heap_reserve`] free frames.
    Keep,
    /// The kernel heap's own allocations: the reserve is there for them.
    MayTake,
}

/// Whether a single-frame allocation may come from another node than the CPU's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spill {
    LocalOnly,
    Nearest,
}

/// A frame in a magazine, with the address of its state byte.
#[derive(Debug, Clone, Copy)]
struct Entry {
    pfn: u64,
    state: PhysAddr,
}

/// Free single frames of node `node`, newest last.
struct Magazine {
    node: u32,
    len: usize,
    entries: [Entry; MAGAZINE_FRAMES],
}

/// One CPU's magazine, on its own cache lines.
#[repr(align(64))]
struct Slot {
    mag: IrqMutex<Magazine>,
    /// The magazine's node (high 32 bits) and length (low), for counts without
    /// its lock; written under it.
    held: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            mag: IrqMutex::new(Magazine {
                node: 0,
                len: 0,
                entries: [Entry {
                    pfn: 0,
                    state: PhysAddr(0),
                }; MAGAZINE_FRAMES],
            }),
            held: AtomicU64::new(0),
        }
    }

    fn publish(&self, mag: &Magazine) {
        let held = (u64::from(mag.node) << 32) | mag.len as u64;
        self.held.store(held, Ordering::Relaxed);
    }

    /// (node, frames) without the lock.
    fn held(&self) -> (u32, usize) {
        let h = self.held.load(Ordering::Relaxed);
        ((h >> 32) as u32, (h & 0xffff_ffff) as usize)
    }

    /// Hands out the newest frame (state `MAGAZINE` -> `USED`).
    #[inline]
    fn pop(&self, mag: &mut Magazine) -> Option<PhysFrame> {
        let top = mag.len.checked_sub(1)?;
        let e = mag.entries[top];
        mag.len = top;
        self.publish(mag);
        let _ = phys::window().store_u8(e.state, USED, Ordering::Relaxed);
        Some(PhysFrame::from_number(e.pfn))
    }

    /// Adds a frame whose state byte is already `MAGAZINE` (the magazine has room).
    #[inline]
    fn push(&self, mag: &mut Magazine, e: Entry) {
        mag.entries[mag.len] = e;
        mag.len += 1;
        self.publish(mag);
    }
}

/// Where each zone's state bytes are, readable without the buddy lock: a copy of
/// the buddy allocator's zone table, rewritten under a sequence count (odd while
/// it is being rewritten; a reader that sees it change takes the locked path).
struct ZoneMirror {
    seq: AtomicU64,
    count: AtomicUsize,
    first: [AtomicU64; MAX_REGIONS],
    end: [AtomicU64; MAX_REGIONS],
    /// Metadata address (frame-aligned) | node.
    meta_node: [AtomicU64; MAX_REGIONS],
}

impl ZoneMirror {
    const fn new() -> ZoneMirror {
        ZoneMirror {
            seq: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            first: [const { AtomicU64::new(0) }; MAX_REGIONS],
            end: [const { AtomicU64::new(0) }; MAX_REGIONS],
            meta_node: [const { AtomicU64::new(0) }; MAX_REGIONS],
        }
    }

    /// Copies `zones` in (under the buddy lock, so writers never overlap).
    fn publish(&self, zones: &[Zone]) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, z) in zones.iter().enumerate() {
            self.first[i].store(z.first_pfn, Ordering::Relaxed);
            self.end[i].store(z.end_pfn, Ordering::Relaxed);
            self.meta_node[i].store(z.meta.0 | u64::from(z.node), Ordering::Relaxed);
        }
        self.count.store(zones.len(), Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::Release);
    }

    /// The address of `pfn`'s state byte and its node, if a zone holds it and no
    /// rewrite got in the way.
    #[inline]
    fn find(&self, pfn: u64) -> Option<(PhysAddr, u32)> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq & 1 != 0 {
            return None;
        }
        let n = self.count.load(Ordering::Relaxed).min(MAX_REGIONS);
        let hit = (0..n)
            .rev()
            .find(|&i| self.first[i].load(Ordering::Relaxed) <= pfn);
        let found = hit.and_then(|i| {
            let first = self.first[i].load(Ordering::Relaxed);
            let end = self.end[i].load(Ordering::Relaxed);
            let meta_node = self.meta_node[i].load(Ordering::Relaxed);
            (pfn < end).then(|| {
                let meta = meta_node & !(PAGE_SIZE - 1);
                let node = (meta_node & (PAGE_SIZE - 1)) as u32;
                (PhysAddr(meta + (pfn - first)), node)
            })
        });
        fence(Ordering::Acquire);
        (self.seq.load(Ordering::Relaxed) == seq).then_some(found)?
    }
}

/// The buddy allocator behind its lock with a magazine per CPU in front; see the
/// module documentation. The kernel's is [`super::FRAME_ALLOCATOR`]; tests make
/// their own.
pub struct FramePool {
    buddy: IrqMutex<FrameAllocator>,
    /// A lower bound of the buddy allocator's free frames (see the invariants).
    buddy_free: AtomicU64,
    /// Frames [`Reserve::Keep`] allocations leave free.
    reserve: AtomicU64,
    /// The buddy allocator's `layout_gen` when its zones were last mirrored.
    mirrored_gen: AtomicU64,
    zones: ZoneMirror,
    slots: [Slot; MAGAZINES],
}

impl Default for FramePool {
    fn default() -> Self {
        Self::new()
    }
}

/// The buddy allocator, locked. Frames in magazines are not in its counts: ask the
/// [`FramePool`] for those. Mutable use marks the buddy lists as possibly short
/// until the guard drops (the lock-free reserve check then takes the locked path).
pub struct PoolGuard<'a> {
    pool: &'a FramePool,
    fa: IrqMutexGuard<'a, FrameAllocator>,
}

impl Deref for PoolGuard<'_> {
    type Target = FrameAllocator;
    fn deref(&self) -> &FrameAllocator {
        &self.fa
    }
}

impl DerefMut for PoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut FrameAllocator {
        self.pool.buddy_free.store(0, Ordering::SeqCst);
        &mut self.fa
    }
}

impl Drop for PoolGuard<'_> {
    fn drop(&mut self) {
        let fa = &*self.fa;
        if self.pool.mirrored_gen.load(Ordering::Relaxed) != fa.layout_gen {
            self.pool.zones.publish(fa.zone_list());
            self.pool
                .mirrored_gen
                .store(fa.layout_gen, Ordering::Relaxed);
        }
        self.pool
            .buddy_free
            .store(fa.free_frames(), Ordering::Release);
    }
}

impl FramePool {
    /// A pool that manages nothing yet.
    pub const fn new() -> Self {
        let mut fa = FrameAllocator::new();
        fa.shared = true;
        FramePool {
            buddy: IrqMutex::new(fa),
            buddy_free: AtomicU64::new(0),
            reserve: AtomicU64::new(0),
            mirrored_gen: AtomicU64::new(0),
            zones: ZoneMirror::new(),
            slots: [const { Slot::new() }; MAGAZINES],
        }
    }

    /// Locks the buddy allocator (for what the pool does not offer itself: adding
    /// regions, NUMA placement, totals).
    pub fn lock(&self) -> PoolGuard<'_> {
        PoolGuard {
            pool: self,
            fa: self.buddy.lock(),
        }
    }

    /// Empties every magazine and forgets all memory, then takes `regions` (those
    /// that cannot be used are skipped). Returns the frames managed. Nothing may
    /// allocate or free meanwhile.
    pub fn reset(&self, regions: &[MemoryRegion]) -> u64 {
        for slot in &self.slots {
            let mut mag = slot.mag.lock();
            mag.len = 0;
            slot.publish(&mag);
        }
        let mut g = self.lock();
        g.fa.forget_memory();
        for r in regions {
            let _ = g.fa.add_region(*r);
        }
        g.fa.total_frames()
    }

    /// Keeps `frames` free frames for [`Reserve::MayTake`] allocations from now on.
    pub fn set_heap_reserve(&self, frames: u64) {
        self.reserve.store(frames, Ordering::SeqCst);
    }

    // ---- single frames ----

    /// One frame for `cpu`: from its magazine if it has one and the reserve allows,
    /// else refilled from its node, else from the nearest node with room. Fails only
    /// once every magazine has been drained.
    #[inline]
    pub fn allocate_frame(&self, cpu: OnCpu, reserve: Reserve) -> Result<PhysFrame, FrameError> {
        if let Some(slot) = self.slots.get(cpu.index) {
            let mut mag = slot.mag.lock();
            if mag.node == cpu.node.id && self.fast_path_allowed(reserve) {
                if let Some(f) = slot.pop(&mut mag) {
                    return Ok(f);
                }
            }
        }
        self.allocate_frame_slow(cpu, reserve)
    }

    /// Whether a magazine may hand out a frame without the buddy lock: there is no
    /// reserve to keep, or the buddy lists alone hold more than it.
    #[inline]
    fn fast_path_allowed(&self, reserve: Reserve) -> bool {
        let keep = self.reserve.load(Ordering::Relaxed);
        reserve == Reserve::MayTake || keep == 0 || self.buddy_free.load(Ordering::SeqCst) > keep
    }

    /// [`allocate_frame`](Self::allocate_frame) past the fast path: the local node
    /// (the other magazines of the node drained if that helps), then the nearest
    /// nodes, then everything drained once more before out of memory.
    #[cold]
    fn allocate_frame_slow(&self, cpu: OnCpu, reserve: Reserve) -> Result<PhysFrame, FrameError> {
        let node = cpu.node.id;
        match self.refill_and_take(cpu, reserve, Spill::LocalOnly) {
            Err(FrameError::OutOfMemory) => {}
            other => return other,
        }
        if self.magazines_hold(Some(node)) {
            self.drain_magazines(Some(node));
        }
        match self.refill_and_take(cpu, reserve, Spill::Nearest) {
            Err(FrameError::OutOfMemory) if self.magazines_hold(None) => {
                self.drain_magazines(None);
                self.refill_and_take(cpu, reserve, Spill::Nearest)
            }
            other => other,
        }
    }

    /// Under `cpu`'s magazine lock and the buddy lock: checks the reserve (the buddy
    /// lists and this magazine count, other magazines not), refills an empty
    /// magazine from the node and takes a frame, or else (`Spill::Nearest`) takes
    /// one from the nearest node with room.
    fn refill_and_take(
        &self,
        cpu: OnCpu,
        reserve: Reserve,
        spill: Spill,
    ) -> Result<PhysFrame, FrameError> {
        let slot = self.slots.get(cpu.index);
        let mut mag = slot.map(|s| s.mag.lock());
        let mut g = self.lock();
        let node = cpu.node.id;
        if let (Some(slot), Some(mag)) = (slot, mag.as_deref_mut()) {
            if mag.node != node {
                let n = mag.len;
                self.drain(slot, mag, &mut g.fa, n);
                mag.node = node;
                slot.publish(mag);
            }
        }
        let own = mag.as_ref().map_or(0, |m| m.len as u64);
        let keep = self.reserve.load(Ordering::Relaxed);
        if reserve == Reserve::Keep && g.fa.free_frames() + own < keep + 1 {
            return Err(FrameError::OutOfMemory);
        }
        if let (Some(slot), Some(mag)) = (slot, mag.as_deref_mut()) {
            if mag.len == 0 && (node as usize) < super::MAX_NODES {
                self.refill(slot, mag, &mut g.fa, node as usize);
            }
            if let Some(f) = slot.pop(mag) {
                return Ok(f);
            }
        }
        self.lower_bound(&g.fa, 1);
        match spill {
            Spill::LocalOnly => g.fa.allocate_on(cpu.node, 0),
            Spill::Nearest => g.fa.allocate_near(cpu.node, 0),
        }
    }

    /// Gives `frame` back: into `cpu`'s magazine if it is of the CPU's node (a
    /// full magazine first gives its oldest half to the buddy lists), else to the
    /// buddy lists. A frame that is not an allocated single frame is refused with
    /// nothing changed: the state byte is claimed by compare-exchange first.
    #[inline]
    pub fn deallocate_frame(&self, cpu: OnCpu, frame: PhysFrame) -> Result<(), FrameError> {
        let addr = frame.start_address;
        if !addr.is_aligned(PAGE_SIZE) {
            return Err(FrameError::Unaligned(addr));
        }
        let pfn = frame.number();
        let Some((state, node)) = self.zones.find(pfn) else {
            // Not managed, or the zones are being rewritten: the locked path says.
            return self.lock().fa.deallocate(frame);
        };
        match phys::window().compare_exchange_u8(state, USED, MAGAZINE) {
            Ok(Ok(_)) => {}
            Ok(Err(seen)) => return Err(not_allocated_error(frame, seen)),
            Err(_) => return Err(FrameError::NotAllocated(addr)),
        }
        // The frame is this call's now (state MAGAZINE).
        if let Some(slot) = self.slots.get(cpu.index).filter(|_| node == cpu.node.id) {
            let mut mag = slot.mag.lock();
            if mag.node == node {
                if mag.len == MAGAZINE_FRAMES {
                    self.drain(slot, &mut mag, &mut self.lock().fa, MAGAZINE_BATCH);
                }
                slot.push(&mut mag, Entry { pfn, state });
                return Ok(());
            }
        }
        self.lock().fa.give_back_from_magazine(frame);
        Ok(())
    }

    /// Fills the empty magazine with up to [`MAGAZINE_BATCH`] frames of `node`.
    fn refill(&self, slot: &Slot, mag: &mut Magazine, fa: &mut FrameAllocator, node: usize) {
        self.lower_bound(fa, MAGAZINE_BATCH as u64);
        while mag.len < MAGAZINE_BATCH {
            let Some((frame, state)) = fa.take_for_magazine(node) else {
                break;
            };
            mag.entries[mag.len] = Entry {
                pfn: frame.number(),
                state,
            };
            mag.len += 1;
        }
        slot.publish(mag);
    }

    /// Gives the `n` oldest frames of the magazine back to the buddy allocator.
    fn drain(&self, slot: &Slot, mag: &mut Magazine, fa: &mut FrameAllocator, n: usize) {
        let n = n.min(mag.len);
        for e in &mag.entries[..n] {
            fa.give_back_from_magazine(PhysFrame::from_number(e.pfn));
        }
        mag.entries.copy_within(n..mag.len, 0);
        mag.len -= n;
        slot.publish(mag);
    }

    /// Whether any magazine (of `node`, if given) holds frames.
    fn magazines_hold(&self, node: Option<u32>) -> bool {
        self.slots.iter().any(|s| {
            let (n, len) = s.held();
            len > 0 && node.is_none_or(|want| want == n)
        })
    }

    /// Gives every frame of every magazine (of `node`, if given) back to the buddy
    /// allocator, one magazine at a time (so with no other magazine locked).
    pub fn drain_magazines(&self, node: Option<u32>) {
        for slot in &self.slots {
            let mut mag = slot.mag.lock();
            if mag.len > 0 && node.is_none_or(|want| want == mag.node) {
                let n = mag.len;
                self.drain(slot, &mut mag, &mut self.lock().fa, n);
            }
        }
    }

    /// Lowers `buddy_free` below what a locked operation about to take up to `n`
    /// frames out of `fa` leaves (see the invariants).
    fn lower_bound(&self, fa: &FrameAllocator, n: u64) {
        let bound = fa.free_frames().saturating_sub(n);
        self.buddy_free.store(bound, Ordering::SeqCst);
    }

    // ---- blocks ----

    /// 2^order contiguous frames aligned to their size, from `cpu`'s node or the
    /// nearest with room; single frames as [`allocate_frame`](Self::allocate_frame).
    /// A failure first drains every magazine (its frames may complete a block) and
    /// tries again.
    pub fn allocate_frames(
        &self,
        cpu: OnCpu,
        order: u8,
        reserve: Reserve,
    ) -> Result<PhysFrame, FrameError> {
        if order == 0 {
            return self.allocate_frame(cpu, reserve);
        }
        match self.allocate_block(cpu, order, reserve) {
            Err(FrameError::OutOfMemory) if self.magazines_hold(None) => {
                self.drain_magazines(None);
                self.allocate_block(cpu, order, reserve)
            }
            other => other,
        }
    }

    fn allocate_block(
        &self,
        cpu: OnCpu,
        order: u8,
        reserve: Reserve,
    ) -> Result<PhysFrame, FrameError> {
        let mut g = self.lock();
        let n = 1u64 << order.min(MAX_ORDER);
        let keep = self.reserve.load(Ordering::Relaxed);
        if reserve == Reserve::Keep && g.fa.free_frames() < keep + n {
            return Err(FrameError::OutOfMemory);
        }
        self.lower_bound(&g.fa, n);
        g.fa.allocate_near(cpu.node, order)
    }

    /// Gives back a block from [`allocate_frames`](Self::allocate_frames) (single
    /// frames as [`deallocate_frame`](Self::deallocate_frame)).
    pub fn deallocate_frames(
        &self,
        cpu: OnCpu,
        frame: PhysFrame,
        order: u8,
    ) -> Result<(), FrameError> {
        if order == 0 {
            return self.deallocate_frame(cpu, frame);
        }
        self.lock().fa.deallocate_order(frame, order)
    }

    // ---- counts ----

    /// Free frames: the buddy allocator's plus every magazine's (exact whenever no
    /// CPU is in the middle of an allocation or a free).
    pub fn free_frames(&self) -> u64 {
        let g = self.lock();
        g.fa.free_frames() + self.magazine_frames(None)
    }

    /// Free frames of `node`, magazines included.
    pub fn free_frames_on(&self, node: NumaNode) -> u64 {
        let g = self.lock();
        g.fa.free_frames_on(node) + self.magazine_frames(Some(node.id))
    }

    /// Frames in all magazines (of `node`, if given).
    pub fn magazine_frames(&self, node: Option<u32>) -> u64 {
        let held = self.slots.iter().map(|s| s.held());
        held.filter(|&(n, _)| node.is_none_or(|want| want == n))
            .map(|(_, len)| len as u64)
            .sum()
    }

    /// Frames in CPU `index`'s magazine.
    pub fn magazine_len(&self, index: usize) -> usize {
        self.slots.get(index).map_or(0, |s| s.held().1)
    }

    /// Frames managed, free or not.
    pub fn total_frames(&self) -> u64 {
        self.lock().fa.total_frames()
    }

    /// The node `frame` belongs to, if the pool manages it (no lock).
    pub fn node_of(&self, frame: PhysFrame) -> Option<NumaNode> {
        match self.zones.find(frame.number()) {
            Some((_, id)) => Some(NumaNode { id }),
            None => self.lock().fa.node_of(frame),
        }
    }
}

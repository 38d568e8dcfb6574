//! Per-CPU magazines: each CPU keeps a few free single frames of its own NUMA node in
//! front of the shared [`FrameAllocator`], so that allocating or freeing one frame
//! takes that CPU's own lock and not the shared one (Linux's per-CPU page lists).
//!
//! ## What it owns
//! [`PerCpuFrames`] owns the shared allocator and one [`Magazine`] per CPU id below
//! [`MAX_CPUS`] (the id `arch::cpu::current_cpu_id` gives, the one the NUMA tables
//! name CPUs by). A CPU with a larger id has no magazine and uses the shared
//! allocator directly.
//!
//! ## How
//! * A magazine is a stack of up to [`MAGAZINE_FRAMES`] free frames, all of the node
//!   its CPU sits on. Allocating pops the newest (cache-warm) frame and marks it used;
//!   freeing checks the frame's state byte (an allocated single frame of this node),
//!   marks it cached and pushes it.
//! * An empty magazine takes [`MAGAZINE_BATCH`] frames from its node's cache in the
//!   shared allocator; a full one gives its oldest [`MAGAZINE_BATCH`] back: one
//!   shared lock per batch, not per frame.
//! * A frame of another node freed on this CPU goes straight back to its own node
//!   (the shared allocator's cache of that node), so a magazine only ever holds local
//!   frames and allocations stay local. Linux instead keeps per-CPU lists per zone,
//!   where a remote page waits in this CPU's list of the remote zone; with one list
//!   per CPU, giving it back at once is the equivalent that keeps locality.
//! * Frames in a magazine have the state byte `CACHED`, like those of the node caches:
//!   free, on no list. So a double free or a free of a frame never handed out fails
//!   the check here and is refused by the shared allocator with its usual error, and
//!   a frame in a magazine is never handed out twice.
//! * Out of memory only when it is: when the magazine and the local node are empty,
//!   the other magazines of the node are drained into it, then the nearer nodes are
//!   tried (the fallback order), then every magazine is drained and all is tried again.
//!   Larger blocks go to the shared allocator, and again after every magazine is
//!   drained (their frames may complete a block).
//! * Counts are exact: [`PerCpuFrames::free_frames`] locks every magazine that ever
//!   held frames, then the shared allocator, and adds the magazines' lengths.
//! * The heap's reserve (`keep`): a frame comes from the magazine only while the shared
//!   allocator alone still has `keep` free frames (its count as of its last unlock,
//!   `shared_free`), which proves at least `keep + 1` are free. Else the slow path
//!   checks exactly, draining the magazines if need be.
//!
//! ## Locks
//! * Each magazine: its own [`CpuLock`] (a spin lock that masks interrupts), normally
//!   taken only by its CPU, so uncontended. Other CPUs take it to drain the magazine
//!   (out of memory, a region added, an exact count, a CPU moved to another node).
//! * The shared allocator: its [`IrqMutex`].
//! * Order: magazines by ascending CPU id, then the shared lock. Only [`lock_all`]
//!   holds more than one magazine; the fast path gives its own up before it drains
//!   the others.
//! * `zones`, a mirror of the shared allocator's zone table, so that a free can find a
//!   frame's state byte and node without the shared lock: written only with every
//!   magazine and the shared lock held, read only under a magazine lock. (Atomics
//!   only so that safe code may share it; relaxed loads are plain loads.)
//!
//! ## A limit
//! A frame's check and its state change are one step under *one* lock. Two CPUs
//! freeing the same frame at the same moment (a caller racing with itself) hold two
//! different locks, so both may pass the check; a double free that comes after the
//! first free has completed is refused as before. Closing the race would take an
//! atomic compare-and-swap on the state byte in every free.
//!
//! [`lock_all`]: PerCpuFrames::lock_all
#![deny(unsafe_code)]

use super::{
    FrameAllocator, FrameError, CACHED, MAX_CPUS, MAX_NODES, MAX_ORDER, MAX_REGIONS, USED,
};
use crate::arch::interrupts::{restore, save_and_disable, IrqState};
use crate::memory::addr::{PhysAddr, PhysFrame, PAGE_SIZE};
use crate::memory::numa::NumaNode;
use crate::memory::phys;
use crate::memory::region::MemoryRegion;
use crate::sync::IrqMutex;
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use spin::mutex::{SpinMutex, SpinMutexGuard};

/// Free frames one magazine holds at most (256 KiB).
pub const MAGAZINE_FRAMES: usize = 64;
/// Frames a refill brings and a drain gives back.
pub const MAGAZINE_BATCH: usize = MAGAZINE_FRAMES / 2;

/// Bits of an entry below the zone index: the frame number.
const ZONE_SHIFT: u32 = 56;
const _: () = assert!(MAX_REGIONS <= 1 << (64 - ZONE_SHIFT));

/// A magazine entry: frame `pfn` of zone `zi` (frame numbers fit in 52 bits).
#[inline]
pub(crate) fn pack(pfn: u64, zi: usize) -> u64 {
    pfn | (zi as u64) << ZONE_SHIFT
}

/// The frame number and zone index of a magazine entry.
#[inline]
pub(crate) fn unpack(entry: u64) -> (u64, usize) {
    (
        entry & ((1 << ZONE_SHIFT) - 1),
        (entry >> ZONE_SHIFT) as usize,
    )
}

/// A spin lock that masks interrupts while it is held, taken in one atomic step
/// and given back with a plain store: the magazines' lock, where one CPU takes its
/// own lock again and again. Like [`IrqMutex`], it serves other CPUs' requests
/// while it waits. Not fair: it is meant for locks that are almost never contended.
pub struct CpuLock<T> {
    inner: SpinMutex<T>,
}

/// Guard of a [`CpuLock`]. Fields drop in order: the lock is free before
/// interrupts come back.
pub struct CpuGuard<'a, T> {
    guard: SpinMutexGuard<'a, T>,
    _irq: IrqRestore,
}

/// Restores the saved interrupt state when dropped.
struct IrqRestore(IrqState);

impl Drop for IrqRestore {
    fn drop(&mut self) {
        restore(self.0);
    }
}

impl<T> CpuLock<T> {
    /// A new unlocked lock.
    pub const fn new(value: T) -> Self {
        CpuLock {
            inner: SpinMutex::new(value),
        }
    }

    /// Masks interrupts, then takes the lock.
    #[inline]
    pub fn lock(&self) -> CpuGuard<'_, T> {
        let irq = IrqRestore(save_and_disable());
        loop {
            if let Some(guard) = self.inner.try_lock() {
                return CpuGuard { guard, _irq: irq };
            }
            while self.inner.is_locked() {
                crate::smp::serve_requests();
                core::hint::spin_loop();
            }
        }
    }
}

impl<T> core::ops::Deref for CpuGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> core::ops::DerefMut for CpuGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// One CPU's free frames: `entries[..len]`, oldest first, all of `node`.
struct Magazine {
    entries: [u64; MAGAZINE_FRAMES],
    len: usize,
    node: u8,
}

impl Magazine {
    const EMPTY: Magazine = Magazine {
        entries: [0; MAGAZINE_FRAMES],
        len: 0,
        node: 0,
    };
}

/// The shared allocator's zones as (first pfn, end pfn, `meta - first pfn`, node),
/// readable without its lock (see the module's lock rules).
struct ZoneMirror {
    count: AtomicUsize,
    first: [AtomicU64; MAX_REGIONS],
    end: [AtomicU64; MAX_REGIONS],
    /// The state byte of frame `pfn` of zone `i` is at `bias[i] + pfn`.
    bias: [AtomicU64; MAX_REGIONS],
    node: [AtomicU8; MAX_REGIONS],
}

/// Up to this many zones, finding a frame's zone is a scan (as in the shared one).
const LINEAR_ZONES: usize = 8;

impl ZoneMirror {
    const fn new() -> Self {
        ZoneMirror {
            count: AtomicUsize::new(0),
            first: [const { AtomicU64::new(0) }; MAX_REGIONS],
            end: [const { AtomicU64::new(0) }; MAX_REGIONS],
            bias: [const { AtomicU64::new(0) }; MAX_REGIONS],
            node: [const { AtomicU8::new(0) }; MAX_REGIONS],
        }
    }

    /// Copies `fa`'s zone table (every magazine and the shared lock are held).
    fn copy_from(&self, fa: &FrameAllocator) {
        let mut n = 0;
        for (i, (first, end, meta, node)) in fa.zone_bounds().enumerate() {
            self.first[i].store(first, Relaxed);
            self.end[i].store(end, Relaxed);
            self.bias[i].store(meta.0.wrapping_sub(first), Relaxed);
            self.node[i].store(node, Relaxed);
            n = i + 1;
        }
        self.count.store(n, Relaxed);
    }

    /// The zone holding `pfn`.
    #[inline]
    fn find(&self, pfn: u64) -> Option<usize> {
        let count = self.count.load(Relaxed);
        let below = |i: usize| self.first[i].load(Relaxed) <= pfn;
        let i = if count <= LINEAR_ZONES {
            (0..count).rev().find(|&i| below(i))?
        } else {
            // The number of zones starting at or below `pfn`, minus one.
            let (mut lo, mut hi) = (0, count);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if below(mid) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo.checked_sub(1)?
        };
        (pfn < self.end[i].load(Relaxed)).then_some(i)
    }

    #[inline]
    fn state_addr(&self, zi: usize, pfn: u64) -> PhysAddr {
        PhysAddr(self.bias[zi].load(Relaxed).wrapping_add(pfn))
    }

    #[inline]
    fn node(&self, zi: usize) -> u8 {
        self.node[zi].load(Relaxed)
    }
}

/// The shared frame allocator with a magazine per CPU in front; see the module
/// documentation. The kernel's global allocator is one of these.
pub struct PerCpuFrames {
    /// Lock order: these by ascending index, then `shared`.
    magazines: [CpuLock<Magazine>; MAX_CPUS],
    shared: IrqMutex<FrameAllocator>,
    /// `shared`'s free frames as of its last unlock (the reserve's fast check).
    shared_free: AtomicU64,
    /// Written with every lock held, read under a magazine lock.
    zones: ZoneMirror,
    /// Bit `i` set once magazine `i` may hold frames: the ones counts and drains visit.
    touched: AtomicU64,
}

const _: () = assert!(MAX_CPUS <= u64::BITS as usize);

/// Every magazine lock (or those asked for), released highest first so that
/// interrupts come back only with the last.
pub struct AllMagazines<'a> {
    guards: [Option<CpuGuard<'a, Magazine>>; MAX_CPUS],
}

impl Drop for AllMagazines<'_> {
    fn drop(&mut self) {
        for guard in self.guards.iter_mut().rev() {
            drop(guard.take());
        }
    }
}

impl<'a> AllMagazines<'a> {
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Magazine> + use<'_, 'a> {
        self.guards.iter_mut().flatten().map(|g| &mut **g)
    }
}

impl Default for PerCpuFrames {
    fn default() -> Self {
        Self::new()
    }
}

impl PerCpuFrames {
    /// An allocator that manages nothing yet.
    pub const fn new() -> Self {
        PerCpuFrames {
            magazines: [const { CpuLock::new(Magazine::EMPTY) }; MAX_CPUS],
            shared: IrqMutex::new(FrameAllocator::new()),
            shared_free: AtomicU64::new(0),
            zones: ZoneMirror::new(),
            touched: AtomicU64::new(0),
        }
    }

    /// The calling CPU's magazine and its index, if its id has one.
    #[inline]
    fn magazine(&self) -> Option<(usize, &CpuLock<Magazine>)> {
        let cpu = crate::arch::cpu::current_cpu_id() as usize;
        self.magazines.get(cpu).map(|m| (cpu, m))
    }

    /// Runs `f` on the shared allocator under its lock, and notes its free count.
    fn with_shared<R>(&self, f: impl FnOnce(&mut FrameAllocator) -> R) -> R {
        let mut fa = self.shared.lock();
        let r = f(&mut fa);
        self.shared_free.store(fa.free_frames(), Relaxed);
        r
    }

    /// Locks the magazines whose bit is set in `which`, in ascending order.
    fn lock_all(&self, which: u64) -> AllMagazines<'_> {
        AllMagazines {
            guards: core::array::from_fn(|i| {
                (which >> i & 1 != 0).then(|| self.magazines[i].lock())
            }),
        }
    }

    // ---- regions ----

    /// Forgets every region, then takes `regions` (those that cannot be used are
    /// skipped); returns the frames managed.
    pub fn init(&self, regions: &[MemoryRegion]) -> u64 {
        let mut all = self.lock_all(u64::MAX);
        all.iter_mut().for_each(|m| m.len = 0);
        let mut fa = self.shared.lock();
        fa.forget_memory();
        for r in regions {
            let _ = fa.add_region(*r);
        }
        self.zones.copy_from(&fa);
        self.shared_free.store(fa.free_frames(), Relaxed);
        fa.total_frames()
    }

    /// Forgets every region and free frame (the magazines' too).
    pub fn forget_memory(&self) {
        self.init(&[]);
    }

    /// Takes ownership of the RAM in `region`, as [`FrameAllocator::add_region`]. The
    /// magazines are drained first: their entries name zones by index, which shift.
    pub fn add_region(&self, region: MemoryRegion) -> Result<(), FrameError> {
        let mut all = self.lock_all(u64::MAX);
        let mut fa = self.shared.lock();
        for m in all.iter_mut() {
            fa.put_cached(m.node as usize, &m.entries[..m.len]);
            m.len = 0;
        }
        let result = fa.add_region(region);
        self.zones.copy_from(&fa);
        self.shared_free.store(fa.free_frames(), Relaxed);
        result
    }

    // ---- allocation ----

    /// One frame from the calling CPU's node, or the nearest node with room.
    #[inline]
    pub fn allocate(&self) -> Result<PhysFrame, FrameError> {
        self.allocate_keeping(0)
    }

    /// One frame, as [`allocate`](Self::allocate), as long as `keep` frames stay free.
    #[inline]
    pub fn allocate_keeping(&self, keep: u64) -> Result<PhysFrame, FrameError> {
        let Some((cpu, lock)) = self.magazine() else {
            return self.allocate_slow(0, keep);
        };
        let mut m = lock.lock();
        if m.len == 0 {
            self.refill(cpu, &mut m, keep);
        }
        if m.len > 0 && self.shared_free.load(Relaxed) >= keep {
            m.len -= 1;
            let (pfn, zi) = unpack(m.entries[m.len]);
            let _ = phys::write_u8(self.zones.state_addr(zi, pfn), USED);
            return Ok(PhysFrame::from_number(pfn));
        }
        let node = m.node;
        drop(m);
        self.allocate_slow(node, keep)
    }

    /// 2^order contiguous frames aligned to their size, from the calling CPU's node
    /// or the nearest node with room. Returns the first frame.
    pub fn allocate_order(&self, order: u8) -> Result<PhysFrame, FrameError> {
        self.allocate_order_keeping(order, 0)
    }

    /// As [`allocate_order`](Self::allocate_order), as long as `keep` frames stay free.
    pub fn allocate_order_keeping(&self, order: u8, keep: u64) -> Result<PhysFrame, FrameError> {
        if order == 0 {
            return self.allocate_keeping(keep);
        }
        // Blocks never sit in magazines: the shared allocator as before (its own
        // record of the CPU's node, then the fallback order), then again with every
        // magazine drained (their frames may complete a block).
        let need = keep.saturating_add(1 << order.min(MAX_ORDER));
        let try_shared = |fa: &mut FrameAllocator| {
            if keep > 0 && fa.free_frames() < need {
                return Err(FrameError::OutOfMemory);
            }
            fa.allocate_order(order)
        };
        match self.with_shared(try_shared) {
            Err(FrameError::OutOfMemory) => {
                self.drain_where(|_| true);
                self.with_shared(try_shared)
            }
            done => done,
        }
    }

    /// Fills the calling CPU's empty magazine from its node's frames in the shared
    /// allocator, taking no more than leaves `keep` free there.
    #[cold]
    fn refill(&self, cpu: usize, m: &mut Magazine, keep: u64) {
        self.mark_touched(cpu);
        let node = m.node as usize;
        let n = self.with_shared(|fa| {
            let room = fa.free_frames().saturating_sub(keep);
            let want = room.min(MAGAZINE_BATCH as u64) as usize;
            fa.take_cached(node, &mut m.entries[..want])
        });
        // Lowest frame on top: handed out first, as the shared allocator would.
        m.entries[..n].reverse();
        m.len = n;
    }

    fn mark_touched(&self, cpu: usize) {
        if self.touched.load(Relaxed) >> cpu & 1 == 0 {
            self.touched.fetch_or(1 << cpu, Relaxed);
        }
    }

    /// One frame past the magazine: the shared allocator on `node`, then `node`
    /// with the other magazines of the node drained into it, then the other nodes
    /// by distance, then all that again with every magazine drained. Each try leaves
    /// `keep` frames free (counting only the shared allocator's until the last,
    /// which has every free frame).
    #[cold]
    fn allocate_slow(&self, node: u8, keep: u64) -> Result<PhysFrame, FrameError> {
        let need = keep.saturating_add(1);
        let near = NumaNode { id: node as u32 };
        let room = |fa: &FrameAllocator| fa.free_frames() >= need;
        let on_node = |fa: &mut FrameAllocator| {
            if !room(fa) {
                return Err(FrameError::OutOfMemory);
            }
            fa.allocate_on(near, 0)
        };
        let by_distance = |fa: &mut FrameAllocator| {
            if !room(fa) {
                return Err(FrameError::OutOfMemory);
            }
            fa.allocate_near(near, 0)
        };
        if let Ok(f) = self.with_shared(on_node) {
            return Ok(f);
        }
        self.drain_where(|m| m.node == node);
        if let Ok(f) = self.with_shared(by_distance) {
            return Ok(f);
        }
        self.drain_where(|_| true);
        self.with_shared(by_distance)
    }

    // ---- freeing ----

    /// Gives back one frame from [`allocate`](Self::allocate).
    #[inline]
    pub fn deallocate(&self, frame: PhysFrame) -> Result<(), FrameError> {
        if let Some((cpu, lock)) = self.magazine() {
            let mut m = lock.lock();
            if let Some((entry, at)) = self.parkable(&m, frame) {
                if m.len == MAGAZINE_FRAMES {
                    self.drain(&mut m, MAGAZINE_BATCH);
                }
                let _ = phys::write_u8(at, CACHED);
                let len = m.len;
                m.entries[len] = entry;
                m.len = len + 1;
                if len == 0 {
                    self.mark_touched(cpu);
                }
                return Ok(());
            }
        }
        // Another node's frame, or a bad free: the shared allocator has the errors.
        self.with_shared(|fa| fa.deallocate(frame))
    }

    /// Gives back a block of 2^order frames obtained with the same order.
    pub fn deallocate_order(&self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        match order {
            0 => self.deallocate(frame),
            _ => self.with_shared(|fa| fa.deallocate_order(frame, order)),
        }
    }

    /// If `frame` is an allocated single frame of `m`'s node: its magazine entry and
    /// the address of its state byte.
    #[inline]
    fn parkable(&self, m: &Magazine, frame: PhysFrame) -> Option<(u64, PhysAddr)> {
        if !frame.start_address.is_aligned(PAGE_SIZE) {
            return None;
        }
        let pfn = frame.number();
        let zi = self.zones.find(pfn)?;
        if self.zones.node(zi) != m.node {
            return None;
        }
        let at = self.zones.state_addr(zi, pfn);
        (phys::read_u8(at) == Ok(USED)).then_some((pack(pfn, zi), at))
    }

    /// Gives the `n` oldest frames of `m` back to the shared allocator.
    #[cold]
    fn drain(&self, m: &mut Magazine, n: usize) {
        let n = n.min(m.len);
        let node = m.node as usize;
        self.with_shared(|fa| fa.put_cached(node, &m.entries[..n]));
        m.entries.copy_within(n..m.len, 0);
        m.len -= n;
    }

    /// Empties every magazine that `pick` chooses into the shared allocator, one at
    /// a time (the caller holds no magazine).
    fn drain_where(&self, pick: impl Fn(&Magazine) -> bool) {
        let touched = self.touched.load(Relaxed);
        for (i, lock) in self.magazines.iter().enumerate() {
            if touched >> i & 1 != 0 {
                let mut m = lock.lock();
                if m.len > 0 && pick(&m) {
                    let n = m.len;
                    self.drain(&mut m, n);
                }
            }
        }
    }

    /// Empties every magazine into the shared allocator.
    pub fn drain_magazines(&self) {
        self.drain_where(|_| true);
    }

    // ---- counts and placement ----

    /// Free frames on all nodes, those in magazines included.
    pub fn free_frames(&self) -> u64 {
        let mut all = self.lock_all(self.touched.load(Relaxed));
        let parked: usize = all.iter_mut().map(|m| m.len).sum();
        let fa = self.shared.lock();
        fa.free_frames() + parked as u64
    }

    /// Whether at least `n` frames are free: without a lock while the shared
    /// allocator alone had that many at its last unlock (magazines only add to
    /// it), else counted exactly.
    pub fn has_free(&self, n: u64) -> bool {
        self.shared_free.load(Relaxed) >= n || self.free_frames() >= n
    }

    /// Free frames on `node`, those in magazines included.
    pub fn free_frames_on(&self, node: NumaNode) -> u64 {
        let mut all = self.lock_all(self.touched.load(Relaxed));
        let parked: usize = all
            .iter_mut()
            .filter(|m| m.node as u32 == node.id)
            .map(|m| m.len)
            .sum();
        let fa = self.shared.lock();
        fa.free_frames_on(node) + parked as u64
    }

    /// Frames in magazines (for tests and reports).
    pub fn parked_frames(&self) -> u64 {
        let mut all = self.lock_all(self.touched.load(Relaxed));
        all.iter_mut().map(|m| m.len as u64).sum()
    }

    /// How many frames CPU `cpu`'s magazine holds, and of which node (for tests:
    /// that a CPU's frames went through its magazine and stayed on its node).
    pub fn magazine_of(&self, cpu: u32) -> Option<(usize, NumaNode)> {
        let m = self.magazines.get(cpu as usize)?.lock();
        Some((m.len, NumaNode { id: m.node as u32 }))
    }

    /// Frames managed (excluding metadata), all nodes.
    pub fn total_frames(&self) -> u64 {
        self.shared.lock().total_frames()
    }

    /// The node a frame belongs to, if this allocator manages it.
    pub fn node_of(&self, frame: PhysFrame) -> Option<NumaNode> {
        self.shared.lock().node_of(frame)
    }

    /// Whether `frame` is the head of an allocated block (of any order).
    pub fn is_allocated(&self, frame: PhysFrame) -> bool {
        self.shared.lock().is_allocated(frame)
    }

    /// Records that `cpu` sits on `node`; its magazine is emptied if it held frames
    /// of another node.
    pub fn set_cpu_node(&self, cpu: u32, node: NumaNode) -> Result<(), FrameError> {
        if node.id as usize >= MAX_NODES {
            return Err(FrameError::BadNode(node));
        }
        if let Some(lock) = self.magazines.get(cpu as usize) {
            let mut m = lock.lock();
            if m.node as u32 != node.id {
                let n = m.len;
                self.drain(&mut m, n);
                m.node = node.id as u8;
            }
        }
        self.with_shared(|fa| fa.set_cpu_node(cpu, node))
    }

    /// Sets the order in which nodes are tried for allocations near `node`, as
    /// [`FrameAllocator::set_fallback_order`].
    pub fn set_fallback_order(&self, node: NumaNode, order: &[NumaNode]) -> Result<(), FrameError> {
        self.with_shared(|fa| fa.set_fallback_order(node, order))
    }
}

//! Per-CPU magazines: each CPU keeps a few free single frames of its own NUMA node in
//! front of the shared [`FrameAllocator`], so that allocating or freeing one frame
//! takes no lock at all, only that CPU's own magazine (Linux's per-CPU page lists).
//!
//! ## What it owns
//! [`PerCpuFrames`] owns the shared allocator and one magazine per CPU id below
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
//! * The fast paths (a pop from a non-empty magazine, a push onto one neither empty
//!   nor full, in the zone the last free found) are inlined into callers and call
//!   nothing, so they save no registers and return in registers; every other case
//!   leaves the magazine and goes out of line (`allocate_refilling`,
//!   `deallocate_parking`), which enters again and does the full work. A call, its
//!   saved registers and a result through memory were a fifth of an alloc+free pair.
//! * A CPU whose magazine a revoker holds (below) uses the shared allocator for
//!   that operation, as a CPU without a magazine does.
//! * A frame of another node freed on this CPU goes straight back to its own node
//!   (the shared allocator's cache of that node), so a magazine only ever holds local
//!   frames and allocations stay local. Linux instead keeps per-CPU lists per zone,
//!   where a remote page waits in this CPU's list of the remote zone; with one list
//!   per CPU, giving it back at once is the equivalent that keeps locality.
//! * Frames in a magazine have the state byte `CACHED`, like those of the node caches:
//!   free, on no list. So a double free or a free of a frame never handed out fails
//!   the check here and is refused by the shared allocator with its usual error, and
//!   a frame in a magazine is never handed out twice.
//! * Besides single frames a magazine keeps up to [`MAGAZINE_BLOCKS`] free blocks of
//!   [`BLOCK_ORDER`] (2 MiB, the large-page size; Linux's per-CPU lists keep
//!   pageblock-order pages too since 5.13), and the node's CPUs together at most
//!   1/32 of its memory in them, so that a small machine parks few (a 256 MiB node:
//!   4 blocks to one CPU, 1 to each of four). Such a
//!   block costs the shared lock twice and a split and merge chain on the buddy
//!   lists otherwise (67 ns an alloc+free, against 15 ns for a plain bitmap); from
//!   the magazine it costs a state byte. An empty stack takes half its room from
//!   the node's buddy lists under one lock; a full one gives its oldest half back.
//!   A parked block's head has the state byte `CACHED | BLOCK_ORDER` (neither free
//!   nor allocated: frees of it are refused, merges pass it by), its other frames
//!   stay tails. Frees check alignment, zone, node and `USED | BLOCK_ORDER` first;
//!   anything else goes to the shared allocator with its errors. Drains, counts,
//!   the reserve and revocation treat blocks as they treat single frames.
//! * Out of memory only when it is: when the magazine and the local node are empty,
//!   the other magazines of the node are drained into it, then the nearer nodes are
//!   tried (the fallback order), then every magazine is drained and all is tried again.
//!   Other blocks go to the shared allocator, and again after every magazine is
//!   drained (their frames may complete a block).
//! * Counts are exact: [`PerCpuFrames::free_frames`] adds the magazines' lengths to
//!   the shared allocator's count under the shared lock, and refills and drains set
//!   a magazine's length under that lock too, so no frame is counted twice or
//!   missed while it moves; a count taken while owners allocate and free sees each
//!   of those single steps before or after.
//! * The heap's reserve (`keep`): a frame comes from the magazine only while the shared
//!   allocator alone still has `keep` free frames (its count as of its last unlock,
//!   `shared_free`), which proves at least `keep + 1` are free. Else the slow path
//!   checks exactly, draining the magazines if need be.
//!
//! ## Owners and revokers: no atomic read-modify-write on the owner's path
//! A magazine is touched by one party at a time: its *owner* (the CPU whose id it
//! has, inside one allocate or free, interrupts masked so that it cannot be
//! preempted or migrate), or a *revoker* (any CPU that must drain it or change it:
//! out of memory, a region added, a CPU moved to another node, an explicit drain).
//! The owner's path has no lock and no atomic read-modify-write, only plain loads
//! and stores; the cost of exclusion is moved to the rare revoker (an asymmetric
//! Dekker handshake, as Linux's `membarrier` users and biased locks do):
//! * the owner stores `busy = true`, then loads `revoked` (acquire: it pairs with
//!   the release with which a revoker clears it, so the owner sees what the revoker
//!   changed); if it is set the owner leaves the magazine alone and uses the shared
//!   allocator (under its lock) for this operation; else it works, then stores
//!   `busy = false` (release);
//! * a revoker (one at a time, under `revoking`) stores `revoked = true`, then calls
//!   [`smp::fence_others`], which makes every other CPU execute a full barrier
//!   (bare metal: a mailbox request each CPU takes with an acquire and acknowledges
//!   with a release, through an IPI or a waiting loop; the host: `membarrier` on the
//!   other threads), then waits until `busy` is false (acquire). Each owner either
//!   passed its barrier before its `busy` store, and then its load sees `revoked`,
//!   or after it, and then the revoker sees `busy` and waits for the operation to
//!   end. From then until it clears `revoked` the revoker alone touches the
//!   magazine.
//! * So every field is an atomic accessed with relaxed loads and stores (plain
//!   instructions; atomics only so that safe code may share them), and the module
//!   needs no `unsafe`.
//!
//! On the host every thread is a simulated CPU with its own id
//! (`arch::host::cpu`): host threads run at once like CPUs, so sharing one id (and
//! one magazine) between them, as the host did when every thread was CPU 0, would
//! break the owner's exclusivity. A pooled per-thread id keeps the kernel's own path
//! what the host tests and benchmarks run, instead of a host-only lock.
//!
//! ## Locks
//! * Each magazine: its owner or one revoker at a time, as above.
//! * `revoking`: held by a revoker ([`IrqMutex`]), so revokers never contend for a
//!   magazine with each other.
//! * The shared allocator: its [`IrqMutex`].
//! * Order: `revoking`, then the shared lock. An owner takes only the shared lock
//!   (refill, drain) and never waits for a revoker; a revoker holds no magazine of
//!   its own and not the shared lock while it waits for owners, and serves other
//!   CPUs' requests meanwhile.
//! * `zones`, a mirror of the shared allocator's zone table, so that a free can find a
//!   frame's state byte and node without the shared lock: written only with every
//!   magazine revoked and the shared lock held, read by owners inside an operation.
//!
//! ## A limit
//! A frame's check and its state change are one step under the exclusion of *one*
//! magazine. Two CPUs freeing the same frame at the same moment (a caller racing
//! with itself) work in two different magazines, so both may pass the check; a
//! double free that comes after the first free has completed is refused as before.
//! Closing the race would take an atomic compare-and-swap on the state byte in
//! every free.
//!
//! [`smp::fence_others`]: crate::smp::fence_others
#![deny(unsafe_code)]

use super::{
    FrameAllocator, FrameError, CACHED, MAX_CPUS, MAX_NODES, MAX_ORDER, MAX_REGIONS, USED,
};
use crate::arch::interrupts::{restore, save_and_disable, IrqState};
use crate::memory::addr::{PhysAddr, PhysFrame, PAGE_SIZE};
use crate::memory::numa::NumaNode;
use crate::memory::phys;
use crate::memory::region::MemoryRegion;
use crate::sync::{IrqMutex, IrqMutexGuard};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU64, AtomicU8, AtomicUsize};

/// Free frames one magazine holds at most (4 MiB): large enough that a run of
/// single-frame allocations or frees pays one refill or drain per 512 frames, and
/// that a CPU allocating and freeing a thousand frames at a time mostly stays in
/// its magazine. With 256 (1 MiB) such a batch moved most of its frames each way
/// between the magazine and its node's cache, one entry at a time: 9.9 ns per
/// frame against 5.7 for a plain bitmap; with 1024, 6.1 against 5.6. Whatever
/// sits here counts as free and is drained when memory runs short.
pub const MAGAZINE_FRAMES: usize = 1024;
/// Frames a refill brings and a drain gives back.
pub const MAGAZINE_BATCH: usize = MAGAZINE_FRAMES / 2;
/// The order of the blocks a magazine keeps besides single frames: 2 MiB, the
/// size of a large page (Linux's per-CPU lists keep pageblock-order pages too).
pub const BLOCK_ORDER: u8 = 9;
/// Blocks of [`BLOCK_ORDER`] one magazine holds at most (32 MiB)...
pub const MAGAZINE_BLOCKS: usize = 16;
/// ...and the magazines of a node's CPUs together at most this fraction of its
/// memory (1/32: 3 %), so that small machines park few: a 256 MiB node allows 4
/// blocks to its one CPU, or 1 to each of four; 1 GiB allows 16 to one CPU.
const BLOCK_SHARE: u64 = 32;

/// Bits of an entry below the zone index: the frame number.
/// Six bits of zone index, so that an unpacked index is below [`MAX_REGIONS`] by
/// construction (no bounds check on the fast path).
const ZONE_SHIFT: u32 = 58;
const _: () = assert!(MAX_REGIONS == 1 << (64 - ZONE_SHIFT));

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

/// Restores the saved interrupt state when dropped.
struct IrqRestore(IrqState);

impl Drop for IrqRestore {
    fn drop(&mut self) {
        restore(self.0);
    }
}

/// One CPU's free frames: `entries[..len]`, oldest first, all of `node`. Every
/// field is written only by whoever holds the magazine (its owner inside an
/// operation, or a revoker), with plain (relaxed) stores; see the module's rules.
#[repr(align(64))]
struct Magazine {
    /// The owner is inside an operation.
    busy: AtomicBool,
    /// A revoker holds the magazine: its owner keeps out.
    revoked: AtomicBool,
    node: AtomicU8,
    /// The zone the last free here found (of this node): its index, first frame,
    /// frame count (0: none) and state-byte bias, tried first by the next free
    /// without the mirror's search. Set by the owner; cleared by revokers when
    /// zones or the node change.
    hint_zone: AtomicU8,
    hint_first: AtomicU64,
    hint_span: AtomicU64,
    hint_bias: AtomicU64,
    len: AtomicUsize,
    entries: [AtomicU64; MAGAZINE_FRAMES],
    /// Free blocks of [`BLOCK_ORDER`] of `node`, `blocks[..block_len]`, oldest
    /// first, as entries naming their first frame (head state `CACHED | order`).
    block_len: AtomicUsize,
    blocks: [AtomicU64; MAGAZINE_BLOCKS],
}

impl Magazine {
    const fn empty() -> Magazine {
        Magazine {
            busy: AtomicBool::new(false),
            revoked: AtomicBool::new(false),
            node: AtomicU8::new(0),
            hint_zone: AtomicU8::new(0),
            hint_first: AtomicU64::new(0),
            hint_span: AtomicU64::new(0),
            hint_bias: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            entries: [const { AtomicU64::new(0) }; MAGAZINE_FRAMES],
            block_len: AtomicUsize::new(0),
            blocks: [const { AtomicU64::new(0) }; MAGAZINE_BLOCKS],
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    #[inline]
    fn set_len(&self, len: usize) {
        self.len.store(len, Relaxed);
    }

    #[inline]
    fn node(&self) -> u8 {
        self.node.load(Relaxed)
    }

    #[inline]
    fn block_len(&self) -> usize {
        self.block_len.load(Relaxed)
    }

    /// Frames it holds: single frames and blocks.
    fn frames(&self) -> u64 {
        self.len() as u64 + ((self.block_len() as u64) << BLOCK_ORDER)
    }

    #[inline]
    fn entry(&self, i: usize) -> u64 {
        self.entries[i].load(Relaxed)
    }

    #[inline]
    fn set_entry(&self, i: usize, entry: u64) {
        self.entries[i].store(entry, Relaxed);
    }

    /// Forgets the zone hint (zones or the node changed; the caller holds `self`).
    fn forget_hint(&self) {
        self.hint_span.store(0, Relaxed);
    }

    /// The zone index and state-byte bias of `pfn` if it lies in the hinted zone.
    #[inline]
    fn hinted(&self, pfn: u64) -> Option<(usize, u64)> {
        let inside = pfn.wrapping_sub(self.hint_first.load(Relaxed)) < self.hint_span.load(Relaxed);
        inside.then(|| {
            (
                self.hint_zone.load(Relaxed) as usize,
                self.hint_bias.load(Relaxed),
            )
        })
    }

    /// The `n` oldest entries, oldest first.
    fn oldest(&self, n: usize) -> impl Iterator<Item = u64> + '_ {
        (0..n).map(|i| self.entry(i))
    }

    /// The `n` oldest blocks, oldest first.
    fn oldest_blocks(&self, n: usize) -> impl Iterator<Item = u64> + '_ {
        (0..n).map(|i| self.blocks[i].load(Relaxed))
    }
}

/// The calling CPU's magazine, held for one operation: interrupts masked and `busy`
/// set; dropping it clears `busy` (releasing what was written), then unmasks.
struct Owned<'a> {
    m: &'a Magazine,
    cpu: usize,
    _irq: IrqRestore,
}

impl Drop for Owned<'_> {
    #[inline]
    fn drop(&mut self) {
        self.m.busy.store(false, Release);
    }
}

impl core::ops::Deref for Owned<'_> {
    type Target = Magazine;
    #[inline]
    fn deref(&self) -> &Magazine {
        self.m
    }
}

/// Magazines taken from their owners (a revoker's): given back when dropped.
struct Revoked<'a> {
    magazines: &'a [Magazine; MAX_CPUS],
    which: u64,
    _one_at_a_time: IrqMutexGuard<'a, ()>,
}

impl Drop for Revoked<'_> {
    fn drop(&mut self) {
        self.iter().for_each(|m| m.revoked.store(false, Release));
    }
}

impl Revoked<'_> {
    fn iter(&self) -> impl Iterator<Item = &Magazine> + '_ {
        bits(self.which).map(|i| &self.magazines[i])
    }
}

/// The indices of the bits set in `mask`, lowest first.
fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        let i = mask.trailing_zeros() as usize;
        mask &= mask.wrapping_sub(1);
        (i < u64::BITS as usize).then_some(i)
    })
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
    /// Per node, the blocks of [`BLOCK_ORDER`] a magazine of the node may hold.
    block_cap: [AtomicUsize; MAX_NODES],
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
            block_cap: [const { AtomicUsize::new(0) }; MAX_NODES],
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
        self.set_block_caps(fa);
    }

    /// Each node's per-magazine block cap: [`BLOCK_SHARE`] of the node's memory
    /// shared by the CPUs on it, so that all of them together park at most that much
    /// (a 256 MiB node with one CPU: 4 blocks; with four: 1 each).
    fn set_block_caps(&self, fa: &FrameAllocator) {
        let mut frames = [0u64; MAX_NODES];
        for (first, end, _, node) in fa.zone_bounds() {
            frames[node as usize] += end - first;
        }
        for (node, (cap, frames)) in self.block_cap.iter().zip(frames).enumerate() {
            let share = (frames / BLOCK_SHARE / fa.cpus_on(node)) >> BLOCK_ORDER;
            cap.store((share as usize).min(MAGAZINE_BLOCKS), Relaxed);
        }
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

    /// Zone `zi`'s first and end frame numbers.
    fn bounds(&self, zi: usize) -> (u64, u64) {
        (self.first[zi].load(Relaxed), self.end[zi].load(Relaxed))
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
    /// Each written only by its owner or a revoker (see the module's rules).
    magazines: [Magazine; MAX_CPUS],
    /// Held by whoever revokes magazines: one revoker at a time. Lock order: this,
    /// then `shared`.
    revoking: IrqMutex<()>,
    shared: IrqMutex<FrameAllocator>,
    /// `shared`'s free frames as of its last unlock (the reserve's fast check).
    shared_free: AtomicU64,
    /// Written with every magazine revoked and the shared lock held, read by owners.
    zones: ZoneMirror,
    /// Bit `i` set once magazine `i` may hold frames: the ones counts and drains visit.
    touched: AtomicU64,
}

const _: () = assert!(MAX_CPUS <= u64::BITS as usize);

impl Default for PerCpuFrames {
    fn default() -> Self {
        Self::new()
    }
}

impl PerCpuFrames {
    /// An allocator that manages nothing yet.
    pub const fn new() -> Self {
        PerCpuFrames {
            magazines: [const { Magazine::empty() }; MAX_CPUS],
            revoking: IrqMutex::new(()),
            shared: IrqMutex::new(FrameAllocator::new()),
            shared_free: AtomicU64::new(0),
            zones: ZoneMirror::new(),
            touched: AtomicU64::new(0),
        }
    }

    /// Enters the calling CPU's magazine for one operation, if its id has one and no
    /// revoker holds it. Interrupts are masked first, so the CPU cannot change under
    /// the caller. The owner's side of the fence: a plain store of `busy`, a plain
    /// load of `revoked` (a revoker's [`smp::fence_others`] orders the two).
    ///
    /// [`smp::fence_others`]: crate::smp::fence_others
    #[inline]
    fn enter(&self) -> Option<Owned<'_>> {
        let irq = IrqRestore(save_and_disable());
        let cpu = crate::arch::cpu::current_cpu_id() as usize;
        let m = self.magazines.get(cpu)?;
        m.busy.store(true, Relaxed);
        compiler_fence(SeqCst);
        // Acquire: a revoker that gave the magazine back (a release) may have
        // changed it, and the zone mirror.
        if m.revoked.load(Acquire) {
            m.busy.store(false, Release);
            return None;
        }
        Some(Owned { m, cpu, _irq: irq })
    }

    /// The node of the calling CPU's magazine (0 for a CPU without one).
    fn current_node(&self) -> u8 {
        let cpu = crate::arch::cpu::current_cpu_id() as usize;
        self.magazines.get(cpu).map_or(0, Magazine::node)
    }

    /// Takes the magazines whose bit is set in `which` from their owners: marks them
    /// revoked, fences every other CPU, then waits until no owner is inside an
    /// operation. From then until the result drops, the caller alone touches them.
    /// The caller holds no magazine and not the shared lock.
    fn revoke(&self, which: u64) -> Revoked<'_> {
        let one_at_a_time = self.revoking.lock();
        bits(which).for_each(|i| self.magazines[i].revoked.store(true, Relaxed));
        crate::smp::fence_others();
        for i in bits(which) {
            while self.magazines[i].busy.load(Acquire) {
                crate::smp::serve_requests();
                core::hint::spin_loop();
            }
        }
        Revoked {
            magazines: &self.magazines,
            which,
            _one_at_a_time: one_at_a_time,
        }
    }

    /// Runs `f` on the shared allocator under its lock, and notes its free count.
    fn with_shared<R>(&self, f: impl FnOnce(&mut FrameAllocator) -> R) -> R {
        let mut fa = self.shared.lock();
        let r = f(&mut fa);
        self.shared_free.store(fa.free_frames(), Relaxed);
        r
    }

    // ---- regions ----

    /// Forgets every region, then takes `regions` (those that cannot be used are
    /// skipped); returns the frames managed.
    pub fn init(&self, regions: &[MemoryRegion]) -> u64 {
        let all = self.revoke(u64::MAX);
        let mut fa = self.shared.lock();
        all.iter().for_each(|m| {
            m.set_len(0);
            m.block_len.store(0, Relaxed);
            m.forget_hint();
        });
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
        let all = self.revoke(u64::MAX);
        let mut fa = self.shared.lock();
        for m in all.iter() {
            fa.put_cached(m.node() as usize, m.oldest(m.len()));
            fa.put_blocks(BLOCK_ORDER, m.oldest_blocks(m.block_len()));
            m.set_len(0);
            m.block_len.store(0, Relaxed);
            m.forget_hint();
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
    ///
    /// The fast path (inlined into callers) only pops the magazine: it calls nothing,
    /// so it saves no registers; an empty magazine, the reserve or a revoked
    /// magazine leave it for [`allocate_refilling`](Self::allocate_refilling), which
    /// enters again.
    #[inline]
    pub fn allocate_keeping(&self, keep: u64) -> Result<PhysFrame, FrameError> {
        if let Some(m) = self.enter() {
            let len = m.len();
            // One bounds check for "not empty" and "inside the array".
            let top = m.entries.get(len.wrapping_sub(1));
            if let Some(top) = top.filter(|_| self.shared_free.load(Relaxed) >= keep) {
                let (pfn, zi) = unpack(top.load(Relaxed));
                m.set_len(len - 1);
                let _ = phys::write_u8(self.zones.state_addr(zi, pfn), USED);
                return Ok(PhysFrame::from_number(pfn));
            }
        }
        self.allocate_refilling(keep)
    }

    /// [`allocate_keeping`](Self::allocate_keeping) past its fast path: refills an
    /// empty magazine, else goes to the shared allocator.
    #[cold]
    #[inline(never)]
    fn allocate_refilling(&self, keep: u64) -> Result<PhysFrame, FrameError> {
        let Some(m) = self.enter() else {
            return self.allocate_slow(self.current_node(), keep);
        };
        let mut len = m.len();
        if len == 0 {
            len = self.refill(&m, keep);
        }
        if len > 0 && self.shared_free.load(Relaxed) >= keep {
            let (pfn, zi) = unpack(m.entry(len - 1));
            m.set_len(len - 1);
            let _ = phys::write_u8(self.zones.state_addr(zi, pfn), USED);
            return Ok(PhysFrame::from_number(pfn));
        }
        let node = m.node();
        drop(m);
        self.allocate_slow(node, keep)
    }

    /// 2^order contiguous frames aligned to their size, from the calling CPU's node
    /// or the nearest node with room. Returns the first frame.
    #[inline]
    pub fn allocate_order(&self, order: u8) -> Result<PhysFrame, FrameError> {
        self.allocate_order_keeping(order, 0)
    }

    /// As [`allocate_order`](Self::allocate_order), as long as `keep` frames stay free.
    /// Inlined so that a caller's single frame takes the magazine's path without a
    /// call (a call, its saved registers and a result through memory were a fifth
    /// of an alloc+free pair); blocks go out of line.
    #[inline]
    pub fn allocate_order_keeping(&self, order: u8, keep: u64) -> Result<PhysFrame, FrameError> {
        match order {
            0 => self.allocate_keeping(keep),
            _ => self.allocate_block(order, keep),
        }
    }

    /// [`allocate_order_keeping`](Self::allocate_order_keeping) for order > 0.
    #[inline(never)]
    fn allocate_block(&self, order: u8, keep: u64) -> Result<PhysFrame, FrameError> {
        if order == BLOCK_ORDER {
            if let Some(block) = self.pop_block(keep) {
                return Ok(block);
            }
        }
        // Other blocks never sit in magazines: the shared allocator as before (its
        // own record of the CPU's node, then the fallback order), then again with
        // every magazine drained (their frames may complete a block).
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
    /// allocator, taking no more than leaves `keep` free there; returns its length.
    /// The length is set under the shared lock, so that a count sees each frame in
    /// one place.
    #[cold]
    fn refill(&self, m: &Owned<'_>, keep: u64) -> usize {
        self.mark_touched(m.cpu);
        let node = m.node() as usize;
        self.with_shared(|fa| {
            let room = fa.free_frames().saturating_sub(keep);
            let want = room.min(MAGAZINE_BATCH as u64) as usize;
            let mut batch = [0; MAGAZINE_BATCH];
            let n = fa.take_cached(node, &mut batch[..want]);
            // Lowest frame on top: handed out first, as the shared allocator would.
            for (i, &entry) in batch[..n].iter().rev().enumerate() {
                m.set_entry(i, entry);
            }
            m.set_len(n);
            n
        })
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
        self.drain_where(|m| m.node() == node);
        if let Ok(f) = self.with_shared(by_distance) {
            return Ok(f);
        }
        self.drain_where(|_| true);
        self.with_shared(by_distance)
    }

    // ---- freeing ----

    /// Gives back one frame from [`allocate`](Self::allocate).
    ///
    /// The fast path (inlined) parks the frame in a magazine that is neither empty
    /// nor full, if its zone is the hinted one; it calls nothing. Everything else
    /// (a full magazine to drain, an empty one to mark, another zone or node, a bad
    /// free) goes to [`deallocate_parking`](Self::deallocate_parking), which checks
    /// again from the start.
    #[inline]
    pub fn deallocate(&self, frame: PhysFrame) -> Result<(), FrameError> {
        if let Some(m) = self.enter() {
            let len = m.len();
            let pfn = frame.number();
            let hit = m
                .hinted(pfn)
                .filter(|_| frame.start_address.is_aligned(PAGE_SIZE));
            // `len - 1 < MAGAZINE_FRAMES - 1`: neither empty nor full.
            let slot = m.entries.get(len).filter(|_| len != 0);
            if let (Some((zi, bias)), Some(slot)) = (hit, slot) {
                // The window read once for the check and the write.
                let (w, at) = (phys::window(), PhysAddr(bias.wrapping_add(pfn)));
                if w.read_u8(at) == Ok(USED) {
                    let _ = w.write_u8(at, CACHED);
                    slot.store(pack(pfn, zi), Relaxed);
                    m.set_len(len + 1);
                    return Ok(());
                }
            }
        }
        self.deallocate_parking(frame)
    }

    /// [`deallocate`](Self::deallocate) past its fast path.
    #[cold]
    #[inline(never)]
    fn deallocate_parking(&self, frame: PhysFrame) -> Result<(), FrameError> {
        if let Some(m) = self.enter() {
            // The window read once for the check and the write.
            let w = phys::window();
            if let Some((entry, at)) = self.parkable(w, &m, frame) {
                let mut len = m.len();
                if len == MAGAZINE_FRAMES {
                    len = self.drain(&m, MAGAZINE_BATCH);
                }
                let _ = w.write_u8(at, CACHED);
                m.set_entry(len, entry);
                m.set_len(len + 1);
                if len == 0 {
                    self.mark_touched(m.cpu);
                }
                return Ok(());
            }
        }
        self.deallocate_shared(frame)
    }

    /// Another node's frame, or a bad free (the shared allocator has the errors), or
    /// no magazine to use: out of line, so that the inlined fast path stays small.
    #[cold]
    #[inline(never)]
    fn deallocate_shared(&self, frame: PhysFrame) -> Result<(), FrameError> {
        self.with_shared(|fa| fa.deallocate(frame))
    }

    /// Gives back a block of 2^order frames obtained with the same order (inlined
    /// for single frames, as [`allocate_order_keeping`](Self::allocate_order_keeping)).
    #[inline]
    pub fn deallocate_order(&self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        match order {
            0 => self.deallocate(frame),
            _ => self.deallocate_block(frame, order),
        }
    }

    /// [`deallocate_order`](Self::deallocate_order) for order > 0.
    #[inline(never)]
    fn deallocate_block(&self, frame: PhysFrame, order: u8) -> Result<(), FrameError> {
        if order == BLOCK_ORDER && self.park_block(frame) {
            return Ok(());
        }
        self.with_shared(|fa| fa.deallocate_order(frame, order))
    }

    // ---- blocks of BLOCK_ORDER in the magazines ----

    /// A block of [`BLOCK_ORDER`] from the calling CPU's magazine (refilled from its
    /// node's buddy lists, half its room at a time, when empty), marked allocated;
    /// `None` sends the caller to the shared allocator. Taken only while the shared
    /// allocator alone has `keep` frames free, as single frames are.
    fn pop_block(&self, keep: u64) -> Option<PhysFrame> {
        let m = self.enter()?;
        let mut n = m.block_len();
        if n == 0 {
            n = self.refill_blocks(&m, keep);
        }
        if n == 0 || self.shared_free.load(Relaxed) < keep {
            return None;
        }
        let (pfn, zi) = unpack(m.blocks[n - 1].load(Relaxed));
        m.block_len.store(n - 1, Relaxed);
        let _ = phys::write_u8(self.zones.state_addr(zi, pfn), USED | BLOCK_ORDER);
        Some(PhysFrame::from_number(pfn))
    }

    /// Fills `m`'s empty block stack with up to half its room (at least one) from
    /// its node's buddy lists, leaving `keep` frames free there; returns how many.
    /// The length is set under the shared lock (see [`refill`](Self::refill)).
    #[cold]
    fn refill_blocks(&self, m: &Owned<'_>, keep: u64) -> usize {
        let node = m.node() as usize;
        let cap = self.zones.block_cap[node].load(Relaxed);
        if cap == 0 {
            return 0;
        }
        self.mark_touched(m.cpu);
        self.with_shared(|fa| {
            let room = fa.free_frames().saturating_sub(keep) >> BLOCK_ORDER;
            let want = (room as usize).min(cap.div_ceil(2));
            let mut batch = [0; MAGAZINE_BLOCKS];
            let n = fa.take_blocks(node, BLOCK_ORDER, &mut batch[..want]);
            // Lowest block on top: handed out first.
            for (slot, &entry) in m.blocks.iter().zip(batch[..n].iter().rev()) {
                slot.store(entry, Relaxed);
            }
            m.block_len.store(n, Relaxed);
            n
        })
    }

    /// If `frame` heads an allocated block of [`BLOCK_ORDER`] of the calling CPU's
    /// node, parks it in the CPU's magazine (giving the oldest half back first if
    /// it is full) and says so; else changes nothing (the caller goes to the shared
    /// allocator, which has the errors).
    fn park_block(&self, frame: PhysFrame) -> bool {
        let Some(m) = self.enter() else {
            return false;
        };
        let cap = self.zones.block_cap[m.node() as usize].load(Relaxed);
        if cap == 0 || !frame.start_address.is_aligned(PAGE_SIZE << BLOCK_ORDER) {
            return false;
        }
        let pfn = frame.number();
        let Some((zi, bias)) = m.hinted(pfn).or_else(|| self.learn_zone(&m, pfn)) else {
            return false;
        };
        let (w, at) = (phys::window(), PhysAddr(bias.wrapping_add(pfn)));
        if w.read_u8(at) != Ok(USED | BLOCK_ORDER) {
            return false;
        }
        let mut n = m.block_len();
        if n >= cap {
            n = self.drain_blocks(&m, n - cap / 2);
        }
        let _ = w.write_u8(at, CACHED | BLOCK_ORDER);
        m.blocks[n].store(pack(pfn, zi), Relaxed);
        m.block_len.store(n + 1, Relaxed);
        if n == 0 {
            self.mark_touched(m.cpu);
        }
        true
    }

    /// Gives the `n` oldest blocks of `m` (held by the caller) back to the buddy
    /// lists; returns how many are left. The length is set under the shared lock.
    #[cold]
    fn drain_blocks(&self, m: &Magazine, n: usize) -> usize {
        let len = m.block_len();
        let n = n.min(len);
        if n == 0 {
            return len;
        }
        self.with_shared(|fa| {
            fa.put_blocks(BLOCK_ORDER, m.oldest_blocks(n));
            for i in n..len {
                m.blocks[i - n].store(m.blocks[i].load(Relaxed), Relaxed);
            }
            m.block_len.store(len - n, Relaxed);
        });
        len - n
    }

    /// If `frame` is an allocated single frame of `m`'s node: its magazine entry and
    /// the address of its state byte.
    #[inline]
    fn parkable(&self, w: phys::Window, m: &Magazine, frame: PhysFrame) -> Option<(u64, PhysAddr)> {
        if !frame.start_address.is_aligned(PAGE_SIZE) {
            return None;
        }
        let pfn = frame.number();
        let (zi, bias) = match m.hinted(pfn) {
            Some(hit) => hit,
            None => self.learn_zone(m, pfn)?,
        };
        let at = PhysAddr(bias.wrapping_add(pfn));
        (w.read_u8(at) == Ok(USED)).then_some((pack(pfn, zi), at))
    }

    /// The zone of `pfn` from the mirror, if it is on `m`'s node; remembered as
    /// `m`'s hint (the caller holds `m`). Returns its index and state-byte bias.
    #[cold]
    #[inline(never)]
    fn learn_zone(&self, m: &Magazine, pfn: u64) -> Option<(usize, u64)> {
        let zi = self.zones.find(pfn)?;
        if self.zones.node(zi) != m.node() {
            return None;
        }
        let (first, end) = self.zones.bounds(zi);
        let bias = self.zones.state_addr(zi, 0).0;
        m.hint_zone.store(zi as u8, Relaxed);
        m.hint_first.store(first, Relaxed);
        m.hint_span.store(end - first, Relaxed);
        m.hint_bias.store(bias, Relaxed);
        Some((zi, bias))
    }

    /// Gives the `n` oldest frames of `m` (held by the caller: its owner or a
    /// revoker) back to the shared allocator; returns the length left. The length
    /// is set under the shared lock (see [`refill`](Self::refill)).
    #[cold]
    fn drain(&self, m: &Magazine, n: usize) -> usize {
        let len = m.len();
        let n = n.min(len);
        let node = m.node() as usize;
        self.with_shared(|fa| {
            fa.put_cached(node, m.oldest(n));
            for i in n..len {
                m.set_entry(i - n, m.entry(i));
            }
            m.set_len(len - n);
        });
        len - n
    }

    /// Empties every magazine that `pick` chooses into the shared allocator (the
    /// caller holds no magazine).
    fn drain_where(&self, pick: impl Fn(&Magazine) -> bool) {
        let which = bits(self.touched.load(Relaxed))
            .filter(|&i| self.magazines[i].frames() > 0 && pick(&self.magazines[i]))
            .fold(0u64, |w, i| w | 1 << i);
        if which == 0 {
            return;
        }
        let taken = self.revoke(which);
        for m in taken.iter() {
            self.drain(m, m.len());
            self.drain_blocks(m, m.block_len());
        }
    }

    /// Empties every magazine into the shared allocator.
    pub fn drain_magazines(&self) {
        self.drain_where(|_| true);
    }

    // ---- counts and placement ----

    /// Frames in the magazines that `pick` chooses. Exact under the shared lock,
    /// where lengths change by refills and drains, up to the single frames owners
    /// allocate and free meanwhile (each counted before or after, as it happens).
    fn parked(&self, pick: impl Fn(&Magazine) -> bool) -> u64 {
        bits(self.touched.load(Relaxed))
            .map(|i| &self.magazines[i])
            .filter(|m| pick(m))
            .map(Magazine::frames)
            .sum()
    }

    /// Free frames on all nodes, those in magazines included.
    pub fn free_frames(&self) -> u64 {
        let fa = self.shared.lock();
        fa.free_frames() + self.parked(|_| true)
    }

    /// Whether at least `n` frames are free: without a lock while the shared
    /// allocator alone had that many at its last unlock (magazines only add to
    /// it), else counted exactly.
    pub fn has_free(&self, n: u64) -> bool {
        self.shared_free.load(Relaxed) >= n || self.free_frames() >= n
    }

    /// Free frames on `node`, those in magazines included.
    pub fn free_frames_on(&self, node: NumaNode) -> u64 {
        let fa = self.shared.lock();
        fa.free_frames_on(node) + self.parked(|m| m.node() as u32 == node.id)
    }

    /// Frames in magazines (for tests and reports).
    pub fn parked_frames(&self) -> u64 {
        let _fa = self.shared.lock();
        self.parked(|_| true)
    }

    /// How many frames CPU `cpu`'s magazine holds, and of which node (for tests:
    /// that a CPU's frames went through its magazine and stayed on its node).
    pub fn magazine_of(&self, cpu: u32) -> Option<(usize, NumaNode)> {
        let m = self.magazines.get(cpu as usize)?;
        Some((
            m.len(),
            NumaNode {
                id: m.node() as u32,
            },
        ))
    }

    /// How many blocks of [`BLOCK_ORDER`] CPU `cpu`'s magazine holds (for tests).
    pub fn magazine_blocks_of(&self, cpu: u32) -> Option<usize> {
        Some(self.magazines.get(cpu as usize)?.block_len())
    }

    /// How many blocks of [`BLOCK_ORDER`] a magazine of `node` may hold (for tests).
    pub fn block_cap_of(&self, node: NumaNode) -> usize {
        let caps = &self.zones.block_cap;
        caps.get(node.id as usize).map_or(0, |c| c.load(Relaxed))
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
        let moved = self
            .magazines
            .get(cpu as usize)
            .is_some_and(|m| m.node() as u32 != node.id);
        if moved {
            let taken = self.revoke(1 << cpu);
            for m in taken.iter() {
                self.drain(m, m.len());
                self.drain_blocks(m, m.block_len());
                m.node.store(node.id as u8, Relaxed);
                m.forget_hint();
            }
        }
        self.with_shared(|fa| {
            fa.set_cpu_node(cpu, node)?;
            self.zones.set_block_caps(fa);
            Ok(())
        })
    }

    /// Sets the order in which nodes are tried for allocations near `node`, as
    /// [`FrameAllocator::set_fallback_order`].
    pub fn set_fallback_order(&self, node: NumaNode, order: &[NumaNode]) -> Result<(), FrameError> {
        self.with_shared(|fa| fa.set_fallback_order(node, order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::phys::host_fresh_range;
    use std::sync::atomic::AtomicBool as StdFlag;
    use std::sync::Arc;

    const MIB: u64 = 1 << 20;

    fn fresh(bytes: u64) -> Box<PerCpuFrames> {
        let fa = Box::new(PerCpuFrames::new());
        fa.add_region(MemoryRegion::new(host_fresh_range(bytes), bytes))
            .unwrap();
        fa
    }

    fn my_cpu() -> usize {
        crate::arch::cpu::current_cpu_id() as usize
    }

    /// While a revoker holds this CPU's magazine, allocations and frees go to the
    /// shared allocator (the magazine is not touched), with its errors and exact
    /// counts; once given back, the magazine is used again.
    #[test]
    fn a_revoked_magazine_is_left_alone() {
        let fa = fresh(4 * MIB);
        let total = fa.total_frames();
        let cpu = my_cpu();
        let f = fa.allocate().unwrap();
        fa.deallocate(f).unwrap();
        let parked = fa.magazine_of(cpu as u32).unwrap().0;
        assert!(parked > 0);
        let taken = fa.revoke(1 << cpu);
        let g = fa.allocate().unwrap();
        assert_eq!(fa.magazine_of(cpu as u32).unwrap().0, parked);
        assert_eq!(fa.free_frames(), total - 1);
        fa.deallocate(g).unwrap();
        assert_eq!(
            fa.deallocate(g),
            Err(FrameError::NotAllocated(g.start_address))
        );
        assert_eq!(fa.magazine_of(cpu as u32).unwrap().0, parked);
        assert_eq!(fa.free_frames(), total);
        drop(taken);
        let h = fa.allocate().unwrap();
        assert_eq!(fa.magazine_of(cpu as u32).unwrap().0, parked - 1);
        fa.deallocate(h).unwrap();
        assert_eq!(fa.free_frames(), total);
    }

    /// A revoker waits while the owner is inside an operation, and gets the
    /// magazine as soon as it leaves.
    #[test]
    fn revoke_waits_for_the_owner() {
        let fa: Arc<PerCpuFrames> = Arc::from(fresh(MIB));
        let owner = MAX_CPUS - 1;
        fa.magazines[owner].busy.store(true, Relaxed);
        let done = Arc::new(StdFlag::new(false));
        let revoker = {
            let (fa, done) = (fa.clone(), done.clone());
            std::thread::spawn(move || {
                let taken = fa.revoke(1 << owner);
                done.store(true, SeqCst);
                drop(taken);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !done.load(SeqCst),
            "the revoker went in while the owner was busy"
        );
        fa.magazines[owner].busy.store(false, Release);
        revoker.join().unwrap();
        assert!(done.load(SeqCst));
        assert!(!fa.magazines[owner].revoked.load(Relaxed), "given back");
    }

    /// Host threads are CPUs of their own: live threads never share an id.
    #[test]
    fn host_threads_have_their_own_cpu_ids() {
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let ids: Vec<u32> = (0..4)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let id = crate::arch::cpu::current_cpu_id();
                    barrier.wait();
                    id
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 4, "{ids:?}");
    }

    /// Frames allocated on one thread and freed on another move between magazines
    /// while a third drains and counts: each frame handed out once, and every frame
    /// back at the end, in the magazines or the shared allocator.
    #[test]
    fn frames_move_between_threads_and_magazines() {
        let fa = fresh(8 * MIB);
        let total = fa.total_frames();
        let fa: &PerCpuFrames = &fa;
        let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
        let seen = &seen;
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<PhysFrame>>(4);
            s.spawn(move || {
                for _ in 0..200 {
                    let batch: Vec<_> = (0..100).map(|_| fa.allocate().unwrap()).collect();
                    let mut seen = seen.lock().unwrap();
                    assert!(batch.iter().all(|&f| seen.insert(f)), "handed out twice");
                    drop(seen);
                    tx.send(batch).unwrap();
                }
            });
            s.spawn(move || {
                for batch in rx {
                    let mut seen = seen.lock().unwrap();
                    batch.iter().for_each(|f| assert!(seen.remove(f)));
                    drop(seen);
                    batch.into_iter().for_each(|f| fa.deallocate(f).unwrap());
                }
            });
            s.spawn(move || {
                for _ in 0..100 {
                    fa.drain_magazines();
                    assert!(fa.free_frames() <= total);
                    std::thread::yield_now();
                }
            });
        });
        assert_eq!(fa.free_frames(), total);
        fa.drain_magazines();
        assert_eq!((fa.parked_frames(), fa.free_frames()), (0, total));
    }
}

//! Frame allocators: the kernel's against `buddy_system_allocator`'s `FrameAllocator`
//! and a plain bitmap allocator written here.
//!
//! ## Contenders
//! * `kernel: magazine + buddy` (the reference): a [`PerCpuFrames`], the type of the
//!   kernel's global allocator, called as the kernel calls it for every frame: the
//!   calling CPU's magazine (no lock: the host thread is its CPU; it keeps single
//!   frames and a few 2 MiB blocks), the shared buddy allocator under its lock for
//!   refills, drains and other blocks.
//! * `kernel buddy alone, no lock`: the shared `FrameAllocator` through `&mut`, what
//!   it costs once its lock is held (the kernel row before the magazines).
//! * `buddy_system_allocator`, and the bitmap (`bitmap (next-fit)`), both through
//!   `&mut` with no lock;
//! * `bitmap + lock`: the bitmap behind the kernel's shared lock type ([`IrqMutex`]),
//!   taken per operation, as a kernel on several CPUs would have to use a shared
//!   bitmap.
//!
//! Locks are not free: on the 2-core Xeon these rows were measured on, one
//! uncontended lock and unlock (one atomic compare-and-swap and a store) costs about
//! 7 ns, so an alloc+free pair pays 14 ns in locks alone, which is more than the
//! unlocked bitmap's whole pair. That is why the magazines take none.
//!
//! ## Same memory, same state, same workload
//! Every contender manages its own fresh 1 GiB of simulated physical memory (1 GiB
//! aligned, from `host_fresh_range`) and is first *aged* the same way: 4,096 single
//! frames are allocated and every other one is freed again, so 2,048 frames stay held
//! for the whole run and the allocator is no longer pristine (a pristine buddy
//! allocator splits 18 levels on every single-frame allocation, which no running
//! kernel sees). Then, per contender:
//!
//! * `single`: allocate one frame, free it (op = one alloc+free pair);
//! * `batch1000`: allocate 1,000 frames, then free them in allocation order (op = one
//!   frame allocated and freed);
//! * `order9`: allocate 16 blocks of 512 contiguous, 2 MiB-aligned frames, then free
//!   them (op = one block allocated and freed).
//!
//! ## Fragmented memory
//! Each contender gets a second fresh 1 GiB, filled to 90 % by one seeded random
//! sequence of single-frame operations (3 in 4 allocate, 1 in 4 frees a random held
//! frame; the same sequence for everyone, see [`fragment`]), so the free frames are
//! scattered holes. Then:
//!
//! * `frag_single`: allocate one frame, free it (op = one alloc+free pair);
//! * `frag_batch1000`: allocate 1,000 frames, then free them in allocation order (op =
//!   one frame allocated and freed).
//!
//! A third fresh 1 GiB each, filled by the same sequence to 99 %, for
//! `full99_batch1000` (the batch again): there the bitmap's scans over full words show.

use crate::harness::Runner;
use criterion::Bencher;
use kernel::memory::frame_allocator::{FrameAllocator as KernelFrames, PerCpuFrames};
use kernel::memory::phys::host_fresh_range;
use kernel::memory::{MemoryRegion, PhysAddr, PhysFrame, PAGE_SIZE};
use kernel::sync::IrqMutex;
use std::hint::black_box;

const OURS: &str = "kernel: magazine + buddy";
const BARE: &str = "kernel buddy alone, no lock";
const BSA: &str = "buddy_system_allocator";
const BITMAP: &str = "bitmap (next-fit)";
const LOCKED_BITMAP: &str = "bitmap + lock";

/// Bytes of simulated RAM each contender manages.
pub const REGION_BYTES: u64 = 1 << 30;

/// What the benchmark needs from a frame allocator: blocks of 2^order frames, by
/// physical address.
pub trait Frames {
    /// 2^order contiguous frames aligned to their size, or `None`.
    fn alloc(&mut self, order: u8) -> Option<u64>;
    /// Gives back a block from `alloc` with the same order.
    fn free(&mut self, addr: u64, order: u8);
}

/// The kernel's allocator as the kernel uses it for every frame: the calling CPU's
/// magazine (no lock), the shared buddy allocator behind it (its lock taken per
/// refill or drain). The benchmark thread is its own CPU on the host.
pub struct Magazines(pub Box<PerCpuFrames>);

impl Magazines {
    /// The allocator over a fresh region of `bytes`.
    pub fn fresh(bytes: u64) -> Self {
        let start = host_fresh_range(bytes);
        let fa = Box::new(PerCpuFrames::new());
        fa.add_region(MemoryRegion::new(start, bytes))
            .expect("kernel allocator takes the region");
        Magazines(fa)
    }
}

/// [`Frames`] for a wrapper of one of the kernel's allocators (their
/// `allocate_order` and `deallocate_order` have the same shape).
macro_rules! kernel_frames {
    ($wrapper:ty) => {
        impl Frames for $wrapper {
            #[inline]
            fn alloc(&mut self, order: u8) -> Option<u64> {
                self.0.allocate_order(order).ok().map(|f| f.start_address.0)
            }
            #[inline]
            fn free(&mut self, addr: u64, order: u8) {
                let frame = PhysFrame::containing_address(PhysAddr(addr));
                self.0.deallocate_order(frame, order).expect("kernel free");
            }
        }
    };
}

kernel_frames!(Magazines);

/// The kernel's buddy allocator alone, used through `&mut` with no lock: what the
/// shared allocator costs once its lock is held.
pub struct Ours(pub KernelFrames);

impl Ours {
    /// The allocator over a fresh region of `bytes`.
    pub fn fresh(bytes: u64) -> Self {
        let start = host_fresh_range(bytes);
        let mut fa = KernelFrames::new();
        fa.add_region(MemoryRegion::new(start, bytes))
            .expect("kernel allocator takes the region");
        Ours(fa)
    }
}

kernel_frames!(Ours);

/// `buddy_system_allocator::FrameAllocator` (free lists are `BTreeSet`s on the host heap).
pub struct BuddySystem(buddy_system_allocator::FrameAllocator<33>);

impl BuddySystem {
    /// The allocator over a fresh region of `bytes`.
    pub fn fresh(bytes: u64) -> Self {
        let start = host_fresh_range(bytes).0 / PAGE_SIZE;
        let mut fa = buddy_system_allocator::FrameAllocator::<33>::new();
        fa.add_frame(start as usize, (start + bytes / PAGE_SIZE) as usize);
        BuddySystem(fa)
    }
}

impl Frames for BuddySystem {
    #[inline]
    fn alloc(&mut self, order: u8) -> Option<u64> {
        self.0.alloc(1 << order).map(|pfn| pfn as u64 * PAGE_SIZE)
    }
    #[inline]
    fn free(&mut self, addr: u64, order: u8) {
        self.0.dealloc((addr / PAGE_SIZE) as usize, 1 << order);
    }
}

/// A plain bitmap allocator: one bit per frame (1 = in use), first fit from a
/// next-fit cursor (the word where the last search succeeded), wrapping around once.
/// Blocks of 2^order frames are searched at their natural alignment: within a word
/// for order < 6, as runs of whole zero words for order >= 6.
pub struct Bitmap {
    base_pfn: u64,
    words: Vec<u64>,
    cursor: usize,
}

impl Bitmap {
    /// The allocator over a fresh region of `bytes` (a multiple of 256 KiB).
    pub fn fresh(bytes: u64) -> Self {
        let base_pfn = host_fresh_range(bytes).0 / PAGE_SIZE;
        let frames = bytes / PAGE_SIZE;
        Bitmap {
            base_pfn,
            words: vec![0; (frames / 64) as usize],
            cursor: 0,
        }
    }

    /// A free, aligned run of `n` < 64 bits inside word `w`, as a bit index.
    #[inline]
    fn run_in_word(w: u64, n: u32) -> Option<u32> {
        if n == 1 {
            return (w != u64::MAX).then(|| (!w).trailing_zeros());
        }
        let mask = (1u64 << n) - 1;
        (0..64).step_by(n as usize).find(|&s| w & (mask << s) == 0)
    }
}

impl Frames for Bitmap {
    fn alloc(&mut self, order: u8) -> Option<u64> {
        let len = self.words.len();
        let frames = 1u64 << order;
        if frames < 64 {
            let n = frames as u32;
            for k in 0..len {
                let i = (self.cursor + k) % len;
                if let Some(bit) = Self::run_in_word(self.words[i], n) {
                    self.words[i] |= ((1u64 << n) - 1) << bit;
                    self.cursor = i;
                    return Some((self.base_pfn + i as u64 * 64 + bit as u64) * PAGE_SIZE);
                }
            }
            return None;
        }
        let step = (frames / 64) as usize;
        let groups = len / step;
        let first = self.cursor / step;
        for k in 0..groups {
            let g = (first + k) % groups;
            let run = &mut self.words[g * step..(g + 1) * step];
            if run.iter().all(|&w| w == 0) {
                run.fill(u64::MAX);
                self.cursor = g * step;
                return Some((self.base_pfn + (g * step) as u64 * 64) * PAGE_SIZE);
            }
        }
        None
    }

    fn free(&mut self, addr: u64, order: u8) {
        let bit = addr / PAGE_SIZE - self.base_pfn;
        let frames = 1u64 << order;
        let i = (bit / 64) as usize;
        if frames < 64 {
            let mask = ((1u64 << frames) - 1) << (bit % 64);
            debug_assert_eq!(self.words[i] & mask, mask, "bitmap double free");
            self.words[i] &= !mask;
        } else {
            self.words[i..i + (frames / 64) as usize].fill(0);
        }
    }
}

/// The bitmap behind the kernel's lock (the shared allocator's kind): a kernel on
/// several CPUs has to lock a shared bitmap for every operation, so this is the
/// bitmap as a kernel would use it.
pub struct LockedBitmap(IrqMutex<Bitmap>);

impl LockedBitmap {
    /// The allocator over a fresh region of `bytes`.
    pub fn fresh(bytes: u64) -> Self {
        LockedBitmap(IrqMutex::new(Bitmap::fresh(bytes)))
    }
}

impl Frames for LockedBitmap {
    #[inline]
    fn alloc(&mut self, order: u8) -> Option<u64> {
        self.0.lock().alloc(order)
    }
    #[inline]
    fn free(&mut self, addr: u64, order: u8) {
        self.0.lock().free(addr, order)
    }
}

/// Brings an allocator into the common aged state; returns the frames it keeps.
fn age(fa: &mut (impl Frames + ?Sized)) -> Vec<u64> {
    let all: Vec<u64> = (0..4096).map(|_| fa.alloc(0).expect("aging")).collect();
    let mut kept = Vec::with_capacity(2048);
    for (i, f) in all.into_iter().enumerate() {
        if i % 2 == 0 {
            fa.free(f, 0);
        } else {
            kept.push(f);
        }
    }
    kept
}

/// A fixed-seed xorshift64 generator: the same numbers on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Fills `fa` (which manages `frames` frames) to 90 % of `frames` with one fixed
/// random sequence of single-frame operations: 3 in 4 allocate, 1 in 4 free a random
/// held frame. The sequence depends only on the seed and on how many frames are
/// held, so every contender goes through the same one. Returns the held frames.
pub fn fragment(fa: &mut (impl Frames + ?Sized), frames: u64) -> Vec<u64> {
    fill(fa, frames, 900)
}

/// [`fragment`] to `per_mille` thousandths of `frames` instead of 90 %.
pub fn fill(fa: &mut (impl Frames + ?Sized), frames: u64, per_mille: u64) -> Vec<u64> {
    let target = (frames * per_mille / 1000) as usize;
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut held = Vec::with_capacity(target);
    while held.len() < target {
        let r = rng.next();
        if held.is_empty() || !r.is_multiple_of(4) {
            held.push(fa.alloc(0).expect("fragmenting"));
        } else {
            let i = (r >> 8) as usize % held.len();
            fa.free(held.swap_remove(i), 0);
        }
    }
    held
}

/// Checks a contender before timing it: blocks are aligned, inside its memory and
/// disjoint, and everything comes back.
fn check(fa: &mut (impl Frames + ?Sized)) {
    let mut seen = std::collections::BTreeSet::new();
    let mut blocks = Vec::new();
    for &order in &[0u8, 0, 3, 9, 0, 9, 1, 0] {
        for _ in 0..50 {
            let a = fa.alloc(order).expect("check alloc");
            assert_eq!(a % (PAGE_SIZE << order), 0, "misaligned block");
            for f in 0..1u64 << order {
                assert!(seen.insert(a / PAGE_SIZE + f), "frame handed out twice");
            }
            blocks.push((a, order));
        }
    }
    for (a, o) in blocks {
        fa.free(a, o);
    }
}

/// One alloc+free pair.
fn single<F: Frames + ?Sized>(b: &mut Bencher<'_>, fa: &mut F) {
    b.iter(|| {
        let f = fa.alloc(0).expect("alloc");
        fa.free(black_box(f), 0);
    })
}

/// `n` blocks of 2^order frames allocated, then freed in allocation order.
fn batch<F: Frames + ?Sized>(b: &mut Bencher<'_>, fa: &mut F, n: usize, order: u8) {
    let mut held = Vec::with_capacity(n);
    b.iter(|| {
        for _ in 0..n {
            held.push(fa.alloc(order).expect("alloc"));
        }
        for f in held.drain(..) {
            fa.free(black_box(f), order);
        }
    })
}

/// Runs `$body` (with `$b` the bencher, `$fa` the allocator) for every contender of
/// `$c` in group `$g`; a macro so that each contender's calls are static, as inlined
/// as its own code allows, not calls through a `dyn`.
macro_rules! each {
    ($c:expr, $g:expr, |$b:ident, $fa:ident| $body:expr) => {{
        let c = &mut $c;
        let $fa = &mut c.magazines;
        $g.bench(OURS, true, |$b| $body);
        let $fa = &mut c.bare;
        $g.bench(BARE, false, |$b| $body);
        let $fa = &mut c.bsa;
        $g.bench(BSA, false, |$b| $body);
        let $fa = &mut c.bitmap;
        $g.bench(BITMAP, false, |$b| $body);
        let $fa = &mut c.locked_bitmap;
        $g.bench(LOCKED_BITMAP, false, |$b| $body);
    }};
}

/// Runs the frame-allocator workloads for every contender.
pub fn run(r: &mut Runner) {
    run_aged(r);
    run_fragmented(r);
    run_full(r);
}

/// The workloads on aged memory.
fn run_aged(r: &mut Runner) {
    if !["single", "batch1000", "order9"]
        .iter()
        .any(|id| r.wanted("frame", id))
    {
        return;
    }
    // Each contender gets its own memory once; every workload leaves the allocator in
    // the aged state it found it in. The kept frames stay allocated until exit.
    let mut c = Contenders::fresh();
    c.check();
    let _kept = c.age();

    let mut g = r.group("frame", "single", "frame: single alloc+free (op = pair)", 1);
    each!(c, g, |b, fa| single(b, fa));
    g.finish();

    let w = "frame: 1000 allocs then 1000 frees (op = one frame)";
    let mut g = r.group("frame", "batch1000", w, 1000);
    each!(c, g, |b, fa| batch(b, fa, 1000, 0));
    g.finish();

    let w = "frame: 16 order-9 (2 MiB) blocks alloc then free (op = one block)";
    let mut g = r.group("frame", "order9", w, 16);
    each!(c, g, |b, fa| batch(b, fa, 16, 9));
    g.finish();
}

/// Every contender, each over its own fresh [`REGION_BYTES`].
struct Contenders {
    magazines: Magazines,
    bare: Ours,
    bsa: BuddySystem,
    bitmap: Bitmap,
    locked_bitmap: LockedBitmap,
}

impl Contenders {
    fn fresh() -> Self {
        Contenders {
            magazines: Magazines::fresh(REGION_BYTES),
            bare: Ours::fresh(REGION_BYTES),
            bsa: BuddySystem::fresh(REGION_BYTES),
            bitmap: Bitmap::fresh(REGION_BYTES),
            locked_bitmap: LockedBitmap::fresh(REGION_BYTES),
        }
    }

    fn all(&mut self) -> [(&'static str, bool, &mut dyn Frames); 5] {
        [
            (OURS, true, &mut self.magazines),
            (BARE, false, &mut self.bare),
            (BSA, false, &mut self.bsa),
            (BITMAP, false, &mut self.bitmap),
            (LOCKED_BITMAP, false, &mut self.locked_bitmap),
        ]
    }

    fn check(&mut self) {
        self.all().into_iter().for_each(|(_, _, fa)| check(fa));
    }

    /// Ages everyone; returns the frames they keep.
    fn age(&mut self) -> Vec<Vec<u64>> {
        self.all().into_iter().map(|(_, _, fa)| age(fa)).collect()
    }

    /// Fills everyone to `per_mille` thousandths of the same frame count (so by the
    /// same sequence); returns the frames they hold.
    fn fill(&mut self, per_mille: u64) -> Vec<Vec<u64>> {
        let frames = REGION_BYTES / PAGE_SIZE;
        self.all()
            .into_iter()
            .map(|(_, _, fa)| fill(fa, frames, per_mille))
            .collect()
    }
}

/// The batch on memory 99 % full of randomly placed frames: a free frame every 100
/// on average, so about every other 64-frame word of the bitmap is full and its
/// scans show (at 90 % full its first word almost always has a free bit).
fn run_full(r: &mut Runner) {
    if !r.wanted("frame", "full99_batch1000") {
        return;
    }
    let mut c = Contenders::fresh();
    let _held = c.fill(990);
    let w = "frame: 1000 allocs then 1000 frees at 99 % full (op = one frame)";
    let mut g = r.group("frame", "full99_batch1000", w, 1000);
    each!(c, g, |b, fa| batch(b, fa, 1000, 0));
    g.finish();
}

/// The workloads on memory 90 % full of randomly placed frames.
fn run_fragmented(r: &mut Runner) {
    if !["frag_single", "frag_batch1000"]
        .iter()
        .any(|id| r.wanted("frame", id))
    {
        return;
    }
    let mut c = Contenders::fresh();
    // Held until exit, like the aged rows' kept frames.
    let _held = c.fill(900);

    let w = "frame: single alloc+free at 90 % full, random holes (op = pair)";
    let mut g = r.group("frame", "frag_single", w, 1);
    each!(c, g, |b, fa| single(b, fa));
    g.finish();

    let w = "frame: 1000 allocs then 1000 frees at 90 % full (op = one frame)";
    let mut g = r.group("frame", "frag_batch1000", w, 1000);
    each!(c, g, |b, fa| batch(b, fa, 1000, 0));
    g.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(fa: &mut (impl Frames + ?Sized)) {
        check(fa);
        let kept = age(fa);
        assert_eq!(kept.len(), 2048);
        check(fa);
    }

    #[test]
    fn contenders_pass_the_check() {
        Contenders::fresh()
            .all()
            .into_iter()
            .for_each(|(_, _, fa)| exercise(fa));
    }

    /// Every contender goes through the same fragmenting sequence, ends up holding
    /// 90 % of its frames, all distinct, and gets everything back.
    #[test]
    fn fragmenting_is_the_same_for_everyone() {
        const BYTES: u64 = 64 << 20;
        let frames = BYTES / PAGE_SIZE;
        fn run(fa: &mut (impl Frames + ?Sized), frames: u64) {
            let held = fragment(fa, frames);
            assert_eq!(held.len() as u64, frames * 9 / 10);
            let distinct: std::collections::BTreeSet<_> = held.iter().collect();
            assert_eq!(distinct.len(), held.len(), "a frame held twice");
            for f in held {
                fa.free(f, 0);
            }
            // Everything merged back: half the memory as 2 MiB blocks.
            let blocks: Vec<u64> = (0..16).map(|_| fa.alloc(9).expect("2 MiB block")).collect();
            blocks.into_iter().for_each(|b| fa.free(b, 9));
        }
        run(&mut Magazines::fresh(BYTES), frames - 4); // 4 frames of metadata
        run(&mut Ours::fresh(BYTES), frames - 4);
        run(&mut BuddySystem::fresh(BYTES), frames);
        run(&mut Bitmap::fresh(BYTES), frames);
        run(&mut LockedBitmap::fresh(BYTES), frames);
    }

    #[test]
    fn bitmap_runs_out_and_recovers() {
        let mut b = Bitmap::fresh(4 << 20); // 1024 frames
        let all: Vec<u64> = (0..1024).map(|_| b.alloc(0).unwrap()).collect();
        assert_eq!(b.alloc(0), None);
        b.free(all[700], 0);
        assert_eq!(b.alloc(0), Some(all[700]));
        for f in all {
            b.free(f, 0);
        }
        assert!(b.alloc(9).is_some() && b.alloc(9).is_some() && b.alloc(9).is_none());
        assert!(b.alloc(3).is_none());
    }
}

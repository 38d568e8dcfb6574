//! Heaps: the kernel's `KernelHeap` against `talc`, `linked_list_allocator` and
//! `buddy_system_allocator::Heap`, replaying one recorded mixed-size trace.
//!
//! ## The trace
//! Made once from a fixed seed (xorshift64*, seed [`SEED`]), then replayed verbatim on
//! every contender: [`TRACE_OPS`] operations, each an allocation or the free of a
//! uniformly chosen live block, with up to [`MAX_LIVE`] blocks live; whatever is
//! still live at the end is freed, so one replay leaves the heap as it found it.
//! Sizes, log-uniform within each band: 70 % 8-256 B, 20 % 256 B-4 KiB, 10 %
//! 4-64 KiB. Alignment: 8, with 1 in 4 at 16 and 1 in 16 at 64.
//!
//! ## Same memory
//! Every contender gets [`HEAP_BYTES`] of fresh simulated physical memory, reached
//! through `phys_to_virt`: the kernel heap takes it as frames from a private kernel
//! `FrameAllocator` over that range; the peers `claim`/`init` it as one span.
//!
//! Before timing, each contender replays the trace once in *checked* mode: every
//! block is tagged at both ends and the tags are verified at free time, and alignment
//! is asserted, so a contender that hands out overlapping or misaligned memory fails
//! loudly instead of winning.

use crate::harness::Runner;
use criterion::Bencher;
use kernel::memory::frame_allocator::FrameAllocator as KernelFrames;
use kernel::memory::heap::KernelHeap;
use kernel::memory::phys::{host_fresh_range, phys_to_virt};
use kernel::memory::MemoryRegion;
use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;

/// Simulated RAM per contender.
pub const HEAP_BYTES: u64 = 64 << 20;
/// Operations in the trace (allocations + frees, including the final frees).
pub const TRACE_OPS: usize = 20_000;
/// Most blocks live at once.
pub const MAX_LIVE: usize = 2_000;
/// Seed of the trace.
pub const SEED: u64 = 0x5eed_1234_abcd_0001;

/// One step of the trace: allocate `layout` into `slot`, or free `slot`.
#[derive(Clone, Copy)]
pub enum Op {
    /// Allocate into the slot.
    Alloc(usize, Layout),
    /// Free the slot.
    Free(usize),
}

/// A heap under test.
pub trait Heap {
    /// Memory for `layout`, or `None`.
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>>;
    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` comes from `alloc(layout)` on this heap and is not yet freed.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `[0, n)`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    /// Log-uniform in `[lo, hi)`.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (lo * (hi / lo).powf(u)) as usize
    }
}

/// The trace and the number of slots it uses.
pub fn make_trace() -> (Vec<Op>, usize) {
    let mut rng = XorShift(SEED);
    let mut ops = Vec::with_capacity(TRACE_OPS);
    let mut live: Vec<usize> = Vec::new();
    let mut free_slots: Vec<usize> = Vec::new();
    let mut slots = 0;
    while ops.len() + live.len() < TRACE_OPS {
        let alloc = live.is_empty() || (live.len() < MAX_LIVE && rng.below(100) < 55);
        if alloc {
            let band = rng.below(100);
            let size = match band {
                0..=69 => rng.log_uniform(8.0, 256.0),
                70..=89 => rng.log_uniform(256.0, 4096.0),
                _ => rng.log_uniform(4096.0, 65536.0),
            };
            let align = match rng.below(16) {
                0 => 64,
                1..=4 => 16,
                _ => 8,
            };
            let slot = free_slots.pop().unwrap_or_else(|| {
                slots += 1;
                slots - 1
            });
            let layout = Layout::from_size_align(size.max(8), align).expect("layout");
            ops.push(Op::Alloc(slot, layout));
            live.push(slot);
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let slot = live.swap_remove(i);
            ops.push(Op::Free(slot));
            free_slots.push(slot);
        }
    }
    for slot in live {
        ops.push(Op::Free(slot));
    }
    (ops, slots)
}

/// Replays the trace on `heap`; `table` holds one (pointer, layout) per slot.
#[inline]
fn replay<H: Heap>(heap: &mut H, ops: &[Op], table: &mut [(*mut u8, Layout)]) {
    for op in ops {
        match *op {
            Op::Alloc(slot, layout) => {
                let p = heap.alloc(layout).expect("heap exhausted");
                table[slot] = (black_box(p.as_ptr()), layout);
            }
            Op::Free(slot) => {
                let (p, layout) = table[slot];
                // SAFETY: the trace frees each slot exactly once after allocating it.
                unsafe { heap.free(NonNull::new_unchecked(p), layout) };
            }
        }
    }
}

/// Replays the trace once, checking every block: aligned, disjoint from every live
/// block (a map of live ranges), and its first and last 8 bytes intact at free time.
fn replay_checked<H: Heap>(name: &str, heap: &mut H, ops: &[Op], slots: usize) {
    let mut table = vec![(std::ptr::null_mut::<u8>(), Layout::new::<u8>(), 0u64); slots];
    let mut live = std::collections::BTreeMap::<usize, (usize, usize)>::new();
    for (n, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc(slot, layout) => {
                let p = heap.alloc(layout).expect("heap exhausted").as_ptr();
                let (a, len) = (p as usize, layout.size());
                assert_eq!(
                    a % layout.align(),
                    0,
                    "{name}: op {n}: misaligned {layout:?}"
                );
                let before = live.range(..a + len).next_back();
                if let Some((&b, &(blen, bop))) = before {
                    assert!(
                        b + blen <= a,
                        "{name}: op {n}: {layout:?} at {a:#x} overlaps the block of op {bop} \
                         at {b:#x} (+{blen:#x})"
                    );
                }
                live.insert(a, (len, n));
                let tag = n as u64;
                // SAFETY: the block is at least 8 bytes (the trace's minimum size) and
                // ours until freed; unaligned writes cover its first and last 8 bytes.
                unsafe {
                    (p.add(len - 8) as *mut u64).write_unaligned(!tag);
                    (p as *mut u64).write_unaligned(tag);
                }
                table[slot] = (p, layout, tag);
            }
            Op::Free(slot) => {
                let (p, layout, tag) = table[slot];
                let len = layout.size();
                // SAFETY: as above; the block is still live.
                let (head, tail) = unsafe {
                    (
                        (p as *const u64).read_unaligned(),
                        (p.add(len - 8) as *const u64).read_unaligned(),
                    )
                };
                assert_eq!(head, tag, "{name}: op {n}: block head overwritten");
                if len >= 16 {
                    assert_eq!(tail, !tag, "{name}: op {n}: block tail overwritten");
                }
                live.remove(&(p as usize));
                // SAFETY: allocated with this layout and freed once.
                unsafe { heap.free(NonNull::new_unchecked(p), layout) };
            }
        }
    }
}

/// The kernel heap over a private frame allocator.
pub struct Ours(KernelHeap<KernelFrames>);

impl Ours {
    /// A heap growing from `bytes` of fresh memory.
    pub fn fresh(bytes: u64) -> Self {
        let mut fa = KernelFrames::new();
        // Add room for the allocator's metadata (1 byte per frame) on top.
        let total = bytes + bytes / 4096 + 4096;
        fa.add_region(MemoryRegion::new(host_fresh_range(total), total))
            .expect("region");
        Ours(KernelHeap::new(fa))
    }
}

impl Heap for Ours {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

fn fresh_span(bytes: u64) -> *mut u8 {
    phys_to_virt(host_fresh_range(bytes)).as_mut_ptr()
}

/// `talc` (v5, `Manual` source, default binning).
pub struct Talc(talc::base::Talc<talc::source::Manual, talc::DefaultBinning>);

impl Talc {
    /// A heap over `bytes` of fresh memory.
    pub fn fresh(bytes: u64) -> Self {
        let mut t = talc::base::Talc::new(talc::source::Manual);
        // SAFETY: the span is fresh simulated RAM that nothing else uses.
        unsafe { t.claim(fresh_span(bytes), bytes as usize) }.expect("talc claim");
        Talc(t)
    }
}

impl Heap for Talc {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: the trace never asks for size 0.
        unsafe { self.0.allocate(layout) }
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate(ptr.as_ptr(), layout) }
    }
}

/// `linked_list_allocator::Heap` (first fit).
pub struct LinkedList(linked_list_allocator::Heap);

impl LinkedList {
    /// A heap over `bytes` of fresh memory.
    pub fn fresh(bytes: u64) -> Self {
        let mut h = linked_list_allocator::Heap::empty();
        // SAFETY: the span is fresh simulated RAM that nothing else uses.
        unsafe { h.init(fresh_span(bytes), bytes as usize) };
        LinkedList(h)
    }
}

impl Heap for LinkedList {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.allocate_first_fit(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.deallocate(ptr, layout) }
    }
}

/// `buddy_system_allocator::Heap<32>`.
pub struct BuddyHeap(buddy_system_allocator::Heap<32>);

impl BuddyHeap {
    /// A heap over `bytes` of fresh memory.
    pub fn fresh(bytes: u64) -> Self {
        let mut h = buddy_system_allocator::Heap::<32>::new();
        // SAFETY: the span is fresh simulated RAM that nothing else uses.
        unsafe { h.init(fresh_span(bytes) as usize, bytes as usize) };
        BuddyHeap(h)
    }
}

impl Heap for BuddyHeap {
    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout).ok()
    }
    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

fn timed<H: Heap>(b: &mut Bencher<'_>, name: &str, heap: &mut H, ops: &[Op], slots: usize) {
    replay_checked(name, heap, ops, slots);
    let mut table = vec![(std::ptr::null_mut::<u8>(), Layout::new::<u8>()); slots];
    b.iter(|| replay(heap, ops, &mut table));
}

/// Runs the heap workload for every contender.
pub fn run(r: &mut Runner) {
    if !r.wanted("heap", "mixed") {
        return;
    }
    let (ops, slots) = make_trace();
    let w = format!(
        "heap: mixed 8 B-64 KiB trace, {} ops, <= {MAX_LIVE} live (op = alloc or free)",
        ops.len()
    );
    let mut g = r.group("heap", "mixed", &w, ops.len() as u64);
    let mut ours = Ours::fresh(HEAP_BYTES);
    g.bench("kernel heap", true, |b| {
        timed(b, "kernel heap", &mut ours, &ops, slots)
    });
    let mut talc = Talc::fresh(HEAP_BYTES);
    g.bench("talc", false, |b| timed(b, "talc", &mut talc, &ops, slots));
    let mut ll = LinkedList::fresh(HEAP_BYTES);
    g.bench("linked_list_allocator", false, |b| {
        timed(b, "linked_list_allocator", &mut ll, &ops, slots)
    });
    let mut bh = BuddyHeap::fresh(HEAP_BYTES);
    g.bench("buddy_system_allocator", false, |b| {
        timed(b, "buddy_system_allocator", &mut bh, &ops, slots)
    });
    g.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_is_fixed_and_balanced() {
        let (a, slots) = make_trace();
        let (b, _) = make_trace();
        assert_eq!(a.len(), TRACE_OPS);
        let allocs = a.iter().filter(|o| matches!(o, Op::Alloc(..))).count();
        assert_eq!(allocs * 2, a.len());
        assert!(slots <= MAX_LIVE);
        let sig = |ops: &[Op]| -> Vec<(usize, usize)> {
            ops.iter()
                .map(|o| match o {
                    Op::Alloc(s, l) => (*s, l.size()),
                    Op::Free(s) => (*s, 0),
                })
                .collect()
        };
        assert_eq!(sig(&a), sig(&b));
        let max = a
            .iter()
            .filter_map(|o| match o {
                Op::Alloc(_, l) => Some(l.size()),
                _ => None,
            })
            .max()
            .unwrap();
        assert!(max > 32 << 10 && max <= 64 << 10);
    }

    #[test]
    fn every_heap_passes_the_checked_replay() {
        let (ops, slots) = make_trace();
        replay_checked("kernel heap", &mut Ours::fresh(HEAP_BYTES), &ops, slots);
        replay_checked("talc", &mut Talc::fresh(HEAP_BYTES), &ops, slots);
        replay_checked("buddy", &mut BuddyHeap::fresh(HEAP_BYTES), &ops, slots);
        replay_checked("ll", &mut LinkedList::fresh(HEAP_BYTES), &ops, slots);
    }
}

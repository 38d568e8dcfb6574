use super::*;
use crate::memory::phys::host_fresh_range;
use proptest::prelude::*;
use std::collections::BTreeSet;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A private allocator over `bytes` of fresh simulated RAM starting `offset` bytes
/// into a fresh range (so the start can be unaligned).
fn allocator(bytes: u64, offset: u64) -> (FrameAllocator, PhysAddr) {
    let base = host_fresh_range(bytes + offset);
    let mut fa = FrameAllocator::new();
    fa.add_region(MemoryRegion::new(base + offset, bytes))
        .unwrap();
    (fa, base + offset)
}

#[test]
fn single_frames_round_trip() {
    let (mut fa, base) = allocator(16 * MIB, 0);
    let total = fa.total_frames();
    assert_eq!(total, 4096 - 1, "one frame of metadata for 4096 frames");
    assert_eq!(fa.free_frames(), total);
    let a = fa.allocate().unwrap();
    let b = fa.allocate().unwrap();
    assert_ne!(a, b);
    assert!(a.start_address >= base && a.start_address < base + 16 * MIB);
    assert_eq!(fa.free_frames(), total - 2);
    fa.deallocate(a).unwrap();
    fa.deallocate(b).unwrap();
    assert_eq!(fa.free_frames(), total);
}

#[test]
fn exhaustion_and_recovery() {
    let (mut fa, _) = allocator(MIB, 0);
    let total = fa.total_frames();
    let mut got = BTreeSet::new();
    while let Ok(f) = fa.allocate() {
        assert!(got.insert(f), "frame {f:?} handed out twice");
    }
    assert_eq!(got.len() as u64, total);
    assert_eq!(fa.allocate(), Err(FrameError::OutOfMemory));
    assert_eq!(fa.free_frames(), 0);
    for f in got {
        fa.deallocate(f).unwrap();
    }
    assert_eq!(fa.free_frames(), total);
    // Everything merged back: a big block is available again.
    assert!(fa.allocate_order(7).is_ok());
}

#[test]
fn double_free_is_detected_and_harmless() {
    let (mut fa, _) = allocator(4 * MIB, 0);
    let f = fa.allocate().unwrap();
    fa.deallocate(f).unwrap();
    let free = fa.free_frames();
    assert_eq!(
        fa.deallocate(f),
        Err(FrameError::NotAllocated(f.start_address))
    );
    assert_eq!(fa.free_frames(), free, "a refused free changes nothing");
    // The allocator still hands out each frame exactly once.
    let mut seen = BTreeSet::new();
    while let Ok(g) = fa.allocate() {
        assert!(seen.insert(g));
    }
}

#[test]
fn bad_frees_are_refused() {
    let (mut fa, base) = allocator(4 * MIB, 0);
    let free = fa.free_frames();
    // Never handed out (free), metadata, outside every region, unaligned.
    let never = PhysFrame::containing_address(base + 2 * MIB);
    assert_eq!(
        fa.deallocate(never),
        Err(FrameError::NotAllocated(never.start_address))
    );
    let meta = PhysFrame::containing_address(base);
    assert_eq!(fa.deallocate(meta), Err(FrameError::NotAllocated(base)));
    let outside = PhysFrame::containing_address(PhysAddr(0x5000));
    assert_eq!(
        fa.deallocate(outside),
        Err(FrameError::NotAllocated(PhysAddr(0x5000)))
    );
    let unaligned = PhysFrame {
        start_address: base + 0x1001,
    };
    assert_eq!(
        fa.deallocate(unaligned),
        Err(FrameError::Unaligned(base + 0x1001))
    );
    assert_eq!(
        fa.deallocate_order(never, MAX_ORDER + 1),
        Err(FrameError::InvalidOrder(MAX_ORDER + 1))
    );
    // A tail frame of an allocated block is not a block of its own.
    let block = fa.allocate_order(2).unwrap();
    let tail = PhysFrame::from_number(block.number() + 1);
    assert_eq!(
        fa.deallocate(tail),
        Err(FrameError::NotAllocated(tail.start_address))
    );
    assert_eq!(
        fa.deallocate(block),
        Err(FrameError::WrongOrder {
            addr: block.start_address,
            allocated: 2
        })
    );
    fa.deallocate_order(block, 2).unwrap();
    assert_eq!(fa.free_frames(), free);
}

#[test]
fn contiguous_blocks_are_aligned_and_disjoint() {
    let (mut fa, _) = allocator(64 * MIB, 12 * 4096);
    let mut blocks = Vec::new();
    for order in [9u8, 0, 3, 9, 1, 5, 9] {
        let f = fa.allocate_order(order).unwrap();
        assert!(
            f.start_address.is_aligned(PAGE_SIZE << order),
            "order {order} block {f:?} misaligned"
        );
        blocks.push((f.number(), f.number() + (1 << order), order));
    }
    blocks.sort();
    for w in blocks.windows(2) {
        assert!(w[0].1 <= w[1].0, "blocks overlap: {w:?}");
    }
    let before = fa.free_frames();
    for (start, _, order) in &blocks {
        fa.deallocate_order(PhysFrame::from_number(*start), *order)
            .unwrap();
    }
    assert_eq!(
        fa.free_frames(),
        before + blocks.iter().map(|b| 1u64 << b.2).sum::<u64>()
    );
    assert_eq!(
        fa.allocate_order(MAX_ORDER + 1),
        Err(FrameError::InvalidOrder(MAX_ORDER + 1))
    );
}

#[test]
fn many_regions_with_holes() {
    let base = host_fresh_range(GIB);
    let mut fa = FrameAllocator::new();
    // Out of order, with holes, one unaligned at both ends.
    fa.add_region(MemoryRegion::new(base + 512 * MIB, 8 * MIB))
        .unwrap();
    fa.add_region(MemoryRegion::new(base + 0x1234, 4 * MIB))
        .unwrap();
    fa.add_region(MemoryRegion::new(base + 100 * MIB, 16 * MIB))
        .unwrap();
    assert_eq!(
        fa.add_region(MemoryRegion::new(base + 101 * MIB, MIB)),
        Err(FrameError::Overlap(base + 101 * MIB))
    );
    assert_eq!(
        fa.add_region(MemoryRegion::new(base + 200 * MIB, 4096)),
        Err(FrameError::RegionTooSmall(base + 200 * MIB))
    );
    let total = fa.total_frames();
    let mut got = Vec::new();
    while let Ok(f) = fa.allocate() {
        let a = f.start_address;
        let inside = [
            (base + 0x2000, 4 * MIB),
            (base + 100 * MIB, 16 * MIB),
            (base + 512 * MIB, 8 * MIB),
        ]
        .iter()
        .any(|&(s, len)| a >= s && a < s + len);
        assert!(inside, "{f:?} lies in a hole");
        got.push(f);
    }
    assert_eq!(got.len() as u64, total);
    for f in got {
        fa.deallocate(f).unwrap();
    }
    assert_eq!(fa.free_frames(), total);
}

#[test]
fn sixty_four_gib_of_ram() {
    let (mut fa, base) = allocator(64 * GIB, 0);
    assert_eq!(fa.total_frames(), 16 * 1024 * 1024 - 4096);
    let huge = fa.allocate_order(MAX_ORDER).unwrap();
    assert!(huge.start_address.is_aligned(GIB));
    let small = fa.allocate().unwrap();
    fa.deallocate_order(huge, MAX_ORDER).unwrap();
    fa.deallocate(small).unwrap();
    assert_eq!(fa.free_frames(), fa.total_frames());
    crate::arch::phys::discard(base, 64 * GIB);
}

#[test]
fn region_outside_window_and_bad_node() {
    let mut fa = FrameAllocator::new();
    let top = crate::memory::phys::limit();
    assert_eq!(
        fa.add_region(MemoryRegion::new(PhysAddr(top - MIB), 2 * MIB)),
        Err(FrameError::OutsideWindow(PhysAddr(top - MIB)))
    );
    let node = NumaNode {
        id: MAX_NODES as u32,
    };
    assert_eq!(
        fa.add_region(MemoryRegion::new(PhysAddr(0), MIB).on_node(node)),
        Err(FrameError::BadNode(node))
    );
    assert_eq!(fa.allocate_near(node, 0), Err(FrameError::BadNode(node)));
    assert_eq!(fa.total_frames(), 0);
    assert_eq!(fa.allocate(), Err(FrameError::OutOfMemory));
}

#[test]
fn per_node_pools_and_fallback() {
    let base = host_fresh_range(64 * MIB);
    let (n0, n1, n2) = (NumaNode { id: 0 }, NumaNode { id: 1 }, NumaNode { id: 2 });
    let mut fa = FrameAllocator::new();
    fa.add_region(MemoryRegion::new(base, 8 * MIB).on_node(n0))
        .unwrap();
    fa.add_region(MemoryRegion::new(base + 16 * MIB, 8 * MIB).on_node(n1))
        .unwrap();
    fa.add_region(MemoryRegion::new(base + 32 * MIB, 8 * MIB).on_node(n2))
        .unwrap();
    // Node 1's nearest neighbour is node 2, then node 0.
    fa.set_fallback_order(n1, &[n1, n2, n0]).unwrap();
    let own = fa.free_frames_on(n1);
    let mut taken = Vec::new();
    for _ in 0..own {
        let f = fa.allocate_near(n1, 0).unwrap();
        assert_eq!(fa.node_of(f), Some(n1), "local node first");
        taken.push(f);
    }
    let spill = fa.allocate_near(n1, 0).unwrap();
    assert_eq!(fa.node_of(spill), Some(n2), "then the nearest node");
    assert_eq!(fa.allocate_on(n1, 0), Err(FrameError::OutOfMemory));
    fa.deallocate(spill).unwrap();
    for f in taken {
        fa.deallocate(f).unwrap();
    }
    assert_eq!(fa.free_frames_on(n1), own);
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Alloc(u8),
    Free(usize),
    DoubleFree(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6).prop_map(Op::Alloc),
        3 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::DoubleFree),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Against a model (the set of frames handed out): blocks never overlap, stay
    /// inside the region and aligned, bad frees are refused, counts balance, and
    /// everything freed merges back.
    #[test]
    fn allocator_matches_model(ops in proptest::collection::vec(op(), 1..300), skew in 0u64..64) {
        let (mut fa, base) = allocator(4 * MIB, skew * 4096);
        let total = fa.total_frames();
        let mut live: Vec<(PhysFrame, u8)> = Vec::new();
        let mut freed: Vec<(PhysFrame, u8)> = Vec::new();
        let mut owned = BTreeSet::new();
        for op in ops {
            match op {
                Op::Alloc(order) => {
                    match fa.allocate_order(order) {
                        Ok(f) => {
                            prop_assert!(f.start_address.is_aligned(PAGE_SIZE << order));
                            let end = f.start_address.0 + (PAGE_SIZE << order);
                            prop_assert!(f.start_address >= base && end <= base.0 + 4 * MIB);
                            for n in f.number()..f.number() + (1 << order) {
                                prop_assert!(owned.insert(n), "frame {} handed out twice", n);
                            }
                            live.push((f, order));
                        }
                        Err(e) => prop_assert_eq!(e, FrameError::OutOfMemory),
                    }
                }
                Op::Free(i) if !live.is_empty() => {
                    let (f, order) = live.swap_remove(i % live.len());
                    prop_assert_eq!(fa.deallocate_order(f, order), Ok(()));
                    for n in f.number()..f.number() + (1 << order) {
                        owned.remove(&n);
                    }
                    freed.push((f, order));
                }
                Op::DoubleFree(i) if !freed.is_empty() => {
                    let (f, order) = freed[i % freed.len()];
                    if !live.iter().any(|l| l.0 == f) {
                        let before = fa.free_frames();
                        prop_assert!(fa.deallocate_order(f, order).is_err());
                        prop_assert_eq!(fa.free_frames(), before);
                    }
                }
                _ => {}
            }
            let used: u64 = live.iter().map(|l| 1u64 << l.1).sum();
            prop_assert_eq!(fa.free_frames(), total - used);
        }
        for (f, order) in live {
            prop_assert_eq!(fa.deallocate_order(f, order), Ok(()));
        }
        prop_assert_eq!(fa.free_frames(), total);
    }
}

// ---- property test: per-node pools and contiguous blocks against a model ----

/// One step of the NUMA property test.
#[derive(Debug, Clone)]
enum NodeOp {
    AllocOn(u32, u8),
    AllocNear(u32, u8),
    Free(usize),
}

fn node_op() -> impl Strategy<Value = NodeOp> {
    prop_oneof![
        3 => (0u32..3, 0u8..5).prop_map(|(n, o)| NodeOp::AllocOn(n, o)),
        3 => (0u32..3, 0u8..5).prop_map(|(n, o)| NodeOp::AllocNear(n, o)),
        3 => any::<usize>().prop_map(NodeOp::Free),
    ]
}

/// Three nodes of 1 MiB each (node 1 prefers 2, then 0).
fn three_nodes() -> FrameAllocator {
    let base = host_fresh_range(16 * MIB);
    let mut fa = FrameAllocator::new();
    for id in 0..3u32 {
        let r = MemoryRegion::new(base + u64::from(id) * 4 * MIB, MIB).on_node(NumaNode { id });
        fa.add_region(r).unwrap();
    }
    let n = |id| NumaNode { id };
    fa.set_fallback_order(n(1), &[n(1), n(2), n(0)]).unwrap();
    fa
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Against a model (frames handed out, per node): `allocate_on` stays on its node,
    /// `allocate_near` stays local while the local node has a free frame (order 0),
    /// blocks are aligned and never overlap, each node's free count balances, and
    /// everything merges back.
    #[test]
    fn node_pools_match_model(ops in proptest::collection::vec(node_op(), 1..300)) {
        let mut fa = three_nodes();
        let totals: Vec<u64> = (0..3).map(|id| fa.free_frames_on(NumaNode { id })).collect();
        let mut live: Vec<(PhysFrame, u8)> = Vec::new();
        let mut owned = BTreeSet::new();
        for op in ops {
            let (node, order, local) = match op {
                NodeOp::Free(i) if !live.is_empty() => {
                    let (f, order) = live.swap_remove(i % live.len());
                    prop_assert_eq!(fa.deallocate_order(f, order), Ok(()));
                    (f.number()..f.number() + (1 << order)).for_each(|n| { owned.remove(&n); });
                    continue;
                }
                NodeOp::Free(_) => continue,
                NodeOp::AllocOn(n, o) => (NumaNode { id: n }, o, true),
                NodeOp::AllocNear(n, o) => (NumaNode { id: n }, o, false),
            };
            let had = fa.free_frames_on(node);
            let got = if local { fa.allocate_on(node, order) } else { fa.allocate_near(node, order) };
            match got {
                Ok(f) => {
                    prop_assert!(f.start_address.is_aligned(PAGE_SIZE << order));
                    let on = fa.node_of(f);
                    if local || (order == 0 && had > 0) {
                        prop_assert_eq!(on, Some(node));
                    }
                    for n in f.number()..f.number() + (1 << order) {
                        prop_assert!(owned.insert(n), "frame {} handed out twice", n);
                    }
                    live.push((f, order));
                }
                Err(e) => {
                    prop_assert_eq!(e, FrameError::OutOfMemory);
                    prop_assert!(order > 0 || (local && had == 0) || fa.free_frames() == 0);
                }
            }
            for id in 0..3u32 {
                let node = NumaNode { id };
                let used: u64 = live.iter().filter(|l| fa.node_of(l.0) == Some(node)).map(|l| 1u64 << l.1).sum();
                prop_assert_eq!(fa.free_frames_on(node), totals[id as usize] - used);
            }
        }
        for (f, order) in live {
            prop_assert_eq!(fa.deallocate_order(f, order), Ok(()));
        }
        for id in 0..3u32 {
            prop_assert_eq!(fa.free_frames_on(NumaNode { id }), totals[id as usize]);
        }
    }
}

/// Freed single frames park in the node's cache and are reused first; a frame
/// parked there is still free as far as double-free detection goes, and parked
/// frames go back to the buddy lists when a larger block needs them.
#[test]
fn cache_reuses_detects_and_drains() {
    let (mut fa, _) = allocator(MIB, 0);
    let total = fa.total_frames();
    let a = fa.allocate().unwrap();
    fa.deallocate(a).unwrap();
    assert!(!fa.is_allocated(a));
    assert_eq!(
        fa.deallocate(a),
        Err(FrameError::NotAllocated(a.start_address))
    );
    assert_eq!(
        fa.allocate().unwrap(),
        a,
        "the parked frame is reused first"
    );
    fa.deallocate(a).unwrap();
    // Take every frame and free them from the bottom up: the last ones freed (the
    // highest, in the region's largest block) stay cached, so that block exists only
    // once the cached frames are merged back.
    let mut frames = Vec::new();
    while let Ok(f) = fa.allocate() {
        frames.push(f);
    }
    frames.sort();
    for f in &frames {
        fa.deallocate(*f).unwrap();
    }
    assert_eq!(fa.free_frames(), total);
    let top = *frames.last().unwrap();
    assert_eq!(
        fa.deallocate(top),
        Err(FrameError::NotAllocated(top.start_address)),
        "the top frame is cached, so free"
    );
    let block = fa
        .allocate_order(7)
        .expect("the top 128-frame block, after draining");
    assert_eq!(block.number() + 127, top.number());
    fa.deallocate_order(block, 7).unwrap();
    assert_eq!(fa.free_frames(), total);
}

/// More single frees than the cache holds: the oldest go back to the buddy lists as
/// whole blocks, counts stay exact, and refills hand out every frame once.
#[test]
fn cache_overflow_and_refill_stay_exact() {
    // Room for three cachefuls and more.
    let (mut fa, _) = allocator(16 * MIB, 0);
    let total = fa.total_frames();
    for round in 0..3 {
        let n = [CACHE_FRAMES + 1, 3 * CACHE_FRAMES + 7, 700][round];
        let got: Vec<PhysFrame> = (0..n).map(|_| fa.allocate().unwrap()).collect();
        let distinct: BTreeSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), n, "a frame handed out twice");
        assert_eq!(fa.free_frames(), total - n as u64);
        // Free every other frame first, then the rest: fragments, then runs.
        for f in got.iter().step_by(2).chain(got.iter().skip(1).step_by(2)) {
            fa.deallocate(*f).unwrap();
        }
        assert_eq!(fa.free_frames(), total);
        for f in &got {
            assert_eq!(
                fa.deallocate(*f),
                Err(FrameError::NotAllocated(f.start_address))
            );
        }
    }
    // Everything merged back: the region's largest block is whole again.
    let largest = (total + 1).ilog2() as u8 - 1;
    let b = fa
        .allocate_order(largest)
        .expect("largest block after the churn");
    fa.deallocate_order(b, largest).unwrap();
}

/// Adding a region shifts the zone indices the cache entries carry: the caches are
/// drained first, so frees and allocations still find the right zone.
#[test]
fn add_region_with_frames_cached() {
    let base = host_fresh_range(64 * MIB);
    let mut fa = FrameAllocator::new();
    fa.add_region(MemoryRegion::new(base + 32 * MIB, 4 * MIB))
        .unwrap();
    let held: Vec<PhysFrame> = (0..40).map(|_| fa.allocate().unwrap()).collect();
    for f in &held[..20] {
        fa.deallocate(*f).unwrap();
    }
    let free = fa.free_frames();
    fa.add_region(MemoryRegion::new(base, 4 * MIB)).unwrap();
    let added = fa.total_frames() - (free + 20);
    assert_eq!(fa.free_frames(), free + added);
    for f in &held[..20] {
        assert_eq!(
            fa.deallocate(*f),
            Err(FrameError::NotAllocated(f.start_address))
        );
    }
    for f in &held[20..] {
        fa.deallocate(*f).unwrap();
    }
    let mut seen = BTreeSet::new();
    while let Ok(f) = fa.allocate() {
        assert!(seen.insert(f), "frame {f:?} handed out twice");
    }
    assert_eq!(seen.len() as u64, fa.total_frames());
    for f in seen {
        fa.deallocate(f).unwrap();
    }
    assert_eq!(fa.free_frames(), fa.total_frames());
}

/// Two regions that touch: frames freed in address order across the seam are cached
/// as two runs, one per zone, and go back as blocks of their own zone.
#[test]
fn cache_runs_stop_at_zone_seams() {
    let base = host_fresh_range(4 * MIB);
    let mut fa = FrameAllocator::new();
    fa.add_region(MemoryRegion::new(base, MIB)).unwrap();
    fa.add_region(MemoryRegion::new(base + MIB, MIB)).unwrap();
    let total = fa.total_frames();
    let mut all = Vec::new();
    while let Ok(f) = fa.allocate() {
        all.push(f);
    }
    assert_eq!(all.len() as u64, total);
    all.sort();
    for f in &all {
        fa.deallocate(*f).unwrap();
    }
    assert_eq!(fa.free_frames(), total);
    for f in &all {
        assert_eq!(
            fa.deallocate(*f),
            Err(FrameError::NotAllocated(f.start_address))
        );
    }
    // Each zone's top 128 frames come back as one block of that zone.
    let a = fa.allocate_order(7).unwrap();
    let b = fa.allocate_order(7).unwrap();
    let zones: BTreeSet<_> = [a, b].iter().map(|f| f.start_address.0 / MIB).collect();
    assert_eq!(zones.len(), 2, "one block per zone: {a:?} {b:?}");
    fa.deallocate_order(a, 7).unwrap();
    fa.deallocate_order(b, 7).unwrap();
    assert_eq!(fa.free_frames(), total);
}

/// Forgetting memory in place leaves an allocator as good as new, keeping the NUMA
/// placement of CPUs.
#[test]
fn forget_memory_resets_in_place() {
    let (mut fa, _) = allocator(4 * MIB, 0);
    fa.set_cpu_node(3, NumaNode { id: 1 }).unwrap();
    let f = fa.allocate().unwrap();
    fa.deallocate(f).unwrap();
    let _held = fa.allocate_order(3).unwrap();
    fa.forget_memory();
    assert_eq!((fa.free_frames(), fa.total_frames()), (0, 0));
    assert_eq!(fa.allocate(), Err(FrameError::OutOfMemory));
    assert!(!fa.is_allocated(f));
    assert_eq!(fa.cpu_node[3], 1);
    let base = host_fresh_range(4 * MIB);
    fa.add_region(MemoryRegion::new(base, 4 * MIB)).unwrap();
    assert_eq!(fa.free_frames(), fa.total_frames());
    let g = fa.allocate().unwrap();
    assert!(g.start_address >= base);
    fa.deallocate(g).unwrap();
    assert_eq!(fa.free_frames(), fa.total_frames());
}

/// Magazine entries taken and given back in any order (ascending, descending,
/// scattered, more than the cache holds) come back as free frames, each once, and
/// the counts stay exact; neighbours go back as runs.
#[test]
fn cached_frames_come_back_in_any_order() {
    let (mut fa, _) = allocator(4 * MIB, 0);
    let total = fa.total_frames();
    let mut out = [0u64; 700];
    let mut n = 0;
    while n < out.len() {
        let got = fa.take_cached(0, &mut out[n..]);
        assert!(got > 0);
        n += got;
    }
    assert_eq!(fa.free_frames(), total - 700);
    let (low, high) = out.split_at(300);
    let runs = fa.caches[0].run_count;
    fa.put_cached(0, low.iter().rev().copied());
    assert!(
        fa.caches[0].run_count <= runs + 3,
        "300 neighbours, descending, joined into a few runs"
    );
    fa.put_cached(0, high.iter().step_by(2).copied());
    fa.put_cached(0, high.iter().skip(1).step_by(2).copied());
    assert_eq!(fa.free_frames(), total);
    let mut seen = BTreeSet::new();
    while let Ok(f) = fa.allocate() {
        assert!(seen.insert(f), "{f:?} handed out twice");
    }
    assert_eq!(seen.len() as u64, total);
}

// ---- the per-CPU magazines (`percpu`) ----

/// Serialises the tests that pretend to run on other CPUs (each host thread has its
/// own id, but these tests should not pretend at the same time as each other).
static CPU_ID: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` as if this thread ran on CPU `cpu`; its own id comes back afterwards.
fn on_cpu<R>(cpu: u32, f: impl FnOnce() -> R) -> R {
    let own = crate::arch::cpu::current_cpu_id();
    crate::arch::cpu::set_current_cpu_id(cpu);
    let r = f();
    crate::arch::cpu::set_current_cpu_id(own);
    r
}

/// Makes this thread CPU `cpu` until dropped (for tests that count on a CPU's node).
struct AsCpu(u32);

impl AsCpu {
    fn new(cpu: u32) -> Self {
        let own = crate::arch::cpu::current_cpu_id();
        crate::arch::cpu::set_current_cpu_id(cpu);
        AsCpu(own)
    }
}

impl Drop for AsCpu {
    fn drop(&mut self) {
        crate::arch::cpu::set_current_cpu_id(self.0);
    }
}

/// One frame allocated and freed on the calling CPU (which fills its magazine).
fn round_trip(fa: &PerCpuFrames) {
    let f = fa.allocate().unwrap();
    fa.deallocate(f).unwrap();
}

/// A per-CPU allocator over `bytes` of fresh RAM per node, `nodes` nodes (16 MiB
/// apart), CPU `c` on node `c % nodes`.
fn magazines(bytes: u64, nodes: u32) -> (Box<PerCpuFrames>, PhysAddr) {
    let base = host_fresh_range(nodes as u64 * 16 * MIB);
    let fa = Box::new(PerCpuFrames::new());
    for id in 0..nodes {
        let r = MemoryRegion::new(base + id as u64 * 16 * MIB, bytes).on_node(NumaNode { id });
        fa.add_region(r).unwrap();
    }
    for cpu in 0..4 {
        fa.set_cpu_node(cpu, NumaNode { id: cpu % nodes }).unwrap();
    }
    (fa, base)
}

/// Frames sitting in magazines count as free: the counts are exact at every step.
#[test]
fn magazine_frames_count_as_free() {
    let _g = CPU_ID.lock().unwrap_or_else(|e| e.into_inner());
    let (fa, _) = magazines(4 * MIB, 1);
    let total = fa.total_frames();
    assert_eq!(fa.free_frames(), total);
    let held: Vec<_> = (0..10).map(|_| fa.allocate().unwrap()).collect();
    assert!(
        fa.parked_frames() > 0,
        "the refill parked frames in the magazine"
    );
    assert_eq!(fa.free_frames(), total - 10);
    assert_eq!(fa.free_frames_on(NumaNode { id: 0 }), total - 10);
    // has_free counts the magazines too when the shared count alone is short.
    assert!(fa.has_free(total - 10));
    assert!(!fa.has_free(total - 9));
    on_cpu(1, || held.iter().for_each(|&f| fa.deallocate(f).unwrap()));
    assert_eq!(fa.free_frames(), total);
    fa.drain_magazines();
    assert_eq!((fa.parked_frames(), fa.free_frames()), (0, total));
}

/// Double frees, frees of frames never handed out, unaligned and foreign frees are
/// refused through the magazine with the shared allocator's errors, and change
/// nothing.
#[test]
fn magazine_refuses_bad_frees() {
    let (fa, base) = magazines(4 * MIB, 1);
    let f = fa.allocate().unwrap();
    fa.deallocate(f).unwrap();
    let free = fa.free_frames();
    let not = |f: PhysFrame| Err(FrameError::NotAllocated(f.start_address));
    assert_eq!(fa.deallocate(f), not(f), "double free of a parked frame");
    let never = PhysFrame::containing_address(base + 2 * MIB);
    assert_eq!(fa.deallocate(never), not(never));
    let meta = PhysFrame::containing_address(base);
    assert_eq!(fa.deallocate(meta), not(meta));
    let outside = PhysFrame::containing_address(base + 8 * MIB);
    assert_eq!(fa.deallocate(outside), not(outside));
    let block = fa.allocate_order(2).unwrap();
    assert_eq!(
        fa.deallocate(block),
        Err(FrameError::WrongOrder {
            addr: block.start_address,
            allocated: 2
        })
    );
    fa.deallocate_order(block, 2).unwrap();
    assert_eq!(fa.free_frames(), free, "refused frees change nothing");
    let mut seen = BTreeSet::new();
    while let Ok(g) = fa.allocate() {
        assert!(seen.insert(g), "{g:?} handed out twice");
    }
    assert_eq!(seen.len() as u64, fa.total_frames());
}

/// Out of memory only when every frame is out: frames parked in another CPU's
/// magazine are drained and handed out, each once; so are blocks they complete.
#[test]
fn magazines_are_drained_before_out_of_memory() {
    let _g = CPU_ID.lock().unwrap_or_else(|e| e.into_inner());
    let (fa, _) = magazines(MIB, 1);
    let total = fa.total_frames();
    // CPU 1 fills its magazine, CPU 2 gets some frames parked in its own.
    let parked: Vec<_> = on_cpu(2, || (0..5).map(|_| fa.allocate().unwrap()).collect());
    on_cpu(2, || parked.iter().for_each(|&f| fa.deallocate(f).unwrap()));
    on_cpu(1, || round_trip(&fa));
    assert!(fa.parked_frames() > 0);
    let all: Vec<_> = on_cpu(3, || std::iter::from_fn(|| fa.allocate().ok()).collect());
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!((all.len() as u64, distinct.len()), (total, all.len()));
    assert_eq!(fa.allocate(), Err(FrameError::OutOfMemory));
    assert_eq!(fa.free_frames(), 0);
    // Freed on several CPUs, they complete the largest block again.
    for (i, &f) in all.iter().enumerate() {
        on_cpu(i as u32 % 3, || fa.deallocate(f).unwrap());
    }
    assert_eq!(fa.free_frames(), total);
    let big = fa.allocate_order(7).unwrap();
    fa.deallocate_order(big, 7).unwrap();
    assert_eq!(fa.free_frames(), total);
}

/// `keep` frames stay free: the fast path stops at the reserve, the slow path counts
/// the magazines' frames too.
#[test]
fn magazines_keep_the_reserve() {
    let (fa, _) = magazines(MIB, 1);
    let total = fa.total_frames();
    let keep = 40;
    let mut held = Vec::new();
    while let Ok(f) = fa.allocate_keeping(keep) {
        held.push(f);
    }
    assert_eq!(held.len() as u64, total - keep);
    assert_eq!(fa.free_frames(), keep);
    assert_eq!(
        fa.allocate_order_keeping(1, keep),
        Err(FrameError::OutOfMemory)
    );
    // Without a reserve the rest can go too.
    while let Ok(f) = fa.allocate() {
        held.push(f);
    }
    assert_eq!(held.len() as u64, total);
    held.into_iter().for_each(|f| fa.deallocate(f).unwrap());
    assert_eq!(fa.free_frames(), total);
}

/// Each CPU's frames come from its node; a frame freed on a CPU of another node goes
/// back to its own node, not into that CPU's magazine; when a node is full, the
/// other node's memory is used, its magazines drained first.
#[test]
fn magazines_keep_frames_on_their_node() {
    let _g = CPU_ID.lock().unwrap_or_else(|e| e.into_inner());
    let _cpu0 = AsCpu::new(0);
    let (fa, base) = magazines(4 * MIB, 2);
    let (n0, n1) = (NumaNode { id: 0 }, NumaNode { id: 1 });
    let node_of = |f: PhysFrame| NumaNode {
        id: ((f.start_address.0 - base.0) / (16 * MIB)) as u32,
    };
    let on1: Vec<_> = on_cpu(1, || (0..100).map(|_| fa.allocate().unwrap()).collect());
    assert!(on1.iter().all(|&f| node_of(f) == n1));
    let on0 = fa.allocate().unwrap();
    assert_eq!(node_of(on0), n0);
    let (free0, free1) = (fa.free_frames_on(n0), fa.free_frames_on(n1));
    // Node 1's frames freed on CPU 0 (node 0).
    on1.iter().for_each(|&f| fa.deallocate(f).unwrap());
    assert_eq!(fa.free_frames_on(n0), free0);
    assert_eq!(fa.free_frames_on(n1), free1 + 100);
    for _ in 0..200 {
        let f = fa.allocate().unwrap();
        assert_eq!(node_of(f), n0, "CPU 0's magazine holds no node-1 frames");
        fa.deallocate(f).unwrap();
    }
    // Node 1 full (CPU 3, also on node 1, has frames parked): then node 0.
    on_cpu(3, || round_trip(&fa));
    let local = fa.free_frames_on(n1);
    let mut held: Vec<_> = on_cpu(1, || (0..local).map(|_| fa.allocate().unwrap()).collect());
    assert!(
        held.iter().all(|&f| node_of(f) == n1),
        "local while it lasts"
    );
    assert_eq!(fa.free_frames_on(n1), 0);
    let spill = on_cpu(1, || fa.allocate().unwrap());
    assert_eq!(node_of(spill), n0, "then the other node");
    held.push(spill);
    held.push(on0);
    held.into_iter().for_each(|f| fa.deallocate(f).unwrap());
    assert_eq!(fa.free_frames(), fa.total_frames());
}

/// Adding a region (which shifts zone indices) and moving a CPU to another node
/// drain the magazines first; nothing is lost or handed out twice.
#[test]
fn regions_and_node_moves_drain_magazines() {
    let _g = CPU_ID.lock().unwrap_or_else(|e| e.into_inner());
    let base = host_fresh_range(64 * MIB);
    let fa = Box::new(PerCpuFrames::new());
    fa.add_region(MemoryRegion::new(base + 32 * MIB, 4 * MIB))
        .unwrap();
    let held: Vec<_> = (0..20).map(|_| fa.allocate().unwrap()).collect();
    held[..10].iter().for_each(|&f| fa.deallocate(f).unwrap());
    assert!(fa.parked_frames() > 0);
    // Lower addresses: the new zone comes first and the old one's index moves.
    let n1 = NumaNode { id: 1 };
    fa.add_region(MemoryRegion::new(base, 4 * MIB).on_node(n1))
        .unwrap();
    assert_eq!(fa.parked_frames(), 0);
    assert_eq!(fa.free_frames(), fa.total_frames() - 10);
    held[10..].iter().for_each(|&f| fa.deallocate(f).unwrap());
    assert_eq!(
        fa.deallocate(held[0]),
        Err(FrameError::NotAllocated(held[0].start_address))
    );
    fa.drain_magazines();
    on_cpu(2, || round_trip(&fa));
    assert!(fa.parked_frames() > 0);
    fa.set_cpu_node(2, n1).unwrap();
    assert_eq!(fa.parked_frames(), 0, "CPU 2's node-0 frames went back");
    let f = on_cpu(2, || fa.allocate().unwrap());
    assert_eq!(fa.node_of(f), Some(n1));
    fa.deallocate(f).unwrap();
    let mut seen = BTreeSet::new();
    while let Ok(g) = fa.allocate() {
        assert!(seen.insert(g), "{g:?} handed out twice");
    }
    assert_eq!(seen.len() as u64, fa.total_frames());
    fa.forget_memory();
    assert_eq!(
        (fa.free_frames(), fa.total_frames(), fa.parked_frames()),
        (0, 0, 0)
    );
    assert_eq!(fa.allocate(), Err(FrameError::OutOfMemory));
}

/// A seeded random sequence over four CPUs against a model (the set of held frames):
/// every frame handed out once, bad frees refused, counts exact after every step.
#[test]
fn magazines_against_a_model() {
    let _g = CPU_ID.lock().unwrap_or_else(|e| e.into_inner());
    let (fa, _) = magazines(2 * MIB, 2);
    let total = fa.total_frames();
    let mut held: Vec<PhysFrame> = Vec::new();
    let mut freed: Vec<PhysFrame> = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for step in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cpu = (x >> 60) as u32 % 4;
        on_cpu(cpu, || match x % 8 {
            0..=3 => match fa.allocate() {
                Ok(f) => {
                    assert!(!held.contains(&f), "step {step}: {f:?} handed out twice");
                    held.push(f);
                }
                Err(e) => assert_eq!((e, held.len() as u64), (FrameError::OutOfMemory, total)),
            },
            4..=6 if !held.is_empty() => {
                let f = held.swap_remove((x >> 8) as usize % held.len());
                fa.deallocate(f).unwrap();
                freed.push(f);
            }
            _ => {
                if let Some(&f) = freed.last().filter(|f| !held.contains(f)) {
                    assert_eq!(
                        fa.deallocate(f),
                        Err(FrameError::NotAllocated(f.start_address))
                    );
                }
            }
        });
        if step % 97 == 0 {
            assert_eq!(fa.free_frames(), total - held.len() as u64, "step {step}");
        }
    }
    held.into_iter().for_each(|f| fa.deallocate(f).unwrap());
    assert_eq!(fa.free_frames(), total);
}

/// Threads, each a CPU with its own magazine on the host, while another drains
/// (revokes) and counts: every frame has one owner at a time.
#[test]
fn magazines_under_threads() {
    let (fa, _) = magazines(8 * MIB, 1);
    let total = fa.total_frames();
    let fa: &PerCpuFrames = &fa;
    std::thread::scope(|s| {
        for t in 0..3u64 {
            s.spawn(move || {
                let mut mine = BTreeSet::new();
                for i in 0..20_000u64 {
                    if (i + t) % 3 != 2 || mine.is_empty() {
                        let f = fa.allocate().unwrap();
                        assert!(mine.insert(f), "{f:?} handed out twice");
                    } else {
                        let f = *mine.iter().next().unwrap();
                        mine.remove(&f);
                        fa.deallocate(f).unwrap();
                    }
                    if mine.len() > 300 {
                        std::mem::take(&mut mine)
                            .into_iter()
                            .for_each(|f| fa.deallocate(f).unwrap());
                    }
                }
                mine.into_iter().for_each(|f| fa.deallocate(f).unwrap());
            });
        }
        s.spawn(move || {
            for _ in 0..200 {
                fa.drain_magazines();
                assert!(fa.free_frames() <= total);
                let block = fa.allocate_order(4).unwrap();
                fa.deallocate_order(block, 4).unwrap();
            }
        });
    });
    assert_eq!(fa.free_frames(), total);
}

// ---- blocks of BLOCK_ORDER in the magazines ----

/// A per-CPU allocator over `nodes` nodes of `bytes` each (`bytes` apart), CPU `c`
/// on node `c % nodes`: large enough nodes for magazines to keep 2 MiB blocks.
fn block_magazines(bytes: u64, nodes: u32) -> (Box<PerCpuFrames>, PhysAddr) {
    let base = host_fresh_range(nodes as u64 * bytes);
    let fa = Box::new(PerCpuFrames::new());
    for id in 0..nodes {
        let r = MemoryRegion::new(base + id as u64 * bytes, bytes).on_node(NumaNode { id });
        fa.add_region(r).unwrap();
    }
    for cpu in 0..4 {
        fa.set_cpu_node(cpu, NumaNode { id: cpu % nodes }).unwrap();
    }
    (fa, base)
}

const BLOCK: u64 = 1 << BLOCK_ORDER;

/// The CPUs of a node share its block allowance: one CPU on a 256 MiB node may
/// park 4 blocks (1/32 of it), each of four CPUs 1, and a CPU moved to another node
/// leaves its share to the others.
#[test]
fn magazine_block_caps_are_shared_by_the_node_cpus() {
    let fa = Box::new(PerCpuFrames::new());
    let r = MemoryRegion::new(host_fresh_range(256 * MIB), 256 * MIB);
    fa.add_region(r).unwrap();
    let node0 = NumaNode { id: 0 };
    assert_eq!(fa.block_cap_of(node0), 4, "the boot CPU alone");
    for cpu in 0..4 {
        fa.set_cpu_node(cpu, node0).unwrap();
    }
    assert_eq!(fa.block_cap_of(node0), 1, "four CPUs, 8 MiB between them");
    fa.set_cpu_node(3, NumaNode { id: 1 }).unwrap();
    fa.set_cpu_node(2, NumaNode { id: 1 }).unwrap();
    assert_eq!(fa.block_cap_of(node0), 2, "two left on node 0");
}

/// A 2 MiB block freed on its node's CPU is parked in the CPU's magazine and handed
/// out again from there; counts stay exact; a second free of it, a free with the
/// wrong order, of a tail or unaligned, is refused and changes nothing; the
/// magazine keeps at most its share; drained, the blocks merge again.
#[test]
fn magazine_blocks_round_trip_and_refuse_bad_frees() {
    let _g = CPU_ID.lock().unwrap_or_else(|e| e.into_inner());
    let _cpu0 = AsCpu::new(0);
    let (fa, _) = block_magazines(1024 * MIB, 1);
    let cap = fa.block_cap_of(NumaNode { id: 0 });
    assert_eq!(cap, 4, "1/32 of 1 GiB in 2 MiB blocks, shared by 4 CPUs");
    let total = fa.total_frames();
    let blocks = || fa.magazine_blocks_of(0).unwrap();
    let b = fa.allocate_order(BLOCK_ORDER).unwrap();
    assert!(b.start_address.is_aligned(PAGE_SIZE << BLOCK_ORDER));
    assert_eq!(blocks(), cap / 2 - 1, "a refill takes half the room");
    assert_eq!(fa.free_frames(), total - BLOCK);
    fa.deallocate_order(b, BLOCK_ORDER).unwrap();
    assert_eq!(blocks(), cap / 2, "parked in the magazine");
    assert_eq!(fa.free_frames(), total);
    assert_eq!(fa.parked_frames(), blocks() as u64 * BLOCK);

    let not = |f: PhysFrame| Err(FrameError::NotAllocated(f.start_address));
    assert_eq!(fa.deallocate_order(b, BLOCK_ORDER), not(b), "double free");
    assert_eq!(fa.deallocate(b), not(b), "a parked block freed as a frame");
    let tail = PhysFrame::from_number(b.number() + 1);
    assert_eq!(fa.deallocate(tail), not(tail));
    let c = fa.allocate_order(BLOCK_ORDER).unwrap();
    assert_eq!(c, b, "the newest parked block comes first");
    let wrong = Err(FrameError::WrongOrder {
        addr: c.start_address,
        allocated: BLOCK_ORDER,
    });
    assert_eq!(fa.deallocate(c), wrong);
    assert_eq!(fa.deallocate_order(c, BLOCK_ORDER - 1), wrong);
    let inside = PhysFrame::from_number(c.number() + 8);
    assert_eq!(
        fa.deallocate_order(inside, BLOCK_ORDER),
        Err(FrameError::Unaligned(inside.start_address))
    );
    assert_eq!(
        fa.free_frames(),
        total - BLOCK,
        "refused frees change nothing"
    );
    // The reserve: no block from the magazine that would leave fewer than `keep`.
    let keep = fa.free_frames() - BLOCK + 1;
    assert_eq!(
        fa.allocate_order_keeping(BLOCK_ORDER, keep),
        Err(FrameError::OutOfMemory)
    );
    fa.deallocate_order(c, BLOCK_ORDER).unwrap();
    assert_eq!(fa.free_frames(), total);

    // Many blocks out and back: each frame once, at most `cap` parked.
    let held: Vec<_> = (0..12)
        .map(|_| fa.allocate_order(BLOCK_ORDER).unwrap())
        .collect();
    let firsts: BTreeSet<_> = held.iter().map(|f| f.number() >> BLOCK_ORDER).collect();
    assert_eq!(firsts.len(), held.len(), "a block handed out twice");
    assert_eq!(fa.free_frames(), total - 12 * BLOCK);
    held.iter()
        .for_each(|&f| fa.deallocate_order(f, BLOCK_ORDER).unwrap());
    assert!(blocks() <= cap && blocks() > 0, "{} parked", blocks());
    assert_eq!(fa.free_frames(), total);
    fa.drain_magazines();
    assert_eq!(
        (blocks(), fa.parked_frames(), fa.free_frames()),
        (0, 0, total)
    );
    // Merged back: the upper 128 MiB (no metadata there) is one block again.
    let big = fa.allocate_order(15).unwrap();
    fa.deallocate_order(big, 15).unwrap();
}

/// Blocks stay on their node: a block of node 1 freed on a CPU of node 0 goes back
/// to node 1, not into that CPU's magazine. Blocks parked in a CPU's magazine are
/// drained when another CPU runs out: every frame is handed out, once.
#[test]
fn magazine_blocks_stay_on_their_node_and_yield_to_pressure() {
    let _g = CPU_ID.lock().unwrap_or_else(|e| e.into_inner());
    let _cpu0 = AsCpu::new(0);
    let (fa, _) = block_magazines(256 * MIB, 2);
    let (n0, n1) = (NumaNode { id: 0 }, NumaNode { id: 1 });
    assert_eq!((fa.block_cap_of(n0), fa.block_cap_of(n1)), (2, 2));
    let total = fa.total_frames();
    let on1: Vec<_> = on_cpu(1, || {
        (0..3)
            .map(|_| fa.allocate_order(BLOCK_ORDER).unwrap())
            .collect()
    });
    assert!(
        on1.iter().all(|&f| fa.node_of(f) == Some(n1)),
        "local blocks"
    );
    let parked0 = fa.magazine_blocks_of(0).unwrap();
    on1.iter()
        .for_each(|&f| fa.deallocate_order(f, BLOCK_ORDER).unwrap());
    assert_eq!(
        fa.magazine_blocks_of(0).unwrap(),
        parked0,
        "not on node 0's CPU"
    );
    assert_eq!(fa.free_frames(), total);
    // CPU 1 parks blocks; CPU 3 (node 1 too) then takes every frame there is.
    on_cpu(1, || {
        let b = fa.allocate_order(BLOCK_ORDER).unwrap();
        fa.deallocate_order(b, BLOCK_ORDER).unwrap();
    });
    assert!(fa.magazine_blocks_of(1).unwrap() > 0);
    let all: Vec<_> = on_cpu(3, || std::iter::from_fn(|| fa.allocate().ok()).collect());
    let distinct: BTreeSet<_> = all.iter().collect();
    assert_eq!((all.len() as u64, distinct.len()), (total, all.len()));
    assert_eq!(
        fa.magazine_blocks_of(1).unwrap(),
        0,
        "CPU 1's blocks drained"
    );
    assert_eq!(fa.free_frames(), 0);
    all.iter().for_each(|&f| fa.deallocate(f).unwrap());
    assert_eq!(fa.free_frames(), total);
}

/// Threads allocate and free 2 MiB blocks and single frames, each thread a CPU with
/// its own magazine, while another drains and counts: no frame has two owners, and
/// everything comes back.
#[test]
fn magazine_blocks_under_threads() {
    let (fa, _) = block_magazines(512 * MIB, 1);
    let total = fa.total_frames();
    let fa: &PerCpuFrames = &fa;
    let owned = std::sync::Mutex::new(BTreeSet::new());
    let owned = &owned;
    let claim = |first: u64, order: u8| {
        let mut owned = owned.lock().unwrap();
        for pfn in first..first + (1 << order) {
            assert!(owned.insert(pfn), "frame {pfn:#x} has two owners");
        }
    };
    let release = |first: u64, order: u8| {
        let mut owned = owned.lock().unwrap();
        (first..first + (1 << order)).for_each(|pfn| assert!(owned.remove(&pfn)));
    };
    std::thread::scope(|s| {
        for t in 0..3u64 {
            s.spawn(move || {
                let mut mine: Vec<(PhysFrame, u8)> = Vec::new();
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                for _ in 0..3_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if !x.is_multiple_of(3) || mine.is_empty() {
                        let order = if x % 5 < 2 { BLOCK_ORDER } else { 0 };
                        let f = fa.allocate_order(order).unwrap();
                        claim(f.number(), order);
                        mine.push((f, order));
                    } else {
                        let (f, order) = mine.swap_remove((x >> 8) as usize % mine.len());
                        release(f.number(), order);
                        fa.deallocate_order(f, order).unwrap();
                    }
                    if mine.len() > 40 {
                        for (f, order) in mine.drain(..) {
                            release(f.number(), order);
                            fa.deallocate_order(f, order).unwrap();
                        }
                    }
                }
                for (f, order) in mine {
                    release(f.number(), order);
                    fa.deallocate_order(f, order).unwrap();
                }
            });
        }
        s.spawn(move || {
            for _ in 0..200 {
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

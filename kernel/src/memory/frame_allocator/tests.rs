use super::*;
use crate::memory::phys::host_fresh_range;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;

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

// ---- the per-CPU magazines (FramePool) ----

fn on(index: usize, node: u32) -> OnCpu {
    OnCpu {
        index,
        node: NumaNode { id: node },
    }
}

/// A pool over one region per entry of `nodes` (`mib` MiB each, on that node);
/// returns the regions' ranges too.
fn pool(mib: u64, nodes: &[u32]) -> (Box<FramePool>, Vec<(PhysAddr, PhysAddr)>) {
    let pool = Box::new(FramePool::new());
    let mut ranges = Vec::new();
    for &n in nodes {
        let base = host_fresh_range(mib * MIB);
        let r = MemoryRegion::new(base, mib * MIB).on_node(NumaNode { id: n });
        pool.lock().add_region(r).unwrap();
        ranges.push((base, base + mib * MIB));
    }
    (pool, ranges)
}

fn inside(f: PhysFrame, (start, end): (PhysAddr, PhysAddr)) -> bool {
    f.start_address >= start && f.start_address < end
}

#[test]
fn magazine_refills_a_batch_and_drains_half() {
    let (p, _) = pool(16, &[0]);
    let total = p.total_frames();
    let cpu = on(0, 0);
    let f = p.allocate_frame(cpu, Reserve::Keep).unwrap();
    assert_eq!(
        p.magazine_len(0),
        MAGAZINE_BATCH - 1,
        "one refill of a batch"
    );
    assert_eq!(p.free_frames(), total - 1);
    let mut held = vec![f];
    for _ in 0..MAGAZINE_FRAMES * 3 {
        held.push(p.allocate_frame(cpu, Reserve::Keep).unwrap());
        assert!(p.magazine_len(0) < MAGAZINE_BATCH);
    }
    assert_eq!(p.free_frames(), total - held.len() as u64);
    for (i, f) in held.iter().enumerate() {
        p.deallocate_frame(cpu, *f).unwrap();
        let len = p.magazine_len(0);
        assert!(len > 0 && len <= MAGAZINE_FRAMES, "after {i} frees: {len}");
        assert_eq!(p.free_frames(), total - (held.len() - i - 1) as u64);
    }
    // A full magazine gave its oldest half back each time it filled.
    assert!(p.magazine_len(0) > MAGAZINE_BATCH);
    p.drain_magazines(None);
    assert_eq!(p.magazine_len(0), 0);
    assert_eq!(p.free_frames(), total);
    assert_eq!(p.lock().free_frames(), total, "all back in the buddy lists");
}

#[test]
fn double_and_foreign_frees_through_the_magazine_are_refused() {
    let (p, _) = pool(4, &[0]);
    let total = p.total_frames();
    let (c0, c1) = (on(0, 0), on(1, 0));
    let f = p.allocate_frame(c0, Reserve::Keep).unwrap();
    p.deallocate_frame(c0, f).unwrap();
    let (free, mag) = (p.free_frames(), p.magazine_len(0));
    let refused = Err(FrameError::NotAllocated(f.start_address));
    assert_eq!(p.deallocate_frame(c0, f), refused);
    assert_eq!(p.deallocate_frame(c1, f), refused, "on another CPU too");
    assert_eq!(
        p.lock().deallocate(f),
        refused,
        "and through the buddy lock"
    );
    assert_eq!(
        (p.free_frames(), p.magazine_len(0), p.magazine_len(1)),
        (free, mag, 0)
    );
    // A frame never handed out (free in the buddy lists), a block head freed as
    // a single frame, an unaligned address, memory the pool does not manage.
    let block = p.allocate_frames(c0, 2, Reserve::Keep).unwrap();
    let wrong = FrameError::WrongOrder {
        addr: block.start_address,
        allocated: 2,
    };
    assert_eq!(p.deallocate_frame(c0, block), Err(wrong));
    let tail = PhysFrame::from_number(block.number() + 1);
    assert_eq!(
        p.deallocate_frame(c0, tail),
        Err(FrameError::NotAllocated(tail.start_address))
    );
    let odd = PhysFrame {
        start_address: f.start_address + 8,
    };
    assert_eq!(
        p.deallocate_frame(c0, odd),
        Err(FrameError::Unaligned(odd.start_address))
    );
    let foreign = PhysFrame::containing_address(host_fresh_range(MIB));
    assert!(p.deallocate_frame(c0, foreign).is_err());
    p.deallocate_frames(c0, block, 2).unwrap();
    // Nothing lost or doubled: every frame is handed out exactly once.
    let mut seen = BTreeSet::new();
    while let Ok(g) = p.allocate_frame(c1, Reserve::Keep) {
        assert!(seen.insert(g), "{g:?} handed out twice");
    }
    assert_eq!(seen.len() as u64, total);
    for g in seen {
        p.deallocate_frame(c0, g).unwrap();
    }
    assert_eq!(p.free_frames(), total);
}

/// The magazine's frames count as free, but a `Keep` allocation never takes the
/// last `reserve` frames, whichever CPU's magazine holds them; `MayTake` does.
#[test]
fn heap_reserve_holds_with_frames_in_magazines() {
    let (p, _) = pool(4, &[0]);
    let total = p.total_frames();
    const KEEP: u64 = 100;
    p.set_heap_reserve(KEEP);
    // Fill every CPU's magazine a little first.
    for i in 0..4 {
        let f = p.allocate_frame(on(i, 0), Reserve::Keep).unwrap();
        p.deallocate_frame(on(i, 0), f).unwrap();
    }
    assert!(p.magazine_frames(None) >= 4 * MAGAZINE_BATCH as u64);
    let mut held = Vec::new();
    for i in 0.. {
        match p.allocate_frame(on(i % 4, 0), Reserve::Keep) {
            Ok(f) => held.push(f),
            Err(e) => {
                assert_eq!(e, FrameError::OutOfMemory);
                break;
            }
        }
    }
    assert_eq!(
        held.len() as u64,
        total - KEEP,
        "stopped exactly at the reserve"
    );
    assert_eq!(p.free_frames(), KEEP);
    assert_eq!(
        p.allocate_frames(on(0, 0), 1, Reserve::Keep),
        Err(FrameError::OutOfMemory)
    );
    for _ in 0..KEEP {
        held.push(p.allocate_frame(on(2, 0), Reserve::MayTake).unwrap());
    }
    assert_eq!(
        p.allocate_frame(on(2, 0), Reserve::MayTake),
        Err(FrameError::OutOfMemory)
    );
    assert_eq!(p.free_frames(), 0);
    let distinct: BTreeSet<_> = held.iter().collect();
    assert_eq!(distinct.len() as u64, total);
    for (i, f) in held.into_iter().enumerate() {
        p.deallocate_frame(on(i % 3, 0), f).unwrap();
    }
    assert_eq!(p.free_frames(), total);
}

/// Out of memory is only reported once the other CPUs' magazines were drained:
/// one CPU gets every frame, and a large block forms again from frames that
/// sat in magazines.
#[test]
fn out_of_memory_only_after_every_magazine_is_drained() {
    let (p, _) = pool(4, &[0]);
    let total = p.total_frames();
    for i in 1..MAGAZINES {
        let f = p.allocate_frame(on(i, 0), Reserve::Keep).unwrap();
        p.deallocate_frame(on(i, 0), f).unwrap();
    }
    assert!(
        p.magazine_frames(None) > total / 3,
        "much of memory in magazines"
    );
    let mut seen = BTreeSet::new();
    while let Ok(f) = p.allocate_frame(on(0, 0), Reserve::Keep) {
        assert!(seen.insert(f), "{f:?} handed out twice");
    }
    assert_eq!(seen.len() as u64, total, "every frame, once");
    assert_eq!((p.free_frames(), p.magazine_frames(None)), (0, 0));
    // Back through many magazines; then a 256-frame block needs them drained.
    for (i, f) in seen.iter().enumerate() {
        p.deallocate_frame(on(i % MAGAZINES, 0), *f).unwrap();
    }
    assert!(p.magazine_frames(None) > 0);
    let big = p.allocate_frames(on(0, 0), 8, Reserve::Keep).unwrap();
    assert_eq!(p.magazine_frames(None), 0, "drained for the block");
    p.deallocate_frames(on(0, 0), big, 8).unwrap();
    assert_eq!(p.free_frames(), total);
}

/// Each CPU's single frames come from its node's ranges; when the node is full
/// (the other magazines of the node drained first) the nearest node gives.
#[test]
fn frames_come_from_the_cpus_node_then_the_nearest() {
    let (p, ranges) = pool(4, &[0, 1, 2]);
    let n = |id| NumaNode { id };
    p.lock()
        .set_fallback_order(n(1), &[n(1), n(2), n(0)])
        .unwrap();
    let cpus = [on(0, 0), on(1, 1), on(2, 2), on(3, 1)];
    let mut held = Vec::new();
    for cpu in cpus {
        for _ in 0..3 * MAGAZINE_FRAMES {
            let f = p.allocate_frame(cpu, Reserve::Keep).unwrap();
            assert!(
                inside(f, ranges[cpu.node.id as usize]),
                "cpu {cpu:?}: {f:?}"
            );
            held.push(f);
        }
    }
    // CPU 3 (node 1) keeps some node-1 frames in its magazine.
    let f = p.allocate_frame(on(3, 1), Reserve::Keep).unwrap();
    p.deallocate_frame(on(3, 1), f).unwrap();
    assert!(p.magazine_len(3) > 0);
    let mut node1 = 0;
    let spill = loop {
        let f = p.allocate_frame(on(1, 1), Reserve::Keep).unwrap();
        held.push(f);
        if !inside(f, ranges[1]) {
            break f;
        }
        node1 += 1;
    };
    assert_eq!(p.free_frames_on(n(1)), 0);
    assert_eq!(p.magazine_len(3), 0, "CPU 3's node-1 frames went first");
    assert!(inside(spill, ranges[2]), "nearest node next: {spill:?}");
    assert_eq!(p.node_of(spill), Some(n(2)));
    let on_node1 = held.iter().filter(|f| inside(**f, ranges[1])).count();
    assert_eq!(
        on_node1 as u64,
        p.lock().total_frames() / 3,
        "all of node 1"
    );
    assert!(node1 > 0);
    // Frees of another node's frames go to its buddy lists, not the magazine.
    let before = p.magazine_len(0);
    p.deallocate_frame(on(0, 0), spill).unwrap();
    assert_eq!(p.magazine_len(0), before);
    assert_eq!(
        p.deallocate_frame(on(2, 2), spill),
        Err(FrameError::NotAllocated(spill.start_address))
    );
    let total = p.total_frames();
    held.retain(|f| *f != spill);
    for f in held {
        p.deallocate_frame(on(0, 0), f).unwrap();
    }
    assert_eq!(p.free_frames(), total);
}

/// A CPU whose node changed empties its magazine of the old node's frames.
#[test]
fn magazine_follows_a_cpu_to_its_new_node() {
    let (p, ranges) = pool(4, &[0, 1]);
    let f = p.allocate_frame(on(0, 0), Reserve::Keep).unwrap();
    assert!(p.magazine_len(0) > 0);
    let g = p.allocate_frame(on(0, 1), Reserve::Keep).unwrap();
    assert!(inside(g, ranges[1]));
    assert_eq!(p.magazine_frames(Some(0)), 0);
    p.deallocate_frame(on(0, 1), f).unwrap();
    p.deallocate_frame(on(0, 1), g).unwrap();
    assert_eq!(p.free_frames(), p.total_frames());
}

/// Threads standing in for CPUs allocate and free at once, and race to free the
/// same frames twice: each frame is freed exactly once, none is handed out twice,
/// and the count ends exact.
#[test]
fn concurrent_cpus_never_share_or_lose_a_frame() {
    let (p, _) = pool(16, &[0]);
    let total = p.total_frames();
    let p: &FramePool = &p;
    let shared: Vec<PhysFrame> = (0..2000)
        .map(|i| p.allocate_frame(on(i % 4, 0), Reserve::Keep).unwrap())
        .collect();
    let freed_ok = AtomicU64::new(0);
    // No allocation during the race to free: a frame freed there and handed out
    // again would be a new owner's, which no allocator can tell from a double free.
    let barrier = std::sync::Barrier::new(4);
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (shared, freed_ok, barrier) = (&shared, &freed_ok, &barrier);
            s.spawn(move || {
                let cpu = on(t, 0);
                let mut mine = Vec::new();
                for round in 0..200 {
                    for _ in 0..(round % 90) {
                        mine.push(p.allocate_frame(cpu, Reserve::Keep).unwrap());
                    }
                    let keep = mine.len() / 2;
                    for f in mine.drain(keep..) {
                        p.deallocate_frame(cpu, f).unwrap();
                    }
                }
                // Every thread tries to free every shared frame.
                barrier.wait();
                for f in shared {
                    if p.deallocate_frame(cpu, *f).is_ok() {
                        freed_ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                mine
            });
        }
    });
    assert_eq!(freed_ok.load(Ordering::Relaxed), shared.len() as u64);
    // Threads' kept frames were dropped with their Vecs: still allocated.
    let mut seen = BTreeSet::new();
    while let Ok(f) = p.allocate_frame(on(5, 0), Reserve::Keep) {
        assert!(seen.insert(f), "{f:?} handed out twice");
    }
    assert!((seen.len() as u64) < total);
    assert_eq!(p.free_frames(), 0);
}

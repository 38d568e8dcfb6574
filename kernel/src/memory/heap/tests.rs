use super::*;
use crate::memory::frame_allocator::FrameAllocator;
use crate::memory::{phys::host_fresh_range, MemoryRegion};
use proptest::prelude::*;

fn heap(bytes: u64) -> (KernelHeap<FrameAllocator>, u64) {
    let base = host_fresh_range(bytes);
    let mut fa = FrameAllocator::new();
    fa.add_region(MemoryRegion::new(base, bytes)).unwrap();
    let free = fa.free_frames();
    (KernelHeap::new(fa), free)
}

fn fill(p: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: test memory of `len` bytes from the heap.
    unsafe { core::ptr::write_bytes(p.as_ptr(), byte, len) };
}

fn check(p: NonNull<u8>, len: usize, byte: u8) -> bool {
    // SAFETY: as in `fill`.
    unsafe { core::slice::from_raw_parts(p.as_ptr(), len) }
        .iter()
        .all(|&b| b == byte)
}

#[test]
fn classes_cover_sizes_and_alignments() {
    for size in 1..=MAX_SMALL {
        let c = class_for(Layout::from_size_align(size, 8).unwrap()).unwrap();
        assert!(CLASSES[c] >= size);
    }
    for align in [1, 2, 4, 8, 16, 32, 64] {
        for size in 1..=MAX_SMALL {
            let c = class_for(Layout::from_size_align(size, align).unwrap());
            let fits = size.div_ceil(align) * align <= MAX_SMALL;
            assert_eq!(c.is_some(), fits, "size {size} align {align}");
            if let Some(c) = c {
                assert!(CLASSES[c] >= size && CLASSES[c].is_multiple_of(align.max(16)));
                assert!(
                    c == 0 || CLASSES[c - 1] < size || !CLASSES[c - 1].is_multiple_of(align),
                    "smallest fit"
                );
            }
        }
    }
    assert_eq!(class_for(Layout::from_size_align(8, 128).unwrap()), None);
    assert_eq!(
        class_for(Layout::from_size_align(MAX_SMALL + 1, 8).unwrap()),
        None
    );
}

#[test]
fn small_and_large_round_trip_returns_every_frame() {
    let (mut h, free) = heap(16 << 20);
    let layouts = [
        (8, 8),
        (24, 8),
        (100, 16),
        (2048, 64),
        (3000, 8),
        (64 << 10, 4096),
        (17, 1),
    ];
    let mut live = Vec::new();
    for (i, &(size, align)) in layouts.iter().cycle().take(700).enumerate() {
        let l = Layout::from_size_align(size, align).unwrap();
        let p = h.alloc(l).unwrap();
        assert_eq!(p.as_ptr() as usize % align, 0, "{l:?} misaligned");
        fill(p, size, i as u8);
        live.push((p, l, i as u8));
    }
    for &(p, l, b) in &live {
        assert!(check(p, l.size(), b), "{l:?} overwritten");
    }
    for (p, l, _) in live {
        // SAFETY: each pointer came from `h.alloc(l)` once.
        unsafe { h.dealloc(p, l) };
    }
    let s = h.stats();
    assert_eq!(s.bytes_in_use, 0);
    assert_eq!(s.large_frames, 0);
    assert!(
        s.slab_frames <= (CLASSES.len() as u64) << SLAB_ORDER,
        "only cached empty slabs stay"
    );
    assert_eq!(h.source.free_frames() + s.slab_frames, free);
}

#[test]
fn exhaustion_is_an_error_and_recoverable() {
    let (mut h, _) = heap(1 << 20);
    let l = Layout::from_size_align(1024, 8).unwrap();
    let mut live = Vec::new();
    loop {
        match h.alloc(l) {
            Ok(p) => live.push(p),
            Err(e) => {
                assert_eq!(e, HeapError::Exhausted);
                break;
            }
        }
    }
    assert!(live.len() > 500);
    let big = Layout::from_size_align(1 << 30, 8).unwrap();
    assert_eq!(h.alloc(big).unwrap_err(), HeapError::Exhausted);
    let huge = Layout::from_size_align(1 << 40, 8).unwrap();
    assert_eq!(h.alloc(huge).unwrap_err(), HeapError::Unsupported);
    for p in live.drain(..) {
        // SAFETY: from `h.alloc(l)`.
        unsafe { h.dealloc(p, l) };
    }
    assert!(h
        .alloc(Layout::from_size_align(256 << 10, 8).unwrap())
        .is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random mixed sizes (8 B to 64 KiB) and random frees: no two live blocks
    /// overlap, contents survive, and all memory comes back.
    #[test]
    fn mixed_workload(ops in proptest::collection::vec((1usize..65536, 0u32..4, any::<bool>()), 1..200)) {
        let (mut h, free) = heap(64 << 20);
        let mut live: Vec<(NonNull<u8>, Layout, u8)> = Vec::new();
        for (i, (size, align_log, free_one)) in ops.into_iter().enumerate() {
            if free_one && !live.is_empty() {
                let (p, l, b) = live.swap_remove(i % live.len());
                prop_assert!(check(p, l.size(), b));
                // SAFETY: from `h.alloc(l)`, freed once.
                unsafe { h.dealloc(p, l) };
                continue;
            }
            let size = if i % 3 == 0 { size % 256 + 1 } else { size };
            let l = Layout::from_size_align(size, 8 << align_log).unwrap();
            let p = h.alloc(l).unwrap();
            let (s, e) = (p.as_ptr() as usize, p.as_ptr() as usize + size);
            for (q, m, _) in &live {
                let (qs, qe) = (q.as_ptr() as usize, q.as_ptr() as usize + m.size());
                prop_assert!(e <= qs || s >= qe, "overlap");
            }
            fill(p, size, i as u8);
            live.push((p, l, i as u8));
        }
        for (p, l, b) in live {
            prop_assert!(check(p, l.size(), b));
            // SAFETY: from `h.alloc(l)`, freed once.
            unsafe { h.dealloc(p, l) };
        }
        prop_assert_eq!(h.source.free_frames() + h.stats().slab_frames, free);
    }
}

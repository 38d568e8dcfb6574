use super::test_frames::TestFrames;
use super::*;
use crate::memory::frame_allocator::FrameSource;
use crate::memory::paging::{ArmLpaeFormat, PageTable, X86_64Format};
use proptest::prelude::*;
use std::collections::BTreeMap as Model;

type Space = AddressSpace<SoftMmu<TestFrames>, TestFrames>;

const RW: Prot = Prot::READ.union(Prot::WRITE);
const A: u64 = 0x1000_0000;
const P: u64 = PAGE_SIZE;

fn space(mib: u64) -> (Space, TestFrames) {
    any_space(mib)
}

fn any_space<M: Mmu<TestFrames>>(mib: u64) -> (AddressSpace<M, TestFrames>, TestFrames) {
    let mut frames = TestFrames::new(mib);
    let root = frames.alloc_frame().unwrap();
    (AddressSpace::new(root, frames.clone()).unwrap(), frames)
}

fn fixed(addr: u64, len: u64, prot: Prot) -> MapRequest {
    MapRequest::new(len, prot).at(Placement::Fixed(addr))
}

fn write_u64<M: Mmu<TestFrames>>(s: &mut AddressSpace<M, TestFrames>, addr: u64, v: u64) {
    s.copy_to_user(addr, &v.to_le_bytes()).unwrap();
}

fn read_u64<M: Mmu<TestFrames>>(s: &mut AddressSpace<M, TestFrames>, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    s.copy_from_user(addr, &mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn mmap_hint_is_used_when_free_and_pages_come_on_first_touch() {
    let (mut s, frames) = space(4);
    let start = frames.free();
    let a = s
        .mmap(MapRequest::new(4 * P, RW).at(Placement::Hint(A)))
        .unwrap();
    assert_eq!(a, A);
    assert_eq!(s.resident_pages(), 0);
    assert_eq!(frames.free(), start);
    assert_eq!(read_u64(&mut s, A + 8), 0);
    write_u64(&mut s, A + 8, 42);
    assert_eq!(read_u64(&mut s, A + 8), 42);
    assert_eq!(s.resident_pages(), 1);
    assert_eq!(frames.free(), start - 1);
    s.check_invariants().unwrap();
    s.destroy();
    assert_eq!(frames.free(), start + 1, "root returned too");
}

#[test]
fn hint_taken_is_moved_elsewhere_and_unaligned_hint_rounds_up() {
    let (mut s, _f) = space(2);
    s.mmap(fixed(A, P, RW)).unwrap();
    let b = s
        .mmap(MapRequest::new(P, RW).at(Placement::Hint(A)))
        .unwrap();
    assert_ne!(b, A);
    assert!(b + P <= MMAP_BASE);
    let c = s
        .mmap(MapRequest::new(P, RW).at(Placement::Hint(A + 2 * P + 1)))
        .unwrap();
    assert_eq!(c, A + 3 * P);
    let d = s
        .mmap(MapRequest::new(P, RW).at(Placement::Hint(0)))
        .unwrap();
    assert!(d >= MMAP_MIN_ADDR);
    s.check_invariants().unwrap();
}

#[test]
fn anywhere_mappings_do_not_overlap() {
    let (mut s, _f) = space(2);
    let mut got: Vec<u64> = (0..20)
        .map(|i| s.mmap(MapRequest::new((i % 3 + 1) * P, RW)).unwrap())
        .collect();
    got.sort();
    let regions: Vec<_> = s.regions().collect();
    // Adjacent private regions with the same prot merge; they never overlap.
    for w in regions.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    s.check_invariants().unwrap();
}

#[test]
fn bad_arguments_are_typed_errors_and_change_nothing() {
    let (mut s, frames) = space(2);
    s.mmap(fixed(A, P, RW)).unwrap();
    let before: Vec<_> = s.regions().collect();
    let free = frames.free();
    assert_eq!(s.mmap(MapRequest::new(0, RW)), Err(MmError::ZeroLength));
    assert_eq!(
        s.mmap(MapRequest::new(u64::MAX, RW)),
        Err(MmError::OutOfRange)
    );
    assert_eq!(s.mmap(fixed(A + 1, P, RW)), Err(MmError::Unaligned(A + 1)));
    assert_eq!(s.mmap(fixed(TASK_SIZE, P, RW)), Err(MmError::OutOfRange));
    assert_eq!(
        s.mmap(fixed(0x1000, P, RW)),
        Err(MmError::BelowMinimum(0x1000))
    );
    let noreplace = MapRequest::new(P, RW).at(Placement::FixedNoReplace(A));
    assert_eq!(s.mmap(noreplace), Err(MmError::Exists(A)));
    assert_eq!(s.munmap(A + 1, P), Err(MmError::Unaligned(A + 1)));
    assert_eq!(s.munmap(A, 0), Err(MmError::ZeroLength));
    assert_eq!(s.munmap(TASK_SIZE - P, 2 * P), Err(MmError::OutOfRange));
    assert_eq!(
        s.mprotect(A, 2 * P, Prot::READ),
        Err(MmError::NotMapped(A + P))
    );
    assert_eq!(
        s.mprotect(A + 1, P, Prot::READ),
        Err(MmError::Unaligned(A + 1))
    );
    assert_eq!(s.mprotect(A, 0, Prot::READ), Ok(()));
    assert_eq!(s.regions().collect::<Vec<_>>(), before);
    assert_eq!(frames.free(), free);
}

#[test]
fn munmap_splits_and_frees_exactly_the_range() {
    let (mut s, frames) = space(2);
    let free = frames.free();
    s.mmap(fixed(A, 4 * P, RW)).unwrap();
    for i in 0..4 {
        write_u64(&mut s, A + i * P, i + 1);
    }
    assert_eq!(frames.free(), free - 4);
    s.munmap(A + P, 2 * P).unwrap();
    assert_eq!(frames.free(), free - 2);
    let r: Vec<_> = s.regions().map(|r| (r.start, r.end)).collect();
    assert_eq!(r, vec![(A, A + P), (A + 3 * P, A + 4 * P)]);
    assert_eq!(read_u64(&mut s, A), 1);
    assert_eq!(read_u64(&mut s, A + 3 * P), 4);
    assert_eq!(
        s.handle_page_fault(A + P, Access::Read),
        Err(Fault::Unmapped(A + P))
    );
    s.munmap(A + 8 * P, P).unwrap(); // nothing there: fine
    s.check_invariants().unwrap();
}

/// A release larger than the stack batch (more than 32 resident pages, the rest
/// unmapped in place and taken out after the one flush), whole and in pieces, on the
/// hardware table formats: exactly the range's frames and page tables come back,
/// the pages around it keep their contents, and the invariants hold after each
/// piece.
#[test]
fn large_releases_free_exactly_the_range() {
    fn run<M: Mmu<TestFrames>>() {
        let (mut s, frames) = any_space::<M>(4);
        let free = frames.free();
        s.mmap(fixed(A, 200 * P, RW)).unwrap();
        for i in 0..200 {
            write_u64(&mut s, A + i * P, i + 1);
        }
        let touched = frames.free();
        // 100 pages in the middle at once.
        s.munmap(A + 50 * P, 100 * P).unwrap();
        assert_eq!(frames.free(), touched + 100);
        s.check_invariants().unwrap();
        assert_eq!(read_u64(&mut s, A + 49 * P), 50);
        assert_eq!(read_u64(&mut s, A + 150 * P), 151);
        // The last 50 in pieces of 40 pages: 40, then 10 and the mapping goes.
        assert_eq!(s.munmap_piece(A + 150 * P, 50 * P, 40), Ok(false));
        s.check_invariants().unwrap();
        assert_eq!(frames.free(), touched + 140);
        assert_eq!(s.munmap_piece(A + 150 * P, 50 * P, 40), Ok(true));
        s.check_invariants().unwrap();
        assert_eq!(read_u64(&mut s, A + 49 * P), 50);
        s.munmap(A, 50 * P).unwrap();
        s.check_invariants().unwrap();
        assert_eq!(frames.free(), free, "every frame and page table is back");
    }
    run::<SoftMmu<TestFrames>>();
    run::<PageTable<X86_64Format, TestFrames>>();
    run::<PageTable<ArmLpaeFormat, TestFrames>>();
}

#[test]
fn map_fixed_replaces_and_frees_old_pages() {
    let (mut s, frames) = space(2);
    let free = frames.free();
    s.mmap(fixed(A, 2 * P, RW)).unwrap();
    write_u64(&mut s, A, 7);
    s.mmap(fixed(A, P, Prot::READ)).unwrap();
    assert_eq!(frames.free(), free);
    assert_eq!(read_u64(&mut s, A), 0);
    assert_eq!(s.region_at(A).unwrap().prot, Prot::READ);
    assert_eq!(s.region_at(A + P).unwrap().prot, RW);
}

#[test]
fn mprotect_changes_rights_and_faults_follow() {
    let (mut s, _f) = space(2);
    s.mmap(fixed(A, 3 * P, RW)).unwrap();
    write_u64(&mut s, A + P, 5);
    s.mprotect(A + P, P, Prot::READ).unwrap();
    assert_eq!(s.regions().count(), 3);
    assert_eq!(
        s.handle_page_fault(A + P, Access::Write),
        Err(Fault::AccessDenied(A + P))
    );
    assert!(s.copy_to_user(A + P, &[1]).is_err());
    assert_eq!(read_u64(&mut s, A + P), 5);
    s.mprotect(A + P, P, Prot::empty()).unwrap();
    assert!(s.translate(A + P).is_none());
    assert!(s.copy_from_user(A + P, &mut [0u8; 1]).is_err());
    s.mprotect(A, 3 * P, RW).unwrap();
    assert_eq!(s.regions().count(), 1, "re-merged");
    assert_eq!(read_u64(&mut s, A + P), 5, "frame kept across PROT_NONE");
    assert_eq!(
        s.handle_page_fault(A, Access::Execute),
        Err(Fault::AccessDenied(A))
    );
    s.check_invariants().unwrap();
}

#[test]
fn user_copies_refuse_bad_pointers() {
    let (mut s, _f) = space(2);
    s.mmap(fixed(A, P, RW)).unwrap();
    let mut b = [0u8; 16];
    assert_eq!(
        s.copy_from_user(A + P - 8, &mut b),
        Err(BadUserAddress(A + P))
    );
    assert_eq!(s.copy_from_user(0, &mut b), Err(BadUserAddress(0)));
    assert_eq!(
        s.copy_from_user(0xffff_8000_0000_0000, &mut b),
        Err(BadUserAddress(0xffff_8000_0000_0000))
    );
    assert_eq!(
        s.copy_to_user(u64::MAX - 4, &b),
        Err(BadUserAddress(u64::MAX - 4))
    );
    assert_eq!(
        s.copy_to_user(TASK_SIZE - 8, &b),
        Err(BadUserAddress(TASK_SIZE - 8))
    );
    assert_eq!(
        s.handle_page_fault(TASK_SIZE, Access::Read),
        Err(Fault::KernelAddress(TASK_SIZE))
    );
    assert!(
        s.copy_from_user(0, &mut []).is_ok(),
        "empty copies always succeed"
    );
}

#[test]
fn copies_cross_page_boundaries() {
    let (mut s, _f) = space(2);
    s.mmap(fixed(A, 3 * P, RW)).unwrap();
    let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
    s.copy_to_user(A + 100, &data).unwrap();
    let mut back = vec![0u8; 6000];
    s.copy_from_user(A + 100, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn fork_is_copy_on_write_and_isolated() {
    let (mut parent, mut frames) = space(4);
    let free = frames.free();
    parent.mmap(fixed(A, 2 * P, RW)).unwrap();
    write_u64(&mut parent, A, 1);
    write_u64(&mut parent, A + P, 2);
    let mut child = parent.fork(frames.alloc_frame().unwrap()).unwrap();
    assert_eq!(
        frames.free(),
        free - 2 - 1,
        "pages shared, only a root allocated"
    );
    assert_eq!(parent.translate(A), child.translate(A));
    write_u64(&mut child, A, 10);
    assert_ne!(parent.translate(A), child.translate(A));
    assert_eq!(read_u64(&mut parent, A), 1);
    assert_eq!(read_u64(&mut child, A), 10);
    write_u64(&mut parent, A + P, 20); // parent writes first
    assert_eq!(read_u64(&mut child, A + P), 2);
    assert_eq!(frames.free(), free - 4 - 1);
    parent.check_invariants().unwrap();
    child.check_invariants().unwrap();
    child.destroy();
    assert_eq!(frames.free(), free - 2);
    parent.destroy();
    assert_eq!(frames.free(), free + 1);
}

#[test]
fn last_owner_after_fork_reuses_the_frame() {
    let (mut parent, mut frames) = space(4);
    parent.mmap(fixed(A, P, RW)).unwrap();
    write_u64(&mut parent, A, 1);
    let before = parent.translate(A);
    let child = parent.fork(frames.alloc_frame().unwrap()).unwrap();
    child.destroy();
    write_u64(&mut parent, A, 2);
    assert_eq!(
        parent.translate(A),
        before,
        "no copy once the child is gone"
    );
}

#[test]
fn shared_mappings_stay_shared_across_fork_even_untouched_pages() {
    let (mut parent, mut frames) = space(4);
    let free = frames.free();
    let req = fixed(A, 2 * P, RW).sharing(Sharing::Shared);
    parent.mmap(req).unwrap();
    write_u64(&mut parent, A, 1);
    let mut child = parent.fork(frames.alloc_frame().unwrap()).unwrap();
    write_u64(&mut child, A, 5);
    assert_eq!(read_u64(&mut parent, A), 5);
    write_u64(&mut child, A + P, 6); // populated after fork, by the child
    assert_eq!(read_u64(&mut parent, A + P), 6);
    parent.munmap(A, 2 * P).unwrap();
    assert_eq!(
        read_u64(&mut child, A + P),
        6,
        "object lives while the child maps it"
    );
    child.destroy();
    parent.destroy();
    assert_eq!(frames.free(), free + 1);
}

#[test]
fn split_shared_region_keeps_page_offsets() {
    let (mut s, _f) = space(4);
    s.mmap(fixed(A, 4 * P, RW).sharing(Sharing::Shared))
        .unwrap();
    write_u64(&mut s, A + 3 * P, 33);
    s.mprotect(A + P, P, Prot::READ).unwrap();
    assert_eq!(read_u64(&mut s, A + 3 * P), 33);
    s.mprotect(A + P, P, RW).unwrap();
    assert_eq!(
        s.regions().count(),
        1,
        "contiguous pieces of one object merge"
    );
    s.check_invariants().unwrap();
}

#[test]
fn out_of_memory_is_reported_and_nothing_leaks() {
    let (mut s, mut frames) = space(1);
    let free = frames.free();
    s.mmap(fixed(A, 1024 * P, RW)).unwrap();
    let mut populated = 0;
    for i in 0..1024 {
        match s.handle_page_fault(A + i * P, Access::Write) {
            Ok(()) => populated += 1,
            Err(e) => {
                assert_eq!(e, Fault::OutOfMemory);
                break;
            }
        }
    }
    assert_eq!(populated, free);
    assert_eq!(frames.free(), 0);
    // Fork cannot even get a root: the caller sees the allocator refuse.
    assert!(frames.alloc_frame().is_err());
    s.destroy();
    assert_eq!(frames.free(), free + 1);
}

#[test]
fn fork_tree_returns_every_frame() {
    fork_tree::<SoftMmu<TestFrames>>();
    fork_tree::<PageTable<X86_64Format, TestFrames>>();
    fork_tree::<PageTable<ArmLpaeFormat, TestFrames>>();
}

fn fork_tree<M: Mmu<TestFrames>>() {
    let (mut a, mut frames) = any_space::<M>(8);
    let free = frames.free();
    a.mmap(fixed(A, 8 * P, RW)).unwrap();
    a.mmap(fixed(A + 16 * P, 4 * P, RW).sharing(Sharing::Shared))
        .unwrap();
    for i in 0..8 {
        write_u64(&mut a, A + i * P, i);
    }
    let mut b = a.fork(frames.alloc_frame().unwrap()).unwrap();
    let mut c = b.fork(frames.alloc_frame().unwrap()).unwrap();
    write_u64(&mut c, A + 16 * P, 99);
    write_u64(&mut b, A + 2 * P, 77);
    write_u64(&mut c, A + 3 * P, 88);
    assert_eq!(read_u64(&mut a, A + 16 * P), 99);
    assert_eq!(read_u64(&mut a, A + 2 * P), 2);
    assert_eq!(read_u64(&mut c, A + 2 * P), 2);
    b.munmap(A, 4 * P).unwrap();
    a.destroy();
    c.destroy();
    b.destroy();
    assert_eq!(frames.free(), free + 1);
}

// ---- property test: the region tree against a page-level model ----

#[derive(Debug, Clone)]
enum Op {
    Map {
        page: u64,
        pages: u64,
        prot: u32,
        shared: bool,
    },
    Unmap {
        page: u64,
        pages: u64,
    },
    Protect {
        page: u64,
        pages: u64,
        prot: u32,
    },
    Touch {
        page: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let page = 0..64u64;
    let pages = 1..12u64;
    prop_oneof![
        (page.clone(), pages.clone(), 0..8u32, any::<bool>()).prop_map(
            |(page, pages, prot, shared)| Op::Map {
                page,
                pages,
                prot,
                shared
            }
        ),
        (page.clone(), pages.clone()).prop_map(|(page, pages)| Op::Unmap { page, pages }),
        (page.clone(), pages, 0..8u32).prop_map(|(page, pages, prot)| Op::Protect {
            page,
            pages,
            prot
        }),
        page.prop_map(|page| Op::Touch { page }),
    ]
}

/// Model: page index -> (prot, shared).
fn apply<M: Mmu<TestFrames>>(
    s: &mut AddressSpace<M, TestFrames>,
    m: &mut Model<u64, (Prot, bool)>,
    op: &Op,
) {
    let at = |p: u64| A + p * P;
    match *op {
        Op::Map {
            page,
            pages,
            prot,
            shared,
        } => {
            let sharing = if shared {
                Sharing::Shared
            } else {
                Sharing::Private
            };
            let prot = Prot::from_bits_truncate(prot);
            s.mmap(fixed(at(page), pages * P, prot).sharing(sharing))
                .unwrap();
            for p in page..page + pages {
                m.insert(p, (prot, shared));
            }
        }
        Op::Unmap { page, pages } => {
            s.munmap(at(page), pages * P).unwrap();
            for p in page..page + pages {
                m.remove(&p);
            }
        }
        Op::Protect { page, pages, prot } => {
            let prot = Prot::from_bits_truncate(prot);
            let covered = (page..page + pages).all(|p| m.contains_key(&p));
            assert_eq!(s.mprotect(at(page), pages * P, prot).is_ok(), covered);
            if covered {
                for p in page..page + pages {
                    m.get_mut(&p).unwrap().0 = prot;
                }
            }
        }
        Op::Touch { page } => {
            let want = m.get(&page).is_some_and(|(prot, _)| !prot.is_empty());
            assert_eq!(s.handle_page_fault(at(page), Access::Read).is_ok(), want);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn region_tree_matches_page_model(ops in proptest::collection::vec(op(), 1..60)) {
        check_model::<SoftMmu<TestFrames>>(&ops)?;
        check_model::<PageTable<X86_64Format, TestFrames>>(&ops)?;
    }
}

fn check_model<M: Mmu<TestFrames>>(ops: &[Op]) -> Result<(), TestCaseError> {
    {
        let (mut s, frames) = any_space::<M>(2);
        let free = frames.free();
        let mut model = Model::new();
        for op in ops {
            apply(&mut s, &mut model, op);
            s.check_invariants().unwrap();
        }
        for p in 0..80u64 {
            let got = s
                .region_at(A + p * P)
                .map(|r| (r.prot, r.sharing == Sharing::Shared));
            prop_assert_eq!(got, model.get(&p).copied(), "page {}", p);
        }
        s.destroy();
        prop_assert_eq!(frames.free(), free + 1);
    }
    Ok(())
}

#[test]
fn hardware_tables_translate_what_the_space_maps() {
    let (mut s, frames) = any_space::<PageTable<X86_64Format, TestFrames>>(4);
    let free = frames.free();
    s.mmap(fixed(A, 2 * P, RW)).unwrap();
    write_u64(&mut s, A + P + 8, 5);
    let pa = s.translate(A + P + 8).unwrap();
    let mut b = [0u8; 8];
    crate::memory::phys::read_bytes(pa, &mut b).unwrap();
    assert_eq!(u64::from_le_bytes(b), 5);
    assert!(s.translate(A).is_none(), "untouched page not mapped");
    let m = s.mmu().lookup(crate::memory::VirtAddr::new(A + P)).unwrap();
    assert!(m.flags.contains(
        crate::memory::paging::PageFlags::USER | crate::memory::paging::PageFlags::WRITABLE
    ));
    s.mprotect(A + P, P, Prot::READ).unwrap();
    let m = s.mmu().lookup(crate::memory::VirtAddr::new(A + P)).unwrap();
    assert!(!m.flags.contains(crate::memory::paging::PageFlags::WRITABLE));
    s.munmap(A, 2 * P).unwrap();
    assert_eq!(
        frames.free(),
        free,
        "leaf and table frames back after munmap"
    );
    s.destroy();
}

#[test]
fn hardware_tables_out_of_memory_leaks_nothing() {
    let (mut s, mut frames) = any_space::<PageTable<X86_64Format, TestFrames>>(1);
    let free = frames.free();
    s.mmap(fixed(A, 1024 * P, RW)).unwrap();
    let mut result = Ok(());
    for i in 0..1024 {
        result = s.handle_page_fault(A + i * P, Access::Write);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(Fault::OutOfMemory));
    s.check_invariants().unwrap();
    // Fork with no memory left for the child's tables fails cleanly.
    assert_eq!(frames.free(), 0);
    s.munmap(A, 2 * P).unwrap();
    let root = frames.alloc_frame().unwrap();
    let before = frames.free();
    assert_eq!(s.fork(root).err(), Some(MmError::OutOfMemory));
    assert_eq!(
        frames.free(),
        before + 1,
        "child tables and root given back"
    );
    s.check_invariants().unwrap();
    write_u64(&mut s, A + 2 * P, 1); // parent pages writable again after one fault
    s.destroy();
    assert_eq!(frames.free(), free + 1);
}

// ---- property test: fork isolation against a content model ----

#[derive(Debug, Clone)]
enum CowOp {
    Write { who: usize, page: u64, val: u8 },
    Fork { who: usize },
    Exit { who: usize },
}

fn cow_op() -> impl Strategy<Value = CowOp> {
    prop_oneof![
        4 => (0..4usize, 0..8u64, any::<u8>()).prop_map(|(who, page, val)| CowOp::Write { who, page, val }),
        1 => (0..4usize).prop_map(|who| CowOp::Fork { who }),
        1 => (0..4usize).prop_map(|who| CowOp::Exit { who }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Each space sees exactly its own writes and those made before it was forked;
    /// shared pages (pages 6 and 7) are seen by all. No frame leaks.
    #[test]
    fn fork_isolation_matches_content_model(ops in proptest::collection::vec(cow_op(), 1..40)) {
        let (mut first, mut frames) = any_space::<PageTable<X86_64Format, TestFrames>>(4);
        let free = frames.free();
        first.mmap(fixed(A, 6 * P, RW)).unwrap();
        first.mmap(fixed(A + 6 * P, 2 * P, RW).sharing(Sharing::Shared)).unwrap();
        let mut spaces = vec![(first, [0u8; 6])];
        let mut shared = [0u8; 2];
        for op in ops {
            match op {
                CowOp::Write { who, page, val } if who < spaces.len() => {
                    let (s, model) = &mut spaces[who];
                    s.copy_to_user(A + page * P + 3, &[val]).unwrap();
                    if page < 6 { model[page as usize] = val } else { shared[page as usize - 6] = val }
                }
                CowOp::Fork { who } if who < spaces.len() && spaces.len() < 4 => {
                    let root = frames.alloc_frame().unwrap();
                    let child = spaces[who].0.fork(root).unwrap();
                    let model = spaces[who].1;
                    spaces.push((child, model));
                }
                CowOp::Exit { who } if who < spaces.len() && spaces.len() > 1 => {
                    spaces.remove(who).0.destroy();
                }
                _ => {}
            }
            for (s, model) in spaces.iter_mut() {
                s.check_invariants().unwrap();
                for p in 0..8u64 {
                    let mut b = [0u8];
                    s.copy_from_user(A + p * P + 3, &mut b).unwrap();
                    let want = if p < 6 { model[p as usize] } else { shared[p as usize - 6] };
                    prop_assert_eq!(b[0], want);
                }
            }
        }
        for (s, _) in spaces {
            s.destroy();
        }
        prop_assert_eq!(frames.free(), free + 1);
    }
}

#[test]
fn region_count_stops_at_max_map_count_and_nothing_changes() {
    let (mut s, frames) = space(4);
    let free = frames.free();
    let ro = Prot::READ;
    // A 3-page region, then single pages of alternating protections (no merges).
    s.mmap(fixed(A, 3 * P, ro)).unwrap();
    for i in 3..(MAX_MAP_COUNT as u64 + 2) {
        let prot = if i % 2 == 0 { ro } else { RW };
        s.mmap(fixed(A + i * P, P, prot)).unwrap();
    }
    assert_eq!(s.regions().count(), MAX_MAP_COUNT);
    let past = A + (MAX_MAP_COUNT as u64 + 2) * P;
    assert_eq!(s.mmap(fixed(past, P, RW)), Err(MmError::TooManyRegions));
    // Changing or unmapping the middle page of the first region needs a split.
    assert_eq!(s.mprotect(A + P, P, RW), Err(MmError::TooManyRegions));
    assert_eq!(s.munmap(A + P, P), Err(MmError::TooManyRegions));
    assert_eq!(s.regions().count(), MAX_MAP_COUNT, "nothing changed");
    assert_eq!(s.region_at(A + P).map(|r| (r.start, r.prot)), Some((A, ro)));
    // One whole region goes: room for one split, not two; the refusal undoes it.
    s.munmap(A + 3 * P, P).unwrap();
    assert_eq!(s.mprotect(A + P, P, RW), Err(MmError::TooManyRegions));
    assert_eq!(
        s.regions().count(),
        MAX_MAP_COUNT - 1,
        "the first split merged back"
    );
    // Two gone: room for both splits.
    s.munmap(A + 4 * P, P).unwrap();
    s.mprotect(A + P, P, RW).unwrap();
    s.destroy();
    assert_eq!(frames.free(), free + 1, "every frame back (the root too)");
}

// ---- file mappings ----

/// A file for mapping tests: `len` pages, frames made on first pin (filled with
/// the page index), pin counts recorded so a test can check they balance.
struct TestFile {
    len: u64,
    frames: spin::Mutex<TestFrames>,
    pages: spin::Mutex<Model<u64, PhysFrame>>,
    pins: spin::Mutex<Model<PhysFrame, u32>>,
    /// Repins still granted before they fail (`u32::MAX`: all).
    repins_left: spin::Mutex<u32>,
}

impl TestFile {
    fn new(len: u64, frames: &TestFrames) -> Arc<TestFile> {
        Arc::new(TestFile {
            len,
            frames: spin::Mutex::new(frames.clone()),
            pages: spin::Mutex::new(Model::new()),
            pins: spin::Mutex::new(Model::new()),
            repins_left: spin::Mutex::new(u32::MAX),
        })
    }

    fn map(self: &Arc<Self>, first: u64, max_prot: Prot) -> FileMap {
        FileMap {
            file: self.clone(),
            first,
            max_prot,
        }
    }

    /// The byte at `offset` of the file's page `index`.
    fn byte(&self, index: u64, offset: u64) -> u8 {
        let frame = self.pages.lock()[&index];
        let mut b = [0u8];
        phys::read_bytes(frame.start_address + offset, &mut b).unwrap();
        b[0]
    }

    fn pinned(&self) -> u32 {
        self.pins.lock().values().sum()
    }

    /// Gives every page back (no pin may be left).
    fn delete(&self) {
        assert_eq!(self.pinned(), 0, "every pin dropped");
        let mut frames = self.frames.lock();
        for (_, f) in core::mem::take(&mut *self.pages.lock()) {
            frames.free_frame(f).unwrap();
        }
    }
}

impl MappedFile for TestFile {
    fn pin(&self, index: u64) -> Result<PhysFrame, FilePageError> {
        if index >= self.len {
            return Err(FilePageError::BeyondEnd);
        }
        let mut pages = self.pages.lock();
        let frame = match pages.get(&index) {
            Some(&f) => f,
            None => {
                let f = self
                    .frames
                    .lock()
                    .alloc_frame()
                    .map_err(|_| FilePageError::OutOfMemory)?;
                phys::write_bytes(f.start_address, &[index as u8; PAGE_SIZE as usize]).unwrap();
                pages.insert(index, f);
                f
            }
        };
        *self.pins.lock().entry(frame).or_insert(0) += 1;
        Ok(frame)
    }
    fn repin(&self, frame: PhysFrame) -> Result<(), FilePageError> {
        let mut left = self.repins_left.lock();
        *left = left.checked_sub(1).ok_or(FilePageError::OutOfMemory)?;
        let mut pins = self.pins.lock();
        let c = pins.get_mut(&frame).ok_or(FilePageError::OutOfMemory)?;
        *c += 1;
        Ok(())
    }
    fn unpin(&self, frame: PhysFrame) {
        let mut pins = self.pins.lock();
        let c = pins.get_mut(&frame).expect("unpin of a pinned frame");
        *c -= 1;
        if *c == 0 {
            pins.remove(&frame);
        }
    }
    fn name(&self) -> &[u8] {
        b"/test/file"
    }
}

fn read_byte<M: Mmu<TestFrames>>(s: &mut AddressSpace<M, TestFrames>, addr: u64) -> u8 {
    let mut b = [0u8];
    s.copy_from_user(addr, &mut b).unwrap();
    b[0]
}

#[test]
fn shared_file_pages_are_the_files_and_pins_balance() {
    let (mut s, frames) = space(4);
    let start = frames.free();
    let file = TestFile::new(4, &frames);
    let req = fixed(A, 3 * P, RW).sharing(Sharing::Shared);
    s.mmap_file(req, file.map(1, Prot::all())).unwrap();
    assert_eq!(read_byte(&mut s, A), 1, "offset 1 page: the file's page 1");
    s.copy_to_user(A + P + 7, &[0xee]).unwrap();
    assert_eq!(file.byte(2, 7), 0xee, "a store is in the file's frame");
    assert_eq!(file.pinned(), 2);
    assert_eq!(frames.free(), start - 2, "only the file's frames");
    s.check_invariants().unwrap();
    s.munmap(A, P).unwrap();
    assert_eq!(file.pinned(), 1);
    s.destroy();
    assert_eq!(file.pinned(), 0);
    file.delete();
    assert_eq!(frames.free(), start + 1, "root returned too");
}

#[test]
fn private_file_pages_are_copied_on_write_and_fork_pins_again() {
    let (mut s, frames) = space(4);
    let start = frames.free();
    let file = TestFile::new(2, &frames);
    let req = fixed(A, 2 * P, RW);
    s.mmap_file(req, file.map(0, Prot::all())).unwrap();
    assert_eq!(read_byte(&mut s, A + P), 1);
    assert_eq!(
        s.mmu()
            .query(crate::memory::VirtAddr::new(A + P))
            .map(|e| e.1),
        Some(Prot::READ),
        "read-only"
    );
    s.copy_to_user(A + 5, &[9]).unwrap();
    assert_eq!(file.byte(0, 5), 0, "the file keeps its byte");
    assert_eq!(read_byte(&mut s, A + 5), 9);
    assert_eq!(file.pinned(), 1, "the copied page gave its pin back");
    let mut frames2 = frames.clone();
    let mut child = s.fork(frames2.alloc_frame().unwrap()).unwrap();
    assert_eq!(file.pinned(), 2, "the child pins the untouched page too");
    child.copy_to_user(A + P, &[7]).unwrap();
    assert_eq!(file.pinned(), 1);
    assert_eq!(
        read_byte(&mut s, A + P),
        1,
        "the parent still maps the file's page"
    );
    child.copy_to_user(A + 5, &[8]).unwrap();
    assert_eq!(
        read_byte(&mut s, A + 5),
        9,
        "private copies are copy-on-write"
    );
    s.check_invariants().unwrap();
    child.check_invariants().unwrap();
    child.destroy();
    s.destroy();
    file.delete();
    assert_eq!(frames.free(), start + 1);
}

#[test]
fn fork_refused_a_file_pin_midway_gives_back_every_count() {
    let (mut s, frames) = space(4);
    let start = frames.free();
    let file = TestFile::new(3, &frames);
    s.mmap_file(fixed(A, 3 * P, RW), file.map(0, Prot::all()))
        .unwrap();
    s.mmap(fixed(A + 4 * P, P, RW)).unwrap();
    for i in 0..3 {
        assert_eq!(read_byte(&mut s, A + i * P), i as u8);
    }
    write_u64(&mut s, A + 4 * P, 5);
    let used = start - frames.free();
    // The second of the three file pages cannot be pinned for the child.
    *file.repins_left.lock() = 1;
    let mut frames2 = frames.clone();
    let root = frames2.alloc_frame().unwrap();
    assert_eq!(s.fork(root).err(), Some(MmError::OutOfMemory));
    assert_eq!(file.pinned(), 3, "the one pin taken for the child dropped");
    assert_eq!(s.cow.shared_frames(), 0, "no private frame left shared");
    assert_eq!(start - frames.free(), used, "the child's root given back");
    s.check_invariants().unwrap();
    write_u64(&mut s, A + 4 * P, 6);
    assert_eq!(
        start - frames.free(),
        used,
        "no copy: the frame is the parent's alone"
    );
    *file.repins_left.lock() = u32::MAX;
    let mut child = s.fork(frames2.alloc_frame().unwrap()).unwrap();
    assert_eq!(file.pinned(), 6);
    assert_eq!(read_u64(&mut child, A + 4 * P), 6);
    child.check_invariants().unwrap();
    child.destroy();
    s.destroy();
    assert_eq!(file.pinned(), 0);
    file.delete();
    assert_eq!(frames.free(), start + 1);
}

#[test]
fn cow_refs_count_batches_as_single_calls() {
    let cow = CowRefs::new();
    let f = |n: u64| PhysFrame::containing_address(PhysAddr(n * PAGE_SIZE));
    cow.share_all([f(1), f(2), f(1)].into_iter());
    assert_eq!(
        (cow.owners(f(1)), cow.owners(f(2)), cow.owners(f(3))),
        (3, 2, 1)
    );
    let mut last = Vec::new();
    cow.release_all([f(1), f(2), f(3), f(2)].into_iter(), |fr| last.push(fr));
    assert_eq!(last, vec![f(3), f(2)], "the lone owners, in order");
    assert_eq!((cow.owners(f(1)), cow.shared_frames()), (2, 1));
    assert!(!cow.release(f(1)) && cow.release(f(1)));
}

#[test]
fn file_page_beyond_the_end_is_a_bus_fault_and_max_prot_holds() {
    let (mut s, frames) = space(2);
    let file = TestFile::new(1, &frames);
    let req = fixed(A, 2 * P, Prot::READ).sharing(Sharing::Shared);
    s.mmap_file(req, file.map(0, Prot::READ | Prot::EXEC))
        .unwrap();
    assert_eq!(
        s.handle_page_fault(A + P + 3, Access::Read),
        Err(Fault::Bus(A + P + 3))
    );
    assert_eq!(
        s.copy_from_user(A + P, &mut [0u8; 1]),
        Err(BadUserAddress(A + P))
    );
    let before: Vec<_> = s.regions().collect();
    assert_eq!(s.mprotect(A + P, P, RW), Err(MmError::Forbidden(A + P)));
    assert_eq!(s.regions().collect::<Vec<_>>(), before, "nothing changed");
    s.mprotect(A, 2 * P, Prot::empty()).unwrap();
    assert_eq!(
        s.handle_page_fault(A, Access::Read),
        Err(Fault::AccessDenied(A))
    );
    s.check_invariants().unwrap();
    s.destroy();
    file.delete();
}

#[test]
fn split_file_region_keeps_file_offsets_and_merges_back() {
    let (mut s, frames) = space(2);
    let file = TestFile::new(8, &frames);
    s.mmap_file(fixed(A, 4 * P, RW), file.map(2, Prot::all()))
        .unwrap();
    s.mprotect(A + P, P, Prot::READ).unwrap();
    let offsets: Vec<_> = s
        .regions()
        .map(|r| (r.start, r.file.map(|f| f.offset)))
        .collect();
    assert_eq!(
        offsets,
        [
            (A, Some(2 * P)),
            (A + P, Some(3 * P)),
            (A + 2 * P, Some(4 * P))
        ]
    );
    assert_eq!(read_byte(&mut s, A + 2 * P), 4);
    s.mprotect(A + P, P, RW).unwrap();
    assert_eq!(s.regions().count(), 1, "contiguous file pages merge again");
    s.munmap(A + P, P).unwrap();
    assert_eq!(read_byte(&mut s, A + 3 * P), 5);
    s.destroy();
    file.delete();
}

/// copy_to_user across whole pages (filled straight from the data when not
/// resident yet) and partial ones, over a page already resident and into a
/// read-only region: the bytes land, a read-only page is refused, nothing leaks.
#[test]
fn copy_to_user_fills_whole_fresh_pages() {
    let (mut s, frames) = space(4);
    let start = frames.free();
    s.mmap(fixed(A, 8 * P, RW)).unwrap();
    write_u64(&mut s, A + 3 * P, 99); // resident before the copy
    let data: Vec<u8> = (0..5 * P + 300).map(|i| (i % 251) as u8 + 1).collect();
    s.copy_to_user(A + 100, &data).unwrap();
    let mut back = vec![0u8; data.len()];
    s.copy_from_user(A + 100, &mut back).unwrap();
    assert_eq!(back, data);
    let mut tail = [0xffu8; 64];
    s.copy_from_user(A + 100 + data.len() as u64, &mut tail)
        .unwrap();
    assert!(
        tail.iter().all(|&b| b == 0),
        "the rest of the last page is zero"
    );
    assert_eq!(s.resident_pages(), 6);
    s.check_invariants().unwrap();
    s.mmap(fixed(A + 8 * P, 2 * P, Prot::READ)).unwrap();
    assert_eq!(
        s.copy_to_user(A + 8 * P, &data[..2 * P as usize]),
        Err(BadUserAddress(A + 8 * P))
    );
    assert_eq!(
        s.copy_to_user(u64::MAX - 10, &data[..100]),
        Err(BadUserAddress(u64::MAX - 10))
    );
    s.check_invariants().unwrap();
    s.destroy();
    assert_eq!(frames.free(), start + 1, "root returned too");
}

#[test]
fn fill_writes_an_image_whatever_the_rights_and_zeroes_the_rest() {
    let (mut s, frames) = space(4);
    let start = frames.free();
    // Frames dirtied and given back first: a partly filled page must not show them.
    s.mmap(fixed(A, 8 * P, RW)).unwrap();
    for i in 0..8 {
        s.copy_to_user(A + i * P, &[0xaa; P as usize]).unwrap();
    }
    s.munmap(A, 8 * P).unwrap();
    s.mmap(fixed(A, 3 * P, Prot::READ | Prot::EXEC)).unwrap();
    s.mmap(fixed(A + 4 * P, P, Prot::empty())).unwrap();
    let data: Vec<u8> = (0..P + 300).map(|i| (i % 251) as u8 + 1).collect();
    s.fill(A + 100, &data).unwrap();
    s.fill(A + 100 + data.len() as u64, &[7, 7]).unwrap(); // in place, same page
    let mut back = vec![0xffu8; 3 * P as usize];
    s.copy_from_user(A, &mut back).unwrap();
    let end = 100 + data.len();
    assert!(back[..100].iter().all(|&b| b == 0), "zero before the bytes");
    assert_eq!(&back[100..end], &data[..]);
    assert_eq!(&back[end..end + 2], &[7, 7]);
    assert!(back[end + 2..].iter().all(|&b| b == 0), "zero after them");
    let va = crate::memory::VirtAddr::new(A);
    assert_eq!(
        s.mmu().query(va).map(|e| e.1),
        Some(Prot::READ | Prot::EXEC)
    );
    assert_eq!(
        s.copy_to_user(A, &[1]),
        Err(BadUserAddress(A)),
        "still read-only"
    );
    // PROT_NONE: resident, not mapped (invariant 2).
    s.fill(A + 4 * P, &[5]).unwrap();
    assert_eq!(s.mmu().query(crate::memory::VirtAddr::new(A + 4 * P)), None);
    s.check_invariants().unwrap();
    // Refused: no region, a shared region, a page a fork child shares.
    assert_eq!(s.fill(A + 3 * P, &[1]), Err(BadUserAddress(A + 3 * P)));
    let shared = fixed(A + 6 * P, P, RW).sharing(Sharing::Shared);
    s.mmap(shared).unwrap();
    assert_eq!(s.fill(A + 6 * P, &[1]), Err(BadUserAddress(A + 6 * P)));
    let mut frames2 = frames.clone();
    let child = s.fork(frames2.alloc_frame().unwrap()).unwrap();
    assert_eq!(
        s.fill(A, &[1]),
        Err(BadUserAddress(A)),
        "copy-on-write page"
    );
    child.destroy();
    s.check_invariants().unwrap();
    s.destroy();
    assert_eq!(frames.free(), start + 1, "root returned too");
}

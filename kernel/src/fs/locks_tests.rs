//! Host tests of the lock rules: splitting, merging, unlocking, conflicts between
//! owners, and a seeded random comparison with a byte-by-byte model.

use super::*;
use proptest::prelude::*;

const A: Owner = Owner::Process(Pid(1));
const B: Owner = Owner::Process(Pid(2));
const R: Option<LockKind> = Some(LockKind::Read);
const W: Option<LockKind> = Some(LockKind::Write);

fn range(start: u64, end: u64) -> ByteRange {
    ByteRange::new(start, end).unwrap()
}

/// The list's locks as (owner, kind, start, end).
fn held(list: &LockList) -> Vec<(Owner, LockKind, u64, u64)> {
    list.locks()
        .iter()
        .map(|l| (l.owner, l.kind, l.range.start(), l.range.end()))
        .collect()
}

#[test]
fn ranges_check_their_bounds_and_report_l_len() {
    assert_eq!(ByteRange::new(5, 4), None);
    assert_eq!(ByteRange::new(0, OFFSET_MAX + 1), None);
    assert_eq!(range(0, 9).flock_len(), 10);
    assert_eq!(ByteRange::to_end(7).unwrap().flock_len(), 0);
    assert_eq!(ByteRange::to_end(OFFSET_MAX).unwrap().flock_len(), 0);
}

#[test]
fn a_different_type_in_the_middle_splits_a_lock() {
    let mut l = LockList::new();
    l.set(A, R, range(0, 99)).unwrap();
    l.set(A, W, range(10, 19)).unwrap();
    use LockKind::*;
    assert_eq!(
        held(&l),
        [(A, Read, 0, 9), (A, Write, 10, 19), (A, Read, 20, 99)]
    );
}

#[test]
fn same_type_locks_that_overlap_or_touch_merge() {
    let mut l = LockList::new();
    l.set(A, R, range(0, 9)).unwrap();
    l.set(A, R, range(20, 29)).unwrap();
    l.set(A, R, range(10, 19)).unwrap();
    assert_eq!(held(&l), [(A, LockKind::Read, 0, 29)]);
    l.set(A, R, range(25, 40)).unwrap();
    assert_eq!(held(&l), [(A, LockKind::Read, 0, 40)]);
    // Touching but of another type: kept apart.
    l.set(A, W, range(41, 50)).unwrap();
    assert_eq!(held(&l).len(), 2);
}

#[test]
fn unlocking_the_middle_leaves_both_ends() {
    let mut l = LockList::new();
    l.set(A, W, ByteRange::to_end(0).unwrap()).unwrap();
    l.set(A, None, range(5, 9)).unwrap();
    use LockKind::*;
    assert_eq!(held(&l), [(A, Write, 0, 4), (A, Write, 10, OFFSET_MAX)]);
    l.set(A, None, ByteRange::to_end(0).unwrap()).unwrap();
    assert!(l.locks().is_empty());
    // Unlocking what is not locked is fine.
    l.set(A, None, range(0, 3)).unwrap();
}

#[test]
fn an_unlock_over_several_locks_trims_the_outer_ones() {
    let mut l = LockList::new();
    l.set(A, R, range(0, 9)).unwrap();
    l.set(A, W, range(10, 19)).unwrap();
    l.set(A, R, range(30, 39)).unwrap();
    l.set(A, None, range(5, 34)).unwrap();
    use LockKind::*;
    assert_eq!(held(&l), [(A, Read, 0, 4), (A, Read, 35, 39)]);
}

#[test]
fn read_locks_of_two_owners_share_a_range() {
    let mut l = LockList::new();
    l.set(A, R, range(0, 9)).unwrap();
    assert_eq!(l.set(B, R, range(5, 14)), Ok(()));
    assert_eq!(l.conflict(B, LockKind::Read, &range(0, 20)), None);
    assert_eq!(held(&l).len(), 2);
}

#[test]
fn a_write_lock_conflicts_with_another_owners_lock() {
    let mut l = LockList::new();
    l.set(A, R, range(0, 9)).unwrap();
    assert_eq!(l.set(B, W, range(9, 9)), Err(SetLockError::Conflict));
    l.set(B, W, range(10, 19)).unwrap();
    assert_eq!(l.set(A, R, range(15, 15)), Err(SetLockError::Conflict));
    let c = l.conflict(A, LockKind::Read, &range(12, 30)).unwrap();
    assert_eq!(
        (c.owner, c.kind, c.range),
        (B, LockKind::Write, range(10, 19))
    );
    // A failed set changes nothing.
    assert_eq!(held(&l).len(), 2);
}

#[test]
fn an_owner_never_conflicts_with_itself() {
    let mut l = LockList::new();
    l.set(A, W, range(0, 9)).unwrap();
    assert_eq!(l.conflict(A, LockKind::Write, &range(0, 9)), None);
    l.set(A, R, range(0, 9)).unwrap();
    assert_eq!(held(&l), [(A, LockKind::Read, 0, 9)]);
}

#[test]
fn ofd_and_posix_owners_are_different_owners() {
    let mut l = LockList::new();
    let d = Owner::Description(0x1000);
    l.set(A, W, range(0, 9)).unwrap();
    assert_eq!(l.set(d, R, range(0, 0)), Err(SetLockError::Conflict));
}

#[test]
fn release_drops_only_that_owners_locks_and_wakes_waiters() {
    use crate::process::wait_queue::{Waiter, Wakeups};
    use crate::process::Tid;
    let t = LockTable::new();
    t.set(A, R, range(0, 9)).unwrap();
    t.set(B, R, range(0, 9)).unwrap();
    let wakeups = Arc::new(Wakeups::default());
    t.queue()
        .add(&Waiter::new(Tid(7), wakeups.clone()))
        .unwrap();
    t.release(Owner::Process(Pid(3)));
    assert_eq!(wakeups.take(), (Vec::new(), false), "nothing released");
    t.release(A);
    assert_eq!(t.snapshot().len(), 1);
    assert_eq!(t.snapshot()[0].owner, B);
    assert_eq!(wakeups.take(), (alloc::vec![Tid(7)], false), "waiter woken");
}

/// One step of a random sequence.
#[derive(Debug, Clone)]
struct Step {
    owner: u8,
    kind: Option<LockKind>,
    start: u64,
    len: u64,
}

fn step() -> impl Strategy<Value = Step> {
    let kind = prop_oneof![Just(R), Just(W), Just(None)];
    (0u8..3, kind, 0u64..40, 1u64..12).prop_map(|(owner, kind, start, len)| Step {
        owner,
        kind,
        start,
        len,
    })
}

/// The model: per owner, per byte of 0..64, the lock on it.
type Model = [[Option<LockKind>; 64]; 3];

fn model_conflicts(m: &Model, s: &Step) -> bool {
    let Some(kind) = s.kind else { return false };
    (0..3).filter(|&o| o != s.owner as usize).any(|o| {
        (s.start..s.start + s.len).any(|b| match m[o][b as usize] {
            Some(other) => other == LockKind::Write || kind == LockKind::Write,
            None => false,
        })
    })
}

proptest! {
    /// Any sequence leaves the same bytes locked as the model, each owner's locks
    /// apart and merged (no two of one type touching), sorted by start.
    #[test]
    fn random_sequences_match_a_byte_model(steps in proptest::collection::vec(step(), 1..40)) {
        let mut list = LockList::new();
        let mut m: Model = [[None; 64]; 3];
        for s in &steps {
            let owner = Owner::Process(Pid(s.owner as u32));
            let r = range(s.start, s.start + s.len - 1);
            let want = if model_conflicts(&m, s) { Err(SetLockError::Conflict) } else { Ok(()) };
            prop_assert_eq!(list.set(owner, s.kind, r), want);
            if want.is_ok() {
                for b in s.start..s.start + s.len {
                    m[s.owner as usize][b as usize] = s.kind;
                }
            }
        }
        let mut seen: Model = [[None; 64]; 3];
        for l in list.locks() {
            let Owner::Process(Pid(o)) = l.owner else { unreachable!() };
            for b in l.range.start()..=l.range.end() {
                prop_assert_eq!(seen[o as usize][b as usize], None, "overlap");
                seen[o as usize][b as usize] = Some(l.kind);
            }
        }
        prop_assert_eq!(seen, m);
        for (i, a) in list.locks().iter().enumerate() {
            for b in &list.locks()[i + 1..] {
                prop_assert!(a.range.start() <= b.range.start(), "sorted");
                let merged = a.owner == b.owner && a.kind == b.kind && a.range.touches(&b.range);
                prop_assert!(!merged, "unmerged {:?} {:?}", a, b);
            }
        }
    }
}

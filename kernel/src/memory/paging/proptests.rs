//! Property tests: random map/unmap/update/translate sequences on both formats,
//! checked step by step against a model (a `BTreeMap` from page start to frame,
//! flags and size), then a check that iteration agrees with the model and that
//! teardown returns every table frame to the private allocator.

use super::tests::allocator;
use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const GIB: u64 = 1 << 30;
/// Bases of the regions the tests map in: low user, high user, kernel half.
const REGIONS: [u64; 3] = [0, 0x0000_7f80_0000_0000, 0xffff_ff80_0000_0000];

#[derive(Debug, Clone)]
enum Op {
    Map {
        at: Slot,
        flags: PageFlags,
        frame: u64,
    },
    Unmap {
        at: Slot,
    },
    Update {
        at: Slot,
        flags: PageFlags,
    },
    Translate {
        region: usize,
        offset: u64,
    },
}

/// A page chosen so that pages of all sizes collide and tables of every level are
/// shared and freed: 4 GiB per region.
#[derive(Debug, Clone, Copy)]
struct Slot {
    region: usize,
    idx: u64,
    size: PageSize,
}

impl Slot {
    fn page(self) -> Page {
        let i = self.idx;
        let offset = match self.size {
            PageSize::Size4KiB => {
                (i % 16) * 0x1000 + ((i / 16) % 8) * 0x20_0000 + ((i / 128) % 4) * GIB
            }
            PageSize::Size2MiB => (i % 8) * 0x20_0000 + ((i / 8) % 4) * GIB,
            PageSize::Size1GiB => (i % 4) * GIB,
        };
        Page::from_start_address(VirtAddr::new(REGIONS[self.region] + offset), self.size).unwrap()
    }
}

fn slot() -> impl Strategy<Value = Slot> {
    let size = prop_oneof![8 => Just(PageSize::Size4KiB), 3 => Just(PageSize::Size2MiB), 1 => Just(PageSize::Size1GiB)];
    (0..REGIONS.len(), 0..512u64, size).prop_map(|(region, idx, size)| Slot { region, idx, size })
}

fn flags() -> impl Strategy<Value = PageFlags> {
    (any::<u16>(), any::<bool>()).prop_map(|(bits, nx)| {
        let f = PageFlags::from_bits_truncate(bits as u64 & 0xfff);
        if nx {
            f | PageFlags::NO_EXECUTE
        } else {
            f
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (slot(), flags(), 1..1000u64).prop_map(|(at, flags, frame)| Op::Map { at, flags, frame }),
        3 => slot().prop_map(|at| Op::Unmap { at }),
        1 => (slot(), flags()).prop_map(|(at, flags)| Op::Update { at, flags }),
        2 => (0..REGIONS.len(), 0..4 * GIB).prop_map(|(region, offset)| Op::Translate { region, offset }),
    ]
}

/// The model: page start -> (frame, flags as stored, size).
#[derive(Default)]
struct Model(BTreeMap<u64, (PhysFrame, PageFlags, PageSize)>);

/// What the model says a walk to `page` finds.
#[derive(Debug, PartialEq)]
enum Found {
    Leaf(PhysFrame),
    Bigger(PageSize),
    Smaller,
    Nothing,
}

impl Model {
    fn covering(&self, addr: u64) -> Option<(u64, (PhysFrame, PageFlags, PageSize))> {
        let (&start, &leaf) = self.0.range(..=addr).next_back()?;
        (addr < start + leaf.2.bytes()).then_some((start, leaf))
    }

    fn find(&self, page: Page) -> Found {
        let start = page.start_address().as_u64();
        match self.covering(start) {
            Some((s, (f, _, size))) if s == start && size == page.size() => Found::Leaf(f),
            Some((_, (_, _, size))) if size > page.size() => Found::Bigger(size),
            _ if self
                .0
                .range(start..start + page.size().bytes())
                .next()
                .is_some() =>
            {
                Found::Smaller
            }
            _ => Found::Nothing,
        }
    }
}

fn step<F: EntryFormat, A: FrameSource>(t: &mut PageTable<F, A>, model: &mut Model, op: &Op) {
    match *op {
        Op::Map { at, flags, frame } => {
            let (page, size) = (at.page(), at.size);
            let frame = PhysFrame::from_start_address(PhysAddr(frame * size.bytes())).unwrap();
            let got = t.map_to(page, frame, flags).map(MapperFlush::ignore);
            let want = match model.find(page) {
                Found::Leaf(f) => Err(MapToError::PageAlreadyMapped(f)),
                Found::Bigger(size) => Err(MapToError::ParentEntryHugePage { size }),
                Found::Smaller => Err(MapToError::TableInTheWay),
                Found::Nothing => {
                    model.0.insert(
                        page.start_address().as_u64(),
                        (frame, F::normalize(flags, size), size),
                    );
                    Ok(())
                }
            };
            assert_eq!(got, want, "map {page:?}");
        }
        Op::Unmap { at } => {
            let page = at.page();
            let got = t.unmap(page).map(|(f, flush)| {
                flush.ignore();
                f
            });
            let want = match model.find(page) {
                Found::Leaf(f) => {
                    model.0.remove(&page.start_address().as_u64());
                    Ok(f)
                }
                Found::Bigger(size) => Err(UnmapError::ParentEntryHugePage { size }),
                Found::Smaller => Err(UnmapError::TableInTheWay),
                Found::Nothing => Err(UnmapError::PageNotMapped),
            };
            assert_eq!(got, want, "unmap {page:?}");
        }
        Op::Update { at, flags } => {
            let page = at.page();
            let got = t.update_flags(page, flags).map(MapperFlush::ignore);
            let want = match model.find(page) {
                Found::Leaf(_) => {
                    let leaf = model.0.get_mut(&page.start_address().as_u64()).unwrap();
                    leaf.1 = F::normalize(flags, at.size);
                    Ok(())
                }
                Found::Bigger(size) => Err(FlagUpdateError::ParentEntryHugePage { size }),
                Found::Smaller => Err(FlagUpdateError::TableInTheWay),
                Found::Nothing => Err(FlagUpdateError::PageNotMapped),
            };
            assert_eq!(got, want, "update {page:?}");
        }
        Op::Translate { region, offset } => {
            let addr = REGIONS[region] + offset;
            let want = model
                .covering(addr)
                .map(|(s, (f, _, _))| f.start_address + (addr - s));
            assert_eq!(
                t.translate(VirtAddr::new(addr)),
                want,
                "translate {addr:#x}"
            );
        }
    }
}

/// Runs `ops`, checks iteration against the model, tears down (unmapping
/// everything first when `unmap_all`), and checks that no frame leaked.
fn run<F: EntryFormat>(ops: &[Op], unmap_all: bool) {
    let mut fa = allocator(64 << 20);
    let start = fa.free_frames();
    let root = fa.allocate().unwrap();
    let mut t = PageTable::<F, _>::with_source(root, &mut fa);
    let mut model = Model::default();
    for op in ops {
        step(&mut t, &mut model, op);
    }
    let got: Vec<_> = t
        .mappings()
        .map(|(p, m)| (p.start_address().as_u64(), (m.frame, m.flags, m.size)))
        .collect();
    let want: Vec<_> = model.0.iter().map(|(&k, &v)| (k, v)).collect();
    assert_eq!(got, want, "iteration");
    if unmap_all {
        for (&start, &(_, _, size)) in &model.0 {
            let page = Page::from_start_address(VirtAddr::new(start), size).unwrap();
            t.unmap(page).unwrap().1.ignore();
        }
        assert_eq!(t.mappings().count(), 0);
        let lower_root_empty = (0..256).all(|i| {
            crate::memory::phys::read_u64(PhysAddr(root.start_address.0 + 8 * i)) == Ok(0)
        });
        assert!(lower_root_empty, "lower-half tables freed by unmap");
    }
    t.destroy();
    fa.deallocate(root).unwrap();
    assert_eq!(fa.free_frames(), start, "no frame leaked");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn x86_64_matches_model(ops in prop::collection::vec(op(), 1..250), unmap_all in any::<bool>()) {
        run::<X86_64Format>(&ops, unmap_all);
    }

    #[test]
    fn arm_lpae_matches_model(ops in prop::collection::vec(op(), 1..250), unmap_all in any::<bool>()) {
        run::<ArmLpaeFormat>(&ops, unmap_all);
    }
}

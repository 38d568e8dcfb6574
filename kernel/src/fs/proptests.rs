//! Property tests. First: random create/mkdir/rename/unlink/rmdir/link/truncate/write
//! sequences (and open references that outlive their names) on a small tmpfs,
//! checked step by step against a model of Linux's rules (a map from path to
//! directory or file id, and each file's bytes and pages). Each step must give the
//! model's errno; at the end the tree, the contents and the link counts must agree,
//! and removing everything must give back every inode and every frame.
//!
//! Second: random paths (names, `.`, `..`, symlinks, doubled and trailing slashes,
//! absolute or relative, following the last symlink or not) over a fixed tree must
//! resolve where a plain model of the walk says, with the same errno.

use super::errno::*;
use super::tests::tmpfs;
use super::tmpfs::TmpfsLimits;
use super::vfs::{CreateMode, FollowLast, OpenNode, Vfs};
use super::*;
use crate::memory::address_space::test_frames::TestFrames;
use alloc::sync::Arc;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::string::String;
use std::vec;

/// Pages the tmpfs may hold: small, so that writes reach ENOSPC.
const PAGE_LIMIT: u64 = 24;

type Path = Vec<u8>;

#[derive(Debug, Clone)]
enum Op {
    Create(Path, CreateMode),
    Mkdir(Path),
    Unlink(Path),
    Rmdir(Path),
    Link(Path, Path),
    Rename(Path, Path, RenameMode),
    Truncate(Path, u64),
    Write(Path, u64, usize, u8),
    Hold(Path),
    WriteHeld(usize, u64, usize, u8),
    Release(usize),
}

/// Paths of one to three components over the names a, b, c: collisions are common.
fn path() -> impl Strategy<Value = Path> {
    prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..=3)
        .prop_map(|parts| parts.join("/").into_bytes())
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![0..64u64, 4000..4200u64, 0..40_000u64]
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop_oneof![
        Just(RenameMode::Replace),
        Just(RenameMode::NoReplace),
        Just(RenameMode::Exchange)
    ];
    let create = prop_oneof![Just(CreateMode::IfMissing), Just(CreateMode::Exclusive)];
    prop_oneof![
        3 => (path(), create).prop_map(|(p, m)| Op::Create(p, m)),
        3 => path().prop_map(Op::Mkdir),
        2 => path().prop_map(Op::Unlink),
        2 => path().prop_map(Op::Rmdir),
        2 => (path(), path()).prop_map(|(a, b)| Op::Link(a, b)),
        4 => (path(), path(), mode).prop_map(|(a, b, m)| Op::Rename(a, b, m)),
        2 => (path(), offset()).prop_map(|(p, n)| Op::Truncate(p, n)),
        4 => (path(), offset(), 0..9000usize, any::<u8>()).prop_map(|(p, o, n, b)| Op::Write(p, o, n, b)),
        1 => path().prop_map(Op::Hold),
        2 => (0..4usize, offset(), 0..9000usize, any::<u8>()).prop_map(|(i, o, n, b)| Op::WriteHeld(i, o, n, b)),
        1 => (0..4usize).prop_map(Op::Release),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Dir,
    File(u64),
}

#[derive(Debug, Default, Clone)]
struct FileModel {
    data: Vec<u8>,
    pages: BTreeSet<u64>,
}

/// Linux's behaviour on paths relative to `/`, written as plainly as possible.
#[derive(Default)]
struct Model {
    tree: BTreeMap<Path, Entry>,
    files: BTreeMap<u64, FileModel>,
    /// The file ids of the open references, in the order the test holds them.
    held: Vec<u64>,
    next_id: u64,
}

fn parent_of(p: &[u8]) -> Option<&[u8]> {
    p.iter().rposition(|&b| b == b'/').map(|i| &p[..i])
}

/// Whether `p` lies strictly below `dir`.
fn below(p: &[u8], dir: &[u8]) -> bool {
    p.len() > dir.len() && p.starts_with(dir) && p[dir.len()] == b'/'
}

impl Model {
    /// The parent must be an existing directory (each of its prefixes too).
    fn check_parent(&self, p: &[u8]) -> Result<(), Errno> {
        let Some(parent) = parent_of(p) else {
            return Ok(());
        };
        self.check_parent(parent)?;
        match self.tree.get(parent) {
            None => Err(ENOENT),
            Some(Entry::File(_)) => Err(ENOTDIR),
            Some(Entry::Dir) => Ok(()),
        }
    }

    fn get(&self, p: &[u8]) -> Result<Entry, Errno> {
        self.check_parent(p)?;
        self.tree.get(p).copied().ok_or(ENOENT)
    }

    fn has_children(&self, p: &[u8]) -> bool {
        self.tree.keys().any(|k| below(k, p))
    }

    fn live(&self, id: u64) -> bool {
        self.held.contains(&id) || self.tree.values().any(|e| *e == Entry::File(id))
    }

    /// Forgets files nothing names or holds (their pages are free again).
    fn collect(&mut self) {
        let dead: Vec<u64> = self
            .files
            .keys()
            .copied()
            .filter(|&id| !self.live(id))
            .collect();
        for id in dead {
            self.files.remove(&id);
        }
    }

    fn pages_used(&self) -> u64 {
        self.files.values().map(|f| f.pages.len() as u64).sum()
    }

    fn new_file(&mut self) -> u64 {
        self.next_id += 1;
        self.files.insert(self.next_id, FileModel::default());
        self.next_id
    }

    fn create(&mut self, p: &[u8], mode: CreateMode) -> Result<(), Errno> {
        self.check_parent(p)?;
        match (self.tree.get(p), mode) {
            (Some(_), CreateMode::Exclusive) => Err(EEXIST),
            (Some(Entry::Dir), _) => Err(EISDIR),
            (Some(Entry::File(_)), _) => Ok(()),
            (None, _) => {
                let id = self.new_file();
                self.tree.insert(p.to_vec(), Entry::File(id));
                Ok(())
            }
        }
    }

    fn mkdir(&mut self, p: &[u8]) -> Result<(), Errno> {
        self.check_parent(p)?;
        if self.tree.contains_key(p) {
            return Err(EEXIST);
        }
        self.tree.insert(p.to_vec(), Entry::Dir);
        Ok(())
    }

    fn unlink(&mut self, p: &[u8]) -> Result<(), Errno> {
        if self.get(p)? == Entry::Dir {
            return Err(EISDIR);
        }
        self.tree.remove(p);
        self.collect();
        Ok(())
    }

    fn rmdir(&mut self, p: &[u8]) -> Result<(), Errno> {
        match self.get(p)? {
            Entry::File(_) => Err(ENOTDIR),
            Entry::Dir if self.has_children(p) => Err(ENOTEMPTY),
            Entry::Dir => {
                self.tree.remove(p);
                Ok(())
            }
        }
    }

    fn link(&mut self, old: &[u8], new: &[u8]) -> Result<(), Errno> {
        let source = self.get(old)?;
        self.check_parent(new)?;
        if self.tree.contains_key(new) {
            return Err(EEXIST);
        }
        let Entry::File(id) = source else {
            return Err(EPERM);
        };
        self.tree.insert(new.to_vec(), Entry::File(id));
        Ok(())
    }

    /// Removes `p` and everything below it, returning them relative to `p`.
    fn take_subtree(&mut self, p: &[u8]) -> Vec<(Path, Entry)> {
        let keys: Vec<Path> = self
            .tree
            .keys()
            .filter(|k| k.as_slice() == p || below(k, p))
            .cloned()
            .collect();
        keys.into_iter()
            .map(|k| {
                let e = self.tree.remove(&k).unwrap();
                (k[p.len()..].to_vec(), e)
            })
            .collect()
    }

    fn put_subtree(&mut self, at: &[u8], entries: Vec<(Path, Entry)>) {
        for (rest, e) in entries {
            let mut k = at.to_vec();
            k.extend_from_slice(&rest);
            self.tree.insert(k, e);
        }
    }

    fn rename(&mut self, old: &[u8], new: &[u8], mode: RenameMode) -> Result<(), Errno> {
        self.check_parent(old)?;
        self.check_parent(new)?;
        let source = self.tree.get(old).copied().ok_or(ENOENT)?;
        let target = self.tree.get(new).copied();
        if mode == RenameMode::NoReplace && target.is_some() {
            return Err(EEXIST);
        }
        if mode == RenameMode::Exchange {
            let target = target.ok_or(ENOENT)?;
            if old == new || (source == target && source != Entry::Dir) {
                return Ok(());
            }
            if below(new, old) || below(old, new) {
                return Err(EINVAL);
            }
            let (a, b) = (self.take_subtree(old), self.take_subtree(new));
            self.put_subtree(old, b);
            self.put_subtree(new, a);
            return Ok(());
        }
        if source == Entry::Dir && below(new, old) {
            return Err(EINVAL);
        }
        if target == Some(Entry::Dir) && below(old, new) {
            return Err(ENOTEMPTY);
        }
        if old == new || (target == Some(source) && source != Entry::Dir) {
            return Ok(());
        }
        match (source, target) {
            (Entry::Dir, Some(Entry::File(_))) => return Err(ENOTDIR),
            (Entry::File(_), Some(Entry::Dir)) => return Err(EISDIR),
            (_, Some(Entry::Dir)) if self.has_children(new) => return Err(ENOTEMPTY),
            _ => {}
        }
        self.take_subtree(new);
        let moved = self.take_subtree(old);
        self.put_subtree(new, moved);
        self.collect();
        Ok(())
    }

    fn file_at(&self, p: &[u8]) -> Result<u64, Errno> {
        match self.get(p)? {
            Entry::Dir => Err(EISDIR),
            Entry::File(id) => Ok(id),
        }
    }

    fn truncate(&mut self, p: &[u8], len: u64) -> Result<(), Errno> {
        let id = self.file_at(p)?;
        let f = self.files.get_mut(&id).unwrap();
        f.data.resize(len as usize, 0);
        let keep = len.div_ceil(PAGE_BYTES);
        f.pages.retain(|&i| i < keep);
        Ok(())
    }

    /// A write as tmpfs does it: page by page, stopping at the page limit.
    fn write(&mut self, id: u64, offset: u64, len: usize, byte: u8) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let mut used = self.pages_used();
        let f = self.files.get_mut(&id).unwrap();
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let page = at / PAGE_BYTES;
            let chunk = (len - done).min((PAGE_BYTES - at % PAGE_BYTES) as usize);
            if !f.pages.contains(&page) {
                if used >= PAGE_LIMIT {
                    break;
                }
                used += 1;
                f.pages.insert(page);
            }
            done += chunk;
        }
        if done == 0 {
            return Err(ENOSPC);
        }
        let end = offset as usize + done;
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[offset as usize..end].fill(byte);
        Ok(done)
    }
}

struct Real {
    frames: TestFrames,
    fs: Arc<tmpfs::Tmpfs<TestFrames>>,
    vfs: Vfs,
    held: Vec<OpenNode>,
}

impl Real {
    fn root(&self) -> Node {
        self.vfs.root()
    }

    fn write(&self, p: &[u8], offset: u64, len: usize, byte: u8) -> Result<usize, Errno> {
        let node = self.vfs.resolve(self.root(), p, FollowLast::Follow)?;
        let file = self.vfs.open(node)?;
        file.write(offset, &vec![byte; len])
    }
}

fn apply(
    op: &Op,
    model: &mut Model,
    real: &mut Real,
) -> (Result<usize, Errno>, Result<usize, Errno>) {
    let root = real.root();
    let vfs = &real.vfs;
    let unit = |r: Result<(), Errno>| r.map(|()| 0);
    let attrs = NodeAttrs::root(0o644);
    match op {
        Op::Create(p, m) => (
            unit(model.create(p, *m)),
            vfs.create(root, p, *m, FollowLast::Follow, attrs)
                .map(|_| 0),
        ),
        Op::Mkdir(p) => (unit(model.mkdir(p)), vfs.mkdir(root, p, attrs).map(|_| 0)),
        Op::Unlink(p) => (unit(model.unlink(p)), unit(vfs.unlink(root, p))),
        Op::Rmdir(p) => (unit(model.rmdir(p)), unit(vfs.rmdir(root, p))),
        Op::Link(a, b) => (
            unit(model.link(a, b)),
            unit(vfs.link(root, a, root, b, FollowLast::NoFollow)),
        ),
        Op::Rename(a, b, m) => (
            unit(model.rename(a, b, *m)),
            unit(vfs.rename(root, a, root, b, *m)),
        ),
        Op::Truncate(p, n) => (unit(model.truncate(p, *n)), unit(vfs.truncate(root, p, *n))),
        Op::Write(p, o, n, b) => {
            let want = model.file_at(p).and_then(|id| model.write(id, *o, *n, *b));
            (want, real.write(p, *o, *n, *b))
        }
        Op::Hold(p) => {
            let want = model.get(p).map(|e| match e {
                Entry::File(id) => {
                    model.held.push(id);
                    0
                }
                Entry::Dir => 1,
            });
            let got = vfs.resolve(root, p, FollowLast::Follow).and_then(|n| {
                let open = vfs.open(n)?;
                if open.kind() == FileKind::Directory {
                    return Ok(1);
                }
                real.held.push(open);
                Ok(0)
            });
            (want, got)
        }
        Op::WriteHeld(i, o, n, b) => {
            let Some(&id) = model.held.get(*i) else {
                return (Ok(0), Ok(0));
            };
            (
                model.write(id, *o, *n, *b),
                real.held[*i].write(*o, &vec![*b; *n]),
            )
        }
        Op::Release(i) => {
            if *i < model.held.len() {
                model.held.remove(*i);
                model.collect();
                real.held.remove(*i);
            }
            (Ok(0), Ok(0))
        }
    }
}

/// Lists the real tree: path -> (kind, ino, nlink, contents of a file).
fn real_tree(
    vfs: &Vfs,
    dir: Node,
    prefix: &[u8],
    out: &mut BTreeMap<Path, (FileKind, Ino, u32, Vec<u8>)>,
) {
    let mut cookie = 2; // past `.` and `..`
    while let Some(e) = vfs.read_dir(dir, cookie).unwrap() {
        cookie = e.next;
        let mut p = prefix.to_vec();
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(&e.name);
        let node = Node { ino: e.ino, ..dir };
        let st = vfs.stat(node).unwrap();
        assert_eq!(st.kind, e.kind);
        let mut data = vec![0; st.size as usize];
        if st.kind == FileKind::Regular {
            let n = vfs.open(node).unwrap().read(0, &mut data).unwrap();
            assert_eq!(n, data.len());
        } else {
            data.clear();
            real_tree(vfs, node, &p, out);
        }
        out.insert(p, (st.kind, e.ino, st.nlink, data));
    }
}

fn compare(model: &Model, real: &Real) {
    let mut tree = BTreeMap::new();
    real_tree(&real.vfs, real.root(), b"", &mut tree);
    let paths: Vec<&Path> = tree.keys().collect();
    let want: Vec<&Path> = model.tree.keys().collect();
    assert_eq!(paths, want, "same names");
    let mut ino_of = BTreeMap::new();
    for (p, entry) in &model.tree {
        let (kind, ino, nlink, data) = &tree[p];
        match entry {
            Entry::Dir => {
                let subdirs = model
                    .tree
                    .iter()
                    .filter(|(k, e)| **e == Entry::Dir && parent_of(k) == Some(p))
                    .count();
                assert_eq!(
                    (*kind, *nlink as usize),
                    (FileKind::Directory, 2 + subdirs),
                    "{p:?}"
                );
            }
            Entry::File(id) => {
                let links = model.tree.values().filter(|e| *e == entry).count();
                assert_eq!(
                    (*kind, *nlink as usize),
                    (FileKind::Regular, links),
                    "{p:?}"
                );
                assert_eq!(data, &model.files[id].data, "contents of {p:?}");
                assert_eq!(
                    *ino_of.entry(*id).or_insert(*ino),
                    *ino,
                    "hard links of {p:?}"
                );
            }
        }
    }
    assert_eq!(real.fs.pages_used(), model.pages_used(), "pages");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn tmpfs_agrees_with_the_model(ops in prop::collection::vec(op(), 1..120)) {
        let frames = TestFrames::new(4);
        let start = frames.free();
        let limits = TmpfsLimits { pages: PAGE_LIMIT, inodes: 1 << 16 };
        let fs = tmpfs(&frames, limits);
        let vfs = Vfs::new(fs.clone());
        let mut real = Real { frames, fs, vfs, held: Vec::new() };
        let mut model = Model::default();
        for op in &ops {
            let (want, got) = apply(op, &mut model, &mut real);
            prop_assert_eq!(got, want, "{:?}", op);
        }
        compare(&model, &real);
        // Remove everything, deepest first, then drop the open references.
        let paths: Vec<Path> = model.tree.keys().rev().cloned().collect();
        for p in paths {
            let root = real.root();
            let r = match model.tree[&p] {
                Entry::Dir => real.vfs.rmdir(root, &p),
                Entry::File(_) => real.vfs.unlink(root, &p),
            };
            prop_assert_eq!(r, Ok(()));
        }
        prop_assert_eq!(real.fs.inodes_used(), 1 + model.held.iter().collect::<BTreeSet<_>>().len() as u64);
        real.held.clear();
        prop_assert_eq!(real.fs.inodes_used(), 1, "no inode leaked");
        prop_assert_eq!(real.fs.pages_used(), 0);
        prop_assert_eq!(real.frames.free(), start, "no frame leaked");
    }
}

/// The fixed tree the path-walk property walks: `/a`, `/a/b`, `/b` directories,
/// `/a/f` a file, symlinks `/l -> a/b`, `/a/up -> ..`, `/a/x -> nope` (dangling).
fn walk_tree() -> (TestFrames, Vfs) {
    let frames = TestFrames::new(1);
    let vfs = Vfs::new(tmpfs(&frames, super::tests::LIMITS));
    let (root, attrs) = (vfs.root(), NodeAttrs::root(0o755));
    for dir in ["/a", "/a/b", "/b"] {
        vfs.mkdir(root, dir.as_bytes(), attrs).unwrap();
    }
    vfs.create(
        root,
        b"/a/f",
        CreateMode::Exclusive,
        FollowLast::Follow,
        attrs,
    )
    .unwrap();
    for (target, at) in [("a/b", "/l"), ("..", "/a/up"), ("nope", "/a/x")] {
        vfs.symlink(target.as_bytes(), root, at.as_bytes()).unwrap();
    }
    (frames, vfs)
}

/// The model of [`walk_tree`]: what a component names, given the directory it is in.
fn walk_model(dir: &[&'static str], name: &str) -> Option<(FileKind, Vec<&'static str>)> {
    use FileKind::{Directory, Regular, Symlink};
    let (kind, target): (FileKind, &[&str]) = match (dir, name) {
        ([], "a") => (Directory, &["a"]),
        ([], "b") => (Directory, &["b"]),
        (["a"], "b") => (Directory, &["a", "b"]),
        (["a"], "f") => (Regular, &["a", "f"]),
        ([], "l") => (Symlink, &["a", "b"]),
        (["a"], "up") => (Symlink, &[]),
        (["a"], "x") => (Symlink, &["nope"]),
        _ => return None,
    };
    Some((kind, target.to_vec()))
}

/// Walks `comps` (empty ones are doubled or trailing slashes) from `start` in the
/// model: the directory path reached, or the path of the entry the walk ends on.
fn model_walk(
    start: Vec<&'static str>,
    comps: &[&'static str],
    follow: FollowLast,
) -> Result<Vec<&'static str>, Errno> {
    let mut cur = start;
    for (i, &c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        match c {
            "" | "." => {}
            ".." => {
                cur.pop();
            }
            name => {
                let (kind, target) = walk_model(&cur, name).ok_or(ENOENT)?;
                let mut here = cur.clone();
                here.push(name);
                match kind {
                    FileKind::Directory => cur = here,
                    FileKind::Symlink if last && follow == FollowLast::NoFollow => return Ok(here),
                    FileKind::Symlink if target == ["nope"] => return Err(ENOENT),
                    FileKind::Symlink => cur = target,
                    _ if last => return Ok(here),
                    _ => return Err(ENOTDIR),
                }
            }
        }
    }
    Ok(cur)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Random paths of names, `.`, `..`, symlinks and extra slashes resolve where the
    /// model says, absolute or from the working directory `/a`.
    #[test]
    fn path_walk_agrees_with_the_model(
        absolute in any::<bool>(),
        comps in prop::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("f"), Just("l"), Just("up"), Just("x"),
                        Just("nope"), Just("."), Just(".."), Just("")],
            0..8),
        nofollow in any::<bool>(),
    ) {
        let (_frames, vfs) = walk_tree();
        let root = vfs.root();
        let cwd = vfs.resolve(root, b"/a", FollowLast::Follow).unwrap();
        let follow = if nofollow { FollowLast::NoFollow } else { FollowLast::Follow };
        let mut path = if absolute { String::from("/") } else { String::new() };
        path.push_str(&comps.join("/"));
        // A relative path whose first component is empty starts with `/` too.
        let start = if path.starts_with('/') { vec![] } else { vec!["a"] };
        let want = if path.is_empty() {
            Err(ENOENT)
        } else {
            model_walk(start, &comps, follow).map(|p| {
                let canonical = String::from("/") + &p.join("/");
                vfs.resolve(root, canonical.as_bytes(), FollowLast::NoFollow).unwrap()
            })
        };
        prop_assert_eq!(vfs.resolve(cwd, path.as_bytes(), follow), want, "{}", path);
    }
}

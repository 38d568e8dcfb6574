//! The mount table, the path walk and the path operations.
//!
//! ## What it owns
//! * [`Vfs`]: the mounts (each a file system, its root inode and the directory
//!   [`Node`] it covers) and the rules that are about paths, not inodes: `.` and
//!   `..` (`..` of a mount's root continues from the directory it covers), symlinks
//!   (at most [`SYMLOOP_MAX`] per walk, else ELOOP; an empty target is ENOENT),
//!   trailing slashes (the last component must then be a directory, and is
//!   followed even with [`FollowLast::NoFollow`]), ENAMETOOLONG for a component over
//!   [`NAME_MAX`] or a path of [`PATH_MAX`] bytes or more, EXDEV across mounts, EBUSY
//!   for a mount point.
//! * [`OpenNode`]: an open reference to an inode; it keeps the inode (and its
//!   pages) alive after its last name is gone, until it drops.
//!
//! ## Locks
//! [`Vfs::mounts`] is held only to read or change the table, never while a file
//! system runs, so it nests with nothing.
#![deny(unsafe_code)]

use super::devfs::{CharDevice, Entropy};
use super::errno::{EBUSY, EEXIST, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR};
use super::errno::{ENODEV, ENOTEMPTY, ENXIO, EXDEV};
use super::locks::{LockTable, Owner, TableLookup};
use super::{copy_bytes, reserve, DirEntry, Errno, FileKind, FileSystem, Ino, NewNode, Node};
use super::{DeviceId, NodeAttrs, RemoveKind, RenameMode, SetAttr, Stat, StatFs};
use super::{NAME_MAX, PATH_MAX, SYMLOOP_MAX};
use crate::memory::PhysFrame;
use crate::sync::IrqMutex;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A mount's index in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MountId(pub u32);

/// Whether the walk follows a symlink in the last component (`O_NOFOLLOW`,
/// `lstat`, `AT_SYMLINK_NOFOLLOW` say not to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowLast {
    /// Follow it.
    Follow,
    /// Return the symlink itself (unless a trailing slash follows it).
    NoFollow,
}

/// open's `O_CREAT` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// `O_CREAT`: open the file if it exists, else create it.
    IfMissing,
    /// `O_CREAT | O_EXCL`: EEXIST if the name exists (even as a dangling symlink).
    Exclusive,
}

/// Nodes mknod makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialNode {
    /// A FIFO.
    Fifo,
    /// A character device.
    CharDevice(DeviceId),
}

/// A path's last component, as the walk of its parent left it.
// The name is held inline (256 bytes) on purpose: a path walk allocates nothing
// for it, and a `Last` lives only on the stack of one call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// An ordinary name.
    Name(Name),
    /// `.`
    Dot,
    /// `..`
    DotDot,
    /// The path was only slashes (`/`).
    Root,
}

/// A file name: 1 to [`NAME_MAX`] bytes without `/`, held without allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    bytes: [u8; NAME_MAX],
    len: u8,
}

impl Name {
    /// `bytes` as a name; ENAMETOOLONG over [`NAME_MAX`] bytes.
    fn new(bytes: &[u8]) -> Result<Self, Errno> {
        if bytes.len() > NAME_MAX {
            return Err(ENAMETOOLONG);
        }
        let mut name = Name {
            bytes: [0; NAME_MAX],
            len: bytes.len() as u8,
        };
        name.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(name)
    }

    /// The bytes of the name.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Name({:?})", core::str::from_utf8(self.as_bytes()))
    }
}

/// The parent directory of a path and its last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentPath {
    /// The directory the last component is in.
    pub dir: Node,
    /// The last component.
    pub last: Last,
    /// Whether the path ended in `/` (the last component must be a directory).
    pub trailing_slash: bool,
}

struct MountEntry {
    fs: Arc<dyn FileSystem>,
    root: Ino,
    /// The directory this mount hides (`None` for the root mount).
    covers: Option<Node>,
}

/// The file system tree: mounts and the operations on paths. See the module
/// documentation.
pub struct Vfs {
    /// The mount table; index = [`MountId`], `None` once unmounted. Held briefly.
    mounts: IrqMutex<Vec<Option<MountEntry>>>,
    /// What `/dev/random` and `/dev/urandom` read.
    entropy: Option<Entropy>,
}

/// Text still to walk: the path, or a symlink's target pushed on top of it.
struct Segment {
    text: Vec<u8>,
    pos: usize,
    /// The segment's last component must be a directory (it replaces a symlink
    /// that had to be one).
    dir_at_end: bool,
}

impl Segment {
    fn skip_slashes(&mut self) {
        while self.text.get(self.pos) == Some(&b'/') {
            self.pos += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// The next component (the caller skipped slashes and checked `at_end`).
    fn take(&mut self) -> Result<Name, Errno> {
        let start = self.pos;
        while self.text.get(self.pos).is_some_and(|&b| b != b'/') {
            self.pos += 1;
        }
        Name::new(&self.text[start..self.pos])
    }
}

/// One path walk in progress: where it is, the text still to walk (the path, with
/// symlink targets pushed on top), and the symlinks followed so far.
struct Walk<'v> {
    vfs: &'v Vfs,
    cur: Node,
    segments: Vec<Segment>,
    links: u32,
}

/// The next component of a walk.
struct Step {
    name: Name,
    /// It must be a directory (a slash follows it, or more components do).
    must_be_dir: bool,
    /// A slash follows it in its own text (or the symlink it replaces had one).
    slash_after: bool,
}

impl Walk<'_> {
    fn push(&mut self, text: Vec<u8>, dir_at_end: bool) -> Result<(), Errno> {
        reserve(&mut self.segments, 1)?;
        self.segments.push(Segment {
            text,
            pos: 0,
            dir_at_end,
        });
        Ok(())
    }

    /// The next component, or `None` when the walk is done. Exhausted segments
    /// are dropped at once, so a segment below the top always holds a component.
    fn next_step(&mut self) -> Result<Option<Step>, Errno> {
        while let Some(top) = self.segments.last_mut() {
            top.skip_slashes();
            if top.at_end() {
                self.segments.pop();
                continue;
            }
            let name = top.take()?;
            let slash_after = !top.at_end() || top.dir_at_end;
            top.skip_slashes();
            if top.at_end() {
                self.segments.pop();
            }
            let must_be_dir = slash_after || !self.segments.is_empty();
            return Ok(Some(Step {
                name,
                must_be_dir,
                slash_after,
            }));
        }
        Ok(None)
    }

    fn take_step(&mut self, step: &Step, follow: FollowLast) -> Result<(), Errno> {
        match step.name.as_bytes() {
            b"." => Ok(()),
            b".." => {
                self.cur = self.vfs.parent_of(self.cur)?;
                Ok(())
            }
            _ => self.enter(step, follow),
        }
    }

    /// Moves to the entry `step` names, or follows it if it is a symlink to be
    /// followed (the last component only with [`FollowLast::Follow`] or a slash).
    fn enter(&mut self, step: &Step, follow: FollowLast) -> Result<(), Errno> {
        let child = self.vfs.child(self.cur, &step.name)?;
        let kind = self.vfs.stat(child)?.kind;
        let follow_here = step.must_be_dir || follow == FollowLast::Follow;
        if kind == FileKind::Symlink && follow_here {
            return self.follow_link(child, step.slash_after);
        }
        if step.must_be_dir && kind != FileKind::Directory {
            return Err(ENOTDIR);
        }
        self.cur = child;
        Ok(())
    }

    /// Continues the walk with the target of symlink `link` (relative to the
    /// directory holding it, or to `/`).
    fn follow_link(&mut self, link: Node, slash_after: bool) -> Result<(), Errno> {
        self.links += 1;
        if self.links > SYMLOOP_MAX {
            return Err(ELOOP);
        }
        let target = self.vfs.fs(link.mount)?.read_link(link.ino)?;
        if target.is_empty() {
            return Err(ENOENT);
        }
        if target[0] == b'/' {
            self.cur = self.vfs.root();
        }
        self.push(target, slash_after)
    }
}

/// ENOENT for an empty path, ENAMETOOLONG for one of [`PATH_MAX`] bytes or more.
fn check_path(path: &[u8]) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(ENAMETOOLONG);
    }
    Ok(())
}

/// Splits `path` (checked) into the text before its last component, the last
/// component (`None` for a path of slashes only) and whether slashes trail it.
fn split_last(path: &[u8]) -> (&[u8], Option<&[u8]>, bool) {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trimmed = &path[..end];
    let trailing = end < path.len();
    if trimmed.is_empty() {
        return (path, None, trailing);
    }
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], Some(&trimmed[i + 1..]), trailing),
        None => (&[], Some(trimmed), trailing),
    }
}

impl Vfs {
    /// A tree with `root` mounted at `/`.
    pub fn new(root: Arc<dyn FileSystem>) -> Self {
        let entry = MountEntry {
            root: root.root(),
            fs: root,
            covers: None,
        };
        Vfs {
            mounts: IrqMutex::new(alloc::vec![Some(entry)]),
            entropy: None,
        }
    }

    /// The same tree, with `entropy` behind `/dev/random` and `/dev/urandom`.
    pub fn with_entropy(mut self, entropy: Entropy) -> Self {
        self.entropy = Some(entropy);
        self
    }

    /// `/`.
    pub fn root(&self) -> Node {
        let mounts = self.mounts.lock();
        let root = mounts[0].as_ref().map_or(0, |m| m.root);
        Node {
            mount: MountId(0),
            ino: root,
        }
    }

    /// Mounts `fs` on directory `at` (the newest mount on a directory is the one
    /// seen); ENOTDIR if `at` is not a directory.
    pub fn mount(&self, at: Node, fs: Arc<dyn FileSystem>) -> Result<MountId, Errno> {
        if self.stat(at)?.kind != FileKind::Directory {
            return Err(ENOTDIR);
        }
        let mut mounts = self.mounts.lock();
        reserve(&mut mounts, 1)?;
        mounts.push(Some(MountEntry {
            root: fs.root(),
            fs,
            covers: Some(at),
        }));
        Ok(MountId(mounts.len() as u32 - 1))
    }

    /// Unmounts `id`: EINVAL for the root mount or an unknown one, EBUSY while
    /// something is mounted inside it.
    pub fn unmount(&self, id: MountId) -> Result<(), Errno> {
        let mut mounts = self.mounts.lock();
        if id.0 == 0 || mounts.get(id.0 as usize).is_none_or(|m| m.is_none()) {
            return Err(EINVAL);
        }
        let busy = mounts
            .iter()
            .flatten()
            .any(|m| m.covers.is_some_and(|c| c.mount == id));
        if busy {
            return Err(EBUSY);
        }
        mounts[id.0 as usize] = None;
        Ok(())
    }

    /// The file system of `mount` (ENOENT if it is gone).
    pub fn fs(&self, mount: MountId) -> Result<Arc<dyn FileSystem>, Errno> {
        let mounts = self.mounts.lock();
        let entry = mounts.get(mount.0 as usize).and_then(Option::as_ref);
        entry.map(|m| m.fs.clone()).ok_or(ENOENT)
    }

    /// `node`, or the root of what is mounted on it (the newest mount, repeated
    /// for mounts on mount roots).
    fn covering(&self, mut node: Node) -> Node {
        let mounts = self.mounts.lock();
        loop {
            let top = mounts.iter().enumerate().rev().find_map(|(i, m)| {
                let m = m.as_ref()?;
                (m.covers == Some(node)).then_some(Node {
                    mount: MountId(i as u32),
                    ino: m.root,
                })
            });
            match top {
                Some(n) => node = n,
                None => return node,
            }
        }
    }

    /// `..` of directory `node`: at a mount's root, the parent of the directory it
    /// covers; at `/`, `/` itself.
    fn parent_of(&self, mut node: Node) -> Result<Node, Errno> {
        loop {
            let (fs, root, covers) = {
                let mounts = self.mounts.lock();
                let m = mounts
                    .get(node.mount.0 as usize)
                    .and_then(Option::as_ref)
                    .ok_or(ENOENT)?;
                (m.fs.clone(), m.root, m.covers)
            };
            if node.ino != root {
                let ino = fs.parent(node.ino)?;
                return Ok(self.covering(Node { ino, ..node }));
            }
            match covers {
                Some(below) => node = below,
                None => return Ok(node),
            }
        }
    }

    /// The absolute path of directory `dir` (getcwd), found by walking `..` up
    /// and looking each directory up by inode in its parent, as Linux's d_path
    /// does with dentries: a renamed ancestor shows its new name. ENOENT if `dir`
    /// or an ancestor has been removed.
    pub fn path_of(&self, dir: Node) -> Result<Vec<u8>, Errno> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut cur = dir;
        let root = self.root();
        while cur != root {
            let (fs, mount_root, covers) = {
                let mounts = self.mounts.lock();
                let m = mounts
                    .get(cur.mount.0 as usize)
                    .and_then(Option::as_ref)
                    .ok_or(ENOENT)?;
                (m.fs.clone(), m.root, m.covers)
            };
            if cur.ino == mount_root {
                // A mount's root is named by the directory it covers.
                match covers {
                    Some(below) => cur = below,
                    None => break,
                }
                continue;
            }
            let parent = fs.parent(cur.ino)?;
            let name = name_in(&*fs, parent, cur.ino)?;
            reserve(&mut names, 1)?;
            names.push(name);
            cur = Node { ino: parent, ..cur };
        }
        let mut path = Vec::new();
        for name in names.iter().rev() {
            reserve(&mut path, name.len() + 1)?;
            path.push(b'/');
            path.extend_from_slice(name);
        }
        if path.is_empty() {
            reserve(&mut path, 1)?;
            path.push(b'/');
        }
        Ok(path)
    }

    /// The absolute path `path` (from `cwd`) names with every symlink followed, as
    /// realpath(3) gives it (what `/proc/PID/exe` shows).
    pub fn real_path(&self, cwd: Node, path: &[u8]) -> Result<Vec<u8>, Errno> {
        let (mut start, mut path) = (cwd, copy_bytes(path)?);
        for _ in 0..=SYMLOOP_MAX {
            let parent = self.resolve_parent(start, &path)?;
            let Last::Name(name) = parent.last else {
                return self.path_of(self.resolve(start, &path, FollowLast::Follow)?);
            };
            let node = self.child(parent.dir, &name)?;
            if self.stat(node)?.kind == FileKind::Symlink {
                path = self.fs(node.mount)?.read_link(node.ino)?;
                start = parent.dir;
                continue;
            }
            let mut full = self.path_of(parent.dir)?;
            reserve(&mut full, name.as_bytes().len() + 1)?;
            if full != b"/" {
                full.push(b'/');
            }
            full.extend_from_slice(name.as_bytes());
            return Ok(full);
        }
        Err(ELOOP)
    }

    /// Every mount, in the order made: the path it is mounted on and the type of
    /// its file system (`/proc/mounts`).
    pub fn mount_points(&self) -> Vec<(Vec<u8>, &'static str)> {
        let entries: Vec<(MountId, Arc<dyn FileSystem>)> = {
            let mounts = self.mounts.lock();
            mounts
                .iter()
                .enumerate()
                .filter_map(|(i, m)| Some((MountId(i as u32), m.as_ref()?.fs.clone())))
                .collect()
        };
        entries
            .into_iter()
            .filter_map(|(mount, fs)| {
                let root = Node {
                    mount,
                    ino: fs.root(),
                };
                Some((self.path_of(root).ok()?, fs.type_name()))
            })
            .collect()
    }

    /// Data pages the tree's file systems hold (what meminfo calls Shmem).
    pub fn pages_used(&self) -> u64 {
        let mounts = self.mounts.lock();
        mounts
            .iter()
            .flatten()
            .map(|m| {
                let s = m.fs.statfs();
                s.blocks - s.blocks_free
            })
            .sum()
    }

    /// The attributes of `node`.
    pub fn stat(&self, node: Node) -> Result<Stat, Errno> {
        self.fs(node.mount)?.stat(node.ino)
    }

    /// Walks `path` from `cwd` (or `/` if it is absolute) to the node it names.
    /// Errors: ENOENT (a missing component, an empty path or symlink target),
    /// ENOTDIR (a component before a slash is not a directory), ENAMETOOLONG,
    /// ELOOP (more than [`SYMLOOP_MAX`] symlinks).
    pub fn resolve(&self, cwd: Node, path: &[u8], follow: FollowLast) -> Result<Node, Errno> {
        check_path(path)?;
        let start = if path[0] == b'/' { self.root() } else { cwd };
        let mut walk = Walk {
            vfs: self,
            cur: start,
            segments: Vec::new(),
            links: 0,
        };
        walk.push(copy_bytes(path)?, false)?;
        while let Some(step) = walk.next_step()? {
            walk.take_step(&step, follow)?;
        }
        Ok(walk.cur)
    }

    /// Walks all of `path` but its last component, which it returns unresolved
    /// (for the calls that make or remove that name).
    pub fn resolve_parent(&self, cwd: Node, path: &[u8]) -> Result<ParentPath, Errno> {
        check_path(path)?;
        let (prefix, last, trailing_slash) = split_last(path);
        let dir = if prefix.is_empty() {
            cwd
        } else {
            self.resolve(cwd, prefix, FollowLast::Follow)?
        };
        let last = match last {
            None => Last::Root,
            Some(b".") => Last::Dot,
            Some(b"..") => Last::DotDot,
            Some(name) => Last::Name(Name::new(name)?),
        };
        Ok(ParentPath {
            dir,
            last,
            trailing_slash,
        })
    }

    /// The node named `name` in directory `dir` (mounts crossed), or ENOENT.
    fn child(&self, dir: Node, name: &Name) -> Result<Node, Errno> {
        let ino = self.fs(dir.mount)?.lookup(dir.ino, name.as_bytes())?;
        Ok(self.covering(Node { ino, ..dir }))
    }

    /// Makes `node` under the name of `parent` (an ordinary name, checked).
    fn make(
        &self,
        parent: &ParentPath,
        name: &Name,
        node: NewNode<'_>,
        attrs: NodeAttrs,
    ) -> Result<Node, Errno> {
        let fs = self.fs(parent.dir.mount)?;
        let ino = fs.create(parent.dir.ino, name.as_bytes(), node, attrs)?;
        Ok(Node { ino, ..parent.dir })
    }

    /// The last component for mknod, symlink and link (Linux's filename_create):
    /// `.`, `..` and `/` are EEXIST; with a trailing slash, an existing name is
    /// EEXIST and a missing one ENOENT (only a directory may end in `/`).
    fn name_to_create(&self, parent: &ParentPath) -> Result<Name, Errno> {
        let Last::Name(name) = parent.last else {
            return Err(EEXIST);
        };
        if parent.trailing_slash {
            return match self.child(parent.dir, &name) {
                Ok(_) => Err(EEXIST),
                Err(_) => Err(ENOENT),
            };
        }
        Ok(name)
    }

    /// mkdir: a new directory at `path`. EEXIST if the name exists (also for
    /// `.`, `..` and `/`).
    pub fn mkdir(&self, cwd: Node, path: &[u8], attrs: NodeAttrs) -> Result<Node, Errno> {
        let parent = self.resolve_parent(cwd, path)?;
        let Last::Name(name) = parent.last else {
            return Err(EEXIST);
        };
        self.make(&parent, &name, NewNode::Directory, attrs)
    }

    /// mknod for FIFOs and character devices.
    pub fn mknod(
        &self,
        cwd: Node,
        path: &[u8],
        node: SpecialNode,
        attrs: NodeAttrs,
    ) -> Result<Node, Errno> {
        let parent = self.resolve_parent(cwd, path)?;
        let name = self.name_to_create(&parent)?;
        let new = match node {
            SpecialNode::Fifo => NewNode::Fifo,
            SpecialNode::CharDevice(id) => NewNode::CharDevice(id),
        };
        self.make(&parent, &name, new, attrs)
    }

    /// symlink: a link at `path` to `target` (ENOENT for an empty target,
    /// ENAMETOOLONG for one of [`PATH_MAX`] bytes or more).
    pub fn symlink(&self, target: &[u8], cwd: Node, path: &[u8]) -> Result<Node, Errno> {
        check_path(target)?;
        let parent = self.resolve_parent(cwd, path)?;
        let name = self.name_to_create(&parent)?;
        self.make(
            &parent,
            &name,
            NewNode::Symlink(target),
            NodeAttrs::root(0o777),
        )
    }

    /// open with `O_CREAT`: the regular file at `path`, created empty if missing.
    /// EISDIR for a directory or a path ending in `/`; EEXIST with
    /// [`CreateMode::Exclusive`] for any existing name; ELOOP for a symlink with
    /// [`FollowLast::NoFollow`]. A symlink is followed, and a dangling one creates
    /// its target, as on Linux.
    pub fn create(
        &self,
        cwd: Node,
        path: &[u8],
        mode: CreateMode,
        follow: FollowLast,
        attrs: NodeAttrs,
    ) -> Result<Node, Errno> {
        self.create_within(cwd, path, mode, follow, attrs, SYMLOOP_MAX)
    }

    fn create_within(
        &self,
        cwd: Node,
        path: &[u8],
        mode: CreateMode,
        follow: FollowLast,
        attrs: NodeAttrs,
        links_left: u32,
    ) -> Result<Node, Errno> {
        let parent = self.resolve_parent(cwd, path)?;
        let Last::Name(name) = parent.last else {
            return Err(EISDIR);
        };
        if parent.trailing_slash {
            return Err(EISDIR);
        }
        let existing = match self.child(parent.dir, &name) {
            Err(ENOENT) => return self.make(&parent, &name, NewNode::Regular, attrs),
            other => other?,
        };
        if mode == CreateMode::Exclusive {
            return Err(EEXIST);
        }
        match self.stat(existing)?.kind {
            FileKind::Directory => Err(EISDIR),
            FileKind::Symlink if follow == FollowLast::NoFollow => Err(ELOOP),
            FileKind::Symlink => {
                let left = links_left.checked_sub(1).ok_or(ELOOP)?;
                let target = self.fs(existing.mount)?.read_link(existing.ino)?;
                self.create_within(parent.dir, &target, mode, follow, attrs, left)
            }
            _ => Ok(existing),
        }
    }

    /// unlink: removes a name that is not a directory's. EISDIR for a directory
    /// (and `.`, `..`, `/`); with a trailing slash ENOTDIR for a non-directory.
    pub fn unlink(&self, cwd: Node, path: &[u8]) -> Result<(), Errno> {
        let parent = self.resolve_parent(cwd, path)?;
        let Last::Name(name) = parent.last else {
            return Err(EISDIR);
        };
        if parent.trailing_slash {
            let node = self.child(parent.dir, &name)?;
            return match self.stat(node)?.kind {
                FileKind::Directory => Err(EISDIR),
                _ => Err(ENOTDIR),
            };
        }
        let fs = self.fs(parent.dir.mount)?;
        fs.remove(parent.dir.ino, name.as_bytes(), RemoveKind::NonDirectory)
    }

    /// rmdir: removes an empty directory. EINVAL for `.`, ENOTEMPTY for `..`,
    /// EBUSY for `/` and mount points, ENOTDIR for a non-directory.
    pub fn rmdir(&self, cwd: Node, path: &[u8]) -> Result<(), Errno> {
        let parent = self.resolve_parent(cwd, path)?;
        let name = match parent.last {
            Last::Name(name) => name,
            Last::Dot => return Err(EINVAL),
            Last::DotDot => return Err(ENOTEMPTY),
            Last::Root => return Err(EBUSY),
        };
        let node = self.child(parent.dir, &name)?;
        if node.mount != parent.dir.mount {
            return Err(EBUSY);
        }
        let fs = self.fs(parent.dir.mount)?;
        fs.remove(parent.dir.ino, name.as_bytes(), RemoveKind::Directory)
    }

    /// rename / renameat2. EXDEV across mounts (checked first, as Linux does),
    /// EBUSY for `.`, `..`, `/` and mount points, ENOTDIR when a non-directory is
    /// named with a trailing slash; the rest (EEXIST, EISDIR, ENOTDIR, ENOTEMPTY,
    /// EINVAL for a directory moved below itself) is the file system's.
    pub fn rename(
        &self,
        old_cwd: Node,
        old: &[u8],
        new_cwd: Node,
        new: &[u8],
        mode: RenameMode,
    ) -> Result<(), Errno> {
        let from = self.resolve_parent(old_cwd, old)?;
        let to = self.resolve_parent(new_cwd, new)?;
        if from.dir.mount != to.dir.mount {
            return Err(EXDEV);
        }
        let Last::Name(from_name) = from.last else {
            return Err(EBUSY);
        };
        let Last::Name(to_name) = to.last else {
            return Err(if mode == RenameMode::NoReplace {
                EEXIST
            } else {
                EBUSY
            });
        };
        let source = self.child(from.dir, &from_name)?;
        let target = match self.child(to.dir, &to_name) {
            Ok(node) => Some(node),
            Err(ENOENT) if mode != RenameMode::Exchange => None,
            Err(e) => return Err(e),
        };
        // Linux's order: EEXIST, then trailing slashes on non-directories.
        if mode == RenameMode::NoReplace && target.is_some() {
            return Err(EEXIST);
        }
        let is_dir = |n: Node| Ok::<_, Errno>(self.stat(n)?.kind == FileKind::Directory);
        if let (RenameMode::Exchange, Some(t)) = (mode, target) {
            if to.trailing_slash && !is_dir(t)? {
                return Err(ENOTDIR);
            }
        }
        let slash_on_source = match mode {
            RenameMode::Exchange => from.trailing_slash,
            _ => from.trailing_slash || to.trailing_slash,
        };
        if slash_on_source && !is_dir(source)? {
            return Err(ENOTDIR);
        }
        if source.mount != from.dir.mount || target.is_some_and(|t| t.mount != to.dir.mount) {
            return Err(EBUSY);
        }
        let fs = self.fs(from.dir.mount)?;
        fs.rename(
            from.dir.ino,
            from_name.as_bytes(),
            to.dir.ino,
            to_name.as_bytes(),
            mode,
        )
    }

    /// link / linkat: a new name `new` for the non-directory at `old`. EPERM for a
    /// directory, EXDEV across mounts, EEXIST if `new` exists.
    pub fn link(
        &self,
        old_cwd: Node,
        old: &[u8],
        new_cwd: Node,
        new: &[u8],
        follow: FollowLast,
    ) -> Result<(), Errno> {
        let source = self.resolve(old_cwd, old, follow)?;
        let to = self.resolve_parent(new_cwd, new)?;
        let name = self.name_to_create(&to)?;
        if source.mount != to.dir.mount {
            return Err(EXDEV);
        }
        self.fs(to.dir.mount)?
            .link(to.dir.ino, name.as_bytes(), source.ino)
    }

    /// readlink: the target of the symlink at `path` (EINVAL if it is none).
    pub fn readlink(&self, cwd: Node, path: &[u8]) -> Result<Vec<u8>, Errno> {
        let node = self.resolve(cwd, path, FollowLast::NoFollow)?;
        self.fs(node.mount)?.read_link(node.ino)
    }

    /// truncate: sets the size of the file at `path` (EISDIR for a directory,
    /// EINVAL for other non-regular files).
    pub fn truncate(&self, cwd: Node, path: &[u8], size: u64) -> Result<(), Errno> {
        let node = self.resolve(cwd, path, FollowLast::Follow)?;
        self.fs(node.mount)?.truncate(node.ino, size)
    }

    /// chmod, chown, utimensat on `node`.
    pub fn set_attr(&self, node: Node, change: &SetAttr) -> Result<(), Errno> {
        self.fs(node.mount)?.set_attr(node.ino, change)
    }

    /// statfs of the file system `node` is on.
    pub fn statfs(&self, node: Node) -> Result<StatFs, Errno> {
        Ok(self.fs(node.mount)?.statfs())
    }

    /// The directory entry at or after `cookie` in directory `dir`.
    pub fn read_dir(&self, dir: Node, cookie: u64) -> Result<Option<DirEntry>, Errno> {
        self.fs(dir.mount)?.read_dir(dir.ino, cookie)
    }

    /// An open reference to `node`: it stays readable and writable after its last
    /// name is removed, until the reference drops.
    pub fn open(&self, node: Node) -> Result<OpenNode, Errno> {
        let fs = self.fs(node.mount)?;
        let stat = fs.stat(node.ino)?;
        fs.retain(node.ino)?;
        Ok(OpenNode {
            fs,
            node,
            kind: stat.kind,
            rdev: stat.rdev,
            entropy: self.entropy,
        })
    }
}

/// The name under which directory `parent` holds inode `ino` (ENOENT if none:
/// `ino` was removed).
fn name_in(fs: &dyn FileSystem, parent: Ino, ino: Ino) -> Result<Vec<u8>, Errno> {
    let mut cookie = 0;
    while let Some(e) = fs.read_dir(parent, cookie)? {
        if e.ino == ino && e.name != b"." && e.name != b".." {
            return Ok(e.name);
        }
        cookie = e.next;
    }
    Err(ENOENT)
}

impl core::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Vfs({} mounts)",
            self.mounts.lock().iter().flatten().count()
        )
    }
}

/// An open inode (what an open file description will point to). Dropping it gives
/// up the reference; the last one frees an unlinked inode.
pub struct OpenNode {
    fs: Arc<dyn FileSystem>,
    node: Node,
    kind: FileKind,
    rdev: DeviceId,
    entropy: Option<Entropy>,
}

impl core::fmt::Debug for OpenNode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OpenNode({:?}, {:?})", self.node, self.kind)
    }
}

impl OpenNode {
    /// Where it is.
    pub fn node(&self) -> Node {
        self.node
    }

    /// What it is.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// Its attributes now.
    pub fn stat(&self) -> Result<Stat, Errno> {
        self.fs.stat(self.node.ino)
    }

    /// Appends up to `len` bytes of a regular file from `offset` to `out` (see
    /// [`FileSystem::read_append`]); anything else reads as [`read`](Self::read)
    /// would, into a zero-filled tail of `out`.
    pub fn read_append(&self, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<usize, Errno> {
        if self.kind == FileKind::Regular {
            return self.fs.read_append(self.node.ino, offset, len, out);
        }
        reserve(out, len)?;
        let at = out.len();
        out.resize(at + len, 0);
        let n = self.read(offset, &mut out[at..]);
        out.truncate(at + *n.as_ref().unwrap_or(&0));
        n
    }

    /// pread: a regular file's bytes from `offset`, a device's data. EISDIR for a
    /// directory; ENXIO for a FIFO (its data goes through the pipe layer) or an
    /// unknown device; EINVAL for a symlink.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.kind {
            FileKind::Regular => self.fs.read(self.node.ino, offset, buf),
            FileKind::Directory => Err(EISDIR),
            FileKind::CharDevice => self.device()?.read(buf, self.entropy),
            FileKind::Fifo => Err(ENXIO),
            FileKind::Symlink => Err(EINVAL),
        }
    }

    /// pwrite: like [`read`](Self::read); a write beyond the end leaves a hole
    /// that reads as zeros.
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        match self.kind {
            FileKind::Regular => self.fs.write(self.node.ino, offset, buf),
            FileKind::Directory => Err(EISDIR),
            FileKind::CharDevice => self.device()?.write(buf),
            FileKind::Fifo => Err(ENXIO),
            FileKind::Symlink => Err(EINVAL),
        }
    }

    /// Counts this open as one that may write (see
    /// [`FileSystem::start_writing`]); the owner calls [`stop_writing`](Self::stop_writing).
    pub fn start_writing(&self) {
        self.fs.start_writing(self.node.ino);
    }

    /// Ends [`start_writing`](Self::start_writing).
    pub fn stop_writing(&self) {
        self.fs.stop_writing(self.node.ino);
    }

    /// Whether an open file description may write the inode (exec: ETXTBSY).
    pub fn is_being_written(&self) -> bool {
        self.fs.writers(self.node.ino) > 0
    }

    /// The pipe of this FIFO (see [`FileSystem::fifo_pipe`]).
    pub fn fifo_pipe(
        &self,
        make: &mut dyn FnMut() -> super::SharedPipe,
    ) -> Result<super::SharedPipe, Errno> {
        self.fs.fifo_pipe(self.node.ino, make)
    }

    /// ftruncate (EINVAL for anything but a regular file).
    pub fn truncate(&self, size: u64) -> Result<(), Errno> {
        match self.kind {
            FileKind::Regular => self.fs.truncate(self.node.ino, size),
            _ => Err(EINVAL),
        }
    }

    /// getdents: the entry at or after `cookie` (ENOTDIR for a non-directory).
    pub fn read_dir(&self, cookie: u64) -> Result<Option<DirEntry>, Errno> {
        self.fs.read_dir(self.node.ino, cookie)
    }

    /// fchmod, fchown, futimens.
    pub fn set_attr(&self, change: &SetAttr) -> Result<(), Errno> {
        self.fs.set_attr(self.node.ino, change)
    }

    fn device(&self) -> Result<CharDevice, Errno> {
        CharDevice::from_id(self.rdev).ok_or(ENXIO)
    }

    /// The record-lock table of the inode (see [`FileSystem::lock_table`]).
    pub fn lock_table(&self, lookup: TableLookup) -> Option<Arc<LockTable>> {
        self.fs.lock_table(self.node.ino, lookup)
    }

    /// Who holds the OFD locks taken through this open inode: the open file
    /// description it belongs to, known by this reference's address (a description
    /// holds exactly one, and both sit in an `Arc` while locks are taken, so it does
    /// not move). Dropping it releases them.
    pub fn description_owner(&self) -> Owner {
        Owner::Description(self as *const OpenNode as usize)
    }

    /// The character device it is, if it is one the kernel knows.
    pub fn char_device(&self) -> Option<CharDevice> {
        match self.kind {
            FileKind::CharDevice => CharDevice::from_id(self.rdev),
            _ => None,
        }
    }

    /// Whether mmap can map it: a regular file of a file system that maps files.
    pub fn mappable(&self) -> bool {
        self.kind == FileKind::Regular && self.fs.maps_files()
    }

    /// mmap: page `index`'s frame, pinned ([`FileSystem::pin_page`]).
    pub fn pin_page(&self, index: u64) -> Result<PhysFrame, Errno> {
        match self.mappable() {
            true => self.fs.pin_page(self.node.ino, index),
            false => Err(ENODEV),
        }
    }

    /// One more pin of a frame [`pin_page`](Self::pin_page) gave.
    pub fn repin_page(&self, frame: PhysFrame) -> Result<(), Errno> {
        self.fs.repin_page(self.node.ino, frame)
    }

    /// Drops a pin of a frame [`pin_page`](Self::pin_page) gave.
    pub fn unpin_page(&self, frame: PhysFrame) {
        self.fs.unpin_page(self.node.ino, frame)
    }
}

impl Drop for OpenNode {
    fn drop(&mut self) {
        // The last reference to the open file description is gone: its OFD locks go.
        if let Some(table) = self.lock_table(TableLookup::Existing) {
            table.release(self.description_owner());
        }
        self.fs.release(self.node.ino);
    }
}

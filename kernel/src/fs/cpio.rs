//! Filling a file system tree from a cpio newc archive (the initramfs), so that
//! everything the boot image holds is writable afterwards.
//!
//! ## What it does
//! Each entry of [`Initrd`] becomes a directory, regular file, symlink or FIFO
//! under the given root, with the archive's permission bits, owner and mtime;
//! missing parent directories are made (0755) on the way. A later entry of the same
//! name replaces an earlier file or symlink and updates a directory's attributes.
//!
//! Hard links (newc: regular-file entries sharing an inode number, the data with
//! the last of them) become links to the first entry's file.
//!
//! Not made: device nodes (devfs supplies `/dev`); they are counted as skipped.
//! An entry whose path the VFS refuses (too long, below a non-directory) is
//! skipped too; running out of space or memory stops the fill with that errno.
//!
//! ## Locks
//! None: it calls the [`Vfs`] like any other user.
#![deny(unsafe_code)]

use super::errno::{EEXIST, ENOMEM, ENOSPC};
use super::vfs::{CreateMode, FollowLast, SpecialNode, Vfs};
use super::{copy_bytes, reserve, Errno, FileKind, Node, NodeAttrs, SetAttr, TimeChange};
use crate::initrd::{Entry, Initrd};
use alloc::vec::Vec;

/// What a fill made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FillReport {
    /// Regular files written.
    pub files: u64,
    /// Directories made or updated.
    pub dirs: u64,
    /// Symlinks made.
    pub symlinks: u64,
    /// FIFOs made.
    pub fifos: u64,
    /// Entries left out (device nodes, hard links, refused paths).
    pub skipped: u64,
}

/// Archive inode numbers of hard-linked files seen so far, with the path of the
/// first entry of each.
type SeenLinks = Vec<(u32, Vec<u8>)>;

/// Copies every entry of `archive` into the tree below directory `root`.
pub fn fill(vfs: &Vfs, root: Node, archive: &Initrd<'_>) -> Result<FillReport, Errno> {
    let mut report = FillReport::default();
    let mut links = SeenLinks::new();
    for entry in archive.entries() {
        if entry.name.is_empty() || entry.name == b"." {
            continue;
        }
        match add_entry(vfs, root, &entry, &mut links) {
            Ok(Some(kind)) => match kind {
                FileKind::Regular => report.files += 1,
                FileKind::Directory => report.dirs += 1,
                FileKind::Symlink => report.symlinks += 1,
                FileKind::Fifo => report.fifos += 1,
                FileKind::CharDevice => report.skipped += 1,
            },
            Ok(None) => report.skipped += 1,
            Err(e @ (ENOSPC | ENOMEM)) => return Err(e),
            Err(_) => report.skipped += 1,
        }
    }
    Ok(report)
}

/// Makes one entry; `None` if it is of a kind not made here.
fn add_entry(
    vfs: &Vfs,
    root: Node,
    entry: &Entry<'_>,
    links: &mut SeenLinks,
) -> Result<Option<FileKind>, Errno> {
    let Some(kind) = FileKind::from_mode(entry.mode) else {
        return Ok(None);
    };
    make_parents(vfs, root, entry.name)?;
    let attrs = NodeAttrs {
        perm: entry.mode & 0o7777,
        uid: entry.uid,
        gid: entry.gid,
    };
    let node = match kind {
        FileKind::Directory => match vfs.mkdir(root, entry.name, attrs) {
            Err(EEXIST) => vfs.resolve(root, entry.name, FollowLast::NoFollow)?,
            other => other?,
        },
        FileKind::Regular if entry.nlink > 1 => link_or_write(vfs, root, entry, attrs, links)?,
        FileKind::Regular => write_file(vfs, root, entry, attrs)?,
        FileKind::Symlink => {
            let _ = vfs.unlink(root, entry.name);
            vfs.symlink(entry.data, root, entry.name)?
        }
        FileKind::Fifo => vfs.mknod(root, entry.name, SpecialNode::Fifo, attrs)?,
        FileKind::CharDevice => return Ok(None),
    };
    if kind != FileKind::Symlink {
        let change = SetAttr {
            perm: Some(attrs.perm),
            uid: Some(attrs.uid),
            gid: Some(attrs.gid),
            atime: None,
            mtime: Some(TimeChange::At(entry.mtime as i64 * 1_000_000_000)),
        };
        vfs.set_attr(node, &change)?;
    }
    Ok(Some(kind))
}

/// A regular file at the entry's path holding exactly its data.
fn write_file(vfs: &Vfs, root: Node, entry: &Entry<'_>, attrs: NodeAttrs) -> Result<Node, Errno> {
    let node = vfs.create(
        root,
        entry.name,
        CreateMode::IfMissing,
        FollowLast::NoFollow,
        attrs,
    )?;
    let file = vfs.open(node)?;
    file.truncate(0)?;
    let mut done = 0;
    while done < entry.data.len() {
        match file.write(done as u64, &entry.data[done..])? {
            0 => return Err(ENOSPC),
            n => done += n,
        }
    }
    Ok(node)
}

/// A hard-linked file: a link to the first entry of its inode, with this entry's
/// data if it has some; or, for the first entry, the file itself.
fn link_or_write(
    vfs: &Vfs,
    root: Node,
    entry: &Entry<'_>,
    attrs: NodeAttrs,
    links: &mut SeenLinks,
) -> Result<Node, Errno> {
    let Some((_, first)) = links.iter().find(|(ino, _)| *ino == entry.ino) else {
        let node = write_file(vfs, root, entry, attrs)?;
        reserve(links, 1)?;
        links.push((entry.ino, copy_bytes(entry.name)?));
        return Ok(node);
    };
    let _ = vfs.unlink(root, entry.name);
    vfs.link(root, first, root, entry.name, FollowLast::NoFollow)?;
    if entry.data.is_empty() {
        return vfs.resolve(root, entry.name, FollowLast::NoFollow);
    }
    write_file(vfs, root, entry, attrs)
}

/// Makes each missing directory on the way to `path`'s last component.
fn make_parents(vfs: &Vfs, root: Node, path: &[u8]) -> Result<(), Errno> {
    let slashes = path.iter().enumerate().filter(|(_, &b)| b == b'/');
    for (i, _) in slashes {
        match vfs.mkdir(root, &path[..i], NodeAttrs::root(0o755)) {
            Ok(_) | Err(EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

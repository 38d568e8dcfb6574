//! The calls that change an inode's attributes or size: chmod, fchmod, fchmodat,
//! chown, fchown, lchown, fchownat, utimensat, truncate, ftruncate, and the sync
//! family (fsync, fdatasync, sync, syncfs: tmpfs has nothing to write back).
//!
//! The caller is root, so every owner change is allowed; `-1` leaves an id alone.
//! Fds that are not inodes of the tree (pipes, the consoles) answer as Linux's
//! anonymous inodes would for the calls programs make on them: EINVAL for
//! ftruncate, success for fsync on a pipe is EINVAL on Linux too.

use super::fd::{self, File};
use super::path::{path_at, EmptyPath, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
use super::proc_view::tree_scope;
use super::user_mem::UserSlice;
use super::{Errno, Sys, EBADF, EINVAL, EISDIR};
use crate::fs::file::OpenFile;
use crate::fs::vfs::FollowLast;
use crate::fs::{FileKind, Node, SetAttr, Stat, TimeChange};
use crate::memory::frame_allocator::FrameSource;
use alloc::sync::Arc;

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// The inode `dirfd`/`path` names (following a last symlink unless `flags` has
/// AT_SYMLINK_NOFOLLOW; `path` empty with AT_EMPTY_PATH: the fd itself).
fn node_at<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    flags: usize,
) -> Result<(Arc<crate::fs::vfs::Vfs>, Node), Errno> {
    let empty = match flags & AT_EMPTY_PATH != 0 {
        true => EmptyPath::Allowed,
        false => EmptyPath::Refused,
    };
    let arg = path_at(sys, dirfd, path, empty)?;
    if arg.is_empty() {
        // The fd itself, which must be an inode of the tree (its attributes are
        // the ones changed).
        let node = match dirfd as i32 {
            fd::AT_FDCWD => arg.start,
            _ => super::path::node_of_fd(sys, dirfd)?,
        };
        return Ok((arg.tree, node));
    }
    let _scope = tree_scope(sys);
    let follow = match flags & AT_SYMLINK_NOFOLLOW != 0 {
        true => FollowLast::NoFollow,
        false => FollowLast::Follow,
    };
    let node = arg.tree.resolve(arg.start, &arg.path, follow)?;
    Ok((arg.tree, node))
}

/// The file of the tree behind `fd` (EBADF if none; EINVAL for a pipe or console,
/// whose attributes cannot change here).
fn file_of<A: FrameSource + Clone>(sys: &Sys<'_, A>, fd: usize) -> Result<Arc<OpenFile>, Errno> {
    match fd::file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Node(f) => Ok(f),
        _ => Err(EINVAL),
    }
}

/// fchmodat(dirfd, path, mode, flags) (chmod: AT_FDCWD, flags 0).
pub fn sys_fchmodat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    mode: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if flags != 0 {
        return Err(EINVAL);
    }
    let (tree, node) = node_at(sys, dirfd, path, 0)?;
    let _scope = tree_scope(sys);
    let change = SetAttr {
        perm: Some(mode as u32 & 0o7777),
        ..SetAttr::default()
    };
    tree.set_attr(node, &change).map(|_| 0)
}

/// fchmod(fd, mode).
pub fn sys_fchmod<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    mode: usize,
) -> Result<usize, Errno> {
    let change = SetAttr {
        perm: Some(mode as u32 & 0o7777),
        ..SetAttr::default()
    };
    set_fd_attr(sys, fd, |_| Ok(change))
}

/// fchmod and fchown of `fd`: the change `change` makes from the inode's
/// attributes. A pipe or the console has an inode on Linux, which these calls
/// change; here it keeps no attributes, so the call succeeds and changes nothing.
fn set_fd_attr<A: FrameSource + Clone>(
    sys: &Sys<'_, A>,
    fd: usize,
    change: impl FnOnce(&crate::fs::Stat) -> Result<SetAttr, Errno>,
) -> Result<usize, Errno> {
    let file = fd::file(&sys.files()?, fd).ok_or(EBADF)?;
    let node = match &file {
        File::Node(f) => f.node(),
        File::Fifo(f) => f.file.node(),
        _ => return Ok(0),
    };
    let change = change(&node.stat()?)?;
    node.set_attr(&change).map(|_| 0)
}

/// An owner change of an inode with attributes `st`: `-1` (as a 32-bit id)
/// leaves the id alone. As Linux's chown_common, a non-directory loses its
/// setuid bit, and its setgid bit if it is group-executable.
fn owners(st: &Stat, uid: usize, gid: usize) -> SetAttr {
    let id = |v: usize| (v as u32 != u32::MAX).then_some(v as u32);
    let mut perm = st.perm;
    if st.kind != FileKind::Directory {
        perm &= !0o4000;
        if perm & 0o010 != 0 {
            perm &= !0o2000;
        }
    }
    SetAttr {
        uid: id(uid),
        gid: id(gid),
        perm: (perm != st.perm).then_some(perm),
        ..SetAttr::default()
    }
}

/// fchownat(dirfd, path, uid, gid, flags) (chown, lchown with their flags).
pub fn sys_fchownat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    uid: usize,
    gid: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let (tree, node) = node_at(sys, dirfd, path, flags)?;
    let _scope = tree_scope(sys);
    let change = owners(&tree.stat(node)?, uid, gid);
    tree.set_attr(node, &change).map(|_| 0)
}

/// fchown(fd, uid, gid).
pub fn sys_fchown<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    uid: usize,
    gid: usize,
) -> Result<usize, Errno> {
    set_fd_attr(sys, fd, |st| Ok(owners(st, uid, gid)))
}

/// One `struct timespec` of utimensat as a change (`None`: UTIME_OMIT).
fn time_change(sec: i64, nsec: i64) -> Result<Option<TimeChange>, Errno> {
    match nsec {
        UTIME_NOW => Ok(Some(TimeChange::Now)),
        UTIME_OMIT => Ok(None),
        0..=999_999_999 => Ok(Some(TimeChange::At(
            sec.saturating_mul(1_000_000_000).saturating_add(nsec),
        ))),
        _ => Err(EINVAL),
    }
}

/// utimensat(dirfd, path, times, flags): `times` NULL sets both to now; a NULL
/// `path` is the fd itself (futimens).
pub fn sys_utimensat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    times: usize,
    flags: usize,
) -> Result<usize, Errno> {
    // The times are read first (EFAULT before any EINVAL), as Linux reads them.
    let (atime, mtime) = match times {
        0 => (Some(TimeChange::Now), Some(TimeChange::Now)),
        t => {
            let mut raw = [0u8; 32];
            UserSlice::new(t, 32).read(&mut *sys.space()?, &mut raw)?;
            let word =
                |i: usize| i64::from_le_bytes(raw[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
            (
                time_change(word(0), word(1))?,
                time_change(word(2), word(3))?,
            )
        }
    };
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let change = SetAttr {
        atime,
        mtime,
        ..SetAttr::default()
    };
    if path == 0 {
        let file = file_of(sys, dirfd).map_err(|_| EBADF)?;
        return file.node().set_attr(&change).map(|_| 0);
    }
    let (tree, node) = node_at(sys, dirfd, path, flags)?;
    let _scope = tree_scope(sys);
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    tree.set_attr(node, &change).map(|_| 0)
}

/// truncate(path, length): EISDIR for a directory, EINVAL for a negative length
/// or anything but a regular file.
pub fn sys_truncate<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    path: usize,
    length: usize,
) -> Result<usize, Errno> {
    if (length as i64) < 0 {
        return Err(EINVAL);
    }
    let (tree, node) = node_at(sys, fd::AT_FDCWD as usize, path, 0)?;
    let _scope = tree_scope(sys);
    match tree.stat(node)?.kind {
        FileKind::Directory => Err(EISDIR),
        FileKind::Regular => tree.open(node)?.truncate(length as u64).map(|_| 0),
        _ => Err(EINVAL),
    }
}

/// ftruncate(fd, length): the file must be open for writing (EINVAL otherwise,
/// as Linux answers; EBADF for a closed fd).
pub fn sys_ftruncate<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    length: usize,
) -> Result<usize, Errno> {
    if (length as i64) < 0 {
        return Err(EINVAL); // before the fd, as Linux checks
    }
    let file = file_of(sys, fd)?;
    if !file.access().writes() || file.kind() != FileKind::Regular {
        return Err(EINVAL);
    }
    file.node().truncate(length as u64).map(|_| 0)
}

/// fsync(fd) and fdatasync(fd): nothing to write back; EINVAL for a pipe, the
/// console or a device (which have no fsync on Linux), EBADF for a closed fd.
pub fn sys_fsync<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, fd: usize) -> Result<usize, Errno> {
    match file_of(sys, fd)?.kind() {
        FileKind::CharDevice => Err(EINVAL),
        _ => Ok(0),
    }
}

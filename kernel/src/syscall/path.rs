//! Where a path argument starts: the caller's tree and working directory, or the
//! directory an `*at` call's fd names, and the path bytes read from user memory.
//!
//! Linux's order of checks is kept: the path is read first (EFAULT, ENAMETOOLONG
//! from [`PATH_MAX`] bytes on), an empty path is ENOENT (unless the call allows
//! `AT_EMPTY_PATH`), then a relative path's directory fd must be open (EBADF) and a
//! directory (ENOTDIR); an absolute path ignores the fd.

use super::fd::{self, File, AT_FDCWD, PATH_MAX};
use super::user_mem::read_cstr;
use super::{Errno, Sys, EBADF, ENAMETOOLONG, ENOENT, ENOTDIR};
use crate::fs::vfs::Vfs;
use crate::fs::{FileKind, Node};
use crate::memory::frame_allocator::FrameSource;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// `AT_EMPTY_PATH`: an empty path names the fd itself.
pub const AT_EMPTY_PATH: usize = 0x1000;
/// `AT_SYMLINK_NOFOLLOW`: do not follow a symlink in the last component.
pub const AT_SYMLINK_NOFOLLOW: usize = 0x100;
/// `AT_SYMLINK_FOLLOW` (linkat): follow it.
pub const AT_SYMLINK_FOLLOW: usize = 0x400;
/// `AT_REMOVEDIR` (unlinkat): remove a directory.
pub const AT_REMOVEDIR: usize = 0x200;

/// Whether an empty path is allowed (`AT_EMPTY_PATH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyPath {
    /// It is ENOENT.
    Refused,
    /// It names the directory fd's file itself.
    Allowed,
}

/// A path argument, ready to walk: the tree, where a relative path starts, and
/// the bytes.
pub struct PathArg {
    /// The caller's tree.
    pub tree: Arc<Vfs>,
    /// The directory a relative path starts from.
    pub start: Node,
    /// The path (empty only with [`EmptyPath::Allowed`]: then `start` is the fd's
    /// node, whatever it is).
    pub path: Vec<u8>,
}

impl PathArg {
    /// Whether the path is empty (`AT_EMPTY_PATH` use).
    pub fn is_empty(&self) -> bool {
        self.path.is_empty()
    }
}

/// Reads the NUL-terminated path at `addr` (EFAULT; ENAMETOOLONG from PATH_MAX
/// bytes on, the NUL included, as Linux).
pub fn read_path<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
) -> Result<Vec<u8>, Errno> {
    read_cstr(&mut *sys.space()?, addr, PATH_MAX - 1, ENAMETOOLONG)
}

/// The path at `addr`, relative to `dirfd` (AT_FDCWD: the working directory). An
/// empty path (with [`EmptyPath::Allowed`]) names `dirfd`'s own inode.
pub fn path_at<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    addr: usize,
    empty: EmptyPath,
) -> Result<PathArg, Errno> {
    let path = read_path(sys, addr)?;
    if path.is_empty() && empty == EmptyPath::Refused {
        return Err(ENOENT);
    }
    let (tree, cwd) = {
        let fs = sys.process()?.fs.lock();
        (fs.tree().clone(), fs.cwd())
    };
    let start = match (dirfd as i32, path.first()) {
        (_, Some(b'/')) => cwd,
        (AT_FDCWD, _) => cwd,
        // AT_EMPTY_PATH on an fd that is no inode of the tree (a pipe): the
        // caller answers for the fd itself (fstatat), `start` is not used.
        (_, None) => match node_of_fd(sys, dirfd) {
            Err(ENOTDIR) => cwd,
            other => other?,
        },
        _ => dir_of_fd(sys, dirfd)?,
    };
    Ok(PathArg { tree, start, path })
}

/// The path at `addr`, relative to the working directory.
pub fn path_arg<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
) -> Result<PathArg, Errno> {
    path_at(sys, AT_FDCWD as usize, addr, EmptyPath::Refused)
}

/// The inode behind `fd` (EBADF if it is not open or not a file of the tree).
pub fn node_of_fd<A: FrameSource + Clone>(sys: &Sys<'_, A>, fd: usize) -> Result<Node, Errno> {
    match fd::file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Node(f) => Ok(f.node().node()),
        _ => Err(ENOTDIR),
    }
}

/// The directory behind `fd`: EBADF if it is not open, ENOTDIR if it is not a
/// directory.
pub fn dir_of_fd<A: FrameSource + Clone>(sys: &Sys<'_, A>, fd: usize) -> Result<Node, Errno> {
    match fd::file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Node(f) if f.kind() == FileKind::Directory => Ok(f.node().node()),
        _ => Err(ENOTDIR),
    }
}

/// The caller's umask.
pub fn umask<A: FrameSource + Clone>(sys: &Sys<'_, A>) -> Result<u32, Errno> {
    Ok(sys.process()?.fs.lock().umask)
}

//! open, openat and creat: from a path to a new fd.
//!
//! The fd limit is checked first (EMFILE before any lookup, as Linux allocates the
//! fd first), then the path is walked ([`super::path`]); with `O_CREAT` a missing
//! last component is made with the mode less the umask. What the name turns out
//! to be decides the rest, in Linux's order: `O_NOFOLLOW` on a symlink is ELOOP,
//! `O_DIRECTORY` on anything else ENOTDIR, a directory opened for writing EISDIR,
//! `O_TRUNC` empties a regular file. `/dev/console` opens the console terminal, and
//! so does `/dev/tty` for a process whose session it controls (ENXIO for one
//! without a controlling terminal, as on Linux); every other inode becomes an
//! [`OpenFile`] (a FIFO a [`FifoFile`], which may wait for its partner). The caller is root: permission bits are not checked.

use super::fd::{self, FifoFile, File, O_CLOEXEC};
use super::path::{path_at, EmptyPath, PathArg};
use super::pipe::Pipe;
use super::proc_view::tree_scope;
use super::rlimit::fd_limit;
use super::{Errno, Sys, EINVAL, EISDIR, ELOOP, ENOTDIR, ENXIO, EOPNOTSUPP};
use crate::fs::devfs::CharDevice;
use crate::fs::file::{Access, OpenFile};
use crate::fs::vfs::{CreateMode, FollowLast};
use crate::fs::{FileKind, NodeAttrs};
use crate::memory::frame_allocator::FrameSource;
use alloc::sync::Arc;
use alloc::vec::Vec;

const O_ACCMODE: usize = 3;
const O_CREAT: usize = 0o100;
const O_EXCL: usize = 0o200;
const O_TRUNC: usize = 0o1000;
const O_APPEND: usize = 0o2000;
const O_NONBLOCK: usize = 0o4000;
const O_PATH: usize = 0o10_000_000;
/// `O_TMPFILE` without its `O_DIRECTORY` part.
const O_TMPFILE_BIT: usize = 0o20_000_000;
#[cfg(not(target_arch = "aarch64"))]
const O_DIRECTORY: usize = 0o200_000;
#[cfg(not(target_arch = "aarch64"))]
const O_NOFOLLOW: usize = 0o400_000;
#[cfg(target_arch = "aarch64")]
const O_DIRECTORY: usize = 0o40_000;
#[cfg(target_arch = "aarch64")]
const O_NOFOLLOW: usize = 0o100_000;

/// openat(dirfd, path, flags, mode): see the module documentation.
pub fn sys_openat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    flags: usize,
    mode: usize,
) -> Result<usize, Errno> {
    // O_PATH beats everything else: only O_DIRECTORY, O_NOFOLLOW and O_CLOEXEC
    // stay with it (Linux's build_open_how).
    let flags = match flags & O_PATH != 0 {
        true => flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
        false => flags,
    };
    // Linux's order: the flags (only a malformed O_TMPFILE is EINVAL), the path
    // (EFAULT), a free fd (EMFILE), then the lookup.
    let tmpfile = flags & O_TMPFILE_BIT != 0;
    let tmpfile_mask = O_TMPFILE_BIT | O_DIRECTORY | O_CREAT;
    let writes = matches!(flags & O_ACCMODE, 1 | 2);
    if tmpfile && (flags & tmpfile_mask != O_TMPFILE_BIT | O_DIRECTORY || !writes) {
        return Err(EINVAL);
    }
    let arg = path_at(sys, dirfd, path, EmptyPath::Refused)?;
    let files = sys.files()?;
    let limit = fd_limit(sys)?;
    fd::check_room(&files, limit)?;
    let access = match (flags & O_PATH != 0, flags & O_ACCMODE) {
        (true, _) => Access::Path,
        (false, 0) => Access::Read,
        (false, 1) => Access::Write,
        (false, 2) => Access::ReadWrite,
        // Linux's "neither read nor write" mode 3 is not offered here.
        _ => return Err(EINVAL),
    };
    if tmpfile {
        // The directory is looked up; unnamed files are not made here.
        let _scope = tree_scope(sys);
        let dir = arg.tree.resolve(arg.start, &arg.path, FollowLast::Follow)?;
        return match arg.tree.stat(dir)?.kind {
            FileKind::Directory => Err(EOPNOTSUPP),
            _ => Err(ENOTDIR),
        };
    }
    let umask = super::path::umask(sys)?;
    let sid = sys.process()?.job.sid.0;
    let ctty = match crate::tty::console().is_some_and(|c| c.lock().session() == sid) {
        true => Ctty::Console,
        false => Ctty::None,
    };
    let nonblock = flags & O_NONBLOCK != 0;
    // A FIFO open re-issued after waiting for its partner has its file already.
    let held = sys
        .table
        .thread_mut(sys.tid)
        .and_then(|t| t.call.held.take())
        .and_then(|h| h.downcast::<File>().ok());
    let file = match held {
        Some(file) => *file,
        None => {
            let _scope = tree_scope(sys);
            open_path(&arg, flags, access, mode as u32 & !umask, ctty)?
        }
    };
    if let File::Fifo(fifo) = &file {
        if !partner_ready(fifo, nonblock)? {
            let queue = fifo.pipe_queue();
            if let Some(t) = sys.table.thread_mut(sys.tid) {
                t.call.held = Some(alloc::boxed::Box::new(file));
            }
            sys.wait_on(&queue)?;
            return sys.block();
        }
    }
    fd::install(&files, file, flags & O_CLOEXEC != 0, nonblock, limit)
}

/// Whether a FIFO open may return: a reader once there is a writer, a writer once
/// there is a reader (a non-blocking reader at once; a non-blocking writer without
/// a reader fails with ENXIO), an `O_RDWR` open at once, as on Linux.
fn partner_ready(fifo: &FifoFile, nonblock: bool) -> Result<bool, Errno> {
    let (readers, writers) = fifo.ends();
    match (&fifo.read, &fifo.write) {
        (Some(_), Some(_)) => Ok(true),
        (Some(_), None) => Ok(nonblock || writers > 0),
        (None, Some(_)) if readers > 0 => Ok(true),
        (None, Some(_)) if nonblock => Err(ENXIO),
        _ => Ok(false),
    }
}

/// creat(path, mode): open with O_CREAT | O_WRONLY | O_TRUNC.
pub fn sys_creat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    path: usize,
    mode: usize,
) -> Result<usize, Errno> {
    let flags = O_CREAT | 1 | O_TRUNC;
    sys_openat(sys, fd::AT_FDCWD as usize, path, flags, mode)
}

/// The caller's controlling terminal, what `/dev/tty` opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctty {
    /// The console terminal controls the caller's session.
    Console,
    /// None: `/dev/tty` is ENXIO, as on Linux.
    None,
}

/// The file `arg` names, opened with `flags` and `access`; `perm` (the umask
/// applied) for a file O_CREAT makes; `ctty` for `/dev/tty`.
pub fn open_path(
    arg: &PathArg,
    flags: usize,
    access: Access,
    perm: u32,
    ctty: Ctty,
) -> Result<File, Errno> {
    let tree = &arg.tree;
    let follow = match flags & O_NOFOLLOW != 0 {
        true => FollowLast::NoFollow,
        false => FollowLast::Follow,
    };
    let node = match flags & O_CREAT != 0 && access != Access::Path {
        true => {
            let how = match flags & O_EXCL != 0 {
                true => CreateMode::Exclusive,
                false => CreateMode::IfMissing,
            };
            let attrs = NodeAttrs::root(perm & 0o7777);
            tree.create(arg.start, &arg.path, how, follow, attrs)?
        }
        false => tree.resolve(arg.start, &arg.path, follow)?,
    };
    let stat = tree.stat(node)?;
    match stat.kind {
        FileKind::Symlink if access != Access::Path => return Err(ELOOP),
        FileKind::Directory if access.writes() => return Err(EISDIR),
        FileKind::Directory if flags & O_TRUNC != 0 && access != Access::Path => {
            return Err(EISDIR)
        }
        kind if flags & O_DIRECTORY != 0 && kind != FileKind::Directory => return Err(ENOTDIR),
        _ => {}
    }
    if stat.kind == FileKind::CharDevice && access != Access::Path {
        let device = CharDevice::from_id(stat.rdev);
        match device {
            Some(CharDevice::Tty) if ctty == Ctty::None => return Err(ENXIO),
            Some(CharDevice::Tty | CharDevice::Console) if crate::tty::console().is_some() => {
                return Ok(File::Terminal(access))
            }
            _ => {}
        }
    }
    let open = tree.open(node)?;
    if stat.kind == FileKind::Fifo && access != Access::Path {
        let pipe = open
            .fifo_pipe(&mut || Pipe::new())?
            .downcast::<Pipe>()
            .map_err(|_| ENXIO)?;
        let status = (flags & O_NONBLOCK) as u32;
        let file = OpenFile::new(open, access, status, absolute(arg));
        return Ok(File::Fifo(Arc::new(FifoFile {
            read: access.reads().then(|| pipe.open_end(false)),
            write: access.writes().then(|| pipe.open_end(true)),
            file,
        })));
    }
    if stat.kind == FileKind::Regular && flags & O_TRUNC != 0 && access != Access::Path {
        open.truncate(0)?;
    }
    let path = absolute(arg);
    let status = (flags & (O_APPEND | O_NONBLOCK)) as u32;
    let file = match tree.fs(node.mount)?.generated() {
        true => OpenFile::generated(open, access, status, path),
        false => OpenFile::new(open, access, status, path),
    };
    Ok(File::Node(Arc::new(file)))
}

/// The absolute form of `arg`'s path (as `/proc/PID/fd` shows it); the path as
/// given if the start directory's own path cannot be found.
fn absolute(arg: &PathArg) -> Vec<u8> {
    if arg.path.first() == Some(&b'/') {
        return arg.path.clone();
    }
    match arg.tree.path_of(arg.start) {
        Ok(mut dir) => {
            if dir != b"/" {
                dir.push(b'/');
            }
            dir.extend_from_slice(&arg.path);
            dir
        }
        Err(_) => arg.path.clone(),
    }
}

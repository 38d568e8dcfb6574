//! The calls about directory entries: mkdir(at), mknod(at), unlink(at), rmdir,
//! rename(at, at2), link(at), symlink(at), readlink(at), getdents64, and the
//! working directory (chdir, fchdir, getcwd).
//!
//! Each reads its path arguments ([`super::path`]) and hands the work to the
//! caller's tree ([`crate::fs::vfs::Vfs`]), which gives Linux's errnos and changes
//! nothing when it fails. Modes of new inodes have the caller's umask applied.

use super::fd::{self, File};
use super::path::{self, path_arg, path_at, read_path, EmptyPath, AT_EMPTY_PATH};
use super::path::{AT_REMOVEDIR, AT_SYMLINK_FOLLOW};
use super::proc_view::tree_scope;
use super::user_mem::UserSlice;
use super::{Errno, Sys, EBADF, EINVAL, ENOENT, ENOTDIR, EPERM, ERANGE};
use crate::fs::vfs::{FollowLast, SpecialNode};
use crate::fs::{DeviceId, FileKind, NodeAttrs, RenameMode};
use crate::memory::frame_allocator::FrameSource;

const S_IFMT: usize = 0o170_000;
const S_IFIFO: usize = 0o010_000;
const S_IFCHR: usize = 0o020_000;
const S_IFREG: usize = 0o100_000;
const RENAME_NOREPLACE: usize = 1;
const RENAME_EXCHANGE: usize = 2;
const RENAME_WHITEOUT: usize = 4;

/// mkdirat(dirfd, path, mode).
pub fn sys_mkdirat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    mode: usize,
) -> Result<usize, Errno> {
    let arg = path_at(sys, dirfd, path, EmptyPath::Refused)?;
    let perm = mode as u32 & 0o7777 & !path::umask(sys)?;
    let _scope = tree_scope(sys);
    arg.tree
        .mkdir(arg.start, &arg.path, NodeAttrs::root(perm))
        .map(|_| 0)
}

/// mknodat(dirfd, path, mode, dev): a FIFO, a character device or an empty
/// regular file (type 0 is a regular file); EPERM for the other types, as Linux
/// refuses a directory and this kernel has no block devices or sockets to name.
pub fn sys_mknodat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    mode: usize,
    dev: usize,
) -> Result<usize, Errno> {
    // Linux's may_mknod, before the path is looked at: a directory is EPERM, an
    // unknown type EINVAL.
    match mode & S_IFMT {
        0o040_000 => return Err(EPERM),
        0 | S_IFREG | S_IFIFO | S_IFCHR | 0o060_000 | 0o140_000 => {}
        _ => return Err(EINVAL),
    }
    let arg = path_at(sys, dirfd, path, EmptyPath::Refused)?;
    let perm = mode as u32 & 0o7777 & !path::umask(sys)?;
    let attrs = NodeAttrs::root(perm);
    let _scope = tree_scope(sys);
    let node = match mode & S_IFMT {
        S_IFIFO => SpecialNode::Fifo,
        S_IFCHR => {
            let major = ((dev & 0xfff00) >> 8) as u32;
            let minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32;
            SpecialNode::CharDevice(DeviceId::new(major, minor))
        }
        0 | S_IFREG => {
            use crate::fs::vfs::CreateMode::Exclusive;
            let how = FollowLast::NoFollow;
            return arg
                .tree
                .create(arg.start, &arg.path, Exclusive, how, attrs)
                .map(|_| 0);
        }
        // Block devices and sockets are not made here.
        _ => return Err(EPERM),
    };
    arg.tree.mknod(arg.start, &arg.path, node, attrs).map(|_| 0)
}

/// unlinkat(dirfd, path, flags): a non-directory, or with AT_REMOVEDIR an empty
/// directory.
pub fn sys_unlinkat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(EINVAL);
    }
    let arg = path_at(sys, dirfd, path, EmptyPath::Refused)?;
    let _scope = tree_scope(sys);
    match flags & AT_REMOVEDIR != 0 {
        true => arg.tree.rmdir(arg.start, &arg.path),
        false => arg.tree.unlink(arg.start, &arg.path),
    }
    .map(|_| 0)
}

/// renameat2(olddirfd, old, newdirfd, new, flags): RENAME_NOREPLACE,
/// RENAME_EXCHANGE (not both); RENAME_WHITEOUT is EINVAL once the paths were
/// found (no overlay here).
pub fn sys_renameat2<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    olddirfd: usize,
    old: usize,
    newdirfd: usize,
    new: usize,
    flags: usize,
) -> Result<usize, Errno> {
    let known = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT;
    let exchange_and = RENAME_NOREPLACE | RENAME_WHITEOUT;
    if flags & !known != 0 || (flags & exchange_and != 0 && flags & RENAME_EXCHANGE != 0) {
        return Err(EINVAL);
    }
    let from = path_at(sys, olddirfd, old, EmptyPath::Refused)?;
    let to = path_at(sys, newdirfd, new, EmptyPath::Refused)?;
    // Flags Linux takes, but a whiteout needs an overlay this tree has not: its
    // paths are checked first, as Linux resolves them before the rename.
    let mode = match flags {
        0 => RenameMode::Replace,
        RENAME_NOREPLACE => RenameMode::NoReplace,
        RENAME_EXCHANGE => RenameMode::Exchange,
        _ => return Err(EINVAL),
    };
    let _scope = tree_scope(sys);
    from.tree
        .rename(from.start, &from.path, to.start, &to.path, mode)
        .map(|_| 0)
}

/// linkat(olddirfd, old, newdirfd, new, flags): a new name for a non-directory
/// (EPERM for a directory); the old path's symlink is linked itself unless
/// AT_SYMLINK_FOLLOW.
pub fn sys_linkat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    olddirfd: usize,
    old: usize,
    newdirfd: usize,
    new: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let follow = match flags & AT_SYMLINK_FOLLOW != 0 {
        true => FollowLast::Follow,
        false => FollowLast::NoFollow,
    };
    let from = path_at(sys, olddirfd, old, EmptyPath::Refused)?;
    let to = path_at(sys, newdirfd, new, EmptyPath::Refused)?;
    let _scope = tree_scope(sys);
    let source = from.tree.resolve(from.start, &from.path, follow)?;
    if from.tree.stat(source)?.kind == FileKind::Directory {
        return Err(EPERM);
    }
    from.tree
        .link(from.start, &from.path, to.start, &to.path, follow)
        .map(|_| 0)
}

/// symlinkat(target, newdirfd, linkpath): the target is stored as given (it may
/// dangle); an empty target is ENOENT.
pub fn sys_symlinkat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    target: usize,
    newdirfd: usize,
    linkpath: usize,
) -> Result<usize, Errno> {
    let target = read_path(sys, target)?;
    if target.is_empty() {
        return Err(ENOENT);
    }
    let at = path_at(sys, newdirfd, linkpath, EmptyPath::Refused)?;
    let _scope = tree_scope(sys);
    at.tree.symlink(&target, at.start, &at.path).map(|_| 0)
}

/// readlinkat(dirfd, path, buf, size): the target, cut to `size` bytes, without
/// a NUL; EINVAL for `size` 0 or something not a symlink.
pub fn sys_readlinkat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    buf: usize,
    size: usize,
) -> Result<usize, Errno> {
    if (size as isize) <= 0 {
        return Err(EINVAL);
    }
    // An empty path names the fd itself (Linux's LOOKUP_EMPTY): EBADF for a
    // closed one, else ENOENT (it is no symlink opened with O_PATH here).
    let arg = path_at(sys, dirfd, path, EmptyPath::Allowed)?;
    if arg.path.is_empty() {
        return Err(ENOENT);
    }
    let target = {
        let _scope = tree_scope(sys);
        arg.tree.readlink(arg.start, &arg.path)?
    };
    let n = target.len().min(size);
    UserSlice::new(buf, n).write(&mut *sys.space()?, &target[..n])?;
    Ok(n)
}

/// getdents64(fd, buf, len): as many `struct linux_dirent64` records as fit, from
/// the directory's offset on; 0 at the end; EINVAL if not even the next record
/// fits; ENOTDIR for anything but a directory.
pub fn sys_getdents64<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
    len: usize,
) -> Result<usize, Errno> {
    let file = match fd::file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Node(f) if f.kind() == FileKind::Directory => f,
        _ => return Err(ENOTDIR),
    };
    let len = len.min(i32::MAX as usize);
    {
        let _scope = tree_scope(sys);
        file.prepare()?;
    }
    let mut space = sys.space()?;
    let mut used = 0;
    let mut fault = false;
    let mut too_small = false;
    file.read_dir(|entry| {
        let reclen = (19 + entry.name.len() + 1).next_multiple_of(8);
        if used + reclen > len {
            too_small = used == 0;
            return false;
        }
        let mut rec = [0u8; 19 + 256 + 8];
        rec[0..8].copy_from_slice(&entry.ino.to_le_bytes());
        rec[8..16].copy_from_slice(&entry.next.to_le_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
        rec[18] = entry.kind.dirent_type();
        rec[19..19 + entry.name.len()].copy_from_slice(&entry.name);
        if UserSlice::new(buf + used, reclen)
            .write(&mut space, &rec[..reclen])
            .is_err()
        {
            fault = true;
            return false;
        }
        used += reclen;
        true
    })?;
    match (used, fault, too_small) {
        (0, true, _) => Err(super::EFAULT),
        (0, _, true) => Err(EINVAL),
        _ => Ok(used),
    }
}

/// chdir(path): the directory becomes the working directory (ENOTDIR if not
/// one).
pub fn sys_chdir<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    path: usize,
) -> Result<usize, Errno> {
    let arg = path_arg(sys, path)?;
    let dir = {
        let _scope = tree_scope(sys);
        let node = arg.tree.resolve(arg.start, &arg.path, FollowLast::Follow)?;
        if arg.tree.stat(node)?.kind != FileKind::Directory {
            return Err(ENOTDIR);
        }
        arg.tree.open(node)?
    };
    sys.process()?.fs.lock().set_cwd(dir);
    Ok(0)
}

/// fchdir(fd): the directory behind `fd` becomes the working directory.
pub fn sys_fchdir<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, fd: usize) -> Result<usize, Errno> {
    let node = match fd::file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Node(f) if f.kind() == FileKind::Directory => f.node().node(),
        _ => return Err(ENOTDIR),
    };
    let fs = sys.process()?.fs.clone();
    let tree = fs.lock().tree().clone();
    let dir = {
        let _scope = tree_scope(sys);
        tree.open(node)?
    };
    fs.lock().set_cwd(dir);
    Ok(0)
}

/// getcwd(buf, size): the working directory's path with its NUL (its length is
/// returned); ERANGE if it does not fit, ENOENT if the directory was removed.
pub fn sys_getcwd<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    buf: usize,
    size: usize,
) -> Result<usize, Errno> {
    let (tree, cwd) = {
        let fs = sys.process()?.fs.lock();
        (fs.tree().clone(), fs.cwd())
    };
    let mut path = {
        let _scope = tree_scope(sys);
        tree.path_of(cwd)?
    };
    path.try_reserve(1).map_err(|_| super::ENOMEM)?;
    path.push(0);
    if size < path.len() {
        return Err(ERANGE);
    }
    UserSlice::new(buf, path.len()).write(&mut *sys.space()?, &path)?;
    Ok(path.len())
}

/// umask(mask): sets the file-creation mask (its permission bits); returns the old.
pub fn sys_umask<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    mask: usize,
) -> Result<usize, Errno> {
    let fs = sys.process()?.fs.clone();
    let old = core::mem::replace(&mut fs.lock().umask, mask as u32 & 0o777);
    Ok(old as usize)
}

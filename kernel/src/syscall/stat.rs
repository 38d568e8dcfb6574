//! stat, fstat, lstat, newfstatat, statx, statfs, fstatfs, access, faccessat,
//! faccessat2: what a path or an fd is.
//!
//! `struct stat` has each architecture's own layout (x86_64's 144 bytes, the
//! generic 128 of aarch64); `statx` and `statfs` are the same on both. Fds that
//! are not inodes of the tree answer as Linux's would: a pipe is a FIFO of
//! pipefs, the test console's stdin `/dev/null` and its stdout a pipe (as under
//! the test driver natively), the terminal the console device 5:1.
//!
//! The caller is root: access() grants reading and writing; executing needs an
//! execute bit (or a directory), as Linux's root.

use super::fd::{self, File};
use super::path::{path_at, EmptyPath, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW};
use super::proc_view::tree_scope;
use super::user_mem::UserSlice;
use super::{Errno, Sys, EACCES, EBADF, EINVAL};
use crate::fs::vfs::FollowLast;
use crate::fs::{DeviceId, FileKind, Stat, StatFs};
use crate::memory::frame_allocator::FrameSource;

/// `st_blksize`: the page size, as tmpfs reports.
const BLOCK_SIZE: u64 = 4096;
/// statx's `STATX_BASIC_STATS`: every field of `struct stat`.
const STATX_BASIC_STATS: u32 = 0x7ff;
/// `AT_STATX_*` sync flags and `AT_NO_AUTOMOUNT`: accepted, nothing to do.
const AT_STATX_SYNC_MASK: usize = 0x6000;
const AT_NO_AUTOMOUNT: usize = 0x800;
/// faccessat2's `AT_EACCESS`: check with the effective ids (the same here).
const AT_EACCESS: usize = 0x200;
/// pipefs's device (Linux's is an anonymous 0:N; this N is fixed).
const PIPE_DEV: DeviceId = DeviceId::new(0, 12);

/// The attributes of what `fd` is (see the module documentation).
pub fn stat_of_fd<A: FrameSource + Clone>(sys: &Sys<'_, A>, fd: usize) -> Result<Stat, Errno> {
    let file = fd::file(&sys.files()?, fd).ok_or(EBADF)?;
    let _scope = tree_scope(sys);
    let synthetic = |kind, perm, ino, rdev| Stat {
        ino,
        dev: PIPE_DEV,
        kind,
        perm,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 0,
        blocks: 0,
        rdev,
        atime: 0,
        mtime: 0,
        ctime: 0,
    };
    Ok(match file {
        File::Node(f) => f.stat()?,
        File::Fifo(f) => f.file.stat()?,
        File::PipeRead(end) | File::PipeWrite(end) => {
            synthetic(FileKind::Fifo, 0o600, end.id(), DeviceId::default())
        }
        File::ConsoleOut => synthetic(FileKind::Fifo, 0o600, 1, DeviceId::default()),
        File::ConsoleIn => synthetic(FileKind::CharDevice, 0o666, 2, DeviceId::new(1, 3)),
        // The terminal is the inode of `/dev/console`, so ttyname() finds it there.
        File::Terminal(_) => {
            let tree = sys.process()?.fs.lock().tree().clone();
            let console = tree.resolve(tree.root(), b"/dev/console", FollowLast::Follow);
            match console.and_then(|node| tree.stat(node)) {
                Ok(st) => st,
                Err(_) => synthetic(FileKind::CharDevice, 0o600, 3, DeviceId::new(5, 1)),
            }
        }
    })
}

/// `struct stat` of `st` (x86_64 layout).
#[cfg(not(target_arch = "aarch64"))]
fn stat_bytes(st: &Stat) -> [u8; STAT_SIZE] {
    let mut b = [0u8; STAT_SIZE];
    put64(&mut b, 0, st.dev.encode());
    put64(&mut b, 8, st.ino);
    put64(&mut b, 16, st.nlink as u64);
    put32(&mut b, 24, st.mode());
    put32(&mut b, 28, st.uid);
    put32(&mut b, 32, st.gid);
    put64(&mut b, 40, st.rdev.encode());
    put64(&mut b, 48, st.size);
    put64(&mut b, 56, BLOCK_SIZE);
    put64(&mut b, 64, st.blocks);
    put_times(&mut b, 72, st);
    b
}

/// `struct stat` of `st` (the generic layout aarch64 uses).
#[cfg(target_arch = "aarch64")]
fn stat_bytes(st: &Stat) -> [u8; STAT_SIZE] {
    let mut b = [0u8; STAT_SIZE];
    put64(&mut b, 0, st.dev.encode());
    put64(&mut b, 8, st.ino);
    put32(&mut b, 16, st.mode());
    put32(&mut b, 20, st.nlink);
    put32(&mut b, 24, st.uid);
    put32(&mut b, 28, st.gid);
    put64(&mut b, 32, st.rdev.encode());
    put64(&mut b, 48, st.size);
    put32(&mut b, 56, BLOCK_SIZE as u32);
    put64(&mut b, 64, st.blocks);
    put_times(&mut b, 72, st);
    b
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// atime, mtime, ctime as (seconds, nanoseconds) pairs of 64-bit words from `at`.
fn put_times(b: &mut [u8], at: usize, st: &Stat) {
    for (i, t) in [st.atime, st.mtime, st.ctime].into_iter().enumerate() {
        put64(b, at + 16 * i, t.div_euclid(1_000_000_000) as u64);
        put64(b, at + 16 * i + 8, t.rem_euclid(1_000_000_000) as u64);
    }
}

/// Writes `st` as a `struct stat` at `buf`.
fn put_stat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    buf: usize,
    st: &Stat,
) -> Result<usize, Errno> {
    let bytes = stat_bytes(st);
    UserSlice::new(buf, STAT_SIZE).write(&mut *sys.space()?, &bytes)?;
    Ok(0)
}

#[cfg(not(target_arch = "aarch64"))]
const STAT_SIZE: usize = 144;
#[cfg(target_arch = "aarch64")]
const STAT_SIZE: usize = 128;

/// The node `dirfd`/`path` names with `flags` (AT_SYMLINK_NOFOLLOW,
/// AT_EMPTY_PATH), as a [`Stat`].
fn stat_at<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    flags: usize,
) -> Result<Stat, Errno> {
    // Linux's fast path: AT_EMPTY_PATH with a NULL or empty path is fstat of
    // `dirfd`, whatever the other flags.
    if flags & AT_EMPTY_PATH != 0 && dirfd as i32 != fd::AT_FDCWD {
        let empty = path == 0 || super::path::read_path(sys, path).is_ok_and(|p| p.is_empty());
        if empty {
            return stat_of_fd(sys, dirfd);
        }
    }
    let allowed = AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_MASK;
    if flags & !allowed != 0 {
        return Err(EINVAL);
    }
    let empty = match flags & AT_EMPTY_PATH != 0 {
        true => EmptyPath::Allowed,
        false => EmptyPath::Refused,
    };
    let arg = path_at(sys, dirfd, path, empty)?;
    if arg.is_empty() && dirfd as i32 != fd::AT_FDCWD {
        return stat_of_fd(sys, dirfd);
    }
    let _scope = tree_scope(sys);
    if arg.is_empty() {
        return arg.tree.stat(arg.start);
    }
    let follow = match flags & AT_SYMLINK_NOFOLLOW != 0 {
        true => FollowLast::NoFollow,
        false => FollowLast::Follow,
    };
    let node = arg.tree.resolve(arg.start, &arg.path, follow)?;
    arg.tree.stat(node)
}

/// stat(path, buf).
pub fn sys_stat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    path: usize,
    buf: usize,
) -> Result<usize, Errno> {
    let st = stat_at(sys, fd::AT_FDCWD as usize, path, 0)?;
    put_stat(sys, buf, &st)
}

/// lstat(path, buf): a symlink itself.
pub fn sys_lstat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    path: usize,
    buf: usize,
) -> Result<usize, Errno> {
    let st = stat_at(sys, fd::AT_FDCWD as usize, path, AT_SYMLINK_NOFOLLOW)?;
    put_stat(sys, buf, &st)
}

/// fstat(fd, buf).
pub fn sys_fstat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
) -> Result<usize, Errno> {
    let st = stat_of_fd(sys, fd)?;
    put_stat(sys, buf, &st)
}

/// newfstatat(dirfd, path, buf, flags).
pub fn sys_newfstatat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    buf: usize,
    flags: usize,
) -> Result<usize, Errno> {
    let st = stat_at(sys, dirfd, path, flags)?;
    put_stat(sys, buf, &st)
}

/// statx(dirfd, path, flags, mask, buf): every basic field, whatever `mask` asks
/// (Linux may fill more than asked); no birth time.
pub fn sys_statx<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    flags: usize,
    mask: usize,
    buf: usize,
) -> Result<usize, Errno> {
    // STATX__RESERVED.
    if mask & 0x8000_0000 != 0 || flags & AT_STATX_SYNC_MASK == AT_STATX_SYNC_MASK {
        return Err(EINVAL);
    }
    let st = stat_at(sys, dirfd, path, flags)?;
    let mut b = [0u8; 256];
    put32(&mut b, 0, STATX_BASIC_STATS);
    put32(&mut b, 4, BLOCK_SIZE as u32);
    put32(&mut b, 16, st.nlink);
    put32(&mut b, 20, st.uid);
    put32(&mut b, 24, st.gid);
    b[28..30].copy_from_slice(&(st.mode() as u16).to_le_bytes());
    put64(&mut b, 32, st.ino);
    put64(&mut b, 40, st.size);
    put64(&mut b, 48, st.blocks);
    // atime, (btime left zero), ctime, mtime: {i64 sec, u32 nsec, i32 pad}.
    for (at, t) in [(64, st.atime), (96, st.ctime), (112, st.mtime)] {
        put64(&mut b, at, t.div_euclid(1_000_000_000) as u64);
        put32(&mut b, at + 8, t.rem_euclid(1_000_000_000) as u32);
    }
    put32(&mut b, 128, st.rdev.major);
    put32(&mut b, 132, st.rdev.minor);
    put32(&mut b, 136, st.dev.major);
    put32(&mut b, 140, st.dev.minor);
    UserSlice::new(buf, 256).write(&mut *sys.space()?, &b)?;
    Ok(0)
}

/// `struct statfs` (the same 120 bytes on both architectures).
fn put_statfs<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    buf: usize,
    s: &StatFs,
) -> Result<usize, Errno> {
    let mut b = [0u8; 120];
    put64(&mut b, 0, s.magic);
    put64(&mut b, 8, s.block_size);
    put64(&mut b, 16, s.blocks);
    put64(&mut b, 24, s.blocks_free);
    put64(&mut b, 32, s.blocks_free);
    put64(&mut b, 40, s.files);
    put64(&mut b, 48, s.files_free);
    put64(&mut b, 64, s.name_max);
    put64(&mut b, 72, s.block_size);
    UserSlice::new(buf, 120).write(&mut *sys.space()?, &b)?;
    Ok(0)
}

/// statfs(path, buf).
pub fn sys_statfs<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    path: usize,
    buf: usize,
) -> Result<usize, Errno> {
    let arg = path_at(sys, fd::AT_FDCWD as usize, path, EmptyPath::Refused)?;
    let s = {
        let _scope = tree_scope(sys);
        let node = arg.tree.resolve(arg.start, &arg.path, FollowLast::Follow)?;
        arg.tree.statfs(node)?
    };
    put_statfs(sys, buf, &s)
}

/// fstatfs(fd, buf): pipes and the consoles report pipefs and devtmpfs totals of
/// zero, as Linux's do.
pub fn sys_fstatfs<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
) -> Result<usize, Errno> {
    let s = match fd::file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Node(f) => {
            let tree = sys.process()?.fs.lock().tree().clone();
            tree.statfs(f.node().node())?
        }
        _ => StatFs {
            magic: 0x5049_5045, // PIPEFS_MAGIC
            block_size: BLOCK_SIZE,
            blocks: 0,
            blocks_free: 0,
            files: 0,
            files_free: 0,
            name_max: 255,
        },
    };
    put_statfs(sys, buf, &s)
}

/// faccessat2(dirfd, path, mode, flags): F_OK (0) asks whether it exists; R_OK
/// (4) and W_OK (2) are granted to root; X_OK (1) needs an execute bit or a
/// directory (EACCES). EINVAL for other mode or flag bits.
pub fn sys_faccessat2<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    mode: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(EINVAL);
    }
    let st = stat_at(sys, dirfd, path, flags & !AT_EACCESS)?;
    let executable = st.kind == FileKind::Directory || st.perm & 0o111 != 0;
    match mode & 1 != 0 && !executable {
        true => Err(EACCES),
        false => Ok(0),
    }
}

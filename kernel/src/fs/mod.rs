//! The virtual file system: what every file system looks like to the rest of the
//! kernel, the mount table and the path walk.
//!
//! ## What it owns
//! * The inode abstraction ([`Stat`], [`FileKind`], [`DeviceId`], [`SetAttr`],
//!   [`DirEntry`]) and the [`FileSystem`] trait that each file system implements
//!   with inode numbers ([`Ino`]) as handles: [`tmpfs::Tmpfs`] (also used for `/dev`,
//!   as Linux's devtmpfs is a tmpfs) today, procfs later.
//! * [`vfs::Vfs`]: the mount table and the path walk (absolute or relative to a
//!   directory [`Node`], `.` and `..` across mount points, symlinks up to
//!   [`SYMLOOP_MAX`], trailing slashes, [`FollowLast`]) and the path operations with
//!   Linux's errnos (mkdir, rmdir, unlink, rename, link, symlink, ...).
//! * [`vfs::OpenNode`]: a counted reference to an inode, which keeps an unlinked
//!   file alive (and its pages allocated) until the last one drops, as on Linux.
//!
//! ## Split of work
//! The VFS checks what is about paths and mounts (names, `.`/`..`, trailing
//! slashes, EXDEV, EBUSY for mount points); the file system checks what is about
//! its inodes (EEXIST, ENOTEMPTY, EISDIR/ENOTDIR of the entries, a directory moved
//! into itself) under its own lock, so each operation is atomic for that file
//! system.
//!
//! ## Locks
//! The mount table has one lock ([`vfs::Vfs`]), taken only to copy out a mount and
//! never held while a file system runs. Each file system has its own lock(s) (tmpfs:
//! one per instance); a file system may take the frame allocator's lock inside its
//! own. So the order is: mount table (alone), or file system, then frame allocator.
//!
//! Not here yet: the system calls (open, getdents64, ...) and the per-process cwd
//! and umask; they sit on [`vfs::Vfs`] and [`vfs::OpenNode`].
#![deny(unsafe_code)]

pub mod context;
pub mod cpio;
pub mod devfs;
pub mod file;
pub mod locks;
pub mod procfs;
pub mod system;
pub mod tmpfs;
pub mod vfs;

#[cfg(test)]
mod procfs_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use crate::syscall::errno::Errno;
use alloc::vec::Vec;

/// The errnos the file systems answer with (Linux's values, from `syscall::errno`).
pub mod errno {
    pub use crate::syscall::errno::{
        EBUSY, EEXIST, EFAULT, EFBIG, EINVAL, EIO, EISDIR, ELOOP, EMLINK, ENAMETOOLONG, ENODEV,
        ENOENT, ENOMEM, ENOSPC, ENOSYS, ENOTDIR, ENOTEMPTY, ENXIO, EOVERFLOW, EPERM, ESPIPE, EXDEV,
    };
}

/// Longest file name component in bytes (Linux's NAME_MAX).
pub const NAME_MAX: usize = 255;
/// A path must be shorter than this many bytes (Linux's PATH_MAX counts the NUL).
pub const PATH_MAX: usize = 4096;
/// Most symlinks one path walk follows (Linux's MAXSYMLINKS).
pub const SYMLOOP_MAX: u32 = 40;
/// Bytes per file page.
pub const PAGE_BYTES: u64 = 4096;
/// Largest file size (Linux's MAX_LFS_FILESIZE on 64-bit).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// An inode number, unique within one file system among its live inodes; a file
/// system should not reuse one soon (tmpfs: not before 2^32 reuses of a slot), so a
/// stale number finds nothing rather than another file.
pub type Ino = u64;

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// The clock a file system stamps times with.
pub type Clock = fn() -> Nanos;

/// What an inode is (the `S_IFMT` part of a mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (`S_IFREG`).
    Regular,
    /// A directory (`S_IFDIR`).
    Directory,
    /// A symbolic link (`S_IFLNK`).
    Symlink,
    /// A character device (`S_IFCHR`).
    CharDevice,
    /// A named pipe (`S_IFIFO`).
    Fifo,
}

/// `S_IFMT`: the file-type bits of a mode.
pub const S_IFMT: u32 = 0o170_000;

impl FileKind {
    /// The `S_IFMT` bits of this kind.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileKind::Regular => 0o100_000,
            FileKind::Directory => 0o040_000,
            FileKind::Symlink => 0o120_000,
            FileKind::CharDevice => 0o020_000,
            FileKind::Fifo => 0o010_000,
        }
    }

    /// The kind named by the `S_IFMT` bits of `mode`, if it is one of ours.
    pub const fn from_mode(mode: u32) -> Option<FileKind> {
        match mode & S_IFMT {
            0o100_000 => Some(FileKind::Regular),
            0o040_000 => Some(FileKind::Directory),
            0o120_000 => Some(FileKind::Symlink),
            0o020_000 => Some(FileKind::CharDevice),
            0o010_000 => Some(FileKind::Fifo),
            _ => None,
        }
    }

    /// The `d_type` of getdents64 (DT_REG, DT_DIR, ...).
    pub const fn dirent_type(self) -> u8 {
        match self {
            FileKind::Regular => 8,
            FileKind::Directory => 4,
            FileKind::Symlink => 10,
            FileKind::CharDevice => 2,
            FileKind::Fifo => 1,
        }
    }
}

/// A device number (major, minor), as in `st_dev` and `st_rdev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceId {
    /// The driver.
    pub major: u32,
    /// The unit of that driver.
    pub minor: u32,
}

impl DeviceId {
    /// The device (major, minor).
    pub const fn new(major: u32, minor: u32) -> Self {
        DeviceId { major, minor }
    }

    /// The 64-bit encoding of glibc's `makedev` (what `stat` reports).
    pub const fn encode(self) -> u64 {
        let (ma, mi) = (self.major as u64, self.minor as u64);
        ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
    }
}

/// An inode's attributes, as `stat` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub ino: Ino,
    /// The file system's device.
    pub dev: DeviceId,
    /// What it is.
    pub kind: FileKind,
    /// Permission bits (`0o7777`).
    pub perm: u32,
    /// Hard links (a directory: 2 + subdirectories).
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (a symlink: its target's length).
    pub size: u64,
    /// 512-byte blocks allocated (holes take none).
    pub blocks: u64,
    /// The device a device node stands for.
    pub rdev: DeviceId,
    /// Last access.
    pub atime: Nanos,
    /// Last data change.
    pub mtime: Nanos,
    /// Last attribute change.
    pub ctime: Nanos,
}

impl Stat {
    /// `st_mode`: kind and permission bits.
    pub const fn mode(&self) -> u32 {
        self.kind.mode_bits() | self.perm
    }
}

/// The attributes of a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAttrs {
    /// Permission bits (the caller has applied the umask).
    pub perm: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

impl NodeAttrs {
    /// Owned by root with permissions `perm`.
    pub const fn root(perm: u32) -> Self {
        NodeAttrs {
            perm: perm & 0o7777,
            uid: 0,
            gid: 0,
        }
    }
}

/// What to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewNode<'a> {
    /// An empty regular file.
    Regular,
    /// An empty directory.
    Directory,
    /// A symlink to this target.
    Symlink(&'a [u8]),
    /// A character device node.
    CharDevice(DeviceId),
    /// A FIFO.
    Fifo,
}

impl NewNode<'_> {
    /// The kind of inode this makes.
    pub const fn kind(&self) -> FileKind {
        match self {
            NewNode::Regular => FileKind::Regular,
            NewNode::Directory => FileKind::Directory,
            NewNode::Symlink(_) => FileKind::Symlink,
            NewNode::CharDevice(_) => FileKind::CharDevice,
            NewNode::Fifo => FileKind::Fifo,
        }
    }
}

/// A new access or modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeChange {
    /// The file system's clock now (`UTIME_NOW`).
    Now,
    /// This time.
    At(Nanos),
}

/// An attribute change (chmod, chown, utimes); `None` leaves a field alone. The
/// change time becomes now whenever anything changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttr {
    /// New permission bits.
    pub perm: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time.
    pub atime: Option<TimeChange>,
    /// New modification time.
    pub mtime: Option<TimeChange>,
}

/// Which kind of entry an unlink-like operation expects to remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoveKind {
    /// unlink: anything but a directory (a directory is EISDIR).
    NonDirectory,
    /// rmdir: an empty directory (else ENOTDIR, ENOTEMPTY).
    Directory,
}

/// renameat2's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    /// rename: replace the target if it exists.
    Replace,
    /// RENAME_NOREPLACE: EEXIST if the target exists.
    NoReplace,
    /// RENAME_EXCHANGE: swap the two entries (both must exist).
    Exchange,
}

/// One directory entry, as getdents reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's inode.
    pub ino: Ino,
    /// What it is.
    pub kind: FileKind,
    /// Its name.
    pub name: Vec<u8>,
    /// The cookie that continues after this entry (getdents64's `d_off`): stable
    /// while entries come and go, so a listing in progress never skips or repeats
    /// an entry that stays.
    pub next: u64,
}

/// File system totals, as `statfs` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// `f_type` (TMPFS_MAGIC for tmpfs).
    pub magic: u64,
    /// Block size.
    pub block_size: u64,
    /// Blocks in all.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Inodes in all.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// Longest name.
    pub name_max: u64,
}

/// One file system, as the VFS sees it: operations on its inodes by number. Every
/// method is atomic with respect to the others (the file system locks itself).
///
/// Errors: ENOENT for an inode number that no longer exists; ENOTDIR for a
/// directory operation on anything else.
pub trait FileSystem: Send + Sync {
    /// Its root directory.
    fn root(&self) -> Ino;
    /// The attributes of `ino`.
    fn stat(&self, ino: Ino) -> Result<Stat, Errno>;
    /// The entry `name` of directory `dir` (never `.` or `..`).
    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno>;
    /// The parent of directory `dir` (its root's parent is itself).
    fn parent(&self, dir: Ino) -> Result<Ino, Errno>;
    /// Makes entry `name` in `dir` for a new inode; EEXIST if the name is taken,
    /// ENOENT if `dir` has been removed.
    fn create(
        &self,
        dir: Ino,
        name: &[u8],
        node: NewNode<'_>,
        attrs: NodeAttrs,
    ) -> Result<Ino, Errno>;
    /// Makes entry `name` in `dir` for the existing non-directory `target`.
    fn link(&self, dir: Ino, name: &[u8], target: Ino) -> Result<(), Errno>;
    /// Removes entry `name` of `dir`, which must be of the kind `expect` says.
    fn remove(&self, dir: Ino, name: &[u8], expect: RemoveKind) -> Result<(), Errno>;
    /// Moves entry `from_name` of `from_dir` to `to_name` of `to_dir`.
    fn rename(
        &self,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
        mode: RenameMode,
    ) -> Result<(), Errno>;
    /// A symlink's target (EINVAL for anything else).
    fn read_link(&self, ino: Ino) -> Result<Vec<u8>, Errno>;
    /// Reads from byte `offset` of a regular file; 0 at or after its end.
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Appends up to `len` bytes of a regular file from byte `offset` to `out`
    /// (ENOMEM if they do not fit in memory); returns how many. What
    /// [`read`](Self::read) gives, without zero-filling a buffer first where the
    /// file system can copy straight into `out`'s spare room.
    fn read_append(
        &self,
        ino: Ino,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, Errno> {
        reserve(out, len)?;
        let at = out.len();
        out.resize(at + len, 0);
        let mut done = 0;
        while done < len {
            match self.read(ino, offset + done as u64, &mut out[at + done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => {
                    out.truncate(at);
                    return Err(e);
                }
            }
        }
        out.truncate(at + done);
        Ok(done)
    }
    /// Writes at byte `offset` of a regular file, growing it; a short count if
    /// space ran out part way.
    fn write(&self, ino: Ino, offset: u64, buf: &[u8]) -> Result<usize, Errno>;
    /// Sets a regular file's size (growing leaves a hole).
    fn truncate(&self, ino: Ino, size: u64) -> Result<(), Errno>;
    /// The first entry of directory `dir` at or after `cookie` (0 is the start:
    /// `.`, then `..`, then the rest), or `None` at the end.
    fn read_dir(&self, dir: Ino, cookie: u64) -> Result<Option<DirEntry>, Errno>;
    /// Changes attributes.
    fn set_attr(&self, ino: Ino, change: &SetAttr) -> Result<(), Errno>;
    /// Totals.
    fn statfs(&self) -> StatFs;
    /// Counts one more open reference to `ino` (it lives while one is left).
    fn retain(&self, ino: Ino) -> Result<(), Errno>;
    /// Drops an open reference taken by [`retain`](Self::retain).
    fn release(&self, ino: Ino);
    /// The pipe of FIFO `ino` (Linux's `i_pipe`): the one its open ends share, or
    /// a new one from `make` when none is open. It is held weakly, so it goes
    /// (with any bytes left in it) when its last end closes, as on Linux. ENXIO
    /// for anything but a FIFO.
    fn fifo_pipe(
        &self,
        ino: Ino,
        make: &mut dyn FnMut() -> SharedPipe,
    ) -> Result<SharedPipe, Errno> {
        let _ = (ino, make);
        Err(errno::ENXIO)
    }
    /// Counts an open file description of `ino` that may write (exec of a file
    /// being written is ETXTBSY).
    fn start_writing(&self, ino: Ino) {
        let _ = ino;
    }
    /// Ends what [`start_writing`](Self::start_writing) counted.
    fn stop_writing(&self, ino: Ino) {
        let _ = ino;
    }
    /// Open file descriptions of `ino` that may write.
    fn writers(&self, ino: Ino) -> u32 {
        let _ = ino;
        0
    }
    /// The record-lock table of `ino` (Linux's `i_flctx`, see [`locks`]): the one it
    /// has, or with [`locks::TableLookup::OrCreate`] a new one if it has none.
    /// `None` for a file system that keeps no locks (fcntl then answers as for a
    /// lone holder) or an inode that has gone.
    fn lock_table(
        &self,
        ino: Ino,
        lookup: locks::TableLookup,
    ) -> Option<alloc::sync::Arc<locks::LockTable>> {
        let _ = (ino, lookup);
        None
    }
    /// Its type as `/proc/mounts` names it.
    fn type_name(&self) -> &'static str {
        "tmpfs"
    }
    /// Whether its files are generated from the kernel's state as they are read
    /// (procfs): an open takes their text then, as Linux's seq_file renders per
    /// open, and their inodes can only be reached inside a
    /// `syscall::proc_view::TreeScope`.
    fn generated(&self) -> bool {
        false
    }
    /// Whether its regular files can be mapped (mmap) with [`pin_page`](Self::pin_page)
    /// and friends; the default is no (mmap then answers ENODEV).
    fn maps_files(&self) -> bool {
        false
    }
    /// The frame holding page `index` of regular file `ino`, for a mapping: a hole
    /// gets a zeroed page (counted in the file's blocks), and the frame is pinned:
    /// it is not freed, even when the page leaves the file (truncate, last unlink),
    /// until every pin is dropped ([`unpin_page`](Self::unpin_page)). While the page
    /// is in the file, reads and writes of the file use this same frame. ENXIO for
    /// a page wholly beyond the end of the file; ENOSPC, ENOMEM as for a write.
    fn pin_page(&self, ino: Ino, index: u64) -> Result<crate::memory::PhysFrame, Errno> {
        let _ = (ino, index);
        Err(errno::ENODEV)
    }
    /// One more pin of `frame`, which [`pin_page`](Self::pin_page) gave for `ino`
    /// (fork copies a mapping). ENOMEM if the count cannot grow.
    fn repin_page(&self, ino: Ino, frame: crate::memory::PhysFrame) -> Result<(), Errno> {
        let _ = (ino, frame);
        Err(errno::ENODEV)
    }
    /// Drops one pin of `frame` (of file `ino`); the last pin of a page that left
    /// the file frees it.
    fn unpin_page(&self, ino: Ino, frame: crate::memory::PhysFrame) {
        let _ = (ino, frame);
    }
}

/// A FIFO's pipe as a file system keeps it (the pipe type is the system call
/// layer's).
pub type SharedPipe = alloc::sync::Arc<dyn core::any::Any + Send + Sync>;

/// Reserves room for `more` elements, as an errno on failure: collections a user
/// can grow use this, so running out of memory is ENOMEM and never a panic.
pub(crate) fn reserve<T>(v: &mut Vec<T>, more: usize) -> Result<(), Errno> {
    v.try_reserve(more).map_err(|_| errno::ENOMEM)
}

/// A copy of `bytes` in fallibly allocated memory.
pub(crate) fn copy_bytes(bytes: &[u8]) -> Result<Vec<u8>, Errno> {
    let mut v = Vec::new();
    reserve(&mut v, bytes.len())?;
    v.extend_from_slice(bytes);
    Ok(v)
}

/// Where an inode sits: in which mount, with which number. What the path walk
/// returns and a working directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// The mount.
    pub mount: vfs::MountId,
    /// The inode within the mount's file system.
    pub ino: Ino,
}

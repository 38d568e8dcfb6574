//! File descriptors: each process's table of open files, which are the test
//! console (fd 0 reads as `/dev/null`, fds 1 and 2 write to the console, as a native
//! run under the test driver sees them), the console terminal, pipe ends
//! ([`super::pipe`]) and inodes of the file tree opened by path
//! ([`crate::fs::file::OpenFile`], see [`super::open`]).
//!
//! Each process owns its table ([`Files`], the `files` field of
//! [`crate::process::Process`]; its threads share it, and so do processes made with
//! `CLONE_FILES`). A new process starts with the three console fds; fork copies the
//! table (every open file counted once more), exec closes the close-on-exec fds, and
//! the table is dropped when the process exits (its files close then).
//!
//! Lock order: the process table, then a [`Files`] lock, then pipe or file locks.
//! Calls: close, dup, dup2, dup3, pipe, pipe2, fcntl (F_DUPFD, F_DUPFD_CLOEXEC,
//! F_GETFD, F_SETFD, F_GETFL, F_SETFL, and the record locks F_GETLK/F_SETLK/
//! F_SETLKW and their OFD forms answered as for a single holder: every lock is
//! granted, F_GETLK reports F_UNLCK).
//!
//! New fds stay below the caller's soft `RLIMIT_NOFILE` ([`super::rlimit`]; the
//! limit is the calling process's, not the table's, as on Linux where processes
//! sharing a table may have different limits). Fds already open above a lowered
//! limit stay open.

use super::pipe::{new_pipe, PipeEnd};
use super::rlimit::fd_limit;
use super::user_mem::{UserPtr, UserSlice};
use super::{Errno, Sys, EBADF, EFAULT, EINVAL, EMFILE, ENOMEM};
use crate::fs::file::{Access, OpenFile};
use crate::memory::frame_allocator::FrameSource;
use crate::sync::IrqMutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

/// openat's "relative to the working directory".
pub const AT_FDCWD: i32 = -100;
/// Longest path with its NUL (Linux's PATH_MAX).
pub const PATH_MAX: usize = 4096;
pub(super) const O_CLOEXEC: usize = 0o2_000_000;
const O_NONBLOCK: usize = 0o4000;
const O_WRONLY: usize = 1;
/// `O_LARGEFILE`: Linux sets it on every file a 64-bit process opens by path.
#[cfg(not(target_arch = "aarch64"))]
pub(super) const O_LARGEFILE: u32 = 0o100_000;
/// `O_LARGEFILE` (the generic ABI's value).
#[cfg(target_arch = "aarch64")]
pub(super) const O_LARGEFILE: u32 = 0o400_000;
const FD_CLOEXEC: usize = 1;
const F_GETLK: usize = 5;
const F_SETLK: usize = 6;
const F_SETLKW: usize = 7;
const F_OFD_GETLK: usize = 36;
const F_OFD_SETLK: usize = 37;
const F_OFD_SETLKW: usize = 38;

/// What an fd refers to.
#[derive(Debug, Clone)]
pub enum File {
    /// The test console's standard input: reads give end of file.
    ConsoleIn,
    /// The test console's standard output / error: writes go to the console.
    ConsoleOut,
    /// The read end of a pipe.
    PipeRead(PipeEnd),
    /// The write end of a pipe.
    PipeWrite(PipeEnd),
    /// An inode of the tree: a regular file, a directory, a device other than the
    /// terminal (one open file description, shared by dups and forks).
    Node(Arc<OpenFile>),
    /// The console terminal (`/dev/console`, `/dev/tty`, init's fds in a `tty`
    /// boot), opened with this access.
    Terminal(Access),
    /// A named pipe opened by path.
    Fifo(Arc<FifoFile>),
}

impl FifoFile {
    /// How many read and write ends its pipe has.
    pub fn ends(&self) -> (usize, usize) {
        self.read
            .as_ref()
            .or(self.write.as_ref())
            .map_or((0, 0), PipeEnd::pipe_ends)
    }

    /// The queue an open waiting for its partner joins.
    pub fn pipe_queue(&self) -> Arc<crate::process::wait_queue::WaitQueue> {
        match self.read.as_ref().or(self.write.as_ref()) {
            Some(end) => end.open_queue().clone(),
            None => Arc::new(crate::process::wait_queue::WaitQueue::new()),
        }
    }
}

/// A FIFO opened by path: the open file description of its inode (for fstat and
/// the flags) and the ends of its pipe the open took (both for `O_RDWR`).
#[derive(Debug)]
pub struct FifoFile {
    /// The inode as opened.
    pub file: OpenFile,
    /// The read end, if opened for reading.
    pub read: Option<PipeEnd>,
    /// The write end, if opened for writing.
    pub write: Option<PipeEnd>,
}

#[derive(Debug, Clone)]
struct Slot {
    file: File,
    cloexec: bool,
    /// O_NONBLOCK (kept per fd here, not per open file as on Linux).
    nonblock: bool,
}

/// A process's open files, by fd.
#[derive(Debug, Clone, Default)]
pub struct FdTable {
    fds: Vec<Option<Slot>>,
}

/// An fd table as processes hold it (shared by threads and `CLONE_FILES`).
pub type Files = Arc<IrqMutex<FdTable>>;

/// A fresh table with the console fds, for a new process.
pub fn console_files() -> Files {
    Arc::new(IrqMutex::new(FdTable::console()))
}

/// A fresh table whose fds 0, 1 and 2 are the console terminal (read and write, as
/// a getty leaves them), for the first process of a `tty` boot.
pub fn terminal_files() -> Files {
    let slot = || {
        Some(Slot {
            file: File::Terminal(Access::ReadWrite),
            cloexec: false,
            nonblock: false,
        })
    };
    Arc::new(IrqMutex::new(FdTable {
        fds: alloc::vec![slot(), slot(), slot()],
    }))
}

/// A copy of `files` (fork without `CLONE_FILES`): same open files, own table;
/// ENOMEM when the kernel heap cannot hold it.
pub fn copy_files(files: &Files) -> Result<Files, Errno> {
    Ok(Arc::new(IrqMutex::new(files.lock().try_clone()?)))
}

impl FdTable {
    fn console() -> FdTable {
        let slot = |file| {
            Some(Slot {
                file,
                cloexec: false,
                nonblock: false,
            })
        };
        FdTable {
            fds: alloc::vec![
                slot(File::ConsoleIn),
                slot(File::ConsoleOut),
                slot(File::ConsoleOut)
            ],
        }
    }

    fn get(&self, fd: usize) -> Option<&Slot> {
        self.fds.get(fd).and_then(Option::as_ref)
    }

    /// The lowest free fd at or above `from` and below `limit` (EMFILE if none).
    fn lowest_free(&self, from: usize, limit: usize) -> Result<usize, Errno> {
        let fd = (from..limit)
            .find(|&fd| self.get(fd).is_none())
            .ok_or(EMFILE)?;
        Ok(fd)
    }

    /// Grows the table to hold `fd` (below the fd limit); ENOMEM, with nothing changed, when
    /// the kernel heap cannot.
    fn make_room(&mut self, fd: usize) -> Result<(), Errno> {
        if self.fds.len() <= fd {
            let more = fd + 1 - self.fds.len();
            self.fds.try_reserve(more).map_err(|_| ENOMEM)?;
            self.fds.resize(fd + 1, None);
        }
        Ok(())
    }

    /// Puts `slot` at `fd` (below the fd limit), dropping what was there.
    fn put(&mut self, fd: usize, slot: Slot) -> Result<(), Errno> {
        self.make_room(fd)?;
        self.fds[fd] = Some(slot);
        Ok(())
    }

    /// A copy for a child (every pipe end counted once more); ENOMEM when the kernel
    /// heap cannot hold it.
    fn try_clone(&self) -> Result<FdTable, Errno> {
        let mut fds = Vec::new();
        fds.try_reserve_exact(self.fds.len()).map_err(|_| ENOMEM)?;
        fds.extend(self.fds.iter().cloned());
        Ok(FdTable { fds })
    }
}

/// Runs `f` on the table `files`.
fn with_table<T>(files: &Files, f: impl FnOnce(&mut FdTable) -> T) -> T {
    f(&mut files.lock())
}

/// The file behind `fd`, if open.
pub fn file(files: &Files, fd: usize) -> Option<File> {
    with_table(files, |t| t.get(fd).map(|s| s.file.clone()))
}

/// Whether `fd` is open.
pub fn is_open(files: &Files, fd: usize) -> bool {
    with_table(files, |t| t.get(fd).is_some())
}

/// Puts `file` at the lowest free fd below `limit` (EMFILE if none); returns it.
pub fn install(
    files: &Files,
    file: File,
    cloexec: bool,
    nonblock: bool,
    limit: usize,
) -> Result<usize, Errno> {
    with_table(files, |t| {
        let fd = t.lowest_free(0, limit)?;
        t.put(
            fd,
            Slot {
                file,
                cloexec,
                nonblock,
            },
        )?;
        Ok(fd)
    })
}

/// EMFILE if no fd below `limit` is free (open finds this before the path).
pub fn check_room(files: &Files, limit: usize) -> Result<(), Errno> {
    with_table(files, |t| t.lowest_free(0, limit).map(|_| ()))
}

/// Every open fd with its file, in order (for `/proc/PID/fd`).
pub fn open_fds(files: &Files) -> Vec<(usize, File)> {
    with_table(files, |t| {
        t.fds
            .iter()
            .enumerate()
            .filter_map(|(fd, s)| s.as_ref().map(|s| (fd, s.file.clone())))
            .collect()
    })
}

/// Exec: closes the close-on-exec fds of `files`.
pub fn close_on_exec(files: &Files) {
    let closed: Vec<Slot> = with_table(files, |t| {
        t.fds
            .iter_mut()
            .filter(|s| s.as_ref().is_some_and(|s| s.cloexec))
            .filter_map(Option::take)
            .collect()
    });
    drop(closed);
}

/// close(fd).
pub fn sys_close<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, fd: usize) -> Result<usize, Errno> {
    let files = sys.files()?;
    let slot = with_table(&files, |t| t.fds.get_mut(fd).and_then(Option::take));
    slot.map(|_| 0).ok_or(EBADF)
}

/// dup(old): the lowest free fd, not close-on-exec.
pub fn sys_dup<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, old: usize) -> Result<usize, Errno> {
    dup_from(&sys.files()?, old, 0..fd_limit(sys)?, false)
}

/// A copy of `old` at the lowest free fd in `range`.
fn dup_from(files: &Files, old: usize, range: Range<usize>, cloexec: bool) -> Result<usize, Errno> {
    with_table(files, |t| {
        let file = t.get(old).ok_or(EBADF)?.file.clone();
        let fd = t.lowest_free(range.start, range.end)?;
        t.put(
            fd,
            Slot {
                file,
                cloexec,
                nonblock: false,
            },
        )?;
        Ok(fd)
    })
}

/// dup2(old, new): `new` becomes a copy of `old` (closing what it was); `old == new`
/// just checks `old`.
pub fn sys_dup2<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    old: usize,
    new: usize,
) -> Result<usize, Errno> {
    let files = sys.files()?;
    if old == new {
        return with_table(&files, |t| t.get(old).map(|_| new).ok_or(EBADF));
    }
    dup_to(&files, old, new, fd_limit(sys)?, false)
}

/// dup3(old, new, flags): like dup2 with O_CLOEXEC allowed; EINVAL if `old == new`.
pub fn sys_dup3<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    old: usize,
    new: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(EINVAL);
    }
    dup_to(
        &sys.files()?,
        old,
        new,
        fd_limit(sys)?,
        flags & O_CLOEXEC != 0,
    )
}

/// `new` becomes a copy of `old`; EBADF if `new` is at or above `limit`.
fn dup_to(
    files: &Files,
    old: usize,
    new: usize,
    limit: usize,
    cloexec: bool,
) -> Result<usize, Errno> {
    let replaced = with_table(files, |t| {
        let file = t.get(old).ok_or(EBADF)?.file.clone();
        if new >= limit {
            return Err(EBADF);
        }
        t.make_room(new)?; // before `new` loses what it had
        let was = t.fds.get_mut(new).and_then(Option::take);
        t.put(
            new,
            Slot {
                file,
                cloexec,
                nonblock: false,
            },
        )?;
        Ok(was)
    })?;
    drop(replaced);
    Ok(new)
}

/// The access-mode and status bits F_GETFL reports for `file` (besides
/// O_NONBLOCK, which the fd holds).
fn file_flags(file: &File) -> usize {
    match file {
        File::ConsoleIn | File::PipeRead(_) => 0,
        File::ConsoleOut | File::PipeWrite(_) => O_WRONLY,
        File::Node(f) => (f.access().flags() | f.status() | O_LARGEFILE) as usize,
        File::Terminal(access) => (access.flags() | O_LARGEFILE) as usize,
        File::Fifo(f) => (f.file.access().flags() | O_LARGEFILE) as usize,
    }
}

/// Whether `fd` is in non-blocking mode.
pub fn is_nonblocking(files: &Files, fd: usize) -> bool {
    with_table(files, |t| t.get(fd).is_some_and(|s| s.nonblock))
}

/// Turns O_NONBLOCK on or off for `fd` (F_SETFL, ioctl FIONBIO).
pub fn set_nonblocking(files: &Files, fd: usize, on: bool) -> Result<(), Errno> {
    with_table(files, |t| match t.fds.get_mut(fd) {
        Some(Some(s)) => {
            s.nonblock = on;
            Ok(())
        }
        _ => Err(EBADF),
    })
}

/// pipe2(fds, flags): two new fds, read end first; O_CLOEXEC and O_NONBLOCK.
pub fn sys_pipe2<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fds: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(EINVAL);
    }
    let files = sys.files()?;
    let limit = fd_limit(sys)?;
    let cloexec = flags & O_CLOEXEC != 0;
    let nonblock = flags & O_NONBLOCK != 0;
    let (r, w) = new_pipe();
    let (rfd, wfd) = with_table(&files, |t| -> Result<(usize, usize), Errno> {
        // Both fds are found before either is taken: EMFILE leaves the table as it was.
        let rfd = t.lowest_free(0, limit)?;
        let wfd = t.lowest_free(rfd + 1, limit)?;
        let slot = |file| Slot {
            file,
            cloexec,
            nonblock,
        };
        t.make_room(wfd)?; // then neither put can fail
        t.put(rfd, slot(File::PipeRead(r)))?;
        t.put(wfd, slot(File::PipeWrite(w)))?;
        Ok((rfd, wfd))
    })?;
    let out = UserPtr::<u64>::new(fds);
    let pair = (rfd as u64) | (wfd as u64) << 32;
    if out.write(sys.space()?, &pair).is_err() {
        let _ = sys_close(sys, rfd);
        let _ = sys_close(sys, wfd);
        return Err(EFAULT);
    }
    Ok(0)
}

/// fcntl(fd, cmd, arg) for the commands in the module docs; others EINVAL.
pub fn sys_fcntl<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    cmd: usize,
    arg: usize,
) -> Result<usize, Errno> {
    let files = sys.files()?;
    let limit = fd_limit(sys)?;
    let slot = with_table(&files, |t| t.get(fd).cloned()).ok_or(EBADF)?;
    match cmd {
        // F_DUPFD(_CLOEXEC) from at or above the fd limit is EINVAL, not EMFILE.
        0 | 1030 if arg >= limit => Err(EINVAL),
        0 | 1030 => dup_from(&files, fd, arg..limit, cmd == 1030),
        1 => Ok(if slot.cloexec { FD_CLOEXEC } else { 0 }),
        2 => {
            with_table(&files, |t| {
                if let Some(Some(s)) = t.fds.get_mut(fd) {
                    s.cloexec = arg & FD_CLOEXEC != 0;
                }
            });
            Ok(0)
        }
        3 => Ok(file_flags(&slot.file) | if slot.nonblock { O_NONBLOCK } else { 0 }),
        4 => {
            if let File::Node(f) = &slot.file {
                f.set_status(arg as u32);
            }
            set_nonblocking(&files, fd, arg & O_NONBLOCK != 0).map(|_| 0)
        }
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => {
            record_lock(sys, &slot.file, cmd, arg)
        }
        _ => Err(EINVAL),
    }
}

/// The record locks of fcntl, answered as Linux answers a process that is the only
/// one locking the file: F_SETLK and F_SETLKW (and their OFD forms) are granted,
/// F_GETLK finds no conflicting lock (`l_type` becomes F_UNLCK). The `struct flock`
/// is checked as Linux checks it: EFAULT, EINVAL for a bad type or whence, EBADF for
/// a lock the fd's access mode does not allow.
fn record_lock<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    file: &File,
    cmd: usize,
    arg: usize,
) -> Result<usize, Errno> {
    const F_RDLCK: u16 = 0;
    const F_WRLCK: u16 = 1;
    const F_UNLCK: u16 = 2;
    let File::Node(f) = file else {
        return Err(EINVAL);
    };
    let lock = UserSlice::new(arg, 4);
    let mut head = [0u8; 4];
    lock.read(sys.space()?, &mut head)?;
    let kind = u16::from_le_bytes([head[0], head[1]]);
    let whence = u16::from_le_bytes([head[2], head[3]]);
    if whence > 2 {
        return Err(EINVAL);
    }
    match (kind, cmd) {
        (F_RDLCK | F_WRLCK | F_UNLCK, F_GETLK | F_OFD_GETLK) => {
            if kind == F_UNLCK {
                return Err(EINVAL);
            }
            lock.sub(0, 2).write(sys.space()?, &F_UNLCK.to_le_bytes())?;
            Ok(0)
        }
        (F_RDLCK, _) if !f.access().reads() => Err(EBADF),
        (F_WRLCK, _) if !f.access().writes() => Err(EBADF),
        (F_RDLCK | F_WRLCK | F_UNLCK, _) => Ok(0),
        _ => Err(EINVAL),
    }
}

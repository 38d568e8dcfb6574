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
//! F_SETLKW and their OFD forms F_OFD_GETLK/F_OFD_SETLK/F_OFD_SETLKW).
//!
//! ## Record locks
//! Inodes of the tree keep their locks in a [`crate::fs::locks::LockTable`]. A
//! POSIX lock belongs to the process; whenever the process stops having an fd
//! (close, dup2/dup3 over it, exec's close-on-exec, exit: [`close_table`]) all its
//! POSIX locks on that fd's inode go, however many other fds it has there, as on
//! Linux. An OFD lock belongs to the open file description and goes when the
//! description does (see [`crate::fs::vfs::OpenNode::description_owner`]). Files
//! with no table (pipes, the console, generated files) answer as Linux answers a
//! lone holder: every lock is granted, F_GETLK reports F_UNLCK.
//!
//! New fds stay below the caller's soft `RLIMIT_NOFILE` ([`super::rlimit`]; the
//! limit is the calling process's, not the table's, as on Linux where processes
//! sharing a table may have different limits). Fds already open above a lowered
//! limit stay open.

use super::pipe::{new_pipe, Pipe, PipeEnd};
use super::rlimit::fd_limit;
use super::user_mem::{UserPtr, UserSlice};
use super::{Errno, Sys, EAGAIN, EBADF, EBUSY, EFAULT, EINVAL, EMFILE, ENOLCK, ENOMEM, EOVERFLOW};
use crate::fs::file::{Access, OpenFile};
use crate::fs::locks::{ByteRange, LockKind, Owner, SetLockError, TableLookup, OFFSET_MAX};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::kmem::{Account, Charge};
use crate::process::Pid;
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

impl File {
    /// Whether it was opened for reading (Linux's FMODE_READ).
    pub fn readable(&self) -> bool {
        match self {
            File::ConsoleIn | File::PipeRead(_) => true,
            File::ConsoleOut | File::PipeWrite(_) => false,
            File::Node(f) => f.access().reads(),
            File::Terminal(access) => access.reads(),
            File::Fifo(f) => f.read.is_some(),
        }
    }

    /// Whether it was opened for writing (Linux's FMODE_WRITE).
    pub fn writable(&self) -> bool {
        match self {
            File::ConsoleOut | File::PipeWrite(_) => true,
            File::ConsoleIn | File::PipeRead(_) => false,
            File::Node(f) => f.access().writes(),
            File::Terminal(access) => access.writes(),
            File::Fifo(f) => f.write.is_some(),
        }
    }
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
#[derive(Debug, Default)]
pub struct FdTable {
    fds: Vec<Option<Slot>>,
    /// Every fd below this one is open (a lower bound of the lowest free fd, as
    /// Linux's `next_fd`): the search for a free fd starts here, so opening fd after
    /// fd does not scan the open ones each time (65,536 opens took minutes).
    open_below: usize,
    /// What the slots hold of the owner's kernel heap budget ([`SLOT_COST`] each);
    /// `None`: not charged (a table no process owns yet).
    kmem: Option<Charge>,
}

/// Heap bytes one fd slot is charged for in the kernel heap budget
/// ([`crate::memory::kmem`]): the slot with the table's slack, and the open file
/// description it may be the only holder of.
pub const SLOT_COST: u64 = 256;

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
        open_below: 3,
        kmem: None,
    }))
}

/// A copy of `files` (fork without `CLONE_FILES`): same open files, own table,
/// charged to `account`; ENOMEM when the kernel heap or the budget cannot hold it.
pub fn copy_files(files: &Files, account: &Arc<Account>) -> Result<Files, Errno> {
    Ok(Arc::new(IrqMutex::new(files.lock().try_clone(account)?)))
}

/// Charges the slots of `files` to `account` from now on (ENOMEM, with nothing
/// changed, if they do not fit).
pub fn charge_files(files: &Files, account: &Arc<Account>) -> Result<(), Errno> {
    files.lock().charge_to(account)
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
            open_below: 3,
            kmem: None,
        }
    }

    fn get(&self, fd: usize) -> Option<&Slot> {
        self.fds.get(fd).and_then(Option::as_ref)
    }

    /// The lowest free fd at or above `from` and below `limit` (EMFILE if none).
    fn lowest_free(&self, from: usize, limit: usize) -> Result<usize, Errno> {
        let fd = (from.max(self.open_below)..limit)
            .find(|&fd| self.get(fd).is_none())
            .ok_or(EMFILE)?;
        Ok(fd)
    }

    /// Takes what `fd` holds out of the table (the fd is free afterwards).
    fn take(&mut self, fd: usize) -> Option<Slot> {
        let slot = self.fds.get_mut(fd)?.take()?;
        self.open_below = self.open_below.min(fd);
        Some(slot)
    }

    /// Grows the table to hold `fd` (below the fd limit); ENOMEM, with nothing changed, when
    /// the kernel heap cannot.
    fn make_room(&mut self, fd: usize) -> Result<(), Errno> {
        if self.fds.len() <= fd {
            let more = fd + 1 - self.fds.len();
            if let Some(c) = &mut self.kmem {
                c.set((fd as u64 + 1) * SLOT_COST).map_err(|_| ENOMEM)?;
            }
            if self.fds.try_reserve(more).is_err() {
                self.settle_charge();
                return Err(ENOMEM);
            }
            self.fds.resize(fd + 1, None);
        }
        Ok(())
    }

    /// Brings the charge back to the slots there are.
    fn settle_charge(&mut self) {
        let have = self.fds.len() as u64 * SLOT_COST;
        if let Some(c) = &mut self.kmem {
            let _ = c.set(have);
        }
    }

    /// See [`charge_files`].
    fn charge_to(&mut self, account: &Arc<Account>) -> Result<(), Errno> {
        let c = account
            .charge(self.fds.len() as u64 * SLOT_COST)
            .map_err(|_| ENOMEM)?;
        self.kmem = Some(c);
        Ok(())
    }

    /// Puts `slot` at `fd` (below the fd limit), dropping what was there.
    fn put(&mut self, fd: usize, slot: Slot) -> Result<(), Errno> {
        self.make_room(fd)?;
        self.fds[fd] = Some(slot);
        while self.get(self.open_below).is_some() {
            self.open_below += 1;
        }
        Ok(())
    }

    /// A copy for a child (every pipe end counted once more); ENOMEM when the kernel
    /// heap cannot hold it.
    fn try_clone(&self, account: &Arc<Account>) -> Result<FdTable, Errno> {
        let kmem = account
            .charge(self.fds.len() as u64 * SLOT_COST)
            .map_err(|_| ENOMEM)?;
        let mut fds = Vec::new();
        fds.try_reserve_exact(self.fds.len()).map_err(|_| ENOMEM)?;
        fds.extend(self.fds.iter().cloned());
        Ok(FdTable {
            fds,
            open_below: self.open_below,
            kmem: Some(kmem),
        })
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

/// The file behind `fd` and whether the fd is non-blocking, in one look at the table.
pub fn file_and_nonblock(files: &Files, fd: usize) -> Option<(File, bool)> {
    with_table(files, |t| t.get(fd).map(|s| (s.file.clone(), s.nonblock)))
}

/// An fd that is one end of a pipe made by pipe(2), as the fast path of read and
/// write sees it ([`super::fast`]).
#[derive(Clone)]
pub struct PipeFd {
    /// The pipe (not a counted end: see [`PipeEnd::pipe`]).
    pub pipe: Arc<Pipe>,
    /// Whether the fd is the write end.
    pub write_end: bool,
    /// Whether the fd is non-blocking.
    pub nonblock: bool,
}

/// The pipe behind `fd` if it is an end of an unnamed pipe (one look at the table).
pub fn pipe_fd(files: &Files, fd: usize) -> Option<PipeFd> {
    with_table(files, |t| {
        let slot = t.get(fd)?;
        let (end, write_end) = match &slot.file {
            File::PipeRead(end) => (end, false),
            File::PipeWrite(end) => (end, true),
            _ => return None,
        };
        Some(PipeFd {
            pipe: end.pipe().clone(),
            write_end,
            nonblock: slot.nonblock,
        })
    })
}

/// How many fds the table has room for as Linux counts it (`max_fds`): at least
/// 64, and a power of two, as its fd tables grow.
pub fn max_fds(files: &Files) -> usize {
    with_table(files, |t| t.fds.len().next_power_of_two().max(64))
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

/// Exec of process `pid`: closes the close-on-exec fds of `files`.
pub fn close_on_exec(files: &Files, pid: Pid) {
    let closed: Vec<Slot> = with_table(files, |t| {
        let fds = (0..t.fds.len()).filter(|&fd| t.get(fd).is_some_and(|s| s.cloexec));
        let fds: Vec<usize> = fds.collect();
        fds.into_iter().filter_map(|fd| t.take(fd)).collect()
    });
    for slot in closed {
        close_slot(slot, pid);
    }
}

/// Exit of process `pid`, whose fd table `files` was: its POSIX locks on the inodes
/// of its fds go, then its reference to the table (the files close with the last
/// one; a table shared through `CLONE_FILES` stays open for the others).
pub fn close_table(files: Files, pid: Pid) {
    for (_, file) in open_fds(&files) {
        release_posix_locks(&file, pid);
    }
    drop(files);
}

/// Closes what an fd of process `pid` held (called without the table's lock): the
/// process's POSIX locks on its inode go, then the file (the description's last
/// reference takes its OFD locks along).
fn close_slot(slot: Slot, pid: Pid) {
    release_posix_locks(&slot.file, pid);
    drop(slot);
}

/// close(fd).
pub fn sys_close<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, fd: usize) -> Result<usize, Errno> {
    let files = sys.files()?;
    let pid = sys.pid()?;
    let slot = with_table(&files, |t| t.take(fd));
    close_slot(slot.ok_or(EBADF)?, pid);
    Ok(0)
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
    let target = DupTarget {
        fd: new,
        limit: fd_limit(sys)?,
        cloexec: false,
    };
    dup_to(&files, old, target, sys.pid()?)
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
    let target = DupTarget {
        fd: new,
        limit: fd_limit(sys)?,
        cloexec: flags & O_CLOEXEC != 0,
    };
    dup_to(&sys.files()?, old, target, sys.pid()?)
}

/// Where dup2/dup3 put the copy.
struct DupTarget {
    /// The new fd.
    fd: usize,
    /// The caller's fd limit (EBADF at or above it).
    limit: usize,
    /// Whether the new fd is close-on-exec.
    cloexec: bool,
}

/// `to.fd` becomes a copy of `old` in the table of process `pid` (what it held is
/// closed); EBADF if `to.fd` is at or above the limit.
fn dup_to(files: &Files, old: usize, to: DupTarget, pid: Pid) -> Result<usize, Errno> {
    let new = to.fd;
    let replaced = with_table(files, |t| {
        let file = t.get(old).ok_or(EBADF)?.file.clone();
        if new >= to.limit {
            return Err(EBADF);
        }
        t.make_room(new)?; // before `new` loses what it had
        let was = t.take(new);
        t.put(
            new,
            Slot {
                file,
                cloexec: to.cloexec,
                nonblock: false,
            },
        )?;
        Ok(was)
    })?;
    if let Some(slot) = replaced {
        close_slot(slot, pid);
    }
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
    let (r, w) = new_pipe(Some(&sys.process()?.kmem));
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
    if out.write(&mut *sys.space()?, &pair).is_err() {
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
    // The commands that take a number take an `int` (Linux's `argi`): F_DUPFD,
    // F_SETFD, F_SETFL, F_SETOWN, F_SETSIG, F_SETLEASE, F_NOTIFY, F_DUPFD_CLOEXEC,
    // F_SETPIPE_SZ; the lock commands take a pointer.
    let arg = match cmd {
        0 | 2 | 4 | 8 | 10 | 1024 | 1026 | 1030 | 1031 => arg as u32 as i32 as isize as usize,
        _ => arg,
    };
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
        F_SETPIPE_SZ | F_GETPIPE_SZ => {
            let end = match &slot.file {
                File::PipeRead(e) | File::PipeWrite(e) => e.clone(),
                File::Fifo(f) => f.read.clone().or_else(|| f.write.clone()).ok_or(EBADF)?,
                _ => return Err(EBADF),
            };
            match cmd {
                F_GETPIPE_SZ => Ok(end.size()),
                // Linux's round_pipe_size: below a page (0 too) is a page, more
                // than 2^31 bytes EINVAL; a size below what the pipe holds is
                // EBUSY. The caller is root, which Linux lets past
                // /proc/sys/fs/pipe-max-size.
                _ if arg as isize > 1 << 31 => Err(EINVAL),
                _ => end.set_size(arg).ok_or(EBUSY),
            }
        }
        _ => Err(EINVAL),
    }
}

/// fcntl: set and get a pipe's size.
const F_SETPIPE_SZ: usize = 1031;
const F_GETPIPE_SZ: usize = 1032;

/// `struct flock`, the same on x86_64 and aarch64 (32 bytes): `short l_type` at 0,
/// `short l_whence` at 2, `off_t l_start` at 8, `off_t l_len` at 16, `pid_t l_pid`
/// at 24.
#[derive(Debug, Clone, Copy)]
struct Flock {
    kind: i16,
    whence: i16,
    start: i64,
    len: i64,
    pid: i32,
}

const FLOCK_SIZE: usize = 32;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

impl Flock {
    fn read<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, at: UserSlice) -> Result<Flock, Errno> {
        let mut b = [0u8; FLOCK_SIZE];
        at.read(&mut *sys.space()?, &mut b)?;
        let i16_at = |o: usize| i16::from_le_bytes([b[o], b[o + 1]]);
        let i64_at = |o: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[o..o + 8]);
            i64::from_le_bytes(v)
        };
        Ok(Flock {
            kind: i16_at(0),
            whence: i16_at(2),
            start: i64_at(8),
            len: i64_at(16),
            pid: i32::from_le_bytes([b[24], b[25], b[26], b[27]]),
        })
    }

    /// F_GETLK's answer for a conflicting lock: its type, SEEK_SET, its range, its
    /// holder (-1 for an OFD lock).
    fn write_conflict<A: FrameSource + Clone>(
        sys: &mut Sys<'_, A>,
        at: UserSlice,
        lock: &crate::fs::locks::Lock,
    ) -> Result<(), Errno> {
        let mut b = [0u8; FLOCK_SIZE];
        at.read(&mut *sys.space()?, &mut b)?; // the padding stays as the caller left it
        let kind = match lock.kind {
            LockKind::Read => F_RDLCK,
            LockKind::Write => F_WRLCK,
        };
        let pid = match lock.owner {
            Owner::Process(pid) => pid.0 as i32,
            Owner::Description(_) => -1,
        };
        b[0..2].copy_from_slice(&kind.to_le_bytes());
        b[2..4].copy_from_slice(&0i16.to_le_bytes());
        b[8..16].copy_from_slice(&(lock.range.start() as i64).to_le_bytes());
        b[16..24].copy_from_slice(&(lock.range.flock_len() as i64).to_le_bytes());
        b[24..28].copy_from_slice(&pid.to_le_bytes());
        at.write(&mut *sys.space()?, &b)
    }

    /// The bytes it names, as Linux's `flock_to_posix_lock` reads them: `l_start`
    /// from the start, the offset or the end (`whence`), `l_len` 0 to the end of the
    /// file, a negative `l_len` the bytes before `l_start`. EINVAL for a bad whence
    /// or a range before byte 0, EOVERFLOW past [`OFFSET_MAX`].
    fn range(&self, offset: u64, size: u64) -> Result<ByteRange, Errno> {
        let base = match self.whence {
            0 => 0,
            1 => offset as i64,
            2 => size as i64,
            _ => return Err(EINVAL),
        };
        let start = base.checked_add(self.start).ok_or(EOVERFLOW)?;
        if start < 0 {
            return Err(EINVAL);
        }
        let (first, last) = match self.len {
            0 => (start, OFFSET_MAX as i64),
            len if len > 0 => (start, start.checked_add(len - 1).ok_or(EOVERFLOW)?),
            len if start + len < 0 => return Err(EINVAL),
            len => (start + len, start - 1),
        };
        ByteRange::new(first as u64, last as u64).ok_or(EINVAL)
    }

    /// The lock type (`None`: F_UNLCK); EINVAL for another value.
    fn lock_kind(&self) -> Result<Option<LockKind>, Errno> {
        match self.kind {
            F_RDLCK => Ok(Some(LockKind::Read)),
            F_WRLCK => Ok(Some(LockKind::Write)),
            F_UNLCK => Ok(None),
            _ => Err(EINVAL),
        }
    }
}

/// The open inode whose locks `file` takes, if it is one of the tree's.
fn lock_target(file: &File) -> Option<&OpenFile> {
    match file {
        File::Node(f) => Some(f),
        File::Fifo(f) => Some(&f.file),
        _ => None,
    }
}

/// The access `file` was opened with.
fn access_of(file: &File) -> Access {
    match file {
        File::ConsoleIn | File::PipeRead(_) => Access::Read,
        File::ConsoleOut | File::PipeWrite(_) => Access::Write,
        File::Terminal(access) => *access,
        File::Node(f) => f.access(),
        File::Fifo(f) => f.file.access(),
    }
}

/// Process `pid` stops having an fd on `file`: its POSIX locks on the inode go.
fn release_posix_locks(file: &File, pid: Pid) {
    let table = lock_target(file).and_then(|f| f.node().lock_table(TableLookup::Existing));
    if let Some(table) = table {
        table.release(Owner::Process(pid));
    }
}

/// The record locks of fcntl (see the module docs), with Linux's checks in Linux's
/// order: EBADF for an `O_PATH` fd, EFAULT, EINVAL for a bad type, whence or range
/// (and a nonzero `l_pid` in an OFD call), EOVERFLOW, EBADF for a lock the access
/// mode does not allow; a conflict is EAGAIN for F_SETLK and a wait for F_SETLKW;
/// ENOLCK when the lock cannot be recorded.
fn record_lock<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    file: &File,
    cmd: usize,
    arg: usize,
) -> Result<usize, Errno> {
    let access = access_of(file);
    if access == Access::Path {
        return Err(EBADF);
    }
    let at = UserSlice::new(arg, FLOCK_SIZE);
    let flock = Flock::read(sys, at)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if matches!(cmd, F_GETLK | F_OFD_GETLK) && !matches!(flock.kind, F_RDLCK | F_WRLCK) {
        return Err(EINVAL);
    }
    let target = lock_target(file);
    let (offset, size) = match target {
        Some(f) => (f.offset(), f.stat()?.size),
        None => (0, 0),
    };
    let range = flock.range(offset, size)?;
    let kind = flock.lock_kind()?;
    let setting = !matches!(cmd, F_GETLK | F_OFD_GETLK);
    match kind {
        Some(LockKind::Read) if setting && !access.reads() => return Err(EBADF),
        Some(LockKind::Write) if setting && !access.writes() => return Err(EBADF),
        _ => {}
    }
    if ofd && flock.pid != 0 {
        return Err(EINVAL);
    }
    let owner = match target {
        Some(f) if ofd => f.node().description_owner(),
        _ => Owner::Process(sys.pid()?),
    };
    let Some(table) = target.and_then(|f| f.node().lock_table(TableLookup::OrCreate)) else {
        // No table: a lone holder's answers.
        if !setting {
            at.sub(0, 2)
                .write(&mut *sys.space()?, &F_UNLCK.to_le_bytes())?;
        }
        return Ok(0);
    };
    let set = |_: &mut Sys<'_, A>| match table.set(owner, kind, range) {
        Ok(()) => Ok(Some(0)),
        Err(SetLockError::Conflict) => Ok(None),
        Err(SetLockError::NoMemory) => Err(ENOLCK),
    };
    match (cmd, kind) {
        (F_GETLK | F_OFD_GETLK, Some(kind)) => match table.conflict(owner, kind, &range) {
            Some(lock) => Flock::write_conflict(sys, at, &lock).map(|_| 0),
            None => at
                .sub(0, 2)
                .write(&mut *sys.space()?, &F_UNLCK.to_le_bytes())
                .map(|_| 0),
        },
        (F_SETLKW | F_OFD_SETLKW, _) => {
            let queue = table.queue().clone();
            sys.wait_until(|_| Ok(queue.clone()), set)
        }
        _ => set(sys)?.ok_or(EAGAIN),
    }
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod lock_tests;

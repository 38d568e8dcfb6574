//! File descriptors: each process's table of open files, which are the console
//! (fd 0 reads as `/dev/null`, fds 1 and 2 write to the console, as a native run
//! under the test driver sees them) and pipe ends ([`super::pipe`]).
//!
//! Each process owns its table ([`Files`], the `files` field of
//! [`crate::process::Process`]; its threads share it, and so do processes made with
//! `CLONE_FILES`). A new process starts with the three console fds; fork copies the
//! table (every pipe end counted once more), exec closes the close-on-exec fds, and
//! the table is dropped when the process exits (its pipe ends close then).
//!
//! Lock order: the process table, then a [`Files`] lock, then pipe locks. Calls: close, dup, dup2, dup3, pipe, pipe2, fcntl
//! (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL, F_SETFL), lseek, and
//! open/openat of `/dev/null` and, read-only, of the files the arch's file source
//! has (the initrd; paths are absolute or relative to `/`); anything else ENOENT.
//!
//! New fds stay below the caller's soft `RLIMIT_NOFILE` ([`super::rlimit`]; the
//! limit is the calling process's, not the table's, as on Linux where processes
//! sharing a table may have different limits). Fds already open above a lowered
//! limit stay open.

use super::pipe::{new_pipe, PipeEnd};
use super::rlimit::fd_limit;
use super::user_mem::{read_cstr, UserPtr};
use super::{
    Errno, Sys, EBADF, EFAULT, EINVAL, EMFILE, ENAMETOOLONG, ENOENT, ENOMEM, EROFS, ESPIPE,
};
use crate::memory::frame_allocator::FrameSource;
use crate::sync::IrqMutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

/// openat's "relative to the working directory".
pub const AT_FDCWD: i32 = -100;
/// Longest path with its NUL (Linux's PATH_MAX).
pub const PATH_MAX: usize = 4096;
const O_ACCMODE: usize = 3;
/// Longest path component (Linux's NAME_MAX).
pub const NAME_MAX: usize = 255;
const O_CLOEXEC: usize = 0o2_000_000;
const O_NONBLOCK: usize = 0o4000;
const O_WRONLY: usize = 1;
const O_RDWR: usize = 2;
const FD_CLOEXEC: usize = 1;

/// What an fd refers to.
#[derive(Debug, Clone)]
pub enum File {
    /// Standard input: reads give end of file.
    ConsoleIn,
    /// Standard output / error: writes go to the console.
    ConsoleOut,
    /// The read end of a pipe.
    PipeRead(PipeEnd),
    /// The write end of a pipe.
    PipeWrite(PipeEnd),
    /// `/dev/null`: reads give end of file, writes vanish.
    Null,
    /// A read-only file of the initrd; the offset is shared by dups and forks (one
    /// open file description, as on Linux).
    Data(DataFile),
}

/// An open read-only file: its bytes and the shared offset.
#[derive(Clone)]
pub struct DataFile {
    bytes: &'static [u8],
    pos: Arc<IrqMutex<usize>>,
}

impl core::fmt::Debug for DataFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DataFile({} bytes)", self.bytes.len())
    }
}

impl DataFile {
    /// Copies bytes from the offset on into `out`, advancing it; 0 at the end.
    pub fn read(&self, out: &mut [u8]) -> usize {
        let mut pos = self.pos.lock();
        let start = (*pos).min(self.bytes.len());
        let n = out.len().min(self.bytes.len() - start);
        out[..n].copy_from_slice(&self.bytes[start..start + n]);
        *pos = start + n;
        n
    }

    /// lseek: moves the offset (SEEK_SET 0, SEEK_CUR 1, SEEK_END 2); EINVAL for a
    /// bad whence or a negative result.
    pub fn seek(&self, offset: i64, whence: usize) -> Result<usize, Errno> {
        let mut pos = self.pos.lock();
        let base = match whence {
            0 => 0,
            1 => *pos as i64,
            2 => self.bytes.len() as i64,
            _ => return Err(EINVAL),
        };
        let new = base.checked_add(offset).filter(|n| *n >= 0).ok_or(EINVAL)?;
        *pos = new as usize;
        Ok(new as usize)
    }
}

/// Where open finds files: path -> contents (set by the arch: the initrd).
type FileSource = fn(&[u8]) -> Option<&'static [u8]>;

static FILES: IrqMutex<Option<FileSource>> = IrqMutex::new(None);

/// The file at `path` in the file source (the initrd), if there is one.
pub fn find_file(path: &[u8]) -> Option<&'static [u8]> {
    let source = *FILES.lock();
    source.and_then(|f| f(path))
}

/// Installs the read-only files open can find.
pub fn set_file_source(source: FileSource) {
    *FILES.lock() = Some(source);
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

fn access_mode(file: &File) -> usize {
    match file {
        File::ConsoleIn | File::PipeRead(_) => 0,
        File::ConsoleOut | File::PipeWrite(_) => O_WRONLY,
        File::Null => O_RDWR,
        File::Data(_) => 0,
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
        3 => Ok(access_mode(&slot.file) | if slot.nonblock { O_NONBLOCK } else { 0 }),
        4 => set_nonblocking(&files, fd, arg & O_NONBLOCK != 0).map(|_| 0),
        _ => Err(EINVAL),
    }
}

/// Reads the NUL-terminated path at `addr` (ENAMETOOLONG from PATH_MAX bytes on,
/// the NUL included, as Linux).
fn read_path<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, addr: usize) -> Result<Vec<u8>, Errno> {
    read_cstr(sys.space()?, addr, PATH_MAX - 1, ENAMETOOLONG)
}

/// ENAMETOOLONG if a component of `path` is longer than [`NAME_MAX`]: Linux's
/// lookup refuses such a name whether or not it exists. (Linux walks the path in
/// order, so a missing directory before the long component gives ENOENT there;
/// the file source has no directories to walk, so here the long name always wins.)
pub fn check_components(path: &[u8]) -> Result<(), Errno> {
    match path.split(|&b| b == b'/').any(|c| c.len() > NAME_MAX) {
        true => Err(ENAMETOOLONG),
        false => Ok(()),
    }
}

/// openat(dirfd, path, flags, mode): `/dev/null`, or a file of the file source
/// opened read-only (EROFS for write access); O_CLOEXEC honoured. The directory fd
/// must be AT_FDCWD or open (every directory is `/`). Anything else: ENOENT. As on
/// Linux, a full table (EMFILE) is found before the path is looked up.
pub fn sys_openat<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    dirfd: usize,
    path: usize,
    flags: usize,
) -> Result<usize, Errno> {
    let name = read_path(sys, path)?;
    let files = sys.files()?;
    let limit = fd_limit(sys)?;
    with_table(&files, |t| t.lowest_free(0, limit))?;
    if dirfd as i32 != AT_FDCWD && !is_open(&files, dirfd) && name.first() != Some(&b'/') {
        return Err(EBADF);
    }
    let slot = Slot {
        file: look_up(&name, flags)?,
        cloexec: flags & O_CLOEXEC != 0,
        nonblock: false,
    };
    with_table(&files, |t| {
        let fd = t.lowest_free(0, limit)?;
        t.put(fd, slot)?;
        Ok(fd)
    })
}

/// The file open finds at `name` with `flags`: see [`sys_openat`].
fn look_up(name: &[u8], flags: usize) -> Result<File, Errno> {
    if name == b"/dev/null" {
        return Ok(File::Null);
    }
    check_components(name)?;
    let bytes = find_file(name).ok_or(ENOENT)?;
    if flags & O_ACCMODE != 0 {
        return Err(EROFS);
    }
    Ok(File::Data(DataFile {
        bytes,
        pos: Arc::new(IrqMutex::new(0)),
    }))
}

/// lseek(fd, offset, whence): on initrd files; `/dev/null` stays at 0; the console
/// and pipes cannot seek (ESPIPE).
pub fn sys_lseek<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    offset: usize,
    whence: usize,
) -> Result<usize, Errno> {
    match file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Data(d) => d.seek(offset as i64, whence),
        File::Null => Ok(0),
        _ => Err(ESPIPE),
    }
}

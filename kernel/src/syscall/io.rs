//! read, write, pread64, pwrite64, readv, writev, lseek, ioctl: moving bytes
//! through an fd's [`File`].
//!
//! The test console stands for fds 0, 1 and 2 as a native run sees them under the
//! test driver: stdin is `/dev/null` (reads give end of file), stdout and stderr are
//! one pipe (not a terminal: `ioctl(TIOCGWINSZ)` answers ENOTTY, so libc buffers
//! exactly as it does natively). The console terminal ([`super::terminal`]) is what
//! a `tty` boot gives init instead, and what `/dev/console` and `/dev/tty` open.
//! Pipes block while empty (read) or full (write) unless the fd is non-blocking
//! (EAGAIN): the call waits on the pipe's queue ([`super::blocking`]) until a
//! writer, a reader or a close wakes it. A blocking write completes in full, as on
//! Linux: what it has moved is kept while it waits, and a signal that interrupts it
//! after some bytes makes it return that count. A write without readers fails with
//! EPIPE; the SIGPIPE that goes with it is sent by the caller of
//! [`super::dispatch`], which knows how to end the running process safely. Files of
//! the tree move through their [`OpenFile`] (offset, `O_APPEND`), chunk by chunk.
//!
//! User buffers are [`UserSlice`]s: bad pointers give EFAULT, and a read into a bad
//! buffer leaves the pipe's bytes where they were (and a file's offset before them).

use super::blocking::PIECE_BYTES;
use super::fd::{File, Files};
use super::pipe::{Pipe, PipeEnd, PipeError, PIPE_BUF};
use super::proc_view::tree_scope;
use super::user_mem::{UserPtr, UserSlice};
use super::{
    machine, Errno, Sys, EAGAIN, EBADF, EFAULT, EINVAL, EISDIR, ENOMEM, ENOTTY, EPIPE, ERESTARTSYS,
    ESPIPE,
};
use crate::fs::file::OpenFile;
use crate::fs::FileKind;
use crate::memory::frame_allocator::FrameSource;

/// Most iovecs per writev (Linux's `UIO_MAXIOV`).
const IOV_MAX: usize = 1024;
/// Bytes copied from user memory per console or pipe write.
const CHUNK: usize = 512;
/// Most bytes one read moves.
const READ_CHUNK: usize = 64 * 1024;
/// ioctl: set or clear non-blocking mode.
const FIONBIO: usize = 0x5421;

/// An open fd of the caller: its file and whether it is non-blocking.
struct Open {
    file: File,
    nonblock: bool,
}

fn open_fd<A: FrameSource + Clone>(sys: &Sys<'_, A>, fd: usize) -> Result<(Files, Open), Errno> {
    let files = sys.files()?;
    let (file, nonblock) = super::fd::file_and_nonblock(&files, fd).ok_or(EBADF)?;
    Ok((files, Open { file, nonblock }))
}

/// read(fd, buf, len): end of file on the test console's stdin, bytes from a pipe
/// (waiting while it is empty and has writers), the terminal or a file of the
/// tree; EBADF on an fd not open for reading, EISDIR on a directory.
pub fn sys_read<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
    len: usize,
) -> Result<usize, Errno> {
    read_fd(sys, fd, buf, len, Cut::Pieces)
}

/// read of `fd` into `len` bytes at `buf`, a file's in pieces or whole.
fn read_fd<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
    len: usize,
    cut: Cut,
) -> Result<usize, Errno> {
    let files = sys.files()?;
    // An unnamed pipe's read end is read through the pipe, as the fast path reads
    // it: a counted end cloned from the fd (what `open_fd` gives) would take the
    // pipe's lock twice more per call, to count a reader whose fd stays open
    // meanwhile (a close runs under the table lock this call holds).
    if let Some(p) = super::fd::pipe_fd(&files, fd).filter(|p| !p.write_end) {
        let buf = user_buffer(buf, len)?;
        return read_pipe(sys, &p.pipe, p.nonblock, buf);
    }
    let (file, nonblock) = super::fd::file_and_nonblock(&files, fd).ok_or(EBADF)?;
    let open = Open { file, nonblock };
    let buf = checked_buffer(&open.file, File::readable, buf, len)?;
    let end = match open.file {
        File::ConsoleIn => return Ok(0),
        File::Fifo(f) => f.read.clone().ok_or(EBADF)?,
        File::Node(f) => return read_file(sys, &f, None, buf, cut),
        File::Terminal(access) if access.reads() => {
            return super::terminal::read(sys, open.nonblock, buf)
        }
        _ => return Err(EBADF),
    };
    read_pipe(sys, end.pipe(), open.nonblock, buf)
}

/// read of the unnamed pipe `p` (its read end) that the fast path found behind the
/// call's fd (see `super::read_pipe_as`) into `len` bytes at `buf`, as `read_fd`
/// reads one.
pub fn read_found_pipe<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    p: &super::fd::PipeFd,
    buf: usize,
    len: usize,
) -> Result<usize, Errno> {
    let buf = user_buffer(buf, len)?;
    read_pipe(sys, &p.pipe, p.nonblock, buf)
}

/// read of a pipe (unnamed or a FIFO's) into `buf`: waits while it is empty and
/// has writers, unless `nonblock` (EAGAIN).
fn read_pipe<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pipe: &Pipe,
    nonblock: bool,
    buf: UserSlice,
) -> Result<usize, Errno> {
    let len = buf.len();
    if len == 0 {
        return Ok(0);
    }
    let queue = pipe.read_queue();
    sys.wait_until(
        |_| Ok(queue.clone()),
        |sys| {
            // An empty pipe needs no address space to say so (the attempt made
            // after joining the queue looks again).
            if pipe.read_would_wait() {
                return match nonblock {
                    true => Err(EAGAIN),
                    false => Ok(None),
                };
            }
            // A copy that fails keeps the bytes in the pipe: trying again is safe.
            sys.retry_on_oom(|space| {
                match pipe.read_with(len.min(READ_CHUNK), |bytes| buf.write(space, bytes).is_ok()) {
                    Ok(n) => Ok(Some(n)),
                    Err(PipeError::NotDelivered) => Err(EFAULT),
                    Err(_) if nonblock => Err(EAGAIN),
                    Err(_) => Ok(None),
                }
            })
        },
    )
}

/// Whether a read or write of a file may be cut into pieces (see `blocking`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// read, write, pread64, pwrite64: [`PIECE_BYTES`] at a time, other threads
    /// running between pieces; a signal between them returns what was moved.
    Pieces,
    /// One buffer of readv or writev (whose later buffers cannot resume): whole.
    Whole,
}

impl Cut {
    /// Where this issue of the call starts in the buffer, and how much it moves.
    fn piece<A: FrameSource + Clone>(self, sys: &Sys<'_, A>, len: usize) -> (usize, usize) {
        match self {
            Cut::Pieces => {
                let before = sys.progress().min(len);
                (before, (len - before).min(PIECE_BYTES))
            }
            Cut::Whole => (0, len),
        }
    }
}

/// What a call that moved `before` bytes in earlier pieces and `result` in this one
/// answers: the total, or ends this piece if the whole `len` is not moved yet.
fn piece_answer<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    (before, want): (usize, usize),
    result: Result<usize, Errno>,
    len: usize,
) -> Result<usize, Errno> {
    match result {
        Ok(n) if n == want && before + n < len => sys.yield_piece(before + n, 0),
        Ok(n) => Ok(before + n),
        Err(_) if before > 0 => Ok(before),
        Err(e) => Err(e),
    }
}

/// read or pread64 of a file of the tree into `buf` (`at`: see
/// [`OpenFile::read_with`]).
fn read_file<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    file: &OpenFile,
    at: Option<u64>,
    buf: UserSlice,
    cut: Cut,
) -> Result<usize, Errno> {
    if !file.access().reads() {
        return Err(EBADF);
    }
    if file.kind() == FileKind::Directory {
        return Err(EISDIR);
    }
    {
        let _scope = tree_scope(sys);
        file.prepare()?;
    }
    // A read that stopped at a copy for want of memory goes on from where it
    // stopped once the OOM killer freed some.
    let (before, want) = cut.piece(sys, buf.len());
    let piece = buf.sub(before, want);
    let mut total = 0;
    let result = sys.retry_on_oom(|space| {
        let rest = piece.sub(total, piece.len() - total);
        let at = at.map(|a| a + (before + total) as u64);
        let n = file.read_with(at, rest.len(), |done, bytes| {
            rest.sub(done, bytes.len()).write(space, bytes).is_ok()
        });
        match n {
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => {}
        }
        Ok(total)
    });
    piece_answer(sys, (before, want), result, buf.len())
}

/// write or pwrite64 of `buf` to a file of the tree. `/dev/null` and `/dev/zero`
/// take any count without reading the buffer, as Linux's do (after the range
/// check every write makes: EFAULT beyond user space).
fn write_file<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    file: &OpenFile,
    at: Option<u64>,
    buf: UserSlice,
    cut: Cut,
) -> Result<usize, Errno> {
    if !file.access().writes() {
        return Err(EBADF);
    }
    if file.discards_writes() {
        return match buf.in_user_space() {
            true => Ok(buf.len()),
            false => Err(EFAULT),
        };
    }
    let (before, want) = cut.piece(sys, buf.len());
    let piece = buf.sub(before, want);
    let at = at.map(|a| a + before as u64);
    let mut space = sys.space()?;
    let result = file.write_with(at, piece.len(), |done, chunk| {
        piece.sub(done, chunk.len()).read_prefix(&mut space, chunk)
    });
    drop(space);
    piece_answer(sys, (before, want), result, buf.len())
}

/// pread64(fd, buf, len, offset): a file of the tree at `offset`; ESPIPE for pipes
/// and terminals, EINVAL for a negative offset.
pub fn sys_pread64<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
    len: usize,
    offset: usize,
) -> Result<usize, Errno> {
    let (file, at) = positioned(sys, fd, offset)?;
    let buf = checked_buffer(&File::Node(file.clone()), File::readable, buf, len)?;
    read_file(sys, &file, Some(at), buf, Cut::Pieces)
}

/// pwrite64(fd, buf, len, offset): like [`sys_pread64`] for writing.
pub fn sys_pwrite64<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
    len: usize,
    offset: usize,
) -> Result<usize, Errno> {
    let (file, at) = positioned(sys, fd, offset)?;
    let buf = checked_buffer(&File::Node(file.clone()), File::writable, buf, len)?;
    write_file(sys, &file, Some(at), buf, Cut::Pieces)
}

/// The file and position of a pread64 or pwrite64: ESPIPE for what cannot seek,
/// EINVAL for a negative offset.
fn positioned<A: FrameSource + Clone>(
    sys: &Sys<'_, A>,
    fd: usize,
    offset: usize,
) -> Result<(alloc::sync::Arc<OpenFile>, u64), Errno> {
    if (offset as i64) < 0 {
        return Err(EINVAL); // before the fd, as Linux checks
    }
    let (_, open) = open_fd(sys, fd)?;
    let file = seekable(&open.file)?;
    Ok((file, offset as u64))
}

/// The file behind an fd that can be positioned: ESPIPE for pipes, terminals and
/// the test console, as Linux answers for them.
fn seekable(file: &File) -> Result<alloc::sync::Arc<OpenFile>, Errno> {
    match file {
        File::Node(f) if f.kind() != FileKind::Fifo => Ok(f.clone()),
        _ => Err(ESPIPE),
    }
}

/// lseek(fd, offset, whence): on files of the tree ([`OpenFile::seek`]); pipes,
/// terminals and the test console cannot seek (ESPIPE). A character device stays
/// at 0, as Linux's null and zero devices do.
pub fn sys_lseek<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    offset: usize,
    whence: usize,
) -> Result<usize, Errno> {
    let (_, open) = open_fd(sys, fd)?;
    // Linux looks at `whence` before the file can seek at all (SEEK_MAX is 4,
    // SEEK_HOLE; the file's own llseek refuses what it does not know).
    if whence > 4 {
        return Err(EINVAL);
    }
    let file = seekable(&open.file)?;
    // A device's offset stays 0 (Linux's null_lseek and friends), whatever
    // `whence` (up to SEEK_HOLE) asks.
    if file.kind() == FileKind::CharDevice {
        return Ok(0);
    }
    {
        let _scope = tree_scope(sys);
        file.prepare()?;
    }
    Ok(file.seek(offset as i64, whence)? as usize)
}

/// readv(fd, iov, count): the buffers filled one after the other, stopping at the
/// first short read (for a pipe or the terminal, after the first buffer that got
/// bytes: a short read Linux may also give). EINVAL for more than `IOV_MAX` buffers or a negative length.
pub fn sys_readv<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    iov: usize,
    count: usize,
) -> Result<usize, Errno> {
    // Linux's order: the fd, its mode, then the vector.
    if !open_fd(sys, fd)?.1.file.readable() {
        return Err(EBADF);
    }
    if count > IOV_MAX {
        return Err(EINVAL);
    }
    let iov = UserPtr::<[u64; 2]>::new(iov);
    let mut bufs = alloc::vec::Vec::new();
    bufs.try_reserve_exact(count).map_err(|_| ENOMEM)?;
    for i in 0..count {
        let [base, len] = iov.add(i).read(&mut *sys.space()?)?;
        if len > isize::MAX as u64 {
            return Err(EINVAL);
        }
        bufs.push((base as usize, len as usize));
    }
    // A pipe or the terminal may block, and a call that blocked cannot return
    // what it read before: only files, which never wait, fill several buffers.
    let (_, open) = open_fd(sys, fd)?;
    let several = matches!(open.file, File::Node(_));
    let mut total = 0;
    for (base, len) in bufs {
        if len == 0 {
            continue;
        }
        if total > 0 && !several {
            break;
        }
        match read_fd(sys, fd, base, len, Cut::Whole) {
            Ok(n) if n < len => return Ok(total + n),
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => return Ok(total),
        }
    }
    Ok(total)
}

/// write(fd, buf, len): to the console, `/dev/null`, or into a pipe (waiting while it
/// is full; EPIPE without readers). A fault after some bytes returns the count
/// written, as Linux does.
pub fn sys_write<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    buf: usize,
    len: usize,
) -> Result<usize, Errno> {
    let (_, open) = open_fd(sys, fd)?;
    let buf = checked_buffer(&open.file, File::writable, buf, len)?;
    write_to(sys, &open, buf, 0, Cut::Pieces)
}

/// Most bytes one read or write moves (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: usize = 0x7fff_f000;

/// vfs_read's and vfs_write's checks, in their order: the fd's mode (EBADF), the
/// buffer's range (EFAULT unless all of it is below the end of user space); the
/// count is cut to [`MAX_RW_COUNT`].
fn checked_buffer(
    file: &File,
    mode: impl Fn(&File) -> bool,
    buf: usize,
    len: usize,
) -> Result<UserSlice, Errno> {
    if !mode(file) {
        return Err(EBADF);
    }
    user_buffer(buf, len)
}

/// The user buffer of `len` bytes at `buf`, at most [`MAX_RW_COUNT`] of them
/// (EFAULT unless all of it is in user space).
fn user_buffer(buf: usize, len: usize) -> Result<UserSlice, Errno> {
    let slice = UserSlice::new(buf, len);
    match slice.in_user_space() {
        true => Ok(UserSlice::new(buf, len.min(MAX_RW_COUNT))),
        false => Err(EFAULT),
    }
}

/// Writes `buf` to `open`'s file; `before` is how many bytes of the call went
/// before `buf` (earlier iovecs of a writev), so a blocked pipe write knows where
/// it stopped.
fn write_to<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    open: &Open,
    buf: UserSlice,
    before: usize,
    cut: Cut,
) -> Result<usize, Errno> {
    match &open.file {
        File::PipeWrite(end) => return write_pipe(sys, end, open.nonblock, buf, before),
        File::Fifo(f) => {
            let end = f.write.as_ref().ok_or(EBADF)?;
            return write_pipe(sys, end, open.nonblock, buf, before);
        }
        File::Node(f) => return write_file(sys, f, None, buf, cut),
        File::Terminal(access) if access.writes() => {}
        File::ConsoleOut => {}
        _ => return Err(EBADF),
    }
    let mut done = 0;
    let mut chunk = [0u8; CHUNK];
    while done < buf.len() {
        let part = buf.sub(done, CHUNK);
        let n = part.len();
        if part.read(&mut *sys.space()?, &mut chunk[..n]).is_err() {
            return if done == 0 { Err(EFAULT) } else { Ok(done) };
        }
        match open.file {
            File::Terminal(_) => crate::tty::console_write(&chunk[..n]),
            _ => machine::console_write(&chunk[..n]),
        }
        done += n;
    }
    Ok(done)
}

/// A write into a pipe: as much as fits, then (unless non-blocking) wait for room and
/// go on until every byte is in. What has been moved (with the `before` bytes of
/// earlier iovecs) is the call's progress, so a re-issued call continues after it.
/// Writes of at most [`PIPE_BUF`] bytes go in whole. A fault after some bytes
/// returns the count moved, as Linux does.
fn write_pipe<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    end: &PipeEnd,
    nonblock: bool,
    buf: UserSlice,
    before: usize,
) -> Result<usize, Errno> {
    let mut done = sys.progress().saturating_sub(before);
    let mut chunk = alloc::vec::Vec::new();
    chunk
        .try_reserve_exact(buf.len().min(PIPE_BUF))
        .map_err(|_| ENOMEM)?;
    chunk.resize(buf.len().min(PIPE_BUF), 0);
    let mut joined = false;
    while done < buf.len() {
        let part = buf.sub(done, PIPE_BUF);
        let n = part.len();
        if part.read(&mut *sys.space()?, &mut chunk[..n]).is_err() {
            return if done == 0 { Err(EFAULT) } else { Ok(done) };
        }
        match end.write(&chunk[..n], buf.len()) {
            Ok(k) => {
                done += k;
                continue;
            }
            Err(_) if done > 0 && nonblock => return Ok(done),
            Err(PipeError::Broken) if done > 0 => return Ok(done),
            Err(PipeError::Broken) => return Err(EPIPE),
            Err(PipeError::NotDelivered) => return Err(EFAULT),
            Err(PipeError::NoMemory) if done > 0 => return Ok(done),
            Err(PipeError::NoMemory) => return Err(ENOMEM),
            Err(PipeError::WouldBlock) if nonblock => return Err(EAGAIN),
            Err(PipeError::WouldBlock) => {}
        }
        // Full: join the queue, then try once more before blocking, so room made
        // in between is not missed.
        if !joined {
            sys.wait_on(end.queue())?;
            joined = true;
            continue;
        }
        sys.set_progress(before + done);
        return sys.block();
    }
    Ok(done)
}

/// writev(fd, iov, count): the buffers one after the other; stops at the first short
/// write. EINVAL for more than `IOV_MAX` buffers or a length above `isize::MAX`.
pub fn sys_writev<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    iov: usize,
    count: usize,
) -> Result<usize, Errno> {
    let (_, open) = open_fd(sys, fd)?;
    if !open.file.writable() {
        return Err(EBADF);
    }
    if count > IOV_MAX {
        return Err(EINVAL);
    }
    let iov = UserPtr::<[u64; 2]>::new(iov);
    let mut total = 0usize;
    // A re-issued writev (it waited for room in a pipe) skips what it wrote.
    let resumed = sys.progress();
    for i in 0..count {
        let [base, len] = iov.add(i).read(&mut *sys.space()?)?;
        if len > isize::MAX as u64 {
            return Err(EINVAL);
        }
        if len == 0 {
            continue;
        }
        if total + len as usize <= resumed {
            total += len as usize;
            continue;
        }
        match write_to(
            sys,
            &open,
            UserSlice::new(base as usize, len as usize),
            total,
            Cut::Whole,
        ) {
            Ok(n) if n < len as usize => return Ok(total + n),
            Ok(n) => total += n,
            Err(e) if total == 0 || e == ERESTARTSYS => return Err(e),
            Err(_) => return Ok(total),
        }
    }
    Ok(total)
}

/// ioctl(fd, request, arg): FIONBIO sets non-blocking mode on any fd; the
/// terminal answers its own requests ([`super::terminal::ioctl`]); anything else
/// is not a terminal (ENOTTY).
pub fn sys_ioctl<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd: usize,
    request: usize,
    arg: usize,
) -> Result<usize, Errno> {
    let (files, open) = open_fd(sys, fd)?;
    if request == FIONBIO {
        let on = UserPtr::<u32>::new(arg).read(&mut *sys.space()?)?;
        super::fd::set_nonblocking(&files, fd, on != 0)?;
        return Ok(0);
    }
    match open.file {
        File::Terminal(_) => super::terminal::ioctl(sys, request, arg),
        _ => Err(ENOTTY),
    }
}

//! sendfile and copy_file_range: bytes from one fd to another without a user
//! buffer.
//!
//! Both read from a file of the tree at an offset (the caller's `*offset`, or
//! the file's own, advanced afterwards by what was moved) into a kernel chunk and
//! write it out; only what the output took counts as read, so a short write leaves
//! the rest for the next call. sendfile writes to any writable fd (a file, a pipe,
//! the console; a full pipe moves what fits, and waits only when nothing fits);
//! copy_file_range needs two regular files, and ranges of one file may not
//! overlap (EINVAL), as on Linux.

use super::fd::{self, File};
use super::user_mem::UserPtr;
use super::{Errno, Sys, EAGAIN, EBADF, EINVAL, ENOMEM, EPIPE};
use crate::fs::file::{OpenFile, CHUNK, O_APPEND};
use crate::fs::FileKind;
use crate::memory::frame_allocator::FrameSource;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Where the bytes go.
enum Sink {
    File(Arc<OpenFile>),
    Pipe(super::pipe::PipeEnd, bool),
    Console(File),
}

/// The readable regular file behind `fd` (EBADF if not open or not readable,
/// EINVAL if not a regular file).
fn source<A: FrameSource + Clone>(sys: &Sys<'_, A>, fd: usize) -> Result<Arc<OpenFile>, Errno> {
    match fd::file(&sys.files()?, fd).ok_or(EBADF)? {
        File::Node(f) if !f.access().reads() => Err(EBADF),
        File::Node(f) if f.kind() == FileKind::Regular => Ok(f),
        File::PipeWrite(_) | File::ConsoleOut => Err(EBADF),
        _ => Err(EINVAL),
    }
}

/// A zeroed chunk for `count` bytes.
fn chunk(count: usize) -> Result<Vec<u8>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(count.clamp(1, CHUNK))
        .map_err(|_| ENOMEM)?;
    v.resize(count.clamp(1, CHUNK), 0);
    Ok(v)
}

/// The starting offset: `*ptr` if given (EINVAL if negative), else the file's.
fn start<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    ptr: usize,
    file: &OpenFile,
) -> Result<u64, Errno> {
    match ptr {
        0 => Ok(file.offset()),
        p => {
            let off = UserPtr::<i64>::new(p).read(&mut *sys.space()?)?;
            u64::try_from(off).map_err(|_| EINVAL)
        }
    }
}

/// Records the end offset: into `*ptr` if given, else as the file's offset.
fn finish<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    ptr: usize,
    file: &OpenFile,
    end: u64,
) -> Result<(), Errno> {
    match ptr {
        0 => file.set_offset(end),
        p => UserPtr::<i64>::new(p).write(&mut *sys.space()?, &(end as i64))?,
    }
    Ok(())
}

/// sendfile(out_fd, in_fd, offset, count).
pub fn sys_sendfile<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    out_fd: usize,
    in_fd: usize,
    offset: usize,
    count: usize,
) -> Result<usize, Errno> {
    // Linux copies `*offset` in before it looks at either fd, and puts it back
    // whatever the copy answered: a read-only `offset` makes any answer EFAULT.
    if offset == 0 {
        return send(sys, out_fd, in_fd, offset, count);
    }
    let ptr = UserPtr::<i64>::new(offset);
    let pos = ptr.read(&mut *sys.space()?)?;
    let result = send(sys, out_fd, in_fd, offset, count);
    let after = ptr.read(&mut *sys.space()?).unwrap_or(pos);
    ptr.write(&mut *sys.space()?, &after)?;
    result
}

/// sendfile once `*offset` has been read (see [`sys_sendfile`]).
fn send<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    out_fd: usize,
    in_fd: usize,
    offset: usize,
    count: usize,
) -> Result<usize, Errno> {
    // Both fds are found (and their modes checked) before what they are is.
    let files = sys.files()?;
    let readable = fd::file(&files, in_fd).is_some_and(|f| f.readable());
    let writable = fd::file(&files, out_fd).is_some_and(|f| f.writable());
    if !readable || !writable {
        return Err(EBADF);
    }
    let input = source(sys, in_fd)?;
    let sink = match fd::file(&files, out_fd).ok_or(EBADF)? {
        File::Node(f) if f.access().writes() && f.status() & O_APPEND != 0 => return Err(EINVAL),
        File::Node(f) if f.access().writes() => Sink::File(f),
        File::PipeWrite(end) => Sink::Pipe(end, fd::is_nonblocking(&files, out_fd)),
        File::Fifo(f) if f.write.is_some() => {
            let end = f.write.clone().ok_or(EBADF)?;
            Sink::Pipe(end, fd::is_nonblocking(&files, out_fd))
        }
        f @ (File::ConsoleOut | File::Terminal(_)) => Sink::Console(f),
        _ => return Err(EBADF),
    };
    {
        let _scope = super::proc_view::tree_scope(sys);
        input.prepare()?;
    }
    let at = start(sys, offset, &input)?;
    let mut buf = chunk(count)?;
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(buf.len());
        let n = input.read_at(at + done as u64, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        let wrote = match &sink {
            Sink::File(f) => f.write_with(None, n, |at, out| {
                out.copy_from_slice(&buf[at..at + out.len()]);
                out.len()
            })?,
            Sink::Console(File::Terminal(_)) => {
                crate::tty::console_write(&buf[..n]);
                n
            }
            Sink::Console(_) => {
                super::machine::console_write(&buf[..n]);
                n
            }
            Sink::Pipe(end, nonblock) => match end.write(&buf[..n], n) {
                Ok(k) => k,
                Err(_) if done > 0 => break,
                Err(super::pipe::PipeError::Broken) => return Err(EPIPE),
                Err(super::pipe::PipeError::WouldBlock) if *nonblock => return Err(EAGAIN),
                Err(super::pipe::PipeError::WouldBlock) => {
                    let queue = end.queue().clone();
                    sys.wait_on(&queue)?;
                    return sys.block();
                }
                Err(_) => return Err(ENOMEM),
            },
        };
        done += wrote;
        if wrote < n {
            break;
        }
    }
    finish(sys, offset, &input, at + done as u64)?;
    Ok(done)
}

/// copy_file_range(fd_in, off_in, fd_out, off_out, len, flags).
pub fn sys_copy_file_range<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    fd_in: usize,
    off_in: usize,
    fd_out: usize,
    off_out: usize,
    len: usize,
    flags: usize,
) -> Result<usize, Errno> {
    // Linux's order: both fds exist, both offsets are read, then the flags and
    // what the files are.
    let files = sys.files()?;
    for fd in [fd_in, fd_out] {
        fd::file(&files, fd).ok_or(EBADF)?;
    }
    for ptr in [off_in, off_out] {
        if ptr != 0 {
            UserPtr::<i64>::new(ptr).read(&mut *sys.space()?)?;
        }
    }
    if flags != 0 {
        return Err(EINVAL);
    }
    let input = source(sys, fd_in)?;
    let output = match fd::file(&sys.files()?, fd_out).ok_or(EBADF)? {
        File::Node(f) if !f.access().writes() || f.status() & O_APPEND != 0 => return Err(EBADF),
        File::Node(f) if f.kind() == FileKind::Regular => f,
        _ => return Err(EINVAL),
    };
    {
        let _scope = super::proc_view::tree_scope(sys);
        input.prepare()?;
    }
    let from = start(sys, off_in, &input)?;
    let to = start(sys, off_out, &output)?;
    let same = input.node().node() == output.node().node();
    if same && from < to + len as u64 && to < from + len as u64 {
        return Err(EINVAL);
    }
    let mut buf = chunk(len)?;
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(buf.len());
        let n = input.read_at(from + done as u64, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        let wrote = output.write_with(Some(to + done as u64), n, |at, out| {
            out.copy_from_slice(&buf[at..at + out.len()]);
            out.len()
        })?;
        done += wrote;
        if wrote < n {
            break;
        }
    }
    finish(sys, off_in, &input, from + done as u64)?;
    finish(sys, off_out, &output, to + done as u64)?;
    Ok(done)
}

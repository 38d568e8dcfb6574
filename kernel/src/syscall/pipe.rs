//! Pipes: a bounded byte queue with counted read and write ends.
//!
//! A [`PipeEnd`] is one reference to one end; cloning it (dup, fork) counts one more
//! reader or writer and dropping it (close, exit, exec's close-on-exec) one less, so
//! a reader sees end of file once every write end is gone and a writer gets EPIPE once
//! every read end is gone. A read of an empty pipe or a write to a full one answers
//! [`PipeError::WouldBlock`]; the caller then waits on the end's wait queue
//! ([`PipeEnd::queue`]): readers on the pipe's "readable" queue, which a write and the
//! last writer's close wake, writers on its "writable" queue, which a read and the
//! last reader's close wake. Writes of at most [`PIPE_BUF`] bytes are atomic: they
//! go in whole or wait.
//!
//! The buffer's capacity is charged to the kernel heap budget of the process that
//! made the pipe ([`crate::memory::kmem`], as Linux charges pipe buffers to their
//! creator); a write the budget cannot hold fails with ENOMEM and writes nothing,
//! and an emptied buffer larger than [`PIPE_BUF`] is given back.
//!
//! Locks: the pipe's state lock, then (to wake) a wait queue's lock.

use crate::memory::kmem::{Account, Charge};
use crate::process::wait_queue::WaitQueue;
use crate::sync::IrqMutex;
use alloc::collections::VecDeque;
use alloc::sync::Arc;

/// Bytes a pipe holds (Linux's default pipe size).
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// Writes up to this size are never interleaved with other writers' (POSIX).
pub const PIPE_BUF: usize = 4096;

/// Why a pipe operation did not move bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeError {
    /// Nothing to read yet, or no room to write: try again later.
    WouldBlock,
    /// Writing with no read end left (EPIPE).
    Broken,
    /// The reader could not take the bytes (a bad user buffer): they stay in the pipe.
    NotDelivered,
    /// The kernel heap (or its budget) could not hold the bytes (ENOMEM; nothing
    /// was written).
    NoMemory,
}

#[derive(Debug)]
struct State {
    buf: VecDeque<u8>,
    /// The pipe's size: most bytes it holds (F_SETPIPE_SZ).
    size: usize,
    readers: usize,
    writers: usize,
    /// The buffer's capacity, charged to its maker (`None`: not charged).
    kmem: Option<Charge>,
}

impl State {
    /// Makes room for `n` more bytes, charged first (NoMemory, with nothing
    /// changed, if the budget or the heap cannot hold them).
    fn reserve(&mut self, n: usize) -> Result<(), PipeError> {
        let need = self.buf.len() + n;
        if need <= self.buf.capacity() {
            return Ok(());
        }
        // Doubling, as `try_reserve` would, but never past the pipe's size.
        let target = need.max((2 * self.buf.capacity()).min(self.size));
        if let Some(c) = &mut self.kmem {
            c.set(target as u64).map_err(|_| PipeError::NoMemory)?;
        }
        let r = self.buf.try_reserve_exact(target - self.buf.len());
        self.settle_charge();
        r.map_err(|_| PipeError::NoMemory)
    }

    /// Gives back an emptied buffer above [`PIPE_BUF`] bytes and brings the charge
    /// to the capacity held.
    fn shrink_if_empty(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > PIPE_BUF {
            self.buf = VecDeque::new();
        }
        self.settle_charge();
    }

    fn settle_charge(&mut self) {
        let cap = self.buf.capacity() as u64;
        if let Some(c) = &mut self.kmem {
            if c.set(cap).is_err() {
                // The allocator rounded up beyond the budget: keep what was charged.
            }
        }
    }
}

/// A pipe (shared by its ends).
pub struct Pipe {
    state: IrqMutex<State>,
    /// Readers waiting for bytes or end of file.
    readable: Arc<WaitQueue>,
    /// Writers waiting for room or a broken pipe.
    writable: Arc<WaitQueue>,
}

impl core::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pipe")
    }
}

/// One reference to the read or the write end of a pipe.
#[derive(Debug)]
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    write: bool,
}

/// What [`PipeEnd::poll`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeReady {
    /// Data to read, or end of file.
    pub readable: bool,
    /// Room to write.
    pub writable: bool,
    /// The other side is gone (no writers for a read end, no readers for a write end).
    pub hung_up: bool,
}

/// A new pipe: (read end, write end), its buffer charged to `account` if any.
pub fn new_pipe(account: Option<&Arc<Account>>) -> (PipeEnd, PipeEnd) {
    let pipe = Pipe::charged(account);
    (PipeEnd::new(pipe.clone(), false), PipeEnd::new(pipe, true))
}

impl Pipe {
    /// A pipe without ends (a FIFO's, before its first open).
    pub fn new() -> Arc<Pipe> {
        Pipe::charged(None)
    }

    /// A pipe without ends whose buffer is charged to `account` (if any).
    pub fn charged(account: Option<&Arc<Account>>) -> Arc<Pipe> {
        let state = State {
            buf: VecDeque::new(),
            size: PIPE_CAPACITY,
            readers: 0,
            writers: 0,
            kmem: account.map(|a| a.empty_charge()),
        };
        Arc::new(Pipe {
            state: IrqMutex::new(state),
            readable: Arc::new(WaitQueue::new()),
            writable: Arc::new(WaitQueue::new()),
        })
    }

    /// A new read end (`Access::Read`) or write end of this pipe (a FIFO's open);
    /// threads waiting on either side are woken, since an open that waits for a
    /// partner waits on the pipe's queues.
    pub fn open_end(self: &Arc<Self>, write: bool) -> PipeEnd {
        let end = PipeEnd::new(self.clone(), write);
        self.readable.wake_all();
        self.writable.wake_all();
        end
    }

    /// How many read ends and write ends are open.
    pub fn ends(&self) -> (usize, usize) {
        let s = self.state.lock();
        (s.readers, s.writers)
    }

    /// The queue readers wait on for bytes or end of file.
    pub fn read_queue(&self) -> &Arc<WaitQueue> {
        &self.readable
    }

    /// The queue openers wait on for a partner (the readers' one).
    pub fn open_queue(&self) -> &Arc<WaitQueue> {
        &self.readable
    }
    /// Hands up to `max` bytes to `deliver` (a copy to user memory); they leave the
    /// pipe only if it returns true, so a failed copy loses nothing (as on Linux).
    /// `Ok(0)` is end of file.
    pub fn read_with(
        &self,
        max: usize,
        deliver: impl FnOnce(&[u8]) -> bool,
    ) -> Result<usize, PipeError> {
        let mut s = self.state.lock();
        if s.buf.is_empty() {
            return match s.writers {
                0 => Ok(0),
                _ => Err(PipeError::WouldBlock),
            };
        }
        let n = max.min(s.buf.len());
        // In place: delivering must not need memory.
        if !deliver(&s.buf.make_contiguous()[..n]) {
            return Err(PipeError::NotDelivered);
        }
        s.buf.drain(..n);
        s.shrink_if_empty();
        drop(s);
        self.writable.wake_all();
        Ok(n)
    }

    /// Whether a read would wait now: nothing to read and a writer left.
    pub fn read_would_wait(&self) -> bool {
        let s = self.state.lock();
        s.buf.is_empty() && s.writers > 0
    }

    /// Moves as many of `data` in as fit; returns how many. A write whose whole
    /// (`total` bytes, of which `data` is the next part) is at most [`PIPE_BUF`]
    /// goes in whole or not at all.
    pub fn write(&self, data: &[u8], total: usize) -> Result<usize, PipeError> {
        let mut s = self.state.lock();
        if s.readers == 0 {
            return Err(PipeError::Broken);
        }
        let room = s.size.saturating_sub(s.buf.len());
        let atomic = total <= PIPE_BUF && data.len() == total;
        let mut n = data.len().min(room);
        if (n == 0 && !data.is_empty()) || (atomic && n < data.len()) {
            return Err(PipeError::WouldBlock);
        }
        // What the budget cannot hold of a large write is left for later, as Linux
        // stops at the page it cannot get; an atomic write goes in whole or fails.
        while let Err(e) = s.reserve(n) {
            if atomic || n <= PIPE_BUF {
                return Err(e);
            }
            n = (n / 2).max(PIPE_BUF);
        }
        s.buf.extend(&data[..n]);
        drop(s);
        self.readable.wake_all();
        Ok(n)
    }
}

impl PipeEnd {
    /// A number naming the pipe while it lives (its `st_ino`, `pipe:[N]`).
    pub fn id(&self) -> u64 {
        (Arc::as_ptr(&self.pipe) as usize as u64) >> 4
    }

    fn new(pipe: Arc<Pipe>, write: bool) -> Self {
        {
            let mut s = pipe.state.lock();
            match write {
                true => s.writers += 1,
                false => s.readers += 1,
            }
        }
        PipeEnd { pipe, write }
    }

    /// How many read and write ends its pipe has.
    pub fn pipe_ends(&self) -> (usize, usize) {
        self.pipe.ends()
    }

    /// The queue FIFO openers wait on for a partner.
    pub fn open_queue(&self) -> &Arc<WaitQueue> {
        self.pipe.open_queue()
    }

    /// Whether this is the write end.
    pub fn is_write_end(&self) -> bool {
        self.write
    }

    /// The queue a thread blocked on this end waits on: a reader for bytes or end
    /// of file, a writer for room or a broken pipe.
    pub fn queue(&self) -> &Arc<WaitQueue> {
        match self.write {
            true => &self.pipe.writable,
            false => &self.pipe.readable,
        }
    }

    /// Moves up to `out.len()` bytes out; `Ok(0)` is end of file.
    pub fn read(&self, out: &mut [u8]) -> Result<usize, PipeError> {
        let len = out.len();
        self.read_with(len, |bytes| {
            out[..bytes.len()].copy_from_slice(bytes);
            true
        })
    }

    /// Whether a read of this end would wait now (see [`Pipe::read_would_wait`]).
    pub fn read_would_wait(&self) -> bool {
        self.pipe.read_would_wait()
    }

    /// Hands up to `max` bytes to `deliver` (see [`Pipe::read_with`]).
    pub fn read_with(
        &self,
        max: usize,
        deliver: impl FnOnce(&[u8]) -> bool,
    ) -> Result<usize, PipeError> {
        self.pipe.read_with(max, deliver)
    }

    /// Moves as many of `data` in as fit (see [`Pipe::write`]).
    pub fn write(&self, data: &[u8], total: usize) -> Result<usize, PipeError> {
        self.pipe.write(data, total)
    }

    /// The pipe itself (to act on it without holding an end: a reference to an
    /// end is a count of readers or writers).
    pub fn pipe(&self) -> &Arc<Pipe> {
        &self.pipe
    }

    /// The pipe's size in bytes (F_GETPIPE_SZ).
    pub fn size(&self) -> usize {
        self.pipe.state.lock().size
    }

    /// F_SETPIPE_SZ: the size becomes `wanted` rounded up to a power-of-two number
    /// of pages (at least one page); returns it. EBUSY-style refusal (`None`) if
    /// the pipe holds more than that; the caller checks the upper bound.
    pub fn set_size(&self, wanted: usize) -> Option<usize> {
        let size = wanted.max(PIPE_BUF).checked_next_power_of_two()?;
        let mut s = self.pipe.state.lock();
        if s.buf.len() > size {
            return None;
        }
        s.size = size;
        drop(s);
        self.pipe.writable.wake_all();
        Some(size)
    }

    /// Readiness for poll.
    pub fn poll(&self) -> PipeReady {
        let s = self.pipe.state.lock();
        PipeReady {
            readable: !s.buf.is_empty() || s.writers == 0,
            writable: s.buf.len() < s.size,
            hung_up: match self.write {
                true => s.readers == 0,
                false => s.writers == 0,
            },
        }
    }
}

impl Clone for PipeEnd {
    fn clone(&self) -> Self {
        PipeEnd::new(self.pipe.clone(), self.write)
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut s = self.pipe.state.lock();
        let last = match self.write {
            true => {
                s.writers = s.writers.saturating_sub(1);
                s.writers == 0
            }
            false => {
                s.readers = s.readers.saturating_sub(1);
                s.readers == 0
            }
        };
        drop(s);
        // The other side learns of end of file or a broken pipe.
        if last {
            match self.write {
                true => self.pipe.readable.wake_all(),
                false => self.pipe.writable.wake_all(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_eof_and_broken_pipe() {
        let (r, w) = new_pipe(None);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf), Err(PipeError::WouldBlock));
        assert_eq!(w.write(b"hello", 5), Ok(5));
        assert_eq!(r.read(&mut buf[..3]), Ok(3));
        assert_eq!(&buf[..3], b"hel");
        let w2 = w.clone();
        drop(w);
        assert_eq!(r.read(&mut buf), Ok(2));
        assert_eq!(
            r.read(&mut buf),
            Err(PipeError::WouldBlock),
            "a writer is left"
        );
        drop(w2);
        assert_eq!(r.read(&mut buf), Ok(0), "end of file");
        let (r, w) = new_pipe(None);
        drop(r);
        assert_eq!(w.write(b"x", 1), Err(PipeError::Broken));
        assert!(w.poll().hung_up);
    }

    #[test]
    fn a_full_pipe_blocks_writers() {
        let (r, w) = new_pipe(None);
        let big = alloc::vec![7u8; PIPE_CAPACITY + 10];
        assert_eq!(w.write(&big, big.len()), Ok(PIPE_CAPACITY));
        assert_eq!(w.write(b"x", 1), Err(PipeError::WouldBlock));
        assert!(!w.poll().writable && r.poll().readable);
    }
}

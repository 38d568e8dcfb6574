//! Open file descriptions: what open(2) makes of an inode, shared by every fd that
//! dup, fork or `SCM_RIGHTS` copies from it (Linux's `struct file`).
//!
//! ## What it owns
//! * [`OpenFile`]: the open inode ([`OpenNode`]), the access mode it was opened
//!   with, its status flags (`O_APPEND`, `O_NONBLOCK`) and its offset, and the
//!   path it was opened by (what `/proc/PID/fd/N` shows).
//! * The offset rules: reads and writes advance it, `O_APPEND` writes go to the
//!   end, lseek may go beyond the end (a later write leaves a hole), SEEK_DATA and
//!   SEEK_HOLE treat the whole file as data (tmpfs reports holes only through
//!   `st_blocks`), a directory's offset is its getdents cookie.
//!
//! ## Locks
//! The offset has its own lock, held across one read or write so that two
//! threads sharing the description never read the same bytes (Linux's
//! `f_pos_lock`); the file system's lock nests inside it.
#![deny(unsafe_code)]

use super::errno::{EFAULT, EINVAL, ENOMEM, ENXIO, EOVERFLOW};
use super::vfs::OpenNode;
use super::{DirEntry, Errno, FileKind, Stat, MAX_FILE_SIZE};
use crate::sync::IrqMutex;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// `O_APPEND`: every write goes to the end.
pub const O_APPEND: u32 = 0o2000;
/// `O_NONBLOCK`: reads and writes that would wait fail with EAGAIN.
pub const O_NONBLOCK: u32 = 0o4000;

/// Most bytes one read or write moves through the kernel at a time.
pub const CHUNK: usize = 64 * 1024;

/// A zeroed buffer for chunks of a `len`-byte transfer (ENOMEM if the heap
/// cannot give one).
fn chunk_buffer(len: usize) -> Result<Vec<u8>, Errno> {
    let size = len.clamp(1, CHUNK);
    let mut v = Vec::new();
    v.try_reserve_exact(size).map_err(|_| ENOMEM)?;
    v.resize(size, 0);
    Ok(v)
}

/// What an open file description may do (open's `O_ACCMODE`, or `O_PATH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `O_RDONLY`.
    Read,
    /// `O_WRONLY`.
    Write,
    /// `O_RDWR`.
    ReadWrite,
    /// `O_PATH`: only a place in the tree (fstat, *at calls, fchdir).
    Path,
}

impl Access {
    /// Whether read(2) is allowed.
    pub fn reads(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    /// Whether write(2) is allowed.
    pub fn writes(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }

    /// The `O_ACCMODE` bits F_GETFL reports (`O_PATH` as 0o10000000).
    pub fn flags(self) -> u32 {
        match self {
            Access::Read => 0,
            Access::Write => 1,
            Access::ReadWrite => 2,
            Access::Path => 0o10_000_000,
        }
    }
}

/// An open file description; see the module documentation.
pub struct OpenFile {
    node: OpenNode,
    access: Access,
    /// `O_APPEND | O_NONBLOCK`, changed by F_SETFL.
    status: AtomicU32,
    /// The offset (a directory: the cookie of the next entry).
    pos: IrqMutex<u64>,
    /// The absolute path it was opened by.
    path: Vec<u8>,
    /// Whether the inode is of a generated file system (procfs): its text or
    /// listing is taken by [`prepare`](OpenFile::prepare) before the first read
    /// and served from [`snapshot`](OpenFile::snapshot) (Linux's seq_file).
    generated: bool,
    /// A generated file's text or directory's entries, once taken; dropped by a
    /// seek to 0, so a rewind sees them anew.
    snapshot: IrqMutex<Option<Arc<Snapshot>>>,
}

/// What an open of a generated file or directory saw.
enum Snapshot {
    Text(Vec<u8>),
    Entries(Vec<DirEntry>),
}

impl Snapshot {
    /// The whole text or listing of `node` now.
    fn take(node: &OpenNode) -> Result<Snapshot, Errno> {
        if node.kind() == FileKind::Directory {
            let mut entries = Vec::new();
            let mut cookie = 0;
            while let Some(e) = node.read_dir(cookie)? {
                cookie = e.next;
                entries.try_reserve(1).map_err(|_| ENOMEM)?;
                entries.push(e);
            }
            return Ok(Snapshot::Entries(entries));
        }
        let mut text = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            let n = node.read(text.len() as u64, &mut chunk)?;
            if n == 0 {
                return Ok(Snapshot::Text(text));
            }
            text.try_reserve(n).map_err(|_| ENOMEM)?;
            text.extend_from_slice(&chunk[..n]);
        }
    }
}

impl core::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OpenFile({:?}, {:?})", self.node, self.access)
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if self.access.writes() {
            self.node.stop_writing();
        }
    }
}

impl OpenFile {
    /// A description of `node` opened with `access` and status flags `status`,
    /// by `path`; the offset starts at 0.
    pub fn new(node: OpenNode, access: Access, status: u32, path: Vec<u8>) -> OpenFile {
        if access.writes() {
            node.start_writing();
        }
        OpenFile {
            node,
            access,
            status: AtomicU32::new(status & (O_APPEND | O_NONBLOCK)),
            pos: IrqMutex::new(0),
            path,
            generated: false,
            snapshot: IrqMutex::new(None),
        }
    }

    /// Like [`new`](Self::new) for an inode of a generated file system: its text
    /// (or listing) is taken at the first read (see [`prepare`](Self::prepare)).
    pub fn generated(node: OpenNode, access: Access, status: u32, path: Vec<u8>) -> OpenFile {
        let mut file = OpenFile::new(node, access, status, path);
        file.generated = matches!(file.kind(), FileKind::Regular | FileKind::Directory);
        file
    }

    /// A generated file's text or listing is taken now if it has not been: call
    /// it where the generating file system can see the kernel's state (inside a
    /// `syscall::proc_view::TreeScope`) before reading. Nothing for other files.
    pub fn prepare(&self) -> Result<(), Errno> {
        if !self.generated || self.snapshot.lock().is_some() {
            return Ok(());
        }
        let taken = Arc::new(Snapshot::take(&self.node)?);
        self.snapshot.lock().get_or_insert(taken);
        Ok(())
    }

    /// The snapshot taken, if any.
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.lock().clone()
    }

    /// pread: from byte `offset`, the snapshot's text or the inode's data; the offset
    /// untouched.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.snapshot().as_deref() {
            Some(Snapshot::Text(text)) => {
                let start = (offset as usize).min(text.len());
                let n = buf.len().min(text.len() - start);
                buf[..n].copy_from_slice(&text[start..start + n]);
                Ok(n)
            }
            _ => self.node.read(offset, buf),
        }
    }

    /// The directory entry at or after `cookie`: the snapshot's, or the inode's.
    fn dir_entry(&self, cookie: u64) -> Result<Option<DirEntry>, Errno> {
        match self.snapshot().as_deref() {
            Some(Snapshot::Entries(entries)) => {
                Ok(entries.iter().find(|e| e.next > cookie).cloned())
            }
            _ => self.node.read_dir(cookie),
        }
    }

    /// The size lseek's SEEK_END counts from.
    fn size(&self) -> Result<u64, Errno> {
        match self.snapshot().as_deref() {
            Some(Snapshot::Text(text)) => Ok(text.len() as u64),
            _ => Ok(self.node.stat()?.size),
        }
    }

    /// The open inode.
    pub fn node(&self) -> &OpenNode {
        &self.node
    }

    /// Whether writes are taken without their bytes being read (`/dev/null` and
    /// `/dev/zero`, as Linux's `write_null`).
    pub fn discards_writes(&self) -> bool {
        use super::devfs::CharDevice;
        self.kind() == FileKind::CharDevice
            && self.node.stat().is_ok_and(|st| {
                matches!(
                    CharDevice::from_id(st.rdev),
                    Some(CharDevice::Null | CharDevice::Zero)
                )
            })
    }

    /// What it is.
    pub fn kind(&self) -> FileKind {
        self.node.kind()
    }

    /// The access it was opened with.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The path it was opened by.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// `O_APPEND | O_NONBLOCK` as they are now.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::Relaxed)
    }

    /// F_SETFL: only `O_APPEND` and `O_NONBLOCK` change, as on Linux.
    pub fn set_status(&self, flags: u32) {
        self.status
            .store(flags & (O_APPEND | O_NONBLOCK), Ordering::Relaxed);
    }

    /// The inode's attributes now.
    pub fn stat(&self) -> Result<Stat, Errno> {
        self.node.stat()
    }

    /// read(2) (`at` = `None`, from the offset, which advances past what was
    /// delivered) or pread64 (`at` = the position; the offset untouched): up to
    /// `len` bytes, in chunks of at most [`CHUNK`] handed to `deliver` with the
    /// count delivered before them. A chunk `deliver` refuses (a bad user buffer)
    /// ends the read: its bytes count as not read, and with none before it the
    /// read is EFAULT.
    pub fn read_with(
        &self,
        at: Option<u64>,
        len: usize,
        mut deliver: impl FnMut(usize, &[u8]) -> bool,
    ) -> Result<usize, Errno> {
        let mut chunk = chunk_buffer(len)?;
        let mut pos = self.pos.lock();
        let start = at.unwrap_or(*pos);
        let mut done = 0;
        while done < len {
            let want = (len - done).min(CHUNK);
            let n = self.read_at(start + done as u64, &mut chunk[..want])?;
            if n == 0 {
                break;
            }
            if !deliver(done, &chunk[..n]) {
                if done == 0 {
                    return Err(EFAULT);
                }
                break;
            }
            done += n;
            // A file and the endless devices (zero, full, the random ones) are
            // read to `len`, as Linux reads them; a short chunk is the end.
            if n < want {
                break;
            }
        }
        if at.is_none() && self.kind() == FileKind::Regular {
            *pos = start + done as u64;
        }
        Ok(done)
    }

    /// write(2) (`at` = `None`: at the offset, or the end with `O_APPEND`; the
    /// offset ends after the bytes written) or pwrite64 (`at` = the position; with
    /// `O_APPEND` the end, Linux's documented quirk; the offset untouched): `len`
    /// bytes that `fetch` copies in, chunk by chunk, given the count before it; it
    /// answers how many bytes of the chunk's start it filled. What it filled is
    /// written; a chunk it could not fill whole (a bad user buffer) ends the write
    /// there, as Linux stops at the page it cannot read (EFAULT if nothing was
    /// written); a file system that runs out of room part way gives the short
    /// count, or its error if nothing was written.
    pub fn write_with(
        &self,
        at: Option<u64>,
        len: usize,
        mut fetch: impl FnMut(usize, &mut [u8]) -> usize,
    ) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let mut chunk = chunk_buffer(len)?;
        let mut pos = self.pos.lock();
        let regular = self.kind() == FileKind::Regular;
        let start = match (regular && self.status() & O_APPEND != 0, at) {
            (true, _) => self.node.stat()?.size,
            (false, Some(offset)) => offset,
            (false, None) => *pos,
        };
        let mut done = 0;
        while done < len {
            let want = (len - done).min(CHUNK);
            let got = fetch(done, &mut chunk[..want]).min(want);
            if got == 0 {
                if done == 0 {
                    return Err(EFAULT);
                }
                break;
            }
            let n = match self.node.write(start + done as u64, &chunk[..got]) {
                Ok(n) => n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            done += n;
            if n < want {
                break;
            }
        }
        if at.is_none() && regular {
            *pos = start + done as u64;
        }
        Ok(done)
    }

    /// The offset now.
    pub fn offset(&self) -> u64 {
        *self.pos.lock()
    }

    /// Moves the offset to `to` (sendfile and copy_file_range without an offset
    /// pointer advance it by what they moved).
    pub fn set_offset(&self, to: u64) {
        *self.pos.lock() = to;
    }

    /// lseek(2): SEEK_SET 0, SEEK_CUR 1, SEEK_END 2, SEEK_DATA 3, SEEK_HOLE 4.
    /// EINVAL for a bad whence or a negative result; ENXIO for SEEK_DATA or
    /// SEEK_HOLE at or past the end. A directory may only be rewound or set to a
    /// cookie it gave.
    pub fn seek(&self, offset: i64, whence: usize) -> Result<u64, Errno> {
        let mut pos = self.pos.lock();
        let size = self.size()?;
        let new = match whence {
            0 => offset,
            1 => (*pos as i64).checked_add(offset).ok_or(EOVERFLOW)?,
            2 => (size as i64).checked_add(offset).ok_or(EOVERFLOW)?,
            3 | 4 if offset < 0 => return Err(ENXIO),
            3 | 4 if offset as u64 >= size => return Err(ENXIO),
            3 => offset,
            4 => size as i64,
            _ => return Err(EINVAL),
        };
        if new < 0 || new as u64 > MAX_FILE_SIZE {
            return Err(EINVAL);
        }
        if new == 0 && self.generated {
            *self.snapshot.lock() = None;
        }
        *pos = new as u64;
        Ok(new as u64)
    }

    /// getdents64's walk: `emit` is offered entries from the offset on until it
    /// answers false (the entry did not fit: it is offered again next time); the
    /// offset then stays before it.
    pub fn read_dir(&self, mut emit: impl FnMut(&DirEntry) -> bool) -> Result<(), Errno> {
        let mut pos = self.pos.lock();
        while let Some(entry) = self.dir_entry(*pos)? {
            if !emit(&entry) {
                break;
            }
            *pos = entry.next;
        }
        Ok(())
    }
}

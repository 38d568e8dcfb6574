//! tmpfs: a writable file system in memory, whose file data lives in 4 KiB frames
//! taken from a [`FrameSource`].
//!
//! ## What it owns
//! * Its inodes, in a slot table: inode number = `generation << 32 | (slot + 1)`, so
//!   a freed slot can be reused while an old number does not find the new inode
//!   (until one slot has been reused 2^32 times).
//! * Every frame holding file data: a file's pages are a sorted list of (page
//!   index, frame); a page never written (a hole) has no frame and reads as zeros.
//!   All pages go back to the frame source when the inode dies (its last link and
//!   its last open reference gone, [`FileSystem::release`]) or the file system is
//!   dropped.
//! * Pins of mapped pages (mmap, [`FileSystem::pin_page`]): a sorted table of
//!   (frame, count). A pinned frame is never freed: when its page leaves the file
//!   (truncate, or the inode dies) it becomes an *orphan*, still counted in
//!   [`Tmpfs::pages_used`], and goes back to the frame source when its last pin
//!   drops. So a truncated page stays reachable (with its old contents) through a
//!   mapping that had it resident until that mapping lets it go, while the file
//!   itself no longer has it (Linux instead unmaps such pages from every mapping);
//!   a page beyond the new end that was not resident faults as beyond the end of
//!   the file. Room in the table is reserved before a pin is taken, so pinning
//!   fails cleanly (ENOMEM) and unpinning never allocates.
//! * Directories: entries in creation order, each with a cookie that is never
//!   reused in that directory, so getdents can continue from any cookie while
//!   entries come and go. Lookup is a linear scan: simple, and fast enough for the
//!   directory sizes of a root file system.
//!
//! ## Limits and memory
//! [`TmpfsLimits`] caps pages and inodes: reaching a cap is ENOSPC. A frame the
//! source cannot give, or kernel heap that `try_reserve` cannot get, is ENOMEM.
//! Every allocation of an operation happens before its first change, so a failed
//! operation changes nothing (a write that fails part way returns the bytes it
//! wrote, as Linux's short writes do).
//!
//! ## Locks
//! One lock per instance ([`Tmpfs::state`], an [`IrqMutex`] like the kernel's
//! other shared objects, so no interrupt or preemption can find it held on its own
//! CPU) covers the inodes, the directories and the frame source; the frame source
//! may take the frame allocator's lock inside it. Frame contents are copied with
//! the lock held (through [`phys`]), which keeps a write atomic with respect to a
//! concurrent truncate; the price is interrupts masked for the length of one
//! call's copy (a per-inode lock is the next step once the syscalls use this).
//!
//! Times are not updated on reads (as with Linux's `noatime`).
#![deny(unsafe_code)]

use super::errno::{EEXIST, EFBIG, EINVAL, EIO, EISDIR, ENOENT, ENOMEM, ENOSPC, ENOTDIR};
use super::errno::{ENOTEMPTY, ENXIO, EPERM};
use super::locks::{LockTable, TableLookup};
use super::TimeChange;
use super::{copy_bytes, reserve, Clock, DeviceId, DirEntry, Errno, FileKind, FileSystem, Ino};
use super::{NewNode, NodeAttrs, RemoveKind, RenameMode, SetAttr, SharedPipe, Stat, StatFs};
use super::{MAX_FILE_SIZE, NAME_MAX, PAGE_BYTES};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::{phys, PhysAddr, PhysFrame};
use crate::sync::IrqMutex;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

/// `f_type` of tmpfs in statfs.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Bytes a directory's size grows by per entry (Linux's BOGO_DIRENT_SIZE).
const DIRENT_SIZE: u64 = 20;
/// The root's inode number (slot 0, generation 0).
const ROOT: Ino = 1;

/// How much one tmpfs may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmpfsLimits {
    /// Most data pages (4 KiB frames).
    pub pages: u64,
    /// Most inodes, the root included.
    pub inodes: u64,
}

/// A tmpfs instance; see the module documentation.
pub struct Tmpfs<F: FrameSource> {
    /// Everything, under one lock.
    state: IrqMutex<State<F>>,
    /// The device number `stat` reports as `st_dev`.
    dev: DeviceId,
}

/// The contents of a tmpfs, protected by [`Tmpfs::state`].
struct State<F> {
    frames: F,
    clock: Clock,
    limits: TmpfsLimits,
    slots: Vec<Slot>,
    /// Free slot indexes; its capacity is kept at `slots.len()` so freeing an inode
    /// never allocates.
    free_slots: Vec<u32>,
    pages_used: u64,
    inodes_used: u64,
    /// Pinned frames, sorted by frame (see the module documentation).
    pins: Vec<Pin>,
}

/// A frame some mappings hold.
struct Pin {
    frame: PhysFrame,
    /// Mappings holding it (at least 1 while in the table).
    count: u32,
    /// Its page has left the file: the last unpin frees it.
    orphan: bool,
}

struct Slot {
    generation: u32,
    inode: Option<Inode>,
}

struct Inode {
    kind: FileKind,
    perm: u32,
    /// Directory entries naming it (a directory: 2 + subdirectories; 0 once removed).
    nlink: u32,
    uid: u32,
    gid: u32,
    rdev: DeviceId,
    atime: i64,
    mtime: i64,
    ctime: i64,
    /// Open references ([`FileSystem::retain`]); the inode lives while this or
    /// `nlink` is above 0.
    open: u32,
    /// Open file descriptions that may write ([`FileSystem::start_writing`]).
    writers: u32,
    /// Its record locks, made on the first lock ([`FileSystem::lock_table`]).
    locks: Option<Arc<LockTable>>,
    body: Body,
}

enum Body {
    File(FileData),
    Dir(Directory),
    Link(Vec<u8>),
    /// Device nodes and FIFOs: no data here; a FIFO's pipe while it is open
    /// ([`FileSystem::fifo_pipe`]).
    Special(Option<Weak<dyn Any + Send + Sync>>),
}

struct FileData {
    size: u64,
    /// (page index, frame), sorted by index.
    pages: Vec<(u64, PhysFrame)>,
}

struct Directory {
    parent: Ino,
    /// Sorted by cookie (entries are appended with a new cookie each).
    entries: Vec<Dirent>,
    next_cookie: u64,
}

struct Dirent {
    cookie: u64,
    name: Vec<u8>,
    ino: Ino,
    kind: FileKind,
}

/// Cookies 0 and 1 are `.` and `..`.
const FIRST_COOKIE: u64 = 2;

fn slot_of(ino: Ino) -> Option<(usize, u32)> {
    let slot = (ino & 0xffff_ffff).checked_sub(1)?;
    Some((slot as usize, (ino >> 32) as u32))
}

fn ino_of(slot: usize, generation: u32) -> Ino {
    ((generation as u64) << 32) | (slot as u64 + 1)
}

impl Directory {
    fn position(&self, name: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    fn find(&self, name: &[u8]) -> Option<&Dirent> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Appends an entry; the caller reserved room for it.
    fn push(&mut self, name: Vec<u8>, ino: Ino, kind: FileKind) {
        let cookie = self.next_cookie;
        self.next_cookie += 1;
        self.entries.push(Dirent {
            cookie,
            name,
            ino,
            kind,
        });
    }

    fn take(&mut self, name: &[u8]) -> Option<Dirent> {
        let at = self.position(name)?;
        Some(self.entries.remove(at))
    }
}

impl FileData {
    fn page_slot(&self, index: u64) -> Result<usize, usize> {
        self.pages.binary_search_by_key(&index, |p| p.0)
    }
}

impl<F: FrameSource> State<F> {
    fn inode(&self, ino: Ino) -> Result<&Inode, Errno> {
        let (slot, generation) = slot_of(ino).ok_or(ENOENT)?;
        match self.slots.get(slot) {
            Some(s) if s.generation == generation => s.inode.as_ref().ok_or(ENOENT),
            _ => Err(ENOENT),
        }
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        let (slot, generation) = slot_of(ino).ok_or(ENOENT)?;
        match self.slots.get_mut(slot) {
            Some(s) if s.generation == generation => s.inode.as_mut().ok_or(ENOENT),
            _ => Err(ENOENT),
        }
    }

    fn dir(&self, ino: Ino) -> Result<&Directory, Errno> {
        match &self.inode(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Directory, Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            _ => Err(ENOTDIR),
        }
    }

    /// A directory that can take a new entry `name`: it exists, is not removed,
    /// and has no entry of that name.
    fn check_new_entry(&self, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        let d = self.dir(dir)?;
        if self.inode(dir)?.nlink == 0 {
            return Err(ENOENT);
        }
        if d.find(name).is_some() {
            return Err(EEXIST);
        }
        Ok(())
    }

    /// Stores `inode` in a free slot and returns its number.
    fn insert_inode(&mut self, inode: Inode) -> Result<Ino, Errno> {
        if self.inodes_used >= self.limits.inodes {
            return Err(ENOSPC);
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => slot as usize,
            None => {
                // Slot numbers fill the low 32 bits of an inode number.
                if self.slots.len() >= u32::MAX as usize - 1 {
                    return Err(ENOSPC);
                }
                self.slots.try_reserve(1).map_err(|_| ENOMEM)?;
                // The free list is empty here: room for every slot, so that
                // freeing an inode never has to allocate.
                let want = self.slots.len() + 1;
                reserve(&mut self.free_slots, want)?;
                self.slots.push(Slot {
                    generation: 0,
                    inode: None,
                });
                self.slots.len() - 1
            }
        };
        self.slots[slot].inode = Some(inode);
        self.inodes_used += 1;
        Ok(ino_of(slot, self.slots[slot].generation))
    }

    /// Frees `ino` if nothing names or holds it any more: its pages go back to the
    /// frame source and its slot is reused under a new generation.
    fn free_if_unused(&mut self, ino: Ino) {
        let Ok(inode) = self.inode(ino) else { return };
        if inode.nlink > 0 || inode.open > 0 {
            return;
        }
        let Some((slot, _)) = slot_of(ino) else {
            return;
        };
        let Some(inode) = self.slots[slot].inode.take() else {
            return;
        };
        if let Body::File(data) = inode.body {
            for (_, frame) in data.pages {
                self.give_back(frame);
            }
        }
        self.slots[slot].generation = self.slots[slot].generation.wrapping_add(1);
        // Capacity for every slot was reserved when the slot was made.
        self.free_slots.push(slot as u32);
        self.inodes_used -= 1;
    }

    /// The page whose frame is `frame` leaves the file: the frame goes back to the
    /// frame source, or, while a mapping pins it, becomes an orphan.
    fn give_back(&mut self, frame: PhysFrame) {
        match self.pin_slot(frame) {
            Ok(at) => self.pins[at].orphan = true,
            Err(_) => self.free_page(frame),
        }
    }

    fn free_page(&mut self, frame: PhysFrame) {
        let freed = self.frames.free_frame(frame);
        // A refused free would mean this file system's bookkeeping is wrong; the
        // frame is then lost rather than the kernel stopped.
        debug_assert!(freed.is_ok(), "tmpfs freed a frame it did not own");
        self.pages_used -= 1;
    }

    /// A zeroed frame for file data: ENOSPC at the size limit, ENOMEM when the
    /// frame source is empty.
    fn new_page(&mut self) -> Result<PhysFrame, Errno> {
        if self.pages_used >= self.limits.pages {
            return Err(ENOSPC);
        }
        let frame = self.frames.alloc_frame().map_err(|_| ENOMEM)?;
        self.pages_used += 1;
        if phys::zero_frame(frame).is_err() {
            self.give_back(frame);
            return Err(EIO);
        }
        Ok(frame)
    }

    fn pin_slot(&self, frame: PhysFrame) -> Result<usize, usize> {
        self.pins.binary_search_by_key(&frame, |p| p.frame)
    }

    /// mmap's view of page `index` of `ino`: its frame (a hole gets a zeroed
    /// page), pinned. ENXIO for a page wholly beyond the end of the file.
    fn pin_page(&mut self, ino: Ino, index: u64) -> Result<PhysFrame, Errno> {
        if index >= self.file(ino)?.size.div_ceil(PAGE_BYTES) {
            return Err(ENXIO);
        }
        reserve(&mut self.pins, 1)?;
        let frame = self.page_for_write(ino, index)?;
        self.add_pin(frame)?;
        Ok(frame)
    }

    /// One more pin of `frame` (room in the table was reserved for a new one).
    fn add_pin(&mut self, frame: PhysFrame) -> Result<(), Errno> {
        match self.pin_slot(frame) {
            Ok(at) => {
                let pin = &mut self.pins[at];
                pin.count = pin.count.checked_add(1).ok_or(ENOMEM)?;
            }
            Err(at) => self.pins.insert(
                at,
                Pin {
                    frame,
                    count: 1,
                    orphan: false,
                },
            ),
        }
        Ok(())
    }

    /// Another pin of a pinned frame (EINVAL if it is not pinned).
    fn repin(&mut self, frame: PhysFrame) -> Result<(), Errno> {
        self.pin_slot(frame).map_err(|_| EINVAL)?;
        self.add_pin(frame)
    }

    /// Drops a pin of `frame`; the last pin of an orphan frees it.
    fn unpin(&mut self, frame: PhysFrame) {
        let Ok(at) = self.pin_slot(frame) else {
            debug_assert!(false, "tmpfs unpinned a frame it had not pinned");
            return;
        };
        let pin = &mut self.pins[at];
        pin.count -= 1;
        if pin.count == 0 {
            let orphan = pin.orphan;
            self.pins.remove(at);
            if orphan {
                self.free_page(frame);
            }
        }
    }

    fn new_inode(&self, kind: FileKind, attrs: NodeAttrs, body: Body) -> Inode {
        let now = (self.clock)();
        Inode {
            kind,
            perm: attrs.perm & 0o7777,
            nlink: 1,
            uid: attrs.uid,
            gid: attrs.gid,
            rdev: DeviceId::default(),
            atime: now,
            mtime: now,
            ctime: now,
            open: 0,
            writers: 0,
            locks: None,
            body,
        }
    }

    /// Marks `dir` changed (an entry came or went).
    fn touch_dir(&mut self, dir: Ino) {
        let now = (self.clock)();
        if let Ok(d) = self.inode_mut(dir) {
            d.mtime = now;
            d.ctime = now;
        }
    }

    /// Whether `dir` is `ancestor` or lies below it.
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            match self.dir(dir) {
                Ok(d) if d.parent != dir => dir = d.parent,
                _ => return false,
            }
        }
    }

    /// Drops one name of `ino` (a directory loses all: it is removed).
    fn drop_link(&mut self, ino: Ino, parent: Ino) {
        let now = (self.clock)();
        let mut was_dir = false;
        if let Ok(inode) = self.inode_mut(ino) {
            was_dir = inode.kind == FileKind::Directory;
            inode.nlink = if was_dir { 0 } else { inode.nlink - 1 };
            inode.ctime = now;
        }
        if was_dir {
            if let Ok(p) = self.inode_mut(parent) {
                p.nlink -= 1;
            }
        }
        self.free_if_unused(ino);
    }

    fn file(&self, ino: Ino) -> Result<&FileData, Errno> {
        let inode = self.inode(ino)?;
        match &inode.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(EISDIR),
            _ => Err(EINVAL),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileData, Errno> {
        let inode = self.inode_mut(ino)?;
        match &mut inode.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(EISDIR),
            _ => Err(EINVAL),
        }
    }

    /// The frame of page `index` of `ino`, allocated (zeroed) if it was a hole.
    fn page_for_write(&mut self, ino: Ino, index: u64) -> Result<PhysFrame, Errno> {
        let at = match self.file(ino)?.page_slot(index) {
            Ok(at) => return Ok(self.file(ino)?.pages[at].1),
            Err(at) => at,
        };
        // Room in the list first, so a frame is never taken and then dropped.
        reserve(&mut self.file_mut(ino)?.pages, 1)?;
        let frame = self.new_page()?;
        self.file_mut(ino)?.pages.insert(at, (index, frame));
        Ok(frame)
    }

    fn write(&mut self, ino: Ino, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.file(ino)?;
        if buf.is_empty() {
            return Ok(0);
        }
        if offset >= MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let len = buf.len().min((MAX_FILE_SIZE - offset) as usize);
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let in_page = (at % PAGE_BYTES) as usize;
            let chunk = (len - done).min(PAGE_BYTES as usize - in_page);
            let step = self.page_for_write(ino, at / PAGE_BYTES).and_then(|frame| {
                let dst = PhysAddr(frame.start_address.0 + in_page as u64);
                phys::write_bytes(dst, &buf[done..done + chunk]).map_err(|_| EIO)
            });
            match step {
                Ok(()) => done += chunk,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        let now = (self.clock)();
        let inode = self.inode_mut(ino)?;
        inode.mtime = now;
        inode.ctime = now;
        let file = self.file_mut(ino)?;
        file.size = file.size.max(offset + done as u64);
        Ok(done)
    }

    /// [`FileSystem::read_append`]: page by page straight from the file's frames
    /// (holes as zeros), nothing zero-filled first.
    fn read_append(
        &self,
        ino: Ino,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, Errno> {
        let file = self.file(ino)?;
        let len = len.min(file.size.saturating_sub(offset).min(usize::MAX as u64) as usize);
        reserve(out, len)?;
        let start = out.len();
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let in_page = (at % PAGE_BYTES) as usize;
            let chunk = (len - done).min(PAGE_BYTES as usize - in_page);
            match file.page_slot(at / PAGE_BYTES) {
                Ok(i) => {
                    let src = PhysAddr(file.pages[i].1.start_address.0 + in_page as u64);
                    if phys::append_bytes(src, chunk, out).is_err() {
                        out.truncate(start);
                        return Err(EIO);
                    }
                }
                Err(_) => out.resize(out.len() + chunk, 0),
            }
            done += chunk;
        }
        Ok(done)
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let file = self.file(ino)?;
        if offset >= file.size {
            return Ok(0);
        }
        let len = buf
            .len()
            .min((file.size - offset).min(usize::MAX as u64) as usize);
        let mut done = 0;
        while done < len {
            let at = offset + done as u64;
            let in_page = (at % PAGE_BYTES) as usize;
            let chunk = (len - done).min(PAGE_BYTES as usize - in_page);
            let out = &mut buf[done..done + chunk];
            match file.page_slot(at / PAGE_BYTES) {
                Ok(i) => {
                    let src = PhysAddr(file.pages[i].1.start_address.0 + in_page as u64);
                    phys::read_bytes(src, out).map_err(|_| EIO)?;
                }
                Err(_) => out.fill(0),
            }
            done += chunk;
        }
        Ok(done)
    }

    fn truncate(&mut self, ino: Ino, size: u64) -> Result<(), Errno> {
        self.file(ino)?;
        if size > MAX_FILE_SIZE {
            return Err(EFBIG);
        }
        let keep = size.div_ceil(PAGE_BYTES);
        // Pages past the new end go back one by one from the top (no list of them
        // is built: freeing must not need memory).
        loop {
            let file = self.file_mut(ino)?;
            match file.pages.last() {
                Some(&(index, frame)) if index >= keep => {
                    file.pages.pop();
                    self.give_back(frame);
                }
                _ => break,
            }
        }
        let file = self.file_mut(ino)?;
        // The kept part of the last page must read as zeros if the file grows again.
        let tail = (!size.is_multiple_of(PAGE_BYTES))
            .then(|| file.page_slot(size / PAGE_BYTES).ok())
            .flatten()
            .map(|i| file.pages[i].1);
        file.size = size;
        if let Some(frame) = tail {
            let from = size % PAGE_BYTES;
            phys::zero(PhysAddr(frame.start_address.0 + from), PAGE_BYTES - from)
                .map_err(|_| EIO)?;
        }
        let now = (self.clock)();
        let inode = self.inode_mut(ino)?;
        inode.mtime = now;
        inode.ctime = now;
        Ok(())
    }

    fn create(
        &mut self,
        dir: Ino,
        name: &[u8],
        node: NewNode<'_>,
        attrs: NodeAttrs,
    ) -> Result<Ino, Errno> {
        check_name(name)?;
        self.check_new_entry(dir, name)?;
        let body = match node {
            NewNode::Regular => Body::File(FileData {
                size: 0,
                pages: Vec::new(),
            }),
            NewNode::Directory => Body::Dir(Directory {
                parent: dir,
                entries: Vec::new(),
                next_cookie: FIRST_COOKIE,
            }),
            NewNode::Symlink(target) => Body::Link(copy_bytes(target)?),
            NewNode::CharDevice(_) | NewNode::Fifo => Body::Special(None),
        };
        let owned_name = copy_bytes(name)?;
        reserve(&mut self.dir_mut(dir)?.entries, 1)?;
        let kind = node.kind();
        let mut inode = self.new_inode(kind, attrs, body);
        if let NewNode::CharDevice(id) = node {
            inode.rdev = id;
        }
        if kind == FileKind::Directory {
            inode.nlink = 2;
        }
        let ino = self.insert_inode(inode)?;
        self.dir_mut(dir)?.push(owned_name, ino, kind);
        if kind == FileKind::Directory {
            self.inode_mut(dir)?.nlink += 1;
        }
        self.touch_dir(dir);
        Ok(ino)
    }

    fn link(&mut self, dir: Ino, name: &[u8], target: Ino) -> Result<(), Errno> {
        check_name(name)?;
        self.inode(target)?;
        // Linux's order: a taken name (EEXIST) before a directory source (EPERM).
        self.check_new_entry(dir, name)?;
        let t = self.inode(target)?;
        if t.kind == FileKind::Directory {
            return Err(EPERM);
        }
        // An open file whose last name is gone cannot get a new one (Linux: ENOENT).
        if t.nlink == 0 {
            return Err(ENOENT);
        }
        let kind = t.kind;
        let owned_name = copy_bytes(name)?;
        reserve(&mut self.dir_mut(dir)?.entries, 1)?;
        self.dir_mut(dir)?.push(owned_name, target, kind);
        let now = (self.clock)();
        let t = self.inode_mut(target)?;
        t.nlink += 1;
        t.ctime = now;
        self.touch_dir(dir);
        Ok(())
    }

    fn remove(&mut self, dir: Ino, name: &[u8], expect: RemoveKind) -> Result<(), Errno> {
        let entry = self.dir(dir)?.find(name).ok_or(ENOENT)?;
        let (ino, kind) = (entry.ino, entry.kind);
        match (expect, kind) {
            (RemoveKind::NonDirectory, FileKind::Directory) => return Err(EISDIR),
            (RemoveKind::Directory, FileKind::Directory) => {
                if !self.dir(ino)?.entries.is_empty() {
                    return Err(ENOTEMPTY);
                }
            }
            (RemoveKind::Directory, _) => return Err(ENOTDIR),
            (RemoveKind::NonDirectory, _) => {}
        }
        self.dir_mut(dir)?.take(name);
        self.touch_dir(dir);
        self.drop_link(ino, dir);
        Ok(())
    }

    fn rename(
        &mut self,
        from: (Ino, &[u8]),
        to: (Ino, &[u8]),
        mode: RenameMode,
    ) -> Result<(), Errno> {
        check_name(to.1)?;
        self.dir(from.0)?;
        self.dir(to.0)?;
        if self.inode(to.0)?.nlink == 0 {
            return Err(ENOENT);
        }
        let src = self.dir(from.0)?.find(from.1).ok_or(ENOENT)?;
        let (src_ino, src_kind) = (src.ino, src.kind);
        let dst = self.dir(to.0)?.find(to.1).map(|e| (e.ino, e.kind));
        if mode == RenameMode::Exchange {
            let (dst_ino, dst_kind) = dst.ok_or(ENOENT)?;
            return self.exchange(from, (src_ino, src_kind), to, (dst_ino, dst_kind));
        }
        if mode == RenameMode::NoReplace && dst.is_some() {
            return Err(EEXIST);
        }
        // Linux's order: the source an ancestor of the target (EINVAL), the
        // target an ancestor of the source (ENOTEMPTY), then the kinds.
        if src_kind == FileKind::Directory && self.is_within(to.0, src_ino) {
            return Err(EINVAL);
        }
        if let Some((dst_ino, FileKind::Directory)) = dst {
            if self.is_within(from.0, dst_ino) {
                return Err(ENOTEMPTY);
            }
        }
        if dst.is_some_and(|(ino, _)| ino == src_ino) {
            return Ok(()); // two names of one inode: Linux does nothing
        }
        if let Some((dst_ino, dst_kind)) = dst {
            check_replace(src_kind, dst_kind)?;
            if dst_kind == FileKind::Directory && !self.dir(dst_ino)?.entries.is_empty() {
                return Err(ENOTEMPTY);
            }
        }
        let new_name = copy_bytes(to.1)?;
        reserve(&mut self.dir_mut(to.0)?.entries, 1)?;
        // Nothing below can fail.
        self.dir_mut(from.0)?.take(from.1);
        if let Some((dst_ino, _)) = dst {
            self.dir_mut(to.0)?.take(to.1);
            self.drop_link(dst_ino, to.0);
        }
        self.dir_mut(to.0)?.push(new_name, src_ino, src_kind);
        if src_kind == FileKind::Directory && from.0 != to.0 {
            self.reparent(src_ino, from.0, to.0);
        }
        self.touch_dir(from.0);
        self.touch_dir(to.0);
        Ok(())
    }

    /// Moves directory `dir` from parent `old` to parent `new` (link counts).
    fn reparent(&mut self, dir: Ino, old: Ino, new: Ino) {
        if let Ok(d) = self.dir_mut(dir) {
            d.parent = new;
        }
        if let Ok(o) = self.inode_mut(old) {
            o.nlink -= 1;
        }
        if let Ok(n) = self.inode_mut(new) {
            n.nlink += 1;
        }
    }

    /// RENAME_EXCHANGE: the two entries swap inodes.
    fn exchange(
        &mut self,
        from: (Ino, &[u8]),
        src: (Ino, FileKind),
        to: (Ino, &[u8]),
        dst: (Ino, FileKind),
    ) -> Result<(), Errno> {
        if src.0 == dst.0 {
            return Ok(());
        }
        let src_dir = src.1 == FileKind::Directory;
        let dst_dir = dst.1 == FileKind::Directory;
        if (src_dir && self.is_within(to.0, src.0)) || (dst_dir && self.is_within(from.0, dst.0)) {
            return Err(EINVAL);
        }
        for (dir, name, (ino, kind)) in [(from.0, from.1, dst), (to.0, to.1, src)] {
            let d = self.dir_mut(dir)?;
            let at = d.position(name).ok_or(ENOENT)?;
            d.entries[at].ino = ino;
            d.entries[at].kind = kind;
        }
        if from.0 != to.0 {
            if src_dir {
                self.reparent(src.0, from.0, to.0);
            }
            if dst_dir {
                self.reparent(dst.0, to.0, from.0);
            }
        }
        self.touch_dir(from.0);
        self.touch_dir(to.0);
        Ok(())
    }

    fn stat(&self, ino: Ino, dev: DeviceId) -> Result<Stat, Errno> {
        let i = self.inode(ino)?;
        let (size, pages) = match &i.body {
            Body::File(f) => (f.size, f.pages.len() as u64),
            Body::Dir(d) => (2 * DIRENT_SIZE + DIRENT_SIZE * d.entries.len() as u64, 0),
            Body::Link(t) => (t.len() as u64, 0),
            Body::Special(_) => (0, 0),
        };
        Ok(Stat {
            ino,
            dev,
            kind: i.kind,
            perm: i.perm,
            nlink: i.nlink,
            uid: i.uid,
            gid: i.gid,
            size,
            blocks: pages * (PAGE_BYTES / 512),
            rdev: i.rdev,
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
        })
    }

    fn read_dir(&self, dir: Ino, cookie: u64) -> Result<Option<DirEntry>, Errno> {
        let d = self.dir(dir)?;
        // A removed directory lists nothing, not even `.` (Linux: ENOENT).
        if self.inode(dir)?.nlink == 0 {
            return Err(ENOENT);
        }
        let (ino, kind, name, next): (Ino, FileKind, &[u8], u64) = match cookie {
            0 => (dir, FileKind::Directory, b".", 1),
            1 => (d.parent, FileKind::Directory, b"..", FIRST_COOKIE),
            _ => {
                let at = d.entries.partition_point(|e| e.cookie < cookie);
                let Some(e) = d.entries.get(at) else {
                    return Ok(None);
                };
                (e.ino, e.kind, &e.name, e.cookie + 1)
            }
        };
        Ok(Some(DirEntry {
            ino,
            kind,
            name: copy_bytes(name)?,
            next,
        }))
    }

    fn set_attr(&mut self, ino: Ino, change: &SetAttr) -> Result<(), Errno> {
        let now = (self.clock)();
        let at = |t: TimeChange| match t {
            TimeChange::Now => now,
            TimeChange::At(n) => n,
        };
        let i = self.inode_mut(ino)?;
        if let Some(perm) = change.perm {
            i.perm = perm & 0o7777;
        }
        if let Some(uid) = change.uid {
            i.uid = uid;
        }
        if let Some(gid) = change.gid {
            i.gid = gid;
        }
        if let Some(t) = change.atime {
            i.atime = at(t);
        }
        if let Some(t) = change.mtime {
            i.mtime = at(t);
        }
        i.ctime = now;
        Ok(())
    }
}

/// The rename rule for a target that exists: a directory only replaces a
/// directory (else ENOTDIR), a non-directory only a non-directory (else EISDIR).
fn check_replace(src: FileKind, dst: FileKind) -> Result<(), Errno> {
    match (src == FileKind::Directory, dst == FileKind::Directory) {
        (true, false) => Err(ENOTDIR),
        (false, true) => Err(EISDIR),
        _ => Ok(()),
    }
}

/// A name the VFS should have refused already; checked again so the file system
/// never stores one.
fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(super::errno::ENAMETOOLONG);
    }
    Ok(())
}

impl<F: FrameSource> Tmpfs<F> {
    /// An empty tmpfs (a root directory with permissions `root_perm`, owned by
    /// root) that takes pages from `frames`, reports device `dev` and stamps times
    /// with `clock`.
    pub fn new(
        frames: F,
        limits: TmpfsLimits,
        dev: DeviceId,
        clock: Clock,
        root_perm: u32,
    ) -> Self {
        let mut state = State {
            frames,
            clock,
            limits,
            slots: Vec::new(),
            free_slots: Vec::new(),
            pages_used: 0,
            inodes_used: 0,
            pins: Vec::new(),
        };
        let body = Body::Dir(Directory {
            parent: ROOT,
            entries: Vec::new(),
            next_cookie: FIRST_COOKIE,
        });
        let mut root = state.new_inode(FileKind::Directory, NodeAttrs::root(root_perm), body);
        root.nlink = 2;
        // The root's slot is the first one, so its number is ROOT; the root is not
        // counted against the inode limit's user part but is an inode like others.
        state.slots.push(Slot {
            generation: 0,
            inode: Some(root),
        });
        state.free_slots.reserve(1);
        state.inodes_used = 1;
        Tmpfs {
            state: IrqMutex::new(state),
            dev,
        }
    }

    /// Data pages (frames) held now.
    pub fn pages_used(&self) -> u64 {
        self.state.lock().pages_used
    }

    /// Live inodes now, the root included.
    pub fn inodes_used(&self) -> u64 {
        self.state.lock().inodes_used
    }
}

impl<F: FrameSource> Drop for Tmpfs<F> {
    /// Gives every page back: an unmounted tmpfs leaks no frame.
    fn drop(&mut self) {
        let mut state = self.state.lock();
        for slot in 0..state.slots.len() {
            let pages = match &mut state.slots[slot].inode {
                Some(Inode {
                    body: Body::File(data),
                    ..
                }) => core::mem::take(&mut data.pages),
                _ => continue,
            };
            for (_, frame) in pages {
                state.give_back(frame);
            }
        }
        // No mapping can hold a pin any more (it would hold the file system).
        for pin in core::mem::take(&mut state.pins) {
            state.free_page(pin.frame);
        }
    }
}

impl<F: FrameSource + Send + 'static> FileSystem for Tmpfs<F> {
    fn root(&self) -> Ino {
        ROOT
    }
    fn stat(&self, ino: Ino) -> Result<Stat, Errno> {
        self.state.lock().stat(ino, self.dev)
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        let state = self.state.lock();
        state.dir(dir)?.find(name).map(|e| e.ino).ok_or(ENOENT)
    }
    fn parent(&self, dir: Ino) -> Result<Ino, Errno> {
        Ok(self.state.lock().dir(dir)?.parent)
    }
    fn create(
        &self,
        dir: Ino,
        name: &[u8],
        node: NewNode<'_>,
        attrs: NodeAttrs,
    ) -> Result<Ino, Errno> {
        self.state.lock().create(dir, name, node, attrs)
    }
    fn link(&self, dir: Ino, name: &[u8], target: Ino) -> Result<(), Errno> {
        self.state.lock().link(dir, name, target)
    }
    fn remove(&self, dir: Ino, name: &[u8], expect: RemoveKind) -> Result<(), Errno> {
        self.state.lock().remove(dir, name, expect)
    }
    fn rename(
        &self,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
        mode: RenameMode,
    ) -> Result<(), Errno> {
        self.state
            .lock()
            .rename((from_dir, from_name), (to_dir, to_name), mode)
    }
    fn read_link(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        match &self.state.lock().inode(ino)?.body {
            Body::Link(target) => copy_bytes(target),
            _ => Err(EINVAL),
        }
    }
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.state.lock().read(ino, offset, buf)
    }
    fn read_append(
        &self,
        ino: Ino,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, Errno> {
        self.state.lock().read_append(ino, offset, len, out)
    }
    fn write(&self, ino: Ino, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.state.lock().write(ino, offset, buf)
    }
    fn truncate(&self, ino: Ino, size: u64) -> Result<(), Errno> {
        self.state.lock().truncate(ino, size)
    }
    fn read_dir(&self, dir: Ino, cookie: u64) -> Result<Option<DirEntry>, Errno> {
        self.state.lock().read_dir(dir, cookie)
    }
    fn set_attr(&self, ino: Ino, change: &SetAttr) -> Result<(), Errno> {
        self.state.lock().set_attr(ino, change)
    }
    fn statfs(&self) -> StatFs {
        let s = self.state.lock();
        StatFs {
            magic: TMPFS_MAGIC,
            block_size: PAGE_BYTES,
            blocks: s.limits.pages,
            blocks_free: s.limits.pages.saturating_sub(s.pages_used),
            files: s.limits.inodes,
            files_free: s.limits.inodes.saturating_sub(s.inodes_used),
            name_max: NAME_MAX as u64,
        }
    }
    fn retain(&self, ino: Ino) -> Result<(), Errno> {
        let mut s = self.state.lock();
        let inode = s.inode_mut(ino)?;
        inode.open = inode.open.checked_add(1).ok_or(ENOMEM)?;
        Ok(())
    }
    fn release(&self, ino: Ino) {
        let mut s = self.state.lock();
        if let Ok(inode) = s.inode_mut(ino) {
            inode.open = inode.open.saturating_sub(1);
        }
        s.free_if_unused(ino);
    }
    fn start_writing(&self, ino: Ino) {
        if let Ok(inode) = self.state.lock().inode_mut(ino) {
            inode.writers = inode.writers.saturating_add(1);
        }
    }
    fn stop_writing(&self, ino: Ino) {
        if let Ok(inode) = self.state.lock().inode_mut(ino) {
            inode.writers = inode.writers.saturating_sub(1);
        }
    }
    fn writers(&self, ino: Ino) -> u32 {
        self.state.lock().inode(ino).map_or(0, |i| i.writers)
    }
    fn lock_table(&self, ino: Ino, lookup: TableLookup) -> Option<Arc<LockTable>> {
        let mut s = self.state.lock();
        let inode = s.inode_mut(ino).ok()?;
        if lookup == TableLookup::OrCreate && inode.locks.is_none() {
            inode.locks = Some(Arc::new(LockTable::new()));
        }
        inode.locks.clone()
    }
    fn fifo_pipe(
        &self,
        ino: Ino,
        make: &mut dyn FnMut() -> SharedPipe,
    ) -> Result<SharedPipe, Errno> {
        let mut s = self.state.lock();
        let inode = s.inode_mut(ino)?;
        if inode.kind != FileKind::Fifo {
            return Err(ENXIO);
        }
        let Body::Special(slot) = &mut inode.body else {
            return Err(ENXIO);
        };
        if let Some(pipe) = slot.as_ref().and_then(Weak::upgrade) {
            return Ok(pipe);
        }
        let pipe = make();
        *slot = Some(Arc::downgrade(&pipe));
        Ok(pipe)
    }
    fn maps_files(&self) -> bool {
        true
    }
    fn pin_page(&self, ino: Ino, index: u64) -> Result<PhysFrame, Errno> {
        self.state.lock().pin_page(ino, index)
    }
    fn repin_page(&self, _ino: Ino, frame: PhysFrame) -> Result<(), Errno> {
        self.state.lock().repin(frame)
    }
    fn unpin_page(&self, _ino: Ino, frame: PhysFrame) {
        self.state.lock().unpin(frame)
    }
}

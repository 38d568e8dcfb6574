//! Advisory record locks (fcntl's POSIX locks and open-file-description locks): one
//! [`LockTable`] per inode (Linux's `i_flctx`), kept by the file system
//! ([`super::FileSystem::lock_table`]) and made on the first lock.
//!
//! ## What it owns
//! * The locks of one inode: byte ranges `[start, end]` (inclusive; an `end` of
//!   [`OFFSET_MAX`] is "to the end of the file, however it grows"), each read or
//!   write, each held by an [`Owner`]: a process for POSIX locks, an open file
//!   description for OFD locks.
//! * The rules, as Linux's `posix_lock_inode` has them: two locks conflict when
//!   their owners differ, their ranges overlap and one of them is a write lock. Setting
//!   a lock replaces the owner's own locks over its range (splitting a lock that
//!   sticks out on either side) and merges it with the owner's locks of the same
//!   type that overlap or touch it; unlocking removes the owner's locks over the
//!   range, splitting one that sticks out. So one owner's locks never overlap, and
//!   two of them of one type never touch.
//! * The queue that lock waiters (F_SETLKW) join; every change wakes it, and each
//!   woken waiter tries again.
//!
//! ## Invariants
//! The list is sorted by (start, owner). Setting a lock needs at most two more
//! entries (one lock split in two, plus the new one); that room is reserved before
//! anything changes, so a lock that cannot be recorded (ENOLCK) changes nothing and
//! nothing here panics on what a user asks.
//!
//! ## Locks
//! The list's lock is a leaf; the queue is woken after it is dropped.
#![deny(unsafe_code)]

use crate::process::wait_queue::WaitQueue;
use crate::process::Pid;
use crate::sync::IrqMutex;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The largest offset (Linux's `OFFSET_MAX`): a lock ending here runs to the end of
/// the file whatever its size.
pub const OFFSET_MAX: u64 = i64::MAX as u64;

/// Who holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// A POSIX lock of this process: every fd the process has on the inode shares
    /// it, and closing any of them releases it.
    Process(Pid),
    /// An OFD lock of the open file description with this identity (its address):
    /// released when the description goes.
    Description(usize),
}

/// A lock's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Shared (`F_RDLCK`): any number of owners may read-lock a byte.
    Read,
    /// Exclusive (`F_WRLCK`): no other owner may lock the byte.
    Write,
}

/// A range of bytes, `start..=end`, with `start <= end <= OFFSET_MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    start: u64,
    end: u64,
}

impl ByteRange {
    /// `start..=end`; `None` unless `start <= end <= OFFSET_MAX`.
    pub fn new(start: u64, end: u64) -> Option<ByteRange> {
        (start <= end && end <= OFFSET_MAX).then_some(ByteRange { start, end })
    }

    /// From `start` to the end of the file (`l_len` 0).
    pub fn to_end(start: u64) -> Option<ByteRange> {
        ByteRange::new(start, OFFSET_MAX)
    }

    /// The first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The last byte ([`OFFSET_MAX`]: to the end of the file).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Its `l_len`: the byte count, 0 for a range to the end of the file.
    pub fn flock_len(&self) -> u64 {
        match self.end {
            OFFSET_MAX => 0,
            end => end - self.start + 1,
        }
    }

    fn overlaps(&self, other: &ByteRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// Whether the two overlap or one starts right after the other ends.
    fn touches(&self, other: &ByteRange) -> bool {
        self.start <= other.end.saturating_add(1) && other.start <= self.end.saturating_add(1)
    }
}

/// One lock held on a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    /// Who holds it.
    pub owner: Owner,
    /// Read or write.
    pub kind: LockKind,
    /// The bytes it covers.
    pub range: ByteRange,
}

impl Lock {
    /// Whether `self` keeps `owner` from taking a `kind` lock on `range`.
    fn blocks(&self, owner: Owner, kind: LockKind, range: &ByteRange) -> bool {
        self.owner != owner
            && self.range.overlaps(range)
            && (self.kind == LockKind::Write || kind == LockKind::Write)
    }
}

/// Why a lock was not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetLockError {
    /// Another owner's lock is in the way (F_SETLK: EAGAIN; F_SETLKW waits).
    Conflict,
    /// The kernel heap cannot record one more lock (ENOLCK).
    NoMemory,
}

/// The locks of one inode, without their lock (the rules; see the module docs).
#[derive(Debug, Default)]
pub struct LockList {
    /// Sorted by (start, owner).
    locks: Vec<Lock>,
}

impl LockList {
    /// No locks.
    pub const fn new() -> Self {
        LockList { locks: Vec::new() }
    }

    /// Every lock, sorted by start.
    pub fn locks(&self) -> &[Lock] {
        &self.locks
    }

    /// F_GETLK: the first lock (by start) that keeps `owner` from a `kind` lock on
    /// `range`, if any.
    pub fn conflict(&self, owner: Owner, kind: LockKind, range: &ByteRange) -> Option<Lock> {
        self.locks
            .iter()
            .find(|l| l.blocks(owner, kind, range))
            .copied()
    }

    /// F_SETLK: `owner` holds a `kind` lock on `range` (`None`: unlocks it). Changes
    /// nothing on an error.
    pub fn set(
        &mut self,
        owner: Owner,
        kind: Option<LockKind>,
        range: ByteRange,
    ) -> Result<(), SetLockError> {
        if let Some(k) = kind {
            if self.conflict(owner, k, &range).is_some() {
                return Err(SetLockError::Conflict);
            }
        }
        self.locks
            .try_reserve(2)
            .map_err(|_| SetLockError::NoMemory)?;
        let mut new = range;
        let mut pieces: [Option<Lock>; 2] = [None, None];
        self.locks.retain(|l| {
            if l.owner != owner || !l.range.touches(&range) {
                return true;
            }
            if Some(l.kind) == kind {
                // Same type, overlapping or touching: the new lock takes it in.
                new.start = new.start.min(l.range.start);
                new.end = new.end.max(l.range.end);
                return false;
            }
            if !l.range.overlaps(&range) {
                return true;
            }
            if l.range.start < range.start {
                let left = ByteRange::new(l.range.start, range.start - 1);
                pieces[0] = left.map(|range| Lock { range, ..*l });
            }
            if l.range.end > range.end {
                let right = ByteRange::new(range.end + 1, l.range.end);
                pieces[1] = right.map(|range| Lock { range, ..*l });
            }
            false
        });
        // At most two pieces and one new lock, in the room reserved above (the
        // retain removed at least one lock for each piece).
        self.locks.extend(pieces.into_iter().flatten());
        if let Some(kind) = kind {
            self.locks.push(Lock {
                owner,
                kind,
                range: new,
            });
        }
        self.locks
            .sort_unstable_by_key(|l| (l.range.start, l.owner));
        Ok(())
    }

    /// Removes every lock of `owner`; whether there were any.
    pub fn release(&mut self, owner: Owner) -> bool {
        let before = self.locks.len();
        self.locks.retain(|l| l.owner != owner);
        self.locks.len() != before
    }
}

/// One inode's locks and the queue of those waiting to lock it.
#[derive(Debug, Default)]
pub struct LockTable {
    list: IrqMutex<LockList>,
    waiters: Arc<WaitQueue>,
}

impl LockTable {
    /// No locks, no waiters.
    pub fn new() -> Self {
        LockTable::default()
    }

    /// See [`LockList::conflict`].
    pub fn conflict(&self, owner: Owner, kind: LockKind, range: &ByteRange) -> Option<Lock> {
        self.list.lock().conflict(owner, kind, range)
    }

    /// See [`LockList::set`]; a change wakes the waiters.
    pub fn set(
        &self,
        owner: Owner,
        kind: Option<LockKind>,
        range: ByteRange,
    ) -> Result<(), SetLockError> {
        self.list.lock().set(owner, kind, range)?;
        self.waiters.wake_all();
        Ok(())
    }

    /// Removes every lock of `owner` (a close, an exit, the last reference to a
    /// description gone), waking the waiters if there were any.
    pub fn release(&self, owner: Owner) {
        let released = self.list.lock().release(owner);
        if released {
            self.waiters.wake_all();
        }
    }

    /// The queue F_SETLKW waits on.
    pub fn queue(&self) -> &Arc<WaitQueue> {
        &self.waiters
    }

    /// A copy of every lock (for tests and diagnostics).
    pub fn snapshot(&self) -> Vec<Lock> {
        self.list.lock().locks().to_vec()
    }
}

/// Whether [`super::FileSystem::lock_table`] makes a table for an inode that has
/// none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableLookup {
    /// Only a table that exists (releasing: no table, no locks).
    Existing,
    /// Make one if need be (a lock is being set or tested).
    OrCreate,
}

#[cfg(test)]
#[path = "locks_tests.rs"]
mod tests;

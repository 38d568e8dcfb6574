//! Lanes: what a CPU reaches of its running thread's process without the process
//! table, so that the commonest system calls and page faults of different processes
//! run on different CPUs at once.
//!
//! ## What it owns
//! * [`SpaceCell`]: an address space behind a lock of its own. The table holds one
//!   `Arc` per space (`ProcessTable::space_mut` locks it); the CPUs running the
//!   space's threads hold more. Tearing a space down takes it out of its cell
//!   ([`SpaceCell::take`]): a CPU that still holds the cell then finds it empty
//!   ([`SpaceCell::lock_live`] says `None`) and falls back to the table, which knows
//!   the thread is gone.
//! * One [`Lane`] per CPU: the running user thread's space cell and a weak reference
//!   to its fd table, set by the switch (`task::activate`, under the table lock, so
//!   it always matches the installed page-table root) and cleared when no user
//!   thread runs. Weak, so a lane never keeps an exited process's files (and their
//!   pipe ends) open.
//!
//! What uses it: `syscall::fast` (clock calls, reads and writes of pipes that need
//! not wait) and [`super::handle_user_fault`] (demand-zero and copy-on-write faults
//! of anonymous memory). Anything else, or anything that would wait, signal or
//! touch another process, goes the slow way through the table. Signal delivery and
//! rt_sigreturn (`task::with_own_space_in`) also take the running thread's space from
//! the lane, but under the table lock (the lane's lock after it, as the switch
//! takes them), to save the table's look-ups.
//!
//! ## Locks
//! A CPU's lane lock is taken only by that CPU, with interrupts off, and never
//! twice: by the switch to replace what is in it, and by [`with`] around a fast
//! call or fault, which takes the locks below the table inside it. No other CPU
//! waits for it, so it orders nothing against them. Order of the rest: process table,
//! then an fd table, then a file's lock, then a space cell, then a pipe, then the
//! frame allocator. The fast paths start below the table: the fd table (released
//! once the pipe is found), a space cell, a pipe. A space cell's holder never takes
//! the table, an fd table or a file's lock, so a fast page fault leaves file mappings
//! to the slow path (a file read holds the file's lock while it copies into a space;
//! a fault that took a space's lock and then a file's would invert that order, and
//! under the table lock both are serialised).
//!
//! A space cell's lock is a halting one: a fast fault or a fork's copy that finds it
//! held halts its CPU after a short spin, keeping its thread
//! ([`SpaceCell::lock_live_in_place`]); under the table the wait spins
//! ([`SpaceCell::lock_live`]). A switch reads the space's root without the lock
//! ([`SpaceCell::root`]), and x86_64's fast pipe calls copy through the MMU without
//! it ([`SpaceCell::read_user_unlocked`]).

use super::table::UserSpace;
use crate::memory::frame_allocator::{FrameSource, GlobalFrames};
use crate::memory::{PhysAddr, PhysFrame};
use crate::smp::MAX_CPUS;
use crate::sync::{Halting, IrqMutex, IrqMutexGuard};
use crate::syscall::fd::{FdTable, Files};
use alloc::sync::{Arc, Weak};
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, Ordering};

/// An address space behind its own lock (see the module docs). The lock halts its
/// waiters that hold no lock but a lane ([`SpaceCell::lock_live_in_place`]).
pub struct SpaceCell<A: FrameSource + Clone> {
    space: IrqMutex<Option<UserSpace<A>>, Halting>,
    /// The space's root table (it never changes), 0 once the space is taken out:
    /// what a switch installs, read without the lock.
    root: AtomicU64,
}

/// A locked, live address space.
pub struct SpaceGuard<'a, A: FrameSource + Clone>(IrqMutexGuard<'a, Option<UserSpace<A>>, Halting>);

impl<A: FrameSource + Clone> SpaceCell<A> {
    /// A cell holding `space`.
    pub fn new(space: UserSpace<A>) -> Arc<Self> {
        let root = AtomicU64::new(space.root().start_address.0);
        Arc::new(SpaceCell {
            space: IrqMutex::halting(Some(space)),
            root,
        })
    }

    /// The space's root table while it is live. Its only change is to `None`, when
    /// the space is taken out: a caller holding the table (under which spaces are
    /// torn down) gets the answer that holds until it lets go. A switch installs
    /// this without waiting for the space's lock, which the process's faults hold.
    pub fn root(&self) -> Option<PhysFrame> {
        match self.root.load(Ordering::Acquire) {
            0 => None,
            at => Some(PhysFrame::containing_address(PhysAddr(at))),
        }
    }

    /// Locks the space, if it has not been torn down; a contended wait spins (the
    /// caller may hold the table).
    pub fn lock_live(&self) -> Option<SpaceGuard<'_, A>> {
        let guard = self.space.lock();
        guard.is_some().then_some(SpaceGuard(guard))
    }

    /// [`lock_live`](Self::lock_live) for a caller that holds no lock but its
    /// CPU's lane (a fast page fault, a fork's copy): a contended wait halts the
    /// CPU, keeping the thread on it ([`IrqMutex::lock_in_place`]). Faults of the
    /// threads of one process wait here for each other and for a munmap that waits
    /// for their TLB flushes; spinning, they kept the host from running the vCPUs
    /// they waited for.
    pub fn lock_live_in_place(&self) -> Option<SpaceGuard<'_, A>> {
        let guard = self.space.lock_in_place();
        guard.is_some().then_some(SpaceGuard(guard))
    }

    /// Copies user memory at `src` of this space into `buf` through the MMU, without
    /// the space's lock, where the arch can (`arch::uaccess`): whether all of it was
    /// copied (else the caller copies it under the lock, which also faults pages in
    /// and answers EFAULT). For a CPU that runs this space (its lane's) with
    /// interrupts masked: as for a user access, no frame it reaches is freed before
    /// the copy ends (see `arch::uaccess`). Saves the space's lock on each copy of a
    /// pipe's bytes.
    pub fn read_user_unlocked(&self, src: u64, buf: &mut [u8]) -> bool {
        use crate::arch::uaccess;
        uaccess::THROUGH_MMU
            && self
                .root()
                .is_some_and(|root| uaccess::read_user(root, src, buf) == buf.len())
    }

    /// [`read_user_unlocked`](Self::read_user_unlocked) the other way: `data` to
    /// user memory at `dst`.
    pub fn write_user_unlocked(&self, dst: u64, data: &[u8]) -> bool {
        use crate::arch::uaccess;
        uaccess::THROUGH_MMU
            && self
                .root()
                .is_some_and(|root| uaccess::write_user(root, dst, data) == data.len())
    }

    /// Takes the space out (to tear it down): later lockers find the cell empty.
    pub fn take(&self) -> Option<UserSpace<A>> {
        let mut space = self.space.lock();
        self.root.store(0, Ordering::Release);
        space.take()
    }
}

impl<A: FrameSource + Clone> Deref for SpaceGuard<'_, A> {
    type Target = UserSpace<A>;
    fn deref(&self) -> &UserSpace<A> {
        // A guard is only made of a live cell, and only `take` empties one.
        self.0.as_ref().expect("a live space")
    }
}

impl<A: FrameSource + Clone> DerefMut for SpaceGuard<'_, A> {
    fn deref_mut(&mut self) -> &mut UserSpace<A> {
        self.0.as_mut().expect("a live space")
    }
}

/// The kernel's address-space cells.
pub type SharedSpace = Arc<SpaceCell<GlobalFrames>>;

/// What one CPU reaches of its running user thread without the table.
struct Lane {
    space: Option<SharedSpace>,
    files: Option<Weak<IrqMutex<FdTable>>>,
}

static LANES: [IrqMutex<Lane>; MAX_CPUS] = [const {
    IrqMutex::new(Lane {
        space: None,
        files: None,
    })
}; MAX_CPUS];

/// What a CPU did without the table, counted (for tests and `/proc`-style looks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A system call answered from the lane (`syscall::fast`, getpid, gettid).
    Call = 0,
    /// A page fault resolved in the lane's space.
    Fault = 1,
}

/// Per-CPU counts of [`Kind`]s, a cache line each.
#[repr(align(64))]
struct Counts([AtomicU64; 2]);

static COUNTS: [Counts; MAX_CPUS] =
    [const { Counts([AtomicU64::new(0), AtomicU64::new(0)]) }; MAX_CPUS];

/// Counts one `kind` on the calling CPU. Only that CPU writes its counts, and never
/// from an interrupt (calls and user faults only): a plain load and store do, no
/// locked read-modify-write on the fast path.
pub fn count(kind: Kind) {
    let c = &COUNTS[crate::smp::this_index()].0[kind as usize];
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// How many `kind`s CPU `cpu` did so far.
pub fn counted(cpu: usize, kind: Kind) -> u64 {
    COUNTS
        .get(cpu)
        .map_or(0, |c| c.0[kind as usize].load(Ordering::Relaxed))
}

fn here() -> &'static IrqMutex<Lane> {
    &LANES[crate::smp::this_index()]
}

/// The calling CPU now runs a thread of the process whose space and files these are
/// (`None`: no user thread). What the lane held before is dropped after the lane's
/// lock is released (the last reference to a space cell may go with it).
pub fn enter(space: Option<&SharedSpace>, files: Option<&Files>) {
    let old = {
        let mut lane = here().lock();
        // The same process again (a thread of it, or the same thread after a call
        // on the kernel's tables): nothing to change. A weak reference keeps its
        // allocation, so no other table can be at the address it names.
        let same_space = match (&lane.space, space) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        let same_files = match (&lane.files, files) {
            (Some(w), Some(f)) => core::ptr::eq(w.as_ptr(), Arc::as_ptr(f)),
            (w, f) => w.is_none() && f.is_none(),
        };
        if same_space && same_files {
            return;
        }
        let old_space = core::mem::replace(&mut lane.space, space.cloned());
        let old_files = core::mem::replace(&mut lane.files, files.map(Arc::downgrade));
        (old_space, old_files)
    };
    drop(old);
}

/// Runs `f` on the running user thread's space cell and (weak) fd table, under the
/// calling CPU's lane lock; `None` when the CPU runs no user thread. No other CPU
/// takes this lock and `f` cannot re-enter it (it runs with interrupts off and
/// switches to no thread), so `f` may take the locks below the table: holding the
/// lane saves cloning what is in it.
pub fn with<R>(f: impl FnOnce(&SpaceCell<GlobalFrames>, &LaneFiles) -> Option<R>) -> Option<R> {
    let lane = here().lock();
    let space = lane.space.as_deref()?;
    f(space, &LaneFiles(lane.files.as_ref()))
}

/// The fd table a lane knows of (see [`with`]).
pub struct LaneFiles<'a>(Option<&'a Weak<IrqMutex<FdTable>>>);

impl LaneFiles<'_> {
    /// The fd table, if its process still has it.
    pub fn get(&self) -> Option<Files> {
        self.0?.upgrade()
    }
}

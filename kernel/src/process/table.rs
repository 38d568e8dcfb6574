//! [`ProcessTable`]: every process and thread, and the address spaces they use.
//!
//! ## What it owns
//! * `processes`: pid -> [`Process`] (parent/children links, thread set, state);
//! * `threads`: tid -> `Box<Thread>` (boxed: stable context addresses);
//! * `spaces`: address-space id -> (space, number of processes using it). Threads of
//!   a process share its space; `CLONE_VM` without `CLONE_THREAD` shares it between
//!   processes. A space is destroyed when its last user exits.
//!
//! ## Invariants
//! * pids and tids come from one id space `1..=PID_MAX`; an id is in use while a
//!   process or a thread (alive, exited or zombie) carries it;
//! * a process's threads all point back to it; a child is in its parent's
//!   `children` iff its `parent` is that parent;
//! * an alive process has a space; a zombie has none (its frames are back).
//!
//! The table takes no lock itself: the global instance is wrapped in an `IrqMutex`
//! (see the module doc of [`super`] for the lock order).

use super::job::Job;
use super::lane::{SpaceCell, SpaceGuard};
use super::thread::{ArchState, Thread};
use super::wait_queue::WaitQueue;
use super::{Pid, Priority, ProcessError, Tid};
use crate::fs::context::fallback_tree;
pub use crate::fs::context::FsContext;
use crate::fs::vfs::Vfs;
use crate::memory::address_space::{AddressSpace, MmError};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::kmem::{Account, Budget, Charge};
use crate::memory::paging::PageTable;
use crate::memory::{PhysFrame, VirtAddr};
use crate::sync::IrqMutex;
use crate::syscall::brk::Brk;
use crate::syscall::fd::{charge_files, close_table, console_files, copy_files, Files};
use crate::syscall::futex::FutexQueues;
use crate::syscall::rlimit::Limits;
use crate::syscall::signal::{copy_actions, default_actions, Actions};
use crate::syscall::sigqueue::SigPending;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// The signal a parent gets when a child ends.
const SIGCHLD: i32 = 17;

/// Highest pid/tid (Linux's default `pid_max`).
pub const PID_MAX: u32 = 32768;
/// Most processes (alive or zombie) at once; beyond it fork fails with EAGAIN.
pub const MAX_PROCESSES: usize = 4096;

/// The page-table entry format of the compiled target (x86_64 on the host).
#[cfg(not(target_arch = "aarch64"))]
pub type UserFormat = crate::memory::paging::X86_64Format;
/// The page-table entry format of the compiled target.
#[cfg(target_arch = "aarch64")]
pub type UserFormat = crate::memory::paging::ArmLpaeFormat;

/// The address-space type of user processes: the target's hardware page table.
pub type UserSpace<A> = AddressSpace<PageTable<UserFormat, A>, A>;

/// Whether a process is running or waiting to be reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Has at least one thread that has not exited.
    Alive,
    /// Exited with `status`; waits for its parent to reap it.
    Zombie {
        /// The exit status (as given to exit).
        status: i32,
    },
}

bitflags::bitflags! {
    /// What a clone child shares with its parent instead of getting a copy.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Shared: u8 {
        /// The fd table (`CLONE_FILES`).
        const FILES = 1;
        /// The signal dispositions (`CLONE_SIGHAND`).
        const SIGNAL_HANDLERS = 2;
        /// The working directory and umask (`CLONE_FS`).
        const FS = 4;
    }
}

/// A process.
///
/// Lock order for the shared parts (`files`, `signals`, `fs`): the process table
/// first, then any one of them; none is held while taking another.
#[derive(Debug)]
pub struct Process {
    /// Its id.
    pub pid: Pid,
    /// Its name.
    pub name: String,
    /// The program it runs: the absolute path exec found it at, and its argv as
    /// `/proc/PID/cmdline` shows it (NUL-terminated strings). Empty for a process
    /// the kernel made that never exec'ed; copied by fork, replaced by exec.
    pub image: ExecImage,
    /// Who waits for it (`None`: created by the kernel, or orphaned).
    pub parent: Option<Pid>,
    /// Its children, alive or zombie.
    pub children: BTreeSet<Pid>,
    /// Its threads, including exited ones not yet reaped.
    pub threads: BTreeSet<Tid>,
    /// Alive or zombie.
    pub state: ProcessState,
    /// Open files; dropped (their pipe ends closed) when the process exits.
    pub files: Files,
    /// Signal dispositions.
    pub signals: Actions,
    /// Signals sent to the process as a whole (kill, rt_sigqueueinfo, SIGCHLD, a
    /// timer's SIGALRM), taken by whichever of its threads does not block them
    /// (Linux's `signal->shared_pending`).
    pub shared_pending: SigPending,
    /// Working directory and umask.
    pub fs: Arc<IrqMutex<FsContext>>,
    /// The program break (`None` until a program is loaded).
    pub brk: Option<Brk>,
    /// ITIMER_REAL (alarm, setitimer): the tick it fires at, and its interval in
    /// ticks (0: once). Not inherited by fork, kept by exec, as on Linux.
    pub real_timer: Option<(u64, u64)>,
    /// Its threads waiting in wait4 for a child to change state; woken when one
    /// exits (Linux's `wait_chldexit`).
    pub child_exit: Arc<WaitQueue>,
    /// Resource limits (getrlimit, setrlimit, prlimit64): the process's, so its
    /// threads share them; copied by fork and clone, kept by exec, as on Linux.
    pub limits: Limits,
    /// Process group, session and stop state (see [`super::job`]).
    pub job: Job,
    /// Signals whose action is the default are not delivered to it (SIGKILL and
    /// SIGSTOP included), as Linux treats init (`SIGNAL_UNKILLABLE`); faults still
    /// end it.
    pub unkillable: bool,
    /// Its account in the kernel heap budget ([`crate::memory::kmem`]): its
    /// regions, fd table, pipes, threads and itself are charged to it.
    pub kmem: Arc<Account>,
    /// What the process and its threads hold of `kmem` ([`PROCESS_COST`] and
    /// [`THREAD_COST`] each).
    charge: Charge,
    space: Option<u64>,
}

/// Heap bytes a process is charged for in the kernel heap budget (its struct and
/// its share of the table), besides its threads.
pub const PROCESS_COST: u64 = core::mem::size_of::<Process>() as u64 * 2;
/// Heap bytes a thread is charged for (its boxed struct and its share of the table).
pub const THREAD_COST: u64 = core::mem::size_of::<Thread>() as u64 + 64;

/// What a process runs (see [`Process::image`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecImage {
    /// The absolute path of the program file.
    pub exe: Vec<u8>,
    /// The arguments, each followed by a NUL.
    pub cmdline: Vec<u8>,
}

/// What a new process starts with besides its memory.
struct Resources {
    files: Files,
    signals: Actions,
    fs: Arc<IrqMutex<FsContext>>,
    brk: Option<Brk>,
    limits: Limits,
    /// The job state; `None`: a group and session of its own (a kernel-made process).
    job: Option<Job>,
    /// The account the process is charged to, and its own charge.
    kmem: Arc<Account>,
    charge: Charge,
}

impl Resources {
    /// A process made by the kernel: console fds, default dispositions, cwd the
    /// root of `tree`.
    fn fresh(tree: Arc<Vfs>, kmem: Arc<Account>, charge: Charge) -> Resources {
        let files = console_files();
        // Three slots always fit a fresh account's share.
        let _ = charge_files(&files, &kmem);
        Resources {
            kmem,
            charge,
            files,
            signals: default_actions(),
            fs: Arc::new(IrqMutex::new(FsContext::at_root(tree))),
            brk: None,
            limits: Limits::default(),
            job: None,
        }
    }

    /// A clone child of `parent`: shared or copied as `share` says (OutOfMemory when
    /// the kernel heap cannot hold the copies).
    fn inherited(
        parent: &Process,
        share: Shared,
        kmem: Arc<Account>,
        charge: Charge,
    ) -> Result<Resources, ProcessError> {
        let files = match share.contains(Shared::FILES) {
            true => parent.files.clone(),
            false => copy_files(&parent.files, &kmem).map_err(|_| ProcessError::OutOfMemory)?,
        };
        let signals = match share.contains(Shared::SIGNAL_HANDLERS) {
            true => parent.signals.clone(),
            false => copy_actions(&parent.signals),
        };
        let fs = match share.contains(Shared::FS) {
            true => parent.fs.clone(),
            false => Arc::new(IrqMutex::new(parent.fs.lock().clone())),
        };
        Ok(Resources {
            files,
            signals,
            fs,
            brk: parent.brk,
            limits: parent.limits,
            job: Some(parent.job.inherited()),
            kmem,
            charge,
        })
    }
}

/// How a clone child gets its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMode {
    /// A copy-on-write copy (fork).
    Copy,
    /// The same address space (`CLONE_VM`).
    Share,
}

/// Whether a clone makes a process or a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneKind {
    /// A new process (its main thread has tid == pid).
    Process,
    /// A new thread in the caller's process (`CLONE_THREAD`).
    Thread,
}

/// What [`ProcessTable::clone_thread`] creates. Build with [`CloneOptions::process`]
/// or [`CloneOptions::thread`] and the option methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneOptions {
    /// A new thread in the caller's process, or a new process.
    pub kind: CloneKind,
    /// For a new process: copy or share the memory.
    pub memory: MemoryMode,
    /// User stack pointer of the child (`None`: the caller's).
    pub stack: Option<u64>,
    /// New thread pointer (`CLONE_SETTLS`).
    pub tls: Option<u64>,
    /// For a new process: what it shares with the caller (the rest is copied).
    pub share: Shared,
    /// Address cleared at the child's exit (`CLONE_CHILD_CLEARTID`).
    pub clear_child_tid: Option<u64>,
}

impl CloneOptions {
    /// A new process with a copy-on-write copy of the caller's memory (fork).
    pub fn process() -> Self {
        CloneOptions {
            kind: CloneKind::Process,
            memory: MemoryMode::Copy,
            stack: None,
            tls: None,
            share: Shared::empty(),
            clear_child_tid: None,
        }
    }
    /// A new thread in the caller's process.
    pub fn thread() -> Self {
        CloneOptions {
            kind: CloneKind::Thread,
            memory: MemoryMode::Share,
            ..Self::process()
        }
    }
    /// The same options with memory `mode`.
    pub fn memory(self, memory: MemoryMode) -> Self {
        CloneOptions { memory, ..self }
    }
    /// The same options with the child's user stack at `sp`.
    pub fn stack(self, sp: u64) -> Self {
        CloneOptions {
            stack: Some(sp),
            ..self
        }
    }
    /// The same options sharing `share` with the caller.
    pub fn share(self, share: Shared) -> Self {
        CloneOptions { share, ..self }
    }
    /// The same options with thread pointer `tls`.
    pub fn tls(self, tls: u64) -> Self {
        CloneOptions {
            tls: Some(tls),
            ..self
        }
    }
    /// The same options with a clear-child-tid address.
    pub fn clear_child_tid(self, addr: u64) -> Self {
        CloneOptions {
            clear_child_tid: Some(addr),
            ..self
        }
    }
}

/// Parameters of a thread made by [`ProcessTable::create_thread`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTask {
    /// Where it starts.
    pub entry: VirtAddr,
    /// Top of its kernel stack (the creator owns the stack).
    pub kernel_stack: VirtAddr,
    /// Top of its user stack, `None` for a kernel thread.
    pub user_stack: Option<VirtAddr>,
    /// Its priority.
    pub priority: Priority,
}

impl NewTask {
    /// A Normal-priority kernel thread.
    pub fn new(entry: VirtAddr, kernel_stack: VirtAddr) -> Self {
        NewTask {
            entry,
            kernel_stack,
            user_stack: None,
            priority: Priority::Normal,
        }
    }
    /// With `priority`.
    pub fn priority(self, priority: Priority) -> Self {
        NewTask { priority, ..self }
    }
    /// With a user stack.
    pub fn user_stack(self, user_stack: Option<VirtAddr>) -> Self {
        NewTask { user_stack, ..self }
    }
}

/// What an exit did: the threads that ended (take them off the scheduler) and the
/// threads to wake (the parent's threads blocked in wait4, a vfork parent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitReport {
    /// Threads that exited.
    pub gone: Vec<Tid>,
    /// Threads the exit unblocks.
    pub wake: Vec<Tid>,
}

struct SpaceSlot<A: FrameSource + Clone> {
    /// Shared with the CPUs running the space's threads (see [`super::lane`]).
    space: Arc<SpaceCell<A>>,
    users: usize,
}

/// All processes and threads. `A` is where frames come from.
pub struct ProcessTable<A: FrameSource + Clone> {
    processes: BTreeMap<Pid, Process>,
    threads: BTreeMap<Tid, Box<Thread>>,
    spaces: BTreeMap<u64, SpaceSlot<A>>,
    frames: A,
    next_id: u32,
    next_space: u64,
    max_processes: usize,
    /// The kernel's master page table, whose upper half every new space shares.
    kernel_root: Option<PhysFrame>,
    /// The arch state of threads freed before their owner took it back.
    released: Vec<(Tid, ArchState)>,
    /// Threads freed while another CPU may still be saving its registers into
    /// their context: the task layer drops them once no CPU is on them.
    // Boxed: the contexts other CPUs may still save into must not move.
    #[allow(clippy::vec_box)]
    freed: Vec<Box<Thread>>,
    /// Threads that exited or were freed so far (see [`Self::departures`]).
    departures: u64,
    /// Threads waiting in futex calls (the futex code owns the queues' meaning).
    pub futexes: FutexQueues,
    /// The file tree processes made by the kernel start in (`None`: the
    /// [`fallback_tree`], until the kernel has built the system's).
    tree: Option<Arc<Vfs>>,
    /// The kernel heap budget the processes' accounts draw from (`None`: an
    /// unlimited one, made when the first process is).
    kmem: Option<Arc<Budget>>,
    /// Pages of RAM the overcommit heuristic measures requests against
    /// ([`crate::syscall::overcommit`]; `None`: nothing is refused).
    ram_pages: Option<u64>,
}

impl From<MmError> for ProcessError {
    fn from(_: MmError) -> Self {
        ProcessError::OutOfMemory
    }
}

impl<A: FrameSource + Clone> ProcessTable<A> {
    /// An empty table whose frames come from `frames`.
    pub const fn new(frames: A) -> Self {
        ProcessTable {
            processes: BTreeMap::new(),
            threads: BTreeMap::new(),
            spaces: BTreeMap::new(),
            frames,
            next_id: 1,
            next_space: 1,
            max_processes: MAX_PROCESSES,
            kernel_root: None,
            released: Vec::new(),
            freed: Vec::new(),
            departures: 0,
            futexes: FutexQueues::new(),
            tree: None,
            kmem: None,
            ram_pages: None,
        }
    }

    /// Sets the process limit (EAGAIN beyond it).
    pub fn set_max_processes(&mut self, max: usize) {
        self.max_processes = max;
    }

    /// The arch state of threads the table freed while they still held one (a process
    /// reaped inside its own exit, an orphan): its owner frees what is in it.
    pub fn take_released(&mut self) -> Vec<(Tid, ArchState)> {
        core::mem::take(&mut self.released)
    }

    /// The arch states [`take_released`](Self::take_released) would hand out.
    pub fn released(&self) -> impl Iterator<Item = &ArchState> {
        self.released.iter().map(|(_, state)| state)
    }

    /// Every process, zombies included.
    pub fn processes(&self) -> impl Iterator<Item = &Process> {
        self.processes.values()
    }

    /// Every thread, exited ones included until reaped.
    pub fn threads(&self) -> impl Iterator<Item = &Thread> {
        self.threads.values().map(|b| &**b)
    }

    /// Makes every address space created from now on share the kernel half of the
    /// master table rooted at `root` (which must have run `populate_upper_half`).
    pub fn set_kernel_root(&mut self, root: PhysFrame) {
        self.kernel_root = Some(root);
    }

    /// Number of processes, alive or zombie.
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Number of threads, exited ones included until reaped.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// The process `pid`.
    pub fn process(&self, pid: Pid) -> Option<&Process> {
        self.processes.get(&pid)
    }

    /// The process `pid`, mutably.
    pub fn process_mut(&mut self, pid: Pid) -> Option<&mut Process> {
        self.processes.get_mut(&pid)
    }

    /// The thread `tid`.
    pub fn thread(&self, tid: Tid) -> Option<&Thread> {
        self.threads.get(&tid).map(|b| &**b)
    }

    /// The thread `tid`, mutably (the arch sets up contexts and user registers).
    pub fn thread_mut(&mut self, tid: Tid) -> Option<&mut Thread> {
        self.threads.get_mut(&tid).map(|b| &mut **b)
    }

    /// The thread `tid` and its process, both mutably: one look-up each, for the
    /// paths that need both (signal delivery, rt_sigreturn).
    pub fn thread_and_process_mut(&mut self, tid: Tid) -> Option<(&mut Thread, &mut Process)> {
        let t = self.threads.get_mut(&tid)?;
        let p = self.processes.get_mut(&t.pid)?;
        Some((&mut **t, p))
    }

    /// The address space of the alive process `pid`, locked, to look at. (Two at
    /// once of one space would deadlock: look at one, drop it, take the next.)
    pub fn space(&self, pid: Pid) -> Option<SpaceGuard<'_, A>> {
        let id = self.processes.get(&pid)?.space?;
        self.spaces.get(&id)?.space.lock_live()
    }

    /// The address space of the alive process `pid`, locked.
    pub fn space_mut(&mut self, pid: Pid) -> Result<SpaceGuard<'_, A>, ProcessError> {
        let id = self
            .alive(pid)?
            .space
            .ok_or(ProcessError::ProcessExited(pid))?;
        self.spaces
            .get(&id)
            .and_then(|s| s.space.lock_live())
            .ok_or(ProcessError::ProcessExited(pid))
    }

    /// The cell of the alive process `pid`'s address space, for a CPU that runs
    /// one of its threads (see [`super::lane`]).
    pub fn shared_space(&self, pid: Pid) -> Option<&Arc<SpaceCell<A>>> {
        let id = self.alive(pid).ok()?.space?;
        self.spaces.get(&id).map(|s| &s.space)
    }

    /// What a CPU that switches to a thread of `pid` takes up, found with one lookup
    /// of the process: its space's cell if it is alive (as [`Self::shared_space`]),
    /// and its fd table.
    pub fn running_view(&self, pid: Pid) -> (Option<&Arc<SpaceCell<A>>>, Option<&Files>) {
        let Some(p) = self.processes.get(&pid) else {
            return (None, None);
        };
        let space = match p.state {
            ProcessState::Alive => p.space.and_then(|id| self.spaces.get(&id)),
            ProcessState::Zombie { .. } => None,
        };
        (space.map(|s| &s.space), Some(&p.files))
    }

    /// Creates a parentless process with an empty address space rooted at `root`.
    pub fn create_process(&mut self, name: String, root: PhysFrame) -> Result<Pid, ProcessError> {
        self.check_limit()?;
        let (kmem, charge) = self.new_account()?;
        let pid = Pid(self.free_id()?);
        let mut space = UserSpace::new(root, self.frames.clone())
            .map_err(|_| ProcessError::BadPageTable(root))?;
        let _ = space.set_account(&kmem); // an empty space costs nothing
        let space_id = self.add_space(space);
        let tree = self.tree();
        let r = Resources::fresh(tree, kmem, charge);
        self.insert_process(pid, name, None, space_id, r);
        Ok(pid)
    }

    /// Sets the RAM the overcommit heuristic measures requests against.
    pub fn set_ram_pages(&mut self, pages: u64) {
        self.ram_pages = Some(pages);
    }

    /// The RAM the overcommit heuristic measures requests against, if known.
    pub fn ram_pages(&self) -> Option<u64> {
        self.ram_pages
    }

    /// The kernel heap budget of this table's processes.
    pub fn kmem_budget(&mut self) -> Arc<Budget> {
        self.kmem.get_or_insert_with(Budget::unlimited).clone()
    }

    /// A new account for a process, charged for the process and its first thread
    /// (OutOfMemory when the budget cannot hold them).
    fn new_account(&mut self) -> Result<(Arc<Account>, Charge), ProcessError> {
        let kmem = self.kmem_budget().account();
        let charge = kmem
            .charge(PROCESS_COST + THREAD_COST)
            .map_err(|_| ProcessError::OutOfMemory)?;
        Ok((kmem, charge))
    }

    /// Charges one more thread to the alive process `pid` (OutOfMemory if its
    /// share or the budget cannot hold it).
    fn charge_thread(&mut self, pid: Pid) -> Result<(), ProcessError> {
        self.alive(pid)?;
        let p = self
            .processes
            .get_mut(&pid)
            .ok_or(ProcessError::NoSuchProcess(pid))?;
        p.charge
            .grow(THREAD_COST)
            .map_err(|_| ProcessError::OutOfMemory)
    }

    /// The file tree processes the kernel makes from now on start in (their
    /// working directory its root).
    pub fn set_tree(&mut self, tree: Arc<Vfs>) {
        self.tree = Some(tree);
    }

    /// Forgets the tree given by [`set_tree`](Self::set_tree) (its files go with
    /// the last process that sees it), as a machine shutting down does.
    pub fn forget_tree(&mut self) {
        self.tree = None;
    }

    /// The file tree processes the kernel makes start in.
    pub fn tree(&self) -> Arc<Vfs> {
        self.tree.clone().unwrap_or_else(fallback_tree)
    }

    /// Creates a thread of the alive process `pid`.
    pub fn create_thread(&mut self, pid: Pid, task: NewTask) -> Result<Tid, ProcessError> {
        let first = self.alive(pid)?.threads.is_empty();
        // A process's first user thread is its main thread: tid == pid, as on Linux.
        let tid =
            match first && task.user_stack.is_some() && !self.threads.contains_key(&Tid(pid.0)) {
                true => Tid(pid.0),
                false => Tid(self.free_id()?),
            };
        if !first {
            self.charge_thread(pid)?;
        }
        let mut t = Thread::new(tid, pid, task.priority, task.entry, Some(task.kernel_stack));
        t.user_stack = task.user_stack;
        t.user.sp = task.user_stack.map_or(0, |s| s.as_u64());
        self.insert_thread(t);
        Ok(tid)
    }

    /// Clone (and fork): makes a thread or a process from the calling thread
    /// `parent`, as `opts` says. A new process's main thread has tid == pid. The
    /// child's user registers are the caller's with return value 0. The child is not
    /// yet given to the scheduler.
    pub fn clone_thread(&mut self, parent: Tid, opts: CloneOptions) -> Result<Tid, ProcessError> {
        let (pid, priority, user, entry, mask, alt, alt_flags) = {
            let t = self
                .threads
                .get(&parent)
                .ok_or(ProcessError::NoSuchThread(parent))?;
            (
                t.pid,
                t.priority,
                t.user,
                t.entry,
                t.signal_mask,
                t.alt_stack,
                t.alt_flags,
            )
        };
        self.alive(pid)?;
        if opts.kind == CloneKind::Process {
            self.check_limit()?;
        }
        let id = self.free_id()?;
        if opts.kind == CloneKind::Thread {
            self.charge_thread(pid)?;
        }
        let owner = self.child_owner(parent, pid, id, opts)?;
        // The child's kernel stack (and its first frame) is the arch's business: it
        // gives the thread one before the child first runs.
        let mut t = Thread::new(Tid(id), owner, priority, entry, None);
        t.user = child_regs(user, opts);
        t.clear_child_tid = opts.clear_child_tid;
        t.signal_mask = mask; // inherited; nothing is pending in a new thread
                              // A fork child keeps the alternate stack (its copy of the memory has it); a
                              // child sharing the memory must set its own, as on Linux.
        if opts.memory == MemoryMode::Copy {
            t.alt_stack = alt;
            t.alt_flags = alt_flags;
        }
        self.insert_thread(t);
        Ok(Tid(id))
    }

    /// For a fork that copies the caller's memory before it takes the table (see
    /// `task::fork_like`): the cell of the caller `tid`'s address space and the
    /// frame source its copy's root comes from. Refuses what the fork would refuse
    /// before its copy (the caller gone, the process limit), with the same errors.
    pub fn fork_source(&self, tid: Tid) -> Result<(Arc<SpaceCell<A>>, A), ProcessError> {
        let pid = self
            .threads
            .get(&tid)
            .map(|t| t.pid)
            .ok_or(ProcessError::NoSuchThread(tid))?;
        self.check_limit()?;
        let id = self
            .alive(pid)?
            .space
            .ok_or(ProcessError::ProcessExited(pid))?;
        let cell = self
            .spaces
            .get(&id)
            .map(|s| s.space.clone())
            .ok_or(ProcessError::ProcessExited(pid))?;
        Ok((cell, self.frames.clone()))
    }

    /// Keeps `copy` (a fork's copy of `tid`'s memory made outside the table's lock)
    /// for the call of `tid` to give to its child ([`CallWait::forked_space`]); if
    /// `tid` is gone the copy is destroyed.
    ///
    /// [`CallWait::forked_space`]: super::wait_queue::CallWait::forked_space
    pub fn stage_fork_copy(&mut self, tid: Tid, copy: UserSpace<A>) -> Result<(), ProcessError> {
        if !self.threads.contains_key(&tid) {
            copy.destroy();
            return Err(ProcessError::NoSuchThread(tid));
        }
        let id = self.add_space(copy);
        let before = self
            .threads
            .get_mut(&tid)
            .and_then(|t| t.call.forked_space.replace(id));
        self.drop_unused_space(before);
        Ok(())
    }

    /// Destroys the staged fork copy of `tid`'s call, if the call did not use it
    /// (it failed).
    pub fn discard_fork_copy(&mut self, tid: Tid) {
        let staged = self
            .threads
            .get_mut(&tid)
            .and_then(|t| t.call.forked_space.take());
        self.drop_unused_space(staged);
    }

    /// Removes and destroys the space slot `id` that no process uses (a staged fork
    /// copy).
    pub fn drop_unused_space(&mut self, id: Option<u64>) {
        if let Some(space) = id
            .and_then(|id| self.spaces.remove(&id))
            .and_then(|s| s.space.take())
        {
            space.destroy();
        }
    }

    /// The process a clone child with id `id` belongs to, creating it if needed.
    fn child_owner(
        &mut self,
        caller: Tid,
        pid: Pid,
        id: u32,
        opts: CloneOptions,
    ) -> Result<Pid, ProcessError> {
        if opts.kind == CloneKind::Thread {
            return Ok(pid);
        }
        let (kmem, charge) = self.new_account()?;
        let parent = self.alive(pid)?;
        let (name, image, resources) = (
            parent.name.clone(),
            parent.image.clone(),
            Resources::inherited(parent, opts.share, kmem.clone(), charge)?,
        );
        let space_id = self.child_space(caller, pid, opts.memory, &kmem)?;
        self.insert_process(Pid(id), name, Some(pid), space_id, resources);
        if let Some(p) = self.processes.get_mut(&pid) {
            p.children.insert(Pid(id));
        }
        if let Some(child) = self.processes.get_mut(&Pid(id)) {
            child.image = image;
        }
        Ok(Pid(id))
    }

    /// The space of a clone child of `pid` made by its thread `caller`: its
    /// parent's (shared) or a copy charged to `kmem` (the one `caller`'s call
    /// staged, or one made now; OutOfMemory, with nothing left behind, when either
    /// does not fit).
    fn child_space(
        &mut self,
        caller: Tid,
        pid: Pid,
        memory: MemoryMode,
        kmem: &Arc<Account>,
    ) -> Result<u64, ProcessError> {
        let id = self
            .alive(pid)?
            .space
            .ok_or(ProcessError::ProcessExited(pid))?;
        if memory == MemoryMode::Share {
            if let Some(slot) = self.spaces.get_mut(&id) {
                slot.users += 1;
            }
            return Ok(id);
        }
        let staged = self
            .threads
            .get_mut(&caller)
            .and_then(|t| t.call.forked_space.take());
        if let Some(staged) = staged {
            // Copied before the call took the table: charge it to the child.
            let charged = self
                .spaces
                .get(&staged)
                .and_then(|s| s.space.lock_live())
                .map(|mut space| space.set_account(kmem));
            if let Some(Ok(())) = charged {
                return Ok(staged);
            }
            self.drop_unused_space(Some(staged));
            return Err(ProcessError::OutOfMemory);
        }
        let root = self
            .frames
            .alloc_frame()
            .map_err(|_| ProcessError::OutOfMemory)?;
        let forked = self
            .spaces
            .get(&id)
            .and_then(|s| s.space.lock_live())
            .map(|mut space| space.fork(root));
        match forked {
            Some(Ok(mut space)) => match space.set_account(kmem) {
                Ok(()) => Ok(self.add_space(space)),
                Err(_) => {
                    space.destroy();
                    Err(ProcessError::OutOfMemory)
                }
            },
            _ => {
                // On failure `fork` destroyed the half-built child, root included.
                Err(ProcessError::OutOfMemory)
            }
        }
    }

    /// Marks thread `tid` exited. If it was the last live thread of its process, the
    /// process exits with `code` too.
    pub fn exit_thread(&mut self, tid: Tid, code: i32) -> Result<ExitReport, ProcessError> {
        let t = self
            .threads
            .get_mut(&tid)
            .ok_or(ProcessError::NoSuchThread(tid))?;
        t.mark_exited(code);
        self.departures += 1;
        let pid = t.pid;
        let last = self
            .processes
            .get(&pid)
            .is_some_and(|p| p.threads.iter().all(|t| self.thread_exited(*t)));
        if last && self.alive(pid).is_ok() {
            return self.exit_process(pid, code);
        }
        self.release_vfork_parent(tid);
        Ok(ExitReport {
            gone: alloc::vec![tid],
            wake: Vec::new(),
        })
    }

    /// Ends the alive process `pid` with `status`: marks every thread exited, tears
    /// down its address space (if it was the last user), re-parents its children and
    /// makes it a zombie (reaped at once if it has no parent).
    pub fn exit_process(&mut self, pid: Pid, status: i32) -> Result<ExitReport, ProcessError> {
        let p = self.alive(pid)?;
        let gone: Vec<Tid> = p.threads.iter().copied().collect();
        let mut wake = Vec::new();
        for t in &gone {
            self.release_vfork_parent(*t);
            if let Some(t) = self.threads.get_mut(t) {
                t.mark_exited(status);
            }
        }
        self.departures += 1;
        self.release_space(pid);
        self.reparent_children(pid);
        let parent = self.processes.get_mut(&pid).and_then(|p| {
            p.state = ProcessState::Zombie { status };
            // Its fds close now (a pipe's other end sees EOF or EPIPE), not at reaping,
            // and its record locks go.
            let files =
                core::mem::replace(&mut p.files, Arc::new(IrqMutex::new(Default::default())));
            close_table(files, pid);
            p.brk = None;
            p.parent
        });
        match parent {
            Some(pp) => {
                if let Some(p) = self.processes.get(&pp) {
                    p.child_exit.wake_all();
                }
                wake.extend(self.notify_parent(pp, pid, status));
            }
            None => {
                let _ = self.reap_process(pid);
            }
        }
        Ok(ExitReport { gone, wake })
    }

    /// The vfork child `tid` lets its parent go (it execs or exits): the parent's
    /// vfork call, waiting on the child's queue, is woken and completes.
    pub fn release_vfork_parent(&mut self, tid: Tid) {
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        t.vfork_parent = None;
        if let Some(done) = t.vfork_done.take() {
            done.wake_all();
        }
    }

    /// SIGCHLD for the parent `pp` of a process that just ended (see
    /// [`crate::syscall::signal::queue_for_process`]); returns the thread to wake.
    fn notify_parent(&mut self, pp: Pid, child: Pid, status: i32) -> Option<Tid> {
        use crate::syscall::signal as sig;
        let (code, value) = match status & sig::KILLED {
            0 => (sig::CLD_EXITED, status & 0xff),
            _ => (sig::CLD_KILLED, status & 0x7f),
        };
        let info = sig::SigInfo {
            sig: SIGCHLD,
            code,
            pid: child.0,
            value: value as u64,
            addr: None,
        };
        sig::queue_for_process(self, pp, info).ok().flatten()
    }

    /// Removes the zombie `pid`: frees its threads (and the kernel stacks it owns) and
    /// unlinks it from its parent. Returns its exit status.
    pub fn reap_process(&mut self, pid: Pid) -> Result<i32, ProcessError> {
        let p = self
            .processes
            .get(&pid)
            .ok_or(ProcessError::NoSuchProcess(pid))?;
        let ProcessState::Zombie { status } = p.state else {
            return Err(ProcessError::ProcessAlive(pid));
        };
        let threads: Vec<Tid> = p.threads.iter().copied().collect();
        for tid in threads {
            self.free_thread(tid);
        }
        if let Some(p) = self.processes.remove(&pid) {
            if let Some(parent) = p.parent.and_then(|pp| self.processes.get_mut(&pp)) {
                parent.children.remove(&pid);
            }
        }
        Ok(status)
    }

    /// Frees an exited thread of a process that lives on (call after the CPU left its
    /// kernel stack).
    pub fn reap_thread(&mut self, tid: Tid) -> Result<i32, ProcessError> {
        let t = self
            .threads
            .get(&tid)
            .ok_or(ProcessError::NoSuchThread(tid))?;
        let code = t.exit_code().ok_or(ProcessError::ThreadAlive(tid))?;
        self.free_thread(tid);
        Ok(code)
    }

    /// wait4: reaps one zombie child of `parent` (any, or `which`). `Ok(None)` means
    /// matching children exist but none has exited yet.
    pub fn wait_child(
        &mut self,
        parent: Pid,
        which: Option<Pid>,
    ) -> Result<Option<(Pid, i32)>, ProcessError> {
        let p = self
            .processes
            .get(&parent)
            .ok_or(ProcessError::NoSuchProcess(parent))?;
        let mut candidates = p
            .children
            .iter()
            .copied()
            .filter(|c| which.is_none_or(|w| w == *c))
            .peekable();
        if candidates.peek().is_none() {
            return Err(ProcessError::NoChildren);
        }
        let zombie = candidates.find(|c| {
            matches!(
                self.processes.get(c).map(|p| p.state),
                Some(ProcessState::Zombie { .. })
            )
        });
        match zombie {
            Some(c) => Ok(Some((c, self.reap_process(c)?))),
            None => Ok(None),
        }
    }

    // ---- helpers ----

    fn alive(&self, pid: Pid) -> Result<&Process, ProcessError> {
        let p = self
            .processes
            .get(&pid)
            .ok_or(ProcessError::NoSuchProcess(pid))?;
        match p.state {
            ProcessState::Alive => Ok(p),
            ProcessState::Zombie { .. } => Err(ProcessError::ProcessExited(pid)),
        }
    }

    fn thread_exited(&self, tid: Tid) -> bool {
        self.threads.get(&tid).is_none_or(|t| t.has_exited())
    }

    fn check_limit(&self) -> Result<(), ProcessError> {
        match self.processes.len() < self.max_processes {
            true => Ok(()),
            false => Err(ProcessError::TooManyProcesses),
        }
    }

    /// The next id in `1..=PID_MAX` not carried by any process or thread.
    fn free_id(&mut self) -> Result<u32, ProcessError> {
        for _ in 0..PID_MAX {
            let id = self.next_id;
            self.next_id = if id >= PID_MAX { 1 } else { id + 1 };
            if !self.processes.contains_key(&Pid(id)) && !self.threads.contains_key(&Tid(id)) {
                return Ok(id);
            }
        }
        Err(ProcessError::TooManyProcesses)
    }

    fn add_space(&mut self, mut space: UserSpace<A>) -> u64 {
        if let Some(k) = self.kernel_root {
            let kernel = PageTable::<UserFormat, A>::from_root(k, self.frames.clone());
            space.mmu_mut().copy_upper_half_from(&kernel);
        }
        let id = self.next_space;
        self.next_space += 1;
        let space = SpaceCell::new(space);
        self.spaces.insert(id, SpaceSlot { space, users: 1 });
        id
    }

    fn insert_process(
        &mut self,
        pid: Pid,
        name: String,
        parent: Option<Pid>,
        space: u64,
        r: Resources,
    ) {
        let p = Process {
            pid,
            name,
            image: ExecImage::default(),
            parent,
            children: BTreeSet::new(),
            threads: BTreeSet::new(),
            state: ProcessState::Alive,
            files: r.files,
            signals: r.signals,
            shared_pending: SigPending::default(),
            fs: r.fs,
            brk: r.brk,
            real_timer: None,
            child_exit: Arc::new(WaitQueue::new()),
            limits: r.limits,
            job: r.job.unwrap_or_else(|| Job::new(pid, pid)),
            unkillable: false,
            kmem: r.kmem,
            charge: r.charge,
            space: Some(space),
        };
        self.processes.insert(pid, p);
    }

    fn insert_thread(&mut self, t: Thread) {
        if let Some(p) = self.processes.get_mut(&t.pid) {
            p.threads.insert(t.tid);
        }
        self.threads.insert(t.tid, Box::new(t));
    }

    fn free_thread(&mut self, tid: Tid) {
        let Some(mut t) = self.threads.remove(&tid) else {
            return;
        };
        self.departures += 1;
        self.drop_unused_space(t.call.forked_space.take());
        if let Some(state) = t.arch.take() {
            self.released.push((tid, state));
        }
        if let Some(p) = self.processes.get_mut(&t.pid) {
            p.threads.remove(&tid);
            // The last thread's cost goes with the process.
            if !p.threads.is_empty() {
                p.charge.shrink(THREAD_COST);
            }
        }
        // With other CPUs, one may be an instant from saving into its context.
        if crate::smp::online_count() > 1 && self.freed.try_reserve(1).is_ok() {
            self.freed.push(t);
        }
    }

    /// A count that changes whenever a thread exits or is freed: while it stays the
    /// same, no thread has left whose user state the task layer must retire (a
    /// call that might have ended some, such as kill, need not sweep when it did not).
    pub fn departures(&self) -> u64 {
        self.departures
    }

    /// Threads freed while other CPUs ran (see `freed`), for the task layer to drop
    /// those no CPU is on; it gives the others back with [`keep_freed`](Self::keep_freed).
    pub fn take_freed(&mut self) -> Vec<Box<Thread>> {
        core::mem::take(&mut self.freed)
    }

    /// Keeps `t` among the freed threads a CPU may still be on.
    pub fn keep_freed(&mut self, t: Box<Thread>) {
        self.freed.push(t);
    }

    /// Thread `tid`, live or freed but not yet dropped (an exiting thread's own
    /// context is found here even after its process was reaped).
    pub fn thread_anywhere_mut(&mut self, tid: Tid) -> Option<&mut Thread> {
        if self.threads.contains_key(&tid) {
            return self.threads.get_mut(&tid).map(|b| &mut **b);
        }
        self.freed
            .iter_mut()
            .find(|t| t.tid == tid)
            .map(|b| &mut **b)
    }

    /// execve: gives the alive process `pid` a new, empty address space rooted at
    /// `root` (sharing the kernel half) and drops its use of the old one (destroyed if
    /// it was the last user; a vfork parent keeps it). On failure nothing changed and
    /// `root` is freed.
    pub fn replace_space(&mut self, pid: Pid, root: PhysFrame) -> Result<(), ProcessError> {
        if self.alive(pid).is_err() {
            let _ = self.frames.free_frame(root);
            return Err(ProcessError::NoSuchProcess(pid));
        }
        let mut space = UserSpace::new(root, self.frames.clone())
            .map_err(|_| ProcessError::BadPageTable(root))?;
        if let Some(p) = self.processes.get(&pid) {
            let _ = space.set_account(&p.kmem); // an empty space costs nothing
        }
        let id = self.add_space(space);
        self.release_space(pid);
        if let Some(p) = self.processes.get_mut(&pid) {
            p.space = Some(id);
        }
        Ok(())
    }

    /// execve: [`ProcessTable::replace_space`] with a root frame from the table's own
    /// frame source (ENOMEM-style `OutOfMemory` without one; nothing changed then).
    pub fn replace_space_fresh(&mut self, pid: Pid) -> Result<(), ProcessError> {
        let root = self
            .frames
            .alloc_frame()
            .map_err(|_| ProcessError::OutOfMemory)?;
        self.replace_space(pid, root)
    }

    /// Drops `pid`'s use of its space; the last user destroys it.
    fn release_space(&mut self, pid: Pid) {
        let Some(id) = self.processes.get_mut(&pid).and_then(|p| p.space.take()) else {
            return;
        };
        let last = self.spaces.get_mut(&id).is_some_and(|s| {
            s.users -= 1;
            s.users == 0
        });
        if last {
            if let Some(space) = self.spaces.remove(&id).and_then(|s| s.space.take()) {
                space.destroy();
            }
        }
    }

    /// Gives `pid`'s children to pid 1 (if alive and not `pid`), else orphans them;
    /// orphaned zombies are reaped at once.
    fn reparent_children(&mut self, pid: Pid) {
        let children: Vec<Pid> = self
            .processes
            .get_mut(&pid)
            .map(|p| core::mem::take(&mut p.children).into_iter().collect())
            .unwrap_or_default();
        let init = Pid(1);
        let heir = (pid != init && self.alive(init).is_ok()).then_some(init);
        for c in children {
            if let Some(child) = self.processes.get_mut(&c) {
                child.parent = heir;
            }
            match heir {
                Some(h) => {
                    if let Some(hp) = self.processes.get_mut(&h) {
                        hp.children.insert(c);
                    }
                }
                None => {
                    let _ = self.reap_process(c);
                }
            }
        }
    }
}

/// The user registers of a clone child of a thread whose registers are `parent`.
fn child_regs(parent: super::UserRegs, opts: CloneOptions) -> super::UserRegs {
    super::UserRegs {
        ip: parent.ip,
        sp: opts.stack.unwrap_or(parent.sp),
        ret: 0,
        tls: opts.tls.unwrap_or(parent.tls),
    }
}

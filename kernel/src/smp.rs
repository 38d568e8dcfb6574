//! The CPUs: what the kernel keeps per CPU, how a CPU finds its own, and which CPUs
//! are online.
//!
//! Every CPU has one [`PerCpu`] in [`CPUS`], found through a register only the
//! kernel uses: GS base on x86_64 (the kernel never loads user GS bases, so no
//! `swapgs` is needed), TPIDR_EL1 on aarch64 (see `arch::<name>::percpu`). The host
//! runs everything as CPU 0.
//!
//! A record holds what used to be "the CPU's" statics: the running thread and its
//! process, the `syscall` entry's stack and scratch slot (x86_64, at offsets the
//! entry stub reads), whose FP/SIMD state is in the registers, the installed
//! page-table root (which CPUs a TLB shootdown must reach), and the mailbox other
//! CPUs leave requests in ([`Mailbox`]). Saved contexts (idle, discard) are the
//! arch's, indexed by [`PerCpu::index`].
//!
//! ## Locks
//! None: every field is atomic and written only by its own CPU, except the mailbox
//! (any CPU posts, the owner takes) and the boot fields written before the CPU runs.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// CPUs the kernel can run on.
pub const MAX_CPUS: usize = 16;

/// What the kernel keeps per CPU. `#[repr(C)]`: the x86_64 `syscall` entry reads
/// `syscall_stack` and writes `user_sp` through GS at their `offset_of!`.
#[repr(C)]
pub struct PerCpu {
    /// Top of the running user thread's kernel stack (the `syscall` entry's stack).
    pub syscall_stack: AtomicU64,
    /// The user stack pointer between `syscall` and the entry's first push.
    pub user_sp: AtomicU64,
    /// Position in [`CPUS`] (0 = the boot CPU).
    pub index: AtomicU32,
    /// The firmware's id: local APIC id (x86_64), MPIDR affinity (aarch64).
    pub hw_id: AtomicU32,
    /// NUMA node.
    pub node: AtomicU32,
    online: AtomicBool,
    /// The thread the CPU runs, plus one (0: its idle context).
    pub running: AtomicU64,
    /// The process of the user thread the CPU runs (0: none): getpid without locks.
    pub running_pid: AtomicU32,
    /// The user thread whose FP/SIMD state is in this CPU's registers (0: none).
    pub fpu_owner: AtomicU32,
    /// Physical address of the installed page-table root.
    pub active_root: AtomicU64,
    /// Requests from other CPUs.
    pub mailbox: Mailbox,
    /// A reschedule was asked for and not yet acted on.
    pub resched: AtomicBool,
    /// Another CPU asked this one to look (it may have ended the running thread):
    /// the way back to user mode checks the thread is still alive.
    pub recheck: AtomicBool,
    /// The exited thread (tid + 1) this CPU is switching away from for good, until
    /// its switch routine is done with that thread's stack.
    pub leaving: AtomicU64,
    /// [`crate::process::exits_marked`] when the running thread was last seen alive
    /// under the table lock (`u64::MAX`: not known). Its own CPU's.
    pub alive_at: AtomicU64,
    /// The CPU's idle context is an idle loop, which makes its own switches: an
    /// interrupt taken there only notes one (`switch_deferred`), so the loop's wait
    /// for the process table may halt (`arch::kthread`). Its own CPU's.
    pub idle_loop: AtomicBool,
    /// An interrupt left a switch to the idle loop (see `idle_loop`), or to the
    /// running thread's way back to user mode (see `switch_held`).
    pub switch_deferred: AtomicBool,
    /// The CPU halts inside a lock wait whose thread must stay on it (it holds its
    /// lane: `IrqMutex::lock_in_place`): an interrupt taken there only notes a
    /// switch (`switch_deferred`, and `recheck` so the way back looks), which the
    /// thread makes on its way back to user mode. Its own CPU's.
    pub switch_held: AtomicBool,
    /// Times the scheduler changed this CPU's running thread (any CPU may, under the
    /// scheduler's lock): see `scheduler::current_changes`.
    pub current_changes: AtomicU64,
}

/// What other CPUs ask of a CPU, as bits of `pending`, plus a TLB request's
/// generation: the requester waits until `done` reaches it.
pub struct Mailbox {
    /// [`REQUEST_RESCHEDULE`], [`REQUEST_FLUSH`], [`REQUEST_LEAVE`].
    pub pending: AtomicU32,
    /// Highest flush generation asked of this CPU.
    pub flush_asked: AtomicU64,
    /// Highest flush generation this CPU has carried out.
    pub flush_done: AtomicU64,
    /// The root a [`REQUEST_LEAVE`] is about.
    pub leave_root: AtomicU64,
}

/// Look at the run queue (a thread was made ready for this CPU).
pub const REQUEST_RESCHEDULE: u32 = 1;
/// Drop every cached user translation (a TLB shootdown).
pub const REQUEST_FLUSH: u32 = 2;

impl PerCpu {
    const fn new(index: u32) -> PerCpu {
        PerCpu {
            syscall_stack: AtomicU64::new(0),
            user_sp: AtomicU64::new(0),
            index: AtomicU32::new(index),
            hw_id: AtomicU32::new(0),
            node: AtomicU32::new(0),
            online: AtomicBool::new(false),
            running: AtomicU64::new(0),
            running_pid: AtomicU32::new(0),
            fpu_owner: AtomicU32::new(0),
            active_root: AtomicU64::new(0),
            mailbox: Mailbox {
                pending: AtomicU32::new(0),
                flush_asked: AtomicU64::new(0),
                flush_done: AtomicU64::new(0),
                leave_root: AtomicU64::new(0),
            },
            resched: AtomicBool::new(false),
            recheck: AtomicBool::new(false),
            leaving: AtomicU64::new(0),
            alive_at: AtomicU64::new(u64::MAX),
            idle_loop: AtomicBool::new(false),
            switch_deferred: AtomicBool::new(false),
            switch_held: AtomicBool::new(false),
            current_changes: AtomicU64::new(0),
        }
    }

    /// Position in [`CPUS`].
    pub fn id(&self) -> usize {
        self.index.load(Ordering::Relaxed) as usize
    }

    /// Whether the CPU has come up and takes threads.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }
}

const fn all_cpus() -> [PerCpu; MAX_CPUS] {
    let mut cpus = [const { PerCpu::new(0) }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        cpus[i] = PerCpu::new(i as u32);
        i += 1;
    }
    cpus
}

/// Every CPU's record, by index.
pub static CPUS: [PerCpu; MAX_CPUS] = all_cpus();

/// CPUs online (the boot CPU counts once its bring-up called [`mark_online`]).
static ONLINE: AtomicUsize = AtomicUsize::new(0);

/// The record of the CPU running this code.
pub fn this() -> &'static PerCpu {
    crate::arch::percpu::this()
}

/// Index of the CPU running this code.
pub fn this_index() -> usize {
    this().id()
}

/// The record of CPU `index`.
pub fn cpu(index: usize) -> Option<&'static PerCpu> {
    CPUS.get(index)
}

/// Number of CPUs online.
pub fn online_count() -> usize {
    ONLINE.load(Ordering::Acquire).max(1)
}

/// The online CPUs' records (the boot CPU always: before bring-up, and on the
/// host, it is the one CPU).
pub fn online() -> impl Iterator<Item = &'static PerCpu> {
    CPUS.iter().filter(|c| c.is_online() || c.id() == 0)
}

/// Records CPU `index`'s firmware id and node before it starts.
pub fn describe(index: usize, hw_id: u32, node: u32) {
    if let Some(c) = cpu(index) {
        c.hw_id.store(hw_id, Ordering::Relaxed);
        c.node.store(node, Ordering::Relaxed);
    }
}

/// Marks the calling CPU online: it takes threads from now on.
pub fn mark_online() {
    let me = this();
    if !me.online.swap(true, Ordering::AcqRel) {
        ONLINE.fetch_add(1, Ordering::AcqRel);
    }
}

/// The boot log's line: how many CPUs run, with their firmware ids (`id_name`:
/// "apic" or "mpidr") and nodes.
pub fn report(id_name: &str) -> alloc::string::String {
    use core::fmt::Write;
    let mut line = alloc::format!("smp: {} CPUs up:", online_count());
    for (i, c) in online().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(
            line,
            "{sep}cpu{} {id_name} {:#x} node {}",
            c.id(),
            c.hw_id.load(Ordering::Relaxed),
            c.node.load(Ordering::Relaxed)
        );
    }
    line
}

/// Posts `request` to CPU `index`; returns whether it was not pending already (the
/// caller then interrupts the CPU so it looks).
pub fn post(index: usize, request: u32) -> bool {
    match cpu(index) {
        Some(c) => c.mailbox.pending.fetch_or(request, Ordering::AcqRel) & request == 0,
        None => false,
    }
}

// ---- requests between CPUs: TLB shootdowns, leaving a dying address space ----

/// Which CPUs a TLB shootdown must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Those whose installed root is this (a user page changed).
    RunningOn(u64),
    /// Every CPU (a kernel page changed: the kernel half is in every table).
    Everyone,
}

/// Leave the address space whose root is in [`Mailbox::leave_root`].
pub const REQUEST_LEAVE: u32 = 4;

/// Flush generations: each shootdown takes the next and waits until every CPU it
/// asked has carried out at least that one.
static FLUSH_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Makes every other CPU that `reach` names drop its cached translations, and waits
/// until each has (so the caller may free what the old translations pointed at).
/// A CPU joins `reach` by publishing its root in `active_root` *before* loading it,
/// so a CPU that loads the table after the change can only see the new entries.
pub fn shootdown(reach: Reach) {
    if online_count() < 2 {
        return;
    }
    let generation = FLUSH_GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
    let me = this_index();
    let mut asked = 0u64;
    for c in online().filter(|c| c.id() != me) {
        let on_it = match reach {
            Reach::Everyone => true,
            Reach::RunningOn(root) => c.active_root.load(Ordering::SeqCst) == root,
        };
        if !on_it {
            continue;
        }
        c.mailbox
            .flush_asked
            .fetch_max(generation, Ordering::AcqRel);
        if post(c.id(), REQUEST_FLUSH) {
            crate::arch::ipi::send(c);
        }
        asked |= 1 << c.id();
    }
    for c in online().filter(|c| asked & (1 << c.id()) != 0) {
        while c.mailbox.flush_done.load(Ordering::Acquire) < generation {
            serve_requests();
            core::hint::spin_loop();
        }
    }
}

/// Makes every other CPU execute a full memory barrier, and waits until each has:
/// the heavy side of an asymmetric fence, for per-CPU data whose owner uses plain
/// loads and stores (the frame allocator's magazines). A shootdown of everyone does
/// it: each CPU takes the request with an acquire and acknowledges with a release,
/// so whatever it stored before is visible here and whatever it loads after sees
/// what was stored here before the call. The TLB flush that comes with it is the
/// price of reusing the mechanism; callers are rare slow paths. On the host, the
/// arch fences the other threads (the simulated CPUs).
pub fn fence_others() {
    crate::arch::ipi::fence_other_threads();
    shootdown(Reach::Everyone);
}

/// Makes every other CPU that runs on the table `root` switch to the kernel's own
/// tables, and waits until each has: the caller is about to tear the table down.
/// Callers hold the process-table lock, under which roots are installed, so no CPU
/// can take the table up again meanwhile.
pub fn retire_root(root: u64) {
    if online_count() < 2 {
        return;
    }
    let me = this_index();
    for c in online().filter(|c| c.id() != me) {
        if c.active_root.load(Ordering::SeqCst) != root {
            continue;
        }
        c.mailbox.leave_root.store(root, Ordering::Release);
        if post(c.id(), REQUEST_LEAVE) {
            crate::arch::ipi::send(c);
        }
        while c.active_root.load(Ordering::SeqCst) == root {
            serve_requests();
            core::hint::spin_loop();
        }
    }
}

/// Carries out what other CPUs asked of this one (flushes, leaving a table); called
/// by the IPI handler and by every loop that waits with interrupts masked, so two
/// CPUs waiting on each other always make progress. Returns whether a reschedule
/// was asked for (only the IPI handler acts on that).
pub fn serve_requests() -> bool {
    let me = this();
    // A read first: waiting loops call this on every turn, and a swap would
    // write the line each time.
    if me.mailbox.pending.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let requests = me.mailbox.pending.swap(0, Ordering::AcqRel);
    if requests & REQUEST_LEAVE != 0 {
        let root = me.mailbox.leave_root.load(Ordering::Acquire);
        if me.active_root.load(Ordering::SeqCst) == root {
            crate::arch::ipi::leave_user_root();
        }
    }
    if requests & REQUEST_FLUSH != 0 {
        let asked = me.mailbox.flush_asked.load(Ordering::Acquire);
        crate::arch::ipi::flush_everything_local();
        me.mailbox.flush_done.fetch_max(asked, Ordering::AcqRel);
    }
    if requests & REQUEST_RESCHEDULE != 0 {
        me.resched.store(true, Ordering::Release);
        me.recheck.store(true, Ordering::Release);
    }
    requests & REQUEST_RESCHEDULE != 0
}

/// Asks CPU `index` to look at its run queue (a thread became ready for it).
pub fn kick(index: usize) {
    if index == this_index() {
        return;
    }
    if let Some(c) = cpu(index).filter(|c| c.is_online()) {
        if post(index, REQUEST_RESCHEDULE) {
            crate::arch::ipi::send(c);
        }
    }
}

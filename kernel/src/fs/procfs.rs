//! procfs: `/proc` as Linux 6.1 has it, read-only, rendered on each read from what
//! a [`ProcSource`] tells about the processes and the machine.
//!
//! ## What it owns
//! * Nothing that lives: no inode table. An inode number encodes which file it is
//!   and for whom ([`Id`]: entry, pid, fd or tid), so lookup, stat and read decode
//!   the number and ask the source; a number whose process, fd or thread is gone
//!   answers ENOENT (and read ESRCH, as Linux's `get_proc_task` failing does).
//! * The text formats: each file is rendered whole on every read, then copied
//!   from the offset asked, so reads at any offset concatenate to one consistent
//!   rendering only if nothing changed in between (as on Linux, which renders a
//!   `seq_file` per open; a file here has no per-open state).
//! * Directory cookies: `.` is 0, `..` 1, fixed entries from 2, and numbered
//!   entries (pids, fds, tids) at `dynamic base + number`, so an entry that goes
//!   away between two getdents calls makes no other entry skipped or repeated.
//!
//! The tree: the root has a directory per pid, `self`, `thread-self`, `mounts`
//! (a symlink to `self/mounts`, as on Linux), `meminfo`, `cpuinfo`, `uptime`,
//! `loadavg`, `stat`, `version`, `filesystems`, `cmdline` and `sys/kernel/{pid_max,
//! osrelease}`. A pid directory has `stat`, `status`, `statm`, `cmdline`, `comm`,
//! `maps`, `mounts`, the links `exe`, `cwd`, `root`, `fd/` and `task/TID/{stat,
//! status,comm}` (a thread shows its process's numbers with its own tid).
//!
//! ## Errnos (those Linux gives on this host for procfs)
//! A new name (create, mkdir, symlink, link, rename's target) is ENOENT, an
//! existing one EEXIST; unlink, rmdir and rename of existing names EPERM; write
//! EIO for the root's files and EINVAL for a process's (no write method);
//! truncate succeeds and changes nothing; chmod is EPERM, chown and utimes are
//! taken and forgotten (Linux keeps them on a transient inode).
//!
//! ## Locks
//! None: procfs holds no state. The source locks what it reads (the process
//! table), and returns copies, so no procfs call holds a lock while rendering.
#![deny(unsafe_code)]

use super::errno::{EEXIST, EINVAL, EIO, EISDIR, ENOENT, ENOMEM, ENOTDIR, EPERM};
use super::{copy_bytes, reserve, DeviceId, DirEntry, Errno, FileKind, FileSystem, Ino};
use super::{NewNode, NodeAttrs, RemoveKind, RenameMode, SetAttr, Stat, StatFs};
use super::{NAME_MAX, PAGE_BYTES};
use crate::syscall::errno::ESRCH;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// `f_type` of procfs in statfs.
pub const PROC_SUPER_MAGIC: u64 = 0x9fa0;
/// The release `version` and `sys/kernel/osrelease` report (as uname does).
pub const OSRELEASE: &str = "6.1.0";

/// Where procfs learns about processes and the machine (the kernel implements it
/// over its process table; tests with a fake).
pub trait ProcSource: Send + Sync {
    /// Pids of every process, alive or zombie, ascending.
    fn pids(&self) -> Vec<u32>;
    /// The calling thread: (pid, tid), for `self` and `thread-self`.
    fn caller(&self) -> Option<(u32, u32)>;
    /// What procfs shows of process `pid` (None: no such process).
    fn process(&self, pid: u32) -> Option<ProcessInfo>;
    /// Machine-wide facts.
    fn system(&self) -> SystemInfo;
}

/// A process's scheduling state, as `stat` and `status` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcState {
    /// `R (running)`: running or runnable.
    #[default]
    Running,
    /// `S (sleeping)`: blocked, interruptibly.
    Sleeping,
    /// `T (stopped)`: stopped by a signal.
    Stopped,
    /// `Z (zombie)`: exited, not yet reaped.
    Zombie,
}

impl ProcState {
    fn letter(self) -> char {
        match self {
            ProcState::Running => 'R',
            ProcState::Sleeping => 'S',
            ProcState::Stopped => 'T',
            ProcState::Zombie => 'Z',
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ProcState::Running => "R (running)",
            ProcState::Sleeping => "S (sleeping)",
            ProcState::Stopped => "T (stopped)",
            ProcState::Zombie => "Z (zombie)",
        }
    }
}

/// What procfs shows of one process. Times are in clock ticks
/// ([`SystemInfo::ticks_per_second`]); signal sets have bit `n - 1` for signal `n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    /// Process id (thread group id).
    pub pid: u32,
    /// Parent's pid.
    pub ppid: u32,
    /// Process group.
    pub pgid: u32,
    /// Session.
    pub sid: u32,
    /// Real = effective = saved = fs user id (owner of the pid directory).
    pub uid: u32,
    /// Real = effective = saved = fs group id.
    pub gid: u32,
    /// Command name (at most 15 bytes are shown, Linux's TASK_COMM_LEN - 1).
    pub comm: Vec<u8>,
    /// Scheduling state.
    pub state: ProcState,
    /// Tids of its threads, ascending (the first is the pid).
    pub threads: Vec<u32>,
    /// argv, each NUL-terminated.
    pub cmdline: Vec<u8>,
    /// The executable's path (None: none, as for a kernel thread).
    pub exe: Option<Vec<u8>>,
    /// Working directory path.
    pub cwd: Option<Vec<u8>>,
    /// Root directory path.
    pub root: Option<Vec<u8>>,
    /// Mappings, ascending.
    pub maps: Vec<MapInfo>,
    /// Open fds, ascending, with what `fd/N` links to ("/tmp/x", "pipe:[7]").
    pub fds: Vec<(u32, Vec<u8>)>,
    /// Virtual size in bytes.
    pub vm_size_bytes: u64,
    /// Resident pages.
    pub rss_pages: u64,
    /// Start time, in ticks since boot.
    pub start_ticks: u64,
    /// User time.
    pub utime_ticks: u64,
    /// System time.
    pub stime_ticks: u64,
    /// `stat`'s priority field (Linux: 20 + nice for normal tasks).
    pub priority: i32,
    /// Nice value.
    pub nice: i32,
    /// File creation mask.
    pub umask: u32,
    /// Signals pending for the threads (SigPnd).
    pub sig_pending: u64,
    /// Signals pending for the process as a whole (ShdPnd).
    pub sig_shared_pending: u64,
    /// Blocked signals (of the main thread).
    pub sig_blocked: u64,
    /// Ignored signals.
    pub sig_ignored: u64,
    /// Signals with a handler.
    pub sig_caught: u64,
    /// Context switches the process gave up the CPU for.
    pub voluntary_switches: u64,
    /// Context switches by preemption.
    pub involuntary_switches: u64,
}

/// One mapping, as a line of `maps`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapInfo {
    /// First address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// Shared (else private, copy-on-write).
    pub shared: bool,
    /// Offset into the mapped file, in bytes.
    pub offset: u64,
    /// "" (anonymous), "[heap]", "[stack]", or a path.
    pub name: Vec<u8>,
}

/// Which `cpuinfo` format to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arch {
    /// x86's (processor, vendor_id, cpu family, model name, flags, ...).
    #[default]
    X86_64,
    /// arm64's (processor, BogoMIPS, Features, CPU implementer, ...).
    Aarch64,
}

/// Machine-wide facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemInfo {
    /// Bytes per frame.
    pub page_size: u64,
    /// Frames of RAM.
    pub total_frames: u64,
    /// Free frames.
    pub free_frames: u64,
    /// Frames holding tmpfs data (meminfo's Shmem, and part of Cached).
    pub fs_pages: u64,
    /// Time since boot.
    pub uptime_ns: u64,
    /// Idle time, summed over the CPUs (uptime's second number).
    pub idle_ns: u64,
    /// Clock ticks per second (USER_HZ, 100).
    pub ticks_per_second: u64,
    /// The CPUs.
    pub cpus: Vec<CpuInfo>,
    /// cpuinfo's format.
    pub arch: Arch,
    /// The mount table.
    pub mounts: Vec<MountInfo>,
    /// Runnable threads.
    pub running: u32,
    /// Threads alive.
    pub processes_total: u32,
    /// Forks (and clones) since boot.
    pub forks_since_boot: u64,
    /// Context switches since boot.
    pub context_switches: u64,
    /// Boot time, seconds since the epoch.
    pub boot_time_secs: u64,
    /// Load averages over 1, 5, 15 minutes in Linux's `avenrun` fixed point:
    /// 1.0 is 2048 (FSHIFT 11).
    pub load: [u64; 3],
    /// The newest pid handed out.
    pub last_pid: u32,
    /// NUMA nodes (not shown yet: `/sys/devices/system/node` is sysfs's).
    pub nodes: Vec<NodeInfo>,
    /// The kernel command line, without a newline.
    pub cmdline: Vec<u8>,
    /// Highest pid + 1 allowed (`sys/kernel/pid_max`).
    pub pid_max: u32,
}

/// One CPU. The identification fields are what CPUID (x86) or MIDR_EL1 (arm64)
/// said; empty or 0 where the kernel did not read them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuInfo {
    /// Logical CPU number.
    pub id: u32,
    /// Its NUMA node.
    pub node: u32,
    /// x86 vendor string ("GenuineIntel"); "unknown" when empty.
    pub vendor: Vec<u8>,
    /// x86 brand string; "unknown" when empty.
    pub model_name: Vec<u8>,
    /// x86 family, model, stepping.
    pub family: u32,
    /// See `family`.
    pub model: u32,
    /// See `family`.
    pub stepping: u32,
    /// arm64 MIDR_EL1 (implementer, variant, part, revision).
    pub midr: u32,
    /// Feature flags, space-separated (x86 `flags`, arm64 `Features`).
    pub flags: Vec<u8>,
    /// BogoMIPS in hundredths.
    pub bogomips_x100: u64,
    /// Time in user mode, ticks.
    pub user_ticks: u64,
    /// Time in kernel mode, ticks.
    pub system_ticks: u64,
    /// Time idle, ticks.
    pub idle_ticks: u64,
}

/// One mount, as a line of `mounts`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MountInfo {
    /// What is mounted ("tmpfs", "proc", a device).
    pub source: Vec<u8>,
    /// Where.
    pub target: Vec<u8>,
    /// File system type.
    pub fstype: Vec<u8>,
    /// Options ("rw,relatime").
    pub options: Vec<u8>,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// Node number.
    pub id: u32,
    /// Its CPUs.
    pub cpus: Vec<u32>,
    /// Its frames.
    pub total_frames: u64,
    /// Its free frames.
    pub free_frames: u64,
}

/// Every file and directory procfs has, by what it is (not for whom). The
/// discriminant is the low byte of the inode number.
#[rustfmt::skip] // a table
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Root = 1, SelfLink, ThreadSelf, MountsLink, Meminfo, Cpuinfo, Uptime, Loadavg, SysStat,
    Version, Filesystems, Cmdline, Sys, SysKernel, PidMax, Osrelease,
    Pid, PidCmdline, PidComm, PidCwd, PidExe, PidFd, PidMaps, PidMounts, PidRoot, PidStat,
    PidStatm, PidStatus, PidTask, Fd, Tid, TidComm, TidStat, TidStatus,
}

use Entry::*;

/// [`Entry`] in discriminant order (index = discriminant - 1).
#[rustfmt::skip]
const ENTRIES: [Entry; 34] = [
    Root, SelfLink, ThreadSelf, MountsLink, Meminfo, Cpuinfo, Uptime, Loadavg, SysStat,
    Version, Filesystems, Cmdline, Sys, SysKernel, PidMax, Osrelease,
    Pid, PidCmdline, PidComm, PidCwd, PidExe, PidFd, PidMaps, PidMounts, PidRoot, PidStat,
    PidStatm, PidStatus, PidTask, Fd, Tid, TidComm, TidStat, TidStatus,
];

/// The fixed entries of each directory, in listing order.
#[rustfmt::skip]
const ROOT_LIST: &[Entry] = &[
    Cmdline, Cpuinfo, Filesystems, Loadavg, Meminfo, MountsLink, SelfLink, SysStat, Sys,
    ThreadSelf, Uptime, Version,
];
#[rustfmt::skip]
const PID_LIST: &[Entry] = &[
    PidCmdline, PidComm, PidCwd, PidExe, PidFd, PidMaps, PidMounts, PidRoot, PidStat,
    PidStatm, PidStatus, PidTask,
];
const TID_LIST: &[Entry] = &[TidComm, TidStat, TidStatus];

/// For whom an entry is: what the pid and arg parts of its inode number mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// pid 0, arg 0.
    Global,
    /// A process; arg 0.
    Process,
    /// A process's fd (arg: the fd).
    Fd,
    /// A process's thread (arg: the tid).
    Thread,
}

impl Entry {
    /// Name in its directory (empty for numbered ones), kind and permissions
    /// (Linux 6.1's).
    fn spec(self) -> (&'static str, FileKind, u32) {
        use FileKind::{Directory as D, Regular as R, Symlink as L};
        match self {
            Root | Pid | Tid => ("", D, 0o555),
            SelfLink => ("self", L, 0o777),
            ThreadSelf => ("thread-self", L, 0o777),
            MountsLink => ("mounts", L, 0o777),
            Meminfo => ("meminfo", R, 0o444),
            Cpuinfo => ("cpuinfo", R, 0o444),
            Uptime => ("uptime", R, 0o444),
            Loadavg => ("loadavg", R, 0o444),
            SysStat | PidStat | TidStat => ("stat", R, 0o444),
            Version => ("version", R, 0o444),
            Filesystems => ("filesystems", R, 0o444),
            Cmdline | PidCmdline => ("cmdline", R, 0o444),
            Sys => ("sys", D, 0o555),
            SysKernel => ("kernel", D, 0o555),
            PidMax => ("pid_max", R, 0o644),
            Osrelease => ("osrelease", R, 0o444),
            PidComm | TidComm => ("comm", R, 0o644),
            PidCwd => ("cwd", L, 0o777),
            PidExe => ("exe", L, 0o777),
            PidRoot => ("root", L, 0o777),
            PidFd => ("fd", D, 0o500),
            PidMaps => ("maps", R, 0o444),
            PidMounts => ("mounts", R, 0o444),
            PidStatm => ("statm", R, 0o444),
            PidStatus | TidStatus => ("status", R, 0o444),
            PidTask => ("task", D, 0o555),
            // Linux shows `lrwx------` for an fd open read-write; the source does
            // not say the open mode, so every fd looks like that.
            Fd => ("", L, 0o700),
        }
    }

    fn kind(self) -> FileKind {
        self.spec().1
    }

    fn scope(self) -> Scope {
        match self {
            Root | SelfLink | ThreadSelf | MountsLink | Meminfo | Cpuinfo | Uptime | Loadavg
            | SysStat | Version | Filesystems | Cmdline | Sys | SysKernel | PidMax | Osrelease => {
                Scope::Global
            }
            Fd => Scope::Fd,
            Tid | TidComm | TidStat | TidStatus => Scope::Thread,
            _ => Scope::Process,
        }
    }

    /// A directory's fixed entries.
    fn fixed(self) -> &'static [Entry] {
        match self {
            Root => ROOT_LIST,
            Sys => &[SysKernel],
            SysKernel => &[Osrelease, PidMax],
            Pid => PID_LIST,
            Tid => TID_LIST,
            _ => &[],
        }
    }

    /// What a directory's numbered entries are.
    fn numbered(self) -> Option<Entry> {
        match self {
            Root => Some(Pid),
            PidFd => Some(Fd),
            PidTask => Some(Tid),
            _ => None,
        }
    }
}

/// Bits of the inode number for the pid and for the arg (fd or tid).
const PID_BITS: u32 = 28;
const ARG_BITS: u32 = 28;
/// A number (pid, fd, tid) an inode number can hold; bigger ones are not shown.
const NUM_LIMIT: u32 = 1 << PID_BITS;

/// A decoded inode number: `pid << 36 | arg << 8 | entry`, so the root is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Id {
    entry: Entry,
    pid: u32,
    arg: u32,
}

impl Id {
    const fn new(entry: Entry, pid: u32, arg: u32) -> Id {
        Id { entry, pid, arg }
    }

    fn ino(self) -> Ino {
        (self.pid as u64) << (ARG_BITS + 8) | (self.arg as u64) << 8 | self.entry as u64
    }

    /// The id `ino` encodes, if it is one procfs could have made.
    fn decode(ino: Ino) -> Option<Id> {
        let entry = *ENTRIES.get((ino as u8 as usize).checked_sub(1)?)?;
        let pid = (ino >> (ARG_BITS + 8)) as u32;
        let arg = ((ino >> 8) & ((1 << ARG_BITS) - 1)) as u32;
        let ok = match entry.scope() {
            Scope::Global => pid == 0 && arg == 0,
            Scope::Process => pid != 0 && arg == 0,
            Scope::Fd => pid != 0,
            Scope::Thread => pid != 0 && arg != 0,
        };
        ok.then_some(Id { entry, pid, arg })
    }

    /// The directory holding it.
    fn parent(self) -> Id {
        let entry = match self.entry {
            Root | Sys | Pid => Root,
            SysKernel => Sys,
            PidMax | Osrelease => SysKernel,
            Fd => PidFd,
            Tid => PidTask,
            TidComm | TidStat | TidStatus => Tid,
            e if e.scope() == Scope::Global => Root,
            _ => Pid,
        };
        let arg = if entry == Tid { self.arg } else { 0 };
        let pid = if entry.scope() == Scope::Global {
            0
        } else {
            self.pid
        };
        Id::new(entry, pid, arg)
    }
}

/// Text rendered in fallibly allocated memory: a `write!` fails with
/// `fmt::Error` only when memory ran out, which [`render`] turns into ENOMEM.
struct Text(Vec<u8>);

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes())
    }
}

impl Text {
    fn bytes(&mut self, b: &[u8]) -> fmt::Result {
        reserve(&mut self.0, b.len()).map_err(|_| fmt::Error)?;
        self.0.extend_from_slice(b);
        Ok(())
    }
}

fn render(f: impl FnOnce(&mut Text) -> fmt::Result) -> Result<Vec<u8>, Errno> {
    let mut t = Text(Vec::new());
    f(&mut t).map_err(|_| ENOMEM)?;
    Ok(t.0)
}

/// A number's decimal text (directory entry names, link targets).
fn decimal(n: u32) -> Result<Vec<u8>, Errno> {
    render(|t| write!(t, "{n}"))
}

/// A directory entry name as a pid, fd or tid: decimal without a leading zero
/// (Linux's `name_to_int`), small enough for an inode number.
fn parse_number(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || (name[0] == b'0' && name.len() > 1) {
        return None;
    }
    let mut n: u64 = 0;
    for &b in name {
        n = n * 10 + u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
    }
    (n < u64::from(NUM_LIMIT)).then_some(n as u32)
}

/// procfs over one [`ProcSource`]; see the module documentation.
pub struct ProcFs {
    source: Arc<dyn ProcSource>,
    dev: DeviceId,
}

impl ProcFs {
    /// A procfs showing `source`, reporting `dev` as `st_dev`.
    pub fn new(source: Arc<dyn ProcSource>, dev: DeviceId) -> Self {
        ProcFs { source, dev }
    }

    /// `ino` decoded and checked against the source: its process (for a
    /// per-process entry), which still has the fd or thread. ENOENT otherwise.
    fn live(&self, ino: Ino) -> Result<(Id, Option<ProcessInfo>), Errno> {
        let id = Id::decode(ino).ok_or(ENOENT)?;
        if id.entry.scope() == Scope::Global {
            return Ok((id, None));
        }
        let p = self.source.process(id.pid).ok_or(ENOENT)?;
        let present = match id.entry.scope() {
            Scope::Fd => p.fds.iter().any(|f| f.0 == id.arg),
            Scope::Thread => p.threads.contains(&id.arg),
            _ => true,
        };
        if !present {
            return Err(ENOENT);
        }
        Ok((id, Some(p)))
    }

    /// `ino`, which must be a directory.
    fn live_dir(&self, ino: Ino) -> Result<(Id, Option<ProcessInfo>), Errno> {
        let (id, p) = self.live(ino)?;
        if id.entry.kind() != FileKind::Directory {
            return Err(ENOTDIR);
        }
        Ok((id, p))
    }

    /// The numbers of a directory's numbered entries that an inode number can
    /// hold (0 is no pid or tid), ascending.
    fn numbers(&self, id: Id, p: Option<ProcessInfo>) -> Result<Vec<u32>, Errno> {
        let mut v = match (id.entry, p) {
            (Root, _) => self.source.pids(),
            (PidTask, Some(p)) => p.threads,
            (PidFd, Some(p)) => {
                let mut v = Vec::new();
                reserve(&mut v, p.fds.len())?;
                v.extend(p.fds.iter().map(|f| f.0));
                v
            }
            _ => Vec::new(),
        };
        let zero_ok = id.entry == PidFd;
        v.retain(|&n| n < NUM_LIMIT && (zero_ok || n != 0));
        // Sorted here, so a cookie finds the next entry even if the source erred.
        v.sort_unstable();
        Ok(v)
    }

    /// The inode of numbered entry `n` of directory `dir`.
    fn numbered_child(dir: Id, entry: Entry, n: u32) -> Id {
        match entry {
            Pid => Id::new(Pid, n, 0),
            _ => Id::new(entry, dir.pid, n),
        }
    }

    /// The id of fixed entry `entry` of directory `dir`.
    fn fixed_child(dir: Id, entry: Entry) -> Id {
        match entry.scope() {
            Scope::Global => Id::new(entry, 0, 0),
            Scope::Thread => Id::new(entry, dir.pid, dir.arg),
            _ => Id::new(entry, dir.pid, 0),
        }
    }

    fn times(&self, p: Option<&ProcessInfo>) -> i64 {
        let sys = self.source.system();
        let hz = sys.ticks_per_second.max(1);
        let start_ns = p.map_or(0, |p| (p.start_ticks % hz) * 1_000_000_000 / hz);
        let secs = sys.boot_time_secs + p.map_or(0, |p| p.start_ticks / hz);
        i64::try_from(secs.saturating_mul(1_000_000_000).saturating_add(start_ns))
            .unwrap_or(i64::MAX)
    }

    /// Directory links: 2, plus one per subdirectory.
    fn nlink(&self, id: Id, p: Option<&ProcessInfo>) -> u32 {
        if id.entry.kind() != FileKind::Directory {
            return 1;
        }
        let fixed = id.entry.fixed().iter();
        let subdirs = fixed.filter(|e| e.kind() == FileKind::Directory).count();
        let numbered = match (id.entry, p) {
            (Root, _) => self.source.pids().len(),
            (PidTask, Some(p)) => p.threads.len(),
            _ => 0,
        };
        (2 + subdirs + numbered).min(u32::MAX as usize) as u32
    }

    fn read_link_of(&self, id: Id, p: Option<ProcessInfo>) -> Result<Vec<u8>, Errno> {
        let path = |v: Option<Vec<u8>>| v.ok_or(ENOENT);
        match (id.entry, p) {
            (SelfLink, _) => decimal(self.source.caller().ok_or(ENOENT)?.0),
            (ThreadSelf, _) => {
                let (pid, tid) = self.source.caller().ok_or(ENOENT)?;
                render(|t| write!(t, "{pid}/task/{tid}"))
            }
            (MountsLink, _) => copy_bytes(b"self/mounts"),
            (PidExe, Some(p)) => path(p.exe),
            (PidCwd, Some(p)) => path(p.cwd),
            (PidRoot, Some(p)) => path(p.root),
            (Fd, Some(p)) => path(p.fds.into_iter().find(|f| f.0 == id.arg).map(|f| f.1)),
            _ => Err(EINVAL),
        }
    }

    /// The whole text of regular file `id`.
    fn contents(&self, id: Id, p: Option<&ProcessInfo>) -> Result<Vec<u8>, Errno> {
        let sys = || self.source.system();
        match (id.entry, p) {
            (Meminfo, _) => render(|t| meminfo(t, &sys())),
            (Cpuinfo, _) => render(|t| cpuinfo(t, &sys())),
            (Uptime, _) => render(|t| uptime(t, &sys())),
            (Loadavg, _) => render(|t| loadavg(t, &sys())),
            (SysStat, _) => render(|t| system_stat(t, &sys())),
            (Version, _) => render(|t| {
                writeln!(
                    t,
                    "Linux version {OSRELEASE} (root@localhost) (rustc) #1 SMP"
                )
            }),
            (Filesystems, _) => copy_bytes(b"nodev\ttmpfs\nnodev\tdevtmpfs\nnodev\tproc\n"),
            (Cmdline, _) => render(|t| t.bytes(&sys().cmdline).and_then(|_| t.bytes(b"\n"))),
            (PidMax, _) => render(|t| writeln!(t, "{}", sys().pid_max)),
            (Osrelease, _) => render(|t| writeln!(t, "{OSRELEASE}")),
            (PidCmdline, Some(p)) => copy_bytes(&p.cmdline),
            (PidComm | TidComm, Some(p)) => {
                render(|t| t.bytes(comm(p)).and_then(|_| t.bytes(b"\n")))
            }
            (PidMaps, Some(p)) => render(|t| p.maps.iter().try_for_each(|m| map_line(t, m))),
            (PidMounts, Some(_)) => render(|t| mounts(t, &sys())),
            (PidStat, Some(p)) => render(|t| pid_stat(t, p, p.pid)),
            (TidStat, Some(p)) => render(|t| pid_stat(t, p, id.arg)),
            (PidStatm, Some(p)) => render(|t| statm(t, p, sys().page_size)),
            (PidStatus, Some(p)) => render(|t| status(t, p, p.pid, sys().page_size)),
            (TidStatus, Some(p)) => render(|t| status(t, p, id.arg, sys().page_size)),
            _ => Err(EINVAL),
        }
    }
}

/// The command name as Linux keeps it (15 bytes at most).
fn comm(p: &ProcessInfo) -> &[u8] {
    &p.comm[..p.comm.len().min(15)]
}

/// `n` pages in kB.
fn kb(pages: u64, page_size: u64) -> u64 {
    pages.saturating_mul(page_size) / 1024
}

fn meminfo(t: &mut Text, s: &SystemInfo) -> fmt::Result {
    let k = |pages| kb(pages, s.page_size);
    let (total, free, shmem) = (k(s.total_frames), k(s.free_frames), k(s.fs_pages));
    for name in MEMINFO.split_whitespace() {
        // tmpfs pages cannot be reclaimed without swap, so only free memory is
        // available; Cached counts them, as Linux's does (shmem is page cache).
        let v = match name {
            "MemTotal:" => total,
            "MemFree:" | "MemAvailable:" => free,
            "Cached:" | "Inactive:" | "Inactive(anon):" | "Shmem:" => shmem,
            "CommitLimit:" => total / 2,
            "Hugepagesize:" => 2048,
            _ => 0,
        };
        let unit = if name.starts_with("HugePages_") {
            ""
        } else {
            " kB"
        };
        writeln!(t, "{name:<16}{v:>8}{unit}")?;
    }
    Ok(())
}

/// The lines of `meminfo`, in Linux's order (those of no configured feature left
/// out, as a kernel built without it does).
const MEMINFO: &str = "MemTotal: MemFree: MemAvailable: Buffers: Cached: SwapCached: Active: \
    Inactive: Active(anon): Inactive(anon): Active(file): Inactive(file): Unevictable: \
    Mlocked: SwapTotal: SwapFree: Zswap: Zswapped: Dirty: Writeback: AnonPages: Mapped: \
    Shmem: KReclaimable: Slab: SReclaimable: SUnreclaim: KernelStack: PageTables: \
    SecPageTables: NFS_Unstable: Bounce: WritebackTmp: CommitLimit: Committed_AS: \
    VmallocTotal: VmallocUsed: VmallocChunk: Percpu: AnonHugePages: ShmemHugePages: \
    ShmemPmdMapped: FileHugePages: FilePmdMapped: HugePages_Total: HugePages_Free: \
    HugePages_Rsvd: HugePages_Surp: Hugepagesize: Hugetlb:";

fn cpuinfo(t: &mut Text, s: &SystemInfo) -> fmt::Result {
    for c in &s.cpus {
        let (id, mips, cents) = (c.id, c.bogomips_x100 / 100, c.bogomips_x100 % 100);
        writeln!(t, "processor\t: {id}")?;
        if s.arch == Arch::X86_64 {
            cpuinfo_x86(t, c, s.cpus.len())?;
            continue;
        }
        write!(t, "BogoMIPS\t: {mips}.{cents:02}\nFeatures\t: ")?;
        t.bytes(&c.flags)?;
        // MIDR_EL1: implementer [31:24], variant [23:20], part [15:4], revision [3:0].
        let m = c.midr;
        let (imp, var, part, rev) = (m >> 24, (m >> 20) & 0xf, (m >> 4) & 0xfff, m & 0xf);
        write!(
            t,
            "\nCPU implementer\t: 0x{imp:02x}\nCPU architecture: 8\nCPU variant\t: 0x{var:x}\n\
             CPU part\t: 0x{part:03x}\nCPU revision\t: {rev}\n\n"
        )?;
    }
    Ok(())
}

/// x86's "unknown" for an identification string CPUID did not give.
fn or_unknown(v: &[u8]) -> &[u8] {
    if v.is_empty() {
        b"unknown"
    } else {
        v
    }
}

fn cpuinfo_x86(t: &mut Text, c: &CpuInfo, n: usize) -> fmt::Result {
    let (id, mips, cents) = (c.id, c.bogomips_x100 / 100, c.bogomips_x100 % 100);
    t.bytes(b"vendor_id\t: ")?;
    t.bytes(or_unknown(&c.vendor))?;
    write!(
        t,
        "\ncpu family\t: {}\nmodel\t\t: {}\nmodel name\t: ",
        c.family, c.model
    )?;
    t.bytes(or_unknown(&c.model_name))?;
    write!(
        t,
        "\nstepping\t: {}\nphysical id\t: 0\nsiblings\t: {n}\ncore id\t\t: {id}\n\
         cpu cores\t: {n}\napicid\t\t: {id}\ninitial apicid\t: {id}\nfpu\t\t: yes\n\
         fpu_exception\t: yes\nwp\t\t: yes\nflags\t\t: ",
        c.stepping
    )?;
    t.bytes(&c.flags)?;
    write!(
        t,
        "\nbogomips\t: {mips}.{cents:02}\nclflush size\t: 64\ncache_alignment\t: 64\n\
         power management:\n\n"
    )
}

/// Nanoseconds as `S.CC` (seconds and hundredths).
fn centi(ns: u64) -> (u64, u64) {
    (ns / 1_000_000_000, ns / 10_000_000 % 100)
}

fn uptime(t: &mut Text, s: &SystemInfo) -> fmt::Result {
    let (u, i) = (centi(s.uptime_ns), centi(s.idle_ns));
    writeln!(t, "{}.{:02} {}.{:02}", u.0, u.1, i.0, i.1)
}

fn loadavg(t: &mut Text, s: &SystemInfo) -> fmt::Result {
    // Linux's LOAD_INT / LOAD_FRAC, rounded by FIXED_1 / 200 as get_avenrun does.
    for l in s.load {
        let l = l.saturating_add(2048 / 200);
        write!(t, "{}.{:02} ", l >> 11, ((l & 2047) * 100) >> 11)?;
    }
    writeln!(t, "{}/{} {}", s.running, s.processes_total, s.last_pid)
}

fn system_stat(t: &mut Text, s: &SystemInfo) -> fmt::Result {
    let sum = |f: fn(&CpuInfo) -> u64| s.cpus.iter().map(f).fold(0u64, u64::saturating_add);
    let (user, sys, idle) = (
        sum(|c| c.user_ticks),
        sum(|c| c.system_ticks),
        sum(|c| c.idle_ticks),
    );
    writeln!(t, "cpu  {user} 0 {sys} {idle} 0 0 0 0 0 0")?;
    for c in &s.cpus {
        let (u, k, i) = (c.user_ticks, c.system_ticks, c.idle_ticks);
        writeln!(t, "cpu{} {u} 0 {k} {i} 0 0 0 0 0 0", c.id)?;
    }
    write!(
        t,
        "intr 0\nctxt {}\nbtime {}\n",
        s.context_switches, s.boot_time_secs
    )?;
    write!(
        t,
        "processes {}\nprocs_running {}\n",
        s.forks_since_boot, s.running
    )?;
    t.bytes(b"procs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n")
}

/// Writes `b` with Linux's `mangle` of mount fields: space, tab, newline and
/// backslash as octal escapes, so each line stays six fields.
fn escaped(t: &mut Text, b: &[u8]) -> fmt::Result {
    for &c in b {
        match c {
            b' ' | b'\t' | b'\n' | b'\\' => write!(t, "\\{c:03o}")?,
            _ => t.bytes(&[c])?,
        }
    }
    Ok(())
}

fn mounts(t: &mut Text, s: &SystemInfo) -> fmt::Result {
    for m in &s.mounts {
        for field in [&m.source, &m.target, &m.fstype, &m.options] {
            escaped(t, field)?;
            t.bytes(b" ")?;
        }
        t.bytes(b"0 0\n")?;
    }
    Ok(())
}

/// One line of `maps`: Linux's `%08lx-%08lx %c%c%c%c %08llx 00:00 0 `, then a
/// name padded to column 73 (`seq_setwidth` of 25 + 6 * sizeof(void *) - 1, and
/// a space).
fn map_line(t: &mut Text, m: &MapInfo) -> fmt::Result {
    let start = t.0.len();
    let flag = |on, c| if on { c } else { '-' };
    let (r, w, x) = (flag(m.read, 'r'), flag(m.write, 'w'), flag(m.exec, 'x'));
    let s = if m.shared { 's' } else { 'p' };
    write!(
        t,
        "{:08x}-{:08x} {r}{w}{x}{s} {:08x} 00:00 0 ",
        m.start, m.end, m.offset
    )?;
    if !m.name.is_empty() {
        let pad = 72usize.saturating_sub(t.0.len() - start);
        write!(t, "{:pad$} ", "")?;
        t.bytes(&m.name)?;
    }
    t.bytes(b"\n")
}

/// `stat` of process `p` as thread `tid`: the 52 fields of proc(5). tty_nr is 0
/// and tpgid -1 (no terminal known), rsslim RLIM_INFINITY, exit_signal SIGCHLD;
/// the old decimal signal fields hold the first 31 signals, as Linux's do; the
/// code, stack, register and other fields nobody tells procfs are 0.
fn pid_stat(t: &mut Text, p: &ProcessInfo, tid: u32) -> fmt::Result {
    write!(t, "{tid} (")?;
    t.bytes(comm(p))?;
    let (st, ppid, pgid, sid) = (p.state.letter(), p.ppid, p.pgid, p.sid);
    let (ut, stime) = (p.utime_ticks, p.stime_ticks);
    let (prio, nice, threads, start) = (p.priority, p.nice, p.threads.len(), p.start_ticks);
    let (vsize, rss, inf) = (p.vm_size_bytes, p.rss_pages, u64::MAX);
    let low = |s: u64| s & 0x7fff_ffff;
    let (pend, blk) = (
        low(p.sig_pending | p.sig_shared_pending),
        low(p.sig_blocked),
    );
    let (ign, cgt) = (low(p.sig_ignored), low(p.sig_caught));
    writeln!(
        t,
        ") {st} {ppid} {pgid} {sid} 0 -1 0 0 0 0 0 {ut} {stime} 0 0 {prio} {nice} {threads} 0 \
         {start} {vsize} {rss} {inf} 0 0 0 0 0 {pend} {blk} {ign} {cgt} 0 0 0 17 0 0 0 0 0 0 \
         0 0 0 0 0 0 0 0"
    )
}

fn pages_of(p: &ProcessInfo, page_size: u64, keep: fn(&MapInfo) -> bool) -> u64 {
    let maps = p.maps.iter().filter(|m| keep(m));
    let bytes = maps.map(|m| m.end.saturating_sub(m.start));
    bytes.fold(0u64, u64::saturating_add) / page_size.max(1)
}

/// `statm`: size resident shared text lib data dt, in pages (text: executable
/// mappings; data: private writable ones; shared, lib, dt 0).
fn statm(t: &mut Text, p: &ProcessInfo, page_size: u64) -> fmt::Result {
    let size = p.vm_size_bytes / page_size.max(1);
    let text = pages_of(p, page_size, |m| m.exec);
    let data = pages_of(p, page_size, |m| m.write && !m.shared);
    writeln!(t, "{size} {} 0 {text} 0 {data} 0", p.rss_pages)
}

/// `status` of process `p` as thread `tid`, in Linux 6.1's order. Peak and
/// high-water marks are the current sizes (no history is kept).
fn status(t: &mut Text, p: &ProcessInfo, tid: u32, page_size: u64) -> fmt::Result {
    t.bytes(b"Name:\t")?;
    for &c in comm(p) {
        match c {
            b'\n' => t.bytes(b"\\n")?,
            b'\\' => t.bytes(b"\\\\")?,
            _ => t.bytes(&[c])?,
        }
    }
    let (umask, state, pid, ppid, u, g) =
        (p.umask, p.state.describe(), p.pid, p.ppid, p.uid, p.gid);
    // FDSize: the fd table's size, at least 64 and grown by doubling.
    let top = p.fds.last().map_or(0, |f| f.0 as u64 + 1);
    let fds = top.max(64).next_power_of_two();
    write!(
        t,
        "\nUmask:\t{umask:04o}\nState:\t{state}\nTgid:\t{pid}\nNgid:\t0\nPid:\t{tid}\n\
         PPid:\t{ppid}\nTracerPid:\t0\nUid:\t{u}\t{u}\t{u}\t{u}\nGid:\t{g}\t{g}\t{g}\t{g}\n\
         FDSize:\t{fds}\nGroups:\t \nNStgid:\t{pid}\nNSpid:\t{tid}\nNSpgid:\t{}\nNSsid:\t{}\n",
        p.pgid, p.sid
    )?;
    if p.state != ProcState::Zombie {
        let (vm, rss) = (p.vm_size_bytes / 1024, kb(p.rss_pages, page_size));
        let vm_lines = [("VmPeak", vm), ("VmSize", vm), ("VmLck", 0), ("VmPin", 0)];
        for (name, v) in vm_lines.into_iter().chain([("VmHWM", rss), ("VmRSS", rss)]) {
            writeln!(t, "{name}:\t{v:>8} kB")?;
        }
    }
    let (threads, pnd, shd, blk) = (
        p.threads.len(),
        p.sig_pending,
        p.sig_shared_pending,
        p.sig_blocked,
    );
    let (ign, cgt, vol, invol) = (
        p.sig_ignored,
        p.sig_caught,
        p.voluntary_switches,
        p.involuntary_switches,
    );
    writeln!(
        t,
        "Threads:\t{threads}\nSigPnd:\t{pnd:016x}\nShdPnd:\t{shd:016x}\nSigBlk:\t{blk:016x}\n\
         SigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\nvoluntary_ctxt_switches:\t{vol}\n\
         nonvoluntary_ctxt_switches:\t{invol}"
    )
}

impl FileSystem for ProcFs {
    fn root(&self) -> Ino {
        Id::new(Root, 0, 0).ino()
    }

    fn stat(&self, ino: Ino) -> Result<Stat, Errno> {
        let (id, p) = self.live(ino)?;
        let (_, kind, perm) = id.entry.spec();
        let time = self.times(p.as_ref());
        Ok(Stat {
            ino,
            dev: self.dev,
            kind,
            perm,
            nlink: self.nlink(id, p.as_ref()),
            uid: p.as_ref().map_or(0, |p| p.uid),
            gid: p.as_ref().map_or(0, |p| p.gid),
            // Files are sized 0, as on Linux (read renders them); fd links 64.
            size: if id.entry == Fd { 64 } else { 0 },
            blocks: 0,
            rdev: DeviceId::default(),
            atime: time,
            mtime: time,
            ctime: time,
        })
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        let (id, p) = self.live_dir(dir)?;
        if let Some(&e) = id
            .entry
            .fixed()
            .iter()
            .find(|e| e.spec().0.as_bytes() == name)
        {
            return Ok(Self::fixed_child(id, e).ino());
        }
        let entry = id.entry.numbered().ok_or(ENOENT)?;
        let n = parse_number(name).ok_or(ENOENT)?;
        let child = Self::numbered_child(id, entry, n);
        let exists = match (entry, p.as_ref()) {
            (Pid, _) => n != 0 && self.source.process(n).is_some(),
            (Fd, Some(p)) => p.fds.iter().any(|f| f.0 == n),
            (Tid, Some(p)) => n != 0 && p.threads.contains(&n),
            _ => false,
        };
        exists.then(|| child.ino()).ok_or(ENOENT)
    }

    fn parent(&self, dir: Ino) -> Result<Ino, Errno> {
        let (id, _) = self.live_dir(dir)?;
        Ok(id.parent().ino())
    }

    fn create(&self, dir: Ino, name: &[u8], _: NewNode<'_>, _: NodeAttrs) -> Result<Ino, Errno> {
        // Linux's procfs lookup fails for a new name before any create is tried.
        match self.lookup(dir, name) {
            Ok(_) => Err(EEXIST),
            Err(e) => Err(e),
        }
    }

    fn link(&self, dir: Ino, name: &[u8], target: Ino) -> Result<(), Errno> {
        self.live(target)?;
        self.create(dir, name, NewNode::Regular, NodeAttrs::root(0))
            .map(|_| ())
    }

    fn remove(&self, dir: Ino, name: &[u8], _: RemoveKind) -> Result<(), Errno> {
        self.lookup(dir, name)?;
        Err(EPERM)
    }

    fn rename(
        &self,
        from_dir: Ino,
        from_name: &[u8],
        to_dir: Ino,
        to_name: &[u8],
        _: RenameMode,
    ) -> Result<(), Errno> {
        self.lookup(from_dir, from_name)?;
        self.lookup(to_dir, to_name)?;
        Err(EPERM)
    }

    fn read_link(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        let (id, p) = self.live(ino)?;
        self.read_link_of(id, p)
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let (id, p) = match self.live(ino) {
            // An open file of a process that has gone: Linux's `get_proc_task` fails.
            Err(ENOENT) if Id::decode(ino).is_some_and(|i| i.entry.scope() != Scope::Global) => {
                return Err(ESRCH)
            }
            r => r?,
        };
        match id.entry.kind() {
            FileKind::Regular => {}
            FileKind::Directory => return Err(EISDIR),
            _ => return Err(EINVAL),
        }
        let text = self.contents(id, p.as_ref())?;
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(text.len());
        let n = buf.len().min(text.len() - from);
        buf[..n].copy_from_slice(&text[from..from + n]);
        Ok(n)
    }

    fn write(&self, ino: Ino, _: u64, _: &[u8]) -> Result<usize, Errno> {
        let (id, _) = self.live(ino)?;
        match (id.entry.kind(), id.entry.scope()) {
            (FileKind::Directory, _) => Err(EISDIR),
            (FileKind::Regular, Scope::Global) => Err(EIO),
            _ => Err(EINVAL),
        }
    }

    fn truncate(&self, ino: Ino, _: u64) -> Result<(), Errno> {
        let (id, _) = self.live(ino)?;
        match id.entry.kind() {
            FileKind::Regular => Ok(()),
            FileKind::Directory => Err(EISDIR),
            _ => Err(EINVAL),
        }
    }

    fn read_dir(&self, dir: Ino, cookie: u64) -> Result<Option<DirEntry>, Errno> {
        let (id, p) = self.live_dir(dir)?;
        let entry = |ino, kind, name: &[u8], next| -> Result<_, Errno> {
            let name = copy_bytes(name)?;
            Ok(Some(DirEntry {
                ino,
                kind,
                name,
                next,
            }))
        };
        let dir_kind = FileKind::Directory;
        match cookie {
            0 => return entry(dir, dir_kind, b".", 1),
            1 => return entry(id.parent().ino(), dir_kind, b"..", 2),
            _ => {}
        }
        let fixed = id.entry.fixed();
        let base = 2 + fixed.len() as u64;
        if let Some(&e) = fixed.get((cookie - 2) as usize) {
            let (name, kind, _) = e.spec();
            return entry(
                Self::fixed_child(id, e).ino(),
                kind,
                name.as_bytes(),
                cookie + 1,
            );
        }
        let Some(child) = id.entry.numbered() else {
            return Ok(None);
        };
        let from = cookie.saturating_sub(base);
        let numbers = self.numbers(id, p)?;
        let Some(&n) = numbers.iter().find(|&&n| u64::from(n) >= from) else {
            return Ok(None);
        };
        let ino = Self::numbered_child(id, child, n).ino();
        let name = decimal(n)?;
        entry(ino, child.kind(), &name, base + u64::from(n) + 1)
    }

    fn set_attr(&self, ino: Ino, change: &SetAttr) -> Result<(), Errno> {
        self.live(ino)?;
        if change.perm.is_some() {
            return Err(EPERM);
        }
        Ok(())
    }

    fn type_name(&self) -> &'static str {
        "proc"
    }

    fn generated(&self) -> bool {
        true
    }

    fn statfs(&self) -> StatFs {
        StatFs {
            magic: PROC_SUPER_MAGIC,
            block_size: PAGE_BYTES,
            blocks: 0,
            blocks_free: 0,
            files: 0,
            files_free: 0,
            name_max: NAME_MAX as u64,
        }
    }

    fn retain(&self, _: Ino) -> Result<(), Errno> {
        Ok(())
    }

    fn release(&self, _: Ino) {}
}

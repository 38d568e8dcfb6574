//! Per-process resource limits ([`Limits`], the `limits` field of
//! [`crate::process::Process`]) and the calls that read and set them: getrlimit,
//! setrlimit, prlimit64.
//!
//! ## What it owns
//! The sixteen Linux limits (`RLIMIT_CPU` .. `RLIMIT_RTTIME`, the same numbers on
//! x86_64 and aarch64), each a soft value (what is enforced) and a hard one (the
//! ceiling for the soft one). A new process made by the kernel gets Linux's
//! `INIT_RLIMITS` ([`Limits::default`]); fork and clone copy the parent's, the
//! threads of a process share them (they are the process's), exec keeps them.
//!
//! ## Who enforces what
//! * `RLIMIT_NOFILE`: the fd table ([`super::fd`]): EMFILE when no fd below the soft
//!   limit is free, EINVAL for F_DUPFD from at or above it, EBADF for dup2/dup3 to it.
//! * `RLIMIT_AS`: mmap and brk ([`check_address_space`]): ENOMEM (brk: the break
//!   stays) when the mappings would outgrow it.
//! * `RLIMIT_STACK`: the size of the stack exec maps ([`stack_size`]).
//! * `RLIMIT_NPROC`: not enforced, as on Linux for root (everyone is root here:
//!   Linux lets a process with `CAP_SYS_RESOURCE` fork beyond it).
//! * The others are kept and reported only (no CPU-time accounting, no core dumps,
//!   no writable files, no mlock, no message queues, no real-time policies).
//!
//! ## Permissions
//! Everyone is root, so a hard limit may be raised and any process's limits may be
//! read or set through prlimit64; what Linux refuses even root is refused too
//! (`RLIMIT_NOFILE` above `fs.nr_open`, EPERM).

use super::user_mem::UserPtr;
use super::{Errno, Sys, EINVAL, ENOMEM, EPERM, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::PAGE_SIZE;
use crate::process::{Pid, Tid, MAX_PROCESSES};
use core::ops::Range;

/// "No limit" (Linux's `RLIM_INFINITY`, all ones).
pub const RLIM_INFINITY: u64 = u64::MAX;
/// Number of limits (Linux's `RLIM_NLIMITS`).
pub const RLIM_NLIMITS: usize = 16;
/// Most fds the soft or hard `RLIMIT_NOFILE` may allow (Linux's `fs.nr_open`).
pub const NR_OPEN: u64 = 1 << 20;
/// Stack size exec maps at the least, whatever `RLIMIT_STACK` says: room for the
/// argument strings (128 KiB) and a frame or two.
pub const MIN_STACK: u64 = 256 << 10;
/// Stack size exec maps at the most (an unlimited `RLIMIT_STACK` included): the
/// stack is one demand-zero region, so this costs address space, not memory.
pub const MAX_STACK: u64 = 1 << 30;

/// A resource a limit applies to, with Linux's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// CPU time in seconds (`RLIMIT_CPU`).
    Cpu = 0,
    /// Largest file a process may write (`RLIMIT_FSIZE`).
    Fsize = 1,
    /// Data segment size (`RLIMIT_DATA`).
    Data = 2,
    /// Main stack size (`RLIMIT_STACK`).
    Stack = 3,
    /// Core file size (`RLIMIT_CORE`).
    Core = 4,
    /// Resident set size (`RLIMIT_RSS`, ignored by Linux too).
    Rss = 5,
    /// Processes of the user (`RLIMIT_NPROC`).
    Nproc = 6,
    /// One more than the highest fd that may be opened (`RLIMIT_NOFILE`).
    Nofile = 7,
    /// Locked memory (`RLIMIT_MEMLOCK`).
    Memlock = 8,
    /// Address-space size (`RLIMIT_AS`).
    As = 9,
    /// File locks (`RLIMIT_LOCKS`).
    Locks = 10,
    /// Queued signals (`RLIMIT_SIGPENDING`).
    Sigpending = 11,
    /// POSIX message-queue bytes (`RLIMIT_MSGQUEUE`).
    Msgqueue = 12,
    /// Nice ceiling (`RLIMIT_NICE`).
    Nice = 13,
    /// Real-time priority ceiling (`RLIMIT_RTPRIO`).
    Rtprio = 14,
    /// Real-time CPU time in microseconds (`RLIMIT_RTTIME`).
    Rttime = 15,
}

impl Resource {
    const ALL: [Resource; RLIM_NLIMITS] = [
        Resource::Cpu,
        Resource::Fsize,
        Resource::Data,
        Resource::Stack,
        Resource::Core,
        Resource::Rss,
        Resource::Nproc,
        Resource::Nofile,
        Resource::Memlock,
        Resource::As,
        Resource::Locks,
        Resource::Sigpending,
        Resource::Msgqueue,
        Resource::Nice,
        Resource::Rtprio,
        Resource::Rttime,
    ];

    /// The resource a system call's argument names. The argument is an `unsigned
    /// int`: only its low 32 bits count, as on Linux. EINVAL beyond the last.
    pub fn from_arg(arg: usize) -> Result<Resource, Errno> {
        let n = arg as u32 as usize;
        Resource::ALL.get(n).copied().ok_or(EINVAL)
    }
}

/// One limit: `cur` is enforced, `max` is the most `cur` may be raised to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The soft limit.
    pub cur: u64,
    /// The hard limit.
    pub max: u64,
}

impl Rlimit {
    /// Soft and hard limit `both`.
    pub const fn both(both: u64) -> Rlimit {
        Rlimit {
            cur: both,
            max: both,
        }
    }
    /// No limit at all.
    pub const UNLIMITED: Rlimit = Rlimit::both(RLIM_INFINITY);

    /// As user memory holds it (`struct rlimit`, `struct rlimit64`: two u64).
    fn from_words([cur, max]: [u64; 2]) -> Rlimit {
        Rlimit { cur, max }
    }

    fn words(self) -> [u64; 2] {
        [self.cur, self.max]
    }
}

/// Every limit of a process, indexed by [`Resource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits([Rlimit; RLIM_NLIMITS]);

impl Default for Limits {
    /// Linux's `INIT_RLIMITS`, what its first process starts with (no login manager
    /// raises them here). `RLIMIT_NPROC` and `RLIMIT_SIGPENDING`, which Linux derives
    /// from the RAM (half its thread maximum), are the process table's limit.
    fn default() -> Self {
        let mut l = [Rlimit::UNLIMITED; RLIM_NLIMITS];
        let tasks = MAX_PROCESSES as u64;
        l[Resource::Stack as usize] = Rlimit {
            cur: 8 << 20,
            max: RLIM_INFINITY,
        };
        l[Resource::Core as usize] = Rlimit {
            cur: 0,
            max: RLIM_INFINITY,
        };
        l[Resource::Nproc as usize] = Rlimit::both(tasks);
        l[Resource::Nofile as usize] = Rlimit {
            cur: 1024,
            max: 4096,
        };
        l[Resource::Memlock as usize] = Rlimit::both(8 << 20);
        l[Resource::Sigpending as usize] = Rlimit::both(tasks);
        l[Resource::Msgqueue as usize] = Rlimit::both(819_200);
        for r in [Resource::Nice, Resource::Rtprio] {
            l[r as usize] = Rlimit::both(0);
        }
        Limits(l)
    }
}

impl Limits {
    /// The limit of `r`.
    pub fn get(&self, r: Resource) -> Rlimit {
        self.0[r as usize]
    }

    /// The soft limit of `r`, the one enforced.
    pub fn soft(&self, r: Resource) -> u64 {
        self.get(r).cur
    }

    /// Sets the limit of `r` to `new` with Linux's checks (`do_prlimit`): EINVAL if
    /// the soft limit is above the hard one, EPERM for an `RLIMIT_NOFILE` above
    /// `fs.nr_open`. Raising a hard limit is allowed (the caller is root). Nothing
    /// changes on an error.
    pub fn set(&mut self, r: Resource, new: Rlimit) -> Result<(), Errno> {
        if new.cur > new.max {
            return Err(EINVAL);
        }
        if r == Resource::Nofile && new.max > NR_OPEN {
            return Err(EPERM);
        }
        self.0[r as usize] = new;
        Ok(())
    }
}

/// The soft `RLIMIT_NOFILE` of the caller as an fd bound: fds below it may be opened.
pub fn fd_limit<A: FrameSource + Clone>(sys: &Sys<'_, A>) -> Result<usize, Errno> {
    let soft = sys.process()?.limits.soft(Resource::Nofile);
    Ok(usize::try_from(soft).unwrap_or(usize::MAX))
}

/// `RLIMIT_AS` for a new mapping of `len` bytes that replaces whatever is mapped in
/// `replaced` (MAP_FIXED; an empty range otherwise): ENOMEM if the caller's regions
/// would outgrow it. Like Linux, the limit counts in whole pages.
pub fn check_address_space<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    len: u64,
    replaced: Range<u64>,
) -> Result<(), Errno> {
    let limit = sys.process()?.limits.soft(Resource::As);
    if limit == RLIM_INFINITY {
        return Ok(()); // the usual case costs no walk over the regions
    }
    let (mut mapped, mut gone) = (0u64, 0u64);
    for r in sys.space()?.regions() {
        mapped += r.end - r.start;
        gone += r
            .end
            .min(replaced.end)
            .saturating_sub(r.start.max(replaced.start));
    }
    match (mapped - gone).checked_add(len) {
        Some(total) if total / PAGE_SIZE <= limit / PAGE_SIZE => Ok(()),
        _ => Err(ENOMEM),
    }
}

/// The size of the stack exec maps for a process whose soft `RLIMIT_STACK` is
/// `soft`: that many bytes in whole pages, kept within [`MIN_STACK`] and
/// [`MAX_STACK`] (Linux grows the stack on demand up to the limit; here it is one
/// region of that size from the start).
pub fn stack_size(soft: u64) -> u64 {
    let pages = soft.min(MAX_STACK).div_ceil(PAGE_SIZE);
    (pages * PAGE_SIZE).max(MIN_STACK)
}

/// The process prlimit64's `pid` names: 0 is the caller; otherwise the process of
/// the thread with that id (any thread names its process, as on Linux), or the
/// process itself (a zombie too, until it is reaped). ESRCH for anything else.
fn target<A: FrameSource + Clone>(sys: &Sys<'_, A>, pid: usize) -> Result<Pid, Errno> {
    let id = pid as i32; // a pid_t
    if id == 0 {
        return sys.pid();
    }
    let id = u32::try_from(id).map_err(|_| ESRCH)?;
    let live_thread = sys
        .table
        .thread(Tid(id))
        .filter(|t| !t.has_exited())
        .map(|t| t.pid);
    let process = || sys.table.process(Pid(id)).map(|p| p.pid);
    live_thread.or_else(process).ok_or(ESRCH)
}

/// Reads `r`'s limit of `pid` and, if `new` is given, sets it; returns the old one.
fn exchange<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: Pid,
    r: Resource,
    new: Option<Rlimit>,
) -> Result<Rlimit, Errno> {
    let p = sys.table.process_mut(pid).ok_or(ESRCH)?;
    let old = p.limits.get(r);
    if let Some(new) = new {
        p.limits.set(r, new)?;
    }
    Ok(old)
}

/// The `struct rlimit` at `addr` of the caller (EFAULT if unreadable).
fn read_rlimit<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, addr: usize) -> Result<Rlimit, Errno> {
    let words = UserPtr::<[u64; 2]>::new(addr).read(&mut *sys.space()?)?;
    Ok(Rlimit::from_words(words))
}

/// Writes `limit` to the caller's `struct rlimit` at `addr` (EFAULT if unwritable).
fn write_rlimit<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    addr: usize,
    limit: Rlimit,
) -> Result<(), Errno> {
    UserPtr::<[u64; 2]>::new(addr).write(&mut *sys.space()?, &limit.words())
}

/// getrlimit(resource, rlim): EINVAL for an unknown resource (before the pointer is
/// used), EFAULT for a bad pointer.
pub fn sys_getrlimit<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    resource: usize,
    rlim: usize,
) -> Result<usize, Errno> {
    let r = Resource::from_arg(resource)?;
    let pid = sys.pid()?;
    let old = exchange(sys, pid, r, None)?;
    write_rlimit(sys, rlim, old)?;
    Ok(0)
}

/// setrlimit(resource, rlim): the new limit is read first (EFAULT), then checked as
/// [`Limits::set`] says (EINVAL for an unknown resource too).
pub fn sys_setrlimit<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    resource: usize,
    rlim: usize,
) -> Result<usize, Errno> {
    let new = read_rlimit(sys, rlim)?;
    let r = Resource::from_arg(resource)?;
    let pid = sys.pid()?;
    exchange(sys, pid, r, Some(new))?;
    Ok(0)
}

/// prlimit64(pid, resource, new, old), in Linux's order: read `new` if given
/// (EFAULT), find `pid` (ESRCH), check the resource and the new limit (EINVAL,
/// EPERM) and set it, then write the old one to `old` if given (EFAULT, the new
/// limit staying set, as on Linux).
pub fn sys_prlimit64<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
    resource: usize,
    new: usize,
    old: usize,
) -> Result<usize, Errno> {
    let new = match new {
        0 => None,
        addr => Some(read_rlimit(sys, addr)?),
    };
    let pid = target(sys, pid)?;
    let r = Resource::from_arg(resource)?;
    let was = exchange(sys, pid, r, new)?;
    if old != 0 {
        write_rlimit(sys, old, was)?;
    }
    Ok(0)
}

//! System calls: Linux x86_64 numbers, Linux semantics, Linux errno values.
//!
//! [`handle_syscall`] is what the arch syscall entry calls (after saving the user
//! registers). It locks the process table and the scheduler (in that order), finds
//! the calling thread (`scheduler::current()`) and hands a [`Sys`] context to
//! [`dispatch`], which calls one function per system call (one file per family).
//! Each function checks its arguments first, in Linux's order, then hands the work to
//! the process table or the address space. Typed errors become [`Errno`] values in
//! one place (`errno.rs`). Unknown numbers give `ENOSYS`.
//!
//! A call that must wait joins wait queues and blocks ([`blocking`]), returning
//! [`Errno::ERESTARTSYS`]: the task layer then switches to the next thread and
//! re-issues the call when the thread runs again. Wake-ups a call made (a pipe write
//! waking its reader) are applied before [`dispatch`] returns, so the woken thread
//! is ready before the caller goes back to user mode.

#![deny(unsafe_code)]

pub mod args;
pub mod attrs;
pub mod blocking;
pub mod brk;
pub mod clone;
pub mod copy;
pub mod dirs;
pub mod errno;
pub mod execve;
mod exit;
pub mod fast;
pub mod fd;
mod fork;
pub mod futex;
mod getpid;
pub mod identity;
pub mod io;
pub mod job;
pub mod machine;
pub mod misc;
pub mod mmap;
pub mod numbers;
pub mod oom;
pub mod open;
pub mod overcommit;
pub mod path;
pub mod pipe;
pub mod poll;
pub mod proc_view;
pub mod random;
pub mod rlimit;
pub mod rusage;
mod sched;
pub mod signal;
pub mod sigqueue;
pub mod stat;
pub mod terminal;
mod tid_address;
pub mod time;
pub mod user_mem;
pub mod wait;

pub use errno::*;
pub use numbers::*;

use crate::memory::frame_allocator::FrameSource;
use crate::process::lane::SpaceGuard;
use crate::process::scheduler::{Scheduler, SCHEDULER};
use crate::process::{Pid, Process, ProcessTable, Tid, PROCESS_TABLE};

/// Everything a system call acts on: the tables and the calling thread.
pub struct Sys<'a, A: FrameSource + Clone> {
    /// The process table.
    pub table: &'a mut ProcessTable<A>,
    /// The scheduler.
    pub sched: SchedRef<'a>,
    /// The calling thread.
    pub tid: Tid,
}

/// The scheduler as a call reaches it: the global one locked only once the call
/// first needs it (most never do: reads, writes, mmap, munmap, fork), or one the
/// caller holds. So a long call (an munmap's shootdowns, a fork's copy) does not
/// keep every other CPU's timer tick waiting for the scheduler's lock. The lock is
/// taken under the table's (the lock order) and held until the call ends.
pub enum SchedRef<'a> {
    /// A scheduler the caller holds (a test's own, or the global one, locked).
    Held(&'a mut Scheduler),
    /// The global scheduler, locked on first use.
    Lazy(core::cell::OnceCell<crate::sync::IrqMutexGuard<'static, Scheduler>>),
}

impl<'a> From<&'a mut Scheduler> for SchedRef<'a> {
    fn from(s: &'a mut Scheduler) -> Self {
        SchedRef::Held(s)
    }
}

impl SchedRef<'_> {
    /// The global scheduler, not locked yet.
    pub fn lazy() -> Self {
        SchedRef::Lazy(core::cell::OnceCell::new())
    }

    /// What ends every call: the wake-ups it made are applied (if the call never
    /// took the scheduler's lock, only when some may be queued).
    pub fn apply_wakeups(&mut self) {
        match self {
            SchedRef::Held(s) => s.apply_wakeups(),
            SchedRef::Lazy(cell) => match cell.get_mut() {
                Some(s) => s.apply_wakeups(),
                None => crate::process::scheduler::apply_queued_wakeups(),
            },
        }
    }
}

impl core::ops::Deref for SchedRef<'_> {
    type Target = Scheduler;
    fn deref(&self) -> &Scheduler {
        match self {
            SchedRef::Held(s) => s,
            SchedRef::Lazy(cell) => cell.get_or_init(|| SCHEDULER.lock()),
        }
    }
}

impl core::ops::DerefMut for SchedRef<'_> {
    fn deref_mut(&mut self) -> &mut Scheduler {
        match self {
            SchedRef::Held(s) => s,
            SchedRef::Lazy(cell) => {
                if cell.get().is_none() {
                    let _ = cell.set(SCHEDULER.lock());
                }
                match cell.get_mut() {
                    Some(s) => s,
                    None => unreachable!("set just above"),
                }
            }
        }
    }
}

impl<A: FrameSource + Clone> Sys<'_, A> {
    /// The calling process.
    pub fn pid(&self) -> Result<Pid, Errno> {
        self.table.thread(self.tid).map(|t| t.pid).ok_or(ESRCH)
    }

    /// The calling process.
    pub fn process(&self) -> Result<&Process, Errno> {
        self.table.process(self.pid()?).ok_or(ESRCH)
    }

    /// The calling process's fd table.
    pub fn files(&self) -> Result<fd::Files, Errno> {
        Ok(self.process()?.files.clone())
    }

    /// The calling process's signal dispositions.
    pub fn signals(&self) -> Result<signal::Actions, Errno> {
        Ok(self.process()?.signals.clone())
    }

    /// The calling process's address space.
    pub fn space(&mut self) -> Result<SpaceGuard<'_, A>, Errno> {
        let pid = self.pid()?;
        Ok(self.table.space_mut(pid)?)
    }

    /// Blocking calls act on the running thread: refuse (ESRCH) if the caller is not it.
    fn caller_must_be_current(&self) -> Result<(), Errno> {
        match self.sched.current() == Some(self.tid) {
            true => Ok(()),
            false => Err(ESRCH),
        }
    }

    /// Gives a new thread to the scheduler at its priority.
    fn admit(&mut self, tid: Tid) -> Result<(), Errno> {
        let priority = self.table.thread(tid).ok_or(ESRCH)?.priority;
        Ok(self.sched.add(tid, priority)?)
    }
}

/// Runs system call `num` for the current thread of the global scheduler.
pub fn handle_syscall(
    num: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> Result<usize, Errno> {
    let tid = crate::process::scheduler::current().ok_or(ESRCH)?;
    handle_syscall_as(tid, num, [a1, a2, a3, a4, a5, a6])
}

/// Runs system call `num` with arguments `a` for thread `tid` (the running one):
/// the table locked, the scheduler when the call needs it.
pub fn handle_syscall_as(tid: Tid, num: usize, a: [usize; 6]) -> Result<usize, Errno> {
    dispatch_on(&mut PROCESS_TABLE.lock(), tid, num, a)
}

/// [`handle_syscall_as`] for a caller that holds no lock and runs on its own
/// address space (a system call's top level): if another CPU holds the table, the
/// wait halts this CPU with interrupts on and may be preempted
/// ([`IrqMutex::lock_preemptible`](crate::sync::IrqMutex::lock_preemptible)).
pub fn handle_syscall_preemptible(tid: Tid, num: usize, a: [usize; 6]) -> Result<usize, Errno> {
    dispatch_on(&mut PROCESS_TABLE.lock_preemptible(), tid, num, a)
}

/// Runs call `num` for thread `tid` on the locked global `table`.
fn dispatch_on(
    table: &mut ProcessTable<crate::memory::frame_allocator::GlobalFrames>,
    tid: Tid,
    num: usize,
    a: [usize; 6],
) -> Result<usize, Errno> {
    let mut sys = Sys {
        table,
        sched: SchedRef::lazy(),
        tid,
    };
    dispatch(&mut sys, num, a)
}

/// read(fd, buf, len) for thread `tid` (the running one) of the unnamed pipe `p` the
/// fast path found behind `fd` and must wait for ([`fast::Fast::WaitOnPipe`]): as
/// [`handle_syscall_as`] would read it, without looking the fd up again.
pub fn read_pipe_as(tid: Tid, p: &fd::PipeFd, a: [usize; 6]) -> Result<usize, Errno> {
    let mut table = PROCESS_TABLE.lock();
    let mut sys = Sys {
        table: &mut table,
        sched: SchedRef::lazy(),
        tid,
    };
    let [_, buf, len, ..] = args::narrow(SYS_READ, a);
    let result = io::read_found_pipe(&mut sys, p, buf, len);
    sys.sched.apply_wakeups();
    result
}

/// Runs `f` on the kernel's tables as thread `tid` (the task layer's way to finish a
/// call that waited: [`blocking::end_call`], [`blocking::interrupted_answer`]).
pub fn with_thread<R>(
    tid: Tid,
    f: impl FnOnce(&mut Sys<'_, crate::memory::frame_allocator::GlobalFrames>) -> R,
) -> R {
    let mut table = PROCESS_TABLE.lock();
    let mut sys = Sys {
        table: &mut table,
        sched: SchedRef::lazy(),
        tid,
    };
    f(&mut sys)
}

/// Runs system call `num` with arguments `a` in the context `sys`.
pub fn dispatch<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    num: usize,
    a: [usize; 6],
) -> Result<usize, Errno> {
    let result = dispatch_call(sys, num, a);
    sys.sched.apply_wakeups();
    result
}

/// `AT_FDCWD` as an argument: the path calls without `at` are their `*at` forms
/// relative to the working directory.
const CWD: usize = fd::AT_FDCWD as usize;

fn dispatch_call<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    num: usize,
    a: [usize; 6],
) -> Result<usize, Errno> {
    let a = args::narrow(num, a);
    match num {
        SYS_READ => io::sys_read(sys, a[0], a[1], a[2]),
        SYS_WRITE => io::sys_write(sys, a[0], a[1], a[2]),
        SYS_WRITEV => io::sys_writev(sys, a[0], a[1], a[2]),
        SYS_IOCTL => io::sys_ioctl(sys, a[0], a[1], a[2]),
        SYS_CLOCK_GETTIME => time::sys_clock_gettime(sys, a[0], a[1]),
        SYS_GETTIMEOFDAY => time::sys_gettimeofday(sys, a[0], a[1]),
        SYS_TIME => time::sys_time(sys, a[0]),
        SYS_GETRANDOM => random::sys_getrandom(sys, a[0], a[1], a[2]),
        SYS_MMAP => mmap::sys_mmap(sys, a[0], a[1], a[2], a[3], a[4], a[5]),
        SYS_MPROTECT => mmap::sys_mprotect(sys, a[0], a[1], a[2]),
        SYS_MUNMAP => mmap::sys_munmap(sys, a[0], a[1]),
        SYS_MSYNC => mmap::sys_msync(sys, a[0], a[1], a[2]),
        SYS_SCHED_YIELD => sched::sys_sched_yield(sys),
        SYS_GETPID => getpid::sys_getpid(sys),
        SYS_GETPPID => getpid::sys_getppid(sys),
        SYS_GETTID => getpid::sys_gettid(sys),
        SYS_CLONE => clone::sys_clone(sys, a[0], a[1], a[2], a[3], a[4]),
        SYS_EXECVE => execve::sys_execve(sys, a[0], a[1], a[2]),
        SYS_FORK => fork::sys_fork(sys),
        SYS_VFORK => fork::sys_vfork(sys),
        SYS_EXIT => exit::sys_exit(sys, a[0]),
        SYS_EXIT_GROUP => exit::sys_exit_group(sys, a[0]),
        SYS_WAIT4 => wait::sys_wait4(sys, a[0], a[1], a[2], a[3]),
        SYS_WAITID => wait::sys_waitid(sys, a[0], a[1], a[2], a[3]),
        SYS_SETPGID => job::sys_setpgid(sys, a[0], a[1]),
        SYS_GETPGID => job::sys_getpgid(sys, a[0]),
        SYS_GETPGRP => job::sys_getpgid(sys, 0),
        SYS_GETSID => job::sys_getsid(sys, a[0]),
        SYS_SETSID => job::sys_setsid(sys),
        SYS_NANOSLEEP => time::sys_nanosleep(sys, a[0], a[1]),
        SYS_CLOCK_NANOSLEEP => time::sys_clock_nanosleep(sys, a[0], a[1], a[2]),
        SYS_ALARM => time::sys_alarm(sys, a[0]),
        SYS_GETITIMER => time::sys_getitimer(sys, a[0], a[1]),
        SYS_SETITIMER => time::sys_setitimer(sys, a[0], a[1], a[2]),
        SYS_BRK => brk::sys_brk(sys, a[0]),
        SYS_CLOSE => fd::sys_close(sys, a[0]),
        SYS_OPEN => open::sys_openat(sys, CWD, a[0], a[1], a[2]),
        SYS_OPENAT => open::sys_openat(sys, a[0], a[1], a[2], a[3]),
        SYS_CREAT => open::sys_creat(sys, a[0], a[1]),
        SYS_LSEEK => io::sys_lseek(sys, a[0], a[1], a[2]),
        SYS_PREAD64 => io::sys_pread64(sys, a[0], a[1], a[2], a[3]),
        SYS_PWRITE64 => io::sys_pwrite64(sys, a[0], a[1], a[2], a[3]),
        SYS_READV => io::sys_readv(sys, a[0], a[1], a[2]),
        SYS_STAT => stat::sys_stat(sys, a[0], a[1]),
        SYS_FSTAT => stat::sys_fstat(sys, a[0], a[1]),
        SYS_LSTAT => stat::sys_lstat(sys, a[0], a[1]),
        SYS_NEWFSTATAT => stat::sys_newfstatat(sys, a[0], a[1], a[2], a[3]),
        SYS_STATX => stat::sys_statx(sys, a[0], a[1], a[2], a[3], a[4]),
        SYS_STATFS => stat::sys_statfs(sys, a[0], a[1]),
        SYS_FSTATFS => stat::sys_fstatfs(sys, a[0], a[1]),
        SYS_ACCESS => stat::sys_faccessat2(sys, CWD, a[0], a[1], 0),
        SYS_FACCESSAT => stat::sys_faccessat2(sys, a[0], a[1], a[2], 0),
        SYS_FACCESSAT2 => stat::sys_faccessat2(sys, a[0], a[1], a[2], a[3]),
        SYS_GETDENTS64 => dirs::sys_getdents64(sys, a[0], a[1], a[2]),
        SYS_MKDIR => dirs::sys_mkdirat(sys, CWD, a[0], a[1]),
        SYS_MKDIRAT => dirs::sys_mkdirat(sys, a[0], a[1], a[2]),
        SYS_MKNOD => dirs::sys_mknodat(sys, CWD, a[0], a[1], a[2]),
        SYS_MKNODAT => dirs::sys_mknodat(sys, a[0], a[1], a[2], a[3]),
        SYS_RMDIR => dirs::sys_unlinkat(sys, CWD, a[0], path::AT_REMOVEDIR),
        SYS_UNLINK => dirs::sys_unlinkat(sys, CWD, a[0], 0),
        SYS_UNLINKAT => dirs::sys_unlinkat(sys, a[0], a[1], a[2]),
        SYS_RENAME => dirs::sys_renameat2(sys, CWD, a[0], CWD, a[1], 0),
        SYS_RENAMEAT => dirs::sys_renameat2(sys, a[0], a[1], a[2], a[3], 0),
        SYS_RENAMEAT2 => dirs::sys_renameat2(sys, a[0], a[1], a[2], a[3], a[4]),
        SYS_LINK => dirs::sys_linkat(sys, CWD, a[0], CWD, a[1], 0),
        SYS_LINKAT => dirs::sys_linkat(sys, a[0], a[1], a[2], a[3], a[4]),
        SYS_SYMLINK => dirs::sys_symlinkat(sys, a[0], CWD, a[1]),
        SYS_SYMLINKAT => dirs::sys_symlinkat(sys, a[0], a[1], a[2]),
        SYS_READLINK => dirs::sys_readlinkat(sys, CWD, a[0], a[1], a[2]),
        SYS_READLINKAT => dirs::sys_readlinkat(sys, a[0], a[1], a[2], a[3]),
        SYS_CHDIR => dirs::sys_chdir(sys, a[0]),
        SYS_FCHDIR => dirs::sys_fchdir(sys, a[0]),
        SYS_CHMOD => attrs::sys_fchmodat(sys, CWD, a[0], a[1], 0),
        SYS_FCHMOD => attrs::sys_fchmod(sys, a[0], a[1]),
        // The system call has no flags argument (fchmodat2 added one).
        SYS_FCHMODAT => attrs::sys_fchmodat(sys, a[0], a[1], a[2], 0),
        SYS_CHOWN => attrs::sys_fchownat(sys, CWD, a[0], a[1], a[2], 0),
        SYS_LCHOWN => attrs::sys_fchownat(sys, CWD, a[0], a[1], a[2], path::AT_SYMLINK_NOFOLLOW),
        SYS_FCHOWN => attrs::sys_fchown(sys, a[0], a[1], a[2]),
        SYS_FCHOWNAT => attrs::sys_fchownat(sys, a[0], a[1], a[2], a[3], a[4]),
        SYS_UTIMENSAT => attrs::sys_utimensat(sys, a[0], a[1], a[2], a[3]),
        SYS_TRUNCATE => attrs::sys_truncate(sys, a[0], a[1]),
        SYS_FTRUNCATE => attrs::sys_ftruncate(sys, a[0], a[1]),
        SYS_FSYNC | SYS_FDATASYNC | SYS_SYNCFS => attrs::sys_fsync(sys, a[0]),
        SYS_SYNC => Ok(0),
        SYS_SENDFILE => copy::sys_sendfile(sys, a[0], a[1], a[2], a[3]),
        SYS_COPY_FILE_RANGE => copy::sys_copy_file_range(sys, a[0], a[1], a[2], a[3], a[4], a[5]),
        SYS_PIPE => fd::sys_pipe2(sys, a[0], 0),
        SYS_PIPE2 => fd::sys_pipe2(sys, a[0], a[1]),
        SYS_DUP => fd::sys_dup(sys, a[0]),
        SYS_DUP2 => fd::sys_dup2(sys, a[0], a[1]),
        SYS_DUP3 => fd::sys_dup3(sys, a[0], a[1], a[2]),
        SYS_FCNTL => fd::sys_fcntl(sys, a[0], a[1], a[2]),
        SYS_FUTEX => futex::sys_futex(sys, a[0], a[1], a[2], a[3], a[4], a[5]),
        SYS_KILL => signal::sys_kill(sys, a[0], a[1]),
        SYS_TKILL => signal::sys_tkill(sys, a[0], a[1]),
        SYS_TGKILL => signal::sys_tgkill(sys, a[0], a[1], a[2]),
        SYS_UNAME => misc::sys_uname(sys, a[0]),
        SYS_GETRUSAGE => rusage::sys_getrusage(sys, a[0], a[1]),
        SYS_GETCWD => dirs::sys_getcwd(sys, a[0], a[1]),
        SYS_UMASK => dirs::sys_umask(sys, a[0]),
        SYS_RT_SIGACTION => misc::sys_rt_sigaction(sys, a[0], a[1], a[2], a[3]),
        SYS_RT_SIGPROCMASK => misc::sys_rt_sigprocmask(sys, a[0], a[1], a[2], a[3]),
        SYS_SIGALTSTACK => misc::sys_sigaltstack(sys, a[0], a[1]),
        SYS_POLL => poll::sys_poll(sys, a[0], a[1], a[2]),
        SYS_PPOLL => poll::sys_ppoll(sys, a[0], a[1], a[2], a[3], a[4]),
        SYS_SELECT => poll::sys_select(sys, [a[0], a[1], a[2], a[3], a[4]]),
        SYS_PSELECT6 => poll::sys_pselect6(sys, a),
        SYS_PAUSE => misc::sys_pause(sys),
        SYS_RT_SIGSUSPEND => misc::sys_rt_sigsuspend(sys, a[0], a[1]),
        SYS_RT_SIGPENDING => misc::sys_rt_sigpending(sys, a[0], a[1]),
        SYS_RT_SIGTIMEDWAIT => sigqueue::sys_rt_sigtimedwait(sys, a[0], a[1], a[2], a[3]),
        SYS_RT_SIGQUEUEINFO => sigqueue::sys_rt_sigqueueinfo(sys, a[0], a[1], a[2]),
        SYS_RT_TGSIGQUEUEINFO => sigqueue::sys_rt_tgsigqueueinfo(sys, a[0], a[1], a[2], a[3]),
        n if SYS_IDS.contains(&n) => Ok(0),
        SYS_GETGROUPS => identity::sys_getgroups(sys, a[0]),
        SYS_SETGROUPS => identity::sys_setgroups(sys, a[0], a[1]),
        SYS_PRCTL => identity::sys_prctl(sys, a[0], a[1]),
        SYS_SCHED_GETAFFINITY => sched::sys_sched_getaffinity(sys, a[0], a[1], a[2]),
        SYS_SCHED_SETAFFINITY => sched::sys_sched_setaffinity(sys, a[0], a[1], a[2]),
        SYS_GETCPU => sched::sys_getcpu(sys, a[0], a[1]),
        SYS_SET_TID_ADDRESS => tid_address::sys_set_tid_address(sys, a[0]),
        SYS_GETRLIMIT => rlimit::sys_getrlimit(sys, a[0], a[1]),
        SYS_SETRLIMIT => rlimit::sys_setrlimit(sys, a[0], a[1]),
        SYS_PRLIMIT64 => rlimit::sys_prlimit64(sys, a[0], a[1], a[2], a[3]),
        _ => Err(ENOSYS),
    }
}

#[cfg(test)]
mod fmmap_tests;
#[cfg(test)]
mod fs_tests;
#[cfg(test)]
mod io_tests;
#[cfg(test)]
mod kmem_tests;
#[cfg(test)]
mod oom_tests;
#[cfg(test)]
mod piece_tests;
#[cfg(test)]
mod ring3_tests;
#[cfg(test)]
mod rlimit_tests;
#[cfg(test)]
mod signal_proptests;
#[cfg(test)]
mod tests;

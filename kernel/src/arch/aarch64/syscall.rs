//! The aarch64 system-call ABI: `svc #0` with the number in x8, arguments in x0..x5,
//! the result in x0. Numbers follow the generic table (`asm-generic/unistd.h`); the
//! kernel's canonical numbering is Linux x86_64's ([`crate::syscall::numbers`]), so
//! [`translate`] maps one to the other, and reorders `clone`'s arguments (the generic
//! ABI passes `tls` before `child_tid`; x86_64 the other way round).
//!
//! Calls that do not exist in the generic table (`open`, `fork`, `vfork`, `pipe`,
//! `dup2`, `poll`, `arch_prctl`) are simply unreachable from aarch64 user code, as on
//! Linux; numbers the kernel does not know translate to `None` (the entry answers
//! `-ENOSYS`).

use crate::syscall::numbers::*;

/// (generic number, canonical number) for every call the kernel implements or names,
/// sorted by generic number.
pub const TABLE: &[(usize, usize)] = &[
    (17, SYS_GETCWD),
    (23, SYS_DUP),
    (24, SYS_DUP3),
    (25, SYS_FCNTL),
    (29, SYS_IOCTL),
    (33, SYS_MKNODAT),
    (34, SYS_MKDIRAT),
    (35, SYS_UNLINKAT),
    (36, SYS_SYMLINKAT),
    (37, SYS_LINKAT),
    (38, SYS_RENAMEAT),
    (43, SYS_STATFS),
    (44, SYS_FSTATFS),
    (45, SYS_TRUNCATE),
    (46, SYS_FTRUNCATE),
    (48, SYS_FACCESSAT),
    (49, SYS_CHDIR),
    (50, SYS_FCHDIR),
    (52, SYS_FCHMOD),
    (53, SYS_FCHMODAT),
    (54, SYS_FCHOWNAT),
    (55, SYS_FCHOWN),
    (56, SYS_OPENAT),
    (57, SYS_CLOSE),
    (59, SYS_PIPE2),
    (61, SYS_GETDENTS64),
    (62, SYS_LSEEK),
    (63, SYS_READ),
    (64, SYS_WRITE),
    (65, SYS_READV),
    (66, SYS_WRITEV),
    (67, SYS_PREAD64),
    (68, SYS_PWRITE64),
    (71, SYS_SENDFILE),
    (72, SYS_PSELECT6),
    (73, SYS_PPOLL),
    (78, SYS_READLINKAT),
    (79, SYS_NEWFSTATAT),
    (80, SYS_FSTAT),
    (81, SYS_SYNC),
    (82, SYS_FSYNC),
    (83, SYS_FDATASYNC),
    (88, SYS_UTIMENSAT),
    (93, SYS_EXIT),
    (94, SYS_EXIT_GROUP),
    (95, SYS_WAITID),
    (96, SYS_SET_TID_ADDRESS),
    (98, SYS_FUTEX),
    (101, SYS_NANOSLEEP),
    (102, SYS_GETITIMER),
    (103, SYS_SETITIMER),
    (113, SYS_CLOCK_GETTIME),
    (115, SYS_CLOCK_NANOSLEEP),
    (122, SYS_SCHED_SETAFFINITY),
    (123, SYS_SCHED_GETAFFINITY),
    (124, SYS_SCHED_YIELD),
    (129, SYS_KILL),
    (130, SYS_TKILL),
    (131, SYS_TGKILL),
    (132, SYS_SIGALTSTACK),
    (133, SYS_RT_SIGSUSPEND),
    (134, SYS_RT_SIGACTION),
    (135, SYS_RT_SIGPROCMASK),
    (136, SYS_RT_SIGPENDING),
    (137, SYS_RT_SIGTIMEDWAIT),
    (138, SYS_RT_SIGQUEUEINFO),
    (139, SYS_RT_SIGRETURN),
    (154, SYS_SETPGID),
    (155, SYS_GETPGID),
    (156, SYS_GETSID),
    (157, SYS_SETSID),
    (158, SYS_GETGROUPS),
    (159, SYS_SETGROUPS),
    (160, SYS_UNAME),
    (163, SYS_GETRLIMIT),
    (164, SYS_SETRLIMIT),
    (165, SYS_GETRUSAGE),
    (166, SYS_UMASK),
    (167, SYS_PRCTL),
    (168, SYS_GETCPU),
    (169, SYS_GETTIMEOFDAY),
    (172, SYS_GETPID),
    (173, SYS_GETPPID),
    (174, SYS_GETUID),
    (175, SYS_GETEUID),
    (176, SYS_GETGID),
    (177, SYS_GETEGID),
    (178, SYS_GETTID),
    (214, SYS_BRK),
    (215, SYS_MUNMAP),
    (220, SYS_CLONE),
    (221, SYS_EXECVE),
    (222, SYS_MMAP),
    (226, SYS_MPROTECT),
    (227, SYS_MSYNC),
    (240, SYS_RT_TGSIGQUEUEINFO),
    (260, SYS_WAIT4),
    (261, SYS_PRLIMIT64),
    (267, SYS_SYNCFS),
    (276, SYS_RENAMEAT2),
    (278, SYS_GETRANDOM),
    (285, SYS_COPY_FILE_RANGE),
    (291, SYS_STATX),
    (439, SYS_FACCESSAT2),
];

// Sorted, so each generic number appears once (a duplicate would be a neighbour).
const _: () = {
    let mut i = 1;
    while i < TABLE.len() {
        assert!(TABLE[i - 1].0 < TABLE[i].0, "TABLE must be sorted");
        i += 1;
    }
};

/// One past the highest generic number in [`TABLE`].
const GENERIC_END: usize = TABLE[TABLE.len() - 1].0 + 1;

/// Marks a generic number the kernel does not know in [`BY_GENERIC`].
const UNKNOWN: u16 = u16::MAX;

/// [`TABLE`] indexed by generic number (canonical number, or [`UNKNOWN`]): one load
/// per call instead of a binary search of seven steps on every system call.
static BY_GENERIC: [u16; GENERIC_END] = {
    let mut by = [UNKNOWN; GENERIC_END];
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].1 < UNKNOWN as usize);
        by[TABLE[i].0] = TABLE[i].1 as u16;
        i += 1;
    }
    by
};

/// The canonical number of generic call `number`, or `None` for a number the kernel
/// does not know.
pub fn canonical(number: usize) -> Option<usize> {
    match BY_GENERIC.get(number) {
        Some(&c) if c != UNKNOWN => Some(usize::from(c)),
        _ => None,
    }
}

/// The canonical number and arguments of generic call `number` with `args`, or
/// `None` for a number the kernel does not know.
pub fn translate(number: usize, args: [usize; 6]) -> Option<(usize, [usize; 6])> {
    let canonical = canonical(number)?;
    let mut a = args;
    if canonical == SYS_CLONE {
        a.swap(3, 4);
    }
    Some((canonical, a))
}

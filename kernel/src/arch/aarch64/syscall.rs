//! The aarch64 system-call ABI: `svc #0` with the number in x8, arguments in x0..x5,
//! the result in x0. Numbers follow the generic table (`asm-generic/unistd.h`); the
//! kernel's canonical numbering is Linux x86_64's ([`crate::syscall::numbers`]), so
//! [`translate`] maps one to the other, and reorders `clone`'s arguments (the generic
//! ABI passes `tls` before `child_tid`; x86_64 the other way round).
//!
//! Calls that do not exist in the generic table (`open`, `fork`, `vfork`,
//! `arch_prctl`) are simply unreachable from aarch64 user code; numbers the kernel
//! does not know translate to `None` (the entry answers `-ENOSYS`).

use crate::syscall::numbers::*;

/// (generic number, canonical number) for every call the kernel implements or names.
pub const TABLE: &[(usize, usize)] = &[
    (29, SYS_IOCTL),
    (57, SYS_CLOSE),
    (63, SYS_READ),
    (64, SYS_WRITE),
    (66, SYS_WRITEV),
    (93, SYS_EXIT),
    (94, SYS_EXIT_GROUP),
    (96, SYS_SET_TID_ADDRESS),
    (98, SYS_FUTEX),
    (101, SYS_NANOSLEEP),
    (113, SYS_CLOCK_GETTIME),
    (124, SYS_SCHED_YIELD),
    (129, SYS_KILL),
    (134, SYS_RT_SIGACTION),
    (135, SYS_RT_SIGPROCMASK),
    (160, SYS_UNAME),
    (172, SYS_GETPID),
    (173, SYS_GETPPID),
    (178, SYS_GETTID),
    (214, SYS_BRK),
    (215, SYS_MUNMAP),
    (220, SYS_CLONE),
    (221, SYS_EXECVE),
    (222, SYS_MMAP),
    (226, SYS_MPROTECT),
    (260, SYS_WAIT4),
    (278, SYS_GETRANDOM),
];

/// The canonical number and arguments of generic call `number` with `args`, or
/// `None` for a number the kernel does not know.
pub fn translate(number: usize, args: [usize; 6]) -> Option<(usize, [usize; 6])> {
    let &(_, canonical) = TABLE.iter().find(|&&(g, _)| g == number)?;
    let mut a = args;
    if canonical == SYS_CLONE {
        a.swap(3, 4);
    }
    Some((canonical, a))
}

/// The value an aarch64 caller finds in x0: the result, or `-errno`.
pub fn result_register(result: Result<usize, crate::syscall::Errno>) -> u64 {
    match result {
        Ok(v) => v as u64,
        Err(e) => (-(e.0 as i64)) as u64,
    }
}

//! The C types of system-call arguments: Linux declares many of them `int`,
//! `unsigned int` or `umode_t`, and its entry code converts each register to the
//! declared type before the call sees it (`SYSCALL_DEFINEn`'s casts), so only the
//! low 32 (or 16) bits count: `close(1 << 40)` closes fd 0, `kill(pid, 1 << 32)`
//! sends signal 0. [`narrow`] does the same for every call [`super::dispatch`]
//! knows, from the prototypes of `include/linux/syscalls.h` (x86_64 numbering; the
//! aarch64 entry translates its numbers first). An `int` is sign-extended, so -1
//! stays -1; `unsigned int` and `umode_t` are zero-extended.

use super::numbers::*;

/// The C type of one argument, as far as its width goes (the discriminants are
/// [`PACKED`]'s two-bit codes, `Long` 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// A pointer, `long`, `size_t`, `loff_t`: the whole register.
    Long = 0,
    /// `int`, `pid_t`, `clockid_t`: 32 bits, sign-extended.
    Int = 1,
    /// `unsigned int`, `uid_t`, `gid_t`: 32 bits, zero-extended.
    Uint = 2,
    /// `umode_t`: 16 bits.
    Mode = 3,
}

use Ty::{Int as I, Long as L, Mode as M, Uint as U};

/// The first argument types `x`, the rest [`Ty::Long`].
const fn t(x: &[Ty]) -> [Ty; 6] {
    let mut all = [L; 6];
    let mut i = 0;
    while i < x.len() {
        all[i] = x[i];
        i += 1;
    }
    all
}

/// The argument types of call `num` (all [`Ty::Long`] for calls not listed).
const fn types(num: usize) -> [Ty; 6] {
    match num {
        SYS_READ | SYS_WRITE | SYS_PREAD64 | SYS_PWRITE64 => t(&[U]),
        // The count of iovecs becomes an `unsigned` in import_iovec.
        SYS_READV | SYS_WRITEV => t(&[U, L, U]),
        SYS_CLOSE | SYS_DUP | SYS_FSTAT | SYS_FSTATFS | SYS_FCHDIR | SYS_FTRUNCATE => t(&[U]),
        SYS_FSYNC | SYS_FDATASYNC => t(&[U]),
        SYS_SYNCFS | SYS_GETPGID | SYS_GETSID | SYS_UMASK | SYS_EXIT | SYS_EXIT_GROUP => t(&[I]),
        SYS_GETRUSAGE | SYS_GETGROUPS | SYS_SETGROUPS | SYS_PRCTL => t(&[I]),
        SYS_SELECT | SYS_PSELECT6 | SYS_GETITIMER | SYS_SETITIMER | SYS_CLOCK_GETTIME => t(&[I]),
        SYS_RT_SIGACTION | SYS_RT_SIGPROCMASK => t(&[I]),
        SYS_LSEEK => t(&[U, L, U]),
        SYS_IOCTL | SYS_FCNTL | SYS_DUP2 => t(&[U, U]),
        SYS_DUP3 => t(&[U, U, I]),
        SYS_PIPE2 | SYS_ACCESS => t(&[L, I]),
        SYS_OPEN => t(&[L, I, M]),
        SYS_OPENAT => t(&[I, L, I, M]),
        SYS_CREAT | SYS_MKDIR | SYS_CHMOD => t(&[L, M]),
        SYS_NEWFSTATAT | SYS_UTIMENSAT => t(&[I, L, L, I]),
        SYS_STATX => t(&[I, L, U, U]),
        SYS_FACCESSAT | SYS_UNLINKAT => t(&[I, L, I]),
        SYS_FACCESSAT2 => t(&[I, L, I, I]),
        SYS_GETDENTS64 => t(&[U, L, U]),
        SYS_MKDIRAT | SYS_FCHMODAT => t(&[I, L, M]),
        SYS_MKNOD => t(&[L, M, U]),
        SYS_MKNODAT => t(&[I, L, M, U]),
        SYS_RENAMEAT => t(&[I, L, I]),
        SYS_RENAMEAT2 => t(&[I, L, I, L, U]),
        SYS_LINKAT => t(&[I, L, I, L, I]),
        SYS_SYMLINKAT => t(&[L, I]),
        SYS_READLINK => t(&[L, L, I]),
        SYS_READLINKAT => t(&[I, L, L, I]),
        SYS_FCHMOD => t(&[U, M]),
        SYS_CHOWN | SYS_LCHOWN => t(&[L, U, U]),
        SYS_FCHOWN => t(&[U, U, U]),
        SYS_FCHOWNAT => t(&[I, L, U, U, I]),
        SYS_SENDFILE => t(&[I, I]),
        SYS_COPY_FILE_RANGE => t(&[I, L, I, L, L, U]),
        SYS_MSYNC => t(&[L, L, I]),
        SYS_GETRANDOM => t(&[L, L, U]),
        SYS_CLOCK_NANOSLEEP => t(&[I, I]),
        SYS_ALARM => t(&[U]),
        SYS_WAIT4 => t(&[I, L, I]),
        SYS_WAITID => t(&[I, I, L, I]),
        SYS_SETPGID | SYS_KILL | SYS_TKILL | SYS_RT_SIGQUEUEINFO => t(&[I, I]),
        SYS_TGKILL | SYS_RT_TGSIGQUEUEINFO => t(&[I, I, I]),
        SYS_POLL => t(&[L, U, I]),
        SYS_PPOLL => t(&[L, U]),
        SYS_FUTEX => t(&[L, I, U, L, L, U]),
        SYS_SCHED_GETAFFINITY | SYS_SCHED_SETAFFINITY => t(&[I, U]),
        SYS_GETRLIMIT | SYS_SETRLIMIT => t(&[U]),
        SYS_PRLIMIT64 => t(&[I, U]),
        _ => [L; 6],
    }
}

/// Calls numbered from here on take whole registers (none is listed in `types`;
/// the test checks it).
const PACKED_END: usize = 512;

/// [`types`] of every call below [`PACKED_END`], two bits per argument (argument
/// `i` at bits `2i`, [`Ty`]'s discriminant): one load per call instead of the
/// match on every system call, and 0 (all `Long`) for most calls.
static PACKED: [u16; PACKED_END] = {
    let mut packed = [0u16; PACKED_END];
    let mut num = 0;
    while num < PACKED_END {
        let ty = types(num);
        let mut i = 0;
        while i < 6 {
            packed[num] |= (ty[i] as u16) << (2 * i);
            i += 1;
        }
        num += 1;
    }
    packed
};

fn narrow_one(ty: u16, v: usize) -> usize {
    match ty {
        x if x == Ty::Int as u16 => v as u32 as i32 as isize as usize,
        x if x == Ty::Uint as u16 => v as u32 as usize,
        x if x == Ty::Mode as u16 => v as u16 as usize,
        _ => v,
    }
}

/// The arguments of call `num` as the call sees them (see the module docs).
pub fn narrow(num: usize, mut a: [usize; 6]) -> [usize; 6] {
    let mut packed = PACKED.get(num).copied().unwrap_or(0);
    // Only the arguments that are not `Long` (most calls have one or two).
    while packed != 0 {
        let i = (packed.trailing_zeros() / 2) as usize;
        if let Some(v) = a.get_mut(i) {
            *v = narrow_one((packed >> (2 * i)) & 3, *v);
        }
        packed &= !(3 << (2 * i));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_keep_their_low_bits_and_sign() {
        let big = (1usize << 40) | 5;
        assert_eq!(narrow(SYS_CLOSE, [big, 0, 0, 0, 0, 0])[0], 5);
        assert_eq!(
            narrow(SYS_CLOSE, [usize::MAX, 0, 0, 0, 0, 0])[0],
            0xffff_ffff
        );
        let k = narrow(SYS_KILL, [0xffff_ffff, 1 << 32, 0, 0, 0, 0]);
        assert_eq!(k[..2], [usize::MAX, 0], "pid -1, signal 0");
        let o = narrow(SYS_OPENAT, [big, big, big, 0x1_01ed, 0, 0]);
        assert_eq!(o[..4], [5, big, 5, 0o755], "the path stays a pointer");
        assert_eq!(narrow(SYS_MMAP, [big; 6]), [big; 6]);
    }

    #[test]
    fn every_typed_call_is_below_the_packed_end() {
        for num in PACKED_END..4096 {
            assert_eq!(types(num), [L; 6], "call {num} is typed but not packed");
        }
    }
}

//! Linux errno values, and the one place where the kernel's typed errors become them.

use crate::memory::address_space::{BadUserAddress, MmError};
use crate::process::scheduler::SchedError;
use crate::process::ProcessError;

/// A Linux error number (positive; the syscall entry returns `-errno` to user space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident = $v:expr, $doc:expr;)*) => {
        impl Errno { $(#[doc = $doc] pub const $name: Errno = Errno($v);)* }
        $(#[doc = $doc] pub const $name: Errno = Errno::$name;)*
    };
}

errnos! {
    EPERM = 1, "Operation not permitted.";
    ENOENT = 2, "No such file or directory.";
    ESRCH = 3, "No such process.";
    EINTR = 4, "Interrupted system call.";
    EIO = 5, "I/O error.";
    E2BIG = 7, "Argument list too long.";
    ENXIO = 6, "No such device or address.";
    ENOEXEC = 8, "Exec format error.";
    EBADF = 9, "Bad file descriptor.";
    ECHILD = 10, "No child processes.";
    EAGAIN = 11, "Try again (resource temporarily unavailable).";
    ENOMEM = 12, "Out of memory.";
    EACCES = 13, "Permission denied.";
    EFAULT = 14, "Bad address.";
    EBUSY = 16, "Device or resource busy.";
    EEXIST = 17, "File exists.";
    EXDEV = 18, "Cross-device link.";
    ENODEV = 19, "No such device.";
    ENOTDIR = 20, "Not a directory.";
    EISDIR = 21, "Is a directory.";
    EINVAL = 22, "Invalid argument.";
    EMFILE = 24, "Too many open files.";
    ENOTTY = 25, "Not a typewriter.";
    ETXTBSY = 26, "Text file busy.";
    EFBIG = 27, "File too large.";
    ENOSPC = 28, "No space left on device.";
    ESPIPE = 29, "Illegal seek.";
    EROFS = 30, "Read-only file system.";
    EMLINK = 31, "Too many links.";
    EPIPE = 32, "Broken pipe.";
    ERANGE = 34, "Result out of range.";
    ENAMETOOLONG = 36, "File name too long.";
    ENOLCK = 37, "No record locks available.";
    ENOSYS = 38, "Function not implemented.";
    ENOTEMPTY = 39, "Directory not empty.";
    ELOOP = 40, "Too many levels of symbolic links.";
    EOVERFLOW = 75, "Value too large for defined data type.";
    EOPNOTSUPP = 95, "Operation not supported.";
    ETIMEDOUT = 110, "Connection timed out (a wait's deadline passed).";
    ERESTARTSYS = 512, "Kernel-internal: the thread blocked; re-issue the call once it is woken.";
}

impl From<ProcessError> for Errno {
    fn from(e: ProcessError) -> Self {
        match e {
            ProcessError::NoSuchProcess(_)
            | ProcessError::NoSuchThread(_)
            | ProcessError::ProcessExited(_) => ESRCH,
            ProcessError::OutOfMemory => ENOMEM,
            ProcessError::TooManyProcesses => EAGAIN,
            ProcessError::NoChildren => ECHILD,
            ProcessError::ThreadAlive(_) | ProcessError::ProcessAlive(_) => EBUSY,
            ProcessError::BadPageTable(_) => EINVAL,
        }
    }
}

/// The errno of a failed mmap or mprotect (munmap checks its own arguments first).
impl From<MmError> for Errno {
    fn from(e: MmError) -> Self {
        match e {
            MmError::Unaligned(_) | MmError::ZeroLength => EINVAL,
            MmError::OutOfRange
            | MmError::NoSpace
            | MmError::NotMapped(_)
            | MmError::OutOfMemory
            | MmError::TooManyRegions => ENOMEM,
            MmError::BelowMinimum(_) => EPERM,
            MmError::Exists(_) => EEXIST,
            MmError::Forbidden(_) => EACCES,
        }
    }
}

impl From<BadUserAddress> for Errno {
    fn from(_: BadUserAddress) -> Self {
        EFAULT
    }
}

impl From<SchedError> for Errno {
    fn from(e: SchedError) -> Self {
        match e {
            SchedError::UnknownThread(_) | SchedError::NoCurrentThread => ESRCH,
            SchedError::AlreadyAdded(_) | SchedError::NotWaiting(_) | SchedError::NoAllowedCpu => {
                EINVAL
            }
            SchedError::OutOfMemory => EAGAIN,
        }
    }
}

//! Helpers shared by the Rust user programs: the same normalised output rules as
//! the C programs (`user/c/common.h`): no pids, no addresses, no times.

/// Describes a `waitpid` status as "exited status=N" or "killed by signal N".
pub fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exited status={}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("strange status={status:#x}")
    }
}

/// Runs `f` in a forked child (which exits 0 after it) and returns the wait status.
pub fn in_child(f: impl FnOnce()) -> i32 {
    // SAFETY: the programs are single-threaded when they fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        f();
        // SAFETY: _exit never returns and is always safe to call.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: `status` is a valid out pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    status
}

/// "yes" or "no".
pub fn yes(c: bool) -> &'static str {
    if c {
        "yes"
    } else {
        "no"
    }
}

//! execve(path, argv, envp) of a program in the initrd, and loading an ELF image
//! into a process ([`load_image`], also used for the first process).
//!
//! Order, so that a failure leaves the caller intact: copy the path, argv and envp
//! strings in (EFAULT, E2BIG), find the file (ENOENT), check it and build the stack
//! image ([`crate::exec::prepare`]: ENOEXEC); only then the point of no return: the
//! other threads of the process end, the process gets a fresh address space (the old
//! one is destroyed, or kept by a vfork parent that shares it, which then resumes),
//! the image is loaded,
//! and the caller's trap frame is replaced so that it returns into the new program
//! with all registers zero, thread pointer 0 and a clean FP/SIMD state.

use crate::arch::user::{self as mech, Frame};
use crate::exec::load::{self, ARG_LIMIT, USER_STACK_TOP};
use crate::exec::{prepare, ExecArgs};
use crate::memory::frame_allocator::{self, GlobalFrames};
use crate::memory::VirtAddr;
use crate::process::{scheduler, Pid, Tid, UserSpace, Wait, PROCESS_TABLE};
use crate::syscall::user_mem::{read_cstr, UserPtr};
use crate::syscall::{self as sys, Errno, E2BIG, ENAMETOOLONG, ENOENT, ENOMEM};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Most argv + envp entries.
const MAX_ARGS: usize = 4096;

/// Reads a NULL-terminated array of string pointers (a null array is empty).
fn read_strings(
    space: &mut UserSpace<GlobalFrames>,
    array: u64,
    budget: &mut usize,
) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    let array = UserPtr::<u64>::new(array as usize);
    if array.is_null() {
        return Ok(out);
    }
    loop {
        let ptr = array.add(out.len()).read(space)?;
        if ptr == 0 {
            return Ok(out);
        }
        if out.len() >= MAX_ARGS {
            return Err(E2BIG);
        }
        let s = read_cstr(space, ptr as usize, *budget, E2BIG)?;
        *budget = budget.checked_sub(s.len() + 1).ok_or(E2BIG)?;
        out.push(s);
    }
}

type Strings = (Vec<u8>, Vec<Vec<u8>>, Vec<Vec<u8>>);

fn copy_in(me: Tid, path: u64, argv: u64, envp: u64) -> Result<(Pid, Strings), Errno> {
    let mut table = PROCESS_TABLE.lock();
    let pid = table.thread(me).ok_or(crate::syscall::ESRCH)?.pid;
    let space = table.space_mut(pid)?;
    let path = read_cstr(space, path as usize, sys::fd::PATH_MAX - 1, ENAMETOOLONG)?;
    let mut budget = ARG_LIMIT;
    let argv = read_strings(space, argv, &mut budget)?;
    let envp = read_strings(space, envp, &mut budget)?;
    Ok((pid, (path, argv, envp)))
}

/// execve; on success the caller's `frame` enters the new program.
pub(super) fn execve(
    me: Tid,
    path: u64,
    argv: u64,
    envp: u64,
    frame: &mut Frame,
) -> Result<usize, Errno> {
    let (pid, (path, argv, envp)) = copy_in(me, path, argv, envp)?;
    let file = crate::initrd::boot_image()
        .and_then(|rd| rd.find(&path))
        .ok_or(ENOENT)?;
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    check_image(file, &argv, &envp, &path)?;
    end_other_threads(me, pid);
    fresh_space(pid)?;
    own_files_and_handlers(pid)?;
    rename(pid, &path);
    release_vfork_parent(me);
    let (entry, sp) = load_image(pid, file, &argv, &envp, &path)?;
    super::reset_for_exec(me, frame, entry, sp);
    Ok(0)
}

/// Exec's share of the process state: the fd table and the dispositions become the
/// process's own (no longer shared through CLONE_FILES / CLONE_SIGHAND), the
/// close-on-exec fds close, handlers go back to SIG_DFL.
fn own_files_and_handlers(pid: Pid) -> Result<(), Errno> {
    let mut table = PROCESS_TABLE.lock();
    let p = table.process_mut(pid).ok_or(sys::ESRCH)?;
    if Arc::strong_count(&p.files) > 1 {
        p.files = sys::fd::copy_files(&p.files);
    }
    if Arc::strong_count(&p.signals) > 1 {
        p.signals = sys::signal::copy_actions(&p.signals);
    }
    let files = p.files.clone();
    p.signals.lock().reset_handlers();
    drop(table);
    sys::fd::close_on_exec(&files);
    Ok(())
}

/// The name a process running the file at `path` gets: its last path component, at
/// most 15 bytes, as Linux's `comm`.
pub(super) fn comm_of(path: &[u8]) -> alloc::string::String {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    alloc::string::String::from_utf8_lossy(&base[..base.len().min(15)]).into_owned()
}

/// The process takes the name of the file it now runs.
fn rename(pid: Pid, path: &[u8]) {
    if let Some(p) = PROCESS_TABLE.lock().process_mut(pid) {
        p.name = comm_of(path);
    }
}

/// Every thread of `pid` but `me` ends (Linux's de_thread).
fn end_other_threads(me: Tid, pid: Pid) {
    let others: Vec<Tid> = {
        let table = PROCESS_TABLE.lock();
        table
            .process(pid)
            .map(|p| p.threads.iter().copied().filter(|t| *t != me).collect())
            .unwrap_or_default()
    };
    for t in others {
        let _ = PROCESS_TABLE.lock().exit_thread(t, 0);
        let _ = scheduler::remove_thread(t);
    }
}

/// A vfork parent suspended on `me` resumes: `me` no longer borrows its memory.
fn release_vfork_parent(me: Tid) {
    let mut table = PROCESS_TABLE.lock();
    let Some(parent) = table.thread_mut(me).and_then(|t| t.vfork_parent.take()) else {
        return;
    };
    let waiting = table
        .thread_mut(parent)
        .filter(|p| p.waiting == Some(Wait::VforkChild(me)));
    if let Some(p) = waiting {
        p.waiting = None;
        let _ = scheduler::unblock_thread(parent);
    }
}

/// Gives `pid` an empty address space (on the kernel's tables while the old one goes).
fn fresh_space(pid: Pid) -> Result<(), Errno> {
    let root = frame_allocator::allocate_frame().map_err(|_| ENOMEM)?;
    super::leave_user_tables();
    PROCESS_TABLE.lock().replace_space(pid, root)?;
    Ok(())
}

/// The exec arguments of this machine for `argv`, `envp`, `execfn`, with `random`
/// as AT_RANDOM.
fn exec_args<'a>(
    argv: &'a [&'a [u8]],
    envp: &'a [&'a [u8]],
    execfn: &'a [u8],
    random: [u8; 16],
) -> ExecArgs<'a> {
    ExecArgs {
        argv,
        envp,
        execfn,
        platform: mech::PLATFORM,
        random,
        hwcap: mech::hwcap(),
        stack_top: VirtAddr::new(USER_STACK_TOP),
        stack_limit: ARG_LIMIT,
    }
}

/// Loads `file` into the (empty or emptied) address space of `pid` with its initial
/// stack; returns the entry point and the stack pointer.
pub(super) fn load_image(
    pid: Pid,
    file: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
) -> Result<(u64, u64), Errno> {
    let args = exec_args(argv, envp, execfn, sys::random::random_bytes());
    let image = prepare(file, &mech::ELF, &args).map_err(|e| Errno(e.errno()))?;
    let mut table = PROCESS_TABLE.lock();
    let loaded = load::map_image(table.space_mut(pid)?, file, &image)?;
    if let Some(p) = table.process_mut(pid) {
        p.brk = Some(sys::brk::Brk::at(loaded.brk_start));
    }
    Ok((loaded.entry, loaded.sp))
}

/// Checks that `file` can be exec'd with these arguments (ENOEXEC, E2BIG) without
/// touching any process.
fn check_image(file: &[u8], argv: &[&[u8]], envp: &[&[u8]], execfn: &[u8]) -> Result<(), Errno> {
    let args = exec_args(argv, envp, execfn, [0; 16]);
    prepare(file, &mech::ELF, &args).map_err(|e| Errno(e.errno()))?;
    Ok(())
}

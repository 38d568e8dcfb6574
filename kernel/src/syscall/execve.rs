//! execve(path, argv, envp) of a file of the caller's tree, and loading an ELF image
//! into a process ([`load_into`], also used for the first process).
//!
//! Order, so that a failure leaves the caller intact: copy the path, argv and envp
//! strings in (EFAULT, E2BIG, ENAMETOOLONG), find the program ([`find_program`]:
//! the path walk's errnos; EACCES for a directory, a special file or a file
//! without an execute bit; a `#!` script runs its interpreter, up to
//! [`MAX_INTERPRETERS`] deep, else ELOOP), check it and build the stack image
//! ([`crate::exec::prepare`]: ENOEXEC); only then the point of
//! no return: the other threads of the process end, the process gets a fresh address
//! space (the old one is destroyed, or kept by a vfork parent that shares it, which
//! then resumes), its fd table and dispositions become its own (close-on-exec fds
//! close, handlers reset), it takes the file's name, and the image is loaded. A
//! failure past that point (memory running out) kills the process by SIGSEGV.
//!
//! On success the caller's [`crate::process::UserRegs`] say where the new program
//! starts (ip, sp; thread pointer 0) and the call returns 0: the user-mode layer
//! (`task`) then rewrites the caller's trap frame from them. The old address space
//! may be destroyed here, so the caller must not be running on it (`task` installs
//! the kernel's tables first).

use super::rlimit::{stack_size, Resource};
use super::user_mem::{read_cstr, UserPtr};
use super::{machine, Errno, Sys, E2BIG, EACCES, ELOOP, ENAMETOOLONG, ENOENT, ENOEXEC};
use super::{ENOMEM, ESRCH, ETXTBSY};
use crate::exec::load::{self, ARG_LIMIT, USER_STACK_TOP};
use crate::exec::{prepare, ExecArgs};
use crate::fs::vfs::{FollowLast, Vfs};
use crate::fs::{FileKind, Node};
use crate::memory::frame_allocator::FrameSource;
use crate::memory::VirtAddr;
use crate::process::{apply_exit, ExecImage, Pid, ProcessTable, Tid, UserSpace};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Most argv + envp entries.
const MAX_ARGS: usize = 4096;
/// Most `#!` interpreters one execve goes through (Linux's BINPRM_MAX_RECURSION).
pub const MAX_INTERPRETERS: usize = 4;
/// Bytes of a `#!` line that count (Linux's BINPRM_BUF_SIZE).
const SHEBANG_MAX: usize = 256;

/// A program to run: its ELF image and the argv it gets (an interpreter's comes
/// first for a script).
#[derive(Debug)]
pub struct Program {
    /// The ELF file's bytes.
    pub image: Vec<u8>,
    /// Its arguments.
    pub argv: Vec<Vec<u8>>,
    /// The path of the file loaded (a script's interpreter).
    pub path: Vec<u8>,
}

/// The program that exec of `path` (from `cwd` in `tree`) with `argv` runs:
/// see the module documentation.
pub fn find_program(tree: &Vfs, cwd: Node, path: &[u8], argv: &[&[u8]]) -> Result<Program, Errno> {
    let mut argv: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    let mut path = path.to_vec();
    for _ in 0..=MAX_INTERPRETERS {
        let image = read_executable(tree, cwd, &path)?;
        let Some((interpreter, arg)) = shebang(&image)? else {
            return Ok(Program { image, argv, path });
        };
        // The interpreter gets: itself, its optional argument, the script's path,
        // then the script's arguments after argv[0] (Linux's load_script).
        let mut next = Vec::new();
        next.try_reserve(argv.len() + 2).map_err(|_| ENOMEM)?;
        next.push(interpreter.clone());
        next.extend(arg);
        next.push(path);
        next.extend(argv.drain(..).skip(1));
        argv = next;
        path = interpreter;
    }
    Err(ELOOP)
}

/// What `/proc` shows of a process exec'ing `path` with `argv`: the file's real
/// path (symlinks followed) and the NUL-terminated arguments.
pub fn exec_image(
    tree: &Vfs,
    cwd: Node,
    path: &[u8],
    argv: &[Vec<u8>],
) -> Result<ExecImage, Errno> {
    let exe = tree.real_path(cwd, path)?;
    let mut cmdline = Vec::new();
    cmdline
        .try_reserve(argv.iter().map(|a| a.len() + 1).sum())
        .map_err(|_| ENOMEM)?;
    for arg in argv {
        cmdline.extend_from_slice(arg);
        cmdline.push(0);
    }
    Ok(ExecImage { exe, cmdline })
}

/// The bytes of the executable file `path`: EACCES unless it is a regular file
/// with an execute bit.
fn read_executable(tree: &Vfs, cwd: Node, path: &[u8]) -> Result<Vec<u8>, Errno> {
    let node = tree.resolve(cwd, path, FollowLast::Follow)?;
    let st = tree.stat(node)?;
    if st.kind != FileKind::Regular || st.perm & 0o111 == 0 {
        return Err(EACCES);
    }
    let file = tree.open(node)?;
    if file.is_being_written() {
        return Err(ETXTBSY);
    }
    let size = usize::try_from(st.size).map_err(|_| ENOMEM)?;
    let mut image = Vec::new();
    image.try_reserve_exact(size).map_err(|_| ENOMEM)?;
    // Appended from the file's pages: no zero fill of the whole image first.
    while image.len() < size {
        if file.read_append(image.len() as u64, size - image.len(), &mut image)? == 0 {
            break;
        }
    }
    Ok(image)
}

/// A `#!` line's interpreter and optional argument (the rest of the line, spaces
/// and tabs trimmed, as one argument); `None` if `image` is no script; ENOEXEC for
/// a `#!` without an interpreter.
#[allow(clippy::type_complexity)]
fn shebang(image: &[u8]) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, Errno> {
    let Some(rest) = image.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = &rest[..rest.len().min(SHEBANG_MAX - 2)];
    let line = line.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
    let line = &line[start..];
    let end = line.iter().rposition(|b| !blank(b)).map_or(0, |i| i + 1);
    let line = &line[..end];
    let name_end = line.iter().position(blank).unwrap_or(line.len());
    if name_end == 0 {
        return Err(ENOEXEC);
    }
    let arg = &line[name_end..];
    let arg_start = arg.iter().position(|b| !blank(b));
    Ok(Some((
        line[..name_end].to_vec(),
        arg_start.map(|i| arg[i..].to_vec()),
    )))
}

/// Reads a NULL-terminated array of string pointers (a null array is empty), each
/// string taken from `budget`.
fn read_strings<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    array: usize,
    budget: &mut usize,
) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    let array = UserPtr::<u64>::new(array);
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

/// The exec arguments of this machine for `argv`, `envp`, `execfn`, with `random`
/// as AT_RANDOM.
fn exec_args<'a>(
    argv: &'a [&'a [u8]],
    envp: &'a [&'a [u8]],
    execfn: &'a [u8],
    random: [u8; 16],
) -> ExecArgs<'a> {
    let target = machine::exec_target();
    ExecArgs {
        argv,
        envp,
        execfn,
        platform: target.platform,
        random,
        hwcap: (target.hwcap)(),
        stack_top: VirtAddr::new(USER_STACK_TOP),
        stack_limit: ARG_LIMIT,
    }
}

/// Loads `file` into the (empty or emptied) address space of `pid` with its initial
/// stack (a region as big as its `RLIMIT_STACK` says) and sets its break; returns
/// the entry point and the stack pointer.
pub fn load_into<A: FrameSource + Clone>(
    table: &mut ProcessTable<A>,
    pid: Pid,
    file: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
) -> Result<(u64, u64), Errno> {
    let args = exec_args(argv, envp, execfn, super::random::random_bytes());
    let image = prepare(file, &machine::exec_target().elf, &args).map_err(|e| Errno(e.errno()))?;
    load_prepared(table, pid, file, &image)
}

/// [`load_into`] of the image `prepare` made of `file`.
fn load_prepared<A: FrameSource + Clone>(
    table: &mut ProcessTable<A>,
    pid: Pid,
    file: &[u8],
    image: &crate::exec::ExecImage,
) -> Result<(u64, u64), Errno> {
    let soft = table
        .process(pid)
        .ok_or(ESRCH)?
        .limits
        .soft(Resource::Stack);
    let mut space = table.space_mut(pid)?;
    let loaded = load::map_image(&mut space, file, image, stack_size(soft))?;
    load::map_sigreturn(&mut space, machine::exec_target().sigreturn)?;
    drop(space);
    if let Some(p) = table.process_mut(pid) {
        p.brk = Some(super::brk::Brk::at(loaded.brk_start));
    }
    Ok((loaded.entry, loaded.sp))
}

/// The name a process running the file at `path` gets: its last path component, at
/// most 15 bytes, as Linux's `comm`.
pub fn comm_of(path: &[u8]) -> alloc::string::String {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    alloc::string::String::from_utf8_lossy(&base[..base.len().min(15)]).into_owned()
}

/// execve(path, argv, envp): see the module docs.
pub fn sys_execve<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    path: usize,
    argv: usize,
    envp: usize,
) -> Result<usize, Errno> {
    let pid = sys.pid()?;
    let mut space = sys.space()?;
    let path = read_cstr(&mut space, path, super::fd::PATH_MAX - 1, ENAMETOOLONG)?;
    let mut budget = ARG_LIMIT;
    let argv = read_strings(&mut space, argv, &mut budget)?;
    let envp = read_strings(&mut space, envp, &mut budget)?;
    drop(space);
    if path.is_empty() {
        return Err(ENOENT);
    }
    let (tree, cwd) = {
        let fs = sys.process()?.fs.lock();
        (fs.tree().clone(), fs.cwd())
    };
    let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let (program, image) = {
        let _scope = super::proc_view::tree_scope(sys);
        let program = find_program(&tree, cwd, &path, &argv)?;
        let image = exec_image(&tree, cwd, &program.path, &program.argv)?;
        (program, image)
    };
    let file = program.image.as_slice();
    let argv: Vec<&[u8]> = program.argv.iter().map(Vec::as_slice).collect();
    let envp: Vec<&[u8]> = envp.iter().map(Vec::as_slice).collect();
    // Checked and its stack built before the point of no return (ENOEXEC, E2BIG
    // leave the caller as it was), and loaded as built.
    let args = exec_args(&argv, &envp, &path, super::random::random_bytes());
    let prepared =
        prepare(file, &machine::exec_target().elf, &args).map_err(|e| Errno(e.errno()))?;
    // The point of no return: the old image is going, so a failure from here on
    // (memory running out) ends the process by SIGSEGV, as Linux's exec does; the
    // call returning an error to a half-built image would run the old code on it.
    let replaced = (|| {
        end_other_threads(sys, pid);
        sys.table.replace_space_fresh(pid)?;
        own_files_and_handlers(sys.table, pid)?;
        if let Some(p) = sys.table.process_mut(pid) {
            p.name = comm_of(&path);
            p.image = image;
        }
        release_vfork_parent(sys);
        load_prepared(sys.table, pid, file, &prepared)
    })();
    let (entry, sp) = match replaced {
        Ok(start) => start,
        Err(e) => {
            let _ = super::signal::kill_process(sys, pid, super::signal::SIGSEGV);
            return Err(e);
        }
    };
    let t = sys.table.thread_mut(sys.tid).ok_or(ESRCH)?;
    t.user.ip = entry;
    t.user.sp = sp;
    t.user.tls = 0;
    t.alt_stack = None;
    Ok(0)
}

/// Every thread of `pid` but the caller ends (Linux's de_thread).
fn end_other_threads<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, pid: Pid) {
    let others: Vec<Tid> = sys
        .table
        .process(pid)
        .map(|p| {
            p.threads
                .iter()
                .copied()
                .filter(|t| *t != sys.tid)
                .collect()
        })
        .unwrap_or_default();
    for t in others {
        if let Ok(report) = sys.table.exit_thread(t, 0) {
            apply_exit(&mut sys.sched, &report);
        }
    }
}

/// Exec's share of the process state: the fd table and the dispositions become the
/// process's own (no longer shared through CLONE_FILES / CLONE_SIGHAND), the
/// close-on-exec fds close, handlers go back to SIG_DFL.
fn own_files_and_handlers<A: FrameSource + Clone>(
    table: &mut ProcessTable<A>,
    pid: Pid,
) -> Result<(), Errno> {
    let p = table.process_mut(pid).ok_or(ESRCH)?;
    if Arc::strong_count(&p.files) > 1 {
        p.files = super::fd::copy_files(&p.files, &p.kmem)?;
    }
    if Arc::strong_count(&p.signals) > 1 {
        p.signals = super::signal::copy_actions(&p.signals);
    }
    p.signals.lock().reset_handlers();
    super::fd::close_on_exec(&p.files, pid);
    Ok(())
}

/// A vfork parent waiting for the caller resumes: the caller no longer borrows its
/// memory.
fn release_vfork_parent<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) {
    sys.table.release_vfork_parent(sys.tid);
}

//! What procfs sees: the process table of the system call in progress.
//!
//! procfs ([`crate::fs::procfs`]) renders from a [`ProcSource`]; the kernel's is
//! [`KernelProcSource`], which reads the tables the running system call holds
//! locked. A call can reach procfs only through the tree (a path walk, an open),
//! so before it touches the tree it enters a [`TreeScope`] with a *shared* borrow
//! of its [`Sys`]: for as long as the scope lives, procfs may read the tables, and
//! the borrow checker keeps the call from changing them. Outside any scope
//! procfs sees no processes. A procfs file's text is taken when it is opened
//! (as Linux's seq_file renders per open), so reads and getdents, which copy
//! into user memory, need no scope.
//!
//! ## Locks and safety
//! The scope is a pointer to the caller's `Sys`, kept in [`VIEW`] while the scope
//! lives and removed when it drops (scopes nest: the outer one comes back). Only
//! the thread holding the process table's lock can be inside a system call, so
//! only it can enter a scope and reach procfs; the pointer is never read
//! elsewhere. [`VIEW`] is a leaf lock.
#![allow(unsafe_code)]

use super::fd::{self, File};
use super::Sys;
use crate::fs::procfs::{Arch, CpuInfo, MapInfo, MountInfo, ProcSource, ProcState, ProcessInfo};
use crate::fs::procfs::{NodeInfo, SystemInfo};
use crate::memory::address_space::Sharing;
use crate::memory::frame_allocator::FrameSource;
use crate::process::{Pid, ProcessState, ThreadState};
use crate::sync::IrqMutex;
use alloc::vec::Vec;
use core::marker::PhantomData;

/// What procfs asks of the tables (see [`ProcSource`], whose questions these are).
trait ProcView {
    fn pids(&self) -> Vec<u32>;
    fn caller(&self) -> Option<(u32, u32)>;
    fn process(&self, pid: u32) -> Option<ProcessInfo>;
    fn system(&self) -> SystemInfo;
}

/// A `*const dyn ProcView` whose lifetime the scope guarantees.
#[derive(Clone, Copy)]
struct ViewPtr(*const (dyn ProcView + 'static));

// SAFETY: the pointer is only dereferenced by the thread that set it, inside the
// scope that keeps its target borrowed (see the module documentation).
unsafe impl Send for ViewPtr {}

/// The scope in force, if any.
static VIEW: IrqMutex<Option<ViewPtr>> = IrqMutex::new(None);

/// While it lives, procfs reads the tables of the `Sys` it borrows.
pub struct TreeScope<'a> {
    outer: Option<ViewPtr>,
    _borrow: PhantomData<&'a ()>,
}

impl Drop for TreeScope<'_> {
    fn drop(&mut self) {
        *VIEW.lock() = self.outer;
    }
}

/// Enters a scope in which procfs sees `sys`'s tables (see the module
/// documentation); hold it across the calls into the tree.
pub fn tree_scope<'a, A: FrameSource + Clone>(sys: &'a Sys<'_, A>) -> TreeScope<'a> {
    let view: &'a (dyn ProcView + 'a) = sys;
    // SAFETY: only the lifetime is erased; the guard borrows `sys` for 'a and
    // removes the pointer when it drops, so it is never used after 'a.
    let ptr: *const (dyn ProcView + 'static) = unsafe {
        core::mem::transmute::<*const (dyn ProcView + 'a), *const (dyn ProcView + 'static)>(view)
    };
    let outer = VIEW.lock().replace(ViewPtr(ptr));
    TreeScope {
        outer,
        _borrow: PhantomData,
    }
}

/// Runs `f` on the view in force, or answers `none` outside any scope.
fn with_view<T>(none: T, f: impl FnOnce(&dyn ProcView) -> T) -> T {
    let view = VIEW.lock();
    match *view {
        // SAFETY: a pointer in VIEW points at a `Sys` its scope keeps borrowed.
        Some(ViewPtr(p)) => f(unsafe { &*p }),
        None => none,
    }
}

/// procfs's source in the kernel: the tables of the call in its [`TreeScope`].
pub struct KernelProcSource;

impl ProcSource for KernelProcSource {
    fn pids(&self) -> Vec<u32> {
        with_view(Vec::new(), |v| v.pids())
    }
    fn caller(&self) -> Option<(u32, u32)> {
        with_view(None, |v| v.caller())
    }
    fn process(&self, pid: u32) -> Option<ProcessInfo> {
        with_view(None, |v| v.process(pid))
    }
    fn system(&self) -> SystemInfo {
        with_view(SystemInfo::default(), |v| v.system())
    }
}

/// A procfs over the kernel's tables, to mount on `/proc`.
pub fn procfs() -> alloc::sync::Arc<dyn crate::fs::FileSystem> {
    let source = alloc::sync::Arc::new(KernelProcSource);
    alloc::sync::Arc::new(crate::fs::procfs::ProcFs::new(
        source,
        crate::fs::DeviceId::new(0, 22),
    ))
}

/// How `/proc/PID/fd/N` names what an fd refers to.
fn fd_target(file: &File) -> Vec<u8> {
    match file {
        File::Node(f) => f.path().to_vec(),
        File::PipeRead(end) | File::PipeWrite(end) => {
            alloc::format!("pipe:[{}]", end.id()).into_bytes()
        }
        File::ConsoleIn => b"/dev/null".to_vec(),
        File::ConsoleOut => b"pipe:[1]".to_vec(),
        File::Terminal(_) => b"/dev/console".to_vec(),
        File::Fifo(f) => f.file.path().to_vec(),
    }
}

impl<A: FrameSource + Clone> ProcView for Sys<'_, A> {
    fn pids(&self) -> Vec<u32> {
        self.table.processes().map(|p| p.pid.0).collect()
    }

    fn caller(&self) -> Option<(u32, u32)> {
        let t = self.table.thread(self.tid)?;
        Some((t.pid.0, t.tid.0))
    }

    fn process(&self, pid: u32) -> Option<ProcessInfo> {
        let p = self.table.process(Pid(pid))?;
        let threads: Vec<u32> = p.threads.iter().map(|t| t.0).collect();
        let states: Vec<Option<ThreadState>> =
            p.threads.iter().map(|t| self.sched.state(*t)).collect();
        let state = match (p.state, p.job.stopped) {
            (ProcessState::Zombie { .. }, _) => ProcState::Zombie,
            (_, Some(_)) => ProcState::Stopped,
            _ if states
                .iter()
                .any(|s| matches!(s, Some(ThreadState::Running | ThreadState::Ready))) =>
            {
                ProcState::Running
            }
            _ => ProcState::Sleeping,
        };
        let main = p.threads.iter().next().and_then(|t| self.table.thread(*t));
        let (mut voluntary, mut involuntary) = (0, 0);
        for t in &p.threads {
            let (v, i) = self.sched.switches(*t).unwrap_or((0, 0));
            voluntary += v;
            involuntary += i;
        }
        let (mut ignored, mut caught) = (0u64, 0u64);
        {
            let actions = p.signals.lock();
            for sig in 1..=64 {
                match actions.get(sig) {
                    0 => {}
                    1 => ignored |= super::signal::bit(sig),
                    _ => caught |= super::signal::bit(sig),
                }
            }
        }
        let (tree, cwd, umask) = {
            let fs = p.fs.lock();
            (fs.tree().clone(), fs.cwd(), fs.umask)
        };
        let fds = fd::open_fds(&p.files)
            .iter()
            .map(|(n, f)| (*n as u32, fd_target(f)))
            .collect();
        let (maps, vm_size_bytes, rss_pages) = match self.table.space(p.pid) {
            Some(space) => {
                let brk = p.brk.map(|b| (b.start, b.current));
                let maps: Vec<MapInfo> = space
                    .regions()
                    .map(|r| MapInfo {
                        start: r.start,
                        end: r.end,
                        read: r.prot.contains(crate::memory::address_space::Prot::READ),
                        write: r.prot.contains(crate::memory::address_space::Prot::WRITE),
                        exec: r.prot.contains(crate::memory::address_space::Prot::EXEC),
                        shared: r.sharing == Sharing::Shared,
                        offset: r.file.as_ref().map_or(0, |f| f.offset),
                        name: match &r.file {
                            Some(f) => f.name().to_vec(),
                            None => region_name(r.start, r.end, brk),
                        },
                    })
                    .collect();
                let size = maps.iter().map(|m| m.end - m.start).sum();
                (maps, size, space.resident_pages() as u64)
            }
            None => (Vec::new(), 0, 0),
        };
        Some(ProcessInfo {
            pid,
            ppid: p.parent.map_or(0, |q| q.0),
            pgid: p.job.pgid.0,
            sid: p.job.sid.0,
            comm: p.name.as_bytes().to_vec(),
            state,
            threads,
            cmdline: p.image.cmdline.clone(),
            exe: (!p.image.exe.is_empty()).then(|| p.image.exe.clone()),
            cwd: tree.path_of(cwd).ok(),
            root: Some(b"/".to_vec()),
            maps,
            fds,
            vm_size_bytes,
            rss_pages,
            priority: 20,
            umask,
            sig_pending: main.map_or(0, |t| t.pending.set()),
            sig_shared_pending: p.shared_pending.set(),
            sig_blocked: main.map_or(0, |t| t.signal_mask),
            sig_ignored: ignored,
            sig_caught: caught,
            voluntary_switches: voluntary,
            involuntary_switches: involuntary,
            ..ProcessInfo::default()
        })
    }

    fn system(&self) -> SystemInfo {
        let total = crate::memory::frame_allocator::total_frame_count();
        let free = crate::memory::frame_allocator::free_frame_count();
        let tree = self
            .table
            .thread(self.tid)
            .and_then(|t| self.table.process(t.pid))
            .map(|p| p.fs.lock().tree().clone())
            .unwrap_or_else(|| self.table.tree());
        let mounts = tree
            .mount_points()
            .into_iter()
            .map(|(target, fstype)| MountInfo {
                source: fstype.as_bytes().to_vec(),
                target,
                fstype: fstype.as_bytes().to_vec(),
                options: b"rw,relatime".to_vec(),
            })
            .collect();
        let fs_pages = tree.pages_used();
        let running = self
            .table
            .threads()
            .filter(|t| {
                matches!(
                    self.sched.state(t.tid),
                    Some(ThreadState::Running | ThreadState::Ready)
                )
            })
            .count() as u32;
        SystemInfo {
            page_size: crate::memory::PAGE_SIZE,
            total_frames: total,
            free_frames: free,
            fs_pages,
            uptime_ns: super::machine::uptime_ns(),
            ticks_per_second: 100,
            cpus: crate::smp::online()
                .map(|c| CpuInfo {
                    id: c.id() as u32,
                    node: c.node.load(core::sync::atomic::Ordering::Relaxed),
                    ..CpuInfo::default()
                })
                .collect(),
            arch: if cfg!(target_arch = "aarch64") {
                Arch::Aarch64
            } else {
                Arch::X86_64
            },
            mounts,
            running,
            processes_total: self.table.thread_count() as u32,
            last_pid: self.table.processes().map(|p| p.pid.0).max().unwrap_or(0),
            nodes: alloc::vec![NodeInfo {
                id: 0,
                cpus: crate::smp::online().map(|c| c.id() as u32).collect(),
                total_frames: total,
                free_frames: free,
            }],
            ..SystemInfo::default()
        }
    }
}

/// `[heap]` for the break area, `[stack]` for the main stack, `[vdso]` for the
/// sigreturn page, else no name.
fn region_name(start: u64, end: u64, brk: Option<(u64, u64)>) -> Vec<u8> {
    if brk.is_some_and(|(s, _)| start == s) {
        return b"[heap]".to_vec();
    }
    if start == crate::exec::load::SIGRETURN_PAGE {
        return b"[vdso]".to_vec();
    }
    if end == crate::exec::load::USER_STACK_TOP {
        return b"[stack]".to_vec();
    }
    Vec::new()
}

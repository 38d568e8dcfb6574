//! Host tests of procfs: a fake [`ProcSource`] with three processes, walked through
//! the real [`Vfs`] with procfs mounted on a tmpfs `/proc`.

use super::errno::*;
use super::procfs::*;
use super::tmpfs::{Tmpfs, TmpfsLimits};
use super::vfs::{CreateMode, FollowLast, Vfs};
use super::*;
use crate::memory::address_space::test_frames::TestFrames;
use crate::syscall::errno::ESRCH;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use spin::Mutex;

struct Fake {
    procs: Mutex<Vec<ProcessInfo>>,
    sys: SystemInfo,
}

impl ProcSource for Fake {
    fn pids(&self) -> Vec<u32> {
        self.procs.lock().iter().map(|p| p.pid).collect()
    }
    fn caller(&self) -> Option<(u32, u32)> {
        Some((42, 43))
    }
    fn process(&self, pid: u32) -> Option<ProcessInfo> {
        self.procs.lock().iter().find(|p| p.pid == pid).cloned()
    }
    fn system(&self) -> SystemInfo {
        self.sys.clone()
    }
}

impl Fake {
    fn exit(&self, pid: u32) {
        self.procs.lock().retain(|p| p.pid != pid);
    }
}

fn map(start: u64, end: u64, rwx: &str, name: &str) -> MapInfo {
    MapInfo {
        start,
        end,
        read: rwx.contains('r'),
        write: rwx.contains('w'),
        exec: rwx.contains('x'),
        shared: rwx.contains('s'),
        offset: 0,
        name: name.into(),
    }
}

fn process(pid: u32, comm: &str) -> ProcessInfo {
    ProcessInfo {
        pid,
        ppid: 1,
        pgid: pid,
        sid: 1,
        comm: comm.into(),
        threads: vec![pid],
        cmdline: b"init\0".to_vec(),
        ..Default::default()
    }
}

fn fake() -> Fake {
    let shell = ProcessInfo {
        ppid: 7,
        pgid: 40,
        sid: 30,
        state: ProcState::Sleeping,
        threads: vec![42, 43],
        cmdline: b"sh\0-c\0echo hi\0".to_vec(),
        exe: Some(b"/bin/sh".to_vec()),
        cwd: Some(b"/tmp".to_vec()),
        root: Some(b"/".to_vec()),
        maps: vec![
            map(0x40_0000, 0x40_2000, "rx", "/bin/sh"),
            map(0x60_0000, 0x60_1000, "rw", ""),
            map(0x7fff_f000, 0x8000_0000, "rw", "[stack]"),
        ],
        fds: vec![
            (0, b"/dev/null".to_vec()),
            (1, b"pipe:[7]".to_vec()),
            (5, b"/tmp/x".to_vec()),
        ],
        vm_size_bytes: 0x4000,
        rss_pages: 3,
        start_ticks: 250,
        priority: 20,
        umask: 0o22,
        sig_blocked: 1 << 1,
        voluntary_switches: 9,
        ..process(42, "a b)c")
    };
    let zombie = ProcessInfo {
        state: ProcState::Zombie,
        ..process(7, "gone")
    };
    let sys = SystemInfo {
        page_size: 4096,
        total_frames: 1024,
        free_frames: 256,
        fs_pages: 8,
        uptime_ns: 12_345_000_000,
        idle_ns: 2_500_000_000,
        ticks_per_second: 100,
        cpus: vec![
            CpuInfo {
                id: 0,
                ..Default::default()
            },
            CpuInfo {
                id: 1,
                ..Default::default()
            },
        ],
        mounts: vec![MountInfo {
            source: b"proc".to_vec(),
            target: b"/my proc".to_vec(),
            fstype: b"proc".to_vec(),
            options: b"rw".to_vec(),
        }],
        running: 1,
        processes_total: 4,
        load: [2048, 1024 + 512, 0],
        last_pid: 43,
        boot_time_secs: 1_000,
        ..Default::default()
    };
    Fake {
        procs: Mutex::new(vec![process(1, "init"), zombie, shell]),
        sys,
    }
}

fn clock() -> Nanos {
    0
}

/// A tmpfs root with procfs on `/proc`.
fn setup() -> (TestFrames, Arc<Fake>, Vfs) {
    let frames = TestFrames::new(1);
    let limits = TmpfsLimits {
        pages: 64,
        inodes: 64,
    };
    let root = Tmpfs::new(frames.clone(), limits, DeviceId::new(0, 1), clock, 0o755);
    let vfs = Vfs::new(Arc::new(root));
    let at = vfs
        .mkdir(vfs.root(), b"/proc", NodeAttrs::root(0o555))
        .unwrap();
    let source = Arc::new(fake());
    vfs.mount(
        at,
        Arc::new(ProcFs::new(source.clone(), DeviceId::new(0, 22))),
    )
    .unwrap();
    (frames, source, vfs)
}

fn node(vfs: &Vfs, path: &str) -> Result<Node, Errno> {
    vfs.resolve(vfs.root(), path.as_bytes(), FollowLast::Follow)
}

/// The whole file, read 7 bytes at a time (so at many offsets).
fn read(vfs: &Vfs, path: &str) -> Result<Vec<u8>, Errno> {
    let f = vfs.open(node(vfs, path)?)?;
    assert_eq!(f.stat()?.size, 0, "{path}: procfs files report size 0");
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = f.read(out.len() as u64, &mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn text(vfs: &Vfs, path: &str) -> String {
    String::from_utf8(read(vfs, path).unwrap()).unwrap()
}

fn names(vfs: &Vfs, path: &str) -> Vec<String> {
    let dir = node(vfs, path).unwrap();
    let mut out = Vec::new();
    let mut cookie = 0;
    while let Some(e) = vfs.read_dir(dir, cookie).unwrap() {
        out.push(String::from_utf8(e.name).unwrap());
        cookie = e.next;
    }
    out
}

fn link(vfs: &Vfs, path: &str) -> Vec<u8> {
    vfs.readlink(vfs.root(), path.as_bytes()).unwrap()
}

#[test]
fn root_lists_pids_and_fixed_names() {
    let (_f, _s, vfs) = setup();
    let names = names(&vfs, "/proc");
    assert_eq!(names[..2], [".", ".."]);
    for n in [
        "1",
        "7",
        "42",
        "self",
        "thread-self",
        "meminfo",
        "cpuinfo",
        "uptime",
    ] {
        assert!(names.iter().any(|m| m == n), "{n} in {names:?}");
    }
    for n in [
        "loadavg",
        "mounts",
        "stat",
        "version",
        "filesystems",
        "cmdline",
        "sys",
    ] {
        assert!(names.iter().any(|m| m == n), "{n} in {names:?}");
    }
    let root = vfs.stat(node(&vfs, "/proc").unwrap()).unwrap();
    assert_eq!(
        (root.kind, root.perm, root.dev),
        (FileKind::Directory, 0o555, DeviceId::new(0, 22))
    );
    let pid = vfs.stat(node(&vfs, "/proc/42").unwrap()).unwrap();
    assert_eq!((pid.kind, pid.perm), (FileKind::Directory, 0o555));
    assert_eq!(pid.mtime, 1_002_500_000_000, "boot time + start ticks");
    assert_eq!(
        node(&vfs, "/proc/42/..").unwrap(),
        node(&vfs, "/proc").unwrap()
    );
    assert_eq!(node(&vfs, "/proc/..").unwrap(), vfs.root());
    assert_eq!(node(&vfs, "/proc/042"), Err(ENOENT));
    assert_eq!(node(&vfs, "/proc/99"), Err(ENOENT));
    assert_eq!(text(&vfs, "/proc/sys/kernel/osrelease"), "6.1.0\n");
    let fs = vfs.statfs(node(&vfs, "/proc").unwrap()).unwrap();
    assert_eq!(fs.magic, PROC_SUPER_MAGIC);
}

#[test]
fn self_and_thread_self() {
    let (_f, _s, vfs) = setup();
    assert_eq!(node(&vfs, "/proc/self"), node(&vfs, "/proc/42"));
    assert_eq!(link(&vfs, "/proc/self"), b"42");
    assert_eq!(link(&vfs, "/proc/thread-self"), b"42/task/43");
    assert_eq!(
        node(&vfs, "/proc/thread-self"),
        node(&vfs, "/proc/42/task/43")
    );
    assert!(text(&vfs, "/proc/thread-self/stat").starts_with("43 (a b)c) S "));
    assert_eq!(
        text(&vfs, "/proc/mounts"),
        "proc /my\\040proc proc rw 0 0\n"
    );
}

#[test]
fn pid_stat_has_the_52_fields() {
    let (_f, _s, vfs) = setup();
    let stat = text(&vfs, "/proc/42/stat");
    let open = stat.find(" (").unwrap();
    let close = stat.rfind(')').unwrap();
    assert_eq!(&stat[..open], "42");
    assert_eq!(&stat[open + 2..close], "a b)c");
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    assert_eq!(rest.len(), 50, "{stat}");
    assert!(stat.ends_with('\n'));
    let field = |n: usize| rest[n - 3];
    assert_eq!(
        [field(3), field(4), field(5), field(6)],
        ["S", "7", "40", "30"]
    );
    assert_eq!([field(18), field(19), field(20)], ["20", "0", "2"]);
    assert_eq!([field(22), field(23), field(24)], ["250", "16384", "3"]);
    assert_eq!([field(32), field(38)], ["2", "17"]);
    assert!(text(&vfs, "/proc/7/stat").starts_with("7 (gone) Z 1 7 1 "));
}

#[test]
fn status_statm_cmdline_comm() {
    let (_f, _s, vfs) = setup();
    let status = text(&vfs, "/proc/42/status");
    for line in [
        "Name:\ta b)c\n",
        "Umask:\t0022\n",
        "State:\tS (sleeping)\n",
        "Tgid:\t42\n",
    ] {
        assert!(status.contains(line), "{line:?} in {status}");
    }
    for line in [
        "\nPid:\t42\n",
        "PPid:\t7\n",
        "Threads:\t2\n",
        "VmSize:\t      16 kB\n",
    ] {
        assert!(status.contains(line), "{line:?} in {status}");
    }
    assert!(status.contains("VmRSS:\t      12 kB\nThreads") && status.contains("FDSize:\t64\n"));
    assert!(status.contains("SigBlk:\t0000000000000002\n"));
    assert!(status.ends_with("voluntary_ctxt_switches:\t9\nnonvoluntary_ctxt_switches:\t0\n"));
    assert!(text(&vfs, "/proc/42/task/43/status").contains("\nPid:\t43\n"));
    assert!(
        !text(&vfs, "/proc/7/status").contains("VmSize"),
        "a zombie has no mm"
    );
    assert_eq!(text(&vfs, "/proc/42/statm"), "4 3 0 2 0 2 0\n");
    assert_eq!(
        read(&vfs, "/proc/42/cmdline").unwrap(),
        b"sh\0-c\0echo hi\0"
    );
    assert_eq!(text(&vfs, "/proc/42/comm"), "a b)c\n");
    assert_eq!(text(&vfs, "/proc/42/task/42/comm"), "a b)c\n");
}

#[test]
fn maps_lines_are_linux_formatted() {
    let (_f, _s, vfs) = setup();
    let maps = text(&vfs, "/proc/self/maps");
    let lines: Vec<&str> = maps.lines().collect();
    let pad = |s: &str| alloc::format!("{s:<72} ");
    assert_eq!(
        lines[0],
        pad("00400000-00402000 r-xp 00000000 00:00 0") + "/bin/sh"
    );
    assert_eq!(lines[1], "00600000-00601000 rw-p 00000000 00:00 0 ");
    assert_eq!(
        lines[2],
        pad("7ffff000-80000000 rw-p 00000000 00:00 0") + "[stack]"
    );
    assert_eq!(lines.len(), 3);
}

#[test]
fn fd_dir_and_links() {
    let (_f, _s, vfs) = setup();
    assert_eq!(names(&vfs, "/proc/42/fd"), [".", "..", "0", "1", "5"]);
    assert_eq!(link(&vfs, "/proc/42/fd/1"), b"pipe:[7]");
    assert_eq!(link(&vfs, "/proc/42/fd/5"), b"/tmp/x");
    assert_eq!(link(&vfs, "/proc/42/exe"), b"/bin/sh");
    assert_eq!(link(&vfs, "/proc/42/cwd"), b"/tmp");
    assert_eq!(vfs.readlink(vfs.root(), b"/proc/1/exe"), Err(ENOENT));
    let nofollow = |p: &str| vfs.resolve(vfs.root(), p.as_bytes(), FollowLast::NoFollow);
    let fd = vfs.stat(nofollow("/proc/42/fd/0").unwrap()).unwrap();
    assert_eq!((fd.kind, fd.perm), (FileKind::Symlink, 0o700));
    let dir = vfs.stat(node(&vfs, "/proc/42/fd").unwrap()).unwrap();
    assert_eq!((dir.kind, dir.perm), (FileKind::Directory, 0o500));
    assert_eq!(nofollow("/proc/42/fd/2"), Err(ENOENT));
    // fd 0 follows to /dev/null, which this tree does not have.
    assert_eq!(node(&vfs, "/proc/42/fd/0"), Err(ENOENT));
}

#[test]
fn task_dirs() {
    let (_f, _s, vfs) = setup();
    assert_eq!(names(&vfs, "/proc/42/task"), [".", "..", "42", "43"]);
    assert_eq!(
        names(&vfs, "/proc/42/task/43"),
        [".", "..", "comm", "stat", "status"]
    );
    assert_eq!(
        vfs.stat(node(&vfs, "/proc/42/task").unwrap())
            .unwrap()
            .nlink,
        4
    );
    assert_eq!(
        node(&vfs, "/proc/42/task/43/..").unwrap(),
        node(&vfs, "/proc/42/task").unwrap()
    );
    assert_eq!(node(&vfs, "/proc/42/task/44"), Err(ENOENT));
    assert_eq!(node(&vfs, "/proc/1/task/43"), Err(ENOENT));
}

#[test]
fn machine_files() {
    let (_f, _s, vfs) = setup();
    let mem = text(&vfs, "/proc/meminfo");
    assert!(mem.starts_with("MemTotal:           4096 kB\nMemFree:            1024 kB\n"));
    assert!(
        mem.contains("\nShmem:                32 kB\n")
            && mem.contains("\nSwapTotal:             0 kB\n")
    );
    assert!(mem.contains("\nHugePages_Total:       0\n"));
    assert_eq!(text(&vfs, "/proc/uptime"), "12.34 2.50\n");
    assert_eq!(text(&vfs, "/proc/loadavg"), "1.00 0.75 0.00 1/4 43\n");
    let stat = text(&vfs, "/proc/stat");
    assert!(stat.starts_with("cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 ") && stat.contains("\ncpu1 "));
    assert!(stat.contains("\nbtime 1000\n") && stat.contains("\nprocs_running 1\n"));
    let cpu = text(&vfs, "/proc/cpuinfo");
    assert_eq!(cpu.matches("processor\t: ").count(), 2);
    assert!(cpu.contains("vendor_id\t: unknown\n"));
    assert!(text(&vfs, "/proc/version").starts_with("Linux version 6.1.0 "));
    assert!(text(&vfs, "/proc/filesystems").contains("nodev\tproc\n"));
}

#[test]
fn partial_reads_concatenate() {
    let (_f, _s, vfs) = setup();
    let f = vfs.open(node(&vfs, "/proc/42/status").unwrap()).unwrap();
    let mut whole = vec![0; 4096];
    let n = f.read(0, &mut whole).unwrap();
    whole.truncate(n);
    assert_eq!(read(&vfs, "/proc/42/status").unwrap(), whole);
    let mut tail = [0; 8];
    assert_eq!(f.read(n as u64 - 3, &mut tail), Ok(3));
    assert_eq!(f.read(n as u64 + 100, &mut tail), Ok(0));
    assert_eq!(f.read(u64::MAX, &mut tail), Ok(0));
}

#[test]
fn a_process_that_exits_leaves_stale_inodes() {
    let (_f, source, vfs) = setup();
    let status = node(&vfs, "/proc/42/status").unwrap();
    let dir = node(&vfs, "/proc/42").unwrap();
    let fd = vfs
        .resolve(vfs.root(), b"/proc/42/fd/5", FollowLast::NoFollow)
        .unwrap();
    let open = vfs.open(status).unwrap();
    source.exit(42);
    assert_eq!(vfs.stat(status), Err(ENOENT));
    assert_eq!(vfs.stat(fd), Err(ENOENT));
    assert_eq!(vfs.read_dir(dir, 0), Err(ENOENT));
    assert_eq!(open.read(0, &mut [0; 8]), Err(ESRCH));
    assert_eq!(node(&vfs, "/proc/42"), Err(ENOENT));
    assert_eq!(node(&vfs, "/proc/self"), Err(ENOENT));
    assert!(!names(&vfs, "/proc").iter().any(|n| n == "42"));
}

#[test]
fn cookies_survive_an_exit() {
    let (_f, source, vfs) = setup();
    let dir = node(&vfs, "/proc").unwrap();
    let mut cookie = 0;
    let mut seen = Vec::new();
    while let Some(e) = vfs.read_dir(dir, cookie).unwrap() {
        if e.name == b"7" {
            source.exit(1);
            source.exit(7);
        }
        seen.push(String::from_utf8(e.name).unwrap());
        cookie = e.next;
    }
    let pids: Vec<&String> = seen
        .iter()
        .filter(|n| n.as_bytes()[0].is_ascii_digit())
        .collect();
    assert_eq!(pids, ["1", "7", "42"]);
}

#[test]
fn read_only_errnos_are_linux_ones() {
    let (_f, _s, vfs) = setup();
    let root = vfs.root();
    let attrs = NodeAttrs::root(0o644);
    let create = |p: &[u8]| vfs.create(root, p, CreateMode::IfMissing, FollowLast::Follow, attrs);
    assert_eq!(create(b"/proc/x"), Err(ENOENT));
    assert_eq!(create(b"/proc/42/x"), Err(ENOENT));
    assert_eq!(vfs.mkdir(root, b"/proc/x", attrs), Err(ENOENT));
    assert_eq!(vfs.mkdir(root, b"/proc/meminfo", attrs), Err(EEXIST));
    assert_eq!(vfs.symlink(b"a", root, b"/proc/y"), Err(ENOENT));
    assert_eq!(vfs.unlink(root, b"/proc/meminfo"), Err(EPERM));
    assert_eq!(vfs.unlink(root, b"/proc/nope"), Err(ENOENT));
    assert_eq!(vfs.rmdir(root, b"/proc/42/fd"), Err(EPERM));
    let rename = |a: &[u8], b: &[u8]| vfs.rename(root, a, root, b, RenameMode::Replace);
    assert_eq!(rename(b"/proc/meminfo", b"/proc/uptime"), Err(EPERM));
    assert_eq!(rename(b"/proc/meminfo", b"/proc/z"), Err(ENOENT));
    assert_eq!(
        vfs.link(root, b"/proc/meminfo", root, b"/proc/z", FollowLast::Follow),
        Err(ENOENT)
    );
    let meminfo = vfs.open(node(&vfs, "/proc/meminfo").unwrap()).unwrap();
    assert_eq!(meminfo.write(0, b"x"), Err(EIO));
    let stat = vfs.open(node(&vfs, "/proc/42/stat").unwrap()).unwrap();
    assert_eq!(stat.write(0, b"x"), Err(EINVAL));
    assert_eq!(stat.truncate(0), Ok(()));
    let chmod = SetAttr {
        perm: Some(0o777),
        ..Default::default()
    };
    assert_eq!(stat.set_attr(&chmod), Err(EPERM));
    assert_eq!(
        stat.set_attr(&SetAttr {
            uid: Some(1),
            ..Default::default()
        }),
        Ok(())
    );
    assert_eq!(
        text(&vfs, "/proc/meminfo").len(),
        read(&vfs, "/proc/meminfo").unwrap().len()
    );
}

/// Every method on inode numbers near the valid ones and random ones: an errno
/// or a value, never a panic.
#[test]
fn no_panic_on_any_ino() {
    let source: Arc<dyn ProcSource> = Arc::new(fake());
    let fs = ProcFs::new(source, DeviceId::new(0, 22));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut inos = Vec::new();
    for entry in 0..40u64 {
        for pid in [0u64, 1, 7, 42, 99, (1 << 28) - 1] {
            for arg in [0u64, 1, 5, 42, 43, (1 << 28) - 1] {
                inos.push(pid << 36 | arg << 8 | entry);
            }
        }
    }
    for _ in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        inos.push(seed);
    }
    let mut buf = [0u8; 64];
    for &ino in &inos {
        let _ = fs.stat(ino);
        for name in [
            &b"self"[..],
            b"42",
            b"0",
            b"5",
            b"43",
            b"stat",
            b"",
            b"4294967295",
        ] {
            let _ = fs.lookup(ino, name);
            let _ = fs.create(ino, name, NewNode::Regular, NodeAttrs::root(0));
            let _ = fs.remove(ino, name, RemoveKind::Directory);
            let _ = fs.link(ino, name, ino);
            let _ = fs.rename(ino, name, ino, name, RenameMode::Exchange);
        }
        let _ = fs.parent(ino);
        let _ = fs.read_link(ino);
        for off in [0, 3, 1 << 40, u64::MAX] {
            let _ = fs.read(ino, off, &mut buf);
        }
        let _ = fs.write(ino, 0, b"x");
        let _ = fs.truncate(ino, 0);
        for cookie in [0, 1, 2, 13, 14, 15, 50, u64::MAX] {
            let _ = fs.read_dir(ino, cookie);
        }
        let _ = fs.set_attr(ino, &SetAttr::default());
        let _ = fs.retain(ino);
        fs.release(ino);
    }
}

//! Host tests of the file system calls through `dispatch`, as programs reach them:
//! files of the tmpfs root, `/proc` and `/dev`, their errnos for bad input, and
//! that every frame a file took comes back.

use super::tests::Machine;
use super::*;

const BUF: usize = 0x1000_0000;

/// A machine with four mapped pages at [`BUF`].
fn machine() -> Machine {
    let mut m = Machine::new(8);
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_FIXED;
    let prot = mmap::PROT_READ | mmap::PROT_WRITE;
    assert_eq!(
        m.sys(SYS_MMAP, [BUF, 4 * 4096, prot, flags, usize::MAX, 0]),
        Ok(BUF)
    );
    m
}

impl Machine {
    /// open(path, flags, mode) with the path put at BUF.
    fn open(&mut self, path: &str, flags: usize, mode: usize) -> Result<usize, Errno> {
        let mut bytes = path.as_bytes().to_vec();
        bytes.push(0);
        self.poke_bytes(BUF, &bytes);
        self.sys(SYS_OPEN, [BUF, flags, mode, 0, 0, 0])
    }

    /// The whole of `fd` read in 100-byte pieces (into BUF + 8 KiB).
    fn read_all(&mut self, fd: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let n = self.sys(SYS_READ, [fd, BUF + 8192, 100, 0, 0, 0]).unwrap();
            if n == 0 {
                return out;
            }
            out.extend(self.peek_bytes(BUF + 8192, n));
        }
    }
}

#[test]
fn proc_self_status_names_the_caller() {
    let mut m = machine();
    let pid = m.pid_of(m.init);
    let fd = m.open("/proc/self/status", 0, 0).unwrap();
    let text = String::from_utf8(m.read_all(fd)).unwrap();
    assert!(
        text.contains(&format!("\nPid:\t{}\n", pid.0)),
        "status of the caller:\n{text}"
    );
    assert_eq!(m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]), Ok(0));
    m.shut_down();
}

const O_WRONLY: usize = 1;
const O_RDWR: usize = 2;
const O_CREAT: usize = 0o100;
const O_EXCL: usize = 0o200;
const O_NONBLOCK: usize = 0o4000;
const O_DIRECTORY: usize = 0o200_000;

impl Machine {
    /// A path call `num(path, a1, a2)` with the path put at BUF + 4 KiB.
    fn path_call(&mut self, num: usize, path: &str, a1: usize, a2: usize) -> Result<usize, Errno> {
        let mut bytes = path.as_bytes().to_vec();
        bytes.push(0);
        self.poke_bytes(BUF + 4096, &bytes);
        self.sys(num, [BUF + 4096, a1, a2, 0, 0, 0])
    }

    /// rename(from, to) with the paths at BUF + 4 KiB and BUF + 6 KiB.
    fn rename(&mut self, from: &str, to: &str) -> Result<usize, Errno> {
        self.poke_bytes(BUF + 4096, &[from.as_bytes(), b"\0"].concat());
        self.poke_bytes(BUF + 6144, &[to.as_bytes(), b"\0"].concat());
        self.sys(SYS_RENAME, [BUF + 4096, BUF + 6144, 0, 0, 0, 0])
    }

    /// The names getdents64 lists for directory `path`, sorted.
    fn list(&mut self, path: &str) -> Vec<String> {
        let fd = self.open(path, O_DIRECTORY, 0).unwrap();
        let mut names = Vec::new();
        loop {
            let n = self
                .sys(SYS_GETDENTS64, [fd, BUF + 8192, 4096, 0, 0, 0])
                .unwrap();
            if n == 0 {
                break;
            }
            let raw = self.peek_bytes(BUF + 8192, n);
            let mut at = 0;
            while at < n {
                let reclen = u16::from_le_bytes([raw[at + 16], raw[at + 17]]) as usize;
                let name = &raw[at + 19..at + reclen];
                let end = name.iter().position(|&b| b == 0).unwrap();
                names.push(String::from_utf8(name[..end].to_vec()).unwrap());
                at += reclen;
            }
        }
        self.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]).unwrap();
        names.sort();
        names
    }

    /// write(fd, bytes) from BUF + 12 KiB.
    fn write_fd(&mut self, fd: usize, bytes: &[u8]) -> Result<usize, Errno> {
        self.poke_bytes(BUF + 12288, bytes);
        self.sys(SYS_WRITE, [fd, BUF + 12288, bytes.len(), 0, 0, 0])
    }
}

#[test]
fn the_root_has_dev_proc_tmp_and_files_round_trip_their_bytes() {
    let mut m = machine();
    let root = m.list("/");
    for dir in ["dev", "proc", "sys", "tmp"] {
        assert!(root.contains(&dir.to_string()), "{dir} in {root:?}");
    }
    assert_eq!(
        m.open("/dev/tty", O_RDWR, 0),
        Err(ENXIO),
        "no controlling terminal"
    );
    let fd = m.open("/tmp/f", O_CREAT | O_RDWR, 0o644).unwrap();
    assert_eq!(m.write_fd(fd, b"hello, file"), Ok(11));
    assert_eq!(m.sys(SYS_LSEEK, [fd, 7, 0, 0, 0, 0]), Ok(7));
    assert_eq!(m.read_all(fd), b"file");
    assert_eq!(m.sys(SYS_LSEEK, [fd, 4096 * 3, 0, 0, 0, 0]), Ok(4096 * 3));
    assert_eq!(m.write_fd(fd, b"!"), Ok(1), "beyond the end: a hole");
    let tree = m.tree();
    assert!(tree.pages_used() >= 2);
    m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(m.path_call(SYS_UNLINK, "/tmp/f", 0, 0), Ok(0));
    assert_eq!(tree.pages_used(), 0, "unlink gave the pages back");
    m.shut_down();
}

#[test]
fn bad_paths_get_linux_errnos_and_change_nothing() {
    let mut m = machine();
    assert_eq!(m.path_call(SYS_MKDIR, "/tmp/d", 0o755, 0), Ok(0));
    let fd = m.open("/tmp/d/x", O_CREAT | O_WRONLY, 0o600).unwrap();
    m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]).unwrap();
    let before = m.list("/tmp/d");
    assert_eq!(m.open("/tmp/nothing", 0, 0), Err(ENOENT));
    assert_eq!(m.open("/tmp/d/x", O_CREAT | O_EXCL, 0o600), Err(EEXIST));
    assert_eq!(m.open("/tmp/d", O_WRONLY, 0), Err(EISDIR));
    assert_eq!(m.open("/tmp/d/x/y", 0, 0), Err(ENOTDIR));
    assert_eq!(m.open("/tmp/d/x", O_DIRECTORY, 0), Err(ENOTDIR));
    assert_eq!(m.path_call(SYS_MKDIR, "/tmp/d", 0o755, 0), Err(EEXIST));
    assert_eq!(m.path_call(SYS_RMDIR, "/tmp/d", 0, 0), Err(ENOTEMPTY));
    assert_eq!(m.path_call(SYS_UNLINK, "/tmp/d", 0, 0), Err(EISDIR));
    assert_eq!(m.rename("/tmp/d", "/tmp/d/x/in"), Err(ENOTDIR));
    assert_eq!(m.path_call(SYS_MKDIR, "/tmp/d/sub", 0o755, 0), Ok(0));
    assert_eq!(
        m.rename("/tmp/d", "/tmp/d/sub/in"),
        Err(EINVAL),
        "into itself"
    );
    assert_eq!(
        m.rename("/tmp/d/x", "/dev/shm/x"),
        Err(EXDEV),
        "across mounts"
    );
    let long = format!("/tmp/{}", "n".repeat(256));
    assert_eq!(m.open(&long, O_CREAT, 0o600), Err(ENAMETOOLONG));
    let dirfd = m.open("/tmp/d", O_DIRECTORY, 0).unwrap();
    assert_eq!(
        m.write_fd(dirfd, b"x"),
        Err(EBADF),
        "a directory is read-only"
    );
    assert_eq!(
        m.sys(SYS_READ, [dirfd, BUF + 8192, 1, 0, 0, 0]),
        Err(EISDIR)
    );
    assert_eq!(m.path_call(SYS_RMDIR, "/tmp/d/sub", 0, 0), Ok(0));
    assert_eq!(m.list("/tmp/d"), before, "the failed calls changed nothing");
    m.shut_down();
}

#[test]
fn filling_tmpfs_ends_in_enospc_and_unlink_gives_it_back() {
    let mut m = machine();
    let tree = m.tree();
    let fd = m.open("/tmp/big", O_CREAT | O_WRONLY, 0o600).unwrap();
    let chunk = alloc::vec![7u8; 4096];
    m.poke_bytes(BUF + 12288, &chunk);
    let mut written = 0;
    let last = loop {
        match m.sys(SYS_WRITE, [fd, BUF + 12288, 4096, 0, 0, 0]) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
        assert!(written < 64 << 20, "the tree must fill up");
    };
    assert!(
        last == ENOSPC || last == ENOMEM,
        "the writer is told: {last:?}"
    );
    assert!(written > 0);
    // The system stays usable: another file can be made once this one is gone.
    m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(m.path_call(SYS_UNLINK, "/tmp/big", 0, 0), Ok(0));
    assert_eq!(tree.pages_used(), 0);
    let fd = m.open("/tmp/small", O_CREAT | O_WRONLY, 0o600).unwrap();
    assert_eq!(m.write_fd(fd, b"ok"), Ok(2));
    m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]).unwrap();
    drop(tree); // the tree (and /tmp/small's page) goes with the machine
    m.shut_down();
}

#[test]
fn chdir_makes_relative_paths_and_getcwd_follows_renames() {
    let mut m = machine();
    assert_eq!(m.path_call(SYS_MKDIR, "/tmp/a", 0o755, 0), Ok(0));
    assert_eq!(m.path_call(SYS_CHDIR, "/tmp/a", 0, 0), Ok(0));
    let fd = m.open("rel", O_CREAT | O_WRONLY, 0o600).unwrap();
    m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!(m.list("/tmp/a"), [".", "..", "rel"]);
    assert_eq!(m.rename("/tmp/a", "/tmp/b"), Ok(0));
    assert_eq!(m.sys(SYS_GETCWD, [BUF + 8192, 100, 0, 0, 0, 0]), Ok(7));
    assert_eq!(m.peek_bytes(BUF + 8192, 7), b"/tmp/b\0");
    assert_eq!(m.sys(SYS_GETCWD, [BUF + 8192, 3, 0, 0, 0, 0]), Err(ERANGE));
    assert_eq!(m.path_call(SYS_UNLINK, "rel", 0, 0), Ok(0));
    assert_eq!(m.path_call(SYS_RMDIR, "/tmp/b", 0, 0), Ok(0));
    assert_eq!(
        m.sys(SYS_GETCWD, [BUF + 8192, 100, 0, 0, 0, 0]),
        Err(ENOENT),
        "a removed working directory, as on Linux"
    );
    assert_eq!(m.open("new", O_CREAT, 0o600), Err(ENOENT));
    m.shut_down();
}

#[test]
fn a_script_runs_its_interpreter_with_linux_argv() {
    let mut m = machine();
    super::io_tests::put_prog(&m);
    m.put_file("/script", b"#!/prog  one two \nignored", 0o755);
    m.put_file("/noexec", b"#!/prog\n", 0o644);
    let pid = m.pid_of(m.init);
    m.poke_bytes(BUF, b"/script\0");
    m.poke_bytes(BUF + 16, b"x\0");
    let argv: Vec<u8> = [BUF as u64, BUF as u64 + 16, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    m.poke_bytes(BUF + 64, &argv);
    assert_eq!(m.path_call(SYS_EXECVE, "/noexec", 0, 0), Err(EACCES));
    assert_eq!(m.path_call(SYS_EXECVE, "/tmp", 0, 0), Err(EACCES));
    assert_eq!(m.sys(SYS_EXECVE, [BUF, BUF + 64, 0, 0, 0, 0]), Ok(0));
    let p = m.table.process(pid).unwrap();
    assert_eq!(p.name, "script", "named after the script, as Linux");
    assert_eq!(p.image.cmdline, b"/prog\0one two\0/script\0x\0");
    m.shut_down();
}

#[test]
fn a_fifo_opens_as_linux_says_without_a_partner() {
    let mut m = machine();
    assert_eq!(
        m.path_call(SYS_MKNOD, "/tmp/p", 0o010_644, 0),
        Ok(0),
        "mknod S_IFIFO"
    );
    assert_eq!(
        m.open("/tmp/p", O_WRONLY | O_NONBLOCK, 0),
        Err(ENXIO),
        "no reader"
    );
    let r = m.open("/tmp/p", O_NONBLOCK, 0).unwrap();
    let w = m.open("/tmp/p", O_WRONLY | O_NONBLOCK, 0).unwrap();
    assert_eq!(m.write_fd(w, b"fifo"), Ok(4));
    assert_eq!(m.sys(SYS_READ, [r, BUF + 8192, 10, 0, 0, 0]), Ok(4));
    assert_eq!(m.peek_bytes(BUF + 8192, 4), b"fifo");
    let both = m.open("/tmp/p", O_RDWR, 0).unwrap();
    assert_eq!(m.sys(SYS_LSEEK, [both, 0, 0, 0, 0, 0]), Err(ESPIPE));
    for fd in [r, w, both] {
        m.sys(SYS_CLOSE, [fd, 0, 0, 0, 0, 0]).unwrap();
    }
    assert_eq!(
        m.open("/tmp/p", 0, 0),
        Err(ERESTARTSYS),
        "a reader waits for a writer"
    );
    assert_eq!(
        m.sched.state(m.init),
        Some(crate::process::ThreadState::Blocked)
    );
    m.shut_down();
}

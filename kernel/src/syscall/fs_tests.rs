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

//! The initrd xtask gives the kernel: a cpio "newc" archive (the format Linux uses)
//! with the user programs and, for an init run, `.init.argv` / `.init.envp`
//! (NUL-terminated strings) saying what to run as pid 1.
//!
//! [`Member`]s are regular files (mode 0755) at the archive's root; a root file
//! system tree (`busybox.rs`) is a list of [`Node`]s: directories, files and
//! symlinks with their modes, written by [`cpio_tree`] (a symlink's data is its
//! target, mode `0120777`, as Linux's initramfs and the kernel's cpio fill read it).

use std::path::{Path, PathBuf};

/// One archive member.
pub struct Member {
    /// Path inside the archive (no leading `/`).
    pub name: String,
    /// Contents.
    pub data: Vec<u8>,
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn push(out: &mut Vec<u8>, ino: usize, name: &str, mode: u32, data: &[u8]) {
    let fields = [
        ino,
        mode as usize,
        0,
        0,
        1,
        0,
        data.len(),
        0,
        0,
        0,
        0,
        name.len() + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// The newc archive of `members` (regular files, mode 0755), with its trailer.
pub fn cpio(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, m) in members.iter().enumerate() {
        push(&mut out, i + 1, &m.name, 0o100_755, &m.data);
    }
    push(&mut out, 0, "TRAILER!!!", 0, &[]);
    out
}

/// One entry of a root file system tree (path without a leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory with these permission bits (e.g. `0o1777` for `/tmp`).
    Dir { name: String, perm: u32 },
    /// A regular file with these permission bits.
    File {
        name: String,
        perm: u32,
        data: Vec<u8>,
    },
    /// A symlink to `target`.
    Symlink { name: String, target: String },
}

impl Node {
    /// Its path in the archive.
    pub fn name(&self) -> &str {
        match self {
            Node::Dir { name, .. } | Node::File { name, .. } | Node::Symlink { name, .. } => name,
        }
    }

    /// The newc mode word (file type and permission bits) and the data.
    fn mode_and_data(&self) -> (u32, &[u8]) {
        match self {
            Node::Dir { perm, .. } => (0o040_000 | perm, &[]),
            Node::File { perm, data, .. } => (0o100_000 | perm, data),
            Node::Symlink { target, .. } => (0o120_777, target.as_bytes()),
        }
    }
}

impl From<Member> for Node {
    fn from(m: Member) -> Node {
        Node::File {
            name: m.name,
            perm: 0o755,
            data: m.data,
        }
    }
}

/// The newc archive of `nodes` in their order (a directory before what it holds),
/// each with its own inode number, with its trailer.
pub fn cpio_tree(nodes: &[Node]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let (mode, data) = n.mode_and_data();
        push(&mut out, i + 1, n.name(), mode, data);
    }
    push(&mut out, 0, "TRAILER!!!", 0, &[]);
    out
}

/// The init request files `.init.argv` and `.init.envp`.
pub fn init_request(argv: &[String], envp: &[String]) -> [Node; 2] {
    let file = |name: &str, data| Node::File {
        name: name.into(),
        perm: 0o644,
        data,
    };
    [
        file(".init.argv", strings(argv)),
        file(".init.envp", strings(envp)),
    ]
}

/// Writes the tree `nodes` plus the init request (`argv`, `envp`; none if `argv` is
/// empty) to `out`.
pub fn write_tree(
    out: &Path,
    mut nodes: Vec<Node>,
    argv: &[String],
    envp: &[String],
) -> Result<(), String> {
    if !argv.is_empty() {
        nodes.extend(init_request(argv, envp));
    }
    std::fs::write(out, cpio_tree(&nodes)).map_err(|e| format!("write {}: {e}", out.display()))
}

/// NUL-terminated strings.
pub fn strings<S: AsRef<str>>(items: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_ref().as_bytes());
        out.push(0);
    }
    out
}

/// Members for every file of `dir` without an extension (the built user programs).
pub fn programs_in(dir: &Path) -> Vec<Member> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            let data = std::fs::read(&p).ok()?;
            Some(Member { name, data })
        })
        .collect()
}

/// Writes the archive of `members` plus the init request (`argv`, `envp`; none if
/// `argv` is empty) to `out`.
pub fn write(
    out: &Path,
    mut members: Vec<Member>,
    argv: &[String],
    envp: &[String],
) -> Result<(), String> {
    if !argv.is_empty() {
        members.push(Member {
            name: ".init.argv".into(),
            data: strings(argv),
        });
        members.push(Member {
            name: ".init.envp".into(),
            data: strings(envp),
        });
    }
    std::fs::write(out, cpio(&members)).map_err(|e| format!("write {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let a = cpio(&[Member {
            name: "hi".into(),
            data: b"abc".to_vec(),
        }]);
        assert!(a.starts_with(b"070701"));
        assert_eq!(&a[110..113], b"hi\0");
        assert_eq!(&a[112 + 4..112 + 4 + 3], b"abc"); // name padded to 116
        assert_eq!(a.len() % 4, 0);
        assert!(a.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}

/// The mode words of a newc archive's members, up to the trailer.
#[cfg(test)]
pub fn modes_of(archive: &[u8]) -> Vec<u32> {
    let (mut at, mut out) = (0, Vec::new());
    let up4 = |n: usize| n.div_ceil(4) * 4;
    let field = |at: usize, i: usize| {
        let hex = std::str::from_utf8(&archive[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
        usize::from_str_radix(hex, 16).unwrap()
    };
    while &archive[at + 110..at + 120] != b"TRAILER!!!" {
        out.push(field(at, 1) as u32);
        let data = up4(at + 110 + field(at, 11));
        at = up4(data + field(at, 6));
    }
    out
}

/// The members of a newc archive written by [`cpio`] (name, data), up to the trailer.
#[cfg(test)]
pub fn members_of(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let field = |at: usize, i: usize| {
        let hex = std::str::from_utf8(&archive[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
        usize::from_str_radix(hex, 16).unwrap()
    };
    let up4 = |n: usize| n.div_ceil(4) * 4;
    let (mut at, mut out) = (0, Vec::new());
    loop {
        assert_eq!(&archive[at..at + 6], b"070701");
        let (size, namesize) = (field(at, 6), field(at, 11));
        let name = std::str::from_utf8(&archive[at + 110..at + 110 + namesize - 1]).unwrap();
        let data = up4(at + 110 + namesize);
        if name == "TRAILER!!!" {
            return out;
        }
        out.push((name.to_string(), archive[data..data + size].to_vec()));
        at = up4(data + size);
    }
}

#[cfg(test)]
mod init_tests {
    use super::*;

    #[test]
    fn tree_modes_and_symlink_targets() {
        let nodes = [
            Node::Dir {
                name: "tmp".into(),
                perm: 0o1777,
            },
            Node::Symlink {
                name: "bin/sh".into(),
                target: "busybox".into(),
            },
            Node::File {
                name: "etc/passwd".into(),
                perm: 0o644,
                data: b"root\n".to_vec(),
            },
        ];
        let a = cpio_tree(&nodes);
        let m = members_of(&a);
        let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["tmp", "bin/sh", "etc/passwd"]);
        assert_eq!(m[1].1, b"busybox");
        assert_eq!(modes_of(&a), [0o041_777, 0o120_777, 0o100_644]);
    }

    #[test]
    fn init_request_members() {
        let path = std::env::temp_dir().join(format!("xtask-initrd-{}.cpio", std::process::id()));
        let prog = Member {
            name: "hello".into(),
            data: b"\x7fELF...".to_vec(),
        };
        let argv = ["/hello".to_string(), "two words".into()];
        let envp = ["HOME=/".to_string(), "TERM=dumb".into()];
        write(&path, vec![prog], &argv, &envp).unwrap();
        let m = members_of(&std::fs::read(&path).unwrap());
        let _ = std::fs::remove_file(&path);
        let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["hello", ".init.argv", ".init.envp"]);
        assert_eq!(m[0].1, b"\x7fELF...");
        assert_eq!(m[1].1, b"/hello\0two words\0");
        assert_eq!(m[2].1, b"HOME=/\0TERM=dumb\0");
    }
}

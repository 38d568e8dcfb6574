//! The initrd: a cpio archive in the "newc" format (what `cpio -H newc` and the
//! Linux kernel use), read in place as a read-only file system.
//!
//! Each entry is a 110-byte ASCII header (`070701`, then 13 fields of 8 hex digits:
//! ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
//! rdevminor, namesize, check), the NUL-terminated name, padding to a multiple of 4,
//! the file data, padding to a multiple of 4. The entry named `TRAILER!!!` ends the
//! archive. A malformed archive just ends early: lookups never panic. Entries carry
//! their mode, owner and time, so a file system can be filled from the archive
//! (`crate::fs::cpio`).
#![deny(unsafe_code)]

use crate::sync::IrqMutex;

const HEADER: usize = 110;
const MAGIC: &[u8] = b"070701";
const TRAILER: &[u8] = b"TRAILER!!!";

/// A cpio newc archive in memory.
#[derive(Debug, Clone, Copy)]
pub struct Initrd<'a> {
    data: &'a [u8],
}

/// One file of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Its path as stored (without a leading `/` or `./`).
    pub name: &'a [u8],
    /// Its contents (a symlink's: the target).
    pub data: &'a [u8],
    /// Its inode number in the archive (entries that share one are hard links).
    pub ino: u32,
    /// Its `st_mode`: file type and permission bits.
    pub mode: u32,
    /// Its link count in the archive (newc stores a hard-linked file's data only
    /// with the last of its entries).
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, in seconds since the epoch.
    pub mtime: u32,
}

/// The archive the boot loader gave the kernel (set once by the arch at boot).
static BOOT_IMAGE: IrqMutex<Option<&'static [u8]>> = IrqMutex::new(None);

/// Records the boot initrd: bytes that stay valid and unchanged for the kernel's
/// whole life (the arch keeps their frames out of the frame allocator).
pub fn set_boot_image(bytes: &'static [u8]) {
    *BOOT_IMAGE.lock() = Some(bytes);
}

/// The boot initrd, if there is one.
pub fn boot_image() -> Option<Initrd<'static>> {
    BOOT_IMAGE.lock().map(Initrd::new)
}

fn hex_field(header: &[u8], index: usize) -> Option<usize> {
    let start = 6 + 8 * index;
    let digits = header.get(start..start + 8)?;
    let text = core::str::from_utf8(digits).ok()?;
    usize::from_str_radix(text, 16).ok()
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// `path` without leading `/` and `./`.
fn trim(path: &[u8]) -> &[u8] {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else {
            return p;
        }
    }
}

impl<'a> Initrd<'a> {
    /// The archive in `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Initrd { data }
    }

    /// The entry at byte `offset` and the offset of the next one.
    fn entry_at(&self, offset: usize) -> Option<(Entry<'a>, usize)> {
        let header = self.data.get(offset..offset.checked_add(HEADER)?)?;
        if &header[..6] != MAGIC {
            return None;
        }
        let (size, namesize) = (hex_field(header, 6)?, hex_field(header, 11)?);
        let name_start = offset + HEADER;
        let name = self
            .data
            .get(name_start..name_start.checked_add(namesize)?)?;
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        let data_start = align4(name_start + namesize);
        let data = self.data.get(data_start..data_start.checked_add(size)?)?;
        let field = |i| hex_field(header, i).map(|v| v as u32);
        let entry = Entry {
            name: trim(name),
            data,
            ino: field(0)?,
            mode: field(1)?,
            nlink: field(4)?,
            uid: field(2)?,
            gid: field(3)?,
            mtime: field(5)?,
        };
        Some((entry, align4(data_start + size)))
    }

    /// The entries, in archive order, up to the trailer.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        let mut offset = 0;
        core::iter::from_fn(move || {
            let (entry, next) = self.entry_at(offset)?;
            offset = next;
            (entry.name != TRAILER).then_some(entry)
        })
    }

    /// The contents of the file at `path` (a leading `/` is ignored).
    pub fn find(&self, path: &[u8]) -> Option<&'a [u8]> {
        let want = trim(path);
        self.entries().find(|e| e.name == want).map(|e| e.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn push_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let header =
            alloc::format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1, 0o100644, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    fn archive() -> Vec<u8> {
        let mut a = Vec::new();
        push_entry(&mut a, "hello", b"ELF...");
        push_entry(&mut a, "./dir/x", b"12345");
        push_entry(&mut a, "TRAILER!!!", b"");
        a
    }

    #[test]
    fn finds_files_by_path() {
        let a = archive();
        let rd = Initrd::new(&a);
        assert_eq!(rd.find(b"/hello"), Some(&b"ELF..."[..]));
        assert_eq!(rd.find(b"dir/x"), Some(&b"12345"[..]));
        assert_eq!(rd.find(b"/nope"), None);
        assert_eq!(rd.entries().count(), 2);
    }

    #[test]
    fn truncated_or_garbage_archives_end_early() {
        let a = archive();
        for cut in 0..a.len() {
            let rd = Initrd::new(&a[..cut]);
            let _ = rd.find(b"dir/x");
            assert!(rd.entries().count() <= 2);
        }
        let garbage = [0xffu8; 300];
        assert_eq!(Initrd::new(&garbage).entries().count(), 0);
    }
}

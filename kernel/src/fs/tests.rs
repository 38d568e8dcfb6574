//! Host tests of the VFS, tmpfs, devfs and the cpio fill: each errno path Linux
//! defines for these calls, and the frame accounting (every page back after the
//! last link and the last open reference are gone).

use super::devfs::{mount_dev, CharDevice};
use super::errno::*;
use super::tmpfs::{Tmpfs, TmpfsLimits, TMPFS_MAGIC};
use super::vfs::{CreateMode, FollowLast, Last, SpecialNode, Vfs};
use super::*;
use crate::memory::address_space::test_frames::TestFrames;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use FollowLast::{Follow, NoFollow};

fn clock() -> Nanos {
    1_000
}

pub(super) const LIMITS: TmpfsLimits = TmpfsLimits {
    pages: 1 << 20,
    inodes: 1 << 20,
};

pub(super) fn tmpfs(frames: &TestFrames, limits: TmpfsLimits) -> Arc<Tmpfs<TestFrames>> {
    Arc::new(Tmpfs::new(
        frames.clone(),
        limits,
        DeviceId::new(0, 20),
        clock,
        0o755,
    ))
}

/// A tree with a tmpfs root over 4 MiB of private frames.
fn setup() -> (TestFrames, Arc<Tmpfs<TestFrames>>, Vfs) {
    let frames = TestFrames::new(4);
    let fs = tmpfs(&frames, LIMITS);
    let vfs = Vfs::new(fs.clone());
    (frames, fs, vfs)
}

fn attrs() -> NodeAttrs {
    NodeAttrs::root(0o644)
}

fn mkdir(vfs: &Vfs, path: &str) -> Result<Node, Errno> {
    vfs.mkdir(vfs.root(), path.as_bytes(), NodeAttrs::root(0o755))
}

fn touch(vfs: &Vfs, path: &str) -> Result<Node, Errno> {
    vfs.create(
        vfs.root(),
        path.as_bytes(),
        CreateMode::IfMissing,
        Follow,
        attrs(),
    )
}

fn write_file(vfs: &Vfs, path: &str, data: &[u8]) {
    let node = touch(vfs, path).unwrap();
    let f = vfs.open(node).unwrap();
    assert_eq!(f.write(0, data), Ok(data.len()));
}

fn read_all(vfs: &Vfs, path: &str) -> Result<Vec<u8>, Errno> {
    let node = vfs.resolve(vfs.root(), path.as_bytes(), Follow)?;
    let f = vfs.open(node)?;
    let mut buf = vec![0; f.stat()?.size as usize];
    let n = f.read(0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn lookup(vfs: &Vfs, path: &str) -> Result<Node, Errno> {
    vfs.resolve(vfs.root(), path.as_bytes(), Follow)
}

fn kind(vfs: &Vfs, path: &str) -> Result<FileKind, Errno> {
    Ok(vfs
        .stat(vfs.resolve(vfs.root(), path.as_bytes(), NoFollow)?)?
        .kind)
}

fn names(vfs: &Vfs, path: &str) -> Vec<Vec<u8>> {
    let dir = lookup(vfs, path).unwrap();
    let mut out = Vec::new();
    let mut cookie = 0;
    while let Some(e) = vfs.read_dir(dir, cookie).unwrap() {
        out.push(e.name);
        cookie = e.next;
    }
    out
}

#[test]
fn mkdir_create_and_stat() {
    let (_frames, _fs, vfs) = setup();
    let d = mkdir(&vfs, "/a").unwrap();
    mkdir(&vfs, "/a/b").unwrap();
    let f = touch(&vfs, "a/f").unwrap();
    let ds = vfs.stat(d).unwrap();
    assert_eq!(
        (ds.kind, ds.nlink, ds.perm),
        (FileKind::Directory, 3, 0o755)
    );
    assert_eq!(ds.mode(), 0o040_755);
    let fs = vfs.stat(f).unwrap();
    assert_eq!(
        (fs.kind, fs.nlink, fs.size, fs.mode()),
        (FileKind::Regular, 1, 0, 0o100_644)
    );
    assert_eq!(fs.dev, DeviceId::new(0, 20));
    assert_eq!(vfs.stat(vfs.root()).unwrap().nlink, 3);
    assert_eq!(lookup(&vfs, "/a/./b/../f"), Ok(f));
    assert_eq!(lookup(&vfs, "//a///f"), Ok(f));
    assert_eq!(lookup(&vfs, "/../.."), Ok(vfs.root()));
    assert_eq!(vfs.resolve(d, b"f", Follow), Ok(f));
    assert_eq!(vfs.resolve(d, b"..", Follow), Ok(vfs.root()));
}

#[test]
fn bad_paths() {
    let (_frames, _fs, vfs) = setup();
    touch(&vfs, "/file").unwrap();
    assert_eq!(lookup(&vfs, ""), Err(ENOENT));
    assert_eq!(lookup(&vfs, "/nope"), Err(ENOENT));
    assert_eq!(lookup(&vfs, "/nope/x"), Err(ENOENT));
    assert_eq!(lookup(&vfs, "/file/x"), Err(ENOTDIR));
    assert_eq!(lookup(&vfs, "/file/"), Err(ENOTDIR));
    assert_eq!(lookup(&vfs, "/file/."), Err(ENOTDIR));
    assert_eq!(mkdir(&vfs, "/file/x"), Err(ENOTDIR));
    assert_eq!(mkdir(&vfs, "/nope/x"), Err(ENOENT));
    let long = "x".repeat(256);
    assert_eq!(lookup(&vfs, &long), Err(ENAMETOOLONG));
    assert_eq!(mkdir(&vfs, &long), Err(ENAMETOOLONG));
    assert_eq!(touch(&vfs, &alloc::format!("/{long}")), Err(ENAMETOOLONG));
    let ok = "y".repeat(255);
    mkdir(&vfs, &ok).unwrap();
    // A path of 4095 bytes is walked, one of 4096 refused.
    let deep = "./".repeat(2047) + "f";
    assert_eq!(deep.len(), 4095);
    assert_eq!(lookup(&vfs, &deep), Err(ENOENT));
    let deeper = deep.clone() + "f";
    assert_eq!(lookup(&vfs, &deeper), Err(ENAMETOOLONG));
    assert_eq!(vfs.unlink(vfs.root(), deeper.as_bytes()), Err(ENAMETOOLONG));
}

#[test]
fn symlinks_follow_and_loop() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    mkdir(&vfs, "/d").unwrap();
    write_file(&vfs, "/d/f", b"data");
    vfs.symlink(b"d/f", root, b"/rel").unwrap();
    vfs.symlink(b"/d", root, b"/d/abs").unwrap();
    vfs.symlink(b"../d/f", root, b"/d/up").unwrap();
    vfs.symlink(b"missing", root, b"/dangling").unwrap();
    assert_eq!(read_all(&vfs, "/rel").unwrap(), b"data");
    assert_eq!(read_all(&vfs, "/d/abs/abs/abs/f").unwrap(), b"data");
    assert_eq!(read_all(&vfs, "/d/up").unwrap(), b"data");
    assert_eq!(kind(&vfs, "/rel"), Ok(FileKind::Symlink));
    assert_eq!(
        kind(&vfs, "/d/abs/"),
        Ok(FileKind::Directory),
        "a trailing slash follows"
    );
    assert_eq!(lookup(&vfs, "/rel/"), Err(ENOTDIR));
    assert_eq!(lookup(&vfs, "/dangling"), Err(ENOENT));
    assert_eq!(kind(&vfs, "/dangling"), Ok(FileKind::Symlink));
    assert_eq!(vfs.readlink(root, b"/d/up"), Ok(b"../d/f".to_vec()));
    assert_eq!(vfs.readlink(root, b"/d"), Err(EINVAL));
    assert_eq!(
        vfs.stat(lookup(&vfs, "/d/abs").unwrap()).unwrap().kind,
        FileKind::Directory
    );
    let link = vfs.resolve(root, b"/rel", NoFollow).unwrap();
    assert_eq!(vfs.stat(link).unwrap().size, 3);
    assert_eq!(vfs.symlink(b"", root, b"/empty"), Err(ENOENT));
    let huge = vec![b'a'; PATH_MAX];
    assert_eq!(vfs.symlink(&huge, root, b"/huge"), Err(ENAMETOOLONG));
    // Loops.
    vfs.symlink(b"/loop2", root, b"/loop1").unwrap();
    vfs.symlink(b"/loop1", root, b"/loop2").unwrap();
    assert_eq!(lookup(&vfs, "/loop1"), Err(ELOOP));
    assert_eq!(kind(&vfs, "/loop1"), Ok(FileKind::Symlink));
    assert_eq!(lookup(&vfs, "/loop1/x"), Err(ELOOP));
    // A chain of 40 links resolves; 41 is one too many.
    vfs.symlink(b"/d/f", root, b"/c0").unwrap();
    for i in 1..=40 {
        let (target, name) = (alloc::format!("/c{}", i - 1), alloc::format!("/c{i}"));
        vfs.symlink(target.as_bytes(), root, name.as_bytes())
            .unwrap();
    }
    assert_eq!(read_all(&vfs, "/c39").unwrap(), b"data");
    assert_eq!(lookup(&vfs, "/c40"), Err(ELOOP));
}

#[test]
fn trailing_slash_rules() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    mkdir(&vfs, "/d/").unwrap();
    touch(&vfs, "/f").unwrap();
    assert_eq!(touch(&vfs, "/new/"), Err(EISDIR));
    assert_eq!(touch(&vfs, "/d"), Err(EISDIR));
    assert_eq!(touch(&vfs, "/"), Err(EISDIR));
    assert_eq!(vfs.unlink(root, b"/f/"), Err(ENOTDIR));
    assert_eq!(vfs.unlink(root, b"/d/"), Err(EISDIR));
    assert_eq!(vfs.unlink(root, b"/none/"), Err(ENOENT));
    assert_eq!(vfs.rmdir(root, b"/f/"), Err(ENOTDIR));
    assert_eq!(vfs.symlink(b"x", root, b"/s/"), Err(ENOENT));
    assert_eq!(vfs.symlink(b"x", root, b"/f/"), Err(EEXIST));
    assert_eq!(
        vfs.mknod(root, b"/p/", SpecialNode::Fifo, attrs()),
        Err(ENOENT)
    );
    assert_eq!(
        vfs.rename(root, b"/f/", root, b"/g", RenameMode::Replace),
        Err(ENOTDIR)
    );
    assert_eq!(
        vfs.rename(root, b"/f", root, b"/g/", RenameMode::Replace),
        Err(ENOTDIR)
    );
    vfs.rename(root, b"/d/", root, b"/e/", RenameMode::Replace)
        .unwrap();
    vfs.rmdir(root, b"/e/").unwrap();
    assert_eq!(kind(&vfs, "/f"), Ok(FileKind::Regular));
}

#[test]
fn dot_names_and_root() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    mkdir(&vfs, "/d").unwrap();
    assert_eq!(mkdir(&vfs, "/d/."), Err(EEXIST));
    assert_eq!(mkdir(&vfs, "/d/.."), Err(EEXIST));
    assert_eq!(mkdir(&vfs, "/"), Err(EEXIST));
    assert_eq!(mkdir(&vfs, "/d"), Err(EEXIST));
    assert_eq!(vfs.rmdir(root, b"/d/."), Err(EINVAL));
    assert_eq!(vfs.rmdir(root, b"/d/.."), Err(ENOTEMPTY));
    assert_eq!(vfs.rmdir(root, b"/"), Err(EBUSY));
    assert_eq!(vfs.unlink(root, b"/d/."), Err(EISDIR));
    assert_eq!(vfs.unlink(root, b"/"), Err(EISDIR));
    let r = RenameMode::Replace;
    assert_eq!(vfs.rename(root, b"/d/.", root, b"/x", r), Err(EBUSY));
    assert_eq!(vfs.rename(root, b"/d", root, b"/.", r), Err(EBUSY));
    assert_eq!(vfs.rename(root, b"/", root, b"/x", r), Err(EBUSY));
    assert_eq!(
        vfs.rename(root, b"/d", root, b"/..", RenameMode::NoReplace),
        Err(EEXIST)
    );
    let p = vfs.resolve_parent(root, b"/d/..").unwrap();
    assert_eq!(p.last, Last::DotDot);
    assert_eq!(vfs.resolve_parent(root, b"///").unwrap().last, Last::Root);
}

#[test]
fn rmdir_and_unlink_rules() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    mkdir(&vfs, "/d").unwrap();
    touch(&vfs, "/d/f").unwrap();
    assert_eq!(vfs.rmdir(root, b"/d"), Err(ENOTEMPTY));
    assert_eq!(vfs.unlink(root, b"/d"), Err(EISDIR));
    assert_eq!(vfs.rmdir(root, b"/d/f"), Err(ENOTDIR));
    assert_eq!(vfs.rmdir(root, b"/d/none"), Err(ENOENT));
    assert_eq!(vfs.unlink(root, b"/d/none"), Err(ENOENT));
    vfs.unlink(root, b"/d/f").unwrap();
    assert_eq!(vfs.unlink(root, b"/d/f"), Err(ENOENT));
    vfs.rmdir(root, b"/d").unwrap();
    assert_eq!(vfs.stat(root).unwrap().nlink, 2);
    assert_eq!(names(&vfs, "/"), [b".".to_vec(), b"..".to_vec()]);
}

#[test]
fn removed_cwd_takes_no_new_entries() {
    let (_frames, _fs, vfs) = setup();
    let d = mkdir(&vfs, "/d").unwrap();
    let held = vfs.open(d).unwrap();
    vfs.rmdir(vfs.root(), b"/d").unwrap();
    assert_eq!(vfs.mkdir(d, b"x", attrs()), Err(ENOENT));
    assert_eq!(vfs.stat(d).unwrap().nlink, 0);
    assert_eq!(held.read_dir(0), Err(ENOENT));
    drop(held);
    assert_eq!(vfs.stat(d), Err(ENOENT));
    assert_eq!(
        vfs.resolve(d, b".", Follow).map(|n| vfs.stat(n)),
        Ok(Err(ENOENT))
    );
}

#[test]
fn rename_rules() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    let r = RenameMode::Replace;
    write_file(&vfs, "/a", b"A");
    write_file(&vfs, "/b", b"B");
    mkdir(&vfs, "/d").unwrap();
    mkdir(&vfs, "/e").unwrap();
    mkdir(&vfs, "/full").unwrap();
    touch(&vfs, "/full/x").unwrap();
    mkdir(&vfs, "/d/sub").unwrap();
    // Files replace files.
    vfs.rename(root, b"/a", root, b"/b", r).unwrap();
    assert_eq!(read_all(&vfs, "/b").unwrap(), b"A");
    assert_eq!(lookup(&vfs, "/a"), Err(ENOENT));
    assert_eq!(vfs.rename(root, b"/a", root, b"/c", r), Err(ENOENT));
    // Kind mismatches.
    assert_eq!(vfs.rename(root, b"/b", root, b"/e", r), Err(EISDIR));
    assert_eq!(vfs.rename(root, b"/e", root, b"/b", r), Err(ENOTDIR));
    assert_eq!(vfs.rename(root, b"/e", root, b"/full", r), Err(ENOTEMPTY));
    // Into its own subtree.
    assert_eq!(vfs.rename(root, b"/d", root, b"/d/sub/x", r), Err(EINVAL));
    assert_eq!(vfs.rename(root, b"/d", root, b"/d/x", r), Err(EINVAL));
    // Onto an ancestor: not empty.
    assert_eq!(vfs.rename(root, b"/d/sub", root, b"/d", r), Err(ENOTEMPTY));
    // A directory replaces an empty directory and moves its link count.
    vfs.rename(root, b"/d", root, b"/e", r).unwrap();
    assert_eq!(kind(&vfs, "/e/sub"), Ok(FileKind::Directory));
    assert_eq!(lookup(&vfs, "/d"), Err(ENOENT));
    assert_eq!(vfs.stat(root).unwrap().nlink, 4); // ., .., e, full
    vfs.rename(root, b"/e/sub", root, b"/sub", r).unwrap();
    assert_eq!(vfs.stat(lookup(&vfs, "/e").unwrap()).unwrap().nlink, 2);
    assert_eq!(
        vfs.resolve(lookup(&vfs, "/sub").unwrap(), b"..", Follow),
        Ok(root)
    );
    // Two names of one inode: nothing happens.
    vfs.link(root, b"/b", root, b"/b2", NoFollow).unwrap();
    vfs.rename(root, b"/b", root, b"/b2", r).unwrap();
    assert_eq!(kind(&vfs, "/b"), Ok(FileKind::Regular));
    // Flags.
    assert_eq!(
        vfs.rename(root, b"/b", root, b"/full", RenameMode::NoReplace),
        Err(EEXIST)
    );
    assert_eq!(
        vfs.rename(root, b"/b", root, b"/none", RenameMode::Exchange),
        Err(ENOENT)
    );
    vfs.rename(root, b"/b", root, b"/full", RenameMode::Exchange)
        .unwrap();
    assert_eq!(kind(&vfs, "/b/x"), Ok(FileKind::Regular));
    assert_eq!(read_all(&vfs, "/full").unwrap(), b"A");
    vfs.rename(root, b"/full", root, b"/new", RenameMode::NoReplace)
        .unwrap();
    assert_eq!(read_all(&vfs, "/new").unwrap(), b"A");
    // Exchanging a directory into its own subtree.
    assert_eq!(
        vfs.rename(root, b"/b", root, b"/b/x", RenameMode::Exchange),
        Err(EINVAL)
    );
}

#[test]
fn cross_mount_operations_change_nothing() {
    let (frames, _fs, vfs) = setup();
    let root = vfs.root();
    let r = RenameMode::Replace;
    mkdir(&vfs, "/mnt").unwrap();
    write_file(&vfs, "/file", b"x");
    let other = tmpfs(&frames, LIMITS);
    let mnt = vfs.mount(lookup(&vfs, "/mnt").unwrap(), other).unwrap();
    mkdir(&vfs, "/mnt/inner").unwrap();
    assert_eq!(lookup(&vfs, "/mnt").unwrap().mount, mnt);
    assert_eq!(
        vfs.rename(root, b"/file", root, b"/mnt/file", r),
        Err(EXDEV)
    );
    assert_eq!(
        vfs.rename(root, b"/missing", root, b"/mnt/f", r),
        Err(EXDEV)
    );
    assert_eq!(
        vfs.rename(root, b"/mnt/inner", root, b"/inner", r),
        Err(EXDEV)
    );
    assert_eq!(
        vfs.link(root, b"/file", root, b"/mnt/file", NoFollow),
        Err(EXDEV)
    );
    assert_eq!(vfs.rmdir(root, b"/mnt"), Err(EBUSY));
    assert_eq!(vfs.rename(root, b"/mnt", root, b"/mnt2", r), Err(EBUSY));
    mkdir(&vfs, "/empty").unwrap();
    assert_eq!(vfs.rename(root, b"/empty", root, b"/mnt", r), Err(EBUSY));
    assert_eq!(read_all(&vfs, "/file").unwrap(), b"x");
    assert_eq!(
        names(&vfs, "/mnt"),
        [b".".to_vec(), b"..".to_vec(), b"inner".to_vec()]
    );
    // `..` from the mount's root and below it leads back to the parent mount.
    assert_eq!(lookup(&vfs, "/mnt/.."), Ok(root));
    assert_eq!(lookup(&vfs, "/mnt/inner/../../file"), lookup(&vfs, "/file"));
    let inner = lookup(&vfs, "/mnt/inner").unwrap();
    assert_eq!(vfs.resolve(inner, b"../../mnt/inner", Follow), Ok(inner));
    assert_eq!(vfs.statfs(inner).unwrap().magic, TMPFS_MAGIC);
    // Unmounting uncovers the directory.
    vfs.unmount(mnt).unwrap();
    assert_eq!(names(&vfs, "/mnt").len(), 2);
    vfs.rmdir(root, b"/mnt").unwrap();
}

#[test]
fn hard_links() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    mkdir(&vfs, "/d").unwrap();
    write_file(&vfs, "/f", b"abc");
    vfs.link(root, b"/f", root, b"/d/g", NoFollow).unwrap();
    let f = lookup(&vfs, "/f").unwrap();
    assert_eq!(vfs.stat(f).unwrap().nlink, 2);
    assert_eq!(lookup(&vfs, "/d/g"), Ok(f));
    assert_eq!(vfs.link(root, b"/d", root, b"/d2", NoFollow), Err(EPERM));
    assert_eq!(vfs.link(root, b"/f", root, b"/d/g", NoFollow), Err(EEXIST));
    assert_eq!(vfs.link(root, b"/none", root, b"/x", NoFollow), Err(ENOENT));
    assert_eq!(vfs.link(root, b"/f", root, b"/d/.", NoFollow), Err(EEXIST));
    vfs.symlink(b"/f", root, b"/s").unwrap();
    vfs.link(root, b"/s", root, b"/s2", NoFollow).unwrap();
    assert_eq!(kind(&vfs, "/s2"), Ok(FileKind::Symlink));
    vfs.link(root, b"/s", root, b"/f3", Follow).unwrap();
    assert_eq!(vfs.stat(f).unwrap().nlink, 3);
    vfs.unlink(root, b"/f").unwrap();
    assert_eq!(read_all(&vfs, "/d/g").unwrap(), b"abc");
}

#[test]
fn create_modes() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    let f = touch(&vfs, "/f").unwrap();
    assert_eq!(touch(&vfs, "/f"), Ok(f));
    let ex = |p: &[u8], follow| vfs.create(root, p, CreateMode::Exclusive, follow, attrs());
    assert_eq!(ex(b"/f", Follow), Err(EEXIST));
    vfs.symlink(b"/target", root, b"/dangling").unwrap();
    assert_eq!(ex(b"/dangling", Follow), Err(EEXIST));
    assert_eq!(
        vfs.create(root, b"/dangling", CreateMode::IfMissing, NoFollow, attrs()),
        Err(ELOOP)
    );
    let t = touch(&vfs, "/dangling").unwrap();
    assert_eq!(lookup(&vfs, "/target"), Ok(t));
    vfs.symlink(b"/self", root, b"/self").unwrap();
    assert_eq!(touch(&vfs, "/self"), Err(ELOOP));
}

/// read_append gives what read gives (holes as zeros, short at the end, nothing
/// past it), appended after what `out` held.
#[test]
fn read_append_matches_read() {
    let (_frames, _fs, vfs) = setup();
    let f = vfs.open(touch(&vfs, "/f").unwrap()).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8 + 1).collect();
    assert_eq!(f.write(6000, &data), Ok(data.len()));
    for (offset, len) in [
        (0, 9000),
        (5000, 2000),
        (8000, 100),
        (9000, 10),
        (1 << 40, 5),
    ] {
        let mut want = vec![0xaa; len];
        let n = f.read(offset, &mut want).unwrap();
        want.truncate(n);
        let mut out = vec![7u8, 8];
        assert_eq!(f.read_append(offset, len, &mut out), Ok(n), "at {offset}");
        assert_eq!(&out[..2], &[7, 8]);
        assert_eq!(&out[2..], &want[..], "at {offset}");
    }
    let d = vfs.open(mkdir(&vfs, "/d").unwrap()).unwrap();
    let mut out = vec![1u8];
    assert_eq!(d.read_append(0, 10, &mut out), Err(EISDIR));
    assert_eq!(out, [1]);
}

#[test]
fn read_write_holes_and_truncate() {
    let (frames, fs, vfs) = setup();
    let free = frames.free();
    mkdir(&vfs, "/d").unwrap();
    let node = touch(&vfs, "/f").unwrap();
    let f = vfs.open(node).unwrap();
    assert_eq!(f.write(10_000, b"end"), Ok(3));
    assert_eq!(fs.pages_used(), 1, "the hole takes no page");
    let st = f.stat().unwrap();
    assert_eq!((st.size, st.blocks), (10_003, 8));
    let mut buf = vec![0xff; 10_010];
    assert_eq!(f.read(0, &mut buf), Ok(10_003));
    assert!(buf[..10_000].iter().all(|&b| b == 0));
    assert_eq!(&buf[10_000..10_003], b"end");
    assert_eq!(f.read(10_003, &mut buf), Ok(0));
    assert_eq!(f.read(1 << 40, &mut buf), Ok(0));
    // A write across a page boundary.
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    assert_eq!(f.write(4000, &data), Ok(5000));
    let mut back = vec![0; 5000];
    assert_eq!(f.read(4000, &mut back), Ok(5000));
    assert_eq!(back, data);
    // Shrinking frees pages and zeroes the rest of the last one.
    f.truncate(4001).unwrap();
    assert_eq!(fs.pages_used(), 1);
    f.truncate(8192).unwrap();
    let mut tail = vec![0xff; 8192 - 4000];
    assert_eq!(f.read(4000, &mut tail), Ok(tail.len()));
    assert_eq!(tail[0], data[0]);
    assert!(tail[1..].iter().all(|&b| b == 0));
    // Growing is sparse.
    vfs.truncate(vfs.root(), b"/f", 1 << 40).unwrap();
    assert_eq!(f.stat().unwrap().size, 1 << 40);
    assert_eq!(fs.pages_used(), 1);
    assert_eq!(f.truncate(MAX_FILE_SIZE + 1), Err(EFBIG));
    assert_eq!(f.write(MAX_FILE_SIZE, b"x"), Err(EFBIG));
    f.truncate(0).unwrap();
    assert_eq!(fs.pages_used(), 0);
    // Directories are not written.
    let d = vfs.open(lookup(&vfs, "/d").unwrap()).unwrap();
    assert_eq!(d.write(0, b"x"), Err(EISDIR));
    assert_eq!(d.read(0, &mut buf), Err(EISDIR));
    assert_eq!(d.truncate(0), Err(EINVAL));
    assert_eq!(vfs.truncate(vfs.root(), b"/d", 0), Err(EISDIR));
    assert_eq!(f.read_dir(0), Err(ENOTDIR));
    drop((f, d));
    vfs.unlink(vfs.root(), b"/f").unwrap();
    assert_eq!(frames.free(), free);
}

#[test]
fn getdents_cookies_are_stable() {
    let (_frames, _fs, vfs) = setup();
    let root = vfs.root();
    mkdir(&vfs, "/d").unwrap();
    for i in 0..10 {
        touch(&vfs, &alloc::format!("/d/f{i}")).unwrap();
    }
    let d = lookup(&vfs, "/d").unwrap();
    let first = vfs.read_dir(d, 0).unwrap().unwrap();
    assert_eq!(
        (first.name.as_slice(), first.ino, first.kind),
        (&b"."[..], d.ino, FileKind::Directory)
    );
    let dotdot = vfs.read_dir(d, first.next).unwrap().unwrap();
    assert_eq!((dotdot.name.as_slice(), dotdot.ino), (&b".."[..], root.ino));
    // Read five, then remove one already read and one not yet read, add one.
    let mut cookie = dotdot.next;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let e = vfs.read_dir(d, cookie).unwrap().unwrap();
        seen.push(e.name);
        cookie = e.next;
    }
    vfs.unlink(root, b"/d/f1").unwrap();
    vfs.unlink(root, b"/d/f7").unwrap();
    touch(&vfs, "/d/new").unwrap();
    while let Some(e) = vfs.read_dir(d, cookie).unwrap() {
        seen.push(e.name);
        cookie = e.next;
    }
    let want: Vec<Vec<u8>> = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f8", "f9", "new"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    assert_eq!(seen, want);
    assert_eq!(vfs.read_dir(d, cookie), Ok(None));
    assert_eq!(vfs.read_dir(d, u64::MAX), Ok(None));
}

#[test]
fn attributes_and_statfs() {
    let frames = TestFrames::new(4);
    let limits = TmpfsLimits {
        pages: 100,
        inodes: 50,
    };
    let fs = tmpfs(&frames, limits);
    let vfs = Vfs::new(fs);
    let f = touch(&vfs, "/f").unwrap();
    let change = SetAttr {
        perm: Some(0o4711),
        uid: Some(5),
        gid: Some(6),
        atime: Some(TimeChange::At(7)),
        mtime: Some(TimeChange::Now),
    };
    vfs.set_attr(f, &change).unwrap();
    let st = vfs.stat(f).unwrap();
    assert_eq!(
        (st.perm, st.uid, st.gid, st.atime, st.mtime, st.ctime),
        (0o4711, 5, 6, 7, 1_000, 1_000)
    );
    vfs.open(f).unwrap().write(0, &[1; 5000]).unwrap();
    let s = vfs.statfs(f).unwrap();
    assert_eq!(
        (s.magic, s.block_size, s.blocks, s.blocks_free),
        (TMPFS_MAGIC, 4096, 100, 98)
    );
    assert_eq!((s.files, s.files_free, s.name_max), (50, 48, 255));
    assert_eq!(vfs.set_attr(Node { ino: 999, ..f }, &change), Err(ENOENT));
}

#[test]
fn unlinked_open_file_lives_until_closed() {
    let (frames, fs, vfs) = setup();
    let free = frames.free();
    let node = touch(&vfs, "/f").unwrap();
    let f = vfs.open(node).unwrap();
    let g = vfs.open(node).unwrap();
    f.write(0, &[7; 3 * 4096]).unwrap();
    vfs.unlink(vfs.root(), b"/f").unwrap();
    assert_eq!(lookup(&vfs, "/f"), Err(ENOENT));
    assert_eq!(
        vfs.link(vfs.root(), b"/f", vfs.root(), b"/g", NoFollow),
        Err(ENOENT)
    );
    assert_eq!(f.stat().unwrap().nlink, 0);
    let mut buf = [0; 4];
    assert_eq!(g.read(8190, &mut buf), Ok(4));
    assert_eq!(buf, [7; 4]);
    drop(f);
    assert_eq!(fs.pages_used(), 3);
    drop(g);
    assert_eq!(fs.pages_used(), 0);
    assert_eq!(fs.inodes_used(), 1);
    assert_eq!(frames.free(), free);
}

#[test]
fn full_tmpfs_is_enospc_and_recovers() {
    let frames = TestFrames::new(4);
    let free = frames.free();
    let limits = TmpfsLimits {
        pages: 4,
        inodes: 3,
    };
    let fs = tmpfs(&frames, limits);
    let vfs = Vfs::new(fs.clone());
    let f = vfs.open(touch(&vfs, "/f").unwrap()).unwrap();
    // A write that crosses the limit is short; the next one fails.
    assert_eq!(f.write(0, &[1; 5 * 4096]), Ok(4 * 4096));
    assert_eq!(f.write(4 * 4096, b"x"), Err(ENOSPC));
    assert_eq!(f.stat().unwrap().size, 4 * 4096);
    // Rewriting allocated pages still works; so does a hole.
    assert_eq!(f.write(0, b"again"), Ok(5));
    assert_eq!(f.truncate(1 << 30), Ok(()));
    touch(&vfs, "/g").unwrap();
    assert_eq!(touch(&vfs, "/h"), Err(ENOSPC));
    assert_eq!(mkdir(&vfs, "/d"), Err(ENOSPC));
    f.truncate(4096).unwrap();
    assert_eq!(f.write(4096, &[2; 4096]), Ok(4096));
    drop(f);
    drop(vfs);
    drop(fs);
    assert_eq!(
        frames.free(),
        free,
        "dropping the tmpfs gives every page back"
    );
}

#[test]
fn frame_exhaustion_is_enomem() {
    let frames = TestFrames::new(1);
    let free = frames.free();
    let fs = tmpfs(&frames, LIMITS);
    let vfs = Vfs::new(fs.clone());
    let f = vfs.open(touch(&vfs, "/f").unwrap()).unwrap();
    let chunk = [3u8; 4096];
    let mut offset = 0;
    let err = loop {
        match f.write(offset, &chunk) {
            Ok(n) => offset += n as u64,
            Err(e) => break e,
        }
    };
    assert_eq!(err, ENOMEM);
    assert_eq!(frames.free(), 0);
    assert_eq!(fs.pages_used(), offset / 4096);
    drop(f);
    vfs.unlink(vfs.root(), b"/f").unwrap();
    assert_eq!(frames.free(), free);
}

#[test]
fn devfs_nodes_and_shm() {
    let (frames, _fs, vfs) = setup();
    let root = vfs.root();
    let dev = mkdir(&vfs, "/dev").unwrap();
    let shm = tmpfs(&frames, LIMITS);
    let devfs = tmpfs(&frames, LIMITS);
    fn entropy(buf: &mut [u8]) {
        buf.fill(0x5a);
    }
    let vfs = Vfs::new(vfs.fs(root.mount).unwrap()).with_entropy(entropy);
    let (dev_mount, shm_mount) = mount_dev(&vfs, dev, devfs, shm).unwrap();
    let numbers = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
    ];
    for (name, major, minor) in
        numbers
            .into_iter()
            .chain([("urandom", 1, 9), ("tty", 5, 0), ("console", 5, 1)])
    {
        let node = lookup(&vfs, &alloc::format!("/dev/{name}")).unwrap();
        let st = vfs.stat(node).unwrap();
        assert_eq!(
            (st.kind, st.rdev),
            (FileKind::CharDevice, DeviceId::new(major, minor)),
            "{name}"
        );
        assert_eq!(node.mount, dev_mount);
    }
    assert_eq!(DeviceId::new(1, 3).encode(), 0x103);
    let open = |p: &str| vfs.open(lookup(&vfs, p).unwrap()).unwrap();
    let mut buf = [9u8; 8];
    assert_eq!(open("/dev/null").read(0, &mut buf), Ok(0));
    assert_eq!(open("/dev/null").write(0, b"gone"), Ok(4));
    assert_eq!(open("/dev/zero").read(0, &mut buf), Ok(8));
    assert_eq!(buf, [0; 8]);
    assert_eq!(open("/dev/full").write(0, b"x"), Err(ENOSPC));
    assert_eq!(open("/dev/urandom").read(0, &mut buf), Ok(8));
    assert_eq!(buf, [0x5a; 8]);
    assert_eq!(open("/dev/console").write(0, b"x"), Err(ENXIO));
    assert_eq!(
        CharDevice::from_id(DeviceId::new(1, 8)),
        Some(CharDevice::Random)
    );
    assert_eq!(CharDevice::Tty.id(), DeviceId::new(5, 0));
    // /dev/shm is its own tmpfs: files there do not move to /dev.
    assert_eq!(lookup(&vfs, "/dev/shm").unwrap().mount, shm_mount);
    write_file(&vfs, "/dev/shm/seg", b"shared");
    assert_eq!(
        vfs.rename(
            root,
            b"/dev/shm/seg",
            root,
            b"/dev/seg",
            RenameMode::Replace
        ),
        Err(EXDEV)
    );
    assert_eq!(lookup(&vfs, "/dev/shm/..").unwrap().mount, dev_mount);
    assert_eq!(lookup(&vfs, "/dev/shm/../.."), Ok(root));
    // FIFOs are nodes only here.
    let p = vfs
        .mknod(root, b"/pipe", SpecialNode::Fifo, attrs())
        .unwrap();
    assert_eq!(vfs.stat(p).unwrap().mode(), 0o010_644);
    assert_eq!(vfs.open(p).unwrap().read(0, &mut buf), Err(ENXIO));
}

/// A newc archive of `(name, mode, data)` entries; names starting with `=` are
/// hard links (nlink 2) of archive inode 99.
fn archive(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer: (&str, u32, &[u8]) = ("TRAILER!!!", 0, b"");
    for (ino, (name, mode, data)) in entries.iter().chain([&trailer]).enumerate() {
        let (name, ino, nlink) = match name.strip_prefix('=') {
            Some(n) => (n, 99, 2),
            None => (*name, ino, 1),
        };
        let header =
            alloc::format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            ino, mode, 3, 4, nlink, 1_700_000_000u32, data.len(), 0, 0, 0, 0, name.len() + 1, 0
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
    out
}

#[test]
fn cpio_fill() {
    let (_frames, _fs, vfs) = setup();
    let bytes = archive(&[
        (".", 0o040_755, b""),
        ("bin", 0o040_700, b""),
        ("bin/busybox", 0o100_755, b"\x7fELF"),
        ("bin/sh", 0o120_777, b"busybox"),
        ("usr/share/deep/file", 0o100_600, b"deep"),
        ("dev/console", 0o020_600, b""),
        ("run/fifo", 0o010_644, b""),
        ("bin/busybox", 0o100_755, b"second"),
        ("=bin/ls", 0o100_755, b""),
        ("=bin/cat", 0o100_755, b"linked"),
    ]);
    let report = cpio::fill(&vfs, vfs.root(), &crate::initrd::Initrd::new(&bytes)).unwrap();
    let want = cpio::FillReport {
        files: 5,
        dirs: 1,
        symlinks: 1,
        fifos: 1,
        skipped: 1,
    };
    assert_eq!(report, want);
    assert_eq!(read_all(&vfs, "/bin/sh").unwrap(), b"second");
    assert_eq!(read_all(&vfs, "/usr/share/deep/file").unwrap(), b"deep");
    let bin = vfs.stat(lookup(&vfs, "/bin").unwrap()).unwrap();
    assert_eq!((bin.mode(), bin.uid, bin.gid), (0o040_700, 3, 4));
    let bb = vfs.stat(lookup(&vfs, "/bin/busybox").unwrap()).unwrap();
    assert_eq!(
        (bb.mode(), bb.mtime),
        (0o100_755, 1_700_000_000 * 1_000_000_000)
    );
    assert_eq!(kind(&vfs, "/bin/sh"), Ok(FileKind::Symlink));
    assert_eq!(read_all(&vfs, "/bin/ls").unwrap(), b"linked");
    assert_eq!(lookup(&vfs, "/bin/ls"), lookup(&vfs, "/bin/cat"));
    assert_eq!(vfs.stat(lookup(&vfs, "/bin/ls").unwrap()).unwrap().nlink, 2);
    assert_eq!(kind(&vfs, "/usr/share"), Ok(FileKind::Directory));
    assert_eq!(kind(&vfs, "/run/fifo"), Ok(FileKind::Fifo));
    assert_eq!(kind(&vfs, "/dev"), Ok(FileKind::Directory));
    assert_eq!(lookup(&vfs, "/dev/console"), Err(ENOENT));
    // The tree is writable afterwards.
    vfs.unlink(vfs.root(), b"/bin/busybox").unwrap();
    mkdir(&vfs, "/bin/new").unwrap();
}

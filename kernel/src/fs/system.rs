//! The system's file tree, as the kernel builds it at boot: a tmpfs root filled
//! from the initramfs, `/dev` (devfs, with `/dev/shm`), `/proc` (procfs), `/tmp`,
//! and an empty `/sys`, each made if the archive lacks it.
//!
//! [`build`] is the whole recipe, for any frame source, so host tests build the
//! same tree the kernel boots with. The root holds at most half the frames the
//! source has at boot (Linux's tmpfs default), so filling it ends in ENOSPC for
//! the writer, never in a machine without memory.
#![deny(unsafe_code)]

use super::cpio::{self, FillReport};
use super::devfs::{self, Entropy};
use super::errno::EEXIST;
use super::tmpfs::{Tmpfs, TmpfsLimits};
use super::vfs::{FollowLast, Vfs};
use super::{Clock, DeviceId, Errno, FileSystem, NodeAttrs};
use crate::initrd::Initrd;
use crate::memory::frame_allocator::FrameSource;
use alloc::sync::Arc;

/// Device numbers of the tree's file systems (anonymous devices 0:N, as Linux
/// numbers its tmpfs mounts).
const ROOT_DEV: DeviceId = DeviceId::new(0, 20);
const DEV_DEV: DeviceId = DeviceId::new(0, 5);
const SHM_DEV: DeviceId = DeviceId::new(0, 21);
/// Inodes one tmpfs may hold.
const INODES: u64 = 1 << 20;

/// What [`build`] made.
pub struct SystemTree {
    /// The tree.
    pub tree: Arc<Vfs>,
    /// What the initramfs put in the root.
    pub filled: FillReport,
}

/// Builds the system tree over `frames` (of which `pages` may hold file data),
/// stamping times with `clock`, filled from `initramfs` if there is one, with
/// `proc` (procfs) mounted on `/proc`.
pub fn build<F>(
    frames: F,
    pages: u64,
    clock: Clock,
    entropy: Option<Entropy>,
    initramfs: Option<&Initrd<'_>>,
    proc: Arc<dyn FileSystem>,
) -> Result<SystemTree, Errno>
where
    F: FrameSource + Clone + Send + Sync + 'static,
{
    let limits = TmpfsLimits {
        pages,
        inodes: INODES,
    };
    let tmpfs = |dev, perm| -> Arc<dyn FileSystem> {
        Arc::new(Tmpfs::new(frames.clone(), limits, dev, clock, perm))
    };
    let mut vfs = Vfs::new(tmpfs(ROOT_DEV, 0o755));
    if let Some(entropy) = entropy {
        vfs = vfs.with_entropy(entropy);
    }
    let root = vfs.root();
    let filled = match initramfs {
        Some(archive) => cpio::fill(&vfs, root, archive)?,
        None => FillReport::default(),
    };
    for (dir, perm) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
    ] {
        match vfs.mkdir(root, dir.as_bytes(), NodeAttrs::root(perm)) {
            Ok(_) | Err(EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    let dev = vfs.resolve(root, b"dev", FollowLast::Follow)?;
    devfs::mount_dev(&vfs, dev, tmpfs(DEV_DEV, 0o755), tmpfs(SHM_DEV, 0o1777))?;
    let proc_dir = vfs.resolve(root, b"proc", FollowLast::Follow)?;
    vfs.mount(proc_dir, proc)?;
    Ok(SystemTree {
        tree: Arc::new(vfs),
        filled,
    })
}

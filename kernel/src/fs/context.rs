//! A process's place in the file tree (Linux's `fs_struct`): the tree it sees, its
//! working directory and its umask.
//!
//! ## What it owns
//! * [`FsContext`]: held by each process (`Process::fs`), shared by the processes
//!   a `CLONE_FS` clone makes and copied by any other fork. The working directory
//!   is an open reference to its inode, so a removed working directory stays a
//!   directory (empty, its `..` gone) until the process leaves it, as on Linux.
//! * [`fallback_tree`]: the tree of processes made before the kernel has built the
//!   system's (the seed API's processes, host tests that never touch files): an
//!   empty tmpfs that holds nothing.
//!
//! ## Locks
//! The context sits behind the process's `IrqMutex`; none is taken inside it but
//! the tree's own (see [`super::vfs`]).
#![deny(unsafe_code)]

use super::tmpfs::{Tmpfs, TmpfsLimits};
use super::vfs::{OpenNode, Vfs};
use super::{DeviceId, Node};
use crate::memory::frame_allocator::GlobalFrames;
use alloc::sync::Arc;

/// The umask of the first process (Linux's default).
pub const DEFAULT_UMASK: u32 = 0o022;

/// A process's tree, working directory and umask.
#[derive(Debug, Clone)]
pub struct FsContext {
    tree: Arc<Vfs>,
    /// The working directory (`None`: the tree's root, whose inode cannot go).
    cwd: Option<Arc<OpenNode>>,
    /// The file-creation mask (permission bits only).
    pub umask: u32,
}

impl FsContext {
    /// At the root of `tree`, with the default umask.
    pub fn at_root(tree: Arc<Vfs>) -> FsContext {
        FsContext {
            tree,
            cwd: None,
            umask: DEFAULT_UMASK,
        }
    }

    /// The tree this process sees.
    pub fn tree(&self) -> &Arc<Vfs> {
        &self.tree
    }

    /// The working directory.
    pub fn cwd(&self) -> Node {
        self.cwd.as_ref().map_or(self.tree.root(), |d| d.node())
    }

    /// chdir: `dir` (a directory the caller has checked) becomes the working
    /// directory.
    pub fn set_cwd(&mut self, dir: OpenNode) {
        self.cwd = Some(Arc::new(dir));
    }
}

impl Default for FsContext {
    /// At the root of the [`fallback_tree`].
    fn default() -> Self {
        FsContext::at_root(fallback_tree())
    }
}

/// An empty, full tmpfs: the tree of processes made before the system's exists.
pub fn fallback_tree() -> Arc<Vfs> {
    static TREE: spin::Once<Arc<Vfs>> = spin::Once::new();
    TREE.call_once(|| {
        let empty = TmpfsLimits {
            pages: 0,
            inodes: 1,
        };
        let fs = Tmpfs::new(GlobalFrames, empty, DeviceId::new(0, 1), || 0, 0o755);
        Arc::new(Vfs::new(Arc::new(fs)))
    })
    .clone()
}

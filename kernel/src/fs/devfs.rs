//! `/dev`: the character devices every Linux program expects, and `/dev/shm`.
//!
//! ## What it owns
//! * [`CharDevice`]: what a device number means and how it reads and writes. The
//!   nodes themselves are ordinary inodes of a tmpfs, as Linux's devtmpfs is one,
//!   so `/dev` is writable (mknod, symlinks, removing nodes) like Linux's.
//! * [`populate`]: makes the nodes with Linux's numbers (`null` 1:3, `zero` 1:5,
//!   `full` 1:7, `random` 1:8, `urandom` 1:9, `tty` 5:0, `console` 5:1) and the
//!   `shm` directory; [`mount_dev`] mounts such a tree at `/dev` and a second tmpfs
//!   on `/dev/shm`.
//!
//! `console` and `tty` are only identified here: reading or writing them is ENXIO
//! until the terminal (issue 12, point 3) gives them a driver.
//!
//! ## Locks
//! None of its own: the nodes live in the tmpfs, under its lock.
#![deny(unsafe_code)]

use super::errno::{ENOSPC, ENXIO};
use super::vfs::{FollowLast, MountId, SpecialNode, Vfs};
use super::{DeviceId, Errno, FileSystem, Node, NodeAttrs};
use alloc::sync::Arc;

/// Fills a buffer with random bytes (what `/dev/random` and `/dev/urandom` read).
pub type Entropy = fn(&mut [u8]);

/// The character devices the kernel knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharDevice {
    /// `/dev/null`: reads end of file, writes vanish.
    Null,
    /// `/dev/zero`: reads zeros, writes vanish.
    Zero,
    /// `/dev/full`: reads zeros, writes fail with ENOSPC.
    Full,
    /// `/dev/random`: reads the entropy source.
    Random,
    /// `/dev/urandom`: the same, never blocking.
    Urandom,
    /// `/dev/tty`: the process's controlling terminal.
    Tty,
    /// `/dev/console`: the system console.
    Console,
}

/// Every device, with its node name and Linux device number.
pub const DEVICES: [(CharDevice, &str, DeviceId); 7] = [
    (CharDevice::Null, "null", DeviceId::new(1, 3)),
    (CharDevice::Zero, "zero", DeviceId::new(1, 5)),
    (CharDevice::Full, "full", DeviceId::new(1, 7)),
    (CharDevice::Random, "random", DeviceId::new(1, 8)),
    (CharDevice::Urandom, "urandom", DeviceId::new(1, 9)),
    (CharDevice::Tty, "tty", DeviceId::new(5, 0)),
    (CharDevice::Console, "console", DeviceId::new(5, 1)),
];

impl CharDevice {
    /// The device with number `id`, if the kernel has it.
    pub fn from_id(id: DeviceId) -> Option<CharDevice> {
        DEVICES.iter().find(|d| d.2 == id).map(|d| d.0)
    }

    /// Its device number.
    pub fn id(self) -> DeviceId {
        DEVICES
            .iter()
            .find(|d| d.0 == self)
            .map_or(DeviceId::default(), |d| d.2)
    }

    /// read(2) of the device into `buf`. Random devices without an entropy
    /// source read as ENXIO rather than as predictable bytes.
    pub fn read(self, buf: &mut [u8], entropy: Option<Entropy>) -> Result<usize, Errno> {
        match self {
            CharDevice::Null => Ok(0),
            CharDevice::Zero | CharDevice::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            CharDevice::Random | CharDevice::Urandom => {
                let fill = entropy.ok_or(ENXIO)?;
                fill(buf);
                Ok(buf.len())
            }
            CharDevice::Tty | CharDevice::Console => Err(ENXIO),
        }
    }

    /// write(2) of `buf` to the device. Writes to the random devices are taken
    /// and dropped (Linux mixes them into the pool, crediting no entropy).
    pub fn write(self, buf: &[u8]) -> Result<usize, Errno> {
        match self {
            CharDevice::Null | CharDevice::Zero | CharDevice::Random | CharDevice::Urandom => {
                Ok(buf.len())
            }
            CharDevice::Full => Err(ENOSPC),
            CharDevice::Tty | CharDevice::Console => Err(ENXIO),
        }
    }
}

/// Makes the device nodes (mode 0666, `console` 0600 as on Linux) and an empty
/// `shm` directory (1777) in directory `dev`.
pub fn populate(vfs: &Vfs, dev: Node) -> Result<(), Errno> {
    for (device, name, id) in DEVICES {
        let perm = match device {
            CharDevice::Console => 0o600,
            _ => 0o666,
        };
        let node = SpecialNode::CharDevice(id);
        vfs.mknod(dev, name.as_bytes(), node, NodeAttrs::root(perm))?;
    }
    vfs.mkdir(dev, b"shm", NodeAttrs::root(0o1777))?;
    Ok(())
}

/// Mounts `devfs` (an empty tmpfs) on directory `at`, fills it ([`populate`]) and
/// mounts `shm` (another empty tmpfs) on its `shm`. Returns both mounts.
pub fn mount_dev(
    vfs: &Vfs,
    at: Node,
    devfs: Arc<dyn FileSystem>,
    shm: Arc<dyn FileSystem>,
) -> Result<(MountId, MountId), Errno> {
    let root = devfs.root();
    let dev_mount = vfs.mount(at, devfs)?;
    let dev_root = Node {
        mount: dev_mount,
        ino: root,
    };
    populate(vfs, dev_root)?;
    let shm_dir = vfs.resolve(dev_root, b"shm", FollowLast::NoFollow)?;
    let shm_mount = vfs.mount(shm_dir, shm)?;
    Ok((dev_mount, shm_mount))
}

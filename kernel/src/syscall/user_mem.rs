//! Typed user memory: what a system call's pointer arguments are before and after
//! checking.
//!
//! A pointer from user space is an allegation (Hubris's word): it may point into the
//! kernel, at nothing, or run off the end of a mapping. [`UserSlice`] (bytes) and
//! [`UserPtr`] (one value of a [`Plain`] type) carry such an address; the only way
//! to use one is to copy through the caller's address space
//! ([`crate::process::UserSpace::copy_from_user`] / `copy_to_user`, software walks
//! that check every page), and every failure is `EFAULT`. No system call turns a user
//! address into a kernel reference.

use super::{Errno, EFAULT};
use crate::memory::frame_allocator::FrameSource;
use crate::process::UserSpace;
use core::marker::PhantomData;

/// `len` bytes of user memory at `addr`, unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSlice {
    addr: u64,
    len: usize,
}

impl UserSlice {
    /// The bytes `[addr, addr + len)` as a system call's arguments name them.
    pub fn new(addr: usize, len: usize) -> Self {
        UserSlice {
            addr: addr as u64,
            len,
        }
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether all of it lies below the end of user space (Linux's `access_ok`,
    /// which every read and write checks before it looks at the fd's file: the
    /// end must not pass the last user address, `TASK_SIZE - 1`).
    pub fn in_user_space(&self) -> bool {
        self.addr
            .checked_add(self.len as u64)
            .is_some_and(|end| end < crate::memory::address_space::TASK_SIZE)
    }

    /// The user address of byte `offset`.
    pub fn addr_at(&self, offset: usize) -> u64 {
        self.addr.wrapping_add(offset as u64)
    }

    /// `len` bytes from `offset` on (clamped to the slice).
    pub fn sub(&self, offset: usize, len: usize) -> UserSlice {
        let offset = offset.min(self.len);
        UserSlice {
            addr: self.addr.wrapping_add(offset as u64),
            len: len.min(self.len - offset),
        }
    }

    /// Copies the first `out.len()` bytes (at most its length) into `out`.
    pub fn read<A: FrameSource + Clone>(
        &self,
        space: &mut UserSpace<A>,
        out: &mut [u8],
    ) -> Result<(), Errno> {
        let n = out.len().min(self.len);
        if n == 0 {
            return Ok(()); // copying nothing never fails, as on Linux
        }
        space
            .copy_from_user(self.addr, &mut out[..n])
            .map_err(|_| EFAULT)
    }

    /// Copies as much of the slice's start into `out` as can be read, page by
    /// page; returns how many bytes (0 if the first page cannot be read).
    pub fn read_prefix<A: FrameSource + Clone>(
        &self,
        space: &mut UserSpace<A>,
        out: &mut [u8],
    ) -> usize {
        let n = out.len().min(self.len);
        let mut done = 0;
        while done < n {
            let at = self.addr.wrapping_add(done as u64);
            let page = crate::memory::PAGE_SIZE;
            let page_left = (page - (at % page)) as usize;
            let k = page_left.min(n - done);
            if space.copy_from_user(at, &mut out[done..done + k]).is_err() {
                break;
            }
            done += k;
        }
        done
    }

    /// Copies `data` (at most its length) to the start of the slice.
    pub fn write<A: FrameSource + Clone>(
        &self,
        space: &mut UserSpace<A>,
        data: &[u8],
    ) -> Result<(), Errno> {
        let n = data.len().min(self.len);
        if n == 0 {
            return Ok(());
        }
        space
            .copy_to_user(self.addr, &data[..n])
            .map_err(|_| EFAULT)
    }
}

/// A value that is its little-endian bytes (no padding, no invalid bit patterns):
/// what may cross between kernel and user memory by copy.
pub trait Plain: Sized {
    /// Its size in user memory.
    const SIZE: usize;
    /// Writes its bytes to `out` (`SIZE` long).
    fn to_bytes(&self, out: &mut [u8]);
    /// Reads it from `bytes` (`SIZE` long).
    fn from_bytes(bytes: &[u8]) -> Self;
}

macro_rules! plain_int {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn to_bytes(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn from_bytes(bytes: &[u8]) -> Self {
                let mut b = [0u8; core::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
        }
    )*};
}

plain_int!(u32, i32, u64, i64);

/// Two 64-bit words: `struct timespec`, `struct timeval`, `struct iovec`.
impl Plain for [u64; 2] {
    const SIZE: usize = 16;
    fn to_bytes(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self[0].to_le_bytes());
        out[8..].copy_from_slice(&self[1].to_le_bytes());
    }
    fn from_bytes(bytes: &[u8]) -> Self {
        [u64::from_bytes(&bytes[..8]), u64::from_bytes(&bytes[8..])]
    }
}

/// One `T` in user memory at an unchecked address.
#[derive(Debug, PartialEq, Eq)]
pub struct UserPtr<T> {
    addr: u64,
    _t: PhantomData<T>,
}

impl<T> Clone for UserPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for UserPtr<T> {}

impl<T: Plain> UserPtr<T> {
    /// The `T` at `addr` as a system call's argument names it.
    pub fn new(addr: usize) -> Self {
        UserPtr {
            addr: addr as u64,
            _t: PhantomData,
        }
    }

    /// Whether the caller passed NULL (often "no such argument").
    pub fn is_null(&self) -> bool {
        self.addr == 0
    }

    /// The `index`-th `T` of an array starting here.
    pub fn add(&self, index: usize) -> Self {
        UserPtr {
            addr: self.addr.wrapping_add((index * T::SIZE) as u64),
            _t: PhantomData,
        }
    }

    /// Reads the value.
    pub fn read<A: FrameSource + Clone>(&self, space: &mut UserSpace<A>) -> Result<T, Errno> {
        let mut b = [0u8; 16];
        let b = &mut b[..T::SIZE];
        space.copy_from_user(self.addr, b).map_err(|_| EFAULT)?;
        Ok(T::from_bytes(b))
    }

    /// Writes `value`.
    pub fn write<A: FrameSource + Clone>(
        &self,
        space: &mut UserSpace<A>,
        value: &T,
    ) -> Result<(), Errno> {
        let mut b = [0u8; 16];
        let b = &mut b[..T::SIZE];
        value.to_bytes(b);
        space.copy_to_user(self.addr, b).map_err(|_| EFAULT)
    }
}

/// The NUL-terminated string at `addr`, of at most `limit` bytes before the NUL
/// (`too_long` beyond: ENAMETOOLONG for a path, E2BIG for an argument). Reads in
/// pieces that never cross a 64-byte boundary, so a string that ends just before an
/// unmapped page is read without touching it.
pub fn read_cstr<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    addr: usize,
    limit: usize,
    too_long: Errno,
) -> Result<alloc::vec::Vec<u8>, Errno> {
    let mut out = alloc::vec::Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        let at = addr.checked_add(out.len()).ok_or(EFAULT)?;
        let n = 64 - at % 64;
        UserSlice::new(at, n).read(space, &mut chunk[..n])?;
        let end = chunk[..n].iter().position(|&b| b == 0);
        out.extend_from_slice(&chunk[..end.unwrap_or(n)]);
        if out.len() > limit {
            return Err(too_long);
        }
        if end.is_some() {
            return Ok(out);
        }
    }
}

/// A `struct timespec` (seconds, nanoseconds) as the caller wrote it, unvalidated.
pub fn read_timespec<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    addr: usize,
) -> Result<(i64, i64), Errno> {
    let [sec, nsec] = UserPtr::<[u64; 2]>::new(addr).read(space)?;
    Ok((sec as i64, nsec as i64))
}

/// A `struct timespec` duration or time in nanoseconds: EINVAL for negative seconds
/// or nanoseconds outside 0..1e9 (as every Linux call that takes one answers).
pub fn read_timespec_ns<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    addr: usize,
) -> Result<u64, Errno> {
    let (sec, nsec) = read_timespec(space, addr)?;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(super::EINVAL);
    }
    Ok((sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec as u64))
}

const _: () = assert!(<[u64; 2] as Plain>::SIZE <= 16 && <u64 as Plain>::SIZE <= 16);

//! User copies through the MMU: not done on aarch64 yet (it would need `ldtr`/`sttr`
//! or PAN handling and a fault fixup in the EL1 synchronous handler), so every copy
//! is left to the address space's software walk, as before.

use crate::memory::PhysFrame;

/// Whether [`read_user`] and [`write_user`] copy anything: none yet.
pub const THROUGH_MMU: bool = false;

/// Bytes of `data` written to user address `dst` by the MMU: none yet.
pub fn write_user(_root: PhysFrame, _dst: u64, _data: &[u8]) -> usize {
    0
}

/// Bytes read from user address `src` into `buf` by the MMU: none yet.
pub fn read_user(_root: PhysFrame, _src: u64, _buf: &mut [u8]) -> usize {
    0
}

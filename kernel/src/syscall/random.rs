//! getrandom, and the random bytes exec puts on a new stack (AT_RANDOM): a
//! xorshift64* generator stirred with the machine's entropy counter (a cycle
//! counter). Not cryptographic.

use super::blocking::PIECE_BYTES;
use super::user_mem::UserSlice;
use super::{machine, Errno, Sys, EFAULT, EINVAL};
use crate::memory::frame_allocator::FrameSource;
use core::sync::atomic::{AtomicU64, Ordering};

/// Most bytes one getrandom call returns (Linux's limit for a single call).
const MAX_PER_CALL: usize = 1 << 25;
const PAGE: usize = crate::memory::PAGE_SIZE as usize;
/// GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE.
const FLAGS: usize = 0x7;

static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// 8 pseudo-random bytes.
fn next_u64() -> u64 {
    let mut x = STATE.load(Ordering::Relaxed) ^ machine::entropy().rotate_left(29);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// 16 pseudo-random bytes (AT_RANDOM).
pub fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&next_u64().to_le_bytes());
    out[8..].copy_from_slice(&next_u64().to_le_bytes());
    out
}

/// Fills `buf` with pseudo-random bytes (what `/dev/urandom` reads).
pub fn fill(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        chunk.copy_from_slice(&next_u64().to_le_bytes()[..chunk.len()]);
    }
}

/// getrandom(buf, len, flags): the flags Linux knows are accepted (there is always
/// enough entropy); a fault after some bytes returns the count written. Pages the
/// buffer faults in go through the OOM killer ([`Sys::retry_on_oom`]). More than
/// [`PIECE_BYTES`] are written in pieces, between which other threads run; a signal
/// between them returns the bytes written so far, as on Linux.
pub fn sys_getrandom<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    buf: usize,
    len: usize,
    flags: usize,
) -> Result<usize, Errno> {
    if flags & !FLAGS != 0 {
        return Err(EINVAL);
    }
    let buf = UserSlice::new(buf, len.min(MAX_PER_CALL));
    // A long call works in pieces (see `blocking`): this one ends at `piece_end`.
    let mut done = sys.progress();
    let piece_end = buf.len().min(done + PIECE_BYTES);
    let piece = buf.sub(0, piece_end);
    let filled = sys.retry_on_oom(|space| fill_user(space, piece, &mut done));
    match filled {
        Err(e) if done == 0 => Err(e),
        Ok(()) if done < buf.len() => sys.yield_piece(done, 0),
        _ => Ok(done),
    }
}

/// Bytes generated and copied at a time.
const FILL_CHUNK: usize = 256;

/// Fills `buf` from byte `*done` on, counting in `*done`; EFAULT at the first
/// chunk that cannot be written (a chunk never crosses a page boundary, so the
/// bytes before a hole are delivered).
fn fill_user<A: FrameSource + Clone>(
    space: &mut crate::process::UserSpace<A>,
    buf: UserSlice,
    done: &mut usize,
) -> Result<(), Errno> {
    let mut bytes = [0u8; FILL_CHUNK];
    while *done < buf.len() {
        let to_page_end = PAGE - (buf.addr_at(*done) % PAGE as u64) as usize;
        let part = buf.sub(*done, to_page_end.min(FILL_CHUNK));
        let chunk = &mut bytes[..part.len()];
        fill(chunk);
        part.write(space, chunk).map_err(|_| EFAULT)?;
        *done += part.len();
    }
    Ok(())
}

//! nanosleep.

use super::{Errno, Sys, EFAULT, EINVAL};
use crate::memory::frame_allocator::FrameSource;
use crate::process::scheduler::TICK_HZ;

const NSEC_PER_SEC: u64 = 1_000_000_000;
const NSEC_PER_TICK: u64 = NSEC_PER_SEC / TICK_HZ as u64;

/// nanosleep(req, rem): reads the `struct timespec` at `req` (EFAULT if it cannot),
/// refuses a negative or out-of-range time (EINVAL), and puts the caller to sleep
/// for the time rounded up to whole ticks. Returns 0; the arch switches away and the
/// 0 is delivered when the thread wakes. `rem` is not written (no signals yet).
pub fn sys_nanosleep<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    req: usize,
    _rem: usize,
) -> Result<usize, Errno> {
    let mut ts = [0u8; 16];
    sys.space()?
        .copy_from_user(req as u64, &mut ts)
        .map_err(|_| EFAULT)?;
    let sec = i64::from_le_bytes(ts[..8].try_into().unwrap_or_default());
    let nsec = i64::from_le_bytes(ts[8..].try_into().unwrap_or_default());
    if sec < 0 || !(0..NSEC_PER_SEC as i64).contains(&nsec) {
        return Err(EINVAL);
    }
    let ticks = (sec as u64)
        .saturating_mul(TICK_HZ as u64)
        .saturating_add((nsec as u64).div_ceil(NSEC_PER_TICK));
    if ticks > 0 {
        sys.caller_must_be_current()?;
        let wake = sys.sched.now().saturating_add(ticks);
        sys.sched.sleep_current_until(wake)?;
    }
    Ok(0)
}

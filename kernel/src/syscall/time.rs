//! Time: nanosleep, and the clocks (clock_gettime, gettimeofday, time) read from the
//! machine's clock ([`super::machine::uptime_ns`]). There is no RTC driver: the wall
//! clock starts at [`EPOCH_OFFSET_S`] when the machine does.

use super::user_mem::{read_timespec, UserPtr};
use super::{machine, Errno, Sys, EINVAL};
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
    let (sec, nsec) = read_timespec(sys.space()?, req)?;
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

/// The wall clock at boot: 2023-11-14T22:13:20Z.
pub const EPOCH_OFFSET_S: u64 = 1_700_000_000;

/// CLOCK_REALTIME (`realtime`) or CLOCK_MONOTONIC in nanoseconds (the futex clock).
pub fn clock_ns(realtime: bool) -> u64 {
    let base = if realtime {
        EPOCH_OFFSET_S * NSEC_PER_SEC
    } else {
        0
    };
    base + machine::uptime_ns()
}

/// clock_gettime(clock, ts): REALTIME clocks (0, 5, 8) run from [`EPOCH_OFFSET_S`];
/// MONOTONIC, RAW, COARSE, BOOTTIME and the CPU-time clocks count from boot; any
/// other clock is EINVAL.
pub fn sys_clock_gettime<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    clock: usize,
    ts: usize,
) -> Result<usize, Errno> {
    let t = match clock {
        0 | 5 | 8 => clock_ns(true),
        1..=4 | 6 | 7 | 9 => clock_ns(false),
        _ => return Err(EINVAL),
    };
    let value = [t / NSEC_PER_SEC, t % NSEC_PER_SEC];
    UserPtr::<[u64; 2]>::new(ts).write(sys.space()?, &value)?;
    Ok(0)
}

/// gettimeofday(tv, tz): the wall clock in microseconds; a NULL `tv` is fine.
pub fn sys_gettimeofday<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    tv: usize,
) -> Result<usize, Errno> {
    let tv = UserPtr::<[u64; 2]>::new(tv);
    if tv.is_null() {
        return Ok(0);
    }
    let us = clock_ns(true) / 1000;
    tv.write(sys.space()?, &[us / 1_000_000, us % 1_000_000])?;
    Ok(0)
}

/// time(tloc): the wall clock in seconds, also stored at `tloc` unless NULL.
pub fn sys_time<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, tloc: usize) -> Result<usize, Errno> {
    let s = clock_ns(true) / NSEC_PER_SEC;
    let tloc = UserPtr::<u64>::new(tloc);
    if !tloc.is_null() {
        tloc.write(sys.space()?, &s)?;
    }
    Ok(s as usize)
}

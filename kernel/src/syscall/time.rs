//! Time: nanosleep and clock_nanosleep (on the call's deadline, see
//! [`super::blocking`]), and the clocks (clock_gettime, gettimeofday, time) read from the
//! machine's clock ([`super::machine::uptime_ns`]). There is no RTC driver: the wall
//! clock starts at [`EPOCH_OFFSET_S`] when the machine does.

use super::user_mem::{read_timespec_ns, UserPtr};
use super::{machine, Errno, Sys, EINTR, EINVAL, EOPNOTSUPP};
use crate::memory::frame_allocator::FrameSource;
use crate::process::scheduler::TICK_HZ;
use crate::process::UserSpace;

const NSEC_PER_SEC: u64 = 1_000_000_000;
const NSEC_PER_TICK: u64 = NSEC_PER_SEC / TICK_HZ as u64;

/// nanosleep(req, rem): reads the `struct timespec` at `req` (EFAULT if it cannot),
/// refuses a negative or out-of-range time (EINVAL), and sleeps for the time rounded
/// up to whole ticks. A signal handler ends the sleep early with EINTR and the time
/// left written to `rem` (if not NULL): see [`interrupted_sleep`].
pub fn sys_nanosleep<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    req: usize,
    _rem: usize,
) -> Result<usize, Errno> {
    let ns = read_duration(sys, req)?;
    sleep_ns(sys, ns)
}

/// clock_nanosleep(clock, flags, req, rem): nanosleep on CLOCK_REALTIME, MONOTONIC or
/// BOOTTIME (the CPU-time clocks and unknown ones are EINVAL); with TIMER_ABSTIME
/// `req` is the clock's time to wake at (already past: return at once).
pub fn sys_clock_nanosleep<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    clock: usize,
    flags: usize,
    req: usize,
) -> Result<usize, Errno> {
    // Linux's order: the clock exists (EINVAL), it can sleep (EOPNOTSUPP), the
    // request is read (EFAULT) and valid (EINVAL); the alarm clocks then need an
    // RTC alarm this machine lacks (ENOTSUPP, 524, as Linux answers without one);
    // the CPU-time clocks are not slept on here (EINVAL).
    match clock {
        0..=2 | 7..=9 | 11 => {}
        3..=6 => return Err(EOPNOTSUPP),
        c if (c as i32) < 0 => {}
        _ => return Err(EINVAL),
    }
    let ns = read_duration(sys, req)?;
    let realtime = match clock {
        CLOCK_REALTIME | CLOCK_TAI => true,
        CLOCK_MONOTONIC | CLOCK_BOOTTIME => false,
        8 | 9 => return Err(Errno(524)),
        _ => return Err(EINVAL),
    };
    let ns = match flags & TIMER_ABSTIME {
        0 => ns,
        _ => ns.saturating_sub(clock_ns(realtime)),
    };
    sleep_ns(sys, ns)
}

/// CLOCK_REALTIME.
const CLOCK_REALTIME: usize = 0;
/// CLOCK_MONOTONIC.
const CLOCK_MONOTONIC: usize = 1;
/// CLOCK_BOOTTIME.
const CLOCK_BOOTTIME: usize = 7;
/// CLOCK_TAI (kept as UTC: no leap seconds are known).
const CLOCK_TAI: usize = 11;
/// clock_nanosleep: `req` is an absolute time.
pub const TIMER_ABSTIME: usize = 1;

/// The `timespec` at `at` in nanoseconds; EINVAL if negative or out of range.
fn read_duration<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, at: usize) -> Result<u64, Errno> {
    read_timespec_ns(&mut *sys.space()?, at)
}

/// Sleeps `ns` (rounded up to whole ticks) with the call's deadline, so a re-issued
/// call (after a wake-up that was not its deadline) sleeps only what is left, and so
/// does the call made again after a stop and SIGCONT (the task layer keeps its
/// deadline, as Linux's restart_block): an absolute sleep keeps its deadline too.
fn sleep_ns<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, ns: u64) -> Result<usize, Errno> {
    let ticks = ns.div_ceil(NSEC_PER_TICK);
    if ticks == 0 {
        return Ok(0);
    }
    sys.deadline_in(ticks);
    if sys.timed_out() {
        // A deadline kept across a stop ends here too, not in a later call.
        sys.restore_deadline(None);
        return Ok(0);
    }
    sys.block()
}

/// A sleep that a signal handler interrupted: writes the time left to the
/// `timespec` at `rem` (if not NULL), as Linux does for a relative sleep, and answers
/// EINTR.
pub fn interrupted_sleep<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    rem: usize,
) -> Result<usize, Errno> {
    let deadline = sys.table.thread(sys.tid).and_then(|t| t.call.deadline);
    let left = deadline.map_or(0, |d| d.saturating_sub(sys.sched.now())) * NSEC_PER_TICK;
    if rem != 0 {
        let value = [left / NSEC_PER_SEC, left % NSEC_PER_SEC];
        UserPtr::<[u64; 2]>::new(rem).write(&mut *sys.space()?, &value)?;
    }
    Err(EINTR)
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
    clock_gettime(&mut *sys.space()?, clock, ts)
}

/// clock_gettime on the caller's address space `space` (what the fast path of
/// [`super::fast`] calls too).
pub fn clock_gettime<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    clock: usize,
    ts: usize,
) -> Result<usize, Errno> {
    // The alarm clocks (8, 9) need an RTC that can wake the machine, which this
    // one has not: EINVAL, as Linux answers without one. TAI (11) is UTC here.
    let t = match clock {
        0 | 5 | 11 => clock_ns(true),
        1..=4 | 6 | 7 => clock_ns(false),
        _ => return Err(EINVAL),
    };
    let value = [t / NSEC_PER_SEC, t % NSEC_PER_SEC];
    UserPtr::<[u64; 2]>::new(ts).write(space, &value)?;
    Ok(0)
}

/// gettimeofday(tv, tz): the wall clock in microseconds; a NULL `tv` is fine.
pub fn sys_gettimeofday<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    tv: usize,
    tz: usize,
) -> Result<usize, Errno> {
    gettimeofday(&mut *sys.space()?, tv, tz)
}

/// gettimeofday on the caller's address space `space`.
pub fn gettimeofday<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    tv: usize,
    tz: usize,
) -> Result<usize, Errno> {
    let tv = UserPtr::<[u64; 2]>::new(tv);
    if !tv.is_null() {
        let us = clock_ns(true) / 1000;
        tv.write(space, &[us / 1_000_000, us % 1_000_000])?;
    }
    // struct timezone (minutes west, DST type): UTC, as Linux's default sys_tz.
    let tz = UserPtr::<u64>::new(tz);
    if !tz.is_null() {
        tz.write(space, &0)?;
    }
    Ok(0)
}

/// time(tloc): the wall clock in seconds, also stored at `tloc` unless NULL.
pub fn sys_time<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, tloc: usize) -> Result<usize, Errno> {
    time(&mut *sys.space()?, tloc)
}

/// time on the caller's address space `space`.
pub fn time<A: FrameSource + Clone>(space: &mut UserSpace<A>, tloc: usize) -> Result<usize, Errno> {
    let s = clock_ns(true) / NSEC_PER_SEC;
    let tloc = UserPtr::<u64>::new(tloc);
    if !tloc.is_null() {
        tloc.write(space, &s)?;
    }
    Ok(s as usize)
}

/// The soonest tick any process's real timer fires at (u64::MAX: none), so the
/// timer interrupt looks at the processes only when one may be due.
static NEXT_REAL_TIMER: core::sync::atomic::AtomicU64 =
    core::sync::atomic::AtomicU64::new(u64::MAX);

const US_PER_TICK: u64 = 1_000_000 / TICK_HZ as u64;

/// Whether some real timer may be due at tick `now`.
pub fn real_timer_due(now: u64) -> bool {
    now >= NEXT_REAL_TIMER.load(core::sync::atomic::Ordering::Relaxed)
}

/// Fires the real timers due at the table's tick `now`: SIGALRM for each (made
/// pending on a thread, which is woken; it takes the signal, or dies of it, when it
/// next returns to user mode). Re-arms periodic ones.
pub fn fire_real_timers<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, now: u64) {
    let due: alloc::vec::Vec<crate::process::Pid> = sys
        .table
        .processes()
        .filter(|p| p.real_timer.is_some_and(|(at, _)| at <= now))
        .map(|p| p.pid)
        .collect();
    for pid in due {
        if let Some(p) = sys.table.process_mut(pid) {
            p.real_timer = p
                .real_timer
                .and_then(|(at, every)| (every > 0).then(|| (at.max(now) + every, every)));
        }
        super::signal::post(sys, pid, SIGALRM);
    }
    let next = sys
        .table
        .processes()
        .filter_map(|p| p.real_timer.map(|(at, _)| at))
        .min()
        .unwrap_or(u64::MAX);
    NEXT_REAL_TIMER.store(next, core::sync::atomic::Ordering::Relaxed);
}

const SIGALRM: i32 = 14;

fn ticks_of(us: u64) -> u64 {
    us.div_ceil(US_PER_TICK)
}

/// The caller's real timer: (ticks left, interval in ticks), zero when off.
fn real_timer_left<A: FrameSource + Clone>(sys: &Sys<'_, A>) -> Result<(u64, u64), Errno> {
    let now = sys.sched.now();
    Ok(sys
        .process()?
        .real_timer
        .map_or((0, 0), |(at, every)| (at.saturating_sub(now).max(1), every)))
}

fn set_real_timer<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    ticks: u64,
    every: u64,
) -> Result<(), Errno> {
    let at = sys.sched.now().saturating_add(ticks);
    let pid = sys.pid()?;
    let p = sys.table.process_mut(pid).ok_or(super::ESRCH)?;
    p.real_timer = (ticks > 0).then_some((at, every));
    if ticks > 0 {
        NEXT_REAL_TIMER.fetch_min(at, core::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// A `struct itimerval` { it_interval, it_value } of timevals from ticks.
fn itimerval(every: u64, left: u64) -> [u64; 4] {
    let us = |t: u64| t * US_PER_TICK;
    [
        us(every) / 1_000_000,
        us(every) % 1_000_000,
        us(left) / 1_000_000,
        us(left) % 1_000_000,
    ]
}

/// getitimer(which, value): ITIMER_REAL only (the CPU-time timers are EINVAL).
pub fn sys_getitimer<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    which: usize,
    value: usize,
) -> Result<usize, Errno> {
    // ITIMER_VIRTUAL and ITIMER_PROF exist but are never armed here (see
    // `sys_setitimer`): they read as zero.
    let v = match which {
        0 => {
            let (left, every) = real_timer_left(sys)?;
            itimerval(every, left)
        }
        1 | 2 => [0; 4],
        _ => return Err(EINVAL),
    };
    let out = UserPtr::<u64>::new(value);
    let mut space = sys.space()?;
    for (i, w) in v.iter().enumerate() {
        out.add(i).write(&mut space, w)?;
    }
    Ok(0)
}

/// setitimer(which, new, old): arms (or, with a zero value, disarms) ITIMER_REAL,
/// rounded up to whole ticks; `old` gets what was left.
pub fn sys_setitimer<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    which: usize,
    new: usize,
    old: usize,
) -> Result<usize, Errno> {
    // The new value is read before `which` is looked at (EFAULT first), as Linux does.
    let at = UserPtr::<u64>::new(new);
    let mut v = [0u64; 4];
    if !at.is_null() {
        let mut space = sys.space()?;
        for (i, w) in v.iter_mut().enumerate() {
            *w = at.add(i).read(&mut space)?;
        }
    }
    if which > 2 || v[1] >= 1_000_000 || v[3] >= 1_000_000 {
        return Err(EINVAL);
    }
    // ITIMER_VIRTUAL and ITIMER_PROF (CPU-time timers) are not kept: disarming
    // one (or asking) works, arming one is refused.
    if which != 0 {
        if v != [0; 4] {
            return Err(EINVAL);
        }
        if old != 0 {
            sys_getitimer(sys, which, old)?;
        }
        return Ok(0);
    }
    if old != 0 {
        sys_getitimer(sys, 0, old)?;
    }
    if !at.is_null() {
        let every = ticks_of(v[0].saturating_mul(1_000_000).saturating_add(v[1]));
        let value = ticks_of(v[2].saturating_mul(1_000_000).saturating_add(v[3]));
        set_real_timer(sys, value, every)?;
    }
    Ok(0)
}

/// alarm(seconds): SIGALRM after `seconds` (0 cancels); returns the seconds that
/// were left, rounded up.
pub fn sys_alarm<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    seconds: usize,
) -> Result<usize, Errno> {
    let (left, _) = real_timer_left(sys)?;
    let ticks = (seconds as u64).saturating_mul(TICK_HZ as u64);
    set_real_timer(sys, ticks, 0)?;
    Ok(((left * US_PER_TICK).div_ceil(1_000_000)) as usize)
}

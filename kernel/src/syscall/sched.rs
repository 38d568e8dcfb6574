//! The scheduler's calls: sched_yield, sched_getaffinity/sched_setaffinity (which
//! CPUs a thread may run on, kept in its scheduler entry) and getcpu.

use super::user_mem::{UserPtr, UserSlice};
use super::{Errno, Sys, EINVAL, ESRCH};
use crate::memory::frame_allocator::FrameSource;
use crate::process::Tid;

/// Bytes of the kernel's CPU mask (one `unsigned long`: up to 64 CPUs), what
/// sched_getaffinity returns, as Linux's `cpumask_size()`.
const CPU_MASK_BYTES: usize = 8;

/// The caller goes to the back of its run queue; always succeeds.
pub fn sys_sched_yield<A: FrameSource + Clone>(sys: &mut Sys<'_, A>) -> Result<usize, Errno> {
    sys.sched.yield_now();
    Ok(0)
}

/// The thread a `pid` argument names (0: the caller); ESRCH if none is alive.
fn target<A: FrameSource + Clone>(sys: &Sys<'_, A>, pid: usize) -> Result<Tid, Errno> {
    let tid = match pid {
        0 => sys.tid,
        p => Tid(u32::try_from(p).map_err(|_| ESRCH)?),
    };
    match sys.table.thread(tid) {
        Some(t) if !t.has_exited() => Ok(tid),
        _ => Err(ESRCH),
    }
}

/// The online CPUs as a mask.
fn online_mask<A: FrameSource + Clone>(sys: &Sys<'_, A>) -> u64 {
    let n = sys.sched.online_cpus().min(64);
    if n == 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// sched_getaffinity(pid, len, mask): the CPUs thread `pid` may run on, among the
/// online ones; returns the bytes written. EINVAL if `len` cannot hold every CPU or
/// is not a multiple of a long, as on Linux.
pub fn sys_sched_getaffinity<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
    len: usize,
    mask: usize,
) -> Result<usize, Errno> {
    // Linux's order and widths: `len` is an unsigned int whose product in bits
    // wraps; it must cover the CPUs and be whole longs.
    let len = len as u32 as usize;
    if ((len as u32).wrapping_mul(8) as usize) < sys.sched.online_cpus() || !len.is_multiple_of(8) {
        return Err(EINVAL);
    }
    let tid = target(sys, pid)?;
    let allowed = sys.sched.affinity(tid).ok_or(ESRCH)? & online_mask(sys);
    let n = len.min(CPU_MASK_BYTES);
    let bytes = allowed.to_le_bytes();
    UserSlice::new(mask, n).write(&mut *sys.space()?, &bytes[..n])?;
    Ok(n)
}

/// sched_setaffinity(pid, len, mask): restricts thread `pid` to the CPUs of `mask`
/// (bits beyond `len` bytes are 0, beyond the kernel's mask ignored). EINVAL if no
/// online CPU is left; a thread running elsewhere moves at once.
pub fn sys_sched_setaffinity<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    pid: usize,
    len: usize,
    mask: usize,
) -> Result<usize, Errno> {
    let mut bytes = [0u8; CPU_MASK_BYTES];
    let n = len.min(CPU_MASK_BYTES);
    UserSlice::new(mask, n).read(&mut *sys.space()?, &mut bytes[..n])?;
    let tid = target(sys, pid)?;
    let wanted = u64::from_le_bytes(bytes);
    if wanted & online_mask(sys) == 0 {
        return Err(EINVAL);
    }
    sys.sched.set_affinity(tid, wanted)?;
    // The caller itself may no longer run here: it picks again on its way out.
    if tid == sys.tid && wanted & (1 << crate::smp::this_index()) == 0 {
        sys.sched.yield_now();
    }
    Ok(0)
}

/// getcpu(cpu, node, cache): the CPU the caller runs on and its NUMA node (either
/// pointer may be NULL; the third argument is unused since Linux 2.6.24).
pub fn sys_getcpu<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    cpu: usize,
    node: usize,
) -> Result<usize, Errno> {
    let here = crate::smp::this();
    let index = here.id() as u32;
    let node_id = here.node.load(core::sync::atomic::Ordering::Relaxed);
    if cpu != 0 {
        UserPtr::<u32>::new(cpu).write(&mut *sys.space()?, &index)?;
    }
    if node != 0 {
        UserPtr::<u32>::new(node).write(&mut *sys.space()?, &node_id)?;
    }
    Ok(0)
}

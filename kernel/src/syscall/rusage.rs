//! getrusage: what a thread or process has used. Of Linux's `struct rusage` the
//! kernel counts context switches (`ru_nvcsw`: times a thread blocked or slept,
//! `ru_nivcsw`: times the timer preempted it, both from the scheduler); the other
//! fields (CPU times, resident size, faults, I/O) read as 0 for now.

use super::user_mem::UserSlice;
use super::{Errno, Sys, EINVAL};
use crate::memory::frame_allocator::FrameSource;

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;
/// `struct rusage`: two `timeval`s and fourteen longs.
const RUSAGE_WORDS: usize = 18;
/// Word index of `ru_nvcsw` (`ru_nivcsw` follows).
const NVCSW: usize = 16;

/// getrusage(who, usage): RUSAGE_SELF sums the process's live threads,
/// RUSAGE_THREAD is the caller alone, RUSAGE_CHILDREN reads as all zeros (reaped
/// children are not accounted yet); anything else EINVAL.
pub fn sys_getrusage<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    who: usize,
    usage: usize,
) -> Result<usize, Errno> {
    let threads: alloc::vec::Vec<_> = match who as i32 {
        RUSAGE_SELF => sys.process()?.threads.iter().copied().collect(),
        RUSAGE_THREAD => alloc::vec![sys.tid],
        RUSAGE_CHILDREN => alloc::vec::Vec::new(),
        _ => return Err(EINVAL),
    };
    let mut words = [0u64; RUSAGE_WORDS];
    for t in threads {
        let (voluntary, involuntary) = sys.sched.switches(t).unwrap_or((0, 0));
        words[NVCSW] += voluntary;
        words[NVCSW + 1] += involuntary;
    }
    let mut bytes = [0u8; RUSAGE_WORDS * 8];
    for (out, w) in bytes.chunks_exact_mut(8).zip(words) {
        out.copy_from_slice(&w.to_le_bytes());
    }
    UserSlice::new(usage, bytes.len()).write(&mut *sys.space()?, &bytes)?;
    Ok(0)
}

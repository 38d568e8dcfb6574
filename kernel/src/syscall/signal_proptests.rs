//! Property tests of the signal state machine, driven through `dispatch` as a user
//! program drives it: random sequences of rt_sigaction (handler, SIG_IGN, SIG_DFL),
//! rt_sigprocmask, kill, tgkill, rt_sigqueueinfo, rt_sigtimedwait with a zero
//! timeout, and delivery (`signal::take_next`, what the task layer takes) on one
//! process with two threads, for SIGUSR1, SIGUSR2, SIGCHLD, SIGRTMIN+2 and
//! SIGRTMIN+3, checked against a small model.
//!
//! What the model says (Linux's semantics): kill and rt_sigqueueinfo go to the
//! process's shared pending set, tgkill to the thread's own. A standard signal sent
//! again while pending in the same set is pending once; a real-time one is queued
//! once per send, each with its own si_value, and taken in order. A signal sent
//! while blocked (by the thread, or for a process-directed one by the main thread)
//! or while it has a handler becomes pending and is taken exactly once, by delivery
//! (only while unblocked) or by rt_sigtimedwait, the thread's own signals before the
//! shared ones, lowest first; one sent while ignored and unblocked is dropped; SIG_DFL
//! and taken at once by a thread, SIGCHLD is dropped and the others end the process.
//! A process-directed signal is taken by the main thread if it does not block it,
//! else by the other thread; a thread that was not picked takes shared signals once
//! it changes its mask (Linux's recalc_sigpending). Changing an action to one that
//! ignores the signal discards it everywhere, as on Linux. rt_sigpending reports
//! (own | shared) & blocked.

use super::tests::Machine;
use super::*;
use crate::process::ProcessState;
use proptest::prelude::*;

const BUF: usize = 0x1000_0000;
const ACT: usize = BUF;
const SET: usize = BUF + 64;
const ZERO_TIMEOUT: usize = BUF + 128;
const INFO: usize = BUF + 256;
const PENDING: usize = BUF + 512;
const QINFO: usize = BUF + 1024;
const HANDLER: u64 = 0x40_1000;
const RESTORER: u64 = 0x40_2000;
const SA_RESTORER: u64 = 0x0400_0000;
const SIGS: [i32; 5] = [10, 12, 17, 34, 35];

/// One signal's disposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disp {
    Handler,
    Ignore,
    Default,
}

/// One step of a sequence; `t` picks one of the two threads, sets are bitmaps over
/// [`SIGS`].
#[derive(Debug, Clone)]
enum Op {
    Action(i32, Disp),
    Mask(usize, usize, u8),
    Kill(usize, i32),
    Tgkill(usize, usize, i32),
    Sigqueue(usize, i32),
    Wait(usize, u8),
    Deliver(usize),
}

/// Mostly handlers: SIG_DFL ends the process at the first unblocked send.
fn disp() -> impl Strategy<Value = Disp> {
    prop_oneof![
        4 => Just(Disp::Handler),
        2 => Just(Disp::Ignore),
        1 => Just(Disp::Default)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let sig = prop::sample::select(SIGS.to_vec());
    prop_oneof![
        (sig.clone(), disp()).prop_map(|(s, d)| Op::Action(s, d)),
        (0..2usize, 0..3usize, 0..32u8).prop_map(|(t, h, s)| Op::Mask(t, h, s)),
        (0..2usize, sig.clone()).prop_map(|(t, s)| Op::Kill(t, s)),
        (0..2usize, 0..2usize, sig.clone()).prop_map(|(f, t, s)| Op::Tgkill(f, t, s)),
        (0..2usize, sig).prop_map(|(t, s)| Op::Sigqueue(t, s)),
        (0..2usize, 0..32u8).prop_map(|(t, s)| Op::Wait(t, s)),
        (0..2usize).prop_map(Op::Deliver),
    ]
}

/// The signal set a bitmap over [`SIGS`] names.
fn sigset(pick: u8) -> u64 {
    SIGS.iter()
        .enumerate()
        .filter(|(i, _)| pick & (1 << i) != 0)
        .fold(0, |set, (_, s)| set | signal::bit(*s))
}

/// Where a pending signal waits: thread 0's, thread 1's, or the shared set.
const SHARED: usize = 2;

/// What the kernel should hold: each thread's mask, the three pending queues (each
/// entry a signal and its si_value), whether each thread was told of the shared
/// ones, the actions.
struct Model {
    mask: [u64; 2],
    queues: [Vec<(i32, u64)>; 3],
    notice: [bool; 2],
    disp: [Disp; 65],
}

/// What a send does, by the model.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    Pending,
    Dropped,
    Kills,
}

impl Model {
    fn set(&self, q: usize) -> u64 {
        self.queues[q]
            .iter()
            .fold(0, |s, (sig, _)| s | signal::bit(*sig))
    }

    /// `sig` with si_value `value` sent to queue `q` (a thread, or [`SHARED`]).
    fn send(&mut self, q: usize, sig: i32, value: u64) -> Sent {
        let bit = signal::bit(sig);
        let stand_in = if q == SHARED { 0 } else { q };
        let held = self.mask[stand_in] & bit != 0;
        let ignored = match self.disp[sig as usize] {
            Disp::Ignore => true,
            Disp::Default => sig == signal::SIGCHLD,
            Disp::Handler => false,
        };
        if ignored && !held {
            return Sent::Dropped;
        }
        if sig >= 32 || self.set(q) & bit == 0 {
            self.queues[q].push((sig, value));
        }
        let receiver = match q {
            SHARED => (0..2).find(|t| self.mask[*t] & bit == 0),
            t => (self.mask[t] & bit == 0).then_some(t),
        };
        let Some(r) = receiver else {
            return Sent::Pending;
        };
        self.notice[r] = true;
        match self.disp[sig as usize] {
            Disp::Default if sig != signal::SIGCHLD => Sent::Kills,
            _ => Sent::Pending,
        }
    }

    /// Takes the lowest signal of `allowed` from queue `q`: its oldest instance.
    fn take_from(&mut self, q: usize, allowed: u64) -> Option<(i32, u64)> {
        let ready = self.set(q) & allowed;
        let sig = (ready != 0).then(|| ready.trailing_zeros() as i32 + 1)?;
        let at = self.queues[q].iter().position(|(s, _)| *s == sig)?;
        Some(self.queues[q].remove(at))
    }

    /// What thread `t` takes from `allowed`: its own first, then (if `shared`) the
    /// process's.
    fn take(&mut self, t: usize, allowed: u64, shared: bool) -> Option<(i32, u64)> {
        self.take_from(t, allowed)
            .or_else(|| shared.then(|| self.take_from(SHARED, allowed)).flatten())
    }

    fn set_mask(&mut self, t: usize, mask: u64) {
        self.mask[t] = mask;
        self.notice[t] = self.set(SHARED) & !mask != 0;
    }
}

/// A machine with [`BUF`] mapped and a second thread; the two tids.
fn machine() -> (Machine, [Tid; 2]) {
    let mut m = Machine::new(4);
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_FIXED;
    let prot = mmap::PROT_READ | mmap::PROT_WRITE;
    assert_eq!(
        m.sys(SYS_MMAP, [BUF, 4096, prot, flags, usize::MAX, 0]),
        Ok(BUF)
    );
    put(&mut m, ZERO_TIMEOUT, &[0; 16]);
    let second = m.thread();
    let first = m.init;
    (m, [first, second])
}

/// Writes `bytes` at `at` in the process's memory.
fn put(m: &mut Machine, at: usize, bytes: &[u8]) {
    let pid = m.pid_of(m.init);
    let mut space = m.table.space_mut(pid).unwrap();
    space.copy_to_user(at as u64, bytes).unwrap();
}

/// Reads the u64 at `at` in the process's memory.
fn get(m: &mut Machine, at: usize) -> u64 {
    let pid = m.pid_of(m.init);
    let mut b = [0u8; 8];
    let mut space = m.table.space_mut(pid).unwrap();
    space.copy_from_user(at as u64, &mut b).unwrap();
    u64::from_le_bytes(b)
}

/// rt_sigaction(sig, disp) from the first thread.
fn set_action(m: &mut Machine, sig: i32, disp: Disp) {
    let (handler, flags, restorer) = match disp {
        Disp::Handler => (HANDLER, SA_RESTORER, RESTORER),
        Disp::Ignore => (signal::SIG_IGN, 0, 0),
        Disp::Default => (signal::SIG_DFL, 0, 0),
    };
    let mut act = [0u8; 32];
    for (i, w) in [handler, flags, restorer, 0].iter().enumerate() {
        act[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    put(m, ACT, &act);
    let r = m.sys(SYS_RT_SIGACTION, [sig as usize, ACT, 0, 8, 0, 0]);
    assert_eq!(r, Ok(0));
}

/// rt_sigprocmask(how, set) on `tid`.
fn set_mask(m: &mut Machine, tid: Tid, how: usize, set: u64) {
    put(m, SET, &set.to_le_bytes());
    let r = m.call(tid, SYS_RT_SIGPROCMASK, [how, SET, 0, 8, 0, 0]);
    assert_eq!(r, Ok(0));
}

/// rt_sigtimedwait(set, info, {0, 0}) on `tid`: the signal taken and its si_value.
fn wait_zero(m: &mut Machine, tid: Tid, set: u64) -> Option<(i32, u64)> {
    put(m, SET, &set.to_le_bytes());
    let r = m.call(tid, SYS_RT_SIGTIMEDWAIT, [SET, INFO, ZERO_TIMEOUT, 8, 0, 0]);
    match r {
        Ok(sig) => {
            assert_eq!(get(m, INFO) as u32, sig as u32, "si_signo");
            Some((sig as i32, get(m, INFO + 24)))
        }
        Err(e) => {
            assert_eq!(e, EAGAIN);
            None
        }
    }
}

/// rt_sigqueueinfo(pid, sig, {SI_QUEUE, si_value: value}) from `tid`.
fn sigqueue(m: &mut Machine, tid: Tid, sig: i32, value: u64) {
    let mut info = [0u8; 128];
    info[0..4].copy_from_slice(&sig.to_le_bytes());
    info[8..12].copy_from_slice(&signal::SI_QUEUE.to_le_bytes());
    info[24..32].copy_from_slice(&value.to_le_bytes());
    put(m, QINFO, &info);
    let pid = m.pid_of(m.init).0 as usize;
    let r = m.call(
        tid,
        SYS_RT_SIGQUEUEINFO,
        [pid, sig as usize, QINFO, 0, 0, 0],
    );
    assert_eq!(r, Ok(0));
}

/// What delivery on `tid` takes next (signal and si_value).
fn deliver(m: &mut Machine, tid: Tid) -> Option<(i32, u64)> {
    signal::take_next(&mut m.table, tid).map(|i| (i.sig, i.value))
}

/// rt_sigpending on `tid`.
fn pending(m: &mut Machine, tid: Tid) -> u64 {
    assert_eq!(
        m.call(tid, SYS_RT_SIGPENDING, [PENDING, 8, 0, 0, 0, 0]),
        Ok(0)
    );
    get(m, PENDING)
}

/// Runs `op` on the machine and the model (`n` numbers the sends, as si_value);
/// false once the process is dead.
fn step(m: &mut Machine, tids: [Tid; 2], model: &mut Model, op: &Op, n: u64) -> bool {
    let pid = m.pid_of(m.init);
    let sent = match *op {
        Op::Action(sig, disp) => {
            set_action(m, sig, disp);
            model.disp[sig as usize] = disp;
            // An ignoring action discards the signal where it is pending.
            if disp == Disp::Ignore || (disp == Disp::Default && sig == 17) {
                for q in &mut model.queues {
                    q.retain(|(s, _)| *s != sig);
                }
            }
            None
        }
        Op::Mask(t, how, pick) => {
            set_mask(m, tids[t], how, sigset(pick));
            let mask = match how {
                0 => model.mask[t] | sigset(pick),
                1 => model.mask[t] & !sigset(pick),
                _ => sigset(pick),
            };
            model.set_mask(t, mask);
            None
        }
        Op::Kill(t, sig) => {
            let r = m.call(
                tids[t],
                SYS_KILL,
                [pid.0 as usize, sig as usize, 0, 0, 0, 0],
            );
            assert_eq!(r, Ok(0));
            Some(model.send(SHARED, sig, 0))
        }
        Op::Tgkill(from, to, sig) => {
            let a = [pid.0 as usize, tids[to].0 as usize, sig as usize, 0, 0, 0];
            assert_eq!(m.call(tids[from], SYS_TGKILL, a), Ok(0));
            Some(model.send(to, sig, 0))
        }
        Op::Sigqueue(t, sig) => {
            sigqueue(m, tids[t], sig, n);
            Some(model.send(SHARED, sig, n))
        }
        Op::Wait(t, pick) => {
            let want = model.take(t, sigset(pick), true);
            assert_eq!(wait_zero(m, tids[t], sigset(pick)), want, "rt_sigtimedwait");
            None
        }
        Op::Deliver(t) => {
            let want = model.take(t, !model.mask[t], model.notice[t]);
            assert_eq!(deliver(m, tids[t]), want, "delivery");
            None
        }
    };
    if sent == Some(Sent::Kills) {
        let p = m.table.process(pid);
        assert!(p.is_none_or(|p| p.state != ProcessState::Alive), "killed");
        return false;
    }
    let shared = m.table.process(pid).unwrap().shared_pending.set();
    assert_eq!(shared, model.set(SHARED), "shared pending");
    for (t, tid) in tids.into_iter().enumerate() {
        let own = m.table.thread(tid).unwrap().pending.set();
        assert_eq!(own, model.set(t), "pending, thread {t}");
        let reported = (model.set(t) | model.set(SHARED)) & model.mask[t];
        assert_eq!(pending(m, tid), reported, "rt_sigpending, thread {t}");
    }
    true
}

/// Unblocks everything and delivers until nothing is left: what is left must be
/// exactly what the model still owes, in its order.
fn drain(m: &mut Machine, tids: [Tid; 2], model: &mut Model) {
    for (t, tid) in tids.into_iter().enumerate() {
        set_mask(m, tid, 2, 0);
        model.set_mask(t, 0);
        while let Some(want) = model.take(t, !0, true) {
            assert_eq!(deliver(m, tid), Some(want), "drain");
        }
        assert_eq!(deliver(m, tid), None);
    }
}

/// Reaps the killed process `pid` (no parent waits for it) and checks that every
/// frame came back ([`Machine::shut_down`] needs a live first thread).
fn reap_killed(mut m: Machine, pid: Pid) {
    let _ = m.table.reap_process(pid); // a parentless process may be gone already
    assert_eq!(m.table.process_count(), 0);
    assert_eq!(m.frames.free(), m.start_free, "every frame back");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every send the kernel accepted is taken exactly once (delivery or
    /// rt_sigtimedwait), a blocked signal is never delivered, an ignored unblocked
    /// one never taken, a standard signal sent twice while pending taken once, a
    /// real-time one once per send and in order (its si_value with it); the pending
    /// sets (own, shared, rt_sigpending's) match the model after every step.
    #[test]
    fn signals_are_taken_once_as_the_model_says(
        first in prop::array::uniform5(disp()),
        ops in prop::collection::vec(op(), 1..64),
    ) {
        let (mut m, tids) = machine();
        let pid = m.pid_of(m.init);
        let mut model = Model {
            mask: [0; 2],
            queues: [Vec::new(), Vec::new(), Vec::new()],
            notice: [false; 2],
            disp: [Disp::Default; 65],
        };
        let setup = SIGS.iter().zip(first).map(|(s, d)| Op::Action(*s, d));
        let ops: Vec<Op> = setup.chain(ops).collect();
        let alive = ops
            .iter()
            .zip(1u64..)
            .all(|(op, n)| step(&mut m, tids, &mut model, op, n));
        if alive {
            drain(&mut m, tids, &mut model);
            m.shut_down();
        } else {
            reap_killed(m, pid);
        }
    }
}

/// SIGRTMIN+3 sent three times while blocked is queued three times, each with its
/// si_value, taken in order; SIGUSR1 sent twice is pending once.
#[test]
fn realtime_signals_are_queued_and_standard_ones_coalesce() {
    let (mut m, tids) = machine();
    set_mask(&mut m, tids[0], 0, signal::bit(35) | signal::bit(10));
    set_mask(&mut m, tids[1], 0, signal::bit(35) | signal::bit(10));
    for v in 1..=3 {
        sigqueue(&mut m, tids[0], 35, v);
        sigqueue(&mut m, tids[1], 10, v);
    }
    let both = signal::bit(35) | signal::bit(10);
    assert_eq!(wait_zero(&mut m, tids[1], both), Some((10, 1)));
    assert_eq!(wait_zero(&mut m, tids[1], both), Some((35, 1)));
    assert_eq!(wait_zero(&mut m, tids[0], both), Some((35, 2)));
    assert_eq!(wait_zero(&mut m, tids[0], both), Some((35, 3)));
    assert_eq!(wait_zero(&mut m, tids[0], both), None);
    m.shut_down();
}

/// The queue is bounded by RLIMIT_SIGPENDING: rt_sigqueueinfo fails with EAGAIN when
/// it is full, kill of a real-time signal still makes it pending (its siginfo lost).
#[test]
fn a_full_signal_queue_refuses_sigqueue() {
    let (mut m, tids) = machine();
    set_mask(&mut m, tids[0], 0, signal::bit(34));
    set_mask(&mut m, tids[1], 0, signal::bit(34));
    put(&mut m, SET, &[2u64, 2u64].map(u64::to_le_bytes).concat());
    let setrlimit = [11, SET, 0, 0, 0, 0];
    assert_eq!(m.sys(SYS_SETRLIMIT, setrlimit), Ok(0));
    sigqueue(&mut m, tids[0], 34, 1);
    sigqueue(&mut m, tids[0], 34, 2);
    let pid = m.pid_of(m.init).0 as usize;
    let r = m.sys(SYS_RT_SIGQUEUEINFO, [pid, 34, QINFO, 0, 0, 0]);
    assert_eq!(r, Err(EAGAIN));
    assert_eq!(m.sys(SYS_KILL, [pid, 34, 0, 0, 0, 0]), Ok(0));
    let p = m.table.process(Pid(pid as u32)).unwrap();
    assert_eq!(
        p.shared_pending.queued(),
        2,
        "the kill's siginfo is not queued"
    );
    m.shut_down();
}

/// SS_AUTODISARM: sigaltstack reports it with the stack; delivering a handler
/// disarms the stack (SS_DISABLE) while the frame keeps the stack_t as given, and
/// rt_sigreturn's restore arms it again.
#[test]
fn autodisarm_disables_the_alternate_stack_until_sigreturn() {
    let (mut m, tids) = machine();
    let flags = u64::from(misc::SS_AUTODISARM);
    let ss = [BUF as u64 + 0x800, flags, 0x800];
    put(&mut m, SET, &ss.map(u64::to_le_bytes).concat());
    assert_eq!(m.sys(SYS_SIGALTSTACK, [SET, PENDING, 0, 0, 0, 0]), Ok(0));
    assert_eq!(
        get(&mut m, PENDING + 8),
        u64::from(misc::SS_DISABLE),
        "none before"
    );
    assert_eq!(m.sys(SYS_SIGALTSTACK, [0, PENDING, 0, 0, 0, 0]), Ok(0));
    assert_eq!(get(&mut m, PENDING + 8), flags, "armed, with the flag");
    let t = m.table.thread_mut(tids[0]).unwrap();
    let saved = misc::saved_alt_stack(t);
    assert_eq!(saved, (BUF as u64 + 0x800, misc::SS_AUTODISARM, 0x800));
    misc::disarm_alt_stack(t);
    assert_eq!(t.alt_stack, None);
    assert_eq!(misc::alt_stack_of(t, 0).1, misc::SS_DISABLE);
    // The handler runs on the (disarmed) stack: the restore is not refused.
    let on_it = BUF as u64 + 0x900;
    assert_eq!(misc::set_alt_stack(t, on_it, saved), Ok(()));
    assert_eq!(
        misc::alt_stack_of(t, on_it).1,
        misc::SS_AUTODISARM,
        "never SS_ONSTACK"
    );
    // Without the flag, a stack in use cannot be changed.
    misc::set_alt_stack(t, 0, (BUF as u64 + 0x800, 0, 0x800)).unwrap();
    assert_eq!(misc::set_alt_stack(t, on_it, saved), Err(EPERM));
    m.shut_down();
}

//! Property tests of the signal state machine, driven through `dispatch` as a user
//! program drives it: random sequences of rt_sigaction (handler, SIG_IGN, SIG_DFL),
//! rt_sigprocmask, kill, tgkill, rt_sigtimedwait with a zero timeout, and delivery
//! (the task layer's `Thread::take_pending`) on one process with two threads, for
//! SIGUSR1, SIGUSR2, SIGCHLD and SIGRTMIN+1, checked against a small model.
//!
//! What the model says (what this kernel does): pending signals are one bit per
//! signal per thread, so a signal sent again while pending is taken once, the
//! real-time SIGRTMIN+1 included (this kernel does not queue real-time signals,
//! unlike Linux). kill from a thread goes to that thread, tgkill to the named one.
//! A signal sent while blocked, or while it has a handler, becomes pending and is
//! taken exactly once, by delivery (only while unblocked) or by rt_sigtimedwait;
//! one sent while ignored and unblocked is dropped; SIG_DFL and unblocked, SIGCHLD
//! is dropped and the others end the process. Changing an action to one that
//! ignores the signal (SIG_IGN, or SIG_DFL for SIGCHLD) discards it where it is
//! pending, as on Linux.

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
const HANDLER: u64 = 0x40_1000;
const RESTORER: u64 = 0x40_2000;
const SA_RESTORER: u64 = 0x0400_0000;
const SIGS: [i32; 4] = [10, 12, 17, 35];

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
        (0..2usize, 0..3usize, 0..16u8).prop_map(|(t, h, s)| Op::Mask(t, h, s)),
        (0..2usize, sig.clone()).prop_map(|(t, s)| Op::Kill(t, s)),
        (0..2usize, 0..2usize, sig).prop_map(|(f, t, s)| Op::Tgkill(f, t, s)),
        (0..2usize, 0..16u8).prop_map(|(t, s)| Op::Wait(t, s)),
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

/// What the kernel should hold: each thread's mask and pending set, the actions.
struct Model {
    mask: [u64; 2],
    pending: [u64; 2],
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
    fn send(&mut self, t: usize, sig: i32) -> Sent {
        let bit = signal::bit(sig);
        let blocked = self.mask[t] & bit != 0;
        let sent = match self.disp[sig as usize] {
            _ if blocked => Sent::Pending,
            Disp::Handler => Sent::Pending,
            Disp::Ignore => Sent::Dropped,
            Disp::Default if sig == signal::SIGCHLD => Sent::Dropped,
            Disp::Default => Sent::Kills,
        };
        if sent == Sent::Pending {
            self.pending[t] |= bit;
        }
        sent
    }

    /// The lowest pending signal of `set` on thread `t`, taken.
    fn take(&mut self, t: usize, set: u64) -> Option<i32> {
        let ready = self.pending[t] & set;
        let sig = (ready != 0).then(|| ready.trailing_zeros() as i32 + 1)?;
        self.pending[t] &= !signal::bit(sig);
        Some(sig)
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
    let space = m.table.space_mut(pid).unwrap();
    space.copy_to_user(at as u64, bytes).unwrap();
}

/// Reads the u64 at `at` in the process's memory.
fn get(m: &mut Machine, at: usize) -> u64 {
    let pid = m.pid_of(m.init);
    let mut b = [0u8; 8];
    let space = m.table.space_mut(pid).unwrap();
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

/// rt_sigtimedwait(set, info, {0, 0}) on `tid`: the signal taken, if any.
fn wait_zero(m: &mut Machine, tid: Tid, set: u64) -> Option<i32> {
    put(m, SET, &set.to_le_bytes());
    let r = m.call(tid, SYS_RT_SIGTIMEDWAIT, [SET, INFO, ZERO_TIMEOUT, 8, 0, 0]);
    match r {
        Ok(sig) => {
            assert_eq!(get(m, INFO) as u32, sig as u32, "si_signo");
            Some(sig as i32)
        }
        Err(e) => {
            assert_eq!(e, EAGAIN);
            None
        }
    }
}

/// rt_sigpending on `tid`.
fn pending(m: &mut Machine, tid: Tid) -> u64 {
    assert_eq!(
        m.call(tid, SYS_RT_SIGPENDING, [PENDING, 8, 0, 0, 0, 0]),
        Ok(0)
    );
    get(m, PENDING)
}

/// Runs `op` on the machine and the model; false once the process is dead.
fn step(m: &mut Machine, tids: [Tid; 2], model: &mut Model, op: &Op) -> bool {
    let pid = m.pid_of(m.init).0 as usize;
    let sent = match *op {
        Op::Action(sig, disp) => {
            set_action(m, sig, disp);
            model.disp[sig as usize] = disp;
            // An ignoring action discards the signal where it is pending.
            if disp == Disp::Ignore || (disp == Disp::Default && sig == 17) {
                let bit = 1u64 << (sig - 1);
                model.pending[0] &= !bit;
                model.pending[1] &= !bit;
            }
            None
        }
        Op::Mask(t, how, pick) => {
            set_mask(m, tids[t], how, sigset(pick));
            model.mask[t] = match how {
                0 => model.mask[t] | sigset(pick),
                1 => model.mask[t] & !sigset(pick),
                _ => sigset(pick),
            };
            None
        }
        Op::Kill(t, sig) => {
            let r = m.call(tids[t], SYS_KILL, [pid, sig as usize, 0, 0, 0, 0]);
            assert_eq!(r, Ok(0));
            Some(model.send(t, sig))
        }
        Op::Tgkill(from, to, sig) => {
            let a = [pid, tids[to].0 as usize, sig as usize, 0, 0, 0];
            assert_eq!(m.call(tids[from], SYS_TGKILL, a), Ok(0));
            Some(model.send(to, sig))
        }
        Op::Wait(t, pick) => {
            let want = model.take(t, sigset(pick));
            assert_eq!(wait_zero(m, tids[t], sigset(pick)), want, "rt_sigtimedwait");
            None
        }
        Op::Deliver(t) => {
            let want = model.take(t, !model.mask[t]);
            let got = m.table.thread_mut(tids[t]).unwrap().take_pending();
            assert_eq!(got, want, "delivery");
            None
        }
    };
    if sent == Some(Sent::Kills) {
        let p = m.table.process(Pid(pid as u32));
        assert!(p.is_none_or(|p| p.state != ProcessState::Alive), "killed");
        return false;
    }
    for (t, tid) in tids.into_iter().enumerate() {
        assert_eq!(pending(m, tid), model.pending[t], "pending, thread {t}");
    }
    true
}

/// Unblocks everything and delivers until nothing is left: what is left must be
/// exactly what the model still owes.
fn drain(m: &mut Machine, tids: [Tid; 2], model: &mut Model) {
    for (t, tid) in tids.into_iter().enumerate() {
        set_mask(m, tid, 2, 0);
        model.mask[t] = 0;
        while let Some(want) = model.take(t, !0) {
            let got = m.table.thread_mut(tid).unwrap().take_pending();
            assert_eq!(got, Some(want), "drain");
        }
        assert_eq!(m.table.thread_mut(tid).unwrap().take_pending(), None);
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
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every send the kernel accepted is taken exactly once (delivery or
    /// rt_sigtimedwait), a blocked signal is never delivered, an ignored unblocked
    /// one never taken, a signal sent twice while pending taken once; the pending
    /// sets rt_sigpending reports match the model after every step.
    #[test]
    fn signals_are_taken_once_as_the_model_says(
        first in prop::array::uniform4(disp()),
        ops in prop::collection::vec(op(), 1..48),
    ) {
        let (mut m, tids) = machine();
        let pid = m.pid_of(m.init);
        let mut model = Model { mask: [0; 2], pending: [0; 2], disp: [Disp::Default; 65] };
        let setup = SIGS.iter().zip(first).map(|(s, d)| Op::Action(*s, d));
        let ops: Vec<Op> = setup.chain(ops).collect();
        let alive = ops.iter().all(|op| step(&mut m, tids, &mut model, op));
        if alive {
            drain(&mut m, tids, &mut model);
            m.shut_down();
        } else {
            reap_killed(m, pid);
        }
    }
}

/// SIGRTMIN+1 sent twice while blocked is pending once: rt_sigtimedwait takes it,
/// then finds nothing (Linux would queue both).
#[test]
fn realtime_signals_are_not_queued() {
    let (mut m, tids) = machine();
    set_mask(&mut m, tids[0], 0, signal::bit(35));
    let pid = m.pid_of(m.init).0 as usize;
    for _ in 0..2 {
        assert_eq!(m.sys(SYS_KILL, [pid, 35, 0, 0, 0, 0]), Ok(0));
    }
    assert_eq!(wait_zero(&mut m, tids[0], signal::bit(35)), Some(35));
    assert_eq!(wait_zero(&mut m, tids[0], signal::bit(35)), None);
    m.shut_down();
}

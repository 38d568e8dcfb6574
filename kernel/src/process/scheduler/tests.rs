use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap as Map, BTreeSet as Set};

fn t(n: u32) -> Tid {
    Tid(n)
}

#[test]
fn strict_priority_then_fifo() {
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Low).unwrap();
    s.add(t(2), Priority::Normal).unwrap();
    s.add(t(3), Priority::High).unwrap();
    s.add(t(4), Priority::High).unwrap();
    assert_eq!(s.schedule(), Some(t(3)));
    assert_eq!(s.schedule(), Some(t(4)));
    assert_eq!(s.schedule(), Some(t(3)), "round robin within High");
    s.remove(t(3)).unwrap();
    s.remove(t(4)).unwrap();
    assert_eq!(s.current(), None);
    assert_eq!(s.schedule(), Some(t(2)));
    assert_eq!(
        s.schedule(),
        Some(t(2)),
        "alone at the top level: keeps running"
    );
    s.check_invariants().unwrap();
}

#[test]
fn seed_order_add_schedule_yield_block_unblock_remove() {
    let mut s = Scheduler::new();
    s.add(t(7), Priority::Normal).unwrap();
    assert_eq!(s.schedule(), Some(t(7)));
    assert_eq!(s.yield_now(), Some(t(7)));
    assert_eq!(s.block_current(), Ok(None));
    assert_eq!(s.state(t(7)), Some(ThreadState::Blocked));
    assert_eq!(s.schedule(), None, "blocked threads never run");
    s.unblock(t(7)).unwrap();
    assert_eq!(s.state(t(7)), Some(ThreadState::Ready));
    s.remove(t(7)).unwrap();
    assert!(s.is_empty());
    s.add(t(1), Priority::High).unwrap();
    s.add(t(2), Priority::Normal).unwrap();
    s.add(t(3), Priority::Low).unwrap();
    assert_eq!(s.schedule(), Some(t(1)));
    s.check_invariants().unwrap();
}

#[test]
fn bad_requests_are_typed_errors() {
    let mut s = Scheduler::new();
    assert_eq!(s.block_current(), Err(SchedError::NoCurrentThread));
    assert_eq!(s.sleep_current_until(5), Err(SchedError::NoCurrentThread));
    assert_eq!(s.unblock(t(9)), Err(SchedError::UnknownThread(t(9))));
    assert_eq!(s.remove(t(9)), Err(SchedError::UnknownThread(t(9))));
    s.add(t(1), Priority::Low).unwrap();
    assert_eq!(
        s.add(t(1), Priority::High),
        Err(SchedError::AlreadyAdded(t(1)))
    );
    assert_eq!(s.unblock(t(1)), Err(SchedError::NotWaiting(t(1))));
    s.schedule();
    assert_eq!(s.unblock(t(1)), Err(SchedError::NotWaiting(t(1))));
    s.check_invariants().unwrap();
}

#[test]
fn time_slices_rotate_equal_priorities() {
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Normal).unwrap();
    s.add(t(2), Priority::Normal).unwrap();
    assert_eq!(s.schedule(), Some(t(1)));
    for _ in 0..SLICE_TICKS - 1 {
        assert_eq!(s.timer_tick(), Some(t(1)));
    }
    assert_eq!(s.timer_tick(), Some(t(2)), "slice used up");
    for _ in 0..SLICE_TICKS - 1 {
        assert_eq!(s.timer_tick(), Some(t(2)));
    }
    assert_eq!(s.timer_tick(), Some(t(1)));
}

#[test]
fn waking_higher_priority_preempts_at_next_tick() {
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Low).unwrap();
    s.add(t(2), Priority::High).unwrap();
    assert_eq!(s.schedule(), Some(t(2)));
    assert_eq!(s.block_current(), Ok(Some(t(1))));
    s.unblock(t(2)).unwrap();
    assert_eq!(s.timer_tick(), Some(t(2)));
}

#[test]
fn sleepers_wake_at_their_tick() {
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Normal).unwrap();
    s.add(t(2), Priority::Low).unwrap();
    assert_eq!(s.schedule(), Some(t(1)));
    assert_eq!(s.sleep_current_until(3), Ok(Some(t(2))));
    assert_eq!(s.state(t(1)), Some(ThreadState::Sleeping));
    assert_eq!(s.timer_tick(), Some(t(2)));
    assert_eq!(s.timer_tick(), Some(t(2)));
    assert_eq!(
        s.timer_tick(),
        Some(t(1)),
        "woken at tick 3 and preempts Low"
    );
    s.check_invariants().unwrap();
    // unblock cuts a sleep short; remove forgets a sleeper.
    assert_eq!(s.sleep_current_until(100), Ok(Some(t(2))));
    s.unblock(t(1)).unwrap();
    assert_eq!(s.state(t(1)), Some(ThreadState::Ready));
    assert_eq!(s.schedule(), Some(t(1)));
    assert_eq!(s.sleep_current_until(100), Ok(Some(t(2))));
    s.remove(t(1)).unwrap();
    s.check_invariants().unwrap();
}

#[test]
fn aging_runs_low_within_a_bound_under_constant_high_load() {
    let mut s = Scheduler::new();
    for i in 1..=3 {
        s.add(t(i), Priority::High).unwrap();
    }
    s.add(t(10), Priority::Normal).unwrap();
    s.add(t(20), Priority::Low).unwrap();
    s.schedule();
    let bound = 2 * AGING_TICKS + 4 * SLICE_TICKS as u64 + 2;
    let mut ran = Set::new();
    for _ in 0..bound {
        ran.insert(s.timer_tick().unwrap());
        s.check_invariants().unwrap();
    }
    assert!(ran.contains(&t(20)), "Low ran within {bound} ticks");
    assert!(ran.contains(&t(10)));
    assert_eq!(
        s.effective_priority(t(20)),
        Some(Priority::Low),
        "boost lasts one slice"
    );
}

#[test]
fn fresh_high_thread_beats_aged_threads() {
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Low).unwrap();
    s.add(t(2), Priority::High).unwrap();
    s.schedule();
    for _ in 0..AGING_TICKS {
        s.tick();
    }
    s.add(t(3), Priority::High).unwrap();
    s.remove(t(2)).unwrap();
    assert_eq!(s.schedule(), Some(t(3)));
}

#[test]
fn global_facade_follows_the_seed() {
    let _g = crate::process::tests::GLOBAL_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    init_scheduler();
    let a = Tid(1_000_001);
    let mut sched = SCHEDULER.lock();
    sched.add(a, Priority::Normal).unwrap();
    drop(sched);
    assert_eq!(schedule(), Some(a));
    assert_eq!(current(), Some(a));
    assert_eq!(yield_cpu(), Some(a));
    assert_eq!(block_current_thread(), Ok(None));
    assert_eq!(unblock_thread(a), Ok(()));
    assert_eq!(remove_thread(a), Ok(()));
    assert_eq!(
        add_thread(Tid(999_999_999)),
        Err(SchedError::UnknownThread(Tid(999_999_999)))
    );
    assert!(!tick());
    assert_eq!(timer_tick(), None);
    assert_eq!(now(), 2);
    init_scheduler();
}

// ---- property test: random operations against a simple model ----

#[derive(Debug, Clone)]
enum Op {
    Add(u32, u8),
    Schedule,
    Block,
    Unblock(u32),
    Remove(u32),
    Tick,
    Sleep(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..12u32, 0..3u8).prop_map(|(t, p)| Op::Add(t, p)),
        Just(Op::Schedule),
        Just(Op::Block),
        (0..12u32).prop_map(Op::Unblock),
        (0..12u32).prop_map(Op::Remove),
        Just(Op::Tick),
        Just(Op::Tick),
        (1..10u8).prop_map(Op::Sleep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Never a blocked, sleeping or unknown thread picked; never queued twice
    /// (check_invariants); the model of states agrees.
    #[test]
    fn scheduler_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut s = Scheduler::new();
        let mut model: Map<u32, ThreadState> = Map::new();
        let mut wakes: Map<u32, u64> = Map::new();
        for op in ops {
            match op {
                Op::Add(n, p) => {
                    let r = s.add(t(n), Priority::from_level(p as usize).unwrap());
                    prop_assert_eq!(r.is_ok(), !model.contains_key(&n));
                    model.entry(n).or_insert(ThreadState::Ready);
                }
                Op::Schedule | Op::Tick => {
                    let before = s.current();
                    let picked = if matches!(op, Op::Tick) { s.timer_tick() } else { s.schedule() };
                    let now = s.now();
                    wakes.retain(|n, w| {
                        if *w <= now { model.insert(*n, ThreadState::Ready); }
                        *w > now
                    });
                    if let Some(b) = before { model.insert(b.0, ThreadState::Ready); }
                    if let Some(p) = picked {
                        prop_assert!(model.contains_key(&p.0));
                        let st = model[&p.0];
                        prop_assert!(st == ThreadState::Ready || st == ThreadState::Running, "picked a {:?} thread", st);
                        model.insert(p.0, ThreadState::Running);
                    }
                }
                Op::Block => {
                    let cur = s.current();
                    prop_assert_eq!(s.block_current().is_ok(), cur.is_some());
                    if let Some(c) = cur { model.insert(c.0, ThreadState::Blocked); }
                    if let Some(n) = s.current() { model.insert(n.0, ThreadState::Running); }
                }
                Op::Sleep(d) => {
                    let cur = s.current();
                    let wake = s.now() + d as u64;
                    prop_assert_eq!(s.sleep_current_until(wake).is_ok(), cur.is_some());
                    if let Some(c) = cur { model.insert(c.0, ThreadState::Sleeping); wakes.insert(c.0, wake); }
                    if let Some(n) = s.current() { model.insert(n.0, ThreadState::Running); }
                }
                Op::Unblock(n) => {
                    let waiting = matches!(model.get(&n), Some(ThreadState::Blocked | ThreadState::Sleeping));
                    prop_assert_eq!(s.unblock(t(n)).is_ok(), waiting);
                    if waiting { model.insert(n, ThreadState::Ready); wakes.remove(&n); }
                }
                Op::Remove(n) => {
                    prop_assert_eq!(s.remove(t(n)).is_ok(), model.remove(&n).is_some());
                    wakes.remove(&n);
                }
            }
            s.check_invariants().unwrap();
            for (n, st) in &model {
                prop_assert_eq!(s.state(t(*n)), Some(*st), "thread {}", n);
            }
        }
    }

    /// Every ready thread eventually runs: with no blocking, within a bounded number
    /// of ticks every thread of every level has been picked.
    #[test]
    fn every_ready_thread_eventually_runs(prios in proptest::collection::vec(0..3u8, 1..12)) {
        let mut s = Scheduler::new();
        for (i, p) in prios.iter().enumerate() {
            s.add(t(i as u32), Priority::from_level(*p as usize).unwrap()).unwrap();
        }
        s.schedule();
        let n = prios.len() as u64;
        let bound = 2 * AGING_TICKS + 2 * (n + 1) * SLICE_TICKS as u64 * (n + 1);
        let mut ran = Set::new();
        for _ in 0..bound {
            if let Some(c) = s.timer_tick() { ran.insert(c); }
        }
        prop_assert_eq!(ran.len(), prios.len());
    }
}

/// Applies one random operation (the model test's alphabet) to `s`.
fn apply(s: &mut Scheduler, op: &Op) {
    let _ = match *op {
        Op::Add(n, p) => s
            .add(t(n), Priority::from_level(p as usize).unwrap())
            .map(|_| ()),
        Op::Schedule => s.schedule().map_or(Ok(()), |_| Ok(())),
        Op::Tick => s.timer_tick().map_or(Ok(()), |_| Ok(())),
        Op::Block => s.block_current().map(|_| ()),
        Op::Sleep(d) => s.sleep_current_until(s.now() + d as u64).map(|_| ()),
        Op::Unblock(n) => s.unblock(t(n)).map(|_| ()),
        Op::Remove(n) => s.remove(t(n)).map(|_| ()),
    };
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// After any history of adds, blocks, sleeps, wake-ups and removals: while only
    /// the timer runs, a blocked thread is never picked, no thread is queued twice,
    /// and every thread that is not blocked (ready, running, or asleep until a tick
    /// that comes) runs within a bounded number of ticks.
    #[test]
    fn after_any_history_ready_threads_run_and_blocked_never(
        ops in proptest::collection::vec(op(), 1..150)
    ) {
        let mut s = Scheduler::new();
        for op in &ops {
            apply(&mut s, op);
            s.check_invariants().unwrap();
        }
        let threads: Vec<Tid> = (0..12).map(t).filter(|x| s.state(*x).is_some()).collect();
        let blocked: Set<Tid> = threads.iter().copied()
            .filter(|x| s.state(*x) == Some(ThreadState::Blocked)).collect();
        let n = threads.len() as u64;
        let bound = 10 + 2 * AGING_TICKS + 2 * (n + 1) * SLICE_TICKS as u64 * (n + 1);
        let mut ran = Set::new();
        ran.extend(s.current());
        for _ in 0..bound {
            if let Some(c) = s.timer_tick() {
                prop_assert!(!blocked.contains(&c), "blocked thread {:?} ran", c);
                ran.insert(c);
            }
            s.check_invariants().unwrap();
        }
        for x in threads.iter().filter(|x| !blocked.contains(x)) {
            prop_assert!(ran.contains(x), "thread {:?} never ran in {} ticks", x, bound);
        }
    }
}

#[test]
fn wait_queue_wakeups_are_applied_at_the_next_pick_and_never_lost() {
    use crate::process::wait_queue::{WaitQueue, WakeReason};
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Normal).unwrap();
    s.add(t(2), Priority::Normal).unwrap();
    assert_eq!(s.schedule(), Some(t(1)));
    let q = WaitQueue::new();
    q.add(&s.waiter(t(1))).unwrap();
    // Woken after joining but before blocking: the block returns at once.
    q.wake_all();
    s.apply_wakeups();
    assert_eq!(s.block_current(), Ok(Some(t(1))), "the wake-up is not lost");
    assert_eq!(s.state(t(1)), Some(ThreadState::Running));
    // Blocked, then woken: ready at the next pick, with the reason.
    assert_eq!(s.block_current(), Ok(Some(t(2))));
    q.wake_all();
    assert_eq!(s.state(t(1)), Some(ThreadState::Blocked), "applied later");
    assert_eq!(s.schedule(), Some(t(1)), "applied before the pick");
    assert_eq!(s.take_wake_reason(t(1)), Some(WakeReason::Woken));
    // A sleeper with a deadline times out; a signal interrupts a blocked thread.
    assert_eq!(s.sleep_current_until(s.now() + 2), Ok(Some(t(2))));
    s.tick();
    s.tick();
    assert_eq!(s.state(t(1)), Some(ThreadState::Ready));
    assert_eq!(s.take_wake_reason(t(1)), Some(WakeReason::TimedOut));
    assert_eq!(s.block_current(), Ok(Some(t(1))));
    s.interrupt(t(2));
    assert_eq!(s.take_wake_reason(t(2)), Some(WakeReason::Interrupted));
    assert_eq!(s.switches(t(2)).unwrap().0, 1);
    s.check_invariants().unwrap();
}

#[test]
fn a_sleeper_whose_time_came_runs_before_the_spinners_of_its_level() {
    let mut s = Scheduler::new();
    for n in 1..=4 {
        s.add(t(n), Priority::Normal).unwrap();
    }
    assert_eq!(s.schedule(), Some(t(1)));
    assert_eq!(s.sleep_current_until(1), Ok(Some(t(2))));
    // Threads 2, 3 and 4 spin; thread 1's deadline is the next tick.
    assert_eq!(
        s.timer_tick(),
        Some(t(1)),
        "woken at its deadline, it preempts"
    );
    assert_eq!(s.take_wake_reason(t(1)), Some(WakeReason::TimedOut));
    assert_eq!(s.timer_tick(), Some(t(1)), "and keeps its slice");
    s.check_invariants().unwrap();
}

#[test]
fn ticks_follow_the_clock_none_lost_none_doubled() {
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Normal).unwrap();
    s.add(t(2), Priority::Normal).unwrap();
    assert_eq!(s.schedule(), Some(t(1)));
    assert_eq!(s.sleep_current_until(30), Ok(Some(t(2))));
    s.timer_tick_at(1000);
    assert_eq!(s.now(), 1, "the first interrupt is one tick");
    s.timer_tick_at(1000);
    assert_eq!(s.now(), 1, "an early interrupt accounts none");
    // Interrupts were masked for 40 ticks: all are accounted at once, and the
    // sleeper whose deadline passed meanwhile is ready to run.
    assert_eq!(s.timer_tick_at(1040), Some(t(1)));
    assert_eq!(s.now(), 41);
    s.check_invariants().unwrap();
}

#[test]
fn new_threads_spread_over_the_online_cpus() {
    let mut s = Scheduler::new();
    s.set_online(1);
    s.set_online(2);
    for n in 1..=6 {
        s.add(t(n), Priority::Normal).unwrap();
    }
    assert_eq!((s.load_on(0), s.load_on(1), s.load_on(2)), (2, 2, 2));
    assert_eq!(s.take_kicks(), 0b110, "CPUs 1 and 2 were told");
    let picked: Vec<_> = (0..3).map(|c| s.schedule_on(c).unwrap()).collect();
    assert_eq!(
        picked.iter().collect::<Set<_>>().len(),
        3,
        "three threads at once"
    );
    for (c, &tid) in picked.iter().enumerate() {
        assert_eq!(s.current_on(c), Some(tid));
        assert_eq!(s.cpu_of(tid), Some(c));
    }
    s.check_invariants().unwrap();
}

#[test]
fn an_idle_cpu_steals_from_the_busiest_and_respects_affinity() {
    let mut s = Scheduler::new();
    s.add(t(1), Priority::Normal).unwrap();
    s.add(t(2), Priority::Normal).unwrap();
    s.add(t(3), Priority::Normal).unwrap();
    assert_eq!(s.schedule_on(0), Some(t(1)));
    s.set_affinity(t(2), 0b1).unwrap();
    s.set_online(1);
    // CPU 1's queue is empty: it takes t3 (t2 may only run on CPU 0).
    assert_eq!(s.schedule_on(1), Some(t(3)));
    assert_eq!(s.cpu_of(t(3)), Some(1));
    assert_eq!(
        s.schedule_on(1),
        Some(t(3)),
        "nothing it may take: keeps its own"
    );
    assert_eq!(s.schedule_on(0), Some(t(2)));
    assert_eq!(s.set_affinity(t(2), 0b100), Err(SchedError::NoAllowedCpu));
    s.check_invariants().unwrap();
}

#[test]
fn a_woken_thread_goes_to_an_idle_cpu_and_that_cpu_is_told() {
    let mut s = Scheduler::new();
    s.set_online(1);
    s.add(t(1), Priority::Normal).unwrap();
    s.add(t(2), Priority::Normal).unwrap();
    assert_eq!(s.schedule_on(0), Some(t(1)));
    assert_eq!(s.schedule_on(1), Some(t(2)));
    assert_eq!(s.block_current_on(1), Ok(None), "CPU 1 idles");
    s.take_kicks();
    s.unblock(t(2)).unwrap();
    assert_eq!(s.cpu_of(t(2)), Some(1), "back where it ran: that CPU idles");
    assert_eq!(s.take_kicks(), 0b10);
    assert_eq!(s.reschedule_on(1), Some(t(2)));
    // The running thread of another CPU is removed: that CPU is told.
    s.remove(t(2)).unwrap();
    assert_eq!(s.current_on(1), None);
    assert_eq!(s.take_kicks(), 0b10);
    s.check_invariants().unwrap();
}

#[test]
fn each_cpu_uses_up_its_own_slice_and_the_clock_advances_once() {
    let mut s = Scheduler::new();
    s.set_online(1);
    for n in 1..=4 {
        s.add(t(n), Priority::Normal).unwrap();
    }
    let a = s.schedule_on(0).unwrap();
    let b = s.schedule_on(1).unwrap();
    // Both timers see the same clock ticks: time advances once per tick.
    for tick in 1..SLICE_TICKS as u64 {
        assert_eq!(s.timer_tick_at_on(0, tick), Some(a));
        assert_eq!(s.timer_tick_at_on(1, tick), Some(b));
    }
    assert_eq!(s.now(), SLICE_TICKS as u64 - 1);
    let end = SLICE_TICKS as u64;
    assert_ne!(
        s.timer_tick_at_on(0, end),
        Some(a),
        "slice used up on CPU 0"
    );
    assert_ne!(s.timer_tick_at_on(1, end), Some(b), "and on CPU 1");
    s.check_invariants().unwrap();
}

proptest! {
    #[test]
    fn invariants_hold_across_cpus(ops in proptest::collection::vec((0u8..7, 0usize..3, 1u32..8), 1..200)) {
        let mut s = Scheduler::new();
        s.set_online(1);
        s.set_online(2);
        let mut clock = 0;
        for (op, cpu, n) in ops {
            match op {
                0 => { let _ = s.add(t(n), Priority::from_level(n as usize % 3).unwrap()); }
                1 => { s.schedule_on(cpu); }
                2 => { let _ = s.block_current_on(cpu); }
                3 => { let _ = s.unblock(t(n)); }
                4 => { let _ = s.remove(t(n)); }
                5 => { clock += 1; s.timer_tick_at_on(cpu, clock); }
                _ => { let _ = s.set_affinity(t(n), 1 << cpu); }
            }
            prop_assert_eq!(s.check_invariants(), Ok(()));
        }
    }
}

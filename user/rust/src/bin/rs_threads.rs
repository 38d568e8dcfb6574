//! rs_threads: std::thread with a Mutex counter, scoped threads, an mpsc channel,
//! a Condvar hand-off and thread-locals.
use std::cell::Cell;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;

const THREADS: u64 = 4;
const ITERS: u64 = 50_000;

thread_local!(static LOCAL: Cell<u64> = const { Cell::new(7) });

fn counter() {
    let count = Arc::new(Mutex::new(0u64));
    let handles: Vec<_> = (0..THREADS)
        .map(|id| {
            let count = Arc::clone(&count);
            thread::spawn(move || {
                LOCAL.with(|l| l.set(id * 100));
                for _ in 0..ITERS {
                    *count.lock().unwrap() += 1;
                }
                LOCAL.with(|l| l.get()) + 1
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        println!("thread {i} returned {}", h.join().unwrap());
    }
    println!(
        "counter={} (expected {})",
        count.lock().unwrap(),
        THREADS * ITERS
    );
    println!("main LOCAL={}", LOCAL.with(|l| l.get()));
}

fn scoped_sum() {
    let data: Vec<u64> = (1..=10_000).collect();
    let sums: Vec<u64> = thread::scope(|s| {
        let parts: Vec<_> = data
            .chunks(2500)
            .map(|c| s.spawn(move || c.iter().sum::<u64>()))
            .collect();
        parts.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!(
        "scoped sum={} (expected 50005000)",
        sums.iter().sum::<u64>()
    );
}

fn channel() {
    let (tx, rx) = mpsc::channel();
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || (0..100).for_each(|i| tx.send(p * 1000 + i).unwrap()))
        })
        .collect();
    drop(tx);
    let total: u64 = rx.iter().sum();
    producers.into_iter().for_each(|h| h.join().unwrap());
    println!("channel total={total} (expected 314850)");
}

fn condvar() {
    let pair = Arc::new((Mutex::new(None::<u64>), Condvar::new()));
    let p2 = Arc::clone(&pair);
    let consumer = thread::spawn(move || {
        let (m, cv) = &*p2;
        let mut sum = 0;
        for _ in 0..500 {
            let mut slot = cv.wait_while(m.lock().unwrap(), |s| s.is_none()).unwrap();
            sum += slot.take().unwrap();
            cv.notify_all();
        }
        sum
    });
    let (m, cv) = &*pair;
    for i in 1..=500u64 {
        let mut slot = cv.wait_while(m.lock().unwrap(), |s| s.is_some()).unwrap();
        *slot = Some(i);
        cv.notify_all();
    }
    println!("condvar sum={} (expected 125250)", consumer.join().unwrap());
}

fn main() {
    counter();
    scoped_sum();
    channel();
    condvar();
    println!("rs_threads done");
}

//! rs_alloc: heap-heavy std collections (small and mmap-sized blocks), then fork:
//! the child's heap is a copy, a panicking child exits with 101, and a child
//! touching an unmapped page dies of SIGSEGV.
use std::collections::{BTreeMap, HashMap};
use user_rust::{describe_status, in_child, yes};

fn collections() -> Vec<u64> {
    let mut map = HashMap::new();
    let mut tree = BTreeMap::new();
    for i in 0..20_000u64 {
        map.insert(i, i * i);
        tree.insert(i.wrapping_mul(2_654_435_761) % 100_003, i);
    }
    let big: Vec<u64> = (0..1_000_000).collect(); // 8 MB: an mmap-backed block
    let sum: u64 = big.iter().sum();
    println!("hashmap len={} tree len={}", map.len(), tree.len());
    println!("big vec sum={sum} (expected 499999500000)");
    let strings: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
    println!(
        "strings total len={}",
        strings.iter().map(String::len).sum::<usize>()
    );
    big
}

fn main() {
    let mut big = collections();
    let st = in_child(|| {
        big.iter_mut().for_each(|v| *v = 0);
        println!(
            "child zeroed its copy: {}",
            yes(big.iter().all(|&v| v == 0))
        );
    });
    println!("child {}", describe_status(st));
    println!("parent copy intact: {}", yes(big[999_999] == 999_999));
    let st = in_child(|| {
        std::panic::set_hook(Box::new(|_| {}));
        panic!("on purpose");
    });
    println!("panicking child {}", describe_status(st));
    let st = in_child(|| {
        // SAFETY: none; the child is meant to die of SIGSEGV here.
        unsafe { std::ptr::write_volatile(16 as *mut u8, 1) };
    });
    println!("faulting child {}", describe_status(st));
    big.clear();
    big.shrink_to_fit();
    println!("rs_alloc done");
}

//! The host "machine": `std` stands in for the hardware so the whole core runs under
//! `cargo test`. Physical memory is a lazily backed anonymous mapping, there is one
//! CPU, and timer ticks are delivered by whoever calls
//! [`interrupts::timer_interrupt`] (tests do, deterministically).

pub mod console;
pub mod cpu;
pub mod interrupts;
pub mod ipi;
pub mod paging;
pub mod percpu;
pub mod phys;
pub mod uaccess;

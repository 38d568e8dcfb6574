//! # kernel
//!
//! A small kernel written in Rust: physical frames, x86_64 and ARM LPAE page tables,
//! a kernel heap, NUMA-aware allocation, processes and threads, a priority scheduler
//! and Linux-numbered system calls.
//!
//! The crate is the whole kernel as a library. The same code runs on three machines:
//!
//! * the **host** (`cfg(not(target_os = "none"))`): the crate links `std` and
//!   "physical memory" is one large lazily backed anonymous mapping, so everything but
//!   the CPU mode switches runs under `cargo test`;
//! * **x86_64** bare metal (booted by QEMU through the PVH entry, see `boot/`);
//! * **aarch64** bare metal (QEMU `virt`).
//!
//! Only [`arch`] differs between them. Design principles:
//!
//! * instance types first ([`memory::frame_allocator::FrameAllocator`],
//!   [`process::scheduler::Scheduler`], ...), the seed's free functions are thin
//!   wrappers over one global instance each;
//! * bad input returns a typed error, never a panic;
//! * `unsafe` lives in `arch/` and the few memory primitives that touch raw memory,
//!   each block with a `// SAFETY:` comment.
#![cfg_attr(target_os = "none", no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
// `unsafe` only where the machine is touched: `arch`, the physical-memory window
// and the heap (`memory::phys`, `memory::heap`), and the lock (`sync`).
#![deny(unsafe_code)]

extern crate alloc;

#[allow(unsafe_code)]
pub mod arch;
pub mod console;
#[cfg(target_os = "none")]
pub mod demo;
pub mod exec;
pub mod firmware;
pub mod fs;
pub mod initrd;
pub mod memory;
pub mod process;
#[cfg(target_os = "none")]
pub mod selftest;
pub mod smp;
#[allow(unsafe_code)]
pub mod sync;
pub mod syscall;
#[cfg(target_os = "none")]
pub mod task;
pub mod tty;

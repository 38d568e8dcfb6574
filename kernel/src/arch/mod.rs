//! Mechanism that differs between machines. Every arch module offers the same names:
//!
//! * `phys`: the physical-memory window (`window_base`, `window_size`);
//! * `interrupts`: `IrqState`, `save_and_disable`, `restore`, `init_timer`;
//! * `cpu`: `current_cpu_id`;
//! * `paging`: the active page-table root and TLB flushes;
//! * `console`: `write_str` to the machine's console;
//! * `uaccess`: `write_user`, `read_user`, copies to and from the running process's
//!   user memory through the MMU where the machine can (x86_64), a first attempt
//!   before the address space's software walk.
//!
//! The choice is made here, once.

#[cfg(not(target_os = "none"))]
pub mod host;
#[cfg(not(target_os = "none"))]
pub use host::*;

#[cfg(target_os = "none")]
pub mod kstack;
#[cfg(target_os = "none")]
pub mod kthread;

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub mod x86_64;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
pub use self::x86_64::*;

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub mod aarch64;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub use self::aarch64::*;

//! The bootable x86_64 kernel image.
//!
//! `entry` holds the PVH entry (32-bit asm, long mode, boot page tables); it calls
//! [`kmain`], which brings the machine up through `kernel::arch::x86_64::init` and then
//! runs the demo, or the in-QEMU tests when the command line (`-append`) says `test`.
//!
//! On the host this crate builds to a stub so `cargo test --workspace` stays happy.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod bare;
#[cfg(target_os = "none")]
mod demo;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod tests;
#[cfg(target_os = "none")]
#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("boot-x86_64 is a bare-metal image: use `cargo xtask run`");
}

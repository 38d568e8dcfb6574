//! The bootable aarch64 kernel image for QEMU `virt`.
//!
//! `entry` holds the entry (EL2 -> EL1, FP/SIMD, boot tables, MMU on, jump to the
//! higher half); it calls `kmain`, which brings the machine up through
//! `kernel::arch::aarch64::init` and then runs the demo, or the in-QEMU tests when the
//! command line (`-append`, the device tree's `/chosen/bootargs`) says `test`.
//!
//! On the host this crate builds to a stub so workspace-wide builds stay happy.
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
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("boot-aarch64 is a bare-metal image: use `cargo xtask run --arch aarch64`");
}

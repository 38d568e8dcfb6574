//! aarch64 (QEMU virt): not yet written.

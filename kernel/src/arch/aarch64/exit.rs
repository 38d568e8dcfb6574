//! Leaving QEMU with a status, through Arm semihosting (QEMU runs with
//! `-semihosting`): `SYS_EXIT` (operation 0x18) with the extended block
//! `[ADP_Stopped_ApplicationExit, code]` makes QEMU exit with exactly `code`.
//!
//! Without `-semihosting` the `hlt` traps as an undefined instruction; the exception
//! handler then comes back here, so [`exit`] ends in a loop that parks the CPU.

/// Semihosting operation number of SYS_EXIT.
const SYS_EXIT: u64 = 0x18;
/// Reason code "the application exited" (ADP_Stopped_ApplicationExit).
const APPLICATION_EXIT: u64 = 0x20026;

/// Exits QEMU with status `code` (0 = success).
pub fn exit(code: u32) -> ! {
    let block = [APPLICATION_EXIT, code as u64];
    // SAFETY: the semihosting call reads the two-word block that `x1` points to and
    // does not return when QEMU honours it; it touches no other memory.
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            in("x0") SYS_EXIT,
            in("x1") block.as_ptr(),
            options(nostack, readonly)
        );
    }
    park()
}

/// Stops this CPU for good (interrupts masked, waiting forever).
pub fn park() -> ! {
    loop {
        // SAFETY: masking interrupts and waiting have no memory effects.
        unsafe { core::arch::asm!("msr daifset, #0xf", "wfe", options(nomem, nostack)) };
    }
}

//! The entry point: from QEMU's jump (EL1 or EL2, MMU off) to 64-bit Rust in the
//! higher half.
//!
//! QEMU `virt` loads the ELF at its physical addresses and jumps to `_start` with
//! `x0` = the device tree's address (0 for an ELF kernel: the tree is then at the
//! start of RAM, 0x40000000). The entry
//! 1. drops from EL2 to EL1 if QEMU runs with `virtualization=on`;
//! 2. parks every CPU but CPU 0 (QEMU starts secondaries powered off via PSCI anyway;
//!    the kernel starts them later with PSCI CPU_ON at its own secondary entry,
//!    `kernel::arch::aarch64::smp`);
//! 3. enables FP/SIMD (`CPACR_EL1.FPEN`), which compiled Rust may use anywhere;
//! 4. turns on the MMU with static boot tables (one L0 table shared by TTBR0 and
//!    TTBR1, one L1 table of 1 GiB blocks):
//!    * `0 .. 1 GiB` identity, Device-nGnRnE (UART, GIC),
//!    * `1 .. 2 GiB` identity, Normal write-back (RAM; the entry runs here),
//!    * `KERNEL_VMA .. + 1 GiB` -> `1 .. 2 GiB` (the higher-half kernel image);
//! 5. jumps to the higher half, sets up the boot stack, zeroes `.bss` and calls
//!    `kmain(dtb_phys)`.
//!
//! The kernel later replaces these tables with its own (`ArmLpaePageTable`). The
//! tables stay in the (reserved) image: `boot_l0` is global because a secondary
//! CPU's entry uses it as TTBR0 for the instant its MMU turns on (its identity map
//! keeps the entry mapped).

core::arch::global_asm!(
    r#"
.section .boot.text, "ax"
.global _start
_start:
    mov x19, x0
    mrs x0, CurrentEL
    lsr x0, x0, #2
    cmp x0, #2
    b.ne 1f
    // EL2 -> EL1: EL1 is AArch64, timers accessible, no virtual offset.
    mov x0, #(1 << 31)
    msr hcr_el2, x0
    mrs x0, cnthctl_el2
    orr x0, x0, #3
    msr cnthctl_el2, x0
    msr cntvoff_el2, xzr
    mov x0, #0x3c5
    msr spsr_el2, x0
    adr x0, 1f
    msr elr_el2, x0
    eret
1:
    mrs x0, mpidr_el1
    and x0, x0, #0xff
    cbnz x0, 9f

    mov x0, #(3 << 20)
    msr cpacr_el1, x0
    isb

    // MAIR: attr0 normal write-back, attr1 Device-nGnRnE, attr2 normal write-through.
    ldr x0, =0x00bb00ff
    msr mair_el1, x0
    // TCR: 48-bit VA in both halves, 4 KiB granule, inner-shareable write-back
    // walks; IPS from ID_AA64MMFR0_EL1.PARange.
    ldr x0, =0xb5103510
    mrs x1, id_aa64mmfr0_el1
    and x1, x1, #7
    orr x0, x0, x1, lsl #32
    msr tcr_el1, x0
    adr x0, boot_l0
    msr ttbr0_el1, x0
    msr ttbr1_el1, x0
    isb
    tlbi vmalle1
    dsb ish
    isb
    // SCTLR: RES1 bits, M (MMU), C (data cache), I (instruction cache).
    ldr x0, =0x30d01805
    msr sctlr_el1, x0
    isb
    ldr x0, =2f
    br x0
9:
    wfe
    b 9b

.section .boot.data, "aw"
.p2align 12
.global boot_l0
boot_l0:
    .quad boot_l1 + 0x3
    .fill 510, 8, 0
    .quad boot_l1 + 0x3
boot_l1:
    .quad 0x0000000000000000 + 0x0060000000000405
    .quad 0x0000000040000000 + 0x0000000000000701
    .fill 508, 8, 0
    .quad 0x0000000040000000 + 0x0000000000000701
    .fill 1, 8, 0

.section .text.entry, "ax"
2:
    ldr x0, =__boot_stack_top
    mov sp, x0
    ldr x0, =__bss_start
    ldr x1, =__bss_end
3:
    cmp x0, x1
    b.hs 4f
    stp xzr, xzr, [x0], #16
    b 3b
4:
    mov x0, x19
    cbnz x0, 5f
    mov x0, #0x40000000
5:
    mov x29, xzr
    mov x30, xzr
    bl kmain
6:
    wfe
    b 6b

.section .bss.boot_stack, "aw", @nobits
.p2align 12
.global __boot_stack_guard
__boot_stack_guard:
    .space 4096
.global __boot_stack_bottom
__boot_stack_bottom:
    .space 65536
.global __boot_stack_top
__boot_stack_top:
"#
);

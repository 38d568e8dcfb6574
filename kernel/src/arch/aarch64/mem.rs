//! `memcpy`, `memmove` and `memset` for aarch64: what the compiler calls for every
//! copy and fill it does not inline (signal frames, page copies, B-tree node shifts).
//!
//! The generic versions (compiler_builtins) assume `strict-align`, as the
//! `aarch64-unknown-none` target does for code that may run with the MMU off, and
//! move eight bytes per four instructions. This kernel never runs with the MMU off
//! (the boot entry turns it on before any Rust code) and leaves SCTLR_EL1.A clear,
//! and these are only used on RAM (normal memory; devices are reached by volatile
//! accesses), so unaligned accesses are allowed: the bulk moves 64 bytes per seven
//! instructions through q0..q3 (caller-saved, and the kernel is built with FP/NEON),
//! then 16, 8 and single bytes.
//!
//! Owns no state and takes no locks.

core::arch::global_asm!(
    r#"
.section .text.mem, "ax"

.global memcpy
.type memcpy, %function
.p2align 4
memcpy:
    mov x3, x0
    cmp x2, #64
    b.lo 2f
1:
    ldp q0, q1, [x1], #32
    ldp q2, q3, [x1], #32
    sub x2, x2, #64
    stp q0, q1, [x3], #32
    stp q2, q3, [x3], #32
    cmp x2, #64
    b.hs 1b
2:
    cmp x2, #16
    b.lo 3f
    ldr q0, [x1], #16
    sub x2, x2, #16
    str q0, [x3], #16
    b 2b
3:
    cmp x2, #8
    b.lo 4f
    ldr x4, [x1], #8
    sub x2, x2, #8
    str x4, [x3], #8
4:
    cbz x2, 6f
5:
    ldrb w4, [x1], #1
    subs x2, x2, #1
    strb w4, [x3], #1
    b.ne 5b
6:
    ret
.size memcpy, . - memcpy

// A forward copy is safe unless the destination starts inside the source
// (src <= dst < src + n, i.e. dst - src < n unsigned): then it goes backwards. Each
// step loads its whole chunk before it stores it.
.global memmove
.type memmove, %function
.p2align 4
memmove:
    sub x4, x0, x1
    cmp x4, x2
    b.hs memcpy
    add x1, x1, x2
    add x3, x0, x2
1:
    cmp x2, #16
    b.lo 2f
    ldr q0, [x1, #-16]!
    sub x2, x2, #16
    str q0, [x3, #-16]!
    b 1b
2:
    cbz x2, 3f
    ldrb w4, [x1, #-1]!
    sub x2, x2, #1
    strb w4, [x3, #-1]!
    b 2b
3:
    ret
.size memmove, . - memmove

.global memset
.type memset, %function
.p2align 4
memset:
    mov x3, x0
    and w1, w1, #0xff
    dup v0.16b, w1
    cmp x2, #64
    b.lo 2f
1:
    stp q0, q0, [x3], #32
    stp q0, q0, [x3], #32
    sub x2, x2, #64
    cmp x2, #64
    b.hs 1b
2:
    cmp x2, #16
    b.lo 3f
    str q0, [x3], #16
    sub x2, x2, #16
    b 2b
3:
    cbz x2, 5f
4:
    strb w1, [x3], #1
    subs x2, x2, #1
    b.ne 4b
5:
    ret
.size memset, . - memset
"#
);

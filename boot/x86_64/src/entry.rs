//! The PVH entry point: from 32-bit protected mode (paging off) to 64-bit Rust.
//!
//! QEMU finds the entry through the ELF note "Xen" of type 18
//! (XEN_ELFNOTE_PHYS32_ENTRY) whose descriptor is the entry's physical address. It
//! jumps there in 32-bit protected mode, paging off, with `%ebx` = physical address of
//! the `hvm_start_info` structure.
//!
//! The entry turns on long mode with static boot page tables:
//! * `0 .. 4 GiB` identity-mapped with 2 MiB pages (so the frame allocator can be
//!   initialised with all RAM below 4 GiB before the kernel's own tables exist);
//! * `KERNEL_VMA .. KERNEL_VMA + 1 GiB` mapped to physical `0 .. 1 GiB` (the
//!   higher-half kernel image).
//!
//! It then loads a minimal GDT, switches to the boot stack (in `.bss`, with an unmapped
//! guard page below it once the kernel's own page tables are live) and calls
//! `kmain(start_info_paddr)` with the pointer zero-extended.

core::arch::global_asm!(
    r#"
.section .note.Xen, "a", @note
.p2align 2
.long 4
.long 4
.long 18
.asciz "Xen"
.p2align 2
.long pvh_start32
.p2align 2

.section .boot.text, "ax"
.code32
.global pvh_start32
pvh_start32:
    cli
    cld
    mov edi, ebx
    mov eax, offset boot_pml4
    mov cr3, eax
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x900
    wrmsr
    mov eax, cr0
    or eax, 0x80010001
    mov cr0, eax
    lgdt [boot_gdt_ptr]
    push 0x08
    mov eax, offset pvh_long
    push eax
    retf

.code64
pvh_long:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov edi, edi
    movabs rsp, offset __boot_stack_top
    xor ebp, ebp
    movabs rax, offset kmain
    call rax
2:
    hlt
    jmp 2b

.section .boot.data, "aw"
.p2align 12
boot_pml4:
    .quad boot_pdpt_low + 0x3
    .fill 510, 8, 0
    .quad boot_pdpt_high + 0x3
boot_pdpt_low:
    .quad boot_pd + 0x3
    .quad boot_pd + 0x1003
    .quad boot_pd + 0x2003
    .quad boot_pd + 0x3003
    .fill 508, 8, 0
boot_pdpt_high:
    .fill 510, 8, 0
    .quad boot_pd + 0x3
    .quad 0
boot_pd:
    .set boot_pd_i, 0
    .rept 2048
    .quad (boot_pd_i << 21) + 0x83
    .set boot_pd_i, boot_pd_i + 1
    .endr
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_ptr:
    .word 23
    .long boot_gdt

.section .bss.boot_stack, "aw", @nobits
.p2align 12
.global __boot_stack_guard
__boot_stack_guard:
    .skip 4096
.global __boot_stack_bottom
__boot_stack_bottom:
    .skip 65536
.global __boot_stack_top
__boot_stack_top:
"#
);

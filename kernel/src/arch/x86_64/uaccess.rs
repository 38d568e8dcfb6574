//! Copies between kernel memory and the running process's user memory through the
//! MMU, as Linux's `copy_to_user`/`copy_from_user` do: one `rep movs` to or from the
//! user address, with a fault fixup instead of a software walk of the page tables.
//!
//! The copy is only ever a first attempt. It runs when the address space asked for
//! is the one in CR3 (a copy into another process's space, or one made while the
//! kernel's own tables are installed, copies nothing here), and it stops at the first
//! page the CPU cannot reach as asked: not present (demand zero, swapped out, never
//! mapped), read-only for a write (copy-on-write), or a kernel-only entry. A page
//! fault in kernel mode at one of the two copying instructions, on a user address,
//! resumes at that instruction's fixup ([`fixup`], called by the trap dispatcher),
//! which answers how many bytes were left; the address space then copies the rest
//! through its own walk, which faults pages in and gives EFAULT as before. So this
//! path changes what the copy costs, never what it answers.
//!
//! CR0.WP is set from boot (`boot/x86_64`), so a kernel write to a read-only user
//! page faults as a user write would; SMAP is not enabled, so no `stac`/`clac`.
//!
//! Locks: none. Either the caller holds the address space's lock across the copy
//! (as the software walk does), or it copies with interrupts masked on the CPU that
//! runs the space (the fast system calls, `SpaceCell::read_user_unlocked`): then a
//! page another thread unmaps meanwhile may still be reached through this CPU's
//! TLB, as a user access would reach it, but its frame (and any page table the
//! unmap emptied) is freed only once every CPU running the space has acknowledged
//! the shootdown, which this one does only after the copy (in its IPI handler, or
//! in a lock wait). Either way no frame the copy reaches is reused under it.

use super::idt::TrapFrame;
use crate::memory::address_space::TASK_SIZE;
use crate::memory::PhysFrame;

/// Whether [`read_user`] and [`write_user`] copy anything: yes.
pub const THROUGH_MMU: bool = true;

core::arch::global_asm!(
    r#"
.section .text.uaccess, "ax"
// rdi = destination, rsi = source, rdx = length; rax = bytes not copied.
.global arch_user_copy
arch_user_copy:
    mov rcx, rdx
    shr rcx, 3
.global arch_user_copy_words
arch_user_copy_words:
    rep movsq
    mov ecx, edx
    and ecx, 7
.global arch_user_copy_bytes
arch_user_copy_bytes:
    rep movsb
    xor eax, eax
    ret
// A fault in the word copy: rcx words and the byte tail are left.
.global arch_user_copy_words_fixup
arch_user_copy_words_fixup:
    and edx, 7
    lea rax, [rdx + rcx * 8]
    ret
// A fault in the byte copy: rcx bytes are left.
.global arch_user_copy_bytes_fixup
arch_user_copy_bytes_fixup:
    mov rax, rcx
    ret
"#
);

extern "C" {
    fn arch_user_copy(dst: *mut u8, src: *const u8, len: usize) -> usize;
    static arch_user_copy_words: u8;
    static arch_user_copy_bytes: u8;
    static arch_user_copy_words_fixup: u8;
    static arch_user_copy_bytes_fixup: u8;
}

/// Whether `[addr, addr + len)` lies in user space, and `root` is the active table
/// (the only one whose user half the CPU reaches by address).
fn reachable(root: PhysFrame, addr: u64, len: usize) -> bool {
    let in_user = addr
        .checked_add(len as u64)
        .is_some_and(|end| end <= TASK_SIZE);
    in_user && len > 0 && super::paging::active_root() == Some(root)
}

/// Copies `data` to user address `dst` of the space whose root is `root`, as far as
/// the CPU can: the number of bytes written from the start (all of them, or up to
/// the first page that faulted; 0 when `root` is not active).
pub fn write_user(root: PhysFrame, dst: u64, data: &[u8]) -> usize {
    if !reachable(root, dst, data.len()) {
        return 0;
    }
    // SAFETY: `dst..dst + len` is below TASK_SIZE, in the active user half, which
    // holds no kernel object Rust knows of (user frames are only reached through
    // raw addresses); a fault there resumes at the fixup (see `fixup`), so the copy
    // never faults the kernel. `data` is a valid slice. No frame under the range
    // is freed during the copy (see the module docs).
    let left = unsafe { arch_user_copy(dst as *mut u8, data.as_ptr(), data.len()) };
    data.len() - left
}

/// Copies from user address `src` of the space whose root is `root` into `buf`, as
/// far as the CPU can (as [`write_user`]): the number of bytes read from the start.
pub fn read_user(root: PhysFrame, src: u64, buf: &mut [u8]) -> usize {
    if !reachable(root, src, buf.len()) {
        return 0;
    }
    // SAFETY: as in `write_user`, with the user range read and `buf` written.
    let left = unsafe { arch_user_copy(buf.as_mut_ptr(), src as *const u8, buf.len()) };
    buf.len() - left
}

/// A page fault taken in kernel mode: when it hit one of the copy's instructions on
/// a user address (`cr2`), the frame resumes at that instruction's fixup and the
/// answer is `true`; otherwise `false` (a kernel bug: the dispatcher reports it).
pub fn fixup(frame: &mut TrapFrame, cr2: u64) -> bool {
    if frame.cs & 3 != 0 || cr2 >= TASK_SIZE {
        return false;
    }
    // Only the addresses of the asm labels above are taken, never what is there.
    let (words, bytes, words_fix, bytes_fix) = (
        core::ptr::addr_of!(arch_user_copy_words) as u64,
        core::ptr::addr_of!(arch_user_copy_bytes) as u64,
        core::ptr::addr_of!(arch_user_copy_words_fixup) as u64,
        core::ptr::addr_of!(arch_user_copy_bytes_fixup) as u64,
    );
    frame.rip = match frame.rip {
        r if r == words => words_fix,
        r if r == bytes => bytes_fix,
        _ => return false,
    };
    true
}

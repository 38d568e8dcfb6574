//! Mapping a prepared image ([`super::ExecImage`]) into an empty address space:
//! the ELF regions (mapped with their final permissions, the segments' bytes filled
//! in by the kernel, the rest demand-zero), the demand-zero user stack below
//! [`USER_STACK_TOP`] (its size from the process's `RLIMIT_STACK`, see
//! `syscall::rlimit::stack_size`) with the initial stack copied to its top. What
//! execve and the first process share, and testable on the host.

use super::ExecImage;
use crate::memory::address_space::{MapRequest, Placement, Prot, TASK_SIZE};
use crate::memory::frame_allocator::FrameSource;
use crate::process::UserSpace;
use crate::syscall::{Errno, ENOEXEC};

/// One past the highest byte of the initial user stack.
pub const USER_STACK_TOP: u64 = TASK_SIZE;
/// Where the sigreturn trampoline page goes (see
/// [`crate::syscall::machine::ExecTarget::sigreturn`]): just above the area
/// mmap places mappings in, below the stack.
pub const SIGRETURN_PAGE: u64 = crate::memory::address_space::MMAP_BASE;

/// Maps `code` read-and-execute at [`SIGRETURN_PAGE`] (nothing if it is empty).
pub fn map_sigreturn<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    code: &[u8],
) -> Result<(), Errno> {
    if code.is_empty() {
        return Ok(());
    }
    let page = crate::memory::PAGE_SIZE;
    let req = MapRequest::new(page, Prot::READ | Prot::EXEC).at(Placement::Fixed(SIGRETURN_PAGE));
    space.mmap(req)?;
    space.fill(SIGRETURN_PAGE, code)?;
    Ok(())
}
/// Size of the (demand-zero) user stack region under the default `RLIMIT_STACK`.
pub const USER_STACK_SIZE: u64 = 8 << 20;
/// Most bytes of argument and environment strings an exec may put on the stack.
pub const ARG_LIMIT: usize = 128 * 1024;

/// Where a loaded program starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// The entry point.
    pub entry: u64,
    /// The initial stack pointer (argc is there).
    pub sp: u64,
    /// Where the program break starts.
    pub brk_start: u64,
}

/// Maps `image` (prepared from `file`) into `space`, which must be empty, with a
/// stack region of `stack_size` bytes (page-aligned, at least the initial stack).
/// On an error the caller destroys the space (it is not usable half-built).
pub fn map_image<A: FrameSource + Clone>(
    space: &mut UserSpace<A>,
    file: &[u8],
    image: &ExecImage,
    stack_size: u64,
) -> Result<Loaded, Errno> {
    let plan = &image.plan;
    // Mapped with their final rights, then filled as the kernel writes an image
    // (`fill` ignores the rights): no mprotect pass over the pages afterwards.
    for r in &plan.regions {
        let (start, end) = (r.start.as_u64(), r.end.as_u64());
        let req = MapRequest::new(end - start, prot_of(r.perms.bits())).at(Placement::Fixed(start));
        space.mmap(req)?;
    }
    for s in &plan.segments {
        let bytes = s.file_bytes(file).ok_or(ENOEXEC)?;
        space.fill(s.vaddr.as_u64(), bytes)?;
    }
    let stack_prot = prot_of(plan.stack_perms.bits()) | Prot::READ | Prot::WRITE;
    let req =
        MapRequest::new(stack_size, stack_prot).at(Placement::Fixed(USER_STACK_TOP - stack_size));
    space.mmap(req)?;
    space.copy_to_user(image.stack.rsp.as_u64(), &image.stack_bytes)?;
    Ok(Loaded {
        entry: plan.entry.as_u64(),
        sp: image.stack.rsp.as_u64(),
        brk_start: plan.brk_start.as_u64(),
    })
}

fn prot_of(perms: u8) -> Prot {
    Prot::from_bits_truncate(u32::from(perms))
}

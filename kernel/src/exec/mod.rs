//! execve's host-testable half: from the bytes of a static ELF file and the
//! argument strings to a load plan and an initial user stack, and into an address
//! space.
//!
//! ## What it owns
//! [`elf`] validates the file and says which pages to map with which permissions and
//! which bytes to copy there; [`initial_stack`] writes argc, argv, envp, auxv and the
//! strings into a buffer exactly as Linux lays them out (both pure computation);
//! [`load`] maps the result into an empty address space. The caller (`task::execve`)
//! decides when: after every check, at the point of no return.
//!
//! ## Using it from execve
//! ```text
//! let plan = elf::load_plan(file, &LoadOptions::x86_64())?;           // ENOEXEC
//! for r in &plan.regions   { map zeroed pages r.start..r.end, writable }
//! for s in &plan.segments  { copy s.file_bytes(file) to s.vaddr }
//! for r in &plan.regions   { set the final permissions r.perms }
//! let contents = StackContents { argv, envp, execfn, platform: b"x86_64",
//!                                random, aux: AuxInfo::from_plan(&plan) };
//! let stack = initial_stack::build(&contents, top, &mut buf)?;           // E2BIG
//! map the stack pages below `top` (perms: plan.stack_perms),
//! copy buf[buf.len() - stack.used..] to stack.rsp, set brk to plan.brk_start,
//! enter user mode at plan.entry with rsp = stack.rsp and all other registers 0.
//! ```
//! [`prepare`] does the two computations in one call.
#![deny(unsafe_code)]

pub mod elf;
pub mod initial_stack;
pub mod load;

use alloc::vec;
use alloc::vec::Vec;

use crate::memory::addr::VirtAddr;
use elf::{ElfError, LoadOptions, LoadPlan};
use initial_stack::{AuxInfo, InitialStack, StackContents, StackError};

/// Why [`prepare`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecError {
    /// The file is not a loadable static ELF executable.
    Elf(ElfError),
    /// The arguments do not fit on the stack (or contain NUL bytes).
    Stack(StackError),
}

impl ExecError {
    /// The positive Linux errno execve returns.
    pub const fn errno(&self) -> i32 {
        match self {
            ExecError::Elf(e) => e.errno(),
            ExecError::Stack(e) => e.errno(),
        }
    }
}

impl From<ElfError> for ExecError {
    fn from(e: ElfError) -> Self {
        ExecError::Elf(e)
    }
}

impl From<StackError> for ExecError {
    fn from(e: StackError) -> Self {
        ExecError::Stack(e)
    }
}

/// Everything execve must install: the load plan and the stack image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecImage {
    /// What to map and copy.
    pub plan: LoadPlan,
    /// Where the stack pointer starts and what else is on the stack.
    pub stack: InitialStack,
    /// The stack bytes: copy them to `[stack.rsp, top)`.
    pub stack_bytes: Vec<u8>,
}

/// Arguments of [`prepare`] that are not the file.
#[derive(Debug, Clone, Copy)]
pub struct ExecArgs<'a> {
    /// argv strings, without NULs.
    pub argv: &'a [&'a [u8]],
    /// envp strings, without NULs.
    pub envp: &'a [&'a [u8]],
    /// The path execve was given (`AT_EXECFN`).
    pub execfn: &'a [u8],
    /// `AT_PLATFORM` string.
    pub platform: &'a [u8],
    /// The `AT_RANDOM` bytes.
    pub random: [u8; 16],
    /// `AT_HWCAP`.
    pub hwcap: u64,
    /// Highest stack address (exclusive), 16-byte aligned.
    pub stack_top: VirtAddr,
    /// Most bytes the initial stack may take (the caller's limit, e.g. 128 KiB).
    pub stack_limit: usize,
}

/// Bytes of the buffer an initial stack is first built in (see [`prepare`]).
const FIRST_STACK_BUFFER: usize = 8 * 1024;

/// Validates `file` and builds the plan and the initial stack for it.
pub fn prepare(
    file: &[u8],
    opts: &LoadOptions,
    args: &ExecArgs<'_>,
) -> Result<ExecImage, ExecError> {
    let plan = elf::load_plan(file, opts)?;
    let aux = AuxInfo {
        hwcap: args.hwcap,
        ..AuxInfo::from_plan(&plan)
    };
    let contents = StackContents {
        argv: args.argv,
        envp: args.envp,
        execfn: args.execfn,
        platform: args.platform,
        random: args.random,
        aux,
    };
    // Most stacks take a few hundred bytes: built in a small buffer first, and in
    // one of the whole limit only if that is too small (`build` is a pure function
    // of the contents and the top, so either gives the same bytes), instead of
    // zeroing the whole limit (128 KiB) on every exec.
    let small = args.stack_limit.min(FIRST_STACK_BUFFER);
    let mut buf = vec![0u8; small];
    let stack = match initial_stack::build(&contents, args.stack_top, &mut buf) {
        Err(initial_stack::StackError::TooBig) if small < args.stack_limit => {
            buf = vec![0u8; args.stack_limit];
            initial_stack::build(&contents, args.stack_top, &mut buf)?
        }
        r => r?,
    };
    let stack_bytes = buf.split_off(buf.len() - stack.used);
    Ok(ExecImage {
        plan,
        stack,
        stack_bytes,
    })
}

#[cfg(test)]
mod tests;

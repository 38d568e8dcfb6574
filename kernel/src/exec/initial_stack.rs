//! The initial user stack of a new program, laid out byte for byte as Linux's
//! `create_elf_tables` lays it out for a static binary (no randomisation).
//!
//! ## Layout (addresses grow upwards)
//! ```text
//!   top ->  8 zero bytes                      (end marker)
//!           execfn string                     <- AT_EXECFN
//!           envp strings, envp[0] lowest
//!           argv strings, argv[0] lowest      <- arg_start
//!           0..15 zero bytes                  (align down to 16)
//!           platform string                   <- AT_PLATFORM ("x86_64")
//!           16 random bytes                   <- AT_RANDOM
//!           zero padding                      (so that rsp is 16-byte aligned)
//!           auxv pairs ... AT_NULL, 0
//!           NULL
//!           envp[envc-1] .. envp[0]
//!           NULL
//!           argv[argc-1] .. argv[0]
//!   rsp ->  argc
//! ```
//! `rsp` is 16-byte aligned, as the System V ABI wants at process entry.
//!
//! ## Contract
//! [`build`] is a pure function: it writes into a byte buffer that stands for the
//! `buf.len()` bytes just below `top` (so `buf[i]` is the byte at virtual address
//! `top - buf.len() + i`) and returns the initial stack pointer. The kernel then copies
//! `buf[buf.len() - used..]` to `[rsp, top)` in the new address space. Only those
//! `used` bytes are written. [`parse`] reads such a stack back (for tests and checks).

use alloc::vec::Vec;
use core::fmt;

use super::elf::{LoadPlan, PHDR_SIZE};
use crate::memory::addr::{VirtAddr, PAGE_SIZE};

/// End of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// Address of the program headers.
pub const AT_PHDR: u64 = 3;
/// Size of one program header.
pub const AT_PHENT: u64 = 4;
/// Number of program headers.
pub const AT_PHNUM: u64 = 5;
/// Page size.
pub const AT_PAGESZ: u64 = 6;
/// Base address of the interpreter (0: none).
pub const AT_BASE: u64 = 7;
/// Flags (0).
pub const AT_FLAGS: u64 = 8;
/// Entry point of the program.
pub const AT_ENTRY: u64 = 9;
/// Real user id.
pub const AT_UID: u64 = 11;
/// Effective user id.
pub const AT_EUID: u64 = 12;
/// Real group id.
pub const AT_GID: u64 = 13;
/// Effective group id.
pub const AT_EGID: u64 = 14;
/// Address of the platform string.
pub const AT_PLATFORM: u64 = 15;
/// CPU feature bits.
pub const AT_HWCAP: u64 = 16;
/// Clock ticks per second (`times()`).
pub const AT_CLKTCK: u64 = 17;
/// Whether the program runs with elevated privileges.
pub const AT_SECURE: u64 = 23;
/// Address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// More CPU feature bits.
pub const AT_HWCAP2: u64 = 26;
/// Address of the file name given to execve.
pub const AT_EXECFN: u64 = 31;
/// Address of the vDSO's ELF header.
pub const AT_SYSINFO_EHDR: u64 = 33;

/// The clock-tick rate Linux reports (`AT_CLKTCK`), also our timer rate.
pub const CLOCK_TICKS: u64 = 100;
/// Longest single argument or environment string Linux accepts (`MAX_ARG_STRLEN`).
pub const MAX_ARG_STRLEN: usize = 32 * PAGE_SIZE as usize;
/// `E2BIG`, what execve returns when the arguments do not fit.
pub const E2BIG: i32 = 7;
/// `EINVAL`.
pub const EINVAL: i32 = 22;

/// Why the stack could not be built (or parsed back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackError {
    /// `top` is not 16-byte aligned, or the buffer reaches below address 0.
    BadTop,
    /// An argument, environment, execfn or platform string contains a NUL byte.
    NulInString,
    /// One string is longer than [`MAX_ARG_STRLEN`].
    StringTooLong,
    /// The buffer is too small for everything.
    TooBig,
    /// [`parse`]: a pointer or count in the stack does not make sense.
    Malformed,
}

impl StackError {
    /// The positive Linux errno execve reports for this error.
    pub const fn errno(&self) -> i32 {
        match self {
            StackError::BadTop | StackError::NulInString | StackError::Malformed => EINVAL,
            StackError::StringTooLong | StackError::TooBig => E2BIG,
        }
    }
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot build the initial stack: {self:?}")
    }
}

/// The values of the auxiliary vector that are not addresses inside the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuxInfo {
    /// `AT_SYSINFO_EHDR`: the vDSO, if the kernel maps one (first entry, as Linux).
    pub sysinfo_ehdr: Option<u64>,
    /// `AT_HWCAP` (on x86_64: CPUID leaf 1 EDX).
    pub hwcap: u64,
    /// `AT_HWCAP2`.
    pub hwcap2: u64,
    /// `AT_PHDR`: program headers in memory (0 if unknown).
    pub phdr: u64,
    /// `AT_PHNUM`.
    pub phnum: u64,
    /// `AT_BASE`: the interpreter's base (0 for static binaries).
    pub base: u64,
    /// `AT_FLAGS`.
    pub flags: u64,
    /// `AT_ENTRY`.
    pub entry: u64,
    /// `AT_UID`.
    pub uid: u64,
    /// `AT_EUID`.
    pub euid: u64,
    /// `AT_GID`.
    pub gid: u64,
    /// `AT_EGID`.
    pub egid: u64,
    /// `AT_SECURE`.
    pub secure: u64,
}

impl AuxInfo {
    /// The entries that come from the ELF file, everything else 0 (root, no vDSO,
    /// no hwcaps).
    pub fn from_plan(plan: &LoadPlan) -> Self {
        AuxInfo {
            phdr: plan.phdr.map_or(0, VirtAddr::as_u64),
            phnum: plan.phnum.into(),
            entry: plan.entry.as_u64(),
            ..AuxInfo::default()
        }
    }
}

/// What goes on the stack.
#[derive(Debug, Clone, Copy)]
pub struct StackContents<'a> {
    /// The arguments, without NUL terminators.
    pub argv: &'a [&'a [u8]],
    /// The environment (`NAME=value`), without NUL terminators.
    pub envp: &'a [&'a [u8]],
    /// The path given to execve (`AT_EXECFN`).
    pub execfn: &'a [u8],
    /// The platform string (`AT_PLATFORM`): `b"x86_64"` or `b"aarch64"`; empty for
    /// none.
    pub platform: &'a [u8],
    /// The 16 bytes `AT_RANDOM` points at (libc seeds its stack canary from them).
    pub random: [u8; 16],
    /// The other auxiliary values.
    pub aux: AuxInfo,
}

/// The result of [`build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialStack {
    /// The initial stack pointer (points at argc; 16-byte aligned).
    pub rsp: VirtAddr,
    /// Bytes used, from `rsp` to `top`: the tail of the buffer to copy.
    pub used: usize,
    /// Address of argv[0]'s pointer (`rsp + 8`).
    pub argv: VirtAddr,
    /// Address of envp[0]'s pointer.
    pub envp: VirtAddr,
    /// First byte of the argument strings (Linux's `mm->arg_start`).
    pub arg_start: VirtAddr,
    /// First byte of the environment strings (`arg_end` = `env_start`).
    pub env_start: VirtAddr,
    /// One past the environment strings (`env_end`).
    pub env_end: VirtAddr,
}

/// Writes downwards into the buffer that ends at `top`.
struct StackWriter<'b> {
    buf: &'b mut [u8],
    /// Virtual address of `buf[0]`.
    base: u64,
    /// Current stack pointer (virtual).
    sp: u64,
}

impl StackWriter<'_> {
    /// The buffer index of virtual address `addr`, for `len` bytes.
    fn index(&self, addr: u64, len: usize) -> Result<usize, StackError> {
        let i = addr.checked_sub(self.base).ok_or(StackError::TooBig)?;
        let i = usize::try_from(i).map_err(|_| StackError::TooBig)?;
        match i.checked_add(len) {
            Some(end) if end <= self.buf.len() => Ok(i),
            _ => Err(StackError::TooBig),
        }
    }

    /// Writes `bytes` at `addr`.
    fn write_at(&mut self, addr: u64, bytes: &[u8]) -> Result<(), StackError> {
        let i = self.index(addr, bytes.len())?;
        self.buf[i..i + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// Zeroes `[from, to)`.
    fn zero(&mut self, from: u64, to: u64) -> Result<(), StackError> {
        let len = usize::try_from(to - from).map_err(|_| StackError::TooBig)?;
        let i = self.index(from, len)?;
        self.buf[i..i + len].fill(0);
        Ok(())
    }

    /// Moves the stack pointer down by `len` bytes and returns it.
    fn alloc(&mut self, len: usize) -> Result<u64, StackError> {
        let sp = self.sp.checked_sub(len as u64).ok_or(StackError::TooBig)?;
        if sp < self.base {
            return Err(StackError::TooBig);
        }
        self.sp = sp;
        Ok(sp)
    }

    /// Pushes `bytes` and returns their address.
    fn push(&mut self, bytes: &[u8]) -> Result<u64, StackError> {
        let at = self.alloc(bytes.len())?;
        self.write_at(at, bytes)?;
        Ok(at)
    }

    /// Pushes `s` plus a NUL and returns its address.
    fn push_cstr(&mut self, s: &[u8]) -> Result<u64, StackError> {
        check_string(s)?;
        let at = self.alloc(s.len() + 1)?;
        self.write_at(at, s)?;
        self.write_at(at + s.len() as u64, &[0])?;
        Ok(at)
    }

    /// Pushes each string (last first, so the first ends lowest); returns their
    /// addresses in the original order.
    fn push_strings(&mut self, strings: &[&[u8]]) -> Result<Vec<u64>, StackError> {
        let mut addrs = Vec::with_capacity(strings.len());
        for s in strings.iter().rev() {
            addrs.push(self.push_cstr(s)?);
        }
        addrs.reverse();
        Ok(addrs)
    }

    /// Writes consecutive u64 words starting at `addr`; returns the address after.
    fn write_words(&mut self, addr: u64, words: &[u64]) -> Result<u64, StackError> {
        let mut at = addr;
        for w in words {
            self.write_at(at, &w.to_le_bytes())?;
            at += 8;
        }
        Ok(at)
    }
}

fn check_string(s: &[u8]) -> Result<(), StackError> {
    if s.contains(&0) {
        return Err(StackError::NulInString);
    }
    if s.len() >= MAX_ARG_STRLEN {
        return Err(StackError::StringTooLong);
    }
    Ok(())
}

/// The auxiliary vector in Linux's x86_64 order, ending with `AT_NULL`.
fn aux_vector(aux: &AuxInfo, random: u64, execfn: u64, platform: Option<u64>) -> Vec<[u64; 2]> {
    let mut v = Vec::with_capacity(20);
    if let Some(vdso) = aux.sysinfo_ehdr {
        v.push([AT_SYSINFO_EHDR, vdso]);
    }
    v.extend_from_slice(&[
        [AT_HWCAP, aux.hwcap],
        [AT_PAGESZ, PAGE_SIZE],
        [AT_CLKTCK, CLOCK_TICKS],
        [AT_PHDR, aux.phdr],
        [AT_PHENT, PHDR_SIZE as u64],
        [AT_PHNUM, aux.phnum],
        [AT_BASE, aux.base],
        [AT_FLAGS, aux.flags],
        [AT_ENTRY, aux.entry],
        [AT_UID, aux.uid],
        [AT_EUID, aux.euid],
        [AT_GID, aux.gid],
        [AT_EGID, aux.egid],
        [AT_SECURE, aux.secure],
        [AT_RANDOM, random],
        [AT_HWCAP2, aux.hwcap2],
        [AT_EXECFN, execfn],
    ]);
    if let Some(p) = platform {
        v.push([AT_PLATFORM, p]);
    }
    v.push([AT_NULL, 0]);
    v
}

/// The addresses of the strings pushed at the top of the stack.
struct Strings {
    execfn: u64,
    env: Vec<u64>,
    args: Vec<u64>,
    arg_start: u64,
    env_start: u64,
}

/// Pushes the end marker, execfn, the environment and argument strings.
fn push_strings(w: &mut StackWriter<'_>, c: &StackContents<'_>) -> Result<Strings, StackError> {
    let end_marker = w.alloc(8)?;
    w.zero(end_marker, end_marker + 8)?;
    let execfn = w.push_cstr(c.execfn)?;
    let env = w.push_strings(c.envp)?;
    let env_start = w.sp;
    let args = w.push_strings(c.argv)?;
    let arg_start = w.sp;
    Ok(Strings {
        execfn,
        env,
        args,
        arg_start,
        env_start,
    })
}

/// The words from argc to the end of auxv.
fn table_words(strings: &Strings, auxv: &[[u64; 2]]) -> Vec<u64> {
    let mut words = Vec::with_capacity(strings.args.len() + strings.env.len() + 3);
    words.push(strings.args.len() as u64);
    words.extend_from_slice(&strings.args);
    words.push(0);
    words.extend_from_slice(&strings.env);
    words.push(0);
    words.extend(auxv.iter().flatten());
    words
}

/// Builds the initial stack of a program below `top` into `buf` (see the module
/// docs for the layout and the buffer convention). `top` must be 16-byte aligned.
pub fn build(
    contents: &StackContents<'_>,
    top: VirtAddr,
    buf: &mut [u8],
) -> Result<InitialStack, StackError> {
    let base = top.as_u64().checked_sub(buf.len() as u64);
    let base = base.ok_or(StackError::BadTop)?;
    if !top.is_aligned(16) {
        return Err(StackError::BadTop);
    }
    let mut w = StackWriter {
        buf,
        base,
        sp: top.as_u64(),
    };
    let strings = push_strings(&mut w, contents)?;
    let aligned = w.sp & !15;
    w.zero(aligned, w.sp)?;
    w.sp = aligned;
    let platform = match contents.platform {
        [] => None,
        p => Some(w.push_cstr(p)?),
    };
    let random = w.push(&contents.random)?;
    let auxv = aux_vector(&contents.aux, random, strings.execfn, platform);
    let words = table_words(&strings, &auxv);
    let table_len = words.len() * 8;
    let rsp =
        w.sp.checked_sub(table_len as u64)
            .ok_or(StackError::TooBig)?
            & !15;
    if rsp < base {
        return Err(StackError::TooBig);
    }
    let table_end = w.write_words(rsp, &words)?;
    w.zero(table_end, random)?;
    finish(rsp, top, &strings)
}

fn finish(rsp: u64, top: VirtAddr, s: &Strings) -> Result<InitialStack, StackError> {
    let addr = |a: u64| VirtAddr::try_new(a).map_err(|_| StackError::BadTop);
    Ok(InitialStack {
        rsp: addr(rsp)?,
        used: (top.as_u64() - rsp) as usize,
        argv: addr(rsp + 8)?,
        envp: addr(rsp + 8 * (s.args.len() as u64 + 2))?,
        arg_start: addr(s.arg_start)?,
        env_start: addr(s.env_start)?,
        env_end: addr(s.execfn)?,
    })
}

/// A stack read back by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedStack {
    /// The argument strings.
    pub argv: Vec<Vec<u8>>,
    /// The environment strings.
    pub envp: Vec<Vec<u8>>,
    /// The auxiliary vector, without the final `AT_NULL`.
    pub auxv: Vec<(u64, u64)>,
}

impl ParsedStack {
    /// The value of auxiliary entry `key`, if present.
    pub fn aux(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// Reads memory of a stack image without trusting any pointer in it.
struct StackReader<'b> {
    buf: &'b [u8],
    base: u64,
}

impl StackReader<'_> {
    fn word(&self, addr: u64) -> Result<u64, StackError> {
        let i = addr.checked_sub(self.base).ok_or(StackError::Malformed)?;
        let i = usize::try_from(i).map_err(|_| StackError::Malformed)?;
        let bytes = self.buf.get(i..i.saturating_add(8));
        let bytes: [u8; 8] = bytes
            .and_then(|b| b.try_into().ok())
            .ok_or(StackError::Malformed)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn cstr(&self, addr: u64) -> Result<Vec<u8>, StackError> {
        let i = addr.checked_sub(self.base).ok_or(StackError::Malformed)?;
        let i = usize::try_from(i).map_err(|_| StackError::Malformed)?;
        let rest = self.buf.get(i..).ok_or(StackError::Malformed)?;
        let len = rest.iter().position(|&b| b == 0);
        Ok(rest[..len.ok_or(StackError::Malformed)?].to_vec())
    }

    /// Reads a NULL-terminated pointer array of strings at `addr`; returns them and
    /// the address after the NULL.
    fn strings(&self, mut addr: u64) -> Result<(Vec<Vec<u8>>, u64), StackError> {
        let mut out = Vec::new();
        loop {
            let p = self.word(addr)?;
            addr = addr.wrapping_add(8);
            if p == 0 {
                return Ok((out, addr));
            }
            out.push(self.cstr(p)?);
        }
    }
}

/// Reads back a stack that [`build`] wrote into `buf` below `top`, starting at `rsp`.
pub fn parse(buf: &[u8], top: VirtAddr, rsp: VirtAddr) -> Result<ParsedStack, StackError> {
    let base = top.as_u64().checked_sub(buf.len() as u64);
    let r = StackReader {
        buf,
        base: base.ok_or(StackError::Malformed)?,
    };
    let argc = r.word(rsp.as_u64())?;
    let (argv, after_argv) = r.strings(rsp.as_u64().wrapping_add(8))?;
    if argv.len() as u64 != argc {
        return Err(StackError::Malformed);
    }
    let (envp, mut at) = r.strings(after_argv)?;
    let mut auxv = Vec::new();
    loop {
        let (key, value) = (r.word(at)?, r.word(at.wrapping_add(8))?);
        at = at.wrapping_add(16);
        if key == AT_NULL {
            return Ok(ParsedStack { argv, envp, auxv });
        }
        auxv.push((key, value));
    }
}

#[cfg(test)]
mod tests;

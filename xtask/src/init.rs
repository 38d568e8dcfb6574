//! Init runs on either architecture: the kernel runs one program of the initrd as
//! pid 1 (the initrd's `.init.argv` / `.init.envp`, see `initrd.rs`), with `quiet` on
//! its command line only that program's output reaches the console, and after its
//! last byte the kernel prints [`EXIT_MARKER`]`init-exit STATUS` and ends QEMU. A
//! process killed by a fault makes the kernel print [`EXIT_MARKER`]`kernel: pid N
//! (name): SIGSEGV at ip ...` (quiet or not): such lines are the kernel's, not the
//! program's, so they stay out of the output (kept in `kernel_lines`) and, when the
//! run is echoed (`run --init`), go to xtask's stderr.
//!
//! * [`InitConsole`]: splits the console lines of such a run into the program's
//!   output and its status (both architectures, streamed).
//! * [`Kernel`]: a built kernel of one architecture; [`Kernel::boot_init`] boots it
//!   with an initrd and a command line and returns an [`InitRun`].

use crate::qemu::{Outcome, QemuConfig};
use crate::user::Arch;
use std::path::Path;
use std::time::Duration;

/// Marker the kernel prints after init's last byte, followed by `init-exit STATUS`.
pub const EXIT_MARKER: char = '\u{1}';

/// The program's output and status, from the console lines of an init run.
#[derive(Debug, Default)]
pub struct InitConsole {
    /// What the program printed (lines joined with `\n`; the text before the marker
    /// on the marker's line has no newline of its own).
    pub output: String,
    /// Init's status, once the marker line came.
    pub status: Option<i32>,
    /// The kernel's own reports (a process killed by a fault), without the marker.
    pub kernel_lines: Vec<String>,
    /// Print the program's output as it comes.
    echo: bool,
}

impl InitConsole {
    /// A parser that prints the program's output when `echo`.
    pub fn new(echo: bool) -> Self {
        InitConsole {
            echo,
            ..InitConsole::default()
        }
    }

    /// Takes one console line (without its `\n`); lines after the marker are ignored.
    pub fn line(&mut self, line: &str) {
        if self.status.is_some() {
            return;
        }
        let (text, marker) = match line.split_once(EXIT_MARKER) {
            Some((text, m)) => (text, Some(m)),
            None => (line, None),
        };
        self.output.push_str(text);
        if self.echo {
            print!("{text}");
        }
        if let Some(report) = marker.filter(|m| m.starts_with("kernel: ")) {
            // The kernel ended the line it started: the program's text goes on. Shown
            // on stderr when the run is shown (`run --init`); tests keep them quiet.
            if self.echo {
                eprintln!("{report}");
            }
            self.kernel_lines.push(report.to_string());
            return;
        }
        match marker.and_then(|m| m.strip_prefix("init-exit ")) {
            Some(code) => self.status = code.trim().parse().ok(),
            None => {
                self.output.push('\n');
                if self.echo {
                    println!();
                }
            }
        }
    }
}

/// What one init run showed.
#[derive(Debug)]
pub struct InitRun {
    /// The program's output (everything before the marker).
    pub output: String,
    /// Init's status as the kernel reported it (`None`: no marker).
    pub status: Option<i32>,
    /// QEMU ended the way the kernel ends it after init (x86_64: the success code
    /// through `isa-debug-exit`; aarch64: semihosting exit 0).
    pub clean: bool,
    /// How QEMU ended, for messages.
    pub ending: String,
}

/// A built kernel image and how to boot it.
#[derive(Debug, Clone, Copy)]
pub enum Kernel<'a> {
    /// The x86_64 image, booted with `base` (machine, accelerator, ...).
    X86_64 {
        /// Path of the image.
        image: &'a str,
        /// QEMU settings besides initrd, memory and command line.
        base: &'a QemuConfig,
    },
    /// The aarch64 image (`qemu-system-aarch64 -M virt`, see `aarch64.rs`).
    Aarch64 {
        /// Path of the image.
        image: &'a Path,
    },
}

impl Kernel<'_> {
    /// The architecture of its user programs.
    pub fn arch(&self) -> Arch {
        match self {
            Kernel::X86_64 { .. } => Arch::X86_64,
            Kernel::Aarch64 { .. } => Arch::Aarch64,
        }
    }

    /// CPUs the runs boot with.
    pub fn cpus(&self) -> usize {
        match self {
            Kernel::X86_64 { base, .. } => base.smp,
            Kernel::Aarch64 { .. } => crate::aarch64::cpus().max(1),
        }
    }

    /// Prefix of test names (`""` for x86_64, `"aarch64/"`; `smpN/` after it for a
    /// run on N CPUs).
    pub fn label(&self) -> String {
        let arch = match self {
            Kernel::X86_64 { .. } => "",
            Kernel::Aarch64 { .. } => "aarch64/",
        };
        match self.cpus() {
            1 => arch.into(),
            n => format!("{arch}smp{n}/"),
        }
    }

    /// Boots with `initrd` and the command line `append`; `memory` (QEMU `-m`, e.g.
    /// `"64M"`) overrides the architecture's default (aarch64 raises it to what the
    /// initrd's load address needs). Kills QEMU after `timeout`.
    pub fn boot_init(
        &self,
        initrd: &Path,
        memory: Option<&str>,
        append: &str,
        timeout: Duration,
        echo: bool,
    ) -> Result<InitRun, String> {
        match *self {
            Kernel::X86_64 { image, base } => {
                let cfg = QemuConfig {
                    initrd: Some(initrd.display().to_string()),
                    memory: memory.map_or(base.memory.clone(), String::from),
                    append: append.into(),
                    ..base.clone()
                };
                let (output, status, outcome) = crate::boot_init(image, &cfg, timeout, echo)?;
                Ok(InitRun {
                    output,
                    status,
                    clean: outcome == Outcome::Success,
                    ending: format!("{outcome:?}"),
                })
            }
            Kernel::Aarch64 { image } => {
                let ram = memory.map(parse_mib).transpose()?;
                crate::aarch64::boot_init(image, ram, initrd, append, timeout, echo)
            }
        }
    }
}

/// `"64M"` / `"4G"` / `"512"` (MiB) -> MiB.
pub fn parse_mib(size: &str) -> Result<u64, String> {
    let s = size.trim();
    let (num, mul) = match s.char_indices().last() {
        Some((i, 'M' | 'm')) => (&s[..i], 1),
        Some((i, 'G' | 'g')) => (&s[..i], 1024),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mul)
        .map_err(|e| format!("memory size {size:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_splits_output_and_status() {
        let mut c = InitConsole::new(false);
        c.line("hello");
        c.line("partial\u{1}init-exit 3");
        c.line("after the marker");
        assert_eq!(c.output, "hello\npartial");
        assert_eq!(c.status, Some(3));
        let mut c = InitConsole::new(false);
        c.line("\u{1}init-exit 139");
        assert_eq!((c.output.as_str(), c.status), ("", Some(139)));
    }

    #[test]
    fn kernel_reports_stay_out_of_the_output() {
        let mut c = InitConsole::new(false);
        c.line("before");
        c.line("half a line\u{1}kernel: pid 1 (crash): SIGSEGV at ip 0x401000");
        c.line(" and the rest");
        c.line("\u{1}init-exit 139");
        assert_eq!(c.output, "before\nhalf a line and the rest\n");
        assert_eq!(
            c.kernel_lines,
            ["kernel: pid 1 (crash): SIGSEGV at ip 0x401000"]
        );
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_mib("64M"), Ok(64));
        assert_eq!(parse_mib("4G"), Ok(4096));
        assert_eq!(parse_mib("300"), Ok(300));
        assert!(parse_mib("lots").is_err());
    }
}

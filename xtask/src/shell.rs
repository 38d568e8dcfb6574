//! `cargo xtask shell [--arch aarch64] [-c LINE]`: Debian's busybox `sh` as pid 1 of
//! the kernel, in the root file system of `busybox::root_tree` (issue 12).
//!
//! * `-c LINE`: `.init.argv` = `/bin/sh -c LINE`, command line `quiet` and not `tty`:
//!   stdin is `/dev/null` and stdout the plain console, as in the tests. Only the
//!   command's output is shown, and xtask exits with its status (the kernel's marker
//!   line, see `init.rs`). Not `tty` because the output must be what `busybox sh -c
//!   LINE` prints into a pipe on the host: on a terminal programs change what they
//!   print (`ls` in columns, `isatty` checks), and the terminal's ONLCR turns `\n` into
//!   `\r\n`, which cannot be undone faithfully once a program wrote `\r\n` itself.
//! * Without `-c`: an interactive shell. The command line is `quiet tty` (the
//!   kernel makes init's fds 0-2 its console terminal: line discipline, echo, ^C as
//!   SIGINT to the foreground group); QEMU's serial port is on xtask's terminal, put
//!   in raw mode ([`RawTerminal`], `stty`, restored on every way out), and QEMU's
//!   stdio backend has `signal=off`, so ^C reaches the guest as byte 3. QEMU's
//!   monitor shares the terminal (`mux=on`): Ctrl-A x ends a hung guest, Ctrl-A
//!   Ctrl-A sends Ctrl-A. `exit N` ends init; the kernel prints the marker line and
//!   powers off; xtask hides that line and exits with N. No timeout.
//!
//! [`tmux_test`] drives the interactive shell in a detached tmux session (a private
//! tmux server): prompt, `echo hi`, ^C of `sleep 60`, `cat` with ^D, `exit 5`.

use crate::busybox;
use crate::init::{Kernel, EXIT_MARKER};
use crate::qemu::QemuConfig;
use crate::user::Arch;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// What `shell` was asked for.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    arch: Arch,
    /// `-c LINE`.
    line: Option<String>,
    /// `--smp N`: CPUs.
    cpus: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        arch: Arch::X86_64,
        line: None,
        cpus: 1,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--arch" => {
                opts.arch = match value()?.as_str() {
                    "x86_64" => Arch::X86_64,
                    "aarch64" => Arch::Aarch64,
                    other => return Err(format!("unknown architecture {other}")),
                }
            }
            "-c" => opts.line = Some(value()?),
            "--smp" => {
                opts.cpus = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=16).contains(n))
                    .ok_or("--smp takes a CPU count from 1 to 16")?
            }
            other => return Err(format!("unknown option {other}\n{}", crate::usage())),
        }
    }
    Ok(opts)
}

/// `cargo xtask shell [--arch aarch64] [--smp N] [-c LINE]` (see the module doc).
pub fn shell(args: &[String]) -> Result<ExitCode, String> {
    let opts = parse(args)?;
    let (kernel, image) = prepare(opts.arch, opts.line.as_deref())?;
    crate::aarch64::set_cpus(opts.cpus);
    match opts.line {
        Some(_) => {
            let base = QemuConfig {
                smp: opts.cpus,
                ..QemuConfig::default()
            };
            let k = match opts.arch {
                Arch::X86_64 => Kernel::X86_64 {
                    image: &kernel,
                    base: &base,
                },
                Arch::Aarch64 => Kernel::Aarch64 {
                    image: Path::new(&kernel),
                },
            };
            crate::run_init(&k, &image, None, "quiet")
        }
        None => interactive(opts.arch, opts.cpus, &kernel, &image),
    }
}

/// Builds the kernel of `arch` and writes the shell's initrd; returns both paths.
fn prepare(arch: Arch, line: Option<&str>) -> Result<(String, PathBuf), String> {
    let kernel = match arch {
        Arch::X86_64 => {
            crate::setup::ensure(crate::setup::Needs::X86_64)?;
            crate::build_kernel()?
        }
        Arch::Aarch64 => {
            crate::setup::ensure(crate::setup::Needs::Aarch64)?;
            crate::aarch64::build(&crate::workspace_root())?
                .display()
                .to_string()
        }
    };
    let bb = busybox::ensure(arch)?;
    let mut argv = vec!["/bin/sh".to_string()];
    let term = match line {
        Some(l) => {
            argv.extend(["-c".to_string(), l.to_string()]);
            "vt100".to_string()
        }
        None => std::env::var("TERM").unwrap_or_else(|_| "vt100".into()),
    };
    let image = PathBuf::from(crate::target_dir()).join(match arch {
        Arch::X86_64 => "initrd-shell.cpio",
        Arch::Aarch64 => "initrd-shell-aarch64.cpio",
    });
    let env = busybox::shell_env(&term);
    crate::initrd::write_tree(&image, busybox::root_tree(&bb)?, &argv, &env)?;
    Ok((kernel, image))
}

/// QEMU's serial port and monitor on xtask's stdin/stdout, ^C not a signal to QEMU.
const CONSOLE: [&str; 6] = [
    "-chardev",
    "stdio,id=con,mux=on,signal=off",
    "-serial",
    "chardev:con",
    "-mon",
    "chardev=con,mode=readline",
];

/// The QEMU command of an interactive run (`quiet tty`).
fn qemu_command(arch: Arch, cpus: usize, kernel: &str, image: &Path) -> Result<Command, String> {
    let mut cmd;
    match arch {
        Arch::X86_64 => {
            cmd = Command::new("qemu-system-x86_64");
            cmd.args(["-M", "microvm", "-m", "256M", "-kernel", kernel]);
            cmd.arg("-initrd").arg(image);
            cmd.args(["-append", "quiet tty", "-nodefaults"]);
            cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        Arch::Aarch64 => {
            let (loader, word, min_mib) = crate::aarch64::initrd_args(image)?;
            cmd = Command::new("qemu-system-aarch64");
            cmd.args(["-M", "virt", "-cpu", "cortex-a72", "-semihosting"]);
            cmd.args(["-m", &format!("{}M", min_mib.max(256)), "-kernel", kernel]);
            cmd.args(loader);
            cmd.args(["-append", &format!("quiet tty {word}")]);
        }
    }
    match cpus {
        1 => cmd.args(["-accel", "tcg"]),
        n => cmd.args(["-smp", &n.to_string(), "-accel", "tcg,thread=multi"]),
    };
    cmd.args(["-display", "none", "-no-reboot"]).args(CONSOLE);
    Ok(cmd)
}

/// The interactive shell: QEMU on this terminal (raw) until init's marker.
fn interactive(arch: Arch, cpus: usize, kernel: &str, image: &Path) -> Result<ExitCode, String> {
    let mut cmd = qemu_command(arch, cpus, kernel, image)?;
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let raw = RawTerminal::enter();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let mut from_qemu = child.stdout.take().ok_or("QEMU has no stdout")?;
    let mut filter = MarkerFilter::default();
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    while filter.status.is_none() {
        let n = match from_qemu.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let shown = filter.feed(&buf[..n]);
        let _ = out.write_all(&shown).and_then(|_| out.flush());
        for report in filter.reports.drain(..) {
            eprint!("{report}\r\n");
        }
    }
    // After the marker the kernel powers off; give QEMU a moment to do so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().map_err(|e| e.to_string())?;
    drop(raw);
    match filter.status {
        Some(s) => Ok(ExitCode::from(s.clamp(0, 255) as u8)),
        None => Err(format!(
            "QEMU ended ({status}) without the kernel reporting init's status"
        )),
    }
}

/// Passes the console's bytes through, except the kernel's lines that start with
/// [`EXIT_MARKER`]: `init-exit N` sets [`MarkerFilter::status`], others (`kernel:
/// ...` reports) are collected for stderr.
#[derive(Debug, Default)]
struct MarkerFilter {
    /// A marker line being collected (after the marker byte, up to `\n`).
    held: Option<Vec<u8>>,
    /// Init's status, once its line came.
    status: Option<i32>,
    /// Kernel lines to show on stderr.
    reports: Vec<String>,
}

impl MarkerFilter {
    /// Takes console bytes; returns those to show.
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut shown = Vec::new();
        let marker = EXIT_MARKER as u8;
        for &b in bytes {
            match (&mut self.held, b) {
                (None, b) if b == marker => self.held = Some(Vec::new()),
                (None, b) => shown.push(b),
                (Some(line), b'\n') => {
                    let text = String::from_utf8_lossy(line).trim_end().to_string();
                    self.held = None;
                    match text.strip_prefix("init-exit ") {
                        Some(code) => self.status = code.trim().parse().ok().or(Some(255)),
                        None => self.reports.push(text),
                    }
                }
                (Some(line), b) => line.push(b),
            }
        }
        shown
    }
}

/// The terminal on stdin in raw mode without echo (`stty raw -echo`), restored to
/// what it was when dropped (also when unwinding from a panic). Nothing when stdin
/// is not a terminal.
struct RawTerminal {
    /// `stty -g` before.
    saved: String,
}

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        let out = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let saved = String::from_utf8_lossy(&out.stdout).trim().to_string();
        stty(&["raw", "-echo"]);
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        stty(&[&self.saved]);
    }
}

fn stty(args: &[&str]) {
    let _ = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .status();
}

/// `cargo xtask shell-check [--arch aarch64]`: only [`tmux_test`].
pub fn check(args: &[String]) -> Result<ExitCode, String> {
    let arch = parse(args)?.arch;
    match tmux_test(arch) {
        Some(true) => Ok(ExitCode::SUCCESS),
        Some(false) => Ok(ExitCode::FAILURE),
        None => Err("tmux is missing".into()),
    }
}

/// Bound on the first prompt (kernel build check, boot under TCG).
const PROMPT_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on each later step.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// How soon the prompt must come back after ^C of `sleep 60`.
const INTERRUPT_TIMEOUT: Duration = Duration::from_secs(5);
/// What the pane command prints after xtask ends.
const EXIT_LINE: &str = "@@xtask-exit";

/// The interactive shell of `arch` typed into through tmux (see the module doc);
/// prints `test [aarch64/]shell_interactive ... ok|FAILED|skipped`. `None`: skipped
/// (no tmux), not counted.
pub fn tmux_test(arch: Arch) -> Option<bool> {
    let name = match arch {
        Arch::X86_64 => "shell_interactive",
        Arch::Aarch64 => "aarch64/shell_interactive",
    };
    if !have_tmux() {
        println!("test {name} ... skipped: tmux is missing and could not be installed (apt-get install tmux)");
        return None;
    }
    let start = Instant::now();
    let result = tmux_session(arch);
    let secs = start.elapsed().as_secs_f64();
    match &result {
        Ok(()) => println!("test {name} ... ok ({secs:.0} s)"),
        Err(e) => println!("test {name} ... FAILED ({secs:.0} s): {e}"),
    }
    Some(result.is_ok())
}

/// tmux is there, or has been installed now.
fn have_tmux() -> bool {
    let ok = || {
        Command::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ok() || (crate::setup::is_root()
        && crate::setup::apt_get(&["install", "-y", "--no-install-recommends", "tmux"])
        && ok())
}

/// The steps of [`tmux_test`].
fn tmux_session(arch: Arch) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("no xtask binary: {e}"))?;
    let arch_arg = match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    };
    let command = format!(
        "'{}' shell --arch {arch_arg}; echo \"{EXIT_LINE} $?\"; sleep 600",
        exe.display()
    );
    let t = Tmux::start(&command)?;
    t.wait("the first prompt", PROMPT_TIMEOUT, |s| prompts(s) >= 1)?;
    t.send(&["echo hi", "Enter"])?;
    t.wait("hi", STEP_TIMEOUT, |s| {
        prompts(s) >= 2 && lines_equal(s, "hi") >= 1
    })?;
    t.send(&["sleep 60", "Enter"])?;
    t.wait("sleep to start", STEP_TIMEOUT, |s| {
        s.lines().any(|l| l.trim_end().ends_with("# sleep 60"))
    })?;
    std::thread::sleep(Duration::from_secs(2));
    t.send(&["C-c"])?;
    t.wait("the prompt after ^C", INTERRUPT_TIMEOUT, |s| {
        prompts(s) >= 3
    })?;
    t.send(&["cat", "Enter"])?;
    t.wait("cat to start", STEP_TIMEOUT, |s| {
        s.lines().any(|l| l.trim_end().ends_with("# cat"))
    })?;
    std::thread::sleep(Duration::from_secs(1));
    t.send(&["typed-into-cat", "Enter"])?;
    t.wait("the line echoed and cat's copy", STEP_TIMEOUT, |s| {
        lines_equal(s, "typed-into-cat") >= 2
    })?;
    t.send(&["C-d"])?;
    t.wait("the prompt after ^D", STEP_TIMEOUT, |s| prompts(s) >= 4)?;
    t.send(&["exit 5", "Enter"])?;
    let end = format!("{EXIT_LINE} 5");
    let screen = t.wait("xtask to exit with 5", STEP_TIMEOUT, |s| {
        s.lines().any(|l| l.starts_with(EXIT_LINE))
    })?;
    if !screen.lines().any(|l| l.trim_end() == end) || screen.contains("init-exit") {
        return Err(format!(
            "expected {end:?} and no marker line; screen:\n{screen}"
        ));
    }
    Ok(())
}

/// Lines of `screen` that show the prompt (`/ #`, `~ #`: the directory and `#`, see
/// `busybox::PS1`).
fn prompts(screen: &str) -> usize {
    let prompt = |l: &str| {
        l.split_once(" #").is_some_and(|(dir, _)| {
            (dir.starts_with('/') || dir.starts_with('~')) && !dir.contains(' ')
        })
    };
    screen.lines().filter(|l| prompt(l)).count()
}

fn lines_equal(screen: &str, text: &str) -> usize {
    screen.lines().filter(|l| l.trim_end() == text).count()
}

/// A detached session on a private tmux server (socket `xtask-shell-PID`), killed
/// with its server when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Result<Tmux, String> {
        let t = Tmux {
            socket: format!("xtask-shell-{}", std::process::id()),
        };
        t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "shell",
            "-x",
            "160",
            "-y",
            "48",
            command,
        ])?;
        Ok(t)
    }

    fn tmux(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run tmux: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "tmux {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Types `keys` (tmux key names or literal text).
    fn send(&self, keys: &[&str]) -> Result<(), String> {
        let mut args = vec!["send-keys", "-t", "shell"];
        args.extend_from_slice(keys);
        self.tmux(&args).map(|_| ())
    }

    /// The whole pane, history included, wrapped lines joined.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "shell"])
            .unwrap_or_default()
    }

    /// Waits until `done(screen)`; the screen then, or an error naming `what`.
    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return Ok(screen);
            }
            if Instant::now() > deadline {
                let screen: Vec<&str> = screen.lines().filter(|l| !l.is_empty()).collect();
                let tail = screen[screen.len().saturating_sub(30)..].join("\n");
                return Err(format!(
                    "waited {timeout:?} for {what} in vain; screen:\n{tail}"
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse(&args(&["--arch", "aarch64", "-c", "echo hi"])),
            Ok(Options {
                arch: Arch::Aarch64,
                line: Some("echo hi".into()),
                cpus: 1,
            })
        );
        assert_eq!(parse(&args(&["--smp", "4"])).map(|o| o.cpus), Ok(4));
        assert!(parse(&args(&["--smp", "0"])).is_err());
        assert!(parse(&args(&["--smp", "17"])).is_err());
        assert_eq!(parse(&args(&[])).map(|o| o.line), Ok(None));
        assert!(parse(&args(&["--arch", "mips"])).is_err());
        assert!(parse(&args(&["-c"])).is_err());
    }

    #[test]
    fn prompt_lines() {
        let screen = "BusyBox v1.35.0 built-in shell (ash)\n/ # echo hi\nhi\n~ # \n/tmp/x # cat\nno # prompt\n";
        assert_eq!(prompts(screen), 3);
    }

    #[test]
    fn the_marker_line_is_hidden_and_read() {
        let mut f = MarkerFilter::default();
        let mut shown = f.feed(b"~ # exit 5\r\n\x01kernel: pid 3 (x): SIGSEGV\n\x01init-");
        assert_eq!(f.status, None);
        shown.extend(f.feed(b"exit 5\n"));
        assert_eq!(shown, b"~ # exit 5\r\n");
        assert_eq!(f.status, Some(5));
        assert_eq!(f.reports, ["kernel: pid 3 (x): SIGSEGV"]);
    }
}

//! Running the kernel in QEMU: the command line, the serial stream, the timeout, and
//! what QEMU's exit status means.
//!
//! The guest exits through `isa-debug-exit` (port 0xf4): it writes 0x10 for success,
//! which QEMU turns into status 33, and 0x11 for failure (status 35). Anything else
//! (a triple fault with `-no-reboot` gives 0, a signal, a timeout) is a failure.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// QEMU status for the guest's success code.
const STATUS_SUCCESS: i32 = 33;
/// QEMU status for the guest's failure code.
const STATUS_FAILURE: i32 = 35;

/// How to start QEMU.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// `-M` machine type.
    pub machine: String,
    /// `-m` memory size.
    pub memory: String,
    /// `-append` kernel command line.
    pub append: String,
    /// Try KVM first (falls back to TCG when KVM is unusable or hangs).
    pub kvm: bool,
    /// `-initrd` file (the cpio archive with the user programs).
    pub initrd: Option<String>,
    /// CPUs (`-smp`; more than one runs TCG with a host thread per vCPU).
    pub smp: usize,
    /// More QEMU arguments (e.g. `-numa`).
    pub extra: Vec<String>,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            machine: "microvm".into(),
            memory: "128M".into(),
            append: String::new(),
            kvm: false,
            initrd: None,
            smp: 1,
            extra: Vec::new(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The guest wrote the success code.
    Success,
    /// The guest wrote the failure code (a failed test, a fault, a panic).
    GuestFailure,
    /// QEMU exited with another status (e.g. a triple fault).
    Crashed(Option<i32>),
    /// The timeout expired; QEMU was killed.
    TimedOut,
}

/// What one run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// How it ended.
    pub outcome: Outcome,
    /// Wall time from spawning QEMU to the first serial line.
    pub first_line: Option<Duration>,
    /// Wall time from spawning QEMU to its exit.
    pub total: Duration,
    /// Every line the guest printed.
    pub log: String,
    /// "tcg" or "kvm".
    pub accel: &'static str,
}

/// Boots `kernel`, feeding each serial line to `on_line`, killing QEMU after `timeout`.
/// With `cfg.kvm`, a KVM run that fails to start or times out is retried under TCG.
pub fn boot(
    kernel: &str,
    cfg: &QemuConfig,
    timeout: Duration,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutput, String> {
    if cfg.kvm && std::path::Path::new("/dev/kvm").exists() {
        let out = boot_with(kernel, cfg, "kvm", timeout, on_line)?;
        if !matches!(out.outcome, Outcome::TimedOut | Outcome::Crashed(_))
            || out.first_line.is_some()
        {
            return Ok(out);
        }
        eprintln!(
            "xtask: KVM run failed ({:?}); falling back to TCG",
            out.outcome
        );
    }
    boot_with(kernel, cfg, "tcg", timeout, on_line)
}

fn qemu_command(kernel: &str, cfg: &QemuConfig, accel: &str) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    let accel = match (accel, cfg.smp) {
        ("tcg", n) if n > 1 => "tcg,thread=multi",
        (a, _) => a,
    };
    cmd.args([
        "-M",
        &cfg.machine,
        "-accel",
        accel,
        "-m",
        &cfg.memory,
        "-kernel",
        kernel,
    ]);
    cmd.args([
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-nodefaults",
    ]);
    cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    if cfg.smp > 1 {
        cmd.args(["-smp", &cfg.smp.to_string()]);
    }
    if accel == "kvm" {
        cmd.args(["-cpu", "host"]);
    }
    if !cfg.append.is_empty() {
        cmd.args(["-append", &cfg.append]);
    }
    if let Some(initrd) = &cfg.initrd {
        cmd.args(["-initrd", initrd]);
    }
    cmd.args(&cfg.extra);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

fn boot_with(
    kernel: &str,
    cfg: &QemuConfig,
    accel: &'static str,
    timeout: Duration,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutput, String> {
    let start = Instant::now();
    let mut child = qemu_command(kernel, cfg, accel)
        .spawn()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let stdout = child.stdout.take().ok_or("QEMU has no stdout")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut input = BufReader::new(stdout);
        let mut buf = Vec::new();
        while input.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches('\n')
                .to_string();
            buf.clear();
            if tx.send((line, Instant::now())).is_err() {
                break;
            }
        }
    });
    let mut out = RunOutput {
        outcome: Outcome::TimedOut,
        first_line: None,
        total: Duration::ZERO,
        log: String::new(),
        accel,
    };
    let deadline = start + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((line, at)) => {
                let line = line.trim_end_matches('\r');
                out.first_line.get_or_insert(at - start);
                out.log.push_str(line);
                out.log.push('\n');
                on_line(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                out.total = start.elapsed();
                println!("xtask: QEMU killed after the {:?} timeout", timeout);
                return Ok(out);
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    out.total = start.elapsed();
    let _ = reader.join();
    out.outcome = match status.code() {
        Some(STATUS_SUCCESS) => Outcome::Success,
        Some(STATUS_FAILURE) => Outcome::GuestFailure,
        other => Outcome::Crashed(other),
    };
    Ok(out)
}

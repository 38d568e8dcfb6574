//! The console terminal's check: boots a kernel with `ttyecho` (see the kernel's
//! `selftest::tty_echo`), types into its serial port through QEMU's stdin once the
//! guest says it is ready, and expects the line discipline's answers in order:
//! erase, word erase and kill edited away, ^C reported as SIGINT, raw mode bytes,
//! and ^D at the start of a line as EOF. The input reaches the kernel only by the
//! UART receive interrupt, so this shows that path on each architecture.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound on the whole run.
const TIMEOUT: Duration = Duration::from_secs(40);

/// What is typed, one chunk at a time (a pause between chunks lets each be read).
const INPUT: &[&[u8]] = &[
    b"abc\x7fd\r",
    b"one two\x17three\r",
    b"partial\x03",
    b"x\x15y\r",
    b"raw\r",
    b"z",
    b"q",
    b"\x04",
];

/// Lines the guest must print, in this order.
const EXPECTED: &[&str] = &[
    "tty: line \"abd\\n\"",
    "tty: line \"one three\\n\"",
    "tty: signal 2 for group 0",
    "tty: line \"y\\n\"",
    "tty: raw mode",
    "tty: raw byte 0x7a",
    "tty: raw byte 0x71",
    "tty: canonical again",
    "tty: EOF",
];

/// Which QEMU to boot the check in.
pub enum Machine<'a> {
    /// `qemu-system-x86_64 -M microvm` with this kernel ELF.
    X86_64(&'a str),
    /// `qemu-system-aarch64 -M virt` with this kernel ELF.
    Aarch64(&'a str),
}

fn command(machine: &Machine) -> Command {
    let mut cmd;
    match machine {
        Machine::X86_64(kernel) => {
            cmd = Command::new("qemu-system-x86_64");
            cmd.args(["-M", "microvm", "-accel", "tcg", "-m", "128M", "-kernel"]);
            cmd.arg(kernel);
            cmd.args(["-nodefaults", "-no-reboot"]);
            cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        Machine::Aarch64(kernel) => {
            cmd = Command::new("qemu-system-aarch64");
            cmd.args(["-M", "virt", "-cpu", "cortex-a72", "-semihosting"]);
            cmd.args(["-m", "256M", "-kernel"]);
            cmd.arg(kernel);
        }
    }
    cmd.args(["-display", "none", "-serial", "stdio", "-append", "ttyecho"]);
    cmd
}

/// Runs the check; prints what went wrong and returns false on failure.
pub fn check(machine: &Machine) -> bool {
    let name = match machine {
        Machine::X86_64(_) => "x86_64",
        Machine::Aarch64(_) => "aarch64",
    };
    match run(machine) {
        Ok(log) => {
            let missing = first_missing(&log);
            match missing {
                None => println!("test tty_console_{name} ... ok"),
                Some(want) => {
                    println!(
                        "test tty_console_{name} ... FAILED (no {want:?}); guest output:\n{log}"
                    )
                }
            }
            missing.is_none()
        }
        Err(e) => {
            println!("test tty_console_{name} ... FAILED ({e})");
            false
        }
    }
}

/// The first expected line not found (in order) in `log`.
fn first_missing(log: &str) -> Option<&'static str> {
    let mut lines = log.lines().map(|l| l.trim_end_matches('\r'));
    EXPECTED
        .iter()
        .find(|want| !lines.any(|l| l.ends_with(*want)))
        .copied()
}

fn run(machine: &Machine) -> Result<String, String> {
    let mut child = command(machine)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut log = Vec::new();
    let mut sent = 0;
    let mut ready_at = None;
    while start.elapsed() < TIMEOUT {
        match rx.recv_timeout(Duration::from_millis(300)) {
            Ok(bytes) => log.extend_from_slice(&bytes),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if ready_at.is_none() && String::from_utf8_lossy(&log).contains("tty: ready") {
            ready_at = Some(Instant::now());
        }
        // One chunk per quiet moment after the guest is ready.
        if ready_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) && sent < INPUT.len()
        {
            let _ = stdin.write_all(INPUT[sent]).and_then(|_| stdin.flush());
            sent += 1;
            ready_at = Some(Instant::now());
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    Ok(String::from_utf8_lossy(&log).into_owned())
}

//! Reliability (issue 7): hostile programs and long runs must not break the kernel
//! or lose a frame.
//!
//! Each case boots the kernel with one program of `user/` as init, with `frames` on
//! the command line (the kernel then prints `frames: baseline N, after M (...)` once
//! init and everything it left behind are gone, see `boot/x86_64/src/userland.rs`):
//!
//! | case | program | what it shows |
//! |---|---|---|
//! | `fuzz` | `fuzz COUNT` | random syscalls with adversarial arguments, child restarted when it dies |
//! | `forkbomb_eagain` | `forkbomb` with `maxproc=` | the process limit answers EAGAIN; a fresh child works afterwards |
//! | `forkbomb_enomem` | `forkbomb` in little memory | fork meets ENOMEM, never a panic; a fresh child works afterwards |
//! | `memhog` | `memhog` in little memory | mmap/brk meet ENOMEM or the OOM killer (SIGKILL); memory comes back |
//! | `oomhog` | `oomhog` in little memory | a MAP_POPULATE hog meets the OOM killer while its parent works: the hog dies (SIGKILL), the parent goes on, memory comes back |
//! | `soak` | `soak SECONDS` | fork/threads/mmap/yield/spin under timer preemption, data checked as it goes |
//! | `sigstorm` | `sigstorm SECONDS WORKERS` | random signals (handled, ignored, stop/continue) to processes whose threads block in pipes and sleeps, fork and exit; every worker checked |
//! | `hostile` | `hostile ROUNDS` | exhaustion of fds, VMAs, pipes, threads, processes, queued signals, tmpfs files and frames, then races (threads exiting beside forks, exec while others map/unmap/copy, signals at random times), each phase in a child |
//!
//! A case passes when init exits 0, no `KERNEL PANIC` appeared, the program printed
//! its count line, and the frame balance is exact. Each prints one line `test
//! reliability_NAME ... ok (COUNTS; panics: 0, leaked frames: 0; T s)`.
//!
//! * [`tests`]: the short versions, for `cargo xtask test` (a few seconds each), plus
//!   the host syscall fuzz's summary line.
//! * [`soak`]: `cargo xtask soak`: the long versions (the fuzzer with 10^6 calls across
//!   its child processes, three hostile rounds, 2 minutes of soak, the fork bomb at the
//!   default process limit, a long host fuzz).

use crate::init::Kernel;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One reliability run of a user program as init.
#[derive(Debug, Clone)]
pub struct Case {
    /// Test name (`reliability_NAME`).
    pub name: &'static str,
    /// Program in `target/user/`.
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<String>,
    /// QEMU `-m`.
    pub memory: &'static str,
    /// More kernel command-line words (besides `quiet frames`).
    pub cmdline: &'static str,
    /// Text of the lines that carry the counts (echoed in the summary).
    pub count_line: &'static str,
    /// Bound on the whole run.
    pub timeout: Duration,
}

fn case(name: &'static str, program: &'static str, args: &[&str]) -> Case {
    Case {
        name,
        program,
        args: args.iter().map(|a| a.to_string()).collect(),
        memory: "128M",
        cmdline: "",
        count_line: "",
        timeout: Duration::from_secs(120),
    }
}

/// The short versions (`cargo xtask test`).
pub fn short_cases() -> Vec<Case> {
    vec![
        Case {
            count_line: "fuzz: made",
            ..case("fuzz", "fuzz", &["20000"])
        },
        Case {
            cmdline: "maxproc=200",
            count_line: "fork failures",
            ..case("forkbomb_eagain", "forkbomb", &["2"])
        },
        Case {
            memory: "64M",
            count_line: "fork failures",
            ..case("forkbomb_enomem", "forkbomb", &["2"])
        },
        Case {
            memory: "64M",
            count_line: "touched",
            ..case("memhog", "memhog", &["2", "3"])
        },
        Case {
            memory: "64M",
            count_line: "oomhog: hog ended",
            ..case("oomhog", "oomhog", &["4"])
        },
        Case {
            count_line: "soak:",
            ..case("soak", "soak", &["5", "4"])
        },
        Case {
            count_line: "sigstorm:",
            ..case("sigstorm", "sigstorm", &["5", "3"])
        },
        Case {
            count_line: "hostile:",
            ..case("hostile", "hostile", &["1"])
        },
    ]
}

/// The long versions (`cargo xtask soak`).
pub fn long_cases() -> Vec<Case> {
    vec![
        Case {
            count_line: "fuzz: made",
            timeout: Duration::from_secs(600),
            ..case("fuzz_long", "fuzz", &["1000000", "0x7e57"])
        },
        Case {
            count_line: "hostile:",
            timeout: Duration::from_secs(300),
            ..case("hostile_long", "hostile", &["3"])
        },
        Case {
            memory: "512M",
            count_line: "fork failures",
            timeout: Duration::from_secs(300),
            ..case("forkbomb_default_limit", "forkbomb", &["2"])
        },
        Case {
            memory: "64M",
            count_line: "touched",
            ..case("memhog_long", "memhog", &["10", "6"])
        },
        Case {
            count_line: "soak:",
            timeout: Duration::from_secs(300),
            ..case("soak_2min", "soak", &["120", "6"])
        },
    ]
}

/// What one case showed.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Init's status (None: never reported).
    pub status: Option<i32>,
    /// Kernel panics seen (0 or 1: a panic ends the run).
    pub panics: u32,
    /// How QEMU ended when it did not power off cleanly without a panic (killed at
    /// the timeout, a crash): a hang or a run too slow for its bound.
    pub unclean: Option<String>,
    /// Frames missing after the run (baseline - after); None if not reported.
    pub leaked: Option<i64>,
    /// Growth of the bytes the kernel heap hands out (tables keep some capacity).
    pub heap_growth: Option<i64>,
    /// The program's count lines.
    pub counts: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

impl Verdict {
    /// Whether the case passed.
    pub fn ok(&self) -> bool {
        self.status == Some(0)
            && self.panics == 0
            && self.unclean.is_none()
            && self.leaked == Some(0)
            && !self.counts.is_empty()
    }
}

/// `frames: baseline N, after M (...)` -> N - M.
pub fn parse_frames(line: &str) -> Option<i64> {
    let rest = line.trim().strip_prefix("frames: baseline ")?;
    let (base, rest) = rest.split_once(", after ")?;
    let after = rest.split_whitespace().next()?;
    Some(base.parse::<i64>().ok()? - after.trim_end_matches(',').parse::<i64>().ok()?)
}

/// `... heap bytes in use A -> B, ...` -> B - A.
pub fn parse_heap_growth(line: &str) -> Option<i64> {
    let rest = line.split("heap bytes in use ").nth(1)?;
    let (a, rest) = rest.split_once(" -> ")?;
    let b = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    Some(b.parse::<i64>().ok()? - a.parse::<i64>().ok()?)
}

/// Bound on one case under the aarch64 kernel (TCG): the short cases take seconds,
/// but the fork bomb in 64 MiB takes from 2 s to 45 s, bimodally (its 430 bombers
/// each wake every 20 ms once fork fails, and some runs crawl through that; measured
/// on 2 Dec 2026, not yet understood), so the bound leaves room above that.
const AARCH64_TIMEOUT: Duration = Duration::from_secs(120);

/// Boots `kernel` with `c.program` (from `user_dir`) as init and judges the run.
/// On aarch64 the timeout is at most [`AARCH64_TIMEOUT`], and the memory at least
/// what the initrd's load address needs (see `aarch64.rs`).
pub fn run_case(kernel: &Kernel, user_dir: &Path, c: &Case) -> Result<Verdict, String> {
    let mut argv = vec![format!("/{}", c.program)];
    argv.extend(c.args.iter().cloned());
    let image = std::path::PathBuf::from(crate::target_dir()).join(format!(
        "initrd-rel-{}{}.cpio",
        kernel.label().replace('/', "-"),
        c.name
    ));
    crate::initrd::write(
        &image,
        crate::initrd::programs_in(user_dir),
        &argv,
        &crate::test_env(),
    )?;
    let append = format!("quiet frames {}", c.cmdline).trim().to_string();
    let timeout = match kernel {
        Kernel::X86_64 { .. } => c.timeout,
        Kernel::Aarch64 { .. } => c.timeout.min(AARCH64_TIMEOUT),
    };
    let start = Instant::now();
    let run = kernel.boot_init(&image, Some(c.memory), &append, timeout, false)?;
    let _ = std::fs::remove_file(&image);
    let output = run.output;
    let mut v = Verdict {
        status: run.status,
        seconds: start.elapsed().as_secs_f64(),
        ..Verdict::default()
    };
    v.panics = u32::from(output.contains("KERNEL PANIC"));
    if !run.clean && v.panics == 0 {
        v.unclean = Some(run.ending.clone());
    }
    for line in output.lines() {
        if let Some(l) = parse_frames(line) {
            v.leaked = Some(l);
            v.heap_growth = parse_heap_growth(line);
        } else if !c.count_line.is_empty() && line.contains(c.count_line) {
            v.counts.push(line.trim().to_string());
        }
    }
    if !v.ok() {
        println!(
            "  {}reliability_{}: {}, output:\n{output}",
            kernel.label(),
            c.name,
            run.ending
        );
    }
    Ok(v)
}

/// Runs `cases`, printing one line each; returns (passed, failed).
pub fn run_cases(kernel: &Kernel, user_dir: &Path, cases: &[Case]) -> (u32, u32) {
    let (mut passed, mut failed) = (0, 0);
    for c in cases {
        let ok = match run_case(kernel, user_dir, c) {
            Ok(v) => {
                report(&kernel.label(), c, &v);
                v.ok()
            }
            Err(e) => {
                println!(
                    "test {}reliability_{} ... FAILED: {e}",
                    kernel.label(),
                    c.name
                );
                false
            }
        };
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    (passed, failed)
}

fn report(label: &str, c: &Case, v: &Verdict) {
    let leaked = v
        .leaked
        .map_or("not reported".to_string(), |l| l.to_string());
    println!(
        "test {label}reliability_{} ... {} ({}; status {:?}; panics: {}{}, leaked frames: {}; heap bytes in use {:+}; {:.1} s)",
        c.name,
        if v.ok() { "ok" } else { "FAILED" },
        v.counts.join(" | "),
        v.status,
        v.panics,
        v.unclean
            .as_ref()
            .map_or(String::new(), |how| format!(", not a clean end: {how}")),
        leaked,
        v.heap_growth.unwrap_or(0),
        v.seconds
    );
}

/// Runs the host syscall fuzz with its output shown; prints its summary line.
/// `sequences` (if any) overrides its default count. Returns whether it passed.
pub fn host_fuzz(root: &Path, sequences: Option<u64>) -> bool {
    let mut cmd = Command::new(crate::cargo());
    cmd.current_dir(root)
        .args([
            "test",
            "-q",
            "-p",
            "kernel",
            "--lib",
            "syscall_fuzz_counts_panics_and_leaked_frames",
        ])
        .args(["--", "--nocapture"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(n) = sequences {
        cmd.env("KERNEL_FUZZ_SEQUENCES", n.to_string());
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            println!("test reliability_host_syscall_fuzz ... FAILED: {e}");
            return false;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.starts_with("syscall fuzz:"))
        .unwrap_or("no summary");
    let ok = out.status.success();
    println!(
        "test reliability_host_syscall_fuzz ... {} ({summary})",
        if ok { "ok" } else { "FAILED" }
    );
    ok
}

/// The short versions for `cargo xtask test` under `kernel` (programs from
/// `user_dir`), with the host syscall fuzz on x86_64: (passed, failed).
pub fn tests(kernel: &Kernel, user_dir: &Path) -> (u32, u32) {
    println!(
        "== {}reliability (issue 7): short versions; `cargo xtask soak` runs the long ones",
        kernel.label()
    );
    // The host fuzz runs once, beside the one-CPU x86_64 cases.
    let host = match kernel {
        Kernel::X86_64 { base, .. } if base.smp == 1 => {
            Some(host_fuzz(&crate::workspace_root(), None))
        }
        _ => None,
    };
    // Every case on every CPU count (the memory-edge ones joined the runs on more
    // CPUs once the locks stopped queueing behind descheduled vCPUs), except
    // `hostile` on 4: on 4 vCPUs over these 2 host cores it took 61 s (aarch64) to
    // 92 s (x86_64) of its 120 s bound on a loaded machine (13 s on 2 aarch64 CPUs).
    let hostile_here = kernel.cpus() <= 2;
    let cases: Vec<Case> = short_cases()
        .into_iter()
        .filter(|c| hostile_here || c.name != "hostile")
        .collect();
    let (p, f) = run_cases(kernel, user_dir, &cases);
    match host {
        Some(ok) => (p + u32::from(ok), f + u32::from(!ok)),
        None => (p, f),
    }
}

/// `cargo xtask soak [--kvm]`: the long versions; ends with `N passed, N failed`.
pub fn soak(args: &[String]) -> Result<std::process::ExitCode, String> {
    let cfg = crate::parse_config(args)?;
    crate::setup::ensure_qemu()?;
    let kernel = crate::build_kernel()?;
    let user_dir = crate::build_user_programs(crate::user::Arch::X86_64);
    println!("== reliability (issue 7): long versions");
    let host = host_fuzz(&crate::workspace_root(), Some(3000));
    let k = Kernel::X86_64 {
        image: &kernel,
        base: &cfg,
    };
    let (p, f) = run_cases(&k, &user_dir, &long_cases());
    let (p, f) = (p + u32::from(host), f + u32::from(!host));
    println!("{p} passed, {f} failed");
    Ok(if f == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_frames, parse_heap_growth};

    #[test]
    fn parses_the_frame_balance() {
        let l = "frames: baseline 31526, after 31520 (free 31522 -> 31478, heap-held 4 -> 48)";
        assert_eq!(parse_frames(l), Some(6));
        assert_eq!(parse_frames("frames: baseline 7, after 7"), Some(0));
        assert_eq!(parse_frames("fuzz: made 3 calls"), None);
        let l = "frames: baseline 1, after 1 (free 1 -> 1, heap bytes in use 128 -> 3944, x)";
        assert_eq!(parse_heap_growth(l), Some(3816));
    }
}

//! `cargo xtask bench`: every figure a ratio against a reference measured in the same run.
//!
//! ## Wiring (in `xtask/src/main.rs`)
//! `cargo xtask bench [--quick] [--qemu-only] [--icount-only]` calls [`run_with`] with [`Options`]:
//! `--quick` makes the host part one short round, `--qemu-only` skips the host part
//! and reuses `target/bench/host.json` from the last run. It returns `Err(message)`
//! when a host step fails; the in-QEMU part never fails the command (a row it could
//! not measure says why).
//!
//! ## What it does
//! 1. **Host** ([`run_host`]): runs the `kernel-bench` crate
//!    (`cargo run --release -p kernel-bench -- --out target/bench`), which measures the
//!    kernel's frame allocator, heap, page tables and scheduler against peer crates with
//!    criterion and writes `target/bench/host.json` (its console output goes to
//!    `target/bench/host.log`). One to three minutes; nothing of it runs under
//!    `cargo test`.
//! 2. **QEMU** ([`qemu_rows`], issue 6 items 2-3): the static program `user/c/bench.c`
//!    (getpid, sched_yield ping-pong, fork+exit+wait, mmap+touch+munmap of 4 KiB and
//!    1 MiB, page faults, thread create+join, pipe ping-pong, signal delivery and
//!    return, fork+execve+exit+wait) runs as pid 1 under this kernel (initrd
//!    of [`crate::initrd`]) and under Debian's Linux (`linux-image-amd64`, initramfs
//!    of [`crate::linuxref`]: busybox, `/init`, the program) in the same QEMU
//!    (`-M microvm -m 256M`, one vCPU), under the same accelerator: KVM is tried
//!    first when `/dev/kvm` opens, and both kernels fall back to TCG when either fails
//!    there. The runs alternate (Linux, kernel, ...) [`ROUNDS`] times per kernel; a
//!    figure is the lowest of its runs. Boot time is measured here: wall clock from
//!    QEMU's start to the program's first line (`bench start`). About a minute under
//!    TCG (Linux boots in 5-10 s there); without a Linux reference (no root to
//!    install it, no network) the Linux column is empty and the setup line says why.
//! 3. **Instruction counts** (`crate::icount`, issue 14): the same program under
//!    `-icount shift=0,sleep=off` once per kernel, on x86_64 and on aarch64 (Debian's
//!    arm64 Linux on `virt`), where its clock readings are instruction counts.
//! 4. **Scaling** (`crate::scaling`, issue 13): N threads on N CPUs (1, 2, 4) of
//!    CPU-bound, page-fault and fork work, beside Linux in the same QEMU.
//! 5. Prints the tables and writes it all to `target/bench/bench.json` (the
//!    instruction counts as its `"icount"` rows, and alone in `icount.json`; the
//!    scaling rows in `scaling.json`).
//!
//! `--icount-only` runs step 3 alone and writes only `icount.json`; `--scaling-only`
//! runs step 4 alone and writes only `scaling.json`.
//!
//! ## Ratios
//! Every ratio is `reference ns / kernel ns` read as "how many times faster the kernel
//! is": host rows divide the peer crate's figure by the kernel's (`host.json` calls it
//! `ratio_vs_reference`), QEMU rows divide Linux's figure by the kernel's. Above 1.00
//! the kernel is faster; the issue's "within 1.5x of Linux" means at least 0.67.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to run the benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// One short round per contender instead of three interleaved ones (smoke runs).
    pub quick: bool,
    /// Skip the host part: reuse `target/bench/host.json` from the last run, if any.
    pub qemu_only: bool,
    /// Only the instruction-count table (`crate::icount`), into `target/bench/icount.json`.
    pub icount_only: bool,
    /// Only the scaling table (`crate::scaling`), into `target/bench/scaling.json`.
    pub scaling_only: bool,
}

/// Runs every benchmark, prints the table and writes `target/bench/bench.json`
/// under `root` (the workspace root).
pub fn run_with(root: &Path, opts: &Options) -> Result<(), String> {
    let out = out_dir(root);
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    if opts.scaling_only {
        let scaling = crate::scaling::measure(root);
        print!("{}", crate::scaling::table(&scaling));
        return crate::scaling::write_json(&out, &scaling);
    }
    if opts.icount_only {
        let icount = crate::icount::measure_all(root);
        print!("{}", crate::icount::table(&icount));
        return write_icount_json(&out, &icount);
    }
    let host = if opts.qemu_only {
        read_host_json(&out.join("host.json")).unwrap_or_else(|e| {
            println!("host benchmarks skipped (--qemu-only); no earlier figures: {e}");
            HostReport::default()
        })
    } else {
        run_host(root, &out, opts)?
    };
    let qemu = qemu_rows(root);
    let icount = crate::icount::measure_all(root);
    let scaling = crate::scaling::measure(root);
    let text =
        table(&host, &qemu) + &crate::icount::table(&icount) + &crate::scaling::table(&scaling);
    print!("{text}");
    crate::scaling::write_json(&out, &scaling)?;
    let path = out.join("bench.json");
    std::fs::write(&path, combined_json(&host, &qemu, &icount))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "saved {} (host rows also in target/bench/host.json)",
        path.display()
    );
    write_icount_json(&out, &icount)
}

/// Writes `icount.json` under `out`: the instruction-count rows alone.
fn write_icount_json(out: &Path, icount: &[crate::icount::IcountReport]) -> Result<(), String> {
    let (setup, rows) = crate::icount::to_json(icount);
    let doc = serde_json::json!({"schema": 1, "icount_setup": setup, "icount": rows});
    let path = out.join("icount.json");
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("saved {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------
// Host rows

/// One row of `host.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRow {
    /// `frame`, `heap`, `paging` or `scheduler`.
    pub group: String,
    /// What one operation is.
    pub workload: String,
    /// Who was measured.
    pub contender: String,
    /// Whether this is the reference row (the kernel's own figure) of its workload.
    pub reference: bool,
    /// Median ns per operation, if measured.
    pub ns_per_op: Option<f64>,
    /// `ns_per_op / reference's ns_per_op`, if both were measured.
    pub ratio: Option<f64>,
    /// `(max - min) / min` of the interleaved rounds, if there were several.
    pub spread: Option<f64>,
    /// Why the row is not measured, or other remarks.
    pub note: Option<String>,
}

/// What `host.json` says, plus the machine it came from.
#[derive(Debug, Clone, Default)]
pub struct HostReport {
    /// CPU model and count, e.g. "AMD EPYC, 2 CPUs".
    pub machine: String,
    /// The rows, in the order measured.
    pub rows: Vec<HostRow>,
}

/// Runs the host benchmarks (the `kernel-bench` crate) and reads back `host.json`.
pub fn run_host(root: &Path, out: &Path, opts: &Options) -> Result<HostReport, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log_path = out.join("host.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let err_log = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["run", "--release", "-p", "kernel-bench", "--", "--out"])
        .arg(out);
    if opts.quick {
        cmd.arg("--quick");
    }
    println!(
        "host benchmarks: building and running kernel-bench (about a minute; log: {})",
        log_path.display()
    );
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "kernel-bench failed ({status}); last lines of {}:\n{}",
            log_path.display(),
            tail.join("\n")
        ));
    }
    read_host_json(&out.join("host.json"))
}

/// Reads `host.json` as written by the `kernel-bench` crate.
pub fn read_host_json(path: &Path) -> Result<HostReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_host_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_host_json(text: &str) -> Result<HostReport, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("JSON: {e}"))?;
    let m = doc.get("machine");
    let cpu = m.and_then(|m| m.get("cpu")).and_then(Value::as_str);
    let nproc = m.and_then(|m| m.get("nproc")).and_then(Value::as_f64);
    let load = |k: &str| {
        doc.get(k)
            .and_then(Value::as_f64)
            .map_or("?".to_string(), |l| format!("{l:.2}"))
    };
    let load_end = m
        .and_then(|m| m.get("loadavg_at_end"))
        .and_then(Value::as_f64)
        .map_or("?".to_string(), |l| format!("{l:.2}"));
    let machine = format!(
        "{}, {} CPUs, load average {} -> {}, commit {}",
        cpu.unwrap_or("unknown CPU"),
        nproc.map_or("?".to_string(), |n| format!("{n}")),
        load("loadavg_at_start"),
        load_end,
        doc.get("commit").and_then(Value::as_str).unwrap_or("?")
    );
    let rows = doc
        .get("rows")
        .and_then(Value::as_array)
        .ok_or("no \"rows\" array")?;
    let text_of = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).map(String::from);
    let rows = rows
        .iter()
        .map(|r| HostRow {
            group: text_of(r, "group").unwrap_or_default(),
            workload: text_of(r, "workload").unwrap_or_default(),
            contender: text_of(r, "contender").unwrap_or_default(),
            reference: r.get("reference").and_then(Value::as_bool).unwrap_or(false),
            ns_per_op: r.get("ns_per_op").and_then(Value::as_f64),
            ratio: r.get("ratio_vs_reference").and_then(Value::as_f64),
            spread: r.get("spread").and_then(Value::as_f64),
            note: text_of(r, "note"),
        })
        .collect();
    Ok(HostReport { machine, rows })
}

// ---------------------------------------------------------------------------------
// QEMU rows (issue 6, items 2-3): the hook

/// The in-QEMU workloads: (name `user/c/bench.c` prints, table text). The last one
/// is measured by xtask itself (QEMU start to the first line of the first user
/// process), not by the program.
pub const QEMU_WORKLOADS: [(&str, &str); 12] = [
    ("getpid", "getpid round trip"),
    (
        "yield_pingpong_roundtrip",
        "context switch: sched_yield ping-pong round trip, 2 processes",
    ),
    ("fork_exit_wait", "fork + exit + wait"),
    ("mmap_touch_munmap_4k", "mmap + touch + munmap, 1 page"),
    ("mmap_touch_munmap_1m", "mmap + touch + munmap, 1 MiB"),
    (
        "page_fault",
        "page fault (first touch of an anonymous page)",
    ),
    ("thread_create_join", "thread create + join"),
    (
        "pipe_pingpong_roundtrip",
        "pipe ping-pong round trip, 2 processes",
    ),
    (
        "signal_handler_roundtrip",
        "signal: kill(self) + handler + rt_sigreturn",
    ),
    ("fork_execve_exit_wait", "fork + execve + exit + wait"),
    (
        "file_create_write_unlink",
        "file create + write 4 KiB + unlink on tmpfs",
    ),
    ("boot_to_user", "boot: QEMU start to first user process"),
];

/// One in-QEMU figure: this kernel against Linux in the same VM.
#[derive(Debug, Clone, PartialEq)]
pub struct QemuRow {
    /// Key of the workload (see [`QEMU_WORKLOADS`]).
    pub key: String,
    /// Table text.
    pub workload: String,
    /// ns per operation under this kernel.
    pub kernel_ns: Option<f64>,
    /// ns per operation under Linux, same QEMU, same accelerator.
    pub linux_ns: Option<f64>,
    /// `kvm` or `tcg`.
    pub accel: Option<String>,
    /// Why not measured, or remarks.
    pub note: Option<String>,
}

impl QemuRow {
    /// `linux_ns / kernel_ns`: above 1.00 the kernel is faster.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.linux_ns? / self.kernel_ns?)
    }
}

/// The in-QEMU rows and the conditions they were measured under.
#[derive(Debug, Clone, Default)]
pub struct QemuReport {
    /// Machine, memory, CPUs, accelerator, Linux version, rounds (one line).
    pub setup: String,
    /// One row per [`QEMU_WORKLOADS`] entry, in that order.
    pub rows: Vec<QemuRow>,
}

/// QEMU machine of both kernels.
const MACHINE: &str = "microvm";
/// Guest memory of both kernels.
const MEMORY: &str = "256M";
/// Runs of each kernel, interleaved (Linux, kernel, Linux, kernel...); a figure is
/// the lowest of its runs.
const ROUNDS: usize = 3;
/// `bench`'s argument (iterations multiplier).
const SCALE: &str = "1";
/// Bound on one run under TCG (Linux boots in ~5 s, the program runs ~5-10 s).
const TCG_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on a KVM run: beyond it KVM is taken as hung and both kernels use TCG.
/// (`crate::qemu::boot`'s TCG fallback gets the same bound, so it must fit a TCG run.)
const KVM_TIMEOUT: Duration = Duration::from_secs(60);
/// The first line `bench` prints; xtask times QEMU start -> this line.
const START_MARKER: &str = "bench start";
/// The last line `bench` prints.
const DONE_MARKER: &str = "bench done";

/// Items 2-3: runs `user/c/bench.c` under this kernel and under Debian's Linux in
/// the same QEMU (machine [`MACHINE`], [`MEMORY`], one vCPU, same accelerator) and
/// fills one row per workload, plus the boot time (QEMU start to the program's
/// first line, wall clock, measured here). Anything that cannot run leaves its
/// column empty with the reason in the row's note; this never fails the bench.
pub fn qemu_rows(root: &Path) -> QemuReport {
    match measure_qemu(root) {
        Ok(report) => report,
        Err(e) => {
            println!("in-QEMU benchmarks not measured: {e}");
            QemuReport {
                setup: format!("not measured: {e}"),
                rows: empty_rows(&format!("not measured: {e}")),
            }
        }
    }
}

fn empty_rows(note: &str) -> Vec<QemuRow> {
    QEMU_WORKLOADS
        .iter()
        .map(|(key, text)| QemuRow {
            key: key.to_string(),
            workload: text.to_string(),
            kernel_ns: None,
            linux_ns: None,
            accel: None,
            note: Some(note.into()),
        })
        .collect()
}

/// One QEMU run of `bench`.
#[derive(Debug, Clone, Default)]
struct BenchRun {
    /// The accelerator that ran it.
    accel: &'static str,
    /// `(workload, ns/op)` as printed.
    figures: Vec<(String, f64)>,
    /// Wall time from QEMU's start to [`START_MARKER`].
    boot: Option<Duration>,
    /// Wall time of the whole run.
    total: Duration,
    /// Whether [`DONE_MARKER`] came.
    done: bool,
    /// How QEMU ended, and the last lines, for messages.
    ending: String,
}

impl BenchRun {
    fn ok(&self) -> bool {
        self.done && !self.figures.is_empty()
    }

    /// One progress line.
    fn summary(&self) -> String {
        let boot = self
            .boot
            .map_or("-".into(), |b| format!("{:.0} ms", b.as_secs_f64() * 1e3));
        if self.ok() {
            format!(
                "{}: {} figures, {boot} to the first line, {:.1} s in all",
                self.accel,
                self.figures.len(),
                self.total.as_secs_f64()
            )
        } else {
            format!("{}: incomplete ({})", self.accel, self.ending)
        }
    }
}

/// Boots `kernel` with `initrd` and collects what `bench` prints. With `kvm`, QEMU
/// is tried under KVM first ([`crate::qemu::boot`] falls back to TCG when KVM
/// cannot start or hangs before printing anything; `accel` says which ran).
fn run_bench(kernel: &Path, initrd: &Path, append: &str, kvm: bool) -> Result<BenchRun, String> {
    let cfg = crate::qemu::QemuConfig {
        machine: MACHINE.into(),
        memory: MEMORY.into(),
        append: append.into(),
        kvm,
        initrd: Some(initrd.display().to_string()),
        smp: 1,
        extra: Vec::new(),
    };
    let timeout = if kvm { KVM_TIMEOUT } else { TCG_TIMEOUT };
    let mut marker_at = None;
    let out = crate::qemu::boot(&kernel.display().to_string(), &cfg, timeout, &mut |line| {
        if marker_at.is_none() && line.trim() == START_MARKER {
            marker_at = Some(Instant::now());
        }
    })?;
    let end = Instant::now();
    // `out.total` runs from the start of the attempt that produced the output (after
    // a KVM fallback, the TCG one) to QEMU's exit, a few microseconds before `end`.
    let boot = marker_at.map(|m| out.total.saturating_sub(end - m));
    let tail: Vec<&str> = out.log.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Ok(BenchRun {
        accel: out.accel,
        figures: parse_bench_lines(&out.log),
        boot,
        total: out.total,
        done: out.log.lines().any(|l| l.trim() == DONE_MARKER),
        ending: format!("{:?}; last lines: {}", out.outcome, tail.join(" | ")),
    })
}

/// Builds the kernel, the program and both initrds, picks the accelerator, runs.
fn measure_qemu(root: &Path) -> Result<QemuReport, String> {
    let started = Instant::now();
    crate::setup::ensure_qemu()?;
    println!("in-QEMU benchmarks: building the kernel and the user programs");
    let kernel = PathBuf::from(crate::build_kernel()?);
    let user_dir = crate::build_user_programs(crate::user::Arch::X86_64);
    let bench_bin = user_dir.join("bench");
    let bench = std::fs::read(&bench_bin).map_err(|e| {
        format!(
            "{} missing ({e}): user programs not built",
            bench_bin.display()
        )
    })?;
    let out = out_dir(root);
    let program = || crate::initrd::Member {
        name: "bench".into(),
        data: bench.clone(),
    };
    let argv = vec!["/bench".to_string(), SCALE.to_string()];

    let ours_initrd = out.join("initrd-kernel.cpio");
    crate::initrd::write(&ours_initrd, vec![program()], &argv, &crate::test_env())?;

    let linux = crate::linuxref::ensure().and_then(|r| {
        let path = out.join("initramfs-linux.cpio");
        crate::linuxref::write_initramfs(&path, &r, vec![program()], std::slice::from_ref(&argv))?;
        Ok((r, path))
    });
    if let Err(e) = &linux {
        println!("in-QEMU benchmarks: {e}; measuring this kernel only");
    }

    let linux_append = crate::linuxref::append();
    let mut ours_runs: Vec<BenchRun> = Vec::new();
    let mut linux_runs: Vec<BenchRun> = Vec::new();
    let ours = |kvm: bool| run_bench(&kernel, &ours_initrd, "quiet", kvm);
    let theirs = |kvm: bool| match &linux {
        Ok((r, path)) => run_bench(&r.kernel, path, &linux_append, kvm).map(Some),
        Err(_) => Ok(None),
    };

    // The accelerator: KVM only if both kernels finish under it (Linux first: it is
    // the one seen hanging under this nested KVM), else TCG for both.
    let mut accel = "tcg";
    let mut kvm_note = None;
    if accelerator() == "kvm" {
        println!("in-QEMU benchmarks: trying KVM (bound {KVM_TIMEOUT:?} per run)");
        let l = theirs(true)?;
        if let Some(l) = &l {
            println!("  Linux: {}", l.summary());
        }
        let l_ok = l.as_ref().is_none_or(|r| r.ok() && r.accel == "kvm");
        let o = if l_ok { Some(ours(true)?) } else { None };
        if let Some(o) = &o {
            println!("  this kernel: {}", o.summary());
        }
        let o_ok = o.as_ref().is_some_and(|r| r.ok() && r.accel == "kvm");
        if l_ok && o_ok {
            accel = "kvm";
        } else {
            let fate = |r: &BenchRun| {
                if r.accel != "kvm" {
                    "QEMU could not run it (crashed or hung before any output; QEMU's \
                     message is above)"
                        .to_string()
                } else {
                    r.ending.clone()
                }
            };
            let why = match (&l, &o) {
                (Some(l), _) if !l_ok => format!("Linux under KVM: {}", fate(l)),
                (_, Some(o)) => format!("this kernel under KVM: {}", fate(o)),
                _ => "KVM run failed".into(),
            };
            println!("in-QEMU benchmarks: KVM unusable ({why}); both kernels under TCG");
            kvm_note = Some(why);
        }
        // A run that finished (possibly after QEMU's own fallback) is a valid round
        // of the accelerator it ran under.
        for (runs, r) in [(&mut linux_runs, l), (&mut ours_runs, o)] {
            if let Some(r) = r.filter(|r| r.ok() && r.accel == accel) {
                runs.push(r);
            }
        }
    }
    let kvm = accel == "kvm";
    for round in 0..ROUNDS {
        if linux.is_ok() && linux_runs.len() <= round {
            println!("in-QEMU benchmarks: Linux, round {} ({accel})", round + 1);
            if let Some(r) = theirs(kvm)? {
                println!("  {}", r.summary());
                linux_runs.push(r);
            }
        }
        if ours_runs.len() <= round {
            println!(
                "in-QEMU benchmarks: this kernel, round {} ({accel})",
                round + 1
            );
            let r = ours(kvm)?;
            println!("  {}", r.summary());
            ours_runs.push(r);
        }
    }

    let version = linux.as_ref().map(|(r, _)| r.version());
    let mut setup = format!(
        "QEMU -M {MACHINE} -m {MEMORY}, 1 vCPU, accel {accel}, Linux {}, `bench {SCALE}`, \
         {ROUNDS} interleaved runs per kernel, lowest shown",
        version.as_deref().unwrap_or("-")
    );
    if let Some(n) = &kvm_note {
        let _ = write!(setup, "; KVM not used: {n}");
    }
    if let Err(e) = &linux {
        let _ = write!(setup, "; {e}");
    }
    let linux_note = linux
        .as_ref()
        .err()
        .map(|_| "no Linux reference (see above)");
    let rows = combine_rows(accel, &ours_runs, &linux_runs, linux_note);
    println!(
        "in-QEMU benchmarks: {:.0} s (builds included)",
        started.elapsed().as_secs_f64()
    );
    Ok(QemuReport { setup, rows })
}

/// The lowest figure of `key` over `runs`, and the runs' spread ((max - min) / min).
fn best(runs: &[BenchRun], key: &str) -> (Option<f64>, Option<f64>) {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            if key == "boot_to_user" {
                r.boot.map(|d| d.as_secs_f64() * 1e9)
            } else {
                r.figures.iter().find(|(n, _)| n == key).map(|(_, x)| *x)
            }
        })
        .collect();
    let min = v.iter().copied().reduce(f64::min);
    let max = v.iter().copied().reduce(f64::max);
    let spread = match (min, max) {
        (Some(lo), Some(hi)) if v.len() > 1 && lo > 0.0 => Some((hi - lo) / lo),
        _ => None,
    };
    (min, spread)
}

/// One row per workload from the runs of both kernels.
fn combine_rows(
    accel: &str,
    ours: &[BenchRun],
    linux: &[BenchRun],
    linux_note: Option<&str>,
) -> Vec<QemuRow> {
    QEMU_WORKLOADS
        .iter()
        .map(|(key, text)| {
            let (k, ks) = best(ours, key);
            let (l, ls) = best(linux, key);
            let mut notes = Vec::new();
            let pct = |s: Option<f64>| s.map_or("-".into(), |s| format!("{:.0}%", s * 100.0));
            if ks.is_some() || ls.is_some() {
                notes.push(format!("spread {} / {}", pct(ks), pct(ls)));
            }
            if *key == "boot_to_user" {
                let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.0}", v / 1e6));
                let mut note = format!("{} ms / {} ms wall", ms(k), ms(l));
                if l.is_some() {
                    note.push_str("; Linux's includes /init (busybox sh) starting the program");
                }
                notes.push(note);
            }
            if k.is_none() {
                notes.push("no figure from this kernel".into());
            }
            match linux_note {
                Some(n) => notes.push(n.into()),
                None if l.is_none() => notes.push("no figure from Linux".into()),
                None => {}
            }
            QemuRow {
                key: key.to_string(),
                workload: text.to_string(),
                kernel_ns: k,
                linux_ns: l,
                accel: Some(accel.to_string()),
                note: (!notes.is_empty()).then(|| notes.join("; ")),
            }
        })
        .collect()
}

/// The result lines of `user/c/bench.c` in a log (serial console or stdout), in
/// order: `bench NAME iters=N ns_per_op=X` gives `(NAME, X)`. Other lines (including
/// `bench done`) and malformed ones are skipped.
pub fn parse_bench_lines(log: &str) -> Vec<(String, f64)> {
    log.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            if it.next()? != "bench" {
                return None;
            }
            let name = it.next()?.to_string();
            let ns = it
                .find_map(|field| field.strip_prefix("ns_per_op="))?
                .parse::<f64>()
                .ok()?;
            ns.is_finite().then_some((name, ns))
        })
        .collect()
}

/// Which accelerator QEMU will get: `kvm` when `/dev/kvm` can be opened, else `tcg`.
pub fn accelerator() -> &'static str {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm {
        "kvm"
    } else {
        "tcg"
    }
}

// ---------------------------------------------------------------------------------
// Output

fn fmt_ns(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1e4 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// The combined table.
pub fn table(host: &HostReport, qemu: &QemuReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n== host benchmarks ({}) ==", host.machine);
    let cw = host
        .rows
        .iter()
        .map(|r| r.contender.len())
        .max()
        .unwrap_or(10)
        .max(10)
        + 2;
    let _ = writeln!(
        out,
        "{:<w$} {:>10} {:>16} {:>7}",
        "contender",
        "ns/op",
        "contender/kernel",
        "spread",
        w = cw + 4
    );
    let mut last: Option<(&str, &str)> = None;
    let mut notes: Vec<&str> = Vec::new();
    for r in &host.rows {
        if last != Some((r.group.as_str(), r.workload.as_str())) {
            let _ = writeln!(out, "{}", r.workload);
            last = Some((r.group.as_str(), r.workload.as_str()));
        }
        let mark = if r.reference { "*" } else { " " };
        let _ = writeln!(
            out,
            "  {mark} {:<cw$} {:>10} {:>16} {:>7}",
            r.contender,
            fmt_ns(r.ns_per_op),
            fmt_ratio(r.ratio),
            r.spread
                .map_or_else(|| "-".into(), |v| format!("{:.0}%", v * 100.0))
        );
        if let Some(n) = r.note.as_deref() {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
    }
    let _ = writeln!(
        out,
        "(* = reference: the kernel's own figure; for the scheduler, 10 threads. \
         contender/kernel > 1.00: the kernel is faster; ns/op: lowest of the interleaved \
         rounds' medians, spread: (max - min) / min of the rounds)"
    );
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }

    let _ = writeln!(out, "\n== in QEMU: this kernel vs Linux in the same VM ==");
    let _ = writeln!(out, "({})", qemu.setup);
    let ww = qemu
        .rows
        .iter()
        .map(|r| r.workload.len())
        .max()
        .unwrap_or(10)
        .max(10);
    let _ = writeln!(
        out,
        "{:<ww$} {:>6} {:>11} {:>11} {:>13}",
        "workload", "accel", "kernel ns", "Linux ns", "Linux/kernel"
    );
    for r in &qemu.rows {
        let _ = writeln!(
            out,
            "{:<ww$} {:>6} {:>11} {:>11} {:>13}{}",
            r.workload,
            r.accel.as_deref().unwrap_or("-"),
            fmt_ns(r.kernel_ns),
            fmt_ns(r.linux_ns),
            fmt_ratio(r.ratio()),
            r.note
                .as_deref()
                .map(|n| format!("  {n}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "(Linux/kernel > 1.00: this kernel is faster; spread: (max - min) / min of the runs, \
         this kernel / Linux)"
    );
    out
}

/// `bench.json`: the host rows, the TCG rows (`"qemu"`) and the instruction-count
/// rows (`"icount"`, one object per row, see `crate::icount::IcountRow::to_json`).
fn combined_json(
    host: &HostReport,
    qemu: &QemuReport,
    icount: &[crate::icount::IcountReport],
) -> String {
    let mut s = String::from("{\n  \"schema\": 2,\n");
    let _ = writeln!(s, "  \"machine\": {},", quote(&host.machine));
    s.push_str("  \"ratio\": \"reference ns / kernel ns; > 1 means the kernel is faster\",\n");
    s.push_str("  \"host\": [\n");
    for (i, r) in host.rows.iter().enumerate() {
        let _ = write!(
            s,
            "    {{\"group\": {}, \"workload\": {}, \"contender\": {}, \"reference\": {}, \
             \"ns_per_op\": {}, \"contender_over_kernel\": {}, \"spread\": {}, \"note\": {}}}",
            quote(&r.group),
            quote(&r.workload),
            quote(&r.contender),
            r.reference,
            num(r.ns_per_op),
            num(r.ratio),
            num(r.spread),
            r.note.as_deref().map_or("null".into(), quote)
        );
        s.push_str(if i + 1 < host.rows.len() { ",\n" } else { "\n" });
    }
    let _ = writeln!(s, "  ],\n  \"qemu_setup\": {},", quote(&qemu.setup));
    s.push_str("  \"qemu\": [\n");
    for (i, r) in qemu.rows.iter().enumerate() {
        let _ = write!(
            s,
            "    {{\"key\": {}, \"workload\": {}, \"accel\": {}, \"kernel_ns\": {}, \
             \"linux_ns\": {}, \"linux_over_kernel\": {}, \"note\": {}}}",
            quote(&r.key),
            quote(&r.workload),
            r.accel.as_deref().map_or("null".into(), quote),
            num(r.kernel_ns),
            num(r.linux_ns),
            num(r.ratio()),
            r.note.as_deref().map_or("null".into(), quote)
        );
        s.push_str(if i + 1 < qemu.rows.len() { ",\n" } else { "\n" });
    }
    let (setup, rows) = crate::icount::to_json(icount);
    let _ = writeln!(s, "  ],\n  \"icount_setup\": {setup},");
    s.push_str("  \"icount\": [\n");
    let rows = rows.as_array().cloned().unwrap_or_default();
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(s, "    {r}");
        s.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ]\n}\n");
    s
}

/// Where the results go under a workspace root.
pub fn out_dir(root: &Path) -> PathBuf {
    root.join("target").join("bench")
}

/// `s` as a JSON string literal.
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A number, or `null` (JSON has no NaN or infinity).
fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_json() {
        let text = r#"{"machine": {"cpu": "Test \"CPU\"", "nproc": 2},
            "rows": [{"group": "heap", "workload": "w", "contender": "kernel heap",
                      "reference": true, "ns_per_op": 50.5, "ratio_vs_reference": 1.0,
                      "note": null},
                     {"group": "heap", "workload": "w", "contender": "talc",
                      "reference": false, "ns_per_op": 1e2, "ratio_vs_reference": 1.98,
                      "note": "x\u00e9"}]}"#;
        let r = parse_host_json(text).unwrap();
        assert!(r
            .machine
            .starts_with("Test \"CPU\", 2 CPUs, load average ? -> ?"));
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[1].ns_per_op, Some(100.0));
        assert_eq!(r.rows[1].note.as_deref(), Some("x\u{e9}"));
        assert!(r.rows[0].reference && !r.rows[1].reference);
        assert!(parse_host_json("{\"rows\": [1,]}").is_err());
    }

    #[test]
    fn parses_bench_lines() {
        let log = concat!(
            "boot\n",
            "bench getpid iters=100000 ns_per_op=312\n",
            "bench bad iters=1\n",
            "[user] bench fork_exit_wait iters=10 ns_per_op=1\n",
            "  bench fork_exit_wait iters=10 ns_per_op=98765\n",
            "bench done\n",
        );
        assert_eq!(
            parse_bench_lines(log),
            vec![("getpid".into(), 312.0), ("fork_exit_wait".into(), 98765.0)]
        );
    }

    fn run(figures: &[(&str, f64)], boot_ms: u64) -> BenchRun {
        BenchRun {
            accel: "tcg",
            figures: figures.iter().map(|(n, x)| (n.to_string(), *x)).collect(),
            boot: Some(Duration::from_millis(boot_ms)),
            total: Duration::from_secs(1),
            done: true,
            ending: String::new(),
        }
    }

    #[test]
    fn rows_take_the_lowest_run_and_print() {
        let ours = [
            run(&[("getpid", 200.0), ("page_fault", 900.0)], 50),
            run(&[("getpid", 100.0)], 60),
        ];
        let linux = [run(&[("getpid", 150.0)], 4000)];
        let rows = combine_rows("tcg", &ours, &linux, None);
        assert_eq!(rows.len(), QEMU_WORKLOADS.len());
        let getpid = &rows[0];
        assert_eq!(
            (getpid.kernel_ns, getpid.linux_ns),
            (Some(100.0), Some(150.0))
        );
        assert_eq!(getpid.ratio(), Some(1.5));
        assert!(getpid.note.as_deref().unwrap().contains("spread 100% / -"));
        let boot = rows.iter().find(|r| r.key == "boot_to_user").unwrap();
        assert_eq!(boot.kernel_ns, Some(50e6));
        assert_eq!(boot.linux_ns, Some(4000e6));
        let fork = rows.iter().find(|r| r.key == "fork_exit_wait").unwrap();
        assert!(fork.ratio().is_none());

        let report = QemuReport {
            setup: "test setup".into(),
            rows: combine_rows("tcg", &ours, &[], Some("no Linux reference")),
        };
        let t = table(&HostReport::default(), &report);
        assert!(t.contains("test setup") && t.contains("no Linux reference"));
        let j = combined_json(&HostReport::default(), &report, &[]);
        let parsed: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(parsed["qemu_setup"], "test setup");
        assert_eq!(parsed["icount"], serde_json::json!([]));
        assert_eq!(quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        let e = QemuReport {
            setup: "x".into(),
            rows: empty_rows("not measured"),
        };
        assert!(e.rows.iter().all(|r| r.ratio().is_none()));
    }
}

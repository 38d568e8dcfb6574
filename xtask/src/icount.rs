//! The instruction-count table of `cargo xtask bench` (issue 14, points 1-2).
//!
//! Under TCG the wall-clock figures move with the host's load (spreads of
//! 20-300 %). With `-icount shift=0,sleep=off` QEMU's guest clock advances one
//! nanosecond per executed guest instruction, so the `clock_gettime` deltas that
//! `user/c/bench.c` prints as `ns_per_op` are **instructions per operation**, the
//! same from run to run for one configuration (the same kernel, initrd and command
//! line). Each kernel therefore runs once per architecture:
//!
//! * x86_64: this kernel and Debian's Linux (`linux-image-amd64`) in the same
//!   `qemu-system-x86_64 -M microvm -m 256M`, one vCPU (see `bench.rs`, `linuxref.rs`);
//!   Linux gets `mitigations=off`, no randomisation ([`crate::linuxref::DEFENCES_OFF`])
//!   and its TSC rate as 1 GHz ([`crate::linuxref::icount_append`]).
//! * aarch64: this kernel and Debian's arm64 Linux (unpacked from `apt-get download`,
//!   [`crate::linuxref::ensure_aarch64`]) on `qemu-system-aarch64 -M virt -cpu
//!   cortex-a72 -m 256M`, one vCPU; the counter runs at 62.5 MHz of guest time, so
//!   one clock tick is 16 instructions (the figures are averages over many operations).
//!
//! Caveats, said beside the table: a `rep` string instruction counts once per
//! iteration (QEMU executes one iteration at a time), and with `sleep=off` a guest
//! that idles (`hlt`, `wfi`) has its clock jumped to the next timer event, so a row
//! that waits for a timer tick counts the wait as if it were instructions.
//!
//! [`measure`] never fails the bench: a kernel or a reference that cannot run leaves
//! its column empty, with the reason in the row's note and the setup line. The rows
//! are every in-QEMU workload of [`crate::bench::QEMU_WORKLOADS`] but the boot time
//! (a wall-clock figure taken by xtask), plus [`NOT_YET`]: the rows that cannot run
//! yet, with the reason.

use crate::user::Arch;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The QEMU arguments that make the guest clock count instructions.
pub const ICOUNT_ARGS: [&str; 2] = ["-icount", "shift=0,sleep=off"];

/// Bound on one run (Linux boots and runs `bench` in 20-30 s wall under icount).
const TIMEOUT: Duration = Duration::from_secs(240);

/// Issue 14 point 3: every row at least this many times ahead of Linux.
pub const TARGET_RATIO: f64 = 1.5;

/// Workloads that cannot run yet: (key, table text, why).
pub const NOT_YET: &[(&str, &str, &str)] = &[];

/// The in-QEMU workload measured by xtask on the wall clock, not by the program.
const WALL_CLOCK_ONLY: &str = "boot_to_user";

/// Whether a row has figures or cannot run yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    /// `bench` measures it (a column may still be empty when a run failed).
    Measured,
    /// The kernel lacks the feature; the note says which.
    NotYet,
}

impl RowStatus {
    fn as_str(self) -> &'static str {
        match self {
            RowStatus::Measured => "measured",
            RowStatus::NotYet => "not yet",
        }
    }
}

/// Where a row stands against Linux and against issue 14's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// At least [`TARGET_RATIO`] times fewer instructions than Linux.
    MeetsTarget,
    /// Fewer instructions than Linux (or as many), but short of the target.
    AheadBelowTarget,
    /// More instructions than Linux.
    BehindLinux,
}

impl Standing {
    /// The standing of a `linux / kernel` ratio.
    pub fn of(ratio: f64) -> Standing {
        if ratio >= TARGET_RATIO {
            Standing::MeetsTarget
        } else if ratio >= 1.0 {
            Standing::AheadBelowTarget
        } else {
            Standing::BehindLinux
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Standing::MeetsTarget => "meets 1.5x target",
            Standing::AheadBelowTarget => "ahead, below 1.5x target",
            Standing::BehindLinux => "behind Linux",
        }
    }
}

/// One row: instructions per operation under both kernels on one architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct IcountRow {
    /// `x86_64` or `aarch64`.
    pub arch: &'static str,
    /// The workload's key (`bench`'s name for it).
    pub key: String,
    /// Table text.
    pub workload: String,
    /// Measured or not yet.
    pub status: RowStatus,
    /// Instructions per operation under this kernel.
    pub kernel: Option<f64>,
    /// Instructions per operation under Linux.
    pub linux: Option<f64>,
    /// Why a figure is missing, or other remarks.
    pub note: Option<String>,
}

impl IcountRow {
    /// `linux / kernel`: above 1.00 this kernel executes fewer instructions.
    pub fn linux_over_kernel(&self) -> Option<f64> {
        Some(self.linux? / self.kernel?)
    }

    /// Where the row stands, when both figures are there.
    pub fn standing(&self) -> Option<Standing> {
        self.linux_over_kernel().map(Standing::of)
    }

    /// The row as a JSON object (the `"icount"` array of `bench.json`).
    pub fn to_json(&self) -> Value {
        json!({
            "arch": self.arch,
            "key": self.key,
            "workload": self.workload,
            "status": self.status.as_str(),
            "unit": "instructions per operation",
            "kernel": finite(self.kernel),
            "linux": finite(self.linux),
            "linux_over_kernel": finite(self.linux_over_kernel()),
            "standing": self.standing().map(Standing::as_str),
            "note": self.note,
        })
    }
}

/// A number JSON can hold, or `null`.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// The table of one architecture and the conditions it was measured under.
#[derive(Debug, Clone)]
pub struct IcountReport {
    /// `x86_64` or `aarch64`.
    pub arch: &'static str,
    /// QEMU, machine, Linux version (or why there is none), in one line.
    pub setup: String,
    /// Every workload but the boot time, then [`NOT_YET`].
    pub rows: Vec<IcountRow>,
}

/// Measures both architectures (x86_64 first). Never fails: see the module doc.
pub fn measure_all(root: &Path) -> Vec<IcountReport> {
    [Arch::X86_64, Arch::Aarch64]
        .into_iter()
        .map(|arch| measure(root, arch))
        .collect()
}

/// The table of `arch`: builds this kernel and `bench`, gets the Linux reference,
/// runs each once under icount.
pub fn measure(root: &Path, arch: Arch) -> IcountReport {
    let name = arch_name(arch);
    let started = Instant::now();
    println!("instruction counts ({name}): building this kernel and bench");
    let guests = match guests(root, arch) {
        Ok(g) => g,
        Err(e) => {
            println!("instruction counts ({name}): not measured: {e}");
            let note = format!("not measured: {e}");
            return IcountReport {
                arch: name,
                setup: note.clone(),
                rows: rows(name, Err(&note), Err(&note)),
            };
        }
    };
    let ours = run_logged(name, "this kernel", &guests.ours);
    let linux = match &guests.linux {
        Ok((_, guest)) => run_logged(name, "Linux", guest),
        Err(e) => {
            println!("instruction counts ({name}): {e}");
            Err(e.clone())
        }
    };
    let version = guests
        .linux
        .as_ref()
        .map(|(v, _)| v.clone())
        .map_err(String::clone);
    println!(
        "instruction counts ({name}): {:.0} s (builds included)",
        started.elapsed().as_secs_f64()
    );
    IcountReport {
        arch: name,
        setup: setup_line(arch, &version),
        rows: rows(name, as_figures(&ours), as_figures(&linux)),
    }
}

/// The name of `arch` in tables and JSON.
fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    }
}

/// One line on how `arch`'s table was measured.
fn setup_line(arch: Arch, linux: &Result<String, String>) -> String {
    let machine = match arch {
        Arch::X86_64 => "qemu-system-x86_64 -M microvm -m 256M",
        Arch::Aarch64 => "qemu-system-aarch64 -M virt -cpu cortex-a72 -m 256M",
    };
    let linux = match linux {
        Ok(v) => format!("Linux {v} ({})", crate::linuxref::DEFENCES_OFF),
        Err(e) => e.clone(),
    };
    format!(
        "{}, {machine}, 1 vCPU, TCG {}; {linux}; one run per kernel",
        qemu_version(arch),
        ICOUNT_ARGS.join(" ")
    )
}

/// `QEMU 7.2.22` from `qemu-system-* --version`, or `QEMU (version unknown)`.
fn qemu_version(arch: Arch) -> String {
    let program = match arch {
        Arch::X86_64 => "qemu-system-x86_64",
        Arch::Aarch64 => "qemu-system-aarch64",
    };
    let out = std::process::Command::new(program)
        .arg("--version")
        .output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.ok()
        .and_then(|t| parse_qemu_version(&t))
        .map_or("QEMU (version unknown)".into(), |v| format!("QEMU {v}"))
}

/// `7.2.22` from `QEMU emulator version 7.2.22 (Debian ...)`.
fn parse_qemu_version(text: &str) -> Option<String> {
    let rest = text.lines().next()?.split("version ").nth(1)?;
    rest.split_whitespace().next().map(String::from)
}

/// Which kernel a guest boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// This kernel (exits QEMU itself after init's marker).
    Ours,
    /// Debian's Linux (exits by `busybox poweroff -f`).
    Linux,
}

/// One QEMU run to make: the kernel image, its initrd, its command line.
#[derive(Debug, Clone)]
struct Guest {
    arch: Arch,
    kernel: Kernel,
    image: PathBuf,
    initrd: PathBuf,
    append: String,
}

/// This kernel's run and Linux's (with its version), or why Linux cannot run.
struct Guests {
    ours: Guest,
    linux: Result<(String, Guest), String>,
}

/// Builds what both runs of `arch` need; `Err` when this kernel or `bench` cannot
/// be built (Linux missing is not an error: see [`Guests::linux`]).
fn guests(root: &Path, arch: Arch) -> Result<Guests, String> {
    let image = match arch {
        Arch::X86_64 => {
            crate::setup::ensure_qemu()?;
            PathBuf::from(crate::build_kernel()?)
        }
        Arch::Aarch64 => {
            crate::setup::ensure(crate::setup::Needs::Aarch64)?;
            crate::aarch64::build(root)?
        }
    };
    let bench_bin = crate::build_user_programs(arch).join("bench");
    let bench = std::fs::read(&bench_bin)
        .map_err(|e| format!("{} missing ({e}): bench not built", bench_bin.display()))?;
    let out = crate::bench::out_dir(root);
    std::fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let name = arch_name(arch);
    let program = || crate::initrd::Member {
        name: "bench".into(),
        data: bench.clone(),
    };
    let argv = vec!["/bench".to_string(), "1".to_string()];
    let initrd = out.join(format!("icount-initrd-kernel-{name}.cpio"));
    crate::initrd::write(&initrd, vec![program()], &argv, &crate::test_env())?;
    let ours = Guest {
        arch,
        kernel: Kernel::Ours,
        image,
        initrd,
        append: "quiet".into(),
    };
    let reference = match arch {
        Arch::X86_64 => crate::linuxref::ensure(),
        Arch::Aarch64 => crate::linuxref::ensure_aarch64(&out.join("linux-aarch64")),
    };
    let linux = reference.and_then(|r| {
        let initramfs = out.join(format!("icount-initramfs-linux-{name}.cpio"));
        crate::linuxref::write_initramfs(
            &initramfs,
            &r,
            vec![program()],
            std::slice::from_ref(&argv),
        )?;
        let append = match arch {
            Arch::X86_64 => crate::linuxref::icount_append(),
            Arch::Aarch64 => crate::linuxref::aarch64_icount_append(),
        };
        let guest = Guest {
            arch,
            kernel: Kernel::Linux,
            image: r.kernel.clone(),
            initrd: initramfs,
            append,
        };
        Ok((r.version(), guest))
    });
    Ok(Guests { ours, linux })
}

/// Runs `guest` and returns `bench`'s figures, printing one progress line.
fn run_logged(arch: &str, who: &str, guest: &Guest) -> Result<Vec<(String, f64)>, String> {
    println!(
        "instruction counts ({arch}): {who} under {}",
        ICOUNT_ARGS.join(" ")
    );
    let started = Instant::now();
    let result = run(guest);
    let secs = started.elapsed().as_secs_f64();
    match &result {
        Ok(f) => println!("  {} figures, {secs:.1} s wall", f.len()),
        Err(e) => println!("  failed after {secs:.1} s: {e}"),
    }
    result
}

/// Boots `guest` under icount; its figures when `bench` got to `bench done`.
fn run(guest: &Guest) -> Result<Vec<(String, f64)>, String> {
    let log = match guest.arch {
        Arch::X86_64 => {
            let cfg = crate::qemu::QemuConfig {
                machine: "microvm".into(),
                memory: "256M".into(),
                append: guest.append.clone(),
                kvm: false,
                initrd: Some(guest.initrd.display().to_string()),
                smp: 1,
                extra: ICOUNT_ARGS.iter().map(|a| a.to_string()).collect(),
            };
            let image = guest.image.display().to_string();
            crate::qemu::boot(&image, &cfg, TIMEOUT, &mut |_| {})?.log
        }
        Arch::Aarch64 => {
            let boot = match guest.kernel {
                Kernel::Ours => crate::aarch64::boot_with_args,
                Kernel::Linux => crate::aarch64::boot_linux,
            };
            boot(
                &guest.image,
                &guest.initrd,
                &guest.append,
                &ICOUNT_ARGS,
                TIMEOUT,
            )?
            .log
        }
    };
    figures_of(&log)
}

/// The figures of a complete `bench` log; `Err` with the last lines otherwise.
fn figures_of(log: &str) -> Result<Vec<(String, f64)>, String> {
    let figures = crate::bench::parse_bench_lines(log);
    if log.lines().any(|l| l.trim() == "bench done") && !figures.is_empty() {
        return Ok(figures);
    }
    let tail: Vec<&str> = log.lines().rev().take(6).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "bench did not finish; last lines: {}",
        tail.join(" | ")
    ))
}

/// A run's figures, or why there are none, borrowed.
type Figures<'a> = Result<&'a [(String, f64)], &'a str>;

fn as_figures(run: &Result<Vec<(String, f64)>, String>) -> Figures<'_> {
    run.as_deref().map_err(String::as_str)
}

/// The rows of one architecture from the figures of both kernels (`Err` when a
/// kernel's run is missing: its text goes into the notes).
fn rows(arch: &'static str, ours: Figures<'_>, linux: Figures<'_>) -> Vec<IcountRow> {
    let find = |figures: Figures<'_>, key: &str| {
        let figures = figures.ok()?;
        figures.iter().find(|(n, _)| n == key).map(|(_, x)| *x)
    };
    let measured = crate::bench::QEMU_WORKLOADS
        .iter()
        .filter(|(key, _)| *key != WALL_CLOCK_ONLY)
        .map(|(key, text)| {
            let kernel = find(ours, key);
            let linux_figure = find(linux, key);
            let mut notes = Vec::new();
            match ours {
                Err(e) => notes.push(format!("no figure from this kernel: {e}")),
                Ok(_) if kernel.is_none() => notes.push("no figure from this kernel".into()),
                Ok(_) => {}
            }
            match linux {
                Err(e) => notes.push(format!("no Linux figure: {e}")),
                Ok(_) if linux_figure.is_none() => notes.push("no figure from Linux".into()),
                Ok(_) => {}
            }
            IcountRow {
                arch,
                key: key.to_string(),
                workload: text.to_string(),
                status: RowStatus::Measured,
                kernel,
                linux: linux_figure,
                note: (!notes.is_empty()).then(|| notes.join("; ")),
            }
        });
    let not_yet = NOT_YET.iter().map(|(key, text, why)| IcountRow {
        arch,
        key: key.to_string(),
        workload: text.to_string(),
        status: RowStatus::NotYet,
        kernel: None,
        linux: None,
        note: Some(why.to_string()),
    });
    measured.chain(not_yet).collect()
}

// ---------------------------------------------------------------------------------
// Output

/// A figure as the table shows it: whole instructions, or `-`.
fn fmt_count(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

/// A ratio with two decimals, or four below 0.1 (so that it does not read 0.00).
fn fmt_ratio(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(r) if r < 0.1 => format!("{r:.4}"),
        Some(r) => format!("{r:.2}"),
    }
}

/// The instruction-count tables of every architecture, with their notes.
pub fn table(reports: &[IcountReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== in QEMU, instruction counts: this kernel vs Linux ({}) ==",
        ICOUNT_ARGS.join(" ")
    );
    let ww = reports
        .iter()
        .flat_map(|r| r.rows.iter().map(|row| row.workload.len()))
        .max()
        .unwrap_or(10)
        .max(10);
    for report in reports {
        let _ = writeln!(out, "{} ({})", report.arch, report.setup);
        let _ = writeln!(
            out,
            "  {:<ww$} {:>10} {:>10} {:>13}  standing",
            "workload", "kernel", "Linux", "Linux/kernel"
        );
        for row in &report.rows {
            let _ = writeln!(out, "  {}", table_line(row, ww));
        }
    }
    let _ = writeln!(
        out,
        "(instructions per operation; Linux/kernel > 1.00: this kernel executes fewer; \
         issue 14's target is {TARGET_RATIO:.1}x (getpid at most 230 instructions). \
         A `rep` string instruction counts once per iteration; with sleep=off an idle \
         guest's clock jumps to its next timer event, so a row that waits for a timer \
         tick counts the wait)"
    );
    out
}

/// One row of [`table`], `ww` the width of the workload column.
fn table_line(row: &IcountRow, ww: usize) -> String {
    if row.status == RowStatus::NotYet {
        let why = row.note.as_deref().unwrap_or("");
        return format!("{:<ww$} not yet: {why}", row.workload);
    }
    let mut line = format!(
        "{:<ww$} {:>10} {:>10} {:>13}  {}",
        row.workload,
        fmt_count(row.kernel),
        fmt_count(row.linux),
        fmt_ratio(row.linux_over_kernel()),
        row.standing().map_or("-", Standing::as_str)
    );
    if let Some(note) = &row.note {
        let _ = write!(line, "  ({note})");
    }
    line
}

/// The `"icount_setup"` object (arch -> setup line) and the `"icount"` rows of
/// `bench.json`.
pub fn to_json(reports: &[IcountReport]) -> (Value, Value) {
    let setup = reports
        .iter()
        .map(|r| (r.arch.to_string(), Value::from(r.setup.clone())))
        .collect::<serde_json::Map<_, _>>();
    let rows = reports
        .iter()
        .flat_map(|r| r.rows.iter().map(IcountRow::to_json))
        .collect();
    (Value::Object(setup), Value::Array(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(n, x)| (n.to_string(), *x)).collect()
    }

    #[test]
    fn rows_pair_the_figures_of_every_workload() {
        let ours = figures(&[("getpid", 200.0), ("page_fault", 4000.0)]);
        let linux = figures(&[("getpid", 340.0), ("page_fault", 3300.0)]);
        let rows = rows("x86_64", Ok(&ours), Ok(&linux));
        let n = crate::bench::QEMU_WORKLOADS.len() - 1 + NOT_YET.len();
        assert_eq!(rows.len(), n);
        assert!(rows.iter().all(|r| r.key != WALL_CLOCK_ONLY));
        let getpid = &rows[0];
        assert_eq!((getpid.kernel, getpid.linux), (Some(200.0), Some(340.0)));
        assert_eq!(getpid.linux_over_kernel(), Some(1.7));
        assert_eq!(getpid.standing(), Some(Standing::MeetsTarget));
        let fault = rows.iter().find(|r| r.key == "page_fault").unwrap();
        assert_eq!(fault.standing(), Some(Standing::BehindLinux));
        let fork = rows.iter().find(|r| r.key == "fork_exit_wait").unwrap();
        assert_eq!(fork.linux_over_kernel(), None);
        assert!(fork.note.as_deref().unwrap().contains("this kernel"));
        assert!(rows.iter().all(|r| r.status == RowStatus::Measured));
    }

    #[test]
    fn standing_against_linux_and_the_target() {
        assert_eq!(Standing::of(1.5), Standing::MeetsTarget);
        assert_eq!(Standing::of(1.49), Standing::AheadBelowTarget);
        assert_eq!(Standing::of(1.0), Standing::AheadBelowTarget);
        assert_eq!(Standing::of(0.93), Standing::BehindLinux);
    }

    #[test]
    fn json_rows_carry_kernel_linux_and_ratio() {
        let ours = figures(&[("getpid", 368.0)]);
        let report = IcountReport {
            arch: "aarch64",
            setup: "test setup".into(),
            rows: rows("aarch64", Ok(&ours), Err("no aarch64 Linux reference: x")),
        };
        let (setup, rows) = to_json(std::slice::from_ref(&report));
        assert_eq!(setup["aarch64"], "test setup");
        let rows = rows.as_array().unwrap();
        let getpid = &rows[0];
        assert_eq!(getpid["arch"], "aarch64");
        assert_eq!(getpid["key"], "getpid");
        assert_eq!(getpid["kernel"], 368.0);
        assert!(getpid["linux"].is_null() && getpid["linux_over_kernel"].is_null());
        assert!(getpid["note"]
            .as_str()
            .unwrap()
            .contains("no aarch64 Linux"));
        let full = IcountRow {
            linux: Some(736.0),
            ..report.rows[0].clone()
        };
        assert_eq!(full.to_json()["linux_over_kernel"], 2.0);
        assert_eq!(full.to_json()["standing"], "meets 1.5x target");
    }

    #[test]
    fn table_shows_figures_ratios_and_not_yet_rows() {
        let ours = figures(&[("getpid", 368.0)]);
        let linux = figures(&[("getpid", 344.0)]);
        let report = IcountReport {
            arch: "x86_64",
            setup: "QEMU 7.2.22, test".into(),
            rows: rows("x86_64", Ok(&ours), Ok(&linux)),
        };
        let t = table(std::slice::from_ref(&report));
        assert!(t.contains("x86_64 (QEMU 7.2.22, test)"));
        let getpid = t.lines().find(|l| l.contains("getpid round trip")).unwrap();
        assert!(getpid.contains(" 368 ") && getpid.contains(" 344 "));
        assert!(getpid.contains("0.93") && getpid.contains("behind Linux"));
        let file = t.lines().find(|l| l.contains("unlink on tmpfs")).unwrap();
        assert!(file.contains(" - "), "a row without figures: {file}");
        let waiting = IcountRow {
            status: RowStatus::NotYet,
            note: Some("needs SMP".into()),
            ..report.rows[0].clone()
        };
        let t = table(&[IcountReport {
            rows: vec![waiting],
            arch: report.arch,
            setup: report.setup.clone(),
        }]);
        assert!(t.contains("not yet: needs SMP"), "{t}");
    }

    #[test]
    fn figures_need_a_complete_run() {
        let done = "bench start\nbench getpid iters=10 ns_per_op=344\nbench done\n";
        assert_eq!(figures_of(done).unwrap(), figures(&[("getpid", 344.0)]));
        let cut = "bench start\nbench getpid iters=10 ns_per_op=344\n";
        assert!(figures_of(cut).unwrap_err().contains("did not finish"));
        let v = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)\nCopyright";
        assert_eq!(parse_qemu_version(v).as_deref(), Some("7.2.22"));
        assert_eq!(fmt_ratio(Some(0.0011)), "0.0011");
        assert_eq!(fmt_ratio(Some(2.654)), "2.65");
    }
}

//! The scaling rows of `cargo xtask bench` (issue 13): `user/c/scale.c` with N
//! threads on N CPUs (N = 1, 2, 4), under this kernel and under Debian's Linux in
//! the same QEMU (`-M microvm -m 256M -smp N -accel tcg,thread=multi`), for three
//! kinds of work: CPU-bound blocks (`spin`), first touches of fresh pages
//! (`fault`) and fork+exit+wait (`fork`). Each row gives both kernels' operations
//! per second, the ratio (kernel / Linux) and each kernel's speed-up over its own
//! 1-CPU figure. These are wall-clock (guest TSC) figures under multi-threaded TCG:
//! on a machine with fewer host cores than vCPUs, or a loaded one, they say more
//! about the host than about either kernel; the 1-CPU and 2-CPU rows are the ones
//! these 2-core machines can carry.
//!
//! Results go to `target/bench/scaling.json` (rows with `mode`, `cpus`, `kernel`,
//! `linux`).

use crate::initrd::Member;
use crate::qemu::QemuConfig;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// CPU counts measured.
const CPUS: [usize; 3] = [1, 2, 4];
/// Seconds of work per mode and run.
const SECONDS: &str = "1";
const MODES: [&str; 3] = ["spin", "fault", "fork"];
const TIMEOUT: Duration = Duration::from_secs(120);

/// One measurement: `mode` with `cpus` threads on `cpus` CPUs.
#[derive(Debug, Clone)]
pub struct Row {
    /// spin, fault or fork.
    pub mode: &'static str,
    /// CPUs (and threads).
    pub cpus: usize,
    /// This kernel's operations per second.
    pub kernel: Option<f64>,
    /// Linux's.
    pub linux: Option<f64>,
}

/// The figures `scale` printed: (mode, ops/s).
fn parse(log: &str) -> Vec<(String, f64)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("scale ")?;
            let (head, value) = rest.split_once(": ")?;
            let mode = head.split_whitespace().next()?.to_string();
            let ops = value.strip_suffix(" ops/s")?.parse().ok()?;
            Some((mode, ops))
        })
        .collect()
}

fn boot(kernel: &Path, initrd: &Path, append: &str, cpus: usize) -> Vec<(String, f64)> {
    let cfg = QemuConfig {
        machine: "microvm".into(),
        memory: "256M".into(),
        append: append.into(),
        initrd: Some(initrd.display().to_string()),
        smp: cpus,
        ..QemuConfig::default()
    };
    match crate::qemu::boot(&kernel.display().to_string(), &cfg, TIMEOUT, &mut |_| {}) {
        Ok(out) => parse(&out.log),
        Err(e) => {
            println!("scaling: a run failed: {e}");
            Vec::new()
        }
    }
}

/// Measures every row; a kernel that cannot be run leaves its column empty.
pub fn measure(root: &Path) -> Vec<Row> {
    let prepared = (|| -> Result<_, String> {
        crate::setup::ensure_qemu()?;
        let kernel = std::path::PathBuf::from(crate::build_kernel()?);
        let user_dir = crate::build_user_programs(crate::user::Arch::X86_64);
        let scale = std::fs::read(user_dir.join("scale")).map_err(|e| format!("scale: {e}"))?;
        Ok((kernel, scale))
    })();
    let (kernel, scale) = match prepared {
        Ok(x) => x,
        Err(e) => {
            println!("scaling: not measured: {e}");
            return Vec::new();
        }
    };
    let out = crate::bench::out_dir(root);
    let linux = crate::linuxref::ensure();
    if let Err(e) = &linux {
        println!("scaling: {e}; this kernel only");
    }
    let program = || Member {
        name: "scale".into(),
        data: scale.clone(),
    };
    let mut rows = Vec::new();
    for cpus in CPUS {
        let argv: Vec<String> = ["/scale", "all", &cpus.to_string(), SECONDS]
            .iter()
            .map(|s| s.to_string())
            .collect();
        println!("scaling: {cpus} CPU(s)");
        let ours_initrd = out.join("initrd-scale.cpio");
        let ours =
            match crate::initrd::write(&ours_initrd, vec![program()], &argv, &crate::test_env()) {
                Ok(()) => boot(&kernel, &ours_initrd, "quiet", cpus),
                Err(_) => Vec::new(),
            };
        let theirs = match &linux {
            Ok(r) => {
                let path = out.join("initramfs-scale-linux.cpio");
                match crate::linuxref::write_initramfs(
                    &path,
                    r,
                    vec![program()],
                    std::slice::from_ref(&argv),
                ) {
                    Ok(()) => boot(&r.kernel, &path, &crate::linuxref::append(), cpus),
                    Err(_) => Vec::new(),
                }
            }
            Err(_) => Vec::new(),
        };
        let find = |v: &[(String, f64)], m: &str| v.iter().find(|(k, _)| k == m).map(|x| x.1);
        for mode in MODES {
            rows.push(Row {
                mode,
                cpus,
                kernel: find(&ours, mode),
                linux: find(&theirs, mode),
            });
        }
    }
    rows
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// The table: ops/s of both kernels, their ratio, each one's speed-up over 1 CPU.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "\n## Scaling: N threads on N CPUs (QEMU microvm, -smp N, multi-threaded TCG)\n\n\
         | work | CPUs | kernel ops/s | Linux ops/s | kernel / Linux | kernel speed-up | Linux speed-up |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let base = rows.iter().find(|b| b.mode == r.mode && b.cpus == 1);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.mode,
            r.cpus,
            fmt(r.kernel),
            fmt(r.linux),
            ratio(r.kernel, r.linux),
            ratio(r.kernel, base.and_then(|b| b.kernel)),
            ratio(r.linux, base.and_then(|b| b.linux)),
        );
    }
    t
}

/// Writes `scaling.json` under `out`.
pub fn write_json(out: &Path, rows: &[Row]) -> Result<(), String> {
    let num = |v: Option<f64>| v.map_or("null".into(), |v| format!("{v:.1}"));
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "  {{\"mode\": \"{}\", \"cpus\": {}, \"kernel\": {}, \"linux\": {}}}",
                r.mode,
                r.cpus,
                num(r.kernel),
                num(r.linux)
            )
        })
        .collect();
    let path = out.join("scaling.json");
    std::fs::write(&path, format!("[\n{}\n]\n", body.join(",\n")))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scale_lines() {
        let log = "boot\nscale spin 2: 420 ops/s\nscale fault 2: 3474 ops/s\nnoise\nscale done\n";
        assert_eq!(
            parse(log),
            vec![("spin".to_string(), 420.0), ("fault".to_string(), 3474.0)]
        );
    }
}

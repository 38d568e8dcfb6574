//! `cargo xtask run|test --arch aarch64`: build the aarch64 image and boot it in
//! `qemu-system-aarch64 -M virt` (TCG).
//!
//! The guest reports through the PL011 (QEMU's stdout with `-nographic`) and exits
//! through Arm semihosting, so QEMU's exit status is the guest's own code: 0 success,
//! 1 panic, 3 unexpected exception. A run that passes its timeout is killed and fails.
//!
//! Tests: the guest lists its tests (`-append "test --list"`), then each runs in a
//! fresh QEMU (`-append "test NAME key=value..."`, the keys telling it what QEMU was
//! started with). Some run again under other machine shapes (two NUMA nodes, 4 GiB,
//! GICv3).
//! Tests named `should_fault_*` pass when the guest reports an exception or panic and
//! exits with failure.
//!
//! Wiring (in `main.rs`): `mod aarch64;`, then for `--arch aarch64` call
//! [`run`] (exit with its status) or [`test`] (add its counts to the tally), passing
//! the workspace root.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET: &str = "aarch64-unknown-none";
const PACKAGE: &str = "boot-aarch64";
const BINARY: &str = "kernel-aarch64";
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The shape of the machine QEMU emulates.
#[derive(Debug, Clone)]
struct Machine {
    /// Label printed before test names (empty for the default machine).
    label: &'static str,
    /// `-m` in MiB.
    ram_mib: u64,
    /// Number of NUMA nodes (1 = no `-numa` options), each with one CPU and an equal
    /// share of RAM.
    nodes: usize,
    /// Distance between different nodes.
    distance: u8,
    /// GIC version (2 or 3).
    gic: u8,
}

const DEFAULT: Machine = Machine {
    label: "",
    ram_mib: 256,
    nodes: 1,
    distance: 20,
    gic: 2,
};
const NUMA: Machine = Machine {
    label: "numa2/",
    ram_mib: 256,
    nodes: 2,
    distance: 20,
    gic: 2,
};
const BIG: Machine = Machine {
    label: "ram4g/",
    ram_mib: 4096,
    nodes: 1,
    distance: 20,
    gic: 2,
};
const GICV3: Machine = Machine {
    label: "gicv3/",
    ram_mib: 256,
    nodes: 1,
    distance: 20,
    gic: 3,
};

impl Machine {
    fn qemu_args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-M",
            if self.gic == 3 {
                "virt,gic-version=3"
            } else {
                "virt"
            },
            "-cpu",
            "cortex-a72",
            "-nographic",
            "-semihosting",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["-m".into(), format!("{}M", self.ram_mib)]);
        a.extend(["-smp".into(), self.nodes.to_string()]);
        if self.nodes > 1 {
            let share = self.ram_mib / self.nodes as u64;
            for n in 0..self.nodes {
                a.extend([
                    "-numa".into(),
                    format!("node,nodeid={n},cpus={n},memdev=m{n}"),
                ]);
                a.extend([
                    "-object".into(),
                    format!("memory-backend-ram,id=m{n},size={share}M"),
                ]);
            }
            for s in 0..self.nodes {
                for d in s + 1..self.nodes {
                    let v = self.distance;
                    a.extend(["-numa".into(), format!("dist,src={s},dst={d},val={v}")]);
                }
            }
        }
        a
    }

    /// The `key=value` words that tell the guest's tests what to expect.
    fn expectations(&self) -> String {
        format!(
            "ram_mib={} nodes={} distance={} gic={}",
            self.ram_mib, self.nodes, self.distance, self.gic
        )
    }
}

/// What one QEMU run produced.
struct RunOutput {
    /// QEMU's exit status (`None`: killed by the timeout or a signal).
    status: Option<i32>,
    /// Everything the guest printed.
    log: String,
    /// Wall time from spawning QEMU to the guest's first output.
    first_output: Option<Duration>,
    /// Wall time from spawning QEMU to its exit.
    wall: Duration,
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Builds the image (release) and returns its path.
fn build(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--package",
            PACKAGE,
            "--target",
            TARGET,
        ])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "aarch64 kernel build failed (is the target installed? rustup target add {TARGET})"
        ));
    }
    Ok(target_dir(root).join(TARGET).join("release").join(BINARY))
}

/// Boots `kernel` on `machine` with `append`, echoing lines when `echo`, and kills
/// QEMU after `timeout`.
fn boot(
    kernel: &Path,
    machine: &Machine,
    append: &str,
    timeout: Duration,
    echo: bool,
) -> Result<RunOutput, String> {
    let start = Instant::now();
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args(machine.qemu_args()).arg("-kernel").arg(kernel);
    if !append.is_empty() {
        cmd.args(["-append", append]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            format!("cannot start qemu-system-aarch64 ({e}): apt-get install -y qemu-system-arm")
        })?;
    let mut stdout = child.stdout.take().ok_or("QEMU has no stdout")?;
    let reader = std::thread::spawn(move || {
        let (mut log, mut first) = (Vec::new(), None);
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            first.get_or_insert_with(|| start.elapsed());
            if echo {
                print!("{}", String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
            }
            log.extend_from_slice(&buf[..n]);
        }
        (String::from_utf8_lossy(&log).replace('\r', ""), first)
    });
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            println!("xtask: QEMU killed after the {timeout:?} timeout");
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (log, first_output) = reader.join().unwrap_or_default();
    Ok(RunOutput {
        status,
        log,
        first_output,
        wall: start.elapsed(),
    })
}

/// `cargo xtask run --arch aarch64`: builds, boots the demo on the two-node NUMA
/// machine, shows its output and returns the guest's exit status.
pub fn run(root: &Path) -> Result<i32, String> {
    let kernel = build(root)?;
    let out = boot(&kernel, &NUMA, "", RUN_TIMEOUT, true)?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "xtask: boot time (wall, TCG): QEMU start to first line {:.0} ms, to exit {:.0} ms",
        out.first_output.map_or(f64::NAN, ms),
        ms(out.wall)
    );
    out.status
        .ok_or_else(|| "QEMU did not exit by itself".into())
}

/// `cargo xtask test --arch aarch64`: every in-QEMU test on the default machine, the
/// RAM and NUMA tests again on the NUMA and 4 GiB machines, the interrupt tests on a
/// GICv3 machine. Returns (passed, failed).
pub fn test(root: &Path) -> Result<(usize, usize), String> {
    let kernel = build(root)?;
    let names = list(&kernel)?;
    let mut tally = (0, 0);
    for name in &names {
        count(&mut tally, run_one(&kernel, &DEFAULT, name)?);
    }
    let again: [(&Machine, &[&str]); 3] = [
        (&NUMA, &["ram_total_matches_qemu", "numa_from_device_tree"]),
        (&BIG, &["ram_total_matches_qemu", "numa_from_device_tree"]),
        (
            &GICV3,
            &[
                "interrupt_controller_from_device_tree",
                "timer_ticks_at_100hz",
                "two_threads_preempt_each_other",
            ],
        ),
    ];
    for (machine, names) in again {
        for name in names {
            count(&mut tally, run_one(&kernel, machine, name)?);
        }
    }
    Ok(tally)
}

fn count(tally: &mut (usize, usize), passed: bool) {
    if passed {
        tally.0 += 1;
    } else {
        tally.1 += 1;
    }
}

fn list(kernel: &Path) -> Result<Vec<String>, String> {
    let out = boot(kernel, &DEFAULT, "test --list", TEST_TIMEOUT, false)?;
    let names: Vec<String> = out
        .log
        .lines()
        .filter_map(|l| l.strip_prefix("test-name: "))
        .map(|n| n.trim().to_string())
        .collect();
    if out.status != Some(0) || names.is_empty() {
        return Err(format!(
            "the aarch64 kernel did not list its tests:\n{}",
            out.log
        ));
    }
    Ok(names)
}

/// Runs test `name` in a fresh QEMU on `machine`; prints `test ... ok|FAILED`.
fn run_one(kernel: &Path, machine: &Machine, name: &str) -> Result<bool, String> {
    let append = format!("test {name} {}", machine.expectations());
    let out = boot(kernel, machine, &append, TEST_TIMEOUT, false)?;
    let passed = if name.starts_with("should_fault_") {
        let reported = out.log.contains("EXCEPTION") || out.log.contains("KERNEL PANIC");
        reported && matches!(out.status, Some(s) if s != 0)
    } else {
        out.status == Some(0)
            && out
                .log
                .lines()
                .any(|l| l.trim() == format!("test {name} ... ok"))
    };
    let ms = out.wall.as_secs_f64() * 1000.0;
    let verdict = if passed { "ok" } else { "FAILED" };
    println!(
        "test aarch64/{}{name} ... {verdict} ({ms:.0} ms)",
        machine.label
    );
    if !passed {
        println!("  QEMU status {:?}; guest output:\n{}", out.status, out.log);
    }
    Ok(passed)
}

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
//! User programs (init runs, see `init.rs`): the initrd (the cpio archive of
//! `initrd.rs`) is loaded raw at [`INITRD_ADDR`] with `-device loader,file=...,
//! addr=0x42000000,force-raw=on`, and the command line gets the word
//! `initrd=0x42000000,LEN` (LEN = its size in bytes, decimal). RAM starts at
//! 0x4000_0000 (device tree there, the kernel image at 0x4020_0000, under 1 MiB), so
//! the machine gets at least 32 MiB + the initrd (rounded up, plus
//! [`RAM_ABOVE_INITRD_MIB`]) whatever smaller size a test asks for: a 64 MiB case
//! runs in 64 MiB as on x86_64.
//!
//! Wiring (in `main.rs`): `mod aarch64;`, then for `--arch aarch64` [`build`] the
//! image and call [`run`] (exit with its status) or [`boot_init`] (through
//! `init::Kernel`), and [`test`] for the in-kernel tests (add its counts to the
//! tally), passing the workspace root. The instruction-count benchmark (`icount.rs`)
//! boots this kernel with [`boot_with_args`] and Debian's arm64 Linux with
//! [`boot_linux`], both with `-icount` added.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Physical address QEMU loads the initrd at.
pub const INITRD_ADDR: u64 = 0x4200_0000;
/// Where RAM starts on `virt`.
const RAM_BASE: u64 = 0x4000_0000;
/// RAM kept above the initrd's end at the least.
const RAM_ABOVE_INITRD_MIB: u64 = 8;

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
    /// Number of NUMA nodes (1 = no `-numa` options), each with an equal share of RAM
    /// and of the CPUs (one each unless `--smp` asks for more).
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

/// CPUs of every machine booted from now on (`--smp`; 0: one per NUMA node).
static CPUS: AtomicUsize = AtomicUsize::new(0);

/// Boots the following runs with `n` CPUs (at least one per NUMA node).
pub fn set_cpus(n: usize) {
    CPUS.store(n, Ordering::Relaxed);
}

/// The `--smp` count the runs use (0: one CPU per NUMA node).
pub fn cpus() -> usize {
    CPUS.load(Ordering::Relaxed)
}

impl Machine {
    /// `-smp`: the `--smp` count, at least one CPU per node.
    fn cpus(&self) -> usize {
        CPUS.load(Ordering::Relaxed).max(self.nodes)
    }

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
        let cpus = self.cpus();
        a.extend(["-smp".into(), cpus.to_string()]);
        if cpus > 1 {
            // A host thread per vCPU (see BOOT-NOTES.md), so the CPUs run in parallel.
            a.extend(["-accel".into(), "tcg,thread=multi".into()]);
        }
        if self.nodes > 1 {
            let share = self.ram_mib / self.nodes as u64;
            for n in 0..self.nodes {
                let (first, last) = (n * cpus / self.nodes, (n + 1) * cpus / self.nodes - 1);
                a.extend([
                    "-numa".into(),
                    format!("node,nodeid={n},cpus={first}-{last},memdev=m{n}"),
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
pub struct RunOutput {
    /// QEMU's exit status (`None`: killed by the timeout or a signal).
    pub status: Option<i32>,
    /// Everything the guest printed.
    pub log: String,
    /// Wall time from spawning QEMU to the guest's first output.
    pub first_output: Option<Duration>,
    /// Wall time from spawning QEMU to its exit.
    pub wall: Duration,
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// Builds the image (release) and returns its path.
pub fn build(root: &Path) -> Result<PathBuf, String> {
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
            "aarch64 kernel build failed: cargo build --release -p {PACKAGE} --target {TARGET} ({status}; its errors are above)"
        ));
    }
    Ok(target_dir(root).join(TARGET).join("release").join(BINARY))
}

/// The QEMU arguments that load `initrd` and the command-line word that tells the
/// kernel where it is; and the least RAM (MiB) that holds it.
pub(crate) fn initrd_args(initrd: &Path) -> Result<(Vec<String>, String, u64), String> {
    let len = std::fs::metadata(initrd)
        .map_err(|e| format!("{}: {e}", initrd.display()))?
        .len();
    let args = vec![
        "-device".to_string(),
        format!(
            "loader,file={},addr={INITRD_ADDR:#x},force-raw=on",
            initrd.display()
        ),
    ];
    let word = format!("initrd={INITRD_ADDR:#x},{len}");
    let end_mib = (INITRD_ADDR - RAM_BASE + len).div_ceil(1 << 20);
    Ok((args, word, end_mib + RAM_ABOVE_INITRD_MIB))
}

/// The full QEMU command line (without the program name) for `kernel` on `machine`
/// with `append` and, if any, `initrd`; `machine`'s RAM is raised to hold the initrd.
fn qemu_args(
    kernel: &Path,
    machine: &Machine,
    append: &str,
    initrd: Option<&Path>,
) -> Result<Vec<String>, String> {
    let mut machine = machine.clone();
    let mut append = append.to_string();
    let mut extra = Vec::new();
    if let Some(initrd) = initrd {
        let (args, word, min_mib) = initrd_args(initrd)?;
        extra = args;
        append = format!("{append} {word}").trim().to_string();
        machine.ram_mib = machine.ram_mib.max(min_mib);
    }
    let mut a = machine.qemu_args();
    a.push("-kernel".into());
    a.push(kernel.display().to_string());
    a.extend(extra);
    if !append.is_empty() {
        a.extend(["-append".into(), append]);
    }
    Ok(a)
}

/// Boots `kernel` on `machine` with `append` (and `initrd`, see [`qemu_args`]),
/// echoing the raw output when `echo`, feeding each line (without `\n`, `\r`
/// removed) to `on_line`, and kills QEMU after `timeout`.
fn boot(
    kernel: &Path,
    machine: &Machine,
    append: &str,
    initrd: Option<&Path>,
    timeout: Duration,
    echo: bool,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutput, String> {
    let args = qemu_args(kernel, machine, append, initrd)?;
    run_qemu(&args, timeout, echo, on_line)
}

/// Runs `qemu-system-aarch64 args`, echoing the raw output when `echo`, feeding each
/// line (without `\n`, `\r` removed) to `on_line`, and kills QEMU after `timeout`.
fn run_qemu(
    args: &[String],
    timeout: Duration,
    echo: bool,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutput, String> {
    let start = Instant::now();
    let mut child = Command::new("qemu-system-aarch64")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            format!("cannot start qemu-system-aarch64 ({e}): apt-get install -y qemu-system-arm")
        })?;
    let mut stdout = child.stdout.take().ok_or("QEMU has no stdout")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut first = None;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            first.get_or_insert_with(|| start.elapsed());
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
        first
    });
    let (mut log, mut pending) = (Vec::new(), Vec::new());
    let mut take = |bytes: &[u8], pending: &mut Vec<u8>, log: &mut Vec<u8>| {
        if echo {
            print!("{}", String::from_utf8_lossy(bytes).replace('\r', ""));
        }
        log.extend_from_slice(bytes);
        pending.extend_from_slice(bytes);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            on_line(String::from_utf8_lossy(&line[..i]).trim_end_matches('\r'));
        }
    };
    let status = loop {
        while let Ok(bytes) = rx.try_recv() {
            take(&bytes, &mut pending, &mut log);
        }
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            println!("xtask: QEMU killed after the {timeout:?} timeout");
            break None;
        }
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(5)) {
            take(&bytes, &mut pending, &mut log);
        }
    };
    let first_output = reader.join().unwrap_or_default();
    while let Ok(bytes) = rx.try_recv() {
        take(&bytes, &mut pending, &mut log);
    }
    if !pending.is_empty() {
        on_line(String::from_utf8_lossy(&pending).trim_end_matches('\r'));
    }
    Ok(RunOutput {
        status,
        log: String::from_utf8_lossy(&log).replace('\r', ""),
        first_output,
        wall: start.elapsed(),
    })
}

/// `cargo xtask run --arch aarch64` without `--init`: boots `kernel` (see [`build`])
/// with the initrd `initrd` (the user programs) and `append` on the two-node NUMA
/// machine, shows its output and returns the guest's exit status.
pub fn run(kernel: &Path, initrd: &Path, append: &str) -> Result<i32, String> {
    let out = boot(
        kernel,
        &NUMA,
        append,
        Some(initrd),
        RUN_TIMEOUT,
        true,
        &mut |_| {},
    )?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "xtask: boot time (wall, TCG): QEMU start to first line {:.0} ms, to exit {:.0} ms",
        out.first_output.map_or(f64::NAN, ms),
        ms(out.wall)
    );
    out.status
        .ok_or_else(|| "QEMU did not exit by itself".into())
}

/// An init run (see `init.rs`): boots `kernel` on the default machine (`ram_mib`
/// overriding its 256 MiB, raised to what the initrd needs) with `initrd` and
/// `append`; the kernel exits QEMU with 0 after init's marker.
pub fn boot_init(
    kernel: &Path,
    ram_mib: Option<u64>,
    initrd: &Path,
    append: &str,
    timeout: Duration,
    echo: bool,
) -> Result<crate::init::InitRun, String> {
    let machine = Machine {
        ram_mib: ram_mib.unwrap_or(DEFAULT.ram_mib),
        ..DEFAULT
    };
    let mut console = crate::init::InitConsole::new(echo);
    let out = boot(
        kernel,
        &machine,
        append,
        Some(initrd),
        timeout,
        false,
        &mut |line| console.line(line),
    )?;
    let ending = match out.status {
        Some(s) => format!("QEMU exit status {s} after {:.1} s", out.wall.as_secs_f64()),
        None => format!("QEMU killed after the {timeout:?} timeout"),
    };
    // Without a marker the output is the whole console (a panic, the demo, ...).
    let output = if console.status.is_some() {
        console.output
    } else {
        out.log
    };
    Ok(crate::init::InitRun {
        output,
        status: console.status,
        clean: out.status == Some(0),
        ending,
    })
}

/// A benchmark run of this kernel (see `icount.rs`): boots `kernel` on the default
/// machine with `initrd` and `append` as an init run does, with the QEMU arguments
/// `extra` added (e.g. `-icount ...`); nothing is echoed.
pub fn boot_with_args(
    kernel: &Path,
    initrd: &Path,
    append: &str,
    extra: &[&str],
    timeout: Duration,
) -> Result<RunOutput, String> {
    let mut args = qemu_args(kernel, &DEFAULT, append, Some(initrd))?;
    args.extend(extra.iter().map(|a| a.to_string()));
    run_qemu(&args, timeout, false, &mut |_| {})
}

/// Boots a Linux `Image` (Debian's arm64 kernel, see `linuxref.rs`) on the default
/// machine with its initramfs (`-initrd`, found through the device tree) and
/// `append`, plus `extra`. `-no-reboot` turns Linux's reboot on a panic into QEMU's
/// exit; its power-off (PSCI SYSTEM_OFF) ends QEMU with status 0.
pub fn boot_linux(
    image: &Path,
    initramfs: &Path,
    append: &str,
    extra: &[&str],
    timeout: Duration,
) -> Result<RunOutput, String> {
    let mut args = DEFAULT.qemu_args();
    args.extend(["-kernel".into(), image.display().to_string()]);
    args.extend(["-initrd".into(), initramfs.display().to_string()]);
    args.extend(["-append".into(), append.to_string(), "-no-reboot".into()]);
    args.extend(extra.iter().map(|a| a.to_string()));
    run_qemu(&args, timeout, false, &mut |_| {})
}

/// `cargo xtask test --arch aarch64`: every in-QEMU test on the default machine (on
/// 1, 2 and 4 CPUs), the RAM and NUMA tests again on the NUMA and 4 GiB machines,
/// the interrupt tests on a GICv3 machine. Returns (passed, failed).
pub fn test(root: &Path) -> Result<(usize, usize), String> {
    let kernel = build(root)?;
    let names = list(&kernel)?;
    let programs = test_initrd()?;
    let run_one = |machine: &Machine, name: &str| {
        let initrd = WITH_PROGRAMS.contains(&name).then_some(programs.as_path());
        run_one(&kernel, machine, name, initrd)
    };
    let mut tally = (0, 0);
    for name in &names {
        count(&mut tally, run_one(&DEFAULT, name)?);
    }
    let again: [(&Machine, &[&str]); 3] = [
        (
            &NUMA,
            &[
                "ram_total_matches_qemu",
                "numa_from_device_tree",
                "numa_local_on_every_cpu",
            ],
        ),
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
            count(&mut tally, run_one(machine, name)?);
        }
    }
    // Every test again on 2 and on 4 CPUs.
    for cpus in [2, 4] {
        set_cpus(cpus);
        for name in &names {
            let passed = run_one(&DEFAULT, name);
            count(&mut tally, matches!(passed, Ok(true)));
        }
    }
    set_cpus(0);
    Ok(tally)
}

/// In-QEMU tests that run user programs: they boot with the initrd of
/// [`test_initrd`].
const WITH_PROGRAMS: &[&str] = &["lanes_run_beside_the_table_lock"];

/// The initrd of the aarch64 user programs (`target/user-aarch64`), for the tests of
/// [`WITH_PROGRAMS`].
fn test_initrd() -> Result<PathBuf, String> {
    let user_dir = crate::build_user_programs(crate::user::Arch::Aarch64);
    let image = PathBuf::from(crate::target_dir()).join("initrd-test-aarch64.cpio");
    crate::initrd::write(&image, crate::initrd::programs_in(&user_dir), &[], &[])?;
    Ok(image)
}

fn count(tally: &mut (usize, usize), passed: bool) {
    if passed {
        tally.0 += 1;
    } else {
        tally.1 += 1;
    }
}

fn list(kernel: &Path) -> Result<Vec<String>, String> {
    let out = boot(
        kernel,
        &DEFAULT,
        "test --list",
        None,
        TEST_TIMEOUT,
        false,
        &mut |_| {},
    )?;
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
fn run_one(
    kernel: &Path,
    machine: &Machine,
    name: &str,
    initrd: Option<&Path>,
) -> Result<bool, String> {
    let append = format!("test {name} {}", machine.expectations());
    let out = boot(
        kernel,
        machine,
        &append,
        initrd,
        TEST_TIMEOUT,
        false,
        &mut |_| {},
    )?;
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
    let smp = match cpus() {
        n if n > 1 => format!("smp{n}/"),
        _ => String::new(),
    };
    println!(
        "test aarch64/{smp}{}{name} ... {verdict} ({ms:.0} ms)",
        machine.label
    );
    if !passed {
        println!("  QEMU status {:?}; guest output:\n{}", out.status, out.log);
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initrd_is_loaded_raw_and_named_on_the_command_line() {
        let dir = std::env::temp_dir().join(format!("xtask-a64-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let initrd = dir.join("initrd.cpio");
        std::fs::write(&initrd, vec![0u8; 1000]).unwrap();
        let small = Machine {
            ram_mib: 64,
            ..DEFAULT
        };
        let a = qemu_args(Path::new("/k.elf"), &small, "quiet frames", Some(&initrd)).unwrap();
        let at = |flag: &str| {
            let i = a.iter().position(|x| x == flag).unwrap();
            a[i + 1].as_str()
        };
        let loader = format!(
            "loader,file={},addr=0x42000000,force-raw=on",
            initrd.display()
        );
        assert_eq!(at("-device"), loader);
        assert_eq!(at("-append"), "quiet frames initrd=0x42000000,1000");
        // 32 MiB below the initrd, 1000 bytes of it (one MiB), 8 MiB above: less
        // than asked, so the 64 MiB asked for.
        assert_eq!(at("-m"), "64M");
        assert_eq!(at("-kernel"), "/k.elf");
        assert_eq!(at("-M"), "virt");
        assert_eq!(at("-cpu"), "cortex-a72");
        assert!(a.iter().any(|x| x == "-semihosting"));
        // A machine with enough RAM keeps it; no initrd, no loader and no word.
        let a = qemu_args(Path::new("/k.elf"), &DEFAULT, "", Some(&initrd)).unwrap();
        assert!(a.windows(2).any(|w| w == ["-m", "256M"]));
        let a = qemu_args(Path::new("/k.elf"), &DEFAULT, "test x", None).unwrap();
        assert!(!a.iter().any(|x| x == "-device" || x.contains("initrd=")));
        assert!(a.windows(2).any(|w| w == ["-append", "test x"]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

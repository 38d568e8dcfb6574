//! `cargo xtask`: build the kernel images, boot them in QEMU, run the tests.
//!
//! * `cargo xtask run [--kvm] [--machine M] [--memory SIZE]`: builds the x86_64
//!   image and the user programs (`user/`, into an initrd), boots the demo (kernel
//!   threads, then user programs), streams its serial output, prints how long QEMU
//!   took to the first line and to the end, and exits 0 when the guest reports success.
//! * `cargo xtask run --init PATH [-- ARGS...]`: boots the kernel with the static
//!   Linux ELF at PATH as pid 1 (argv = its name and ARGS); the terminal shows only
//!   what it writes; xtask exits with its status (128 + signal when killed).
//! * `cargo xtask run --arch aarch64 [--append CMDLINE] [--smp N] [--init PATH [-- ARGS...]]`:
//!   the same on the aarch64 kernel (`qemu-system-aarch64 -M virt`, see `aarch64.rs`),
//!   with the aarch64 user programs of `target/user-aarch64` in the initrd.
//! * `cargo xtask shell [--arch aarch64] [-c LINE]`: Debian's static busybox `sh`
//!   as pid 1 in a busybox root file system (`shell.rs`, `busybox.rs`); with `-c`
//!   only the command's output and its status. `cargo xtask busybox-tests [--arch
//!   aarch64] [--host-only]`: only the busybox lines of `test` (or their host results).
//!   `cargo xtask shell-check [--arch aarch64]`: only the interactive shell's check.
//! * `cargo xtask tty-check [--arch aarch64]`: types into the console terminal
//!   (`tty.rs`).
//! * `cargo xtask soak [--kvm]`: the long reliability runs (see `reliability.rs`).
//! * `cargo xtask test [--kvm]`: runs the host tests (`cargo test --workspace --no-fail-fast`), then
//!   each in-QEMU test in its own QEMU (the guest prints `test NAME ... ok|FAILED` and
//!   exits through `isa-debug-exit`), every run under a timeout, then every user
//!   program of `user/` natively and as pid 1 under the kernel, comparing normalised
//!   output and status (see `user_tests`), the reliability cases, then the aarch64
//!   kernel's in-QEMU tests, every user program under it compared with its
//!   `qemu-aarch64` reference (`aarch64/user/NAME`) and the reliability cases on it
//!   (`aarch64/reliability_NAME`), the console terminal typed into on both (`tty.rs`),
//!   the busybox lines (`busybox.rs`, one boot per architecture) and the interactive
//!   shell driven through tmux (`shell.rs`) on both, and ends with exactly one line
//!   `N passed, N failed` counting all.
//!
//! `std` and `serde_json` (for the benchmark files). Prerequisites of both
//! architectures are installed when missing (`setup.rs`: rustup targets; QEMU, the
//! C toolchains and qemu-user via apt-get when running as root).

mod aarch64;
mod bench;
mod busybox;
mod icount;
mod init;
mod initrd;
mod linuxref;
mod qemu;
mod reliability;
mod scaling;
mod setup;
mod shell;
mod tty;
mod user;

use qemu::{Outcome, QemuConfig};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

const TARGET: &str = "x86_64-unknown-none";
const PACKAGE: &str = "boot-x86_64";
const BINARY: &str = "kernel-x86_64";
/// Bound on one demo run.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one in-QEMU test.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench_cmd(&args[1..]),
        Some("soak") => reliability::soak(&args[1..]),
        Some("tty-check") => tty_check(&args[1..]),
        Some("shell") => shell::shell(&args[1..]),
        Some("busybox-tests") => busybox::command(&args[1..]),
        Some("shell-check") => shell::check(&args[1..]),
        Some("smp-tests") => smp_command(&args[1..]),
        _ => Err(usage()),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> String {
    "usage: cargo xtask run [--arch x86_64|aarch64] [--smp N] [--kvm] [--machine microvm|pc|q35] [--memory 128M] [--append CMDLINE] [--init PATH [-- ARGS...]]
       cargo xtask test [--kvm]
       cargo xtask smp-tests
       cargo xtask bench [--quick] [--qemu-only] [--icount-only] [--scaling-only]
       cargo xtask soak [--kvm]
       cargo xtask shell [--arch aarch64] [--smp N] [-c LINE]
       cargo xtask busybox-tests [--arch aarch64] [--host-only]
       cargo xtask shell-check [--arch aarch64]
       cargo xtask tty-check [--arch aarch64]".into()
}

/// `tty-check [--arch aarch64]`: only the console terminal check (`tty.rs`).
fn tty_check(args: &[String]) -> Result<ExitCode, String> {
    let passed = match args {
        [] => tty::check(&tty::Machine::X86_64(&build_kernel()?)),
        [a, b] if a == "--arch" && b == "aarch64" => {
            let kernel = aarch64::build(&workspace_root())?;
            tty::check(&tty::Machine::Aarch64(&kernel.display().to_string()))
        }
        _ => return Err(usage()),
    };
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask bench [--quick] [--qemu-only] [--icount-only]`: the benchmark
/// tables (see `bench.rs`; `--icount-only`: only the instruction counts, `icount.rs`).
fn bench_cmd(args: &[String]) -> Result<ExitCode, String> {
    let opts = bench::Options {
        quick: args.iter().any(|a| a == "--quick"),
        qemu_only: args.iter().any(|a| a == "--qemu-only"),
        icount_only: args.iter().any(|a| a == "--icount-only"),
        scaling_only: args.iter().any(|a| a == "--scaling-only"),
    };
    bench::run_with(&workspace_root(), &opts)?;
    Ok(ExitCode::SUCCESS)
}

/// Options shared by `run` and `test`.
fn parse_config(args: &[String]) -> Result<QemuConfig, String> {
    let mut cfg = QemuConfig::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--kvm" => cfg.kvm = true,
            "--machine" => cfg.machine = value()?,
            "--memory" => cfg.memory = value()?,
            "--append" => cfg.append = value()?,
            "--smp" => {
                cfg.smp = value()?
                    .parse()
                    .ok()
                    .filter(|n| (1..=16).contains(n))
                    .ok_or("--smp takes a CPU count from 1 to 16")?
            }
            other => return Err(format!("unknown option {other}\n{}", usage())),
        }
    }
    Ok(cfg)
}

/// Builds the bare-metal image and returns its path.
fn build_kernel() -> Result<String, String> {
    setup::ensure_target(TARGET)?;
    let status = Command::new(cargo())
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
        return Err("kernel build failed".into());
    }
    Ok(format!("{}/{TARGET}/release/{BINARY}", target_dir()))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn target_dir() -> String {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return dir;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.to_path_buf());
    root.unwrap_or_default()
        .join("target")
        .display()
        .to_string()
}

/// `run`'s arguments: QEMU options, the `--init` path, the program's arguments.
type RunArgs = (Vec<String>, Option<String>, Vec<String>);

/// Splits `run`'s arguments into options, the `--init` path and the program's args.
fn split_run_args(args: &[String]) -> Result<RunArgs, String> {
    let (opts, prog_args) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    let mut rest = Vec::new();
    let mut init = None;
    let mut it = opts.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--init" => init = Some(it.next().cloned().ok_or("--init needs a path")?),
            _ => rest.push(a.clone()),
        }
    }
    Ok((rest, init, prog_args))
}

/// Builds the user programs for `arch` into `target/user` or `target/user-aarch64`
/// and returns that directory (best effort: when a build fails the initrd has fewer
/// programs, and the user tests say so).
fn build_user_programs(arch: user::Arch) -> std::path::PathBuf {
    let root = workspace_root();
    if let Err(e) = user::build_all(&root, arch) {
        eprintln!("xtask: user programs not built: {e}");
    }
    root.join("target").join(arch.out_subdir())
}

/// Writes the initrd of a `run`: the user programs of `user_dir`, plus for `--init
/// PATH` that file (under its own name, replacing a program of that name),
/// `.init.argv` = `/NAME ARGS...`, `.init.envp` = `TEST_ENV`, and the busybox root
/// file system of `cargo xtask shell` around them (`busybox::root_tree`).
fn write_run_initrd(
    image: &std::path::Path,
    user_dir: &std::path::Path,
    arch: user::Arch,
    init: Option<&str>,
    prog_args: &[String],
) -> Result<(), String> {
    let mut members = initrd::programs_in(user_dir);
    let mut argv = Vec::new();
    if let Some(path) = init {
        let data = std::fs::read(path).map_err(|e| format!("read {path}: {e}"))?;
        let name = std::path::Path::new(path)
            .file_name()
            .map_or("init".into(), |n| n.to_string_lossy().into_owned());
        members.retain(|m| m.name != name);
        members.push(initrd::Member {
            name: name.clone(),
            data,
        });
        argv.push(format!("/{name}"));
        argv.extend(prog_args.iter().cloned());
    }
    let mut nodes = match init {
        Some(_) => run_root_tree(arch),
        None => Vec::new(),
    };
    nodes.extend(members.into_iter().map(initrd::Node::from));
    initrd::write_tree(image, nodes, &argv, &test_env())
}

/// The busybox root file system for an init run; none (with a note) when busybox
/// cannot be had.
fn run_root_tree(arch: user::Arch) -> Vec<initrd::Node> {
    match busybox::ensure(arch).and_then(|bb| busybox::root_tree(&bb)) {
        Ok(tree) => tree,
        Err(e) => {
            eprintln!("xtask: the initrd has no busybox root file system: {e}");
            Vec::new()
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    if let Some(rest) = strip_arch(args, "aarch64") {
        return run_aarch64(&rest);
    }
    let args = strip_arch(args, "x86_64").unwrap_or_else(|| args.to_vec());
    let (opts, init, prog_args) = split_run_args(&args)?;
    let mut cfg = parse_config(&opts)?;
    setup::ensure(setup::Needs::X86_64)?;
    let kernel = build_kernel()?;
    let user_dir = build_user_programs(user::Arch::X86_64);
    let image = std::path::PathBuf::from(target_dir()).join("initrd-run.cpio");
    write_run_initrd(
        &image,
        &user_dir,
        user::Arch::X86_64,
        init.as_deref(),
        &prog_args,
    )?;
    cfg.initrd = Some(image.display().to_string());
    if init.is_some() {
        if cfg.append.is_empty() {
            cfg.append = "quiet".into();
        }
        let k = init::Kernel::X86_64 {
            image: &kernel,
            base: &cfg,
        };
        return run_init(&k, &image, None, &cfg.append);
    }
    let out = qemu::boot(&kernel, &cfg, RUN_TIMEOUT, &mut |line| println!("{line}"))?;
    print_times(&out);
    match out.outcome {
        Outcome::Success => Ok(ExitCode::SUCCESS),
        other => Err(format!("the kernel did not finish cleanly: {other:?}")),
    }
}

/// `run --arch aarch64 [--append CMDLINE] [--smp N] [--memory SIZE] [--init PATH [-- ARGS...]]`:
/// as on x86_64 (the initrd holds the aarch64 user programs of `target/user-aarch64`;
/// `--memory` sizes the machine of an init run).
fn run_aarch64(args: &[String]) -> Result<ExitCode, String> {
    let (opts, init, prog_args) = split_run_args(args)?;
    let mut append = String::new();
    let mut memory = None;
    let mut it = opts.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--append" => append = it.next().cloned().ok_or("--append needs a value")?,
            "--memory" => memory = Some(it.next().cloned().ok_or("--memory needs a size")?),
            "--smp" => aarch64::set_cpus(
                it.next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=16).contains(n))
                    .ok_or("--smp takes a CPU count from 1 to 16")?,
            ),
            other => {
                return Err(format!(
                    "--arch aarch64 takes only --append, --smp, --memory and --init: {other}\n{}",
                    usage()
                ))
            }
        }
    }
    setup::ensure(setup::Needs::Aarch64)?;
    let root = workspace_root();
    let kernel = aarch64::build(&root)?;
    let user_dir = build_user_programs(user::Arch::Aarch64);
    let image = std::path::PathBuf::from(target_dir()).join("initrd-run-aarch64.cpio");
    write_run_initrd(
        &image,
        &user_dir,
        user::Arch::Aarch64,
        init.as_deref(),
        &prog_args,
    )?;
    if init.is_some() {
        if append.is_empty() {
            append = "quiet".into();
        }
        return run_init(
            &init::Kernel::Aarch64 { image: &kernel },
            &image,
            memory.as_deref(),
            &append,
        );
    }
    let code = aarch64::run(&kernel, &image, &append)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `TEST_ENV` as `K=V` strings.
fn test_env() -> Vec<String> {
    user::TEST_ENV
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// What an init run printed (the program's output) and its status (x86_64).
fn boot_init(
    kernel: &str,
    cfg: &QemuConfig,
    timeout: Duration,
    echo: bool,
) -> Result<(String, Option<i32>, Outcome), String> {
    let mut console = init::InitConsole::new(echo);
    let out = qemu::boot(kernel, cfg, timeout, &mut |line| console.line(line))?;
    Ok((console.output, console.status, out.outcome))
}

/// An init run shown on the terminal; exits with init's status.
fn run_init(
    kernel: &init::Kernel,
    initrd: &std::path::Path,
    memory: Option<&str>,
    append: &str,
) -> Result<ExitCode, String> {
    let run = kernel.boot_init(initrd, memory, append, Duration::from_secs(3600), true)?;
    match run.status {
        Some(s) => Ok(ExitCode::from(s.clamp(0, 255) as u8)),
        None => Err(format!(
            "the kernel did not report init's status: {}",
            run.ending
        )),
    }
}

fn print_times(out: &qemu::RunOutput) {
    let first = out
        .first_line
        .map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3));
    println!(
        "boot time (wall, QEMU start ->): first serial line {first}, exit {:.1} ms ({})",
        out.total.as_secs_f64() * 1e3,
        out.accel
    );
}

/// The workspace root (the parent of `xtask/`).
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `args` without `--arch NAME` if they select `NAME`; `None` if they select another
/// architecture (or none, for a non-default `name`).
fn strip_arch(args: &[String], name: &str) -> Option<Vec<String>> {
    match args.iter().position(|a| a == "--arch") {
        Some(i) if args.get(i + 1).map(String::as_str) == Some(name) => {
            let mut rest = args.to_vec();
            rest.drain(i..i + 2);
            Some(rest)
        }
        Some(_) => None,
        None if name == "x86_64" => Some(args.to_vec()),
        None => None,
    }
}

/// Pass/fail counts.
#[derive(Default)]
struct Tally {
    passed: u32,
    failed: u32,
}

fn test(args: &[String]) -> Result<ExitCode, String> {
    let cfg = parse_config(args)?;
    setup::ensure(setup::Needs::Both)?;
    let mut tally = Tally::default();
    host_tests(&mut tally)?;
    let (kernel, user_dir, cfg) = prepare_x86_tests(cfg)?;
    qemu_tests(&kernel, &cfg, &mut tally)?;
    count(&mut tally, tty::check(&tty::Machine::X86_64(&kernel)));
    memory_size_tests(&kernel, &cfg, &mut tally);
    let x86 = init::Kernel::X86_64 {
        image: &kernel,
        base: &cfg,
    };
    println!("== user programs: native Linux vs. this kernel");
    let root = workspace_root();
    user_tests(&x86, &user_dir, &mut tally, &mut |p| {
        native_reference(&root, p)
    });
    let (passed, failed) = reliability::tests(&x86, &user_dir);
    (tally.passed, tally.failed) = (tally.passed + passed, tally.failed + failed);
    shell_tests(&x86, &mut tally);
    smp_tests(&kernel, &cfg, &user_dir, &mut tally);
    numa_test(&kernel, &cfg, &mut tally);
    println!("== aarch64 in-QEMU tests");
    match aarch64::test(&workspace_root()) {
        Ok((passed, failed)) => {
            tally.passed += passed as u32;
            tally.failed += failed as u32;
        }
        Err(e) => {
            println!("aarch64 tests could not run: {e}");
            tally.failed += 1;
        }
    }
    aarch64_user_tests(&mut tally);
    match aarch64::build(&workspace_root()) {
        Ok(k) => count(
            &mut tally,
            tty::check(&tty::Machine::Aarch64(&k.display().to_string())),
        ),
        Err(e) => {
            println!("test tty_console_aarch64 ... FAILED ({e})");
            count(&mut tally, false);
        }
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds the x86_64 kernel and user programs and the test initrd of them;
/// returns the kernel's path, the programs' directory and `cfg` with the initrd.
fn prepare_x86_tests(cfg: QemuConfig) -> Result<(String, std::path::PathBuf, QemuConfig), String> {
    let kernel = build_kernel()?;
    let user_dir = build_user_programs(user::Arch::X86_64);
    let image = std::path::PathBuf::from(target_dir()).join("initrd-test.cpio");
    initrd::write(&image, initrd::programs_in(&user_dir), &[], &[])?;
    let cfg = QemuConfig {
        initrd: Some(image.display().to_string()),
        ..cfg
    };
    Ok((kernel, user_dir, cfg))
}

/// `cargo xtask smp-tests`: only the runs on more CPUs of `cargo xtask test`.
fn smp_command(args: &[String]) -> Result<ExitCode, String> {
    let cfg = parse_config(args)?;
    setup::ensure(setup::Needs::X86_64)?;
    let (kernel, user_dir, cfg) = prepare_x86_tests(cfg)?;
    let mut tally = Tally::default();
    smp_tests(&kernel, &cfg, &user_dir, &mut tally);
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(match tally.failed {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// The x86_64 kernel on more CPUs: every user program (compared with native Linux,
/// as on one CPU), the reliability cases and the kernel's own in-QEMU tests, on 2
/// and on 4 CPUs.
fn smp_tests(kernel: &str, cfg: &QemuConfig, user_dir: &std::path::Path, tally: &mut Tally) {
    let root = workspace_root();
    for cpus in [2, 4] {
        let start = std::time::Instant::now();
        let base = QemuConfig {
            smp: cpus,
            ..cfg.clone()
        };
        let k = init::Kernel::X86_64 {
            image: kernel,
            base: &base,
        };
        println!("== user programs on {cpus} CPUs: native Linux vs. this kernel");
        user_tests(&k, user_dir, tally, &mut |p| native_reference(&root, p));
        let (passed, failed) = reliability::tests(&k, user_dir);
        (tally.passed, tally.failed) = (tally.passed + passed, tally.failed + failed);
        if let Err(e) = qemu_tests(kernel, &base, tally) {
            println!("test smp{cpus}/in-QEMU ... FAILED ({e})");
            tally.failed += 1;
        }
        println!(
            "x86_64 on {cpus} CPUs: {:.0} s",
            start.elapsed().as_secs_f64()
        );
    }
}

/// The user programs and the reliability cases under the aarch64 kernel, compared
/// with their `qemu-aarch64` references (`user::record_expected`).
fn aarch64_user_tests(tally: &mut Tally) {
    let start = std::time::Instant::now();
    let root = workspace_root();
    println!("== aarch64 user programs: qemu-aarch64 (Linux ABI) vs. this kernel");
    let prepared = aarch64::build(&root).and_then(|k| {
        let recorded = user::record_expected(&root, user::Arch::Aarch64)?;
        Ok((k, recorded))
    });
    let (kernel, recorded) = match prepared {
        Ok(x) => x,
        Err(e) => {
            println!("test aarch64/user ... FAILED: cannot prepare: {e}");
            tally.failed += 1;
            return;
        }
    };
    for r in &recorded {
        if let Some(note) = &r.note {
            println!("  aarch64 reference of {}: {note}", r.name);
        }
    }
    let user_dir = root.join("target").join(user::Arch::Aarch64.out_subdir());
    let k = init::Kernel::Aarch64 { image: &kernel };
    user_tests(&k, &user_dir, tally, &mut |p| {
        user::recorded(&root, user::Arch::Aarch64, p.name)
    });
    let (passed, failed) = reliability::tests(&k, &user_dir);
    (tally.passed, tally.failed) = (tally.passed + passed, tally.failed + failed);
    println!(
        "aarch64 user programs and reliability cases: {:.0} s",
        start.elapsed().as_secs_f64()
    );
    shell_tests(&k, tally);
    // The same programs and cases on 2 and on 4 CPUs.
    for cpus in [2, 4] {
        let start = std::time::Instant::now();
        aarch64::set_cpus(cpus);
        println!(
            "== aarch64 user programs on {cpus} CPUs: qemu-aarch64 (Linux ABI) vs. this kernel"
        );
        user_tests(&k, &user_dir, tally, &mut |p| {
            user::recorded(&root, user::Arch::Aarch64, p.name)
        });
        let (passed, failed) = reliability::tests(&k, &user_dir);
        (tally.passed, tally.failed) = (tally.passed + passed, tally.failed + failed);
        println!(
            "aarch64 on {cpus} CPUs: {:.0} s",
            start.elapsed().as_secs_f64()
        );
    }
    aarch64::set_cpus(0);
}

/// The busybox lines (one boot) and the interactive shell through tmux (skipped,
/// not counted, without tmux) under `kernel`.
fn shell_tests(kernel: &init::Kernel, tally: &mut Tally) {
    println!(
        "== {}busybox: Debian's busybox under this kernel vs. on the host",
        kernel.label()
    );
    let (passed, failed) = busybox::tests(kernel);
    (tally.passed, tally.failed) = (tally.passed + passed, tally.failed + failed);
    if let Some(ok) = shell::tmux_test(kernel.arch()) {
        count(tally, ok);
    }
}

/// `cargo test --workspace`, counting the harness's `test result:` lines.
fn host_tests(tally: &mut Tally) -> Result<(), String> {
    println!("== host tests: cargo test --workspace");
    let mut child = Command::new(cargo())
        .args(["test", "--workspace", "--no-fail-fast"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
        println!("{line}");
        if let Some((p, f)) = parse_test_result(&line) {
            tally.passed += p;
            tally.failed += f;
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() && tally.failed == 0 {
        // A build failure or a crashed test binary: count it so the summary shows it.
        println!("host tests: cargo test failed ({status})");
        tally.failed += 1;
    }
    Ok(())
}

/// Parses `test result: ok. 12 passed; 0 failed; ...`.
fn parse_test_result(line: &str) -> Option<(u32, u32)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u32> {
        let before = rest.split(&format!(" {word}")).next()?;
        before
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((count("passed")?, count("failed")?))
}

/// Asks the guest for its test names, then runs each in a fresh QEMU.
fn qemu_tests(kernel: &str, base: &QemuConfig, tally: &mut Tally) -> Result<(), String> {
    println!("== in-QEMU tests ({}, {} CPU(s))", kernel, base.smp);
    let names = list_qemu_tests(kernel, base)?;
    for name in names {
        let cfg = QemuConfig {
            append: format!("test {name}"),
            ..base.clone()
        };
        let mut saw_ok = false;
        let out = qemu::boot(kernel, &cfg, TEST_TIMEOUT, &mut |line| {
            saw_ok |= line.trim() == format!("test {name} ... ok");
            if line.starts_with("test ") || line.contains("PANIC") || line.contains("EXCEPTION") {
                println!("  {line}");
            }
        })?;
        let passed = if name.starts_with("should_fault_") {
            let reported = out.log.contains("EXCEPTION") || out.log.contains("KERNEL PANIC");
            if reported && out.outcome == Outcome::GuestFailure {
                println!(
                    "  test {name} ... ok (the fault was reported and QEMU exited with failure)"
                );
            }
            reported && out.outcome == Outcome::GuestFailure
        } else {
            saw_ok && out.outcome == Outcome::Success
        };
        if !passed {
            println!(
                "test {name} ... FAILED ({:?}); guest output:\n{}",
                out.outcome, out.log
            );
        }
        count(tally, passed);
    }
    Ok(())
}

fn list_qemu_tests(kernel: &str, base: &QemuConfig) -> Result<Vec<String>, String> {
    let cfg = QemuConfig {
        append: "test --list".into(),
        ..base.clone()
    };
    let mut names = Vec::new();
    let out = qemu::boot(kernel, &cfg, TEST_TIMEOUT, &mut |line| {
        if let Some(n) = line.strip_prefix("test-name: ") {
            names.push(n.trim().to_string());
        }
    })?;
    if out.outcome != Outcome::Success || names.is_empty() {
        return Err(format!(
            "the test kernel did not list its tests ({:?}):\n{}",
            out.outcome, out.log
        ));
    }
    Ok(names)
}

fn count(tally: &mut Tally, passed: bool) {
    if passed {
        tally.passed += 1;
    } else {
        tally.failed += 1;
    }
}

/// Boots with `-m 128M` and `-m 4G` and checks the usable RAM the kernel reports.
fn memory_size_tests(kernel: &str, base: &QemuConfig, tally: &mut Tally) {
    for (memory, min_mib, max_mib) in [("128M", 120u64, 128u64), ("4G", 4000, 4096)] {
        let name = format!("boot_reports_ram_{memory}");
        let cfg = QemuConfig {
            memory: memory.into(),
            append: "memtest".into(),
            ..base.clone()
        };
        let mut mib = None;
        let out = qemu::boot(kernel, &cfg, TEST_TIMEOUT, &mut |line| {
            if let Some(rest) = line.strip_prefix("memory: ") {
                mib = rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok());
            }
        });
        let ok = matches!(&out, Ok(o) if o.outcome == Outcome::Success)
            && mib.is_some_and(|m| (min_mib..=max_mib).contains(&m));
        println!(
            "test {name} ... {} (reported {mib:?} MiB)",
            if ok { "ok" } else { "FAILED" }
        );
        count(tally, ok);
    }
}

/// User programs that do not match Linux yet: still run and reported, but their
/// failure does not count. Keep this list short and say why in the report.
const KNOWN_FAILURES: &[&str] = &[];

/// Programs not run on more than one CPU: `latency`'s verdict (9 in 10 sleeps end
/// within 20 ms) measures the host as much as the guest once two vCPU threads and
/// QEMU share these 2-core machines (it passes on a quiet one, fails under load).
const ONE_CPU_ONLY: &[&str] = &["latency"];

/// Bound on one user program under the kernel.
const USER_TIMEOUT: Duration = Duration::from_secs(90);
/// The same under the aarch64 kernel (TCG; the slowest reference run takes 2 s).
const AARCH64_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// After this many user programs in a row timed out under the aarch64 kernel, the
/// rest are reported failed without running (a hanging kernel would otherwise cost
/// every timeout in turn).
const AARCH64_GIVE_UP_AFTER: usize = 3;

/// The user programs the tests run: on x86_64 the [`user::ProgramKind::Test`] ones (the
/// benchmark and the fuzzer have their own runs there); on aarch64 all of them.
fn test_programs(arch: user::Arch) -> impl Iterator<Item = &'static user::Program> {
    user::PROGRAMS
        .iter()
        .filter(move |p| arch == user::Arch::Aarch64 || p.kind == user::ProgramKind::Test)
}

/// Gives a program's reference: normalised output and status.
type ReferenceFn<'a> = dyn FnMut(&user::Program) -> Result<(String, i32), String> + 'a;

/// The x86_64 reference of `p`: its output and status on the host's Linux.
fn native_reference(root: &std::path::Path, p: &user::Program) -> Result<(String, i32), String> {
    let r = user::reference(root, user::Arch::X86_64, p)?;
    Ok((r.output, r.status))
}

/// Each test program of `user/` as pid 1 under `kernel`, compared with its
/// reference (`reference(p)`: normalised output and status; the native Linux run on
/// x86_64, the recorded `qemu-aarch64` one on aarch64): the normalised outputs and
/// the statuses must be equal. Test names: `user_NAME`, `aarch64/user/NAME`.
fn user_tests(
    kernel: &init::Kernel,
    user_dir: &std::path::Path,
    tally: &mut Tally,
    reference: &mut ReferenceFn,
) {
    let arch = kernel.arch();
    let mut known = Vec::new();
    let mut timeouts_in_a_row = 0;
    let many_cpus = kernel.cpus() > 1;
    for p in test_programs(arch) {
        if many_cpus && ONE_CPU_ONLY.contains(&p.name) {
            continue;
        }
        let name = match arch {
            user::Arch::X86_64 => format!("{}user_{}", kernel.label(), p.name),
            user::Arch::Aarch64 => format!("{}user/{}", kernel.label(), p.name),
        };
        let start = std::time::Instant::now();
        let result = if arch == user::Arch::Aarch64 && timeouts_in_a_row >= AARCH64_GIVE_UP_AFTER {
            Err(format!(
                "not run: the last {AARCH64_GIVE_UP_AFTER} programs timed out"
            ))
        } else {
            reference(p).and_then(|r| user_test(kernel, user_dir, p, &r))
        };
        let secs = start.elapsed().as_secs_f64();
        match &result {
            Err(_) if start.elapsed() >= user_timeout(arch) => timeouts_in_a_row += 1,
            Err(e) if e.starts_with("not run") => {}
            _ => timeouts_in_a_row = 0,
        }
        let ok = result.is_ok();
        match (&result, KNOWN_FAILURES.contains(&p.name)) {
            (Ok(()), _) => println!("test {name} ... ok ({secs:.1} s)"),
            (Err(e), true) => {
                println!("test {name} ... known failure (not counted): {e}");
                known.push(p.name);
                continue;
            }
            (Err(e), false) => println!("test {name} ... FAILED: {e}"),
        }
        count(tally, ok);
    }
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    println!(
        "user programs marked as known failures (KNOWN_FAILURES in xtask/src/main.rs): {known}"
    );
}

fn user_timeout(arch: user::Arch) -> Duration {
    match arch {
        user::Arch::X86_64 => USER_TIMEOUT,
        user::Arch::Aarch64 => AARCH64_USER_TIMEOUT,
    }
}

fn user_test(
    kernel: &init::Kernel,
    user_dir: &std::path::Path,
    p: &user::Program,
    (expected, expected_status): &(String, i32),
) -> Result<(), String> {
    let mut argv = vec![format!("/{}", p.name)];
    argv.extend(p.args.iter().map(|a| a.to_string()));
    let image = std::path::PathBuf::from(target_dir()).join(format!(
        "initrd-{}{}.cpio",
        kernel.label().replace('/', "-"),
        p.name
    ));
    initrd::write(&image, initrd::programs_in(user_dir), &argv, &test_env())?;
    let timeout = user_timeout(kernel.arch());
    let run = kernel.boot_init(&image, None, "quiet", timeout, false)?;
    let _ = std::fs::remove_file(&image);
    let output = run.output;
    let status = run.status.ok_or(format!(
        "no exit status ({}); output:\n{output}",
        run.ending
    ))?;
    user::compare(expected, &output)
        .map_err(|e| format!("output differs: {e}\n--- kernel output:\n{output}"))?;
    if status != *expected_status {
        return Err(format!("status {status}, Linux {expected_status}"));
    }
    Ok(())
}

/// Boots a two-node NUMA machine (`-M pc`, which has ACPI) and checks that the kernel
/// found both nodes, their memory and the SLIT distance from the SRAT/SLIT.
fn numa_test(kernel: &str, base: &QemuConfig, tally: &mut Tally) {
    let numa = "-smp 2 -object memory-backend-ram,id=m0,size=256M \
        -object memory-backend-ram,id=m1,size=256M \
        -numa node,nodeid=0,cpus=0,memdev=m0 -numa node,nodeid=1,cpus=1,memdev=m1 \
        -numa dist,src=0,dst=1,val=21";
    let cfg = QemuConfig {
        machine: "pc".into(),
        memory: "512M".into(),
        append: "test numa_local_allocation".into(),
        extra: numa.split_whitespace().map(String::from).collect(),
        ..base.clone()
    };
    let mut nodes = Vec::new();
    let out = qemu::boot(kernel, &cfg, TEST_TIMEOUT, &mut |line| {
        if line.starts_with("numa: node") {
            nodes.push(line.to_string());
        }
    });
    let expect = |n: &str, d: &str| {
        nodes
            .iter()
            .any(|l| l.starts_with(&format!("numa: node {n} ")) && l.ends_with(d))
    };
    let sizes_ok = nodes.iter().all(|l| {
        let mib = l
            .split_whitespace()
            .nth(3)
            .and_then(|m| m.parse::<u64>().ok());
        mib.is_some_and(|m| (200..=256).contains(&m))
    });
    let local = matches!(&out, Ok(o) if o.log.contains("test numa_local_allocation ... ok"));
    let ok = matches!(&out, Ok(o) if o.outcome == Outcome::Success)
        && local
        && nodes.len() == 2
        && expect("0", "distances 10 21")
        && expect("1", "distances 21 10")
        && sizes_ok;
    println!(
        "test numa_from_acpi_and_local_allocation ... {} ({nodes:?})",
        if ok { "ok" } else { "FAILED" }
    );
    count(tally, ok);
    numa_smp_test(kernel, base, tally);
}

/// Four CPUs in two nodes (`-M pc`, SRAT/SLIT): every CPU knows its node and takes
/// its frames from that node's memory (a kernel thread pinned to each checks the
/// physical ranges).
fn numa_smp_test(kernel: &str, base: &QemuConfig, tally: &mut Tally) {
    let numa = "-object memory-backend-ram,id=m0,size=256M \
        -object memory-backend-ram,id=m1,size=256M \
        -numa node,nodeid=0,cpus=0-1,memdev=m0 -numa node,nodeid=1,cpus=2-3,memdev=m1 \
        -numa dist,src=0,dst=1,val=21";
    let cfg = QemuConfig {
        machine: "pc".into(),
        memory: "512M".into(),
        smp: 4,
        append: "test numa_local_on_every_cpu".into(),
        extra: numa.split_whitespace().map(String::from).collect(),
        ..base.clone()
    };
    let mut lines = Vec::new();
    let out = qemu::boot(kernel, &cfg, TEST_TIMEOUT, &mut |line| {
        if line.starts_with("smp:") || line.trim_start().starts_with("numa: cpu") {
            lines.push(line.trim().to_string());
        }
    });
    let want = [
        "numa: cpu 0 node 0: 64 of 64 frames from its node",
        "numa: cpu 1 node 0: 64 of 64 frames from its node",
        "numa: cpu 2 node 1: 64 of 64 frames from its node",
        "numa: cpu 3 node 1: 64 of 64 frames from its node",
    ];
    let ok = matches!(&out, Ok(o) if o.outcome == Outcome::Success
        && o.log.contains("test numa_local_on_every_cpu ... ok"))
        && want.iter().all(|w| lines.iter().any(|l| l == w));
    println!(
        "test numa_local_frames_on_every_cpu ... {} ({lines:?})",
        if ok { "ok" } else { "FAILED" }
    );
    count(tally, ok);
}

#[cfg(test)]
mod tests {
    use super::parse_test_result;

    #[test]
    fn parses_harness_summary() {
        let l = "test result: ok. 12 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(parse_test_result(l), Some((12, 3)));
        assert_eq!(parse_test_result("running 3 tests"), None);
    }
}

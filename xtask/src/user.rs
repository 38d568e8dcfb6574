//! The user programs of `user/`: build them, run them natively on the host Linux,
//! and keep their normalised output as the reference the kernel must reproduce.
//!
//! ## Public functions (std only; the xtask binary calls these)
//! Each takes the [`Arch`] the programs are for: x86_64 (`target/user/`, run natively)
//! or aarch64 (`target/user-aarch64/`, cross-built, run under `qemu-aarch64`).
//! * [`build_all`]`(root, arch) -> Vec<PathBuf>`: builds every C program
//!   `user/c/<name>.c` (x86_64: `musl-gcc -static -O2`, static **non-PIE** `ET_EXEC`;
//!   aarch64: `aarch64-linux-gnu-gcc -specs <musl-gcc.specs> -static -O2`) and every
//!   Rust program `user/rust/src/bin/<name>.rs` for `x86_64-unknown-linux-musl`
//!   (static-pie, `ET_DYN` without interpreter) or `aarch64-unknown-linux-musl`
//!   (linker `aarch64-linux-gnu-gcc`) into `target/<arch dir>/<name>`. C programs are
//!   rebuilt only when their source or a header of `user/c/` is newer than the binary.
//! * [`run_native`]`(bin, args) -> (output, status)`: runs one binary on the host the
//!   way the kernel will run it: environment exactly [`TEST_ENV`], stdin `/dev/null`,
//!   stdout and stderr into one pipe (as both go to the console under the kernel),
//!   cwd `$TMPDIR/kernel-user-scratch`; status = exit code, or 128 + signal when killed (as a
//!   shell reports it, and as QEMU's exit status will). Killed after [`TIMEOUT`].
//!   [`run_reference`]`(arch, bin, args)` does the same for either architecture.
//! * [`normalise`]`(output) -> String`: the text to compare: `\r` removed, trailing
//!   blanks dropped, timing figures (`ns_per_op=123`) and `pid=`/`tid=` numbers
//!   replaced by `N`, one final newline.
//! * [`record_expected`]`(root, arch)`: builds, gets each of [`PROGRAMS`]'
//!   [`reference`] (for aarch64 checked against x86_64 Linux, see
//!   [`QEMU_USER_GAPS`]), and writes `<arch dir>/<name>.expected` (normalised output)
//!   and `<arch dir>/<name>.status` (the status as a decimal number); [`recorded`]
//!   reads them back.
//! * [`compare`]`(expected, actual)`: `Ok` if the normalised texts are equal, else
//!   the first differing line.
//!
//! ## Running the kernel side
//! Run `target/user/<name>` as pid 1 with `argv = [name, PROGRAMS[name].args...]`
//! and `envp = TEST_ENV` (as `K=V` strings), then compare
//! `normalise(console output)` with `<name>.expected` and the exit status with
//! `<name>.status`.
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The environment every program gets, natively and under the kernel.
pub const TEST_ENV: &[(&str, &str)] = &[("HOME", "/"), ("PATH", "/bin"), ("TERM", "dumb")];

/// Longest a program may run natively before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The musl specs file of the aarch64 C toolchain (Debian package `musl-dev:arm64`).
pub const AARCH64_MUSL_SPECS: &str = "/usr/lib/aarch64-linux-musl/musl-gcc.specs";

/// The architecture the user programs are built for, and how their reference run
/// (Linux's behaviour) is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Built with `musl-gcc` and for `x86_64-unknown-linux-musl`; run natively.
    X86_64,
    /// Cross-built with `aarch64-linux-gnu-gcc` and musl's specs and for
    /// `aarch64-unknown-linux-musl`; run under `qemu-aarch64` (user-mode emulation).
    Aarch64,
}

impl Arch {
    /// Directory under `target/` that holds the binaries and references.
    pub fn out_subdir(self) -> &'static str {
        match self {
            Arch::X86_64 => "user",
            Arch::Aarch64 => "user-aarch64",
        }
    }

    /// The Rust target of the Rust user programs.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The C compiler and its arguments before the common flags.
    fn c_compiler(self) -> (&'static str, Vec<&'static str>, &'static str) {
        match self {
            Arch::X86_64 => ("musl-gcc", vec![], "musl-gcc (Debian package musl-tools)"),
            Arch::Aarch64 => (
                "aarch64-linux-gnu-gcc",
                vec!["-specs", AARCH64_MUSL_SPECS],
                "aarch64-linux-gnu-gcc (Debian packages gcc-aarch64-linux-gnu, musl-dev:arm64)",
            ),
        }
    }

    /// Environment for cargo when building the Rust programs.
    fn rust_env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Arch::X86_64 => &[],
            Arch::Aarch64 => &[(
                "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER",
                "aarch64-linux-gnu-gcc",
            )],
        }
    }

    /// The program that runs a binary of this architecture on the host (`None`:
    /// natively).
    pub fn runner(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 => None,
            Arch::Aarch64 => Some("qemu-aarch64"),
        }
    }
}

/// A user program and the arguments of its reference run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    /// File name in `target/user/`.
    pub name: &'static str,
    /// argv[1..] of the reference run.
    pub args: &'static [&'static str],
    /// Whether the output is a correctness reference, or a benchmark whose figures
    /// are only normalised away.
    pub kind: ProgramKind,
    /// How the reference run starts it.
    pub pid: ReferencePid,
}

/// What the reference run on Linux makes of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferencePid {
    /// An ordinary process.
    Ordinary,
    /// Pid 1 of a new pid namespace (`unshare -fp --kill-child`), so Linux treats it
    /// as init, as the kernel treats its `--init` program.
    NamespaceInit,
}

/// What a program's output is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// A test: the normalised output must match Linux's byte for byte.
    Test,
    /// A benchmark (issue 6): the figures differ; the lines must still match.
    Bench,
    /// The syscall fuzzer (issue 7): prints the number of calls it made.
    Fuzz,
}

/// Every program with the arguments of its reference run.
pub const PROGRAMS: &[Program] = &[
    test("hello", &["one", "two words", "--exit=3"]),
    test("forktree", &[]),
    test("threads", &[]),
    test("mmap", &[]),
    test("cow", &[]),
    test("fpfault", &[]),
    test("brk", &[]),
    test("hog", &[]),
    test("isolation", &[]),
    test("exec", &[]),
    test("futex", &[]),
    test("mtexit", &[]),
    test("pipes", &[]),
    test("ucopy", &[]),
    test("crash", &[]),
    test("faults", &[]),
    test("signals", &[]),
    test("sigintr", &[]),
    test("waits", &[]),
    test("jobs", &[]),
    init_test("init"),
    test("cancel", &[]),
    test("sigwait", &[]),
    test("sigqueue2", &[]),
    test("vforkwait", &[]),
    test("altstack", &[]),
    test("sleepstop", &[]),
    test("alarm", &[]),
    test("files", &[]),
    test("limits", &[]),
    test("overcommit", &[]),
    test("fuzzclass", &["2000"]),
    test("fsfiles", &[]),
    test("fsdirs", &[]),
    test("fsmeta", &[]),
    test("fsexec", &[]),
    test("latency", &["30"]),
    test("tlbshoot", &[]),
    test("rs_hello", &["one", "two words", "--exit=4"]),
    test("rs_threads", &[]),
    test("rs_alloc", &[]),
    test("rs_spawn", &[]),
    Program {
        name: "bench",
        args: &["1"],
        kind: ProgramKind::Bench,
        pid: ReferencePid::Ordinary,
    },
    Program {
        name: "fuzz",
        args: &["5000"],
        kind: ProgramKind::Fuzz,
        pid: ReferencePid::Ordinary,
    },
];

const fn test(name: &'static str, args: &'static [&'static str]) -> Program {
    Program {
        name,
        args,
        kind: ProgramKind::Test,
        pid: ReferencePid::Ordinary,
    }
}

/// A test whose Linux reference runs it as pid 1 of a new pid namespace.
const fn init_test(name: &'static str) -> Program {
    Program {
        pid: ReferencePid::NamespaceInit,
        ..test(name, &[])
    }
}

/// The program called `name`, if there is one.
pub fn program(name: &str) -> Option<&'static Program> {
    PROGRAMS.iter().find(|p| p.name == name)
}

/// `root/target/user` (x86_64) or `root/target/user-aarch64`, created if missing.
pub fn out_dir(root: &Path, arch: Arch) -> Result<PathBuf, String> {
    let dir = root.join("target").join(arch.out_subdir());
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Builds every C and Rust user program for `arch` into
/// `root/target/<arch.out_subdir()>/<name>`; returns the paths of the binaries.
pub fn build_all(root: &Path, arch: Arch) -> Result<Vec<PathBuf>, String> {
    let root = &std::path::absolute(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let out = out_dir(root, arch)?;
    let mut bins = build_c(arch, &root.join("user").join("c"), &out)?;
    bins.extend(build_rust(arch, &root.join("user").join("rust"), &out)?);
    bins.sort();
    Ok(bins)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether `out` is older than any of `inputs` (or missing).
fn stale(out: &Path, inputs: &[PathBuf]) -> bool {
    let Some(built) = modified(out) else {
        return true;
    };
    inputs.iter().any(|i| modified(i).is_none_or(|t| t > built))
}

/// The files of `dir` whose extension is `ext`, sorted.
fn files_with(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    let mut srcs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    srcs.sort();
    Ok(srcs)
}

/// The `.c` files of `dir`, sorted.
fn c_sources(dir: &Path) -> Result<Vec<PathBuf>, String> {
    files_with(dir, "c")
}

fn build_c(arch: Arch, src_dir: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    // A program is rebuilt when its source or any shared header is newer.
    let headers = files_with(src_dir, "h")?;
    let (compiler, first_args, what) = arch.c_compiler();
    let mut bins = Vec::new();
    for src in c_sources(src_dir)? {
        let name = src.file_stem().unwrap_or_default();
        let bin = out.join(name);
        let inputs: Vec<PathBuf> = core::iter::once(src.clone())
            .chain(headers.iter().cloned())
            .collect();
        if stale(&bin, &inputs) {
            let mut cmd = Command::new(compiler);
            cmd.args(&first_args)
                .args(["-static", "-O2", "-Wall", "-Wextra", "-o"])
                .arg(&bin)
                .arg(&src)
                .arg("-lpthread");
            run_tool(&mut cmd, what)?;
        }
        bins.push(bin);
    }
    Ok(bins)
}

/// Runs a build tool, turning failure into a message naming it.
fn run_tool(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status}): {cmd:?}"))
    }
}

/// The binary names of `user/rust/src/bin/*.rs`.
fn rust_bins(project: &Path) -> Result<Vec<String>, String> {
    let dir = project.join("src").join("bin");
    let entries = fs::read_dir(&dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

fn build_rust(arch: Arch, project: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let target_dir = out.join("rust");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--bins",
        "--target",
        arch.rust_target(),
    ])
    .envs(arch.rust_env().iter().copied())
    .arg("--manifest-path")
    .arg(project.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir)
    .current_dir(project);
    run_tool(&mut cmd, "cargo build (user/rust)")?;
    let built = target_dir.join(arch.rust_target()).join("release");
    let mut bins = Vec::new();
    for name in rust_bins(project)? {
        let bin = out.join(&name);
        fs::copy(built.join(&name), &bin).map_err(|e| format!("copy {name}: {e}"))?;
        bins.push(bin);
    }
    Ok(bins)
}

/// Runs `bin` natively (see the module docs); returns its raw combined output and
/// its status (exit code, or 128 + signal).
pub fn run_native(bin: &Path, args: &[&str]) -> Result<(String, i32), String> {
    run_reference(Arch::X86_64, bin, args)
}

/// [`run_reference`] as an ordinary process.
pub fn run_reference(arch: Arch, bin: &Path, args: &[&str]) -> Result<(String, i32), String> {
    run_reference_as(arch, bin, args, ReferencePid::Ordinary)
}

/// What `qemu-aarch64` itself prints when the program it runs dies of a signal
/// (`qemu: uncaught target signal 11 (Segmentation fault) - core dumped`): not the
/// program's output, so not part of the reference.
const QEMU_USER_SIGNAL_NOTE: &str = "qemu: uncaught target signal ";

/// Runs `bin` (built for `arch`) the way [`run_native`] does: natively on x86_64,
/// under `qemu-aarch64` for aarch64 with the same environment (given with `-E`,
/// in reverse: qemu-user hands the guest its list reversed, so the program sees
/// [`TEST_ENV`] in order), stdin, pipe, cwd and status convention (qemu-user dies of
/// the program's signal). qemu-user's own notes about a program's death are dropped.
pub fn run_reference_as(
    arch: Arch,
    bin: &Path,
    args: &[&str],
    pid: ReferencePid,
) -> Result<(String, i32), String> {
    let bin = &std::path::absolute(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let scratch = scratch_dir(bin)?;
    let (mut reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let writer2 = writer.try_clone().map_err(|e| format!("pipe: {e}"))?;
    let unshare = |program: &Path| {
        let mut cmd = Command::new("unshare");
        cmd.args(["-fp", "--kill-child"]).arg(program);
        cmd
    };
    let start = |program: &Path| match pid {
        ReferencePid::Ordinary => Command::new(program),
        ReferencePid::NamespaceInit => unshare(program),
    };
    let mut cmd = match arch.runner() {
        None => {
            let mut cmd = start(bin);
            cmd.env_clear().envs(TEST_ENV.iter().copied());
            cmd
        }
        Some(runner) => {
            let mut cmd = start(Path::new(runner));
            cmd.env_clear();
            for (k, v) in TEST_ENV.iter().rev() {
                cmd.arg("-E").arg(format!("{k}={v}"));
            }
            cmd.arg(bin);
            cmd
        }
    };
    default_signals(&mut cmd);
    cmd.args(args)
        .current_dir(&scratch)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("run {}: {e}", bin.display()))?;
    drop(cmd); // closes our copies of the pipe's write end
    let collector = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        bytes
    });
    let status = wait_with_timeout(&mut child, bin)?;
    let bytes = collector
        .join()
        .map_err(|_| "output reader panicked".to_string())?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if arch.runner().is_some() {
        text = drop_runner_notes(&text);
    }
    Ok((text, status))
}

/// Makes `cmd`'s program start with every signal at its default action and none
/// blocked, as the kernel starts init: dispositions set to "ignore" survive exec,
/// and a shell without job control starts its background jobs with SIGINT and
/// SIGQUIT ignored, which would make a reference run differ from the kernel's
/// (a `kill(self, SIGQUIT)` that Linux then ignores).
pub fn default_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (sigaction, sigprocmask) on its own stack.
    unsafe {
        cmd.pre_exec(|| {
            for sig in 1..libc::SIGRTMAX() {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// `text` without the lines of [`QEMU_USER_SIGNAL_NOTE`].
fn drop_runner_notes(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|l| !l.starts_with(QEMU_USER_SIGNAL_NOTE))
        .collect()
}

/// The cwd of native runs, a directory of its own under the system's temporary
/// directory (core files and anything a program might create land there).
fn scratch_dir(_bin: &Path) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join("kernel-user-scratch");
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn wait_with_timeout(child: &mut std::process::Child, bin: &Path) -> Result<i32, String> {
    let start = Instant::now();
    loop {
        let polled = child.try_wait().map_err(|e| format!("wait: {e}"))?;
        if let Some(status) = polled {
            return Ok(shell_status(status));
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} timed out after {TIMEOUT:?}", bin.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Exit code, or 128 + signal number for a killed process.
fn shell_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    }
}

/// Replaces the digits after each `key` (e.g. `"ns_per_op="`) with `N`.
fn mask_number_after(line: &str, key: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(key) {
        let (head, tail) = rest.split_at(at + key.len());
        out.push_str(head);
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push('N');
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Makes output comparable (see the module docs).
pub fn normalise(output: &str) -> String {
    let mut out = String::with_capacity(output.len());
    for line in output.replace('\r', "").lines() {
        let mut line = line.trim_end().to_string();
        for key in ["ns_per_op=", "pid=", "tid="] {
            line = mask_number_after(&line, key);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `Ok` if `normalise(expected) == normalise(actual)`, else a message with the
/// first differing line.
pub fn compare(expected: &str, actual: &str) -> Result<(), String> {
    let (e, a) = (normalise(expected), normalise(actual));
    if e == a {
        return Ok(());
    }
    let (el, al): (Vec<&str>, Vec<&str>) = (e.lines().collect(), a.lines().collect());
    let line = el.iter().zip(&al).position(|(x, y)| x != y);
    let n = line.unwrap_or(el.len().min(al.len()));
    let get = |v: &[&str]| {
        v.get(n)
            .map_or("<end of output>".to_string(), |s| format!("{s:?}"))
    };
    Err(format!(
        "line {}: expected {}, got {}",
        n + 1,
        get(&el),
        get(&al)
    ))
}

/// Programs whose run under `qemu-aarch64` is known not to be what aarch64 Linux
/// does, and why. Their aarch64 reference is the x86_64 Linux one seen through
/// [`as_aarch64`] (the programs print nothing else that depends on the
/// architecture) when the qemu-user run differs from it.
pub const QEMU_USER_GAPS: &[(&str, &str)] = &[
    (
        "vforkwait",
        "qemu-user runs a CLONE_VFORK child as a fork: the parent does not wait for it",
    ),
    (
        "altstack",
        "QEMU 7.2 refuses SS_AUTODISARM (EINVAL)",
    ),
    (
        "init",
        "qemu-user handles every signal itself, so as pid 1 it cannot show init's immunity",
    ),
    (
        "jobs",
        "QEMU 7.2 sends SIGCHLD for a child's stop and continue despite SA_NOCLDSTOP",
    ),
    (
        "exec",
        "execve of an aarch64 program fails under qemu-user without binfmt_misc (absent on this host)",
    ),
    (
        "mtexit",
        "execve of an aarch64 program fails under qemu-user without binfmt_misc (absent on this host)",
    ),
    (
        "rs_spawn",
        "execve of an aarch64 program fails under qemu-user without binfmt_misc (absent on this host)",
    ),
    (
        "bench",
        "execve of an aarch64 program fails under qemu-user without binfmt_misc (absent on this host)",
    ),
    (
        "fsexec",
        "execve of an aarch64 program fails under qemu-user without binfmt_misc (absent on this host)",
    ),
    (
        "isolation",
        "QEMU 7.2's nanosleep ignores a bad request pointer (Linux: EFAULT)",
    ),
    (
        "mmap",
        "QEMU 7.2 treats MAP_FIXED_NOREPLACE like a hint (Linux: EEXIST on a busy range)",
    ),
    (
        "fuzzclass",
        "qemu-user checks pointer arguments itself before the host kernel sees a call, \
         so its EFAULTs come before Linux's other checks; the calls are the generic ones \
         both architectures have",
    ),
    (
        "limits",
        "QEMU 7.2 accepts but ignores RLIMIT_AS/DATA/STACK (they would limit QEMU itself), \
         and execve of an aarch64 program fails without binfmt_misc",
    ),
];

/// A normalised x86_64 Linux output as aarch64 Linux prints it: the auxv's
/// `AT_PLATFORM` names the other machine.
pub fn as_aarch64(x86_64: &str) -> String {
    x86_64.replace("AT_PLATFORM=x86_64", "AT_PLATFORM=aarch64")
}

/// Whether this machine lets us make a pid namespace (`unshare -fp` needs
/// CAP_SYS_ADMIN; some CI containers lack it).
fn pid_namespaces_work() -> bool {
    Command::new("unshare")
        .args(["-fp", "--kill-child", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The reference of an init test where no pid namespace can be made: the output
/// recorded from `unshare -fp --kill-child` on Linux, checked in as
/// `user/c/<name>.linux` (its last line is `status N`).
fn recorded_init_reference(root: &Path, arch: Arch, p: &Program) -> Result<Reference, String> {
    let path = root.join("user/c").join(format!("{}.linux", p.name));
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (output, last) = text
        .trim_end()
        .rsplit_once('\n')
        .ok_or_else(|| format!("{}: no status line", path.display()))?;
    let status = last
        .strip_prefix("status ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{}: bad status line {last:?}", path.display()))?;
    let output = normalise(&(output.to_string() + "\n"));
    Ok(Reference {
        output: match arch {
            Arch::X86_64 => output,
            Arch::Aarch64 => as_aarch64(&output),
        },
        status,
        note: Some(format!(
            "no pid namespace here (unshare -fp failed): reference recorded in {}",
            path.display()
        )),
    })
}

/// The reference a program's run under the kernel is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Normalised output.
    pub output: String,
    /// Status (exit code, or 128 + signal).
    pub status: i32,
    /// How it was obtained when not simply by [`run_reference`], or a warning.
    pub note: Option<String>,
}

/// The reference of `p` on `arch` (binaries already built under `root`): its run by
/// [`run_reference`]. For aarch64 the qemu-user run is checked against the x86_64
/// native one (when `target/user/<name>` exists): for [`QEMU_USER_GAPS`] a
/// difference makes the x86_64 output (through [`as_aarch64`]) the reference; for
/// other programs it is reported in `note` and qemu-user's output stays.
pub fn reference(root: &Path, arch: Arch, p: &Program) -> Result<Reference, String> {
    let dir = root.join("target").join(arch.out_subdir());
    if p.pid == ReferencePid::NamespaceInit && !pid_namespaces_work() {
        return recorded_init_reference(root, arch, p);
    }
    if p.pid == ReferencePid::NamespaceInit && arch == Arch::Aarch64 {
        // qemu-user as pid 1 handles every signal itself (and hangs on this test):
        // the reference is x86_64 Linux's, as for the other qemu-user gaps.
        let x86_bin = root
            .join("target")
            .join(Arch::X86_64.out_subdir())
            .join(p.name);
        let (text, status) = run_reference_as(Arch::X86_64, &x86_bin, p.args, p.pid)?;
        return Ok(Reference {
            output: as_aarch64(&normalise(&text)),
            status,
            note: Some(format!(
                "reference = x86_64 Linux as pid 1 of a pid namespace, with AT_PLATFORM=aarch64 ({})",
                QEMU_USER_GAPS.iter().find(|(n, _)| *n == p.name).map_or("", |(_, why)| why)
            )),
        });
    }
    let (text, status) = run_reference_as(arch, &dir.join(p.name), p.args, p.pid)?;
    let mut r = Reference {
        output: normalise(&text),
        status,
        note: None,
    };
    let x86_bin = root
        .join("target")
        .join(Arch::X86_64.out_subdir())
        .join(p.name);
    if arch == Arch::X86_64 || !x86_bin.exists() {
        return Ok(r);
    }
    let (x86_text, x86_status) = run_reference_as(Arch::X86_64, &x86_bin, p.args, p.pid)?;
    let linux = as_aarch64(&normalise(&x86_text));
    let diff = match compare(&linux, &r.output) {
        Err(e) => e,
        Ok(()) if x86_status == status => return Ok(r),
        Ok(()) => format!("status {status}, x86_64 Linux {x86_status}"),
    };
    match QEMU_USER_GAPS.iter().find(|(name, _)| *name == p.name) {
        Some((_, why)) => {
            r.note = Some(format!(
                "qemu-aarch64 differs from x86_64 Linux ({diff}); known qemu-user gap: {why}; \
                 reference = the x86_64 Linux output with AT_PLATFORM=aarch64"
            ));
            r.output = linux;
            r.status = x86_status;
        }
        None => {
            r.note = Some(format!(
                "warning: qemu-aarch64 differs from x86_64 Linux ({diff}); keeping qemu-aarch64's"
            ))
        }
    }
    Ok(r)
}

/// One program's recorded reference.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Program name.
    pub name: String,
    /// Its reference status.
    pub status: i32,
    /// Wall time of the reference run(s).
    pub seconds: f64,
    /// See [`Reference::note`].
    pub note: Option<String>,
}

/// Builds everything for `arch` (and, for aarch64, the x86_64 programs its
/// references are checked against), gets each of [`PROGRAMS`]' [`reference`], and
/// writes `<name>.expected` (normalised output) and `<name>.status` beside the
/// binaries.
pub fn record_expected(root: &Path, arch: Arch) -> Result<Vec<Recorded>, String> {
    let root = &std::path::absolute(root).map_err(|e| format!("{}: {e}", root.display()))?;
    if arch != Arch::X86_64 {
        build_all(root, Arch::X86_64)?;
    }
    build_all(root, arch)?;
    let out = out_dir(root, arch)?;
    let mut results = Vec::new();
    for p in PROGRAMS {
        let start = Instant::now();
        let r = reference(root, arch, p)?;
        let write = |ext: &str, data: String| {
            let path = out.join(format!("{}.{ext}", p.name));
            fs::write(&path, data).map_err(|e| format!("write {}: {e}", path.display()))
        };
        write("expected", r.output)?;
        write("status", format!("{}\n", r.status))?;
        results.push(Recorded {
            name: p.name.to_string(),
            status: r.status,
            seconds: start.elapsed().as_secs_f64(),
            note: r.note,
        });
    }
    Ok(results)
}

/// The recorded reference of `name` for `arch` (see [`record_expected`]).
pub fn recorded(root: &Path, arch: Arch, name: &str) -> Result<(String, i32), String> {
    let dir = root.join("target").join(arch.out_subdir());
    let read = |ext: &str| {
        let path = dir.join(format!("{name}.{ext}"));
        fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))
    };
    let status = read("status")?;
    let status = status
        .trim()
        .parse()
        .map_err(|e| format!("{name}.status: {e}"))?;
    Ok((read("expected")?, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_masks_figures_and_line_ends() {
        let raw = "bench getpid iters=10 ns_per_op=387\r\nchild pid=1234 tid=5 ok  \nlast";
        let want = "bench getpid iters=10 ns_per_op=N\nchild pid=N tid=N ok\nlast\n";
        assert_eq!(normalise(raw), want);
        assert_eq!(normalise(""), "");
        assert_eq!(normalise("ns_per_op=x"), "ns_per_op=x\n");
    }

    #[test]
    fn compare_names_the_first_difference() {
        assert!(compare("a\nb\n", "a\r\nb").is_ok());
        let e = compare("a\nb\nc\n", "a\nX\nc\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = compare("a\nb\n", "a\n").unwrap_err();
        assert!(e.contains("<end of output>"), "{e}");
    }

    #[test]
    fn status_of_a_killed_process_is_128_plus_signal() {
        let sh = Path::new("/bin/sh");
        if !sh.exists() {
            return;
        }
        let (out, st) = run_native(sh, &["-c", "echo out; echo err >&2; exit 7"]).unwrap();
        assert_eq!((out.as_str(), st), ("out\nerr\n", 7));
        let (_, st) = run_native(sh, &["-c", "kill -9 $$"]).unwrap();
        assert_eq!(st, 128 + 9);
        let (env, _) = run_native(Path::new("/usr/bin/env"), &[]).unwrap();
        assert_eq!(env, "HOME=/\nPATH=/bin\nTERM=dumb\n");
    }

    #[test]
    fn every_program_has_a_source() {
        let Some(manifest) = option_env!("CARGO_MANIFEST_DIR") else {
            return;
        };
        let root = Path::new(manifest).join("..");
        for p in PROGRAMS {
            let c = root.join("user/c").join(format!("{}.c", p.name));
            let rs = root
                .join("user/rust/src/bin")
                .join(format!("{}.rs", p.name));
            assert!(c.exists() || rs.exists(), "no source for {}", p.name);
        }
    }
}

#[cfg(test)]
mod arch_tests {
    use super::*;

    #[test]
    fn qemu_user_notes_are_not_output() {
        let raw = "about to touch address 0\nqemu: uncaught target signal 11 (Segmentation fault) - core dumped\nafter\n";
        assert_eq!(drop_runner_notes(raw), "about to touch address 0\nafter\n");
    }

    #[test]
    fn x86_64_reference_as_aarch64() {
        assert_eq!(
            as_aarch64("AT_PAGESZ=4096\nAT_PLATFORM=x86_64\n"),
            "AT_PAGESZ=4096\nAT_PLATFORM=aarch64\n"
        );
        assert!(QEMU_USER_GAPS.iter().all(|(n, _)| program(n).is_some()));
    }

    /// With the aarch64 programs built (`target/user-aarch64`), each is a static
    /// aarch64 ELF and its qemu-aarch64 run sees exactly TEST_ENV, in order.
    #[test]
    fn aarch64_binaries_and_environment() {
        let Some(manifest) = option_env!("CARGO_MANIFEST_DIR") else {
            return;
        };
        let dir = Path::new(manifest).join("../target/user-aarch64");
        for p in PROGRAMS {
            let Ok(elf) = fs::read(dir.join(p.name)) else {
                return; // not built
            };
            assert_eq!(&elf[..4], b"\x7fELF", "{}", p.name);
            assert_eq!(
                u16::from_le_bytes([elf[18], elf[19]]),
                183,
                "{} is not aarch64",
                p.name
            );
        }
        let hello = dir.join("hello");
        if Command::new("qemu-aarch64")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let (out, status) = run_reference(Arch::Aarch64, &hello, &["x"]).unwrap();
        assert_eq!(status, 0);
        let env: Vec<&str> = out.lines().filter(|l| l.starts_with("envp[")).collect();
        assert_eq!(
            env,
            ["envp[0]=HOME=/", "envp[1]=PATH=/bin", "envp[2]=TERM=dumb"]
        );
    }
}

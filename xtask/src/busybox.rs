//! Debian's static busybox as the guest's root file system (issue 12), and the
//! busybox tests of `cargo xtask test`.
//!
//! * [`ensure`]: the busybox of one architecture, cached as
//!   `target/busybox/<arch>/bin/busybox` with its Debian version in `VERSION`. When
//!   the host has `busybox-static` installed, that version is the one used on both
//!   architectures (x86_64: the host's `/bin/busybox` is copied; aarch64: `apt-get
//!   download busybox-static:arm64=VERSION`), so the host's busybox is the reference
//!   of both. Otherwise `apt-get download` fetches the archive's candidate; the
//!   `.deb` is unpacked with `dpkg-deb -x`. `setup::ensure(Needs::Aarch64)` has made
//!   `arm64` a dpkg architecture already (for `musl-dev:arm64`).
//! * [`root_tree`]: the root file system the guest's tmpfs is filled with: `/bin/busybox`,
//!   a symlink for every applet at the path `busybox --list-full` names (`/bin/ls ->
//!   busybox`, `/usr/bin/awk -> /bin/busybox`), the directories `/dev`, `/proc`, `/sys`,
//!   `/root`, `/tmp` (1777), `/etc` with `passwd` and `group`. [`shell_env`] is the
//!   environment a shell gets there.
//! * [`tests`]: every line of `xtask/busybox-tests.txt` (format in its header), run
//!   in one boot per architecture by a generated script `/bbtests.sh` (each line in a
//!   subshell in its own scratch directory, followed by a separator line with its
//!   status), compared with the same script run by the host's busybox chrooted into
//!   the same tree ([`reference`]: fresh mount and pid namespaces, tmpfs `/tmp`,
//!   `proc`, a `/dev` with the guest's device names). Test names `busybox/NN` and
//!   `aarch64/busybox/NN`.

use crate::init::Kernel;
use crate::initrd::Node;
use crate::user::Arch;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Debian package.
const PACKAGE: &str = "busybox-static";
/// The test lines.
const TEST_LINES: &str = include_str!("../busybox-tests.txt");
/// Where the generated test script lives in the guest's root (and the host's copy).
const SCRIPT: &str = "bbtests.sh";
/// Bound on the guest run of all the lines (aarch64 TCG is the slower); a run
/// killed by it still gives the results of the lines before the one that hung.
const GUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on the host's reference run, in seconds (`timeout`).
const HOST_TIMEOUT_SECS: &str = "300";
/// `PATH` in the guest.
pub const PATH: &str = "/bin:/sbin:/usr/bin:/usr/sbin";
/// The prompt of the interactive shell (ash expands `\w` and `\$`): `~ # `.
pub const PS1: &str = "\\w \\$ ";

/// Output and status of each test case, by its number (from 1).
type Results = BTreeMap<usize, (String, i32)>;

/// A static busybox of one architecture.
#[derive(Debug, Clone)]
pub struct Busybox {
    /// Its architecture.
    pub arch: Arch,
    /// The binary.
    pub path: PathBuf,
    /// Its Debian version.
    pub version: String,
}

fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::Aarch64 => "aarch64",
    }
}

/// `target/busybox/<arch>`.
fn cache_dir(arch: Arch) -> PathBuf {
    PathBuf::from(crate::target_dir())
        .join("busybox")
        .join(arch_name(arch))
}

/// The version of `busybox-static` installed on the host, if it is.
fn host_version() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}|${Version}", PACKAGE])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (status, version) = text.split_once('|')?;
    (status.starts_with("ii") && !version.is_empty()).then(|| version.to_string())
}

/// The busybox of `arch` (see the module doc), fetched into `target/busybox/` when it
/// is not there or not the host's version.
pub fn ensure(arch: Arch) -> Result<Busybox, String> {
    let dir = cache_dir(arch);
    let path = dir.join("bin").join("busybox");
    let want = host_version();
    let cached = std::fs::read_to_string(dir.join("VERSION"))
        .ok()
        .map(|v| v.trim().to_string());
    if let Some(version) = cached.filter(|v| path.is_file() && want.as_ref().is_none_or(|w| w == v))
    {
        return Ok(Busybox {
            arch,
            path,
            version,
        });
    }
    let version = fetch(arch, &dir, want.as_deref())?;
    std::fs::write(dir.join("VERSION"), format!("{version}\n"))
        .map_err(|e| format!("write {}/VERSION: {e}", dir.display()))?;
    Ok(Busybox {
        arch,
        path,
        version,
    })
}

/// Fills `dir` with `bin/busybox` of `arch` (version `want` if given) and returns
/// its version.
fn fetch(arch: Arch, dir: &Path, want: Option<&str>) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("bin")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let host = Path::new("/bin/busybox");
    if let (Arch::X86_64, Some(v)) = (arch, want) {
        if host.is_file() {
            std::fs::copy(host, dir.join("bin").join("busybox"))
                .map_err(|e| format!("copy {}: {e}", host.display()))?;
            return Ok(v.to_string());
        }
    }
    let package = match arch {
        Arch::X86_64 => PACKAGE.to_string(),
        Arch::Aarch64 => format!("{PACKAGE}:arm64"),
    };
    eprintln!(
        "xtask: fetching {package}{} into {}",
        want.map(|v| format!("={v}")).unwrap_or_default(),
        dir.display()
    );
    let pinned = want.map(|v| format!("{package}={v}"));
    let deb = pinned
        .iter()
        .chain(std::iter::once(&package))
        .find_map(|spec| download(dir, spec).ok())
        .or_else(|| {
            crate::setup::apt_get(&["update"]);
            download(dir, &package).ok()
        })
        .ok_or_else(|| {
            format!(
                "cannot fetch {package}: apt-get download failed (no network, or arm64 not a \
                 dpkg architecture?); by hand: {}cd {} && apt-get download {package} && \
                 dpkg-deb -x {PACKAGE}_*.deb .",
                if arch == Arch::Aarch64 {
                    "dpkg --add-architecture arm64 && apt-get update && "
                } else {
                    ""
                },
                dir.display()
            )
        })?;
    let deb_arg = deb.display().to_string();
    tool(dir, "dpkg-deb", &["-x", &deb_arg, "."])?;
    let version = tool(dir, "dpkg-deb", &["-f", &deb_arg, "Version"])?;
    let _ = std::fs::remove_file(&deb);
    if !dir.join("bin").join("busybox").is_file() {
        return Err(format!("{deb_arg} holds no bin/busybox"));
    }
    Ok(version.trim().to_string())
}

/// `apt-get download spec` in `dir`; the `.deb` it wrote.
fn download(dir: &Path, spec: &str) -> Result<PathBuf, String> {
    tool(dir, "apt-get", &["download", spec])?;
    let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {spec} wrote no .deb"))
}

/// Runs `program args` in `dir`; its stdout, or why it failed.
fn tool(dir: &Path, program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The applets' paths (`usr/bin/awk`, no leading `/`) from `busybox --list-full`
/// (run under `qemu-aarch64` for aarch64).
fn applets(bb: &Busybox) -> Result<Vec<String>, String> {
    let mut cmd = match bb.arch {
        Arch::X86_64 => Command::new(&bb.path),
        Arch::Aarch64 => {
            let mut c = Command::new("qemu-aarch64");
            c.arg(&bb.path);
            c
        }
    };
    let out = cmd
        .arg("--list-full")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} --list-full: {e}", bb.path.display()))?;
    if !out.status.success() {
        return Err(format!("{} --list-full failed", bb.path.display()));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_string())
        .collect())
}

/// Directories of the root tree, with their permission bits.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("sbin", 0o755),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("dev", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("root", 0o700),
    ("tmp", 0o1777),
    ("etc", 0o755),
];

/// Small files of `/etc`.
const ETC: &[(&str, &str)] = &[
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    ("etc/group", "root:x:0:\n"),
];

/// The root file system of `bb` (see the module doc), directories first.
pub fn root_tree(bb: &Busybox) -> Result<Vec<Node>, String> {
    let data = std::fs::read(&bb.path).map_err(|e| format!("{}: {e}", bb.path.display()))?;
    Ok(tree(data, &applets(bb)?))
}

/// The root tree with busybox `data` and symlinks at `applets` (paths from
/// `--list-full`; one without a directory, such as `linuxrc`, is left out).
fn tree(data: Vec<u8>, applets: &[String]) -> Vec<Node> {
    let dir = |name: &str, perm| Node::Dir {
        name: name.into(),
        perm,
    };
    let mut nodes: Vec<Node> = DIRS.iter().map(|&(n, p)| dir(n, p)).collect();
    for a in applets {
        // Every ancestor directory, outermost first.
        let ends = a.match_indices('/').map(|(i, _)| i);
        for parent in ends.map(|i| &a[..i]) {
            if !nodes.iter().any(|n| n.name() == parent) {
                nodes.push(dir(parent, 0o755));
            }
        }
    }
    nodes.push(Node::File {
        name: "bin/busybox".into(),
        perm: 0o755,
        data,
    });
    for (name, text) in ETC {
        nodes.push(Node::File {
            name: name.to_string(),
            perm: 0o644,
            data: text.as_bytes().to_vec(),
        });
    }
    for a in applets {
        let target = match a.strip_prefix("bin/") {
            _ if a == "bin/busybox" || !a.contains('/') => continue,
            Some(name) if !name.contains('/') => "busybox",
            _ => "/bin/busybox",
        };
        nodes.push(Node::Symlink {
            name: a.clone(),
            target: target.into(),
        });
    }
    nodes
}

/// The environment of a shell in the guest (`term`: the value of `TERM`).
pub fn shell_env(term: &str) -> Vec<String> {
    [
        "HOME=/root".to_string(),
        format!("PATH={PATH}"),
        format!("TERM={term}"),
        "SHELL=/bin/sh".into(),
        "USER=root".into(),
        format!("PS1={PS1}"),
    ]
    .into()
}

/// One test line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The shell text (several lines for a here-document).
    pub line: String,
    /// Why its result is known to differ from the host's, if it is.
    pub known: Option<String>,
}

/// The tests of `text` (the format of `busybox-tests.txt`).
fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for l in text.lines() {
        if let Some(more) = l
            .strip_prefix("> ")
            .or(l.strip_prefix(">").filter(|m| m.is_empty()))
        {
            if let Some(last) = cases.last_mut() {
                last.line.push('\n');
                last.line.push_str(more);
            }
            continue;
        }
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let (known, line) = match l.strip_prefix("[known: ").and_then(|r| r.split_once("] ")) {
            Some((why, line)) => (Some(why.to_string()), line),
            None => (None, l),
        };
        cases.push(Case {
            line: line.to_string(),
            known,
        });
    }
    cases
}

/// The cases of `busybox-tests.txt`.
pub fn cases() -> Vec<Case> {
    parse_cases(TEST_LINES)
}

/// The script that runs `cases` one after the other: case N in a subshell in
/// `/tmp/bbtest-N`, stdin `/dev/null`, stderr into stdout, then `\n@@end N STATUS`.
fn script(cases: &[Case]) -> String {
    let mut s = String::from("# Generated by cargo xtask (xtask/src/busybox.rs).\n");
    for (i, c) in cases.iter().enumerate() {
        let n = i + 1;
        s.push_str(&format!(
            "cd / && mkdir /tmp/bbtest-{n} && cd /tmp/bbtest-{n} && (\n{}\n) </dev/null 2>&1\n\
             s=$?; cd /; printf '\\n@@end %d %d\\n' {n} \"$s\"\n",
            c.line
        ));
    }
    s
}

/// Output and status of each case (by number) in the output of [`script`].
fn parse_results(output: &str) -> Results {
    let mut results = BTreeMap::new();
    let mut lines: Vec<&str> = Vec::new();
    for l in output.lines() {
        let end = l.strip_prefix("@@end ").and_then(|r| {
            let (n, s) = r.trim().split_once(' ')?;
            Some((n.parse::<usize>().ok()?, s.parse::<i32>().ok()?))
        });
        match end {
            Some((n, status)) => {
                results.insert(n, (lines.join("\n"), status));
                lines.clear();
            }
            None => lines.push(l),
        }
    }
    results
}

/// Writes `nodes` (and the script) below `root` on the host.
fn materialise(root: &Path, nodes: &[Node]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_dir_all(root);
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(root).map_err(|e| err(root, e))?;
    for n in nodes {
        let path = root.join(n.name());
        let perm = match n {
            Node::Dir { perm, .. } => {
                std::fs::create_dir_all(&path).map_err(|e| err(&path, e))?;
                *perm
            }
            Node::File { perm, data, .. } => {
                std::fs::write(&path, data).map_err(|e| err(&path, e))?;
                *perm
            }
            Node::Symlink { target, .. } => {
                std::os::unix::fs::symlink(target, &path).map_err(|e| err(&path, e))?;
                continue;
            }
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm))
            .map_err(|e| err(&path, e))?;
    }
    Ok(())
}

/// Device names of the guest's devfs (`/dev/shm` is a directory there).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The host side of [`reference`]: run in new mount and pid namespaces by `sh`.
fn chroot_script(root: &Path, env: &[String]) -> String {
    let r = root.display();
    let binds: String = DEVICES
        .iter()
        .map(|d| format!(": > $R/dev/{d}; mount --bind /dev/{d} $R/dev/{d}\n"))
        .collect();
    let env: Vec<String> = env.iter().map(|e| format!("'{e}'")).collect();
    format!(
        "set -e\nR='{r}'\n\
         mount -t tmpfs -o mode=1777 tmpfs $R/tmp\n\
         mount -t proc proc $R/proc\n\
         mount -t tmpfs -o mode=755 tmpfs $R/dev\n\
         {binds}: > $R/dev/console; mount --bind /dev/null $R/dev/console\n\
         mkdir -m 1777 $R/dev/shm\n\
         umask 022\ncd /\n\
         exec chroot $R /usr/bin/env -i {} /bin/sh /{SCRIPT} </dev/null\n",
        env.join(" ")
    )
}

/// The host's results of `cases`: the script run by `bb` (x86_64) chrooted into
/// `root_tree(bb)` below `target/busybox/ref-root`, as pid 1 of a new pid namespace
/// (as the guest's shell is pid 1), in a new mount namespace (needs root, or else
/// user namespaces).
pub fn reference(bb: &Busybox, cases: &[Case]) -> Result<Results, String> {
    let mut nodes = root_tree(bb)?;
    nodes.push(script_node(cases));
    let root = PathBuf::from(crate::target_dir())
        .join("busybox")
        .join("ref-root");
    materialise(&root, &nodes)?;
    let mut cmd = Command::new("timeout");
    cmd.args([
        HOST_TIMEOUT_SECS,
        "unshare",
        "-m",
        "-p",
        "-f",
        "--propagation",
        "private",
    ]);
    if !crate::setup::is_root() {
        cmd.arg("-r");
    }
    crate::user::default_signals(&mut cmd);
    let out = cmd
        .args(["sh", "-c", &chroot_script(&root, &shell_env("vt100"))])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    let results = parse_results(&String::from_utf8_lossy(&out.stdout));
    if results.is_empty() {
        return Err(format!(
            "the host reference run gave no results ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(results)
}

/// `/bbtests.sh`.
fn script_node(cases: &[Case]) -> Node {
    Node::File {
        name: SCRIPT.into(),
        perm: 0o755,
        data: script(cases).into_bytes(),
    }
}

/// The guest's results of `cases` under `kernel` (one boot), and how it ended.
fn guest(kernel: &Kernel, bb: &Busybox, cases: &[Case]) -> Result<(Results, String), String> {
    let mut nodes = root_tree(bb)?;
    nodes.push(script_node(cases));
    let image = PathBuf::from(crate::target_dir())
        .join(format!("initrd-busybox-{}.cpio", arch_name(bb.arch)));
    let argv = ["/bin/sh".to_string(), format!("/{SCRIPT}")];
    crate::initrd::write_tree(&image, nodes, &argv, &shell_env("vt100"))?;
    let run = kernel.boot_init(&image, None, "quiet", GUEST_TIMEOUT, false)?;
    let ending = match run.status {
        Some(s) => format!("the shell ended with status {s}"),
        None => format!("no exit status ({})", run.ending),
    };
    let results = parse_results(&run.output);
    if results.is_empty() {
        let tail: Vec<&str> = run.output.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{ending}; no results; output:\n{}",
            tail.join("\n")
        ));
    }
    Ok((results, ending))
}

/// `diff -u` of the host's and the guest's result of one case.
fn diff(expected: &(String, i32), got: &(String, i32)) -> String {
    let dir = std::env::temp_dir().join(format!("xtask-bbdiff-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let text = |r: &(String, i32)| format!("{}\n[status {}]\n", r.0, r.1);
    let (a, b) = (dir.join("host"), dir.join("guest"));
    let written = std::fs::write(&a, text(expected)).and(std::fs::write(&b, text(got)));
    let out = written.ok().and_then(|_| {
        Command::new("diff")
            .args(["-u", "--label", "host", "--label", "guest"])
            .args([&a, &b])
            .output()
            .ok()
    });
    let _ = std::fs::remove_dir_all(&dir);
    match out {
        Some(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        None => format!("host:\n{}guest:\n{}", text(expected), text(got)),
    }
}

/// Indents `text` for the report.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// The first line of a case, shortened, for its report line.
fn summary(line: &str) -> String {
    let first = line.lines().next().unwrap_or("");
    let short: String = first.chars().take(70).collect();
    if short.len() < line.len() {
        format!("{short}...")
    } else {
        short
    }
}

/// Every busybox line under `kernel` (one boot) against the host's busybox; prints
/// `test [aarch64/]busybox/NN ... ok|FAILED` for each. Returns (passed, failed);
/// known differences that still differ are not counted, and a guest run that gave
/// no result at all counts as one failure.
pub fn tests(kernel: &Kernel) -> (u32, u32) {
    let label = format!("{}busybox", kernel.label());
    let start = Instant::now();
    let cases = cases();
    let prepared = ensure(Arch::X86_64).and_then(|host_bb| {
        let bb = ensure(kernel.arch())?;
        if bb.version != host_bb.version {
            println!(
                "  note: {label} runs busybox {} against the host's {}",
                bb.version, host_bb.version
            );
        }
        Ok((reference(&host_bb, &cases)?, bb))
    });
    let (expected, bb) = match prepared {
        Ok(x) => x,
        Err(e) => {
            println!("test {label} ... FAILED: cannot prepare: {e}");
            return (0, 1);
        }
    };
    let (got, ending) = match guest(kernel, &bb, &cases) {
        Ok(x) => x,
        Err(e) => {
            // No line ran to its end: one failure, not one per line.
            println!("test {label} ... FAILED: {e}");
            return (0, 1);
        }
    };
    let (mut passed, mut failed, mut known) = (0, 0, 0);
    for (i, case) in cases.iter().enumerate() {
        let n = i + 1;
        let name = format!("{label}/{n:02}");
        let verdict = match (expected.get(&n), got.get(&n)) {
            (None, _) => Err("no host result (is the line valid shell?)".to_string()),
            (Some(_), None) => Err(format!("no guest result ({ending})")),
            (Some(e), Some(g)) if e == g => Ok(()),
            (Some(e), Some(g)) => Err(format!("differs:\n{}", indent(&diff(e, g)))),
        };
        let what = summary(&case.line);
        match (verdict, &case.known) {
            (Ok(()), _) => {
                println!("test {name} ... ok  [{what}]");
                passed += 1;
            }
            (Err(e), Some(why)) => {
                println!("test {name} ... known difference, not counted ({why})  [{what}]: {e}");
                known += 1;
            }
            (Err(e), None) => {
                println!("test {name} ... FAILED  [{what}]: {e}");
                failed += 1;
            }
        }
    }
    println!(
        "{label}: {passed} passed, {failed} failed, {known} known differences, one boot, {:.0} s; {ending}",
        start.elapsed().as_secs_f64()
    );
    (passed, failed)
}

/// `cargo xtask busybox-tests [--arch aarch64] [--host-only]`: only the busybox lines
/// ([`tests`]), or with `--host-only` each line's reference result (to write lines).
pub fn command(args: &[String]) -> Result<std::process::ExitCode, String> {
    use std::process::ExitCode;
    let has = |a: &str| args.iter().any(|x| x == a);
    if has("--host-only") {
        let cases = cases();
        let results = reference(&ensure(Arch::X86_64)?, &cases)?;
        for (i, c) in cases.iter().enumerate() {
            println!("== {:02}: {}", i + 1, c.line);
            match results.get(&(i + 1)) {
                Some((out, status)) => println!("{out}\n[status {status}]"),
                None => println!("(no result)"),
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let base = crate::qemu::QemuConfig::default();
    let (passed, failed) = if has("--arch") && has("aarch64") {
        crate::setup::ensure(crate::setup::Needs::Aarch64)?;
        let image = crate::aarch64::build(&crate::workspace_root())?;
        tests(&Kernel::Aarch64 { image: &image })
    } else {
        crate::setup::ensure(crate::setup::Needs::X86_64)?;
        let image = crate::build_kernel()?;
        tests(&Kernel::X86_64 {
            image: &image,
            base: &base,
        })
    };
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_continue_with_here_documents_and_carry_known_marks() {
        let text = "# comment\n\necho a\ncat <<EOF\n> x\n>\n> EOF\n[known: why not] ls\n";
        let c = parse_cases(text);
        assert_eq!(c.len(), 3);
        assert_eq!(c[1].line, "cat <<EOF\nx\n\nEOF");
        assert_eq!(c[2].known.as_deref(), Some("why not"));
        assert_eq!(c[2].line, "ls");
        assert!(cases().len() >= 60);
    }

    #[test]
    fn results_keep_missing_newlines_and_statuses() {
        let out = "abc\n\n@@end 1 0\nno newline\n@@end 2 3\n\n@@end 3 0\n";
        let r = parse_results(out);
        assert_eq!(r[&1], ("abc\n".to_string(), 0));
        assert_eq!(r[&2], ("no newline".to_string(), 3));
        assert_eq!(r[&3], (String::new(), 0));
    }

    #[test]
    fn the_tree_links_applets_where_list_full_says() {
        let applets: Vec<String> = [
            "bin/busybox",
            "bin/ls",
            "usr/bin/awk",
            "linuxrc",
            "usr/local/bin/x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let t = tree(b"ELF".to_vec(), &applets);
        let find = |name: &str| t.iter().find(|n| n.name() == name).cloned();
        let link = |name: &str, target: &str| Node::Symlink {
            name: name.into(),
            target: target.into(),
        };
        assert_eq!(find("bin/ls"), Some(link("bin/ls", "busybox")));
        assert_eq!(
            find("usr/bin/awk"),
            Some(link("usr/bin/awk", "/bin/busybox"))
        );
        assert!(matches!(
            find("bin/busybox"),
            Some(Node::File { perm: 0o755, .. })
        ));
        assert!(matches!(find("tmp"), Some(Node::Dir { perm: 0o1777, .. })));
        assert!(find("linuxrc").is_none());
        let pos = |name: &str| t.iter().position(|n| n.name() == name).unwrap();
        assert!(pos("usr/local") < pos("usr/local/bin"));
        assert!(pos("usr/local/bin") < pos("usr/local/bin/x"));
        assert!(find("etc/passwd").is_some() && find("etc/group").is_some());
    }
}

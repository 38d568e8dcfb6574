//! The Linux reference of the in-QEMU benchmarks (issue 6, items 2-3): Debian's
//! kernel (`linux-image-amd64`) booted in the same QEMU as this kernel, with a
//! minimal initramfs that xtask builds.
//!
//! The initramfs is a plain cpio "newc" archive (written by [`crate::initrd::cpio`]):
//! a static `/busybox` (package `busybox-static`), the programs to run at the root
//! (e.g. `/bench`), and an `/init` shell script that runs them in order and then
//! `busybox poweroff -f`, which ends QEMU. `/dev/console` comes from the kernel's
//! built-in initramfs, so the programs' output reaches the serial port (`-append
//! console=ttyS0`).
//!
//! Everything here is plain `std`. When the kernel or busybox is missing, [`ensure`]
//! installs the packages with apt-get if we are root, and otherwise says why, so
//! that the caller can still report this kernel's own figures.
//!
//! The aarch64 reference (issue 14, for the instruction-count table) is Debian's
//! arm64 kernel and busybox, fetched with `apt-get download` and unpacked with
//! `dpkg-deb -x` under `target/bench/linux-aarch64/` (nothing arm64 is installed
//! on the host): [`ensure_aarch64`]. Its `/boot/vmlinuz-*` is a plain arm64
//! `Image` that boots on QEMU `virt` with the same initramfs as on x86_64 (an
//! arm64 busybox in it) and `console=ttyAMA0` ([`aarch64_icount_append`]).

use crate::initrd::{self, Member};
use std::path::{Path, PathBuf};

/// Debian packages that provide the reference (`cpio` only for inspecting archives).
pub const PACKAGES: [&str; 3] = ["linux-image-amd64", "busybox-static", "cpio"];

/// The Linux command line: serial console, no boot chatter, reboot (which
/// `-no-reboot` turns into QEMU's exit) at once on a panic. [`append`] adds the TSC
/// options.
pub const APPEND: &str = "console=ttyS0 quiet panic=-1";

/// [`APPEND`] plus, when the host's TSC is invariant, `tsc_early_khz=<host TSC kHz>
/// tsc=reliable`.
///
/// Why: `-M microvm` has no HPET or ACPI PM timer, so Linux can calibrate the TSC only
/// against the PIT, and under TCG on a loaded host that fast calibration often fails
/// ("tsc: Unable to calibrate against PIT ... could not calculate TSC khz"); Linux
/// then hangs right after "Probing EDD", or boots with the TSC marked unstable and
/// `clock_gettime` on jiffies (seen on these machines). QEMU's guest TSC runs at the
/// host's TSC rate under TCG and KVM alike, so the host's figure is the right one;
/// `tsc=reliable` keeps the clocksource watchdog (on jiffies, which lose ticks under
/// TCG) from throwing the TSC out later. This gives Linux the clock a hypervisor
/// would normally give it; the workloads themselves are unchanged.
pub fn append() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    match host_tsc_khz(&cpuinfo) {
        Some(khz) => format!("{APPEND} tsc_early_khz={khz} tsc=reliable"),
        None => APPEND.into(),
    }
}

/// The host TSC rate in kHz from `/proc/cpuinfo` ("cpu MHz" of the first CPU), if
/// the flags say the TSC is invariant (`constant_tsc` and `nonstop_tsc`).
fn host_tsc_khz(cpuinfo: &str) -> Option<u64> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let flags = field("flags")?;
    let invariant = ["constant_tsc", "nonstop_tsc"]
        .iter()
        .all(|f| flags.split_whitespace().any(|x| x == *f));
    let mhz: f64 = field("cpu MHz")?.parse().ok()?;
    (invariant && mhz > 0.0).then(|| (mhz * 1000.0).round() as u64)
}

/// Linux's defences that this kernel lacks, turned off for the instruction counts so
/// that neither kernel pays for what the other does not do: side-channel mitigations
/// (`mitigations=off`, issue 14), address-space randomisation of the kernel and of
/// user mappings, the random kernel-stack offset added on every system call, and
/// zeroing every allocation. Without the randomisation Linux's counts also repeat
/// within 0.1 % from run to run (with it they moved by up to 8 %).
pub const DEFENCES_OFF: &str =
    "mitigations=off nokaslr norandmaps randomize_kstack_offset=off init_on_alloc=0";

/// The x86_64 command line under `-icount shift=0,sleep=off` (see `icount.rs`):
/// [`APPEND`], [`DEFENCES_OFF`], and the TSC rate given as 1 GHz: under icount with
/// shift 0 QEMU's TSC counts one tick per guest instruction, i.e. per nanosecond of
/// guest time, whatever the host's rate (the host figure of [`append`] would be
/// wrong there).
pub fn icount_append() -> String {
    format!("{APPEND} {DEFENCES_OFF} tsc_early_khz=1000000 tsc=reliable")
}

/// The aarch64 command line under icount: PL011 console, [`DEFENCES_OFF`].
pub fn aarch64_icount_append() -> String {
    format!("console=ttyAMA0 quiet panic=-1 {DEFENCES_OFF}")
}

/// The Debian packages of the aarch64 reference: the kernel metapackage (resolved to
/// the image package it depends on) and busybox.
pub const AARCH64_PACKAGES: [&str; 2] = ["linux-image-arm64:arm64", "busybox-static:arm64"];

/// The aarch64 reference unpacked under `dir` (see [`ensure_aarch64`]), if there.
pub fn find_aarch64(dir: &Path) -> Option<Reference> {
    let root = dir.join("root");
    let kernel = newest_vmlinuz(&root.join("boot"))?;
    let busybox = root.join("bin").join("busybox");
    busybox.is_file().then_some(Reference { kernel, busybox })
}

/// [`find_aarch64`], first downloading and unpacking [`AARCH64_PACKAGES`] into `dir`
/// when they are not there (needs root for apt-get and the arm64 architecture in
/// dpkg; `setup::ensure(Needs::Aarch64)` adds it). `Err` says why there is none.
pub fn ensure_aarch64(dir: &Path) -> Result<Reference, String> {
    if let Some(r) = find_aarch64(dir) {
        return Ok(r);
    }
    if !crate::setup::is_root() {
        return Err(format!(
            "no aarch64 Linux reference: not unpacked in {} and we are not root to \
             apt-get download {}",
            dir.display(),
            AARCH64_PACKAGES.join(" ")
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let image = image_package(AARCH64_PACKAGES[0]).or_else(|| {
        crate::setup::apt_get(&["update"]);
        image_package(AARCH64_PACKAGES[0])
    });
    let image = image.ok_or_else(|| {
        format!(
            "no aarch64 Linux reference: apt-cache knows no image package behind {} \
             (arm64 not a dpkg architecture, or no network?)",
            AARCH64_PACKAGES[0]
        )
    })?;
    eprintln!("xtask: downloading the aarch64 Linux reference ({image} busybox-static:arm64)");
    run_tool(dir, "apt-get", &["download", &image, AARCH64_PACKAGES[1]])?;
    for deb in debs_in(dir) {
        let target = dir.join("root");
        run_tool(
            dir,
            "dpkg-deb",
            &[
                "-x",
                &deb.display().to_string(),
                &target.display().to_string(),
            ],
        )?;
    }
    find_aarch64(dir).ok_or_else(|| {
        format!(
            "no aarch64 Linux reference: {}/root has no boot/vmlinuz-* or bin/busybox \
             after unpacking",
            dir.display()
        )
    })
}

/// The package a kernel metapackage depends on (`linux-image-6.1.0-57-arm64:arm64`
/// for `linux-image-arm64:arm64`), from `apt-cache depends`.
fn image_package(meta: &str) -> Option<String> {
    let out = std::process::Command::new("apt-cache")
        .args(["depends", meta])
        .output()
        .ok()?;
    first_image_dependency(&String::from_utf8_lossy(&out.stdout))
}

/// The first `Depends: linux-image-...` of `apt-cache depends` output.
fn first_image_dependency(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let dep = l.trim().strip_prefix("Depends:")?.trim();
        dep.starts_with("linux-image-").then(|| dep.to_string())
    })
}

/// The `.deb` files of `dir`.
fn debs_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect()
}

/// Runs `program args` in `dir`; `Err` with its status and stderr when it fails.
fn run_tool(dir: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .current_dir(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "no aarch64 Linux reference: {program} {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Where the static busybox of `busybox-static` lives.
const BUSYBOX: &str = "/bin/busybox";

/// A bootable Linux reference.
#[derive(Debug, Clone)]
pub struct Reference {
    /// `/boot/vmlinuz-VERSION` (the newest there).
    pub kernel: PathBuf,
    /// A static busybox.
    pub busybox: PathBuf,
}

impl Reference {
    /// The kernel's version (the `vmlinuz-` suffix), e.g. `6.1.0-56-amd64`.
    pub fn version(&self) -> String {
        self.kernel
            .file_name()
            .map(|n| n.to_string_lossy())
            .and_then(|n| n.strip_prefix("vmlinuz-").map(String::from))
            .unwrap_or_else(|| self.kernel.display().to_string())
    }
}

/// The installed reference, if any: the newest `/boot/vmlinuz-*` and a static busybox.
pub fn find() -> Option<Reference> {
    let kernel = newest_vmlinuz(Path::new("/boot"))?;
    let busybox = PathBuf::from(BUSYBOX);
    is_static_elf(&busybox).then_some(Reference { kernel, busybox })
}

/// [`find`], installing [`PACKAGES`] with apt-get first when something is missing
/// and we are root. `Err` says why there is no reference (not root, no network...).
pub fn ensure() -> Result<Reference, String> {
    if let Some(r) = find() {
        return Ok(r);
    }
    if !crate::setup::is_root() {
        return Err(format!(
            "no Linux reference: /boot/vmlinuz-* or a static {BUSYBOX} is missing and \
             we are not root to install {}",
            PACKAGES.join(" ")
        ));
    }
    eprintln!(
        "xtask: installing the Linux reference ({})",
        PACKAGES.join(" ")
    );
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(PACKAGES);
    let installed = crate::setup::apt_get(&install)
        || (crate::setup::apt_get(&["update"]) && crate::setup::apt_get(&install));
    if !installed {
        return Err(format!(
            "no Linux reference: apt-get could not install {} (no network?)",
            PACKAGES.join(" ")
        ));
    }
    find().ok_or_else(|| {
        "no Linux reference: /boot/vmlinuz-* or a static busybox still missing after apt-get".into()
    })
}

/// The `vmlinuz-*` of `dir` with the highest version (numeric parts compared as numbers).
fn newest_vmlinuz(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .max_by_key(|p| version_key(&p.file_name().unwrap_or_default().to_string_lossy()))
}

/// `vmlinuz-6.1.0-56-amd64` -> `[6, 1, 0, 56]`: the numbers, in order.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Whether `path` is an x86_64 ELF without a program interpreter (statically linked).
fn is_static_elf(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    static_elf64(&data)
}

fn static_elf64(data: &[u8]) -> bool {
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        data.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // ELF magic, 64-bit, little endian, x86_64.
    if data.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) || u16_at(18) != Some(62) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..phnum as usize).all(|i| {
        let at = phoff as usize + i * phentsize as usize;
        data.get(at..at + 4)
            .is_some_and(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != PT_INTERP)
    })
}

/// The `/init` script: runs each command (argv as words; no quoting needed by the
/// callers) in turn, then powers the VM off.
pub fn init_script(commands: &[Vec<String>]) -> String {
    let mut s = String::from("#!/busybox sh\n");
    for argv in commands {
        s.push_str(&argv.join(" "));
        s.push('\n');
    }
    s.push_str("/busybox poweroff -f\n");
    s
}

/// Writes the initramfs to `out`: `/busybox`, `/init` (running `commands`) and the
/// `programs` at the root.
pub fn write_initramfs(
    out: &Path,
    reference: &Reference,
    programs: Vec<Member>,
    commands: &[Vec<String>],
) -> Result<(), String> {
    let busybox = std::fs::read(&reference.busybox)
        .map_err(|e| format!("read {}: {e}", reference.busybox.display()))?;
    let mut members = vec![
        Member {
            name: "busybox".into(),
            data: busybox,
        },
        Member {
            name: "init".into(),
            data: init_script(commands).into_bytes(),
        },
    ];
    members.extend(
        programs
            .into_iter()
            .filter(|m| m.name != "busybox" && m.name != "init"),
    );
    std::fs::write(out, initrd::cpio(&members)).map_err(|e| format!("write {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_runs_commands_then_powers_off() {
        let s = init_script(&[vec!["/bench".into(), "1".into()]]);
        assert_eq!(s, "#!/busybox sh\n/bench 1\n/busybox poweroff -f\n");
    }

    #[test]
    fn tsc_rate_from_cpuinfo() {
        let info =
            "processor\t: 0\ncpu MHz\t\t: 2445.404\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n";
        assert_eq!(host_tsc_khz(info), Some(2_445_404));
        assert_eq!(host_tsc_khz(&info.replace(" nonstop_tsc", "")), None);
        assert_eq!(host_tsc_khz("flags: constant_tsc nonstop_tsc\n"), None);
    }

    #[test]
    fn image_package_behind_the_metapackage() {
        let text = "linux-image-arm64:arm64\n  Depends: linux-image-6.1.0-57-arm64:arm64\n";
        assert_eq!(
            first_image_dependency(text).as_deref(),
            Some("linux-image-6.1.0-57-arm64:arm64")
        );
        assert_eq!(first_image_dependency("x\n  Depends: libc6\n"), None);
    }

    #[test]
    fn newest_version_wins() {
        assert!(version_key("vmlinuz-6.10.0-1-amd64") > version_key("vmlinuz-6.9.0-9-amd64"));
        assert!(version_key("vmlinuz-6.1.0-56-amd64") > version_key("vmlinuz-6.1.0-9-amd64"));
    }

    #[test]
    fn static_elf_check() {
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[18] = 62;
        elf[32] = 64; // phoff
        elf[54] = 56; // phentsize
        elf[56] = 1; // phnum
        elf[64] = 1; // PT_LOAD
        assert!(static_elf64(&elf));
        elf[64] = 3; // PT_INTERP
        assert!(!static_elf64(&elf));
        assert!(!static_elf64(b"#!/bin/sh\n"));
    }
}

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

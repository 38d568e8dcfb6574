//! Prerequisites of `run` and `test`: the rustup targets, QEMU, the C toolchains of the
//! user programs and `qemu-aarch64` (their aarch64 reference runs). What is missing is
//! installed: rustup targets with `rustup target add` (explicitly: `RUSTUP_AUTO_INSTALL=0`
//! keeps `rust-toolchain.toml` from doing it), Debian packages with apt-get when running
//! as root (one package at a time, without recommends, noninteractive; `arm64` added as
//! a foreign architecture for `musl-dev:arm64`). Otherwise [`ensure`] stops with a
//! message naming exactly what to install.

use std::path::Path;
use std::process::{Command, Stdio};

/// Which architectures a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `run` (x86_64): the x86_64 kernel and user programs.
    X86_64,
    /// `run --arch aarch64`: the aarch64 kernel and user programs.
    Aarch64,
    /// `test`: everything.
    Both,
}

impl Needs {
    fn x86_64(self) -> bool {
        self != Needs::Aarch64
    }
    fn aarch64(self) -> bool {
        self != Needs::X86_64
    }
}

/// One Debian package and how to tell it is there.
struct Package {
    /// apt-get's name for it.
    name: &'static str,
    /// A program that answers `--version`, or an absolute path that must exist.
    probe: &'static str,
    /// Needs `dpkg --add-architecture arm64`.
    arm64: bool,
}

const fn pkg(name: &'static str, probe: &'static str) -> Package {
    Package {
        name,
        probe,
        arm64: false,
    }
}

const X86_64_PACKAGES: &[Package] = &[
    pkg("qemu-system-x86", "qemu-system-x86_64"),
    pkg("musl-tools", "musl-gcc"),
];

const AARCH64_PACKAGES: &[Package] = &[
    pkg("qemu-system-arm", "qemu-system-aarch64"),
    pkg("qemu-user", "qemu-aarch64"),
    pkg("gcc-aarch64-linux-gnu", "aarch64-linux-gnu-gcc"),
    Package {
        name: "musl-dev:arm64",
        probe: crate::user::AARCH64_MUSL_SPECS,
        arm64: true,
    },
];

const X86_64_TARGETS: &[&str] = &["x86_64-unknown-none", "x86_64-unknown-linux-musl"];
const AARCH64_TARGETS: &[&str] = &["aarch64-unknown-none", "aarch64-unknown-linux-musl"];

/// Installs what `needs` requires and is missing, or says what to install.
pub fn ensure(needs: Needs) -> Result<(), String> {
    let mut targets = Vec::new();
    let mut packages = Vec::new();
    if needs.x86_64() {
        targets.extend_from_slice(X86_64_TARGETS);
        packages.extend(X86_64_PACKAGES);
    }
    if needs.aarch64() {
        targets.extend_from_slice(AARCH64_TARGETS);
        packages.extend(AARCH64_PACKAGES);
    }
    ensure_targets(&targets)?;
    ensure_packages(&packages)
}

fn have(probe: &str) -> bool {
    if probe.starts_with('/') {
        return Path::new(probe).exists();
    }
    Command::new(probe)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub(crate) fn apt_get(args: &[&str]) -> bool {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success())
}

/// The command that installs `missing` by hand.
fn install_hint(missing: &[&Package]) -> String {
    let names: Vec<&str> = missing.iter().map(|p| p.name).collect();
    let arch = if missing.iter().any(|p| p.arm64) {
        "dpkg --add-architecture arm64 && "
    } else {
        ""
    };
    format!(
        "{arch}apt-get update && for p in {}; do DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $p; done",
        names.join(" ")
    )
}

fn ensure_packages(packages: &[&Package]) -> Result<(), String> {
    let missing: Vec<&Package> = packages
        .iter()
        .copied()
        .filter(|p| !have(p.probe))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what = |ps: &[&Package]| {
        ps.iter()
            .map(|p| format!("{} (package {})", p.probe, p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !is_root() {
        return Err(format!(
            "missing: {}; install them as root with: {}",
            what(&missing),
            install_hint(&missing)
        ));
    }
    eprintln!("xtask: installing {}", what(&missing));
    if missing.iter().any(|p| p.arm64) && !has_foreign_arm64() {
        let ok = Command::new("dpkg")
            .args(["--add-architecture", "arm64"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "dpkg --add-architecture arm64 failed; install by hand: {}",
                install_hint(&missing)
            ));
        }
    }
    if !apt_get(&["update"]) {
        eprintln!("xtask: apt-get update failed; trying to install anyway");
    }
    for p in &missing {
        // One at a time, without recommends: the combination verified to resolve next
        // to the machine's backported qemu-utils.
        if !apt_get(&["install", "-y", "--no-install-recommends", p.name]) {
            eprintln!("xtask: apt-get install {} failed", p.name);
        }
    }
    let still: Vec<&Package> = missing.into_iter().filter(|p| !have(p.probe)).collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "apt-get could not install {}; install them with: {}",
            what(&still),
            install_hint(&still)
        ))
    }
}

fn has_foreign_arm64() -> bool {
    Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "arm64")
        })
}

/// Adds the rustup targets of `targets` that `rustup target list --installed` lacks.
fn ensure_targets(targets: &[&str]) -> Result<(), String> {
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output();
    let installed: Vec<String> = match listed {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect(),
        // No rustup: trust the toolchain (the build will say if a target is missing).
        _ => return Ok(()),
    };
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !installed.iter().any(|i| i == t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: rustup target add {}", missing.join(" "));
    let ok = Command::new("rustup")
        .args(["target", "add"])
        .args(&missing)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "rustup target add {} failed; run it by hand",
            missing.join(" ")
        ))
    }
}

/// Makes sure one rustup target is installed.
pub fn ensure_target(target: &str) -> Result<(), String> {
    ensure_targets(&[target])
}

/// What the x86_64 commands (`run`, `bench`, `soak`) need.
pub fn ensure_qemu() -> Result<(), String> {
    ensure(Needs::X86_64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_every_package_and_the_arm64_architecture() {
        let missing: Vec<&Package> = AARCH64_PACKAGES.iter().collect();
        let hint = install_hint(&missing);
        assert!(hint.starts_with("dpkg --add-architecture arm64 && apt-get update && "));
        for p in AARCH64_PACKAGES {
            assert!(hint.contains(p.name), "{hint}");
        }
        assert!(hint.contains("--no-install-recommends"));
        let x86: Vec<&Package> = X86_64_PACKAGES.iter().collect();
        assert!(!install_hint(&x86).contains("arm64"));
    }

    #[test]
    fn probes() {
        assert!(have("/"));
        assert!(!have("/no/such/file"));
        assert!(!have("no-such-program-xtask"));
    }
}

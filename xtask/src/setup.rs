//! Prerequisites: QEMU and the rustup targets, installed when missing.

use std::process::{Command, Stdio};

fn have(program: &str) -> bool {
    Command::new(program)
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

/// Makes sure `qemu-system-x86_64` runs: installs it with apt-get when we are root,
/// otherwise says what to install.
pub fn ensure_qemu() -> Result<(), String> {
    if have("qemu-system-x86_64") {
        return Ok(());
    }
    if !is_root() {
        return Err("qemu-system-x86_64 is missing: install the package qemu-system-x86".into());
    }
    eprintln!("xtask: installing qemu-system-x86");
    let install = [
        "install",
        "-y",
        "--no-install-recommends",
        "qemu-system-x86",
    ];
    let installed = apt_get(&install) || (apt_get(&["update"]) && apt_get(&install));
    if !installed {
        return Err("apt-get could not install qemu-system-x86".into());
    }
    if have("qemu-system-x86_64") {
        Ok(())
    } else {
        Err("qemu-system-x86_64 is still missing after apt-get".into())
    }
}

/// Makes sure the rustup target is installed.
pub fn ensure_target(target: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
        });
    match installed {
        Ok(true) => Ok(()),
        // No rustup: trust the toolchain (the build will say if the target is missing).
        Err(_) => Ok(()),
        Ok(false) => {
            let ok = Command::new("rustup")
                .args(["target", "add", target])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                Ok(())
            } else {
                Err(format!("rustup target add {target} failed"))
            }
        }
    }
}

/// Makes sure the user programs can be built: `musl-gcc` (Debian package
/// `musl-tools`, installed with apt-get when root) and the Rust musl target.
pub fn ensure_user_toolchain() -> Result<(), String> {
    ensure_target(crate::user::RUST_TARGET)?;
    if have_musl_gcc() {
        return Ok(());
    }
    if !is_root() {
        return Err("musl-gcc is missing: install the package musl-tools".into());
    }
    eprintln!("xtask: installing musl-tools");
    let install = ["install", "-y", "--no-install-recommends", "musl-tools"];
    if apt_get(&install) || (apt_get(&["update"]) && apt_get(&install)) {
        Ok(())
    } else {
        Err("apt-get could not install musl-tools".into())
    }
}

fn have_musl_gcc() -> bool {
    Command::new("musl-gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

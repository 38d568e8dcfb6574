//! A stand-alone driver for `xtask/src/user.rs`, usable before the xtask binary
//! calls it (std only, built with plain rustc):
//!
//! ```text
//! rustc --edition 2021 -O -o target/user-driver user/native.rs
//! target/user-driver build              # build all into target/user/
//! target/user-driver record             # build, run natively, write .expected/.status
//! target/user-driver run NAME [ARGS..]  # run one natively, print normalised output
//! ```
//! With `--arch aarch64` first, the same for aarch64 (`target/user-aarch64/`,
//! reference runs under `qemu-aarch64`). Run it from the repository root.
#[path = "../xtask/src/user.rs"]
mod user;

use std::path::Path;
use user::Arch;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let arch = match args.first().map(String::as_str) {
        Some("--arch") if args.get(1).map(String::as_str) == Some("aarch64") => {
            args.drain(..2);
            Arch::Aarch64
        }
        Some("--arch") if args.get(1).map(String::as_str) == Some("x86_64") => {
            args.drain(..2);
            Arch::X86_64
        }
        _ => Arch::X86_64,
    };
    let root = Path::new(".");
    let result = match args.first().map(String::as_str) {
        Some("build") => user::build_all(root, arch).map(|bins| {
            bins.iter().for_each(|b| println!("{}", b.display()));
        }),
        Some("record") => user::record_expected(root, arch).map(|rows| {
            for r in rows {
                println!("{:12} status={:<3} {:.2}s", r.name, r.status, r.seconds);
                if let Some(note) = r.note {
                    println!("  {note}");
                }
            }
        }),
        Some("run") if args.len() > 1 => run(root, arch, &args[1], &args[2..]),
        _ => Err(
            "usage: native [--arch x86_64|aarch64] build | record | run NAME [ARGS...]".to_string(),
        ),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(root: &Path, arch: Arch, name: &str, rest: &[String]) -> Result<(), String> {
    let bin = root.join("target").join(arch.out_subdir()).join(name);
    let default: Vec<&str> = user::program(name).map_or(vec![], |p| p.args.to_vec());
    let args: Vec<&str> = if rest.is_empty() {
        default
    } else {
        rest.iter().map(String::as_str).collect()
    };
    let (out, status) = user::run_reference(arch, &bin, &args)?;
    print!("{}", user::normalise(&out));
    println!("[status {status}]");
    Ok(())
}

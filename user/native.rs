//! A stand-alone driver for `xtask/src/user.rs`, usable before the xtask binary
//! calls it (std only, built with plain rustc):
//!
//! ```text
//! rustc --edition 2021 -O -o target/user-driver user/native.rs
//! target/user-driver build              # build all into target/user/
//! target/user-driver record             # build, run natively, write .expected/.status
//! target/user-driver run NAME [ARGS..]  # run one natively, print normalised output
//! ```
//! Run it from the repository root.
#[path = "../xtask/src/user.rs"]
mod user;

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Path::new(".");
    let result = match args.first().map(String::as_str) {
        Some("build") => user::build_all(root).map(|bins| {
            bins.iter().for_each(|b| println!("{}", b.display()));
        }),
        Some("record") => user::record_expected(root).map(|rows| {
            for (name, status, secs) in rows {
                println!("{name:12} status={status:<3} {secs:.2}s");
            }
        }),
        Some("run") if args.len() > 1 => run(root, &args[1], &args[2..]),
        _ => Err("usage: native build | record | run NAME [ARGS...]".to_string()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(root: &Path, name: &str, rest: &[String]) -> Result<(), String> {
    let bin = root.join("target/user").join(name);
    let default: Vec<&str> = user::program(name).map_or(vec![], |p| p.args.to_vec());
    let args: Vec<&str> = if rest.is_empty() {
        default
    } else {
        rest.iter().map(String::as_str).collect()
    };
    let (out, status) = user::run_native(&bin, &args)?;
    print!("{}", user::normalise(&out));
    println!("[status {status}]");
    Ok(())
}

//! rs_hello: argv, environment and exit status through Rust std.
//! An argument `--exit=N` makes it exit with status N.
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from Rust");
    println!("args={}", args.len());
    let name = args[0].rsplit('/').next().unwrap_or("");
    println!("arg[0]={name}");
    let mut status = 0;
    for (i, a) in args.iter().enumerate().skip(1) {
        println!("arg[{i}]={a}");
        if let Some(n) = a.strip_prefix("--exit=") {
            status = n.parse().unwrap_or(1);
        }
    }
    for (k, v) in std::env::vars() {
        println!("env {k}={v}");
    }
    eprintln!("to stderr from Rust");
    println!("exiting with {status}");
    std::io::stdout().flush().unwrap();
    std::process::exit(status);
}

//! rs_spawn: std::process::Command (musl's posix_spawn: vfork-style clone, pipes
//! with close-on-exec, dup2, execve, poll on non-blocking pipes, wait4). Programs are
//! found beside this one (the directory of argv[0]).
use std::process::{Command, Stdio};

fn main() {
    let me = std::env::args().next().unwrap_or_default();
    let dir = match me.rfind('/') {
        Some(i) => me[..i].to_string(),
        None => ".".to_string(),
    };
    let hello = format!("{dir}/hello");
    let out = Command::new(&hello)
        .args(["from Command", "--exit=7"])
        .env_clear()
        .env("ONLY", "this")
        .output()
        .expect("spawn hello");
    println!("status: {:?}", out.status.code());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| l.starts_with("arg") || l.starts_with("env")) {
        println!("child stdout: {line}");
    }
    println!("child stderr: {:?}", String::from_utf8_lossy(&out.stderr));
    let quiet = Command::new(&hello)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn hello quietly");
    println!("with stdout to /dev/null: {quiet}");
    let missing = Command::new(format!("{dir}/no-such-program")).status();
    println!("missing program: {:?}", missing.map_err(|e| e.kind()));
    println!("rs_spawn done");
}

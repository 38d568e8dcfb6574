//! The `kernel-bench` command: see the crate documentation (`src/lib.rs`).

fn main() {
    std::process::exit(kernel_bench::cli(std::env::args().skip(1)));
}

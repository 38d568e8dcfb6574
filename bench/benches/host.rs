//! `cargo bench -p kernel-bench`: the same run as `cargo run --release -p kernel-bench`.

fn main() {
    std::process::exit(kernel_bench::cli(std::env::args().skip(1)));
}

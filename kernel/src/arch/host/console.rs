//! Console output on the host: standard output.

/// Writes `s` to standard output.
pub fn write_str(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

//! Console output on the host: standard output.

/// Writes `s` to standard output.
pub fn write_str(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

/// Writes bytes to standard output as they are.
pub fn write_raw(bytes: &[u8]) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(bytes);
}

/// A program's bytes: as they are on the host.
pub fn write_bytes(bytes: &[u8]) {
    write_raw(bytes);
}

/// The host has no UART: nothing to enable.
pub fn enable_receive_interrupt() {}

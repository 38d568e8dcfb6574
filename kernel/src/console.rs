//! `print!` / `println!` to the machine's console: the serial port on bare metal,
//! standard output on the host.
#![deny(unsafe_code)]

use core::fmt::{self, Write};

/// Sends `bytes` to a serial line through `put`, each `\n` as `\r\n` (what a
/// terminal on the other end expects). Shared by the arch consoles.
pub fn put_crlf(bytes: &[u8], mut put: impl FnMut(u8)) {
    for &b in bytes {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::arch::console::write_str(s);
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let _ = Console.write_fmt(args);
}

/// Prints to the kernel console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::console::_print(format_args!($($arg)*)));
}

/// Prints to the kernel console, with a newline.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::console::_print(format_args!("{}\n", format_args!($($arg)*))));
}

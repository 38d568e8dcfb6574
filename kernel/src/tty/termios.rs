//! Linux's `struct termios` and `struct winsize` as the TCGETS/TCSETS and
//! TIOCGWINSZ/TIOCSWINSZ ioctls exchange them on x86_64 and aarch64 (both use the
//! asm-generic layout: four `u32` flag words, `c_line`, `c_cc[19]`; 36 bytes), the
//! flag bits the line discipline reads, and Linux's defaults (`tty_std_termios`).
//!
//! Plain values: no locks, no state. Conversion to and from the user's bytes is done
//! here, field by field, so no `unsafe` transmute is needed.

/// Number of control characters in the kernel's `struct termios`.
pub const NCCS: usize = 19;
/// Size of `struct termios` as TCGETS copies it out.
pub const TERMIOS_SIZE: usize = 36;
/// Size of `struct winsize`.
pub const WINSIZE_SIZE: usize = 8;

/// Indices into `c_cc` (Linux `asm-generic/termbits.h`).
pub mod cc {
    pub const VINTR: usize = 0;
    pub const VQUIT: usize = 1;
    pub const VERASE: usize = 2;
    pub const VKILL: usize = 3;
    pub const VEOF: usize = 4;
    pub const VTIME: usize = 5;
    pub const VMIN: usize = 6;
    pub const VSWTC: usize = 7;
    pub const VSTART: usize = 8;
    pub const VSTOP: usize = 9;
    pub const VSUSP: usize = 10;
    pub const VEOL: usize = 11;
    pub const VREPRINT: usize = 12;
    pub const VDISCARD: usize = 13;
    pub const VWERASE: usize = 14;
    pub const VLNEXT: usize = 15;
    pub const VEOL2: usize = 16;
}

/// `c_iflag` bits.
pub mod iflag {
    pub const IGNBRK: u32 = 0o1;
    pub const BRKINT: u32 = 0o2;
    pub const ISTRIP: u32 = 0o40;
    pub const INLCR: u32 = 0o100;
    pub const IGNCR: u32 = 0o200;
    pub const ICRNL: u32 = 0o400;
    pub const IXON: u32 = 0o2000;
    pub const IMAXBEL: u32 = 0o20000;
    pub const IUTF8: u32 = 0o40000;
}

/// `c_oflag` bits.
pub mod oflag {
    pub const OPOST: u32 = 0o1;
    pub const ONLCR: u32 = 0o4;
    pub const OCRNL: u32 = 0o10;
    pub const ONOCR: u32 = 0o20;
    pub const ONLRET: u32 = 0o40;
}

/// `c_cflag` bits.
pub mod cflag {
    pub const B38400: u32 = 0o17;
    pub const CS8: u32 = 0o60;
    pub const CREAD: u32 = 0o200;
    pub const HUPCL: u32 = 0o2000;
}

/// `c_lflag` bits.
pub mod lflag {
    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHOE: u32 = 0o20;
    pub const ECHOK: u32 = 0o40;
    pub const ECHONL: u32 = 0o100;
    pub const NOFLSH: u32 = 0o200;
    pub const TOSTOP: u32 = 0o400;
    pub const ECHOCTL: u32 = 0o1000;
    pub const ECHOPRT: u32 = 0o2000;
    pub const ECHOKE: u32 = 0o4000;
    pub const IEXTEN: u32 = 0o100000;
}

/// The terminal settings (Linux's kernel `struct termios`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub c_iflag: u32,
    pub c_oflag: u32,
    pub c_cflag: u32,
    pub c_lflag: u32,
    pub c_line: u8,
    pub c_cc: [u8; NCCS],
}

/// Linux's `INIT_C_CC`: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1, ^Q ^S ^Z, ^R ^O ^W ^V.
const DEFAULT_CC: [u8; NCCS] = [
    0x03, 0x1c, 0x7f, 0x15, 0x04, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0,
];

impl Default for Termios {
    /// Linux's `tty_std_termios`, what `stty -a` shows on a fresh console.
    fn default() -> Self {
        Termios {
            c_iflag: iflag::ICRNL | iflag::IXON,
            c_oflag: oflag::OPOST | oflag::ONLCR,
            c_cflag: cflag::B38400 | cflag::CS8 | cflag::CREAD | cflag::HUPCL,
            c_lflag: lflag::ISIG
                | lflag::ICANON
                | lflag::ECHO
                | lflag::ECHOE
                | lflag::ECHOK
                | lflag::ECHOCTL
                | lflag::ECHOKE
                | lflag::IEXTEN,
            c_line: 0,
            c_cc: DEFAULT_CC,
        }
    }
}

impl Termios {
    /// The bytes TCGETS copies to the user (native little-endian layout).
    pub fn to_bytes(&self) -> [u8; TERMIOS_SIZE] {
        let mut b = [0u8; TERMIOS_SIZE];
        let flags = [self.c_iflag, self.c_oflag, self.c_cflag, self.c_lflag];
        for (i, f) in flags.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&f.to_le_bytes());
        }
        b[16] = self.c_line;
        b[17..].copy_from_slice(&self.c_cc);
        b
    }

    /// The settings TCSETS reads from the user's bytes.
    pub fn from_bytes(b: &[u8; TERMIOS_SIZE]) -> Self {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut c_cc = [0u8; NCCS];
        c_cc.copy_from_slice(&b[17..]);
        Termios {
            c_iflag: word(0),
            c_oflag: word(4),
            c_cflag: word(8),
            c_lflag: word(12),
            c_line: b[16],
            c_cc,
        }
    }

    /// Whether local flag `bit` is set.
    pub fn l(&self, bit: u32) -> bool {
        self.c_lflag & bit != 0
    }

    /// Whether input flag `bit` is set.
    pub fn i(&self, bit: u32) -> bool {
        self.c_iflag & bit != 0
    }

    /// Whether output flag `bit` is set.
    pub fn o(&self, bit: u32) -> bool {
        self.c_oflag & bit != 0
    }

    /// Whether `c` is the control character at `index` (0 disables it, as
    /// `_POSIX_VDISABLE` is 0 on Linux).
    pub fn is_cc(&self, index: usize, c: u8) -> bool {
        self.c_cc[index] != 0 && self.c_cc[index] == c
    }
}

/// The window size (Linux's `struct winsize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}

impl Default for Winsize {
    /// 24 rows of 80 columns.
    fn default() -> Self {
        Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }
}

impl Winsize {
    /// The bytes TIOCGWINSZ copies to the user.
    pub fn to_bytes(&self) -> [u8; WINSIZE_SIZE] {
        let mut b = [0u8; WINSIZE_SIZE];
        let v = [self.ws_row, self.ws_col, self.ws_xpixel, self.ws_ypixel];
        for (i, x) in v.iter().enumerate() {
            b[i * 2..i * 2 + 2].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// The size TIOCSWINSZ reads from the user's bytes.
    pub fn from_bytes(b: &[u8; WINSIZE_SIZE]) -> Self {
        let h = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Winsize {
            ws_row: h(0),
            ws_col: h(2),
            ws_xpixel: h(4),
            ws_ypixel: h(6),
        }
    }
}

//! The line discipline (Linux's N_TTY in miniature): it owns the input state of one
//! terminal and turns received bytes into readable data, echo and signal requests.
//!
//! ## State
//! * `ready`: the bytes a read may take. In canonical mode only complete lines are
//!   here, and `lines` holds the unread length of each (a 0-length entry is an EOF
//!   typed at the start of a line: that read returns 0). In non-canonical mode
//!   every received byte goes straight to `ready` and `lines` is empty.
//! * `line`: the line being edited (canonical mode only).
//! * `column`: the output column, kept by the output processing so an erased tab or
//!   a control character shown as `^X` can be rubbed out with the right number of
//!   backspaces.
//!
//! ## Bounds
//! `ready` and `line` together hold at most [`INPUT_MAX`] bytes (4095, like N_TTY);
//! all buffers are reserved when the discipline is made, so receiving a byte never
//! allocates (it runs in the UART interrupt). Input beyond the bound is dropped; in
//! canonical mode the last byte of room is kept for the line's terminator, so a full
//! line can always be ended and read.
//!
//! ## Locks
//! None: the owner ([`super::Tty`], behind the console's `IrqMutex`) serialises calls.

use super::termios::{cc, iflag, lflag, oflag, Termios};
use alloc::collections::{TryReserveError, VecDeque};
use alloc::vec::Vec;

/// Most bytes of input held (complete lines, the line being edited, raw bytes).
pub const INPUT_MAX: usize = 4095;

/// Where echo and processed output go (the UART on bare metal, a `Vec` in tests).
pub trait Sink {
    /// Sends `bytes` to the terminal, as they are.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A signal the terminal asks to be sent to its foreground process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// VINTR (^C): SIGINT.
    Int,
    /// VQUIT (^\): SIGQUIT.
    Quit,
    /// VSUSP (^Z): SIGTSTP.
    Tstp,
    /// The window size changed: SIGWINCH.
    Winch,
}

impl Signal {
    /// The Linux signal number (the same on x86_64 and aarch64).
    pub fn number(self) -> u32 {
        match self {
            Signal::Int => 2,
            Signal::Quit => 3,
            Signal::Tstp => 20,
            Signal::Winch => 28,
        }
    }
}

/// Whether blocked readers should be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Nothing new to read.
    Nobody,
    /// Data (a line, raw bytes, an EOF) became readable.
    Readers,
}

/// What receiving one byte caused, besides the echo already sent to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    /// A signal for the foreground process group.
    pub signal: Option<Signal>,
    /// Whether readers should be woken.
    pub wake: Wake,
}

impl Effects {
    const NONE: Effects = Effects {
        signal: None,
        wake: Wake::Nobody,
    };
}

/// The answer of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadResult {
    /// This many bytes were copied (0 only for a non-canonical VMIN=0 read).
    Data(usize),
    /// End of file: ^D at the start of a line (the read returns 0).
    Eof,
    /// Nothing to return yet: block (or EAGAIN for a non-blocking reader).
    WouldBlock,
}

/// How long a blocked non-canonical read may wait (VTIME), for the caller's timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTimer {
    /// No timer: wait until [`Ldisc::read`] has data (canonical mode, VTIME = 0).
    Forever,
    /// VMIN = 0: after this many tenths of a second, [`Ldisc::read_timed_out`].
    FromCall(u8),
    /// VMIN > 0: once a byte is there, this many tenths of a second without a new
    /// byte end the read ([`Ldisc::read_timed_out`]).
    BetweenBytes(u8),
}

/// Which erase a character asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Erase {
    Char,
    Word,
    Line,
}

/// The line discipline of one terminal (see the module doc).
#[derive(Debug)]
pub struct Ldisc {
    termios: Termios,
    ready: VecDeque<u8>,
    lines: VecDeque<u16>,
    line: Vec<u8>,
    /// The previous byte was VLNEXT: take this one literally.
    literal_next: bool,
    /// IXON: VSTOP seen, output should wait for VSTART.
    output_stopped: bool,
    column: usize,
    /// Output column where the line being edited began (for tab rub-out).
    line_start_column: usize,
}

impl Ldisc {
    /// A discipline with Linux's default settings and its buffers reserved.
    pub fn new() -> Result<Ldisc, TryReserveError> {
        let mut ready = VecDeque::new();
        ready.try_reserve_exact(INPUT_MAX)?;
        let mut lines = VecDeque::new();
        lines.try_reserve_exact(INPUT_MAX)?;
        let mut line = Vec::new();
        line.try_reserve_exact(INPUT_MAX)?;
        Ok(Ldisc {
            termios: Termios::default(),
            ready,
            lines,
            line,
            literal_next: false,
            output_stopped: false,
            column: 0,
            line_start_column: 0,
        })
    }

    /// The current settings.
    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    /// New settings. Leaving canonical mode makes the edited line readable as raw
    /// bytes; entering it makes the unread raw bytes the start of the edited line
    /// (both as N_TTY does).
    pub fn set_termios(&mut self, new: Termios) {
        let was = self.termios.l(lflag::ICANON);
        let now = new.l(lflag::ICANON);
        if was && !now {
            self.ready.extend(self.line.drain(..));
            self.lines.clear();
        } else if !was && now {
            self.line.extend(self.ready.drain(..));
        }
        self.termios = new;
    }

    /// Drops all input (TCSETSF, TCFLSH, a signal character without NOFLSH).
    pub fn flush_input(&mut self) {
        self.ready.clear();
        self.lines.clear();
        self.line.clear();
        self.literal_next = false;
    }

    /// Whether a read would return at once (poll's POLLIN).
    pub fn readable(&self) -> bool {
        if self.canonical() {
            !self.lines.is_empty()
        } else {
            !self.ready.is_empty()
        }
    }

    /// Bytes a read could take now (FIONREAD/TIOCINQ): complete lines in canonical
    /// mode, every byte otherwise.
    pub fn fionread(&self) -> usize {
        self.ready.len()
    }

    /// Whether VSTOP (^S, IXON) stopped output until VSTART (^Q).
    pub fn output_stopped(&self) -> bool {
        self.output_stopped
    }

    fn canonical(&self) -> bool {
        self.termios.l(lflag::ICANON)
    }

    fn room(&self) -> usize {
        INPUT_MAX - self.ready.len() - self.line.len()
    }

    /// Takes one received byte: maps it, edits the line or queues it, echoes to
    /// `echo`, and says whether a signal is due and readers should wake.
    pub fn receive(&mut self, byte: u8, echo: &mut impl Sink) -> Effects {
        let t = self.termios;
        let mut c = if t.i(iflag::ISTRIP) {
            byte & 0x7f
        } else {
            byte
        };
        if self.literal_next {
            self.literal_next = false;
            return self.ordinary(c, echo);
        }
        if t.i(iflag::IXON) {
            if t.is_cc(cc::VSTOP, c) {
                self.output_stopped = true;
                return Effects::NONE;
            }
            if t.is_cc(cc::VSTART, c) {
                self.output_stopped = false;
                return Effects::NONE;
            }
        }
        if c == b'\r' {
            if t.i(iflag::IGNCR) {
                return Effects::NONE;
            }
            if t.i(iflag::ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && t.i(iflag::INLCR) {
            c = b'\r';
        }
        if t.l(lflag::ISIG) {
            for (index, signal) in [
                (cc::VINTR, Signal::Int),
                (cc::VQUIT, Signal::Quit),
                (cc::VSUSP, Signal::Tstp),
            ] {
                if t.is_cc(index, c) {
                    return self.signal_char(c, signal, echo);
                }
            }
        }
        if self.canonical() {
            self.canonical_char(c, echo)
        } else {
            self.ordinary(c, echo)
        }
    }

    fn signal_char(&mut self, c: u8, signal: Signal, echo: &mut impl Sink) -> Effects {
        if !self.termios.l(lflag::NOFLSH) {
            self.flush_input();
        }
        if self.termios.l(lflag::ECHO) {
            self.echo_char(c, echo);
        }
        Effects {
            signal: Some(signal),
            wake: Wake::Nobody,
        }
    }

    fn canonical_char(&mut self, c: u8, echo: &mut impl Sink) -> Effects {
        let t = self.termios;
        let iexten = t.l(lflag::IEXTEN);
        if t.is_cc(cc::VERASE, c) {
            self.erase(Erase::Char, echo);
        } else if t.is_cc(cc::VKILL, c) {
            self.erase(Erase::Line, echo);
        } else if iexten && t.is_cc(cc::VWERASE, c) {
            self.erase(Erase::Word, echo);
        } else if iexten && t.is_cc(cc::VLNEXT, c) {
            self.literal_next = true;
            if t.l(lflag::ECHO) && t.l(lflag::ECHOCTL) {
                self.output(b"^\x08", echo);
            }
        } else if iexten && t.is_cc(cc::VREPRINT, c) {
            self.reprint(c, echo);
        } else if c == b'\n' {
            if t.l(lflag::ECHO) || t.l(lflag::ECHONL) {
                self.output(b"\n", echo);
            }
            return self.end_line(Some(c));
        } else if t.is_cc(cc::VEOF, c) {
            return self.end_line(None);
        } else if t.is_cc(cc::VEOL, c) || (iexten && t.is_cc(cc::VEOL2, c)) {
            if t.l(lflag::ECHO) {
                self.echo_char(c, echo);
            }
            return self.end_line(Some(c));
        } else {
            return self.ordinary(c, echo);
        }
        Effects::NONE
    }

    /// A byte that is data: appended to the edited line (canonical) or queued.
    fn ordinary(&mut self, c: u8, echo: &mut impl Sink) -> Effects {
        let canonical = self.canonical();
        // Canonical mode keeps the last byte of room for the terminator.
        let needed = if canonical { 2 } else { 1 };
        if self.room() < needed {
            if canonical && self.termios.i(iflag::IMAXBEL) && self.termios.l(lflag::ECHO) {
                echo.put(b"\x07");
            }
            return Effects::NONE;
        }
        if self.termios.l(lflag::ECHO) {
            self.echo_char(c, echo);
        }
        if canonical {
            self.line.push(c);
            Effects::NONE
        } else {
            self.ready.push_back(c);
            Effects {
                signal: None,
                wake: Wake::Readers,
            }
        }
    }

    /// Makes the edited line readable, with its terminator (NL, EOL) or without
    /// (EOF). If no room is left for the terminator the line ends without it.
    fn end_line(&mut self, terminator: Option<u8>) -> Effects {
        if self.lines.len() >= INPUT_MAX {
            return Effects::NONE;
        }
        if let Some(t) = terminator {
            if self.room() > 0 {
                self.line.push(t);
            }
        }
        // The line fits in u16: it is at most INPUT_MAX bytes.
        self.lines.push_back(self.line.len() as u16);
        self.ready.extend(self.line.drain(..));
        self.line_start_column = self.column;
        Effects {
            signal: None,
            wake: Wake::Readers,
        }
    }

    fn erase(&mut self, kind: Erase, echo: &mut impl Sink) {
        let t = self.termios;
        if self.line.is_empty() {
            return;
        }
        if kind == Erase::Line {
            if !t.l(lflag::ECHO) {
                self.line.clear();
                return;
            }
            if !t.l(lflag::ECHOK) || !t.l(lflag::ECHOKE) || !t.l(lflag::ECHOE) {
                // The plain kill: show the kill character, then (ECHOK) a newline.
                self.line.clear();
                self.echo_char(t.c_cc[cc::VKILL], echo);
                if t.l(lflag::ECHOK) {
                    self.output(b"\n", echo);
                }
                self.line_start_column = self.column;
                return;
            }
        }
        let mut seen_word = false;
        while let Some(&c) = self.line.last() {
            if kind == Erase::Word {
                // Like N_TTY: blanks and punctuation go until a word was seen,
                // then the word's characters until the next other one.
                if c.is_ascii_alphanumeric() || c == b'_' {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            self.line.pop();
            if t.i(iflag::IUTF8) && is_continuation(c) {
                // Part of a multi-byte character: it is erased with its lead byte.
                continue;
            }
            if t.l(lflag::ECHO) {
                self.rub_out(c, echo);
            }
            if kind == Erase::Char {
                break;
            }
        }
    }

    /// Echoes the erasure of `c` (already removed from `line`).
    fn rub_out(&mut self, c: u8, echo: &mut impl Sink) {
        let t = self.termios;
        if !t.l(lflag::ECHOE) {
            self.echo_char(t.c_cc[cc::VERASE], echo);
        } else if c == b'\t' {
            let back = self.column.saturating_sub(self.line_end_column());
            for _ in 0..back {
                self.output(b"\x08", echo);
            }
        } else if is_control(c) && t.l(lflag::ECHOCTL) {
            self.output(b"\x08 \x08\x08 \x08", echo);
        } else {
            self.output(b"\x08 \x08", echo);
        }
    }

    /// The column where the echo of the edited line ends.
    fn line_end_column(&self) -> usize {
        let t = self.termios;
        let mut col = self.line_start_column;
        for &c in &self.line {
            if c == b'\t' {
                col = (col | 7) + 1;
            } else if is_control(c) {
                if t.l(lflag::ECHOCTL) {
                    col += 2;
                }
            } else if !(t.i(iflag::IUTF8) && is_continuation(c)) {
                col += 1;
            }
        }
        col
    }

    fn reprint(&mut self, c: u8, echo: &mut impl Sink) {
        if !self.termios.l(lflag::ECHO) {
            return;
        }
        self.echo_char(c, echo);
        self.output(b"\n", echo);
        self.line_start_column = self.column;
        for i in 0..self.line.len() {
            let b = self.line[i];
            self.echo_char(b, echo);
        }
    }

    /// Echoes one byte: a control character as `^X` under ECHOCTL (not tab or NL).
    fn echo_char(&mut self, c: u8, echo: &mut impl Sink) {
        if is_control(c) && c != b'\t' && c != b'\n' && self.termios.l(lflag::ECHOCTL) {
            self.output(&[b'^', c ^ 0x40], echo);
        } else {
            self.output(&[c], echo);
        }
    }

    fn output(&mut self, bytes: &[u8], out: &mut impl Sink) {
        for &b in bytes {
            self.output_byte(b, out);
        }
    }

    /// Output processing (OPOST) of what a program writes: NL -> CR NL under ONLCR,
    /// CR -> NL under OCRNL, no CR at column 0 under ONOCR.
    pub fn write_processed(&mut self, input: &[u8], out: &mut impl Sink) {
        self.output(input, out);
    }

    fn output_byte(&mut self, c: u8, out: &mut impl Sink) {
        let t = self.termios;
        if !t.o(oflag::OPOST) {
            self.track_column(c);
            out.put(&[c]);
            return;
        }
        match c {
            b'\n' => {
                if t.o(oflag::ONLCR) {
                    self.column = 0;
                    out.put(b"\r\n");
                    return;
                }
                if t.o(oflag::ONLRET) {
                    self.column = 0;
                }
                out.put(b"\n");
            }
            b'\r' => {
                if t.o(oflag::ONOCR) && self.column == 0 {
                    return;
                }
                if t.o(oflag::OCRNL) {
                    if t.o(oflag::ONLRET) {
                        self.column = 0;
                    }
                    out.put(b"\n");
                    return;
                }
                self.column = 0;
                out.put(b"\r");
            }
            _ => {
                self.track_column(c);
                out.put(&[c]);
            }
        }
    }

    fn track_column(&mut self, c: u8) {
        match c {
            b'\t' => self.column = (self.column | 7) + 1,
            b'\x08' => self.column = self.column.saturating_sub(1),
            b'\r' => self.column = 0,
            c if is_control(c) => {}
            c if self.termios.i(iflag::IUTF8) && is_continuation(c) => {}
            _ => self.column += 1,
        }
    }

    /// Reads into `out`: in canonical mode at most one line (a partly read line is
    /// continued by the next read), otherwise per VMIN/VTIME: with VTIME = 0 the read
    /// waits for min(VMIN, out.len()) bytes; VMIN = VTIME = 0 returns at once.
    pub fn read(&mut self, out: &mut [u8]) -> ReadResult {
        if out.is_empty() {
            return ReadResult::Data(0);
        }
        if self.canonical() {
            return self.read_line(out);
        }
        let vmin = usize::from(self.termios.c_cc[cc::VMIN]);
        let vtime = self.termios.c_cc[cc::VTIME];
        if self.ready.is_empty() {
            return if vmin == 0 && vtime == 0 {
                ReadResult::Data(0)
            } else {
                ReadResult::WouldBlock
            };
        }
        if self.ready.len() < vmin.min(out.len()) {
            return ReadResult::WouldBlock;
        }
        ReadResult::Data(self.take(out))
    }

    /// The read after its VTIME timer ran out: whatever is there, maybe nothing.
    pub fn read_timed_out(&mut self, out: &mut [u8]) -> ReadResult {
        if self.canonical() {
            return self.read(out);
        }
        ReadResult::Data(self.take(out))
    }

    /// The timer a blocked read needs (see [`ReadTimer`]).
    pub fn read_timer(&self) -> ReadTimer {
        let vtime = self.termios.c_cc[cc::VTIME];
        if self.canonical() || vtime == 0 {
            ReadTimer::Forever
        } else if self.termios.c_cc[cc::VMIN] == 0 {
            ReadTimer::FromCall(vtime)
        } else {
            ReadTimer::BetweenBytes(vtime)
        }
    }

    fn read_line(&mut self, out: &mut [u8]) -> ReadResult {
        let Some(front) = self.lines.front_mut() else {
            return ReadResult::WouldBlock;
        };
        if *front == 0 {
            self.lines.pop_front();
            return ReadResult::Eof;
        }
        let n = usize::from(*front).min(out.len());
        *front -= n as u16;
        if *front == 0 {
            self.lines.pop_front();
        }
        for (dst, src) in out.iter_mut().zip(self.ready.drain(..n)) {
            *dst = src;
        }
        ReadResult::Data(n)
    }

    fn take(&mut self, out: &mut [u8]) -> usize {
        let n = self.ready.len().min(out.len());
        for (dst, src) in out.iter_mut().zip(self.ready.drain(..n)) {
            *dst = src;
        }
        n
    }
}

fn is_control(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

fn is_continuation(c: u8) -> bool {
    (0x80..0xc0).contains(&c)
}

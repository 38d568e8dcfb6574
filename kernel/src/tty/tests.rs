//! Host tests of the line discipline and the terminal.

use super::ldisc::{Effects, Ldisc, ReadResult, ReadTimer, Signal, Wake, INPUT_MAX};
use super::termios::{cc, iflag, lflag, oflag, Termios, Winsize, TERMIOS_SIZE};
use super::{SetWhen, Tty};
use alloc::vec::Vec;
use proptest::prelude::*;

fn feed(l: &mut Ldisc, bytes: &[u8]) -> Vec<u8> {
    let mut echo = Vec::new();
    for &b in bytes {
        l.receive(b, &mut echo);
    }
    echo
}

fn read_all(l: &mut Ldisc) -> Vec<ReadResult> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match l.read(&mut buf) {
            ReadResult::WouldBlock => return out,
            r => out.push(r),
        }
    }
}

fn read_str(l: &mut Ldisc) -> Option<Vec<u8>> {
    let mut buf = [0u8; 8192];
    match l.read(&mut buf) {
        ReadResult::Data(n) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

fn raw(vmin: u8, vtime: u8) -> Termios {
    let mut t = Termios::default();
    t.c_lflag &= !(lflag::ICANON | lflag::ECHO);
    t.c_cc[cc::VMIN] = vmin;
    t.c_cc[cc::VTIME] = vtime;
    t
}

#[test]
fn defaults_are_linux() {
    let t = Termios::default();
    for bit in [
        lflag::ICANON,
        lflag::ECHO,
        lflag::ECHOE,
        lflag::ECHOK,
        lflag::ISIG,
        lflag::IEXTEN,
        lflag::ECHOCTL,
        lflag::ECHOKE,
    ] {
        assert!(t.l(bit));
    }
    assert!(t.i(iflag::ICRNL) && t.o(oflag::OPOST) && t.o(oflag::ONLCR));
    assert_eq!(t.c_cc[cc::VINTR], 3);
    assert_eq!(t.c_cc[cc::VQUIT], 0x1c);
    assert_eq!(t.c_cc[cc::VERASE], 0x7f);
    assert_eq!(t.c_cc[cc::VKILL], 0x15);
    assert_eq!(t.c_cc[cc::VEOF], 4);
    assert_eq!(t.c_cc[cc::VSUSP], 0x1a);
    assert_eq!(t.c_cc[cc::VMIN], 1);
    assert_eq!(t.c_cc[cc::VTIME], 0);
    // What `stty -g` prints on a fresh Linux console: 500:5:bf:8a3b (hex flags).
    assert_eq!(
        (t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag),
        (0x500, 0x5, 0xbf | 0x400, 0x8a3b)
    );
    assert_eq!(Winsize::default().ws_row, 24);
    assert_eq!(Winsize::default().ws_col, 80);
}

#[test]
fn termios_bytes_round_trip_in_linux_layout() {
    let t = Termios::default();
    let b = t.to_bytes();
    assert_eq!(b.len(), TERMIOS_SIZE);
    assert_eq!(&b[0..4], &0x500u32.to_le_bytes());
    assert_eq!(&b[12..16], &0x8a3bu32.to_le_bytes());
    assert_eq!(b[16], 0);
    assert_eq!(b[17 + cc::VINTR], 3);
    assert_eq!(b[17 + cc::VMIN], 1);
    assert_eq!(Termios::from_bytes(&b), t);
    let w = Winsize {
        ws_row: 50,
        ws_col: 132,
        ws_xpixel: 1,
        ws_ypixel: 2,
    };
    assert_eq!(w.to_bytes(), [50, 0, 132, 0, 1, 0, 2, 0]);
    assert_eq!(Winsize::from_bytes(&w.to_bytes()), w);
}

#[test]
fn canonical_line_is_delivered_on_newline_only() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"hello");
    assert_eq!(echo, b"hello");
    assert!(!l.readable());
    assert_eq!(l.read(&mut [0; 16]), ReadResult::WouldBlock);
    let echo = feed(&mut l, b"\r");
    assert_eq!(
        echo, b"\r\n",
        "CR mapped to NL (ICRNL), echoed as CR NL (ONLCR)"
    );
    assert!(l.readable());
    assert_eq!(l.fionread(), 6);
    assert_eq!(read_str(&mut l).unwrap(), b"hello\n");
    assert!(!l.readable());
}

#[test]
fn canonical_read_returns_one_line_and_continues_a_partial_one() {
    let mut l = Ldisc::new().unwrap();
    feed(&mut l, b"ab\ncdef\n");
    assert_eq!(read_str(&mut l).unwrap(), b"ab\n");
    let mut small = [0u8; 2];
    assert_eq!(l.read(&mut small), ReadResult::Data(2));
    assert_eq!(&small, b"cd");
    assert_eq!(read_str(&mut l).unwrap(), b"ef\n");
    assert_eq!(l.read(&mut [0; 4]), ReadResult::WouldBlock);
    assert_eq!(l.read(&mut []), ReadResult::Data(0));
}

#[test]
fn eof_at_line_start_reads_zero_and_ends_a_line_without_itself() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"\x04");
    assert!(echo.is_empty(), "EOF is not echoed");
    assert_eq!(l.read(&mut [0; 8]), ReadResult::Eof);
    assert_eq!(l.read(&mut [0; 8]), ReadResult::WouldBlock);
    feed(&mut l, b"abc\x04\x04");
    assert_eq!(read_str(&mut l).unwrap(), b"abc");
    assert_eq!(l.read(&mut [0; 8]), ReadResult::Eof);
}

#[test]
fn erase_removes_one_character_and_rubs_it_out() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"abc\x7f\x7fd\n");
    assert_eq!(echo, b"abc\x08 \x08\x08 \x08d\r\n");
    assert_eq!(read_str(&mut l).unwrap(), b"ad\n");
    // Erase at the start of a line does nothing (and echoes nothing).
    assert!(feed(&mut l, b"\x7f").is_empty());
}

#[test]
fn erase_without_echoe_echoes_the_erase_character() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_lflag &= !lflag::ECHOE;
    l.set_termios(t);
    assert_eq!(feed(&mut l, b"a\x7f"), b"a^?");
}

#[test]
fn erasing_a_control_character_rubs_out_two_columns() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"\x01\x7f");
    assert_eq!(echo, b"^A\x08 \x08\x08 \x08");
    feed(&mut l, b"\n");
    assert_eq!(read_str(&mut l).unwrap(), b"\n");
}

#[test]
fn erasing_a_tab_goes_back_to_where_it_began() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"ab\t\x7f");
    assert_eq!(echo, b"ab\t\x08\x08\x08\x08\x08\x08");
}

#[test]
fn utf8_erase_takes_a_whole_character() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_iflag |= iflag::IUTF8;
    l.set_termios(t);
    let echo = feed(&mut l, "aé\x7f\n".as_bytes());
    assert_eq!(echo, "aé\x08 \x08\r\n".as_bytes());
    assert_eq!(read_str(&mut l).unwrap(), b"a\n");
}

#[test]
fn kill_erases_the_line_char_by_char_with_echoke() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"abc\x15x\n");
    assert_eq!(echo, b"abc\x08 \x08\x08 \x08\x08 \x08x\r\n");
    assert_eq!(read_str(&mut l).unwrap(), b"x\n");
}

#[test]
fn kill_without_echoke_echoes_kill_and_newline() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_lflag &= !lflag::ECHOKE;
    l.set_termios(t);
    let echo = feed(&mut l, b"abc\x15x\n");
    assert_eq!(echo, b"abc^U\r\nx\r\n");
    assert_eq!(read_str(&mut l).unwrap(), b"x\n");
}

#[test]
fn werase_erases_blanks_then_a_word() {
    let mut l = Ldisc::new().unwrap();
    feed(&mut l, b"one two_2  \x17\n");
    assert_eq!(read_str(&mut l).unwrap(), b"one \n");
    feed(&mut l, b"a b.c.\x17\n");
    assert_eq!(read_str(&mut l).unwrap(), b"a b.\n");
    // Without IEXTEN ^W is data.
    let mut t = Termios::default();
    t.c_lflag &= !lflag::IEXTEN;
    l.set_termios(t);
    feed(&mut l, b"a\x17\n");
    assert_eq!(read_str(&mut l).unwrap(), b"a\x17\n");
}

#[test]
fn lnext_takes_the_next_byte_literally() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"\x16\x03\x16\x7f\n");
    assert_eq!(echo, b"^\x08^C^\x08^?\r\n");
    assert_eq!(read_str(&mut l).unwrap(), b"\x03\x7f\n");
}

#[test]
fn reprint_shows_the_line_again() {
    let mut l = Ldisc::new().unwrap();
    let echo = feed(&mut l, b"ab\x12");
    assert_eq!(echo, b"ab^R\r\nab");
}

#[test]
fn eol_ends_a_line_and_is_kept() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_cc[cc::VEOL] = b';';
    l.set_termios(t);
    feed(&mut l, b"ls;");
    assert_eq!(read_str(&mut l).unwrap(), b"ls;");
}

#[test]
fn signal_characters_request_signals_and_flush() {
    let mut l = Ldisc::new().unwrap();
    let mut echo = Vec::new();
    feed(&mut l, b"partial");
    let e = l.receive(3, &mut echo);
    assert_eq!(e.signal, Some(Signal::Int));
    assert_eq!(echo, b"^C");
    feed(&mut l, b"\n");
    assert_eq!(
        read_str(&mut l).unwrap(),
        b"\n",
        "the partial line was flushed"
    );
    assert_eq!(l.receive(0x1c, &mut echo).signal, Some(Signal::Quit));
    assert_eq!(l.receive(0x1a, &mut echo).signal, Some(Signal::Tstp));
    assert_eq!(Signal::Int.number(), 2);
    assert_eq!(Signal::Quit.number(), 3);
    assert_eq!(Signal::Tstp.number(), 20);
}

#[test]
fn noflsh_keeps_input_and_no_isig_makes_them_data() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_lflag |= lflag::NOFLSH;
    l.set_termios(t);
    feed(&mut l, b"ab\x03c\n");
    assert_eq!(read_str(&mut l).unwrap(), b"abc\n");
    t.c_lflag &= !lflag::ISIG;
    l.set_termios(t);
    let mut echo = Vec::new();
    assert_eq!(l.receive(3, &mut echo).signal, None);
    feed(&mut l, b"\n");
    assert_eq!(read_str(&mut l).unwrap(), b"\x03\n");
}

#[test]
fn echo_off_and_echonl() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_lflag &= !lflag::ECHO;
    l.set_termios(t);
    assert!(feed(&mut l, b"secret\n").is_empty());
    t.c_lflag |= lflag::ECHONL;
    l.set_termios(t);
    assert_eq!(feed(&mut l, b"pw\n"), b"\r\n");
    assert_eq!(read_str(&mut l).unwrap(), b"secret\n");
    assert_eq!(read_str(&mut l).unwrap(), b"pw\n");
}

#[test]
fn echoctl_off_echoes_control_bytes_as_they_are() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_lflag &= !lflag::ECHOCTL;
    l.set_termios(t);
    let mut echo = Vec::new();
    l.receive(3, &mut echo);
    assert_eq!(echo, b"\x03");
}

#[test]
fn input_mapping_icrnl_inlcr_igncr() {
    let mut l = Ldisc::new().unwrap();
    let mut t = raw(1, 0);
    t.c_iflag = iflag::INLCR;
    l.set_termios(t);
    feed(&mut l, b"\r\n");
    assert_eq!(read_str(&mut l).unwrap(), b"\r\r");
    t.c_iflag = iflag::IGNCR | iflag::ICRNL;
    l.set_termios(t);
    feed(&mut l, b"a\rb\n");
    assert_eq!(read_str(&mut l).unwrap(), b"ab\n");
    t.c_iflag = iflag::ICRNL;
    l.set_termios(t);
    feed(&mut l, b"\r");
    assert_eq!(read_str(&mut l).unwrap(), b"\n");
    t.c_iflag = iflag::ISTRIP;
    l.set_termios(t);
    feed(&mut l, &[0xc1]);
    assert_eq!(read_str(&mut l).unwrap(), b"A");
}

#[test]
fn output_processing_onlcr_ocrnl_onocr_and_raw() {
    let mut l = Ldisc::new().unwrap();
    let mut out = Vec::new();
    l.write_processed(b"a\nb\n", &mut out);
    assert_eq!(out, b"a\r\nb\r\n");
    let mut t = Termios {
        c_oflag: oflag::OPOST | oflag::OCRNL,
        ..Termios::default()
    };
    l.set_termios(t);
    out.clear();
    l.write_processed(b"x\r\n", &mut out);
    assert_eq!(out, b"x\n\n");
    // The column is still 1 (NL without ONLCR/ONLRET does not return): start afresh.
    let mut l = Ldisc::new().unwrap();
    t.c_oflag = oflag::OPOST | oflag::ONOCR;
    l.set_termios(t);
    out.clear();
    l.write_processed(b"\rq\r", &mut out);
    assert_eq!(out, b"q\r", "no CR at column 0");
    t.c_oflag = 0;
    l.set_termios(t);
    out.clear();
    l.write_processed(b"a\nb", &mut out);
    assert_eq!(out, b"a\nb");
}

#[test]
fn raw_vmin1_vtime0_returns_what_is_there() {
    let mut l = Ldisc::new().unwrap();
    l.set_termios(raw(1, 0));
    assert_eq!(l.read(&mut [0; 4]), ReadResult::WouldBlock);
    assert_eq!(l.read_timer(), ReadTimer::Forever);
    let mut echo = Vec::new();
    let e = l.receive(b'x', &mut echo);
    assert_eq!(e.wake, Wake::Readers);
    assert!(echo.is_empty());
    feed(&mut l, b"y\x7f\x15\x04");
    assert_eq!(
        read_str(&mut l).unwrap(),
        b"xy\x7f\x15\x04",
        "no editing in raw mode"
    );
}

#[test]
fn raw_vmin_waits_for_enough_bytes() {
    let mut l = Ldisc::new().unwrap();
    l.set_termios(raw(3, 0));
    feed(&mut l, b"ab");
    assert!(l.readable(), "poll says readable with one byte, as N_TTY");
    assert_eq!(l.read(&mut [0; 8]), ReadResult::WouldBlock);
    let mut two = [0u8; 2];
    assert_eq!(l.read(&mut two), ReadResult::Data(2), "min(VMIN, count)");
    feed(&mut l, b"cde");
    assert_eq!(read_str(&mut l).unwrap(), b"cde");
}

#[test]
fn raw_vmin0_vtime0_never_blocks() {
    let mut l = Ldisc::new().unwrap();
    l.set_termios(raw(0, 0));
    assert_eq!(l.read(&mut [0; 8]), ReadResult::Data(0));
    feed(&mut l, b"z");
    assert_eq!(read_str(&mut l).unwrap(), b"z");
}

#[test]
fn raw_vtime_timers() {
    let mut l = Ldisc::new().unwrap();
    l.set_termios(raw(0, 5));
    assert_eq!(l.read_timer(), ReadTimer::FromCall(5));
    assert_eq!(l.read(&mut [0; 8]), ReadResult::WouldBlock);
    assert_eq!(l.read_timed_out(&mut [0; 8]), ReadResult::Data(0));
    l.set_termios(raw(4, 2));
    assert_eq!(l.read_timer(), ReadTimer::BetweenBytes(2));
    feed(&mut l, b"ab");
    assert_eq!(l.read(&mut [0; 8]), ReadResult::WouldBlock);
    assert_eq!(l.read_timed_out(&mut [0; 8]), ReadResult::Data(2));
}

#[test]
fn raw_echo_and_signals_still_apply() {
    let mut l = Ldisc::new().unwrap();
    let mut t = raw(1, 0);
    t.c_lflag |= lflag::ECHO;
    l.set_termios(t);
    assert_eq!(feed(&mut l, b"a\x01\r"), b"a^A\r\n");
    let mut echo = Vec::new();
    assert_eq!(l.receive(3, &mut echo).signal, Some(Signal::Int));
    assert_eq!(l.fionread(), 0, "flushed");
}

#[test]
fn mode_switches_keep_input() {
    let mut l = Ldisc::new().unwrap();
    feed(&mut l, b"done\npart");
    l.set_termios(raw(1, 0));
    assert_eq!(read_str(&mut l).unwrap(), b"done\npart");
    feed(&mut l, b"xy");
    l.set_termios(Termios::default());
    assert!(!l.readable());
    feed(&mut l, b"\x7fz\n");
    assert_eq!(read_str(&mut l).unwrap(), b"xz\n");
}

#[test]
fn ixon_stop_start_are_swallowed() {
    let mut l = Ldisc::new().unwrap();
    feed(&mut l, b"\x13");
    assert!(l.output_stopped());
    feed(&mut l, b"a\x11\n");
    assert!(!l.output_stopped());
    assert_eq!(read_str(&mut l).unwrap(), b"a\n");
}

#[test]
fn canonical_input_is_bounded_and_a_full_line_can_still_end() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_lflag &= !lflag::ECHO;
    l.set_termios(t);
    let long = alloc::vec![b'a'; 10_000];
    feed(&mut l, &long);
    feed(&mut l, b"\n");
    let line = read_str(&mut l).unwrap();
    assert_eq!(line.len(), INPUT_MAX);
    assert_eq!(line.last(), Some(&b'\n'));
    // Many empty EOF lines are bounded too.
    feed(&mut l, &alloc::vec![4u8; 10_000]);
    let n = read_all(&mut l).len();
    assert_eq!(n, INPUT_MAX);
}

#[test]
fn raw_input_is_bounded() {
    let mut l = Ldisc::new().unwrap();
    l.set_termios(raw(1, 0));
    feed(&mut l, &alloc::vec![b'q'; 5000]);
    assert_eq!(l.fionread(), INPUT_MAX);
}

#[test]
fn full_canonical_buffer_with_echo_rings_the_bell_with_imaxbel() {
    let mut l = Ldisc::new().unwrap();
    let mut t = Termios::default();
    t.c_iflag |= iflag::IMAXBEL;
    l.set_termios(t);
    feed(&mut l, &alloc::vec![b'a'; INPUT_MAX - 1]);
    assert_eq!(feed(&mut l, b"b"), b"\x07");
}

#[test]
fn tty_wakes_readers_and_keeps_its_fields() {
    let mut tty = Tty::new().unwrap();
    let mut echo = Vec::new();
    let e: Effects = tty.receive(b'x', &mut echo);
    assert_eq!(e.wake, Wake::Nobody);
    assert_eq!(tty.receive(b'\n', &mut echo).wake, Wake::Readers);
    assert_eq!(tty.ldisc().fionread(), 2);
    let mut buf = [0u8; 8];
    assert_eq!(tty.read(&mut buf), ReadResult::Data(2));
    assert_eq!(tty.winsize(), Winsize::default());
    assert_eq!(tty.set_winsize(Winsize::default()), None);
    let big = Winsize {
        ws_row: 40,
        ..Winsize::default()
    };
    assert_eq!(tty.set_winsize(big), Some(Signal::Winch));
    assert_eq!(tty.winsize().ws_row, 40);
    tty.set_foreground_pgid(7);
    tty.set_session(5);
    assert_eq!((tty.foreground_pgid(), tty.session()), (7, 5));
    tty.receive(b'a', &mut echo);
    tty.set_termios(raw(1, 0), SetWhen::Flush);
    assert!(!tty.ldisc().readable(), "TCSETSF dropped the input");
    tty.receive(b'b', &mut echo);
    tty.set_termios(Termios::default(), SetWhen::Now);
    tty.set_termios(raw(1, 0), SetWhen::Drain);
    assert_eq!(tty.read(&mut buf), ReadResult::Data(1));
    assert!(tty.readers().is_empty());
}

/// A model of canonical editing (erase, kill, werase, NL, EOF) for default settings.
fn model_lines(input: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    for &b in input {
        let c = if b == b'\r' { b'\n' } else { b };
        match c {
            // A signal character flushes all input, complete lines too.
            0x03 | 0x1c | 0x1a => {
                line.clear();
                lines.clear();
            }
            0x11 | 0x13 => {}
            0x7f => {
                line.pop();
            }
            0x15 => line.clear(),
            0x17 => {
                let mut seen = false;
                while let Some(&x) = line.last() {
                    if x.is_ascii_alphanumeric() || x == b'_' {
                        seen = true;
                    } else if seen {
                        break;
                    }
                    line.pop();
                }
            }
            b'\n' => {
                line.push(b'\n');
                lines.push(Some(core::mem::take(&mut line)));
            }
            0x04 => {
                let l = core::mem::take(&mut line);
                lines.push(if l.is_empty() { None } else { Some(l) });
            }
            _ => line.push(c),
        }
    }
    lines
}

proptest! {
    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        lflags in any::<u32>(),
        iflags in any::<u32>(),
        oflags in any::<u32>(),
        vmin in 0u8..4,
        vtime in 0u8..3,
    ) {
        let mut l = Ldisc::new().unwrap();
        let mut t = Termios {
            c_lflag: lflags,
            c_iflag: iflags,
            c_oflag: oflags,
            ..Termios::default()
        };
        t.c_cc[cc::VMIN] = vmin;
        t.c_cc[cc::VTIME] = vtime;
        l.set_termios(t);
        let mut echo = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            l.receive(b, &mut echo);
            if i % 7 == 0 {
                let _ = l.read(&mut [0; 5]);
            }
            if i % 97 == 0 {
                t.c_lflag ^= lflag::ICANON;
                l.set_termios(t);
            }
            prop_assert!(l.fionread() <= INPUT_MAX);
        }
        let _ = l.read_timed_out(&mut [0; 3]);
        l.write_processed(&bytes, &mut echo);
    }

    #[test]
    fn canonical_reads_return_the_edited_lines(
        bytes in proptest::collection::vec(
            prop_oneof![
                Just(0x7fu8), Just(0x15), Just(0x17), Just(b'\n'), Just(b'\r'), Just(0x04),
                Just(0x03), Just(b' '), Just(b'.'), b'a'..=b'e',
            ],
            0..400,
        ),
    ) {
        let mut l = Ldisc::new().unwrap();
        let echo = feed(&mut l, &bytes);
        prop_assert!(echo.len() < 8 * bytes.len() + 1);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match l.read(&mut buf) {
                ReadResult::WouldBlock => break,
                ReadResult::Eof => got.push(None),
                ReadResult::Data(n) => got.push(Some(buf[..n].to_vec())),
            }
        }
        prop_assert_eq!(got, model_lines(&bytes));
    }
}

#[test]
fn a_registered_reader_is_woken_by_a_line_not_by_a_partial_one() {
    use crate::process::wait_queue::{Waiter, Wakeups};
    use crate::process::Tid;
    use alloc::sync::Arc;
    let mut tty = Tty::new().unwrap();
    let wakeups = Arc::new(Wakeups::default());
    tty.readers()
        .add(&Waiter::new(Tid(9), wakeups.clone()))
        .unwrap();
    let mut echo = Vec::new();
    tty.receive(b'a', &mut echo);
    assert!(wakeups.take().0.is_empty(), "a partial line wakes nobody");
    tty.receive(b'\r', &mut echo);
    assert_eq!(wakeups.take().0, alloc::vec![Tid(9)]);
    // Raw mode: every byte wakes.
    tty.set_termios(raw(1, 0), SetWhen::Flush);
    tty.receive(b'b', &mut echo);
    assert_eq!(wakeups.take().0, alloc::vec![Tid(9)]);
}

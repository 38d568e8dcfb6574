//! The console terminal as fds see it: read through its line discipline (waiting
//! on its readers' queue while no line is ready), and its ioctls.
//!
//! The terminal itself (discipline, window size, foreground group, session) is
//! [`crate::tty`]; its ^C / ^Z / ^\ become signals to the foreground process group
//! through [`deliver_terminal_signal`], which the task layer installs as the
//! console's signal hook. Writes go through [`crate::tty::console_write`] (output
//! processing: `\n` becomes `\r\n`).
//!
//! ioctls: TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ (SIGWINCH to
//! the foreground group when the size changes), TIOCGPGRP, TIOCSPGRP (a group of
//! the caller's session, else EPERM), TIOCSCTTY (the caller must lead its
//! session), TIOCNOTTY, TIOCGSID, FIONREAD, TCFLSH, TCSBRK and TCXONC (output is
//! synchronous: nothing to drain).
//!
//! A process of a background group of the terminal's session that reads it gets
//! SIGTTIN for its group (EIO if it ignores or blocks it), as on Linux.
//!
//! Locks: the console's `Tty` lock is taken under the process table's and never
//! held while user memory is copied or a thread blocks.

use super::signal::{signal_group, SigInfo};
use super::user_mem::{UserPtr, UserSlice};
use super::{Errno, Sys, EAGAIN, EINVAL, EIO, ENOMEM, ENOTTY, ENXIO, EPERM, ERESTARTSYS};

const SIGTTIN: i32 = 21;
use crate::memory::frame_allocator::FrameSource;
use crate::process::{Pid, ProcessState};
use crate::tty::termios::{TERMIOS_SIZE, WINSIZE_SIZE};
use crate::tty::{self, ReadResult, SetWhen, Signal, Termios, Winsize};

const TCGETS: usize = 0x5401;
const TCSETS: usize = 0x5402;
const TCSETSW: usize = 0x5403;
const TCSETSF: usize = 0x5404;
const TCSBRK: usize = 0x5409;
const TCXONC: usize = 0x540A;
const TCFLSH: usize = 0x540B;
const TIOCSCTTY: usize = 0x540E;
const TIOCGPGRP: usize = 0x540F;
const TIOCSPGRP: usize = 0x5410;
const TIOCGWINSZ: usize = 0x5413;
const TIOCSWINSZ: usize = 0x5414;
const FIONREAD: usize = 0x541B;
const TIOCNOTTY: usize = 0x5422;
const TIOCGSID: usize = 0x5429;
/// Most bytes one read takes from the discipline (a canonical line is at most
/// this long).
const READ_MAX: usize = tty::INPUT_MAX;

/// read(2) of the terminal: a line in canonical mode, else what VMIN asks for;
/// waits on the terminal's readers' queue (EAGAIN when non-blocking).
pub fn read<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    nonblock: bool,
    buf: UserSlice,
) -> Result<usize, Errno> {
    let console = tty::console().ok_or(ENXIO)?;
    if buf.is_empty() {
        return Ok(0);
    }
    background_check(sys, SIGTTIN)?;
    let mut chunk = alloc::vec::Vec::new();
    let size = buf.len().min(READ_MAX);
    chunk.try_reserve_exact(size).map_err(|_| ENOMEM)?;
    chunk.resize(size, 0);
    let queue = console.lock().readers().clone();
    sys.wait_until(
        |_| Ok(queue.clone()),
        |sys| {
            let read = console.lock().read(&mut chunk);
            match read {
                ReadResult::Data(n) => {
                    buf.write(&mut *sys.space()?, &chunk[..n])?;
                    Ok(Some(n))
                }
                ReadResult::Eof => Ok(Some(0)),
                ReadResult::WouldBlock if nonblock => Err(EAGAIN),
                ReadResult::WouldBlock => Ok(None),
            }
        },
    )
}

/// A process of a background group of the terminal's session that reads it (or,
/// with TOSTOP, writes it) gets `sig` (SIGTTIN, SIGTTOU) for its whole group and
/// the call is made again once the group is continued (ERESTARTSYS); if it
/// ignores or blocks the signal, a read is EIO, as Linux's
/// `__tty_check_change`.
fn background_check<A: FrameSource + Clone>(sys: &mut Sys<'_, A>, sig: i32) -> Result<(), Errno> {
    let console = tty::console().ok_or(ENXIO)?;
    let (fg, session) = {
        let tty = console.lock();
        (tty.foreground_pgid(), tty.session())
    };
    let p = sys.process()?;
    let (pgid, sid) = (p.job.pgid, p.job.sid);
    if session != sid.0 || fg == pgid.0 || fg == 0 {
        return Ok(());
    }
    let ignored = p.signals.lock().get(sig) == super::signal::SIG_IGN;
    let blocked = sys
        .table
        .thread(sys.tid)
        .is_some_and(|t| t.signal_mask & super::signal::bit(sig) != 0);
    if ignored || blocked {
        return Err(EIO);
    }
    let _ = signal_group(sys, pgid, SigInfo::kernel(sig));
    Err(ERESTARTSYS)
}

/// ioctl(2) on the terminal: see the module documentation.
pub fn ioctl<A: FrameSource + Clone>(
    sys: &mut Sys<'_, A>,
    request: usize,
    arg: usize,
) -> Result<usize, Errno> {
    let console = tty::console().ok_or(ENXIO)?;
    match request {
        TCGETS => {
            let bytes = console.lock().termios().to_bytes();
            UserSlice::new(arg, TERMIOS_SIZE).write(&mut *sys.space()?, &bytes)?;
        }
        TCSETS | TCSETSW | TCSETSF => {
            let mut bytes = [0u8; TERMIOS_SIZE];
            UserSlice::new(arg, TERMIOS_SIZE).read(&mut *sys.space()?, &mut bytes)?;
            let when = match request {
                TCSETS => SetWhen::Now,
                TCSETSW => SetWhen::Drain,
                _ => SetWhen::Flush,
            };
            console
                .lock()
                .set_termios(Termios::from_bytes(&bytes), when);
        }
        TIOCGWINSZ => {
            let bytes = console.lock().winsize().to_bytes();
            UserSlice::new(arg, WINSIZE_SIZE).write(&mut *sys.space()?, &bytes)?;
        }
        TIOCSWINSZ => {
            let mut bytes = [0u8; WINSIZE_SIZE];
            UserSlice::new(arg, WINSIZE_SIZE).read(&mut *sys.space()?, &mut bytes)?;
            let (signal, pgid) = {
                let mut tty = console.lock();
                (
                    tty.set_winsize(Winsize::from_bytes(&bytes)),
                    tty.foreground_pgid(),
                )
            };
            if let Some(signal) = signal {
                let _ = signal_group(sys, Pid(pgid), SigInfo::kernel(signal.number() as i32));
            }
        }
        TIOCGPGRP => {
            let pgid = console.lock().foreground_pgid();
            UserPtr::<u32>::new(arg).write(&mut *sys.space()?, &pgid)?;
        }
        TIOCSPGRP => {
            let pgid = UserPtr::<i32>::new(arg).read(&mut *sys.space()?)?;
            if pgid < 0 {
                return Err(EINVAL);
            }
            let sid = sys.process()?.job.sid;
            if console.lock().session() != sid.0 {
                return Err(ENOTTY);
            }
            let in_session = sys.table.processes().any(|p| {
                p.job.pgid.0 == pgid as u32 && p.job.sid == sid && p.state == ProcessState::Alive
            });
            if !in_session {
                return Err(EPERM);
            }
            console.lock().set_foreground_pgid(pgid as u32);
        }
        TIOCSCTTY => {
            let p = sys.process()?;
            let (pid, sid, pgid) = (p.pid, p.job.sid, p.job.pgid);
            if sid != pid {
                return Err(EPERM);
            }
            let mut tty = console.lock();
            tty.set_session(sid.0);
            tty.set_foreground_pgid(pgid.0);
        }
        TIOCNOTTY => {
            let p = sys.process()?;
            let (pid, sid) = (p.pid, p.job.sid);
            let mut tty = console.lock();
            if tty.session() != sid.0 {
                return Err(ENOTTY);
            }
            if sid == pid {
                tty.set_session(0);
                tty.set_foreground_pgid(0);
            }
        }
        TIOCGSID => {
            let sid = console.lock().session();
            if sid == 0 {
                return Err(ENOTTY);
            }
            UserPtr::<u32>::new(arg).write(&mut *sys.space()?, &sid)?;
        }
        FIONREAD => {
            let n = console.lock().ldisc().fionread() as u32;
            UserPtr::<u32>::new(arg).write(&mut *sys.space()?, &n)?;
        }
        TCFLSH => match arg {
            0 | 2 => console.lock().ldisc_mut().flush_input(),
            1 => {}
            _ => return Err(EINVAL),
        },
        TCSBRK | TCXONC => {}
        _ => return Err(ENOTTY),
    }
    Ok(0)
}

/// The console's signal hook: `signal` to every process of group `pgid` (the
/// terminal's foreground group), on the global tables. Called from the UART
/// interrupt, which cannot find the tables' locks held on its own CPU.
pub fn deliver_terminal_signal(pgid: u32, signal: Signal) {
    if pgid == 0 {
        return;
    }
    super::with_thread(crate::process::Tid(0), |sys| {
        let _ = signal_group(sys, Pid(pgid), SigInfo::kernel(signal.number() as i32));
    });
}

/// Makes the console the controlling terminal of session `sid`, with `sid`'s
/// group in the foreground (a `tty` boot gives it to init, as a getty would).
pub fn give_console_to(sid: Pid) {
    if let Some(console) = tty::console() {
        let mut tty = console.lock();
        tty.set_session(sid.0);
        tty.set_foreground_pgid(sid.0);
    }
}

//! Terminals: the [`Tty`] of the serial console and the pieces the fd layer needs
//! to serve it (read, write, poll, the termios/winsize/pgrp ioctls).
//!
//! * [`termios`]: Linux's `struct termios` / `struct winsize` and their defaults.
//! * [`ldisc`]: the line discipline (canonical and raw input, echo, signals).
//! * this module: [`Tty`] (a discipline plus window size, foreground process group,
//!   session and the readers' wait queue) and the global console terminal, fed by
//!   the UART receive interrupt through [`console_input`].
//!
//! ## Locks
//! [`console()`] is an [`IrqMutex`]: the UART interrupt takes it to feed a byte, so
//! it must never be held across a block. Under it the console's output lock is
//! taken (echo goes to the UART) and a wait queue's leaf lock (waking readers).
//! Order: console `Tty` -> UART output lock -> wait-queue locks. The signal hook is
//! called after the `Tty` lock is dropped.
#![deny(unsafe_code)]

pub mod ldisc;
pub mod termios;

#[cfg(test)]
mod tests;

pub use ldisc::{Effects, Ldisc, ReadResult, ReadTimer, Signal, Sink, Wake, INPUT_MAX};
pub use termios::{Termios, Winsize};

use crate::process::wait_queue::WaitQueue;
use crate::sync::IrqMutex;
use alloc::collections::TryReserveError;
use alloc::sync::Arc;

/// When new settings take effect (the three TCSETS ioctls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetWhen {
    /// TCSETS: now.
    Now,
    /// TCSETSW: after output drained (output is synchronous here, so now).
    Drain,
    /// TCSETSF: after output drained, and pending input is dropped.
    Flush,
}

/// One terminal: its line discipline and the state its ioctls read and set.
#[derive(Debug)]
pub struct Tty {
    ldisc: Ldisc,
    winsize: Winsize,
    /// Foreground process group (TIOCGPGRP/TIOCSPGRP); 0 while there is none.
    foreground_pgid: u32,
    /// Session the terminal controls (TIOCSCTTY); 0 while it is nobody's.
    session: u32,
    /// Readers blocked on empty input; woken when data becomes readable.
    readers: Arc<WaitQueue>,
}

impl Tty {
    /// A terminal with Linux's default settings and a 24x80 window.
    pub fn new() -> Result<Tty, TryReserveError> {
        Ok(Tty {
            ldisc: Ldisc::new()?,
            winsize: Winsize::default(),
            foreground_pgid: 0,
            session: 0,
            readers: Arc::new(WaitQueue::default()),
        })
    }

    /// Feeds one received byte; echo goes to `echo`, readers are woken if data
    /// became readable. The caller sends the returned signal (if any) to the
    /// foreground process group.
    pub fn receive(&mut self, byte: u8, echo: &mut impl Sink) -> Effects {
        let effects = self.ldisc.receive(byte, echo);
        if effects.wake == Wake::Readers {
            self.readers.wake_all();
        }
        effects
    }

    /// A read (see [`Ldisc::read`]).
    pub fn read(&mut self, out: &mut [u8]) -> ReadResult {
        self.ldisc.read(out)
    }

    /// A program's write, with output processing, to `out`.
    pub fn write(&mut self, input: &[u8], out: &mut impl Sink) {
        self.ldisc.write_processed(input, out);
    }

    /// The line discipline (FIONREAD, poll, VTIME timers).
    pub fn ldisc(&self) -> &Ldisc {
        &self.ldisc
    }

    /// The line discipline, mutably (flushes, timed-out reads).
    pub fn ldisc_mut(&mut self) -> &mut Ldisc {
        &mut self.ldisc
    }

    /// TCGETS.
    pub fn termios(&self) -> Termios {
        *self.ldisc.termios()
    }

    /// TCSETS / TCSETSW / TCSETSF. Readers are woken: a mode change may make input
    /// readable (the edited line, when canonical mode ends).
    pub fn set_termios(&mut self, termios: Termios, when: SetWhen) {
        if when == SetWhen::Flush {
            self.ldisc.flush_input();
        }
        self.ldisc.set_termios(termios);
        if self.ldisc.readable() {
            self.readers.wake_all();
        }
    }

    /// TIOCGWINSZ.
    pub fn winsize(&self) -> Winsize {
        self.winsize
    }

    /// TIOCSWINSZ: SIGWINCH is due to the foreground group if the size changed.
    pub fn set_winsize(&mut self, winsize: Winsize) -> Option<Signal> {
        let changed = winsize != self.winsize;
        self.winsize = winsize;
        changed.then_some(Signal::Winch)
    }

    /// TIOCGPGRP (0: none).
    pub fn foreground_pgid(&self) -> u32 {
        self.foreground_pgid
    }

    /// TIOCSPGRP (the caller checks the group is in the terminal's session).
    pub fn set_foreground_pgid(&mut self, pgid: u32) {
        self.foreground_pgid = pgid;
    }

    /// The controlling session (0: none).
    pub fn session(&self) -> u32 {
        self.session
    }

    /// TIOCSCTTY / the session leader's exit (0 detaches).
    pub fn set_session(&mut self, sid: u32) {
        self.session = sid;
    }

    /// The queue readers block on.
    pub fn readers(&self) -> &Arc<WaitQueue> {
        &self.readers
    }
}

/// The console terminal, made by [`init_console`].
static CONSOLE: spin::Once<IrqMutex<Tty>> = spin::Once::new();

/// Called with (foreground pgid, signal) when the console asks for a signal.
pub type SignalHook = fn(u32, Signal);

static SIGNAL_HOOK: IrqMutex<Option<SignalHook>> = IrqMutex::new(None);

/// Makes the console terminal (its buffers are reserved here, not in the interrupt)
/// and turns on the UART's receive interrupt. Idempotent.
pub fn init_console() -> Result<(), TryReserveError> {
    if CONSOLE.get().is_none() {
        let tty = Tty::new()?;
        CONSOLE.call_once(|| IrqMutex::new(tty));
    }
    crate::arch::console::enable_receive_interrupt();
    Ok(())
}

/// The console terminal, once [`init_console`] ran.
pub fn console() -> Option<&'static IrqMutex<Tty>> {
    CONSOLE.get()
}

/// Registers who sends the console's signal requests to process groups.
pub fn set_signal_hook(hook: SignalHook) {
    *SIGNAL_HOOK.lock() = Some(hook);
}

/// Echo of the console: straight to the UART, bytes as they are (the discipline
/// already did the output processing).
struct ConsoleEcho;

impl Sink for ConsoleEcho {
    fn put(&mut self, bytes: &[u8]) {
        crate::arch::console::write_raw(bytes);
    }
}

/// A program's write to the console terminal, with the terminal's output
/// processing (OPOST/ONLCR); before [`init_console`], the plain console write.
pub fn console_write(bytes: &[u8]) {
    match console() {
        Some(tty) => tty.lock().write(bytes, &mut ConsoleEcho),
        None => crate::arch::console::write_bytes(bytes),
    }
}

/// The UART receive interrupt's hook: feeds `bytes` to the console's discipline.
/// Allocation-free; bytes that come before [`init_console`] are dropped.
pub fn console_input(bytes: &[u8]) {
    let Some(tty) = console() else { return };
    for &b in bytes {
        let (effects, pgid) = {
            let mut tty = tty.lock();
            let effects = tty.receive(b, &mut ConsoleEcho);
            (effects, tty.foreground_pgid())
        };
        if let Some(signal) = effects.signal {
            let hook = *SIGNAL_HOOK.lock();
            if let Some(hook) = hook {
                hook(pgid, signal);
            }
        }
    }
}

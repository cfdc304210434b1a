//! Pseudo-terminals and non-blocking descriptors for a session's process:
//! `openpty`, the terminal ioctls, and reads and writes through tokio's
//! reactor on the master (or on plain pipes, for a non-interactive command).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::{OpenptyResult, Winsize, openpty};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The size a terminal has until the client says otherwise.
pub const INITIAL_COLS: u16 = 80;
pub const INITIAL_ROWS: u16 = 24;

nix::ioctl_write_ptr_bad!(set_window_size, nix::libc::TIOCSWINSZ, Winsize);
nix::ioctl_write_int_bad!(set_controlling_terminal, nix::libc::TIOCSCTTY);

fn winsize(cols: u16, rows: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Opens a pseudo-terminal of 80x24: its master (for the agent) and its
/// slave (for the child's standard streams).
pub fn open() -> io::Result<(OwnedFd, OwnedFd)> {
    let OpenptyResult { master, slave } =
        openpty(&winsize(INITIAL_COLS, INITIAL_ROWS), None).map_err(io::Error::from)?;
    close_on_exec(&master)?;
    close_on_exec(&slave)?;
    Ok((master, slave))
}

/// Makes the calling process's standard input, a terminal, its controlling
/// terminal. For `pre_exec`, after `setsid`: async-signal-safe.
pub fn take_controlling_terminal() -> io::Result<()> {
    // SAFETY: an ioctl on descriptor 0 with an integer argument.
    unsafe { set_controlling_terminal(0, 0) }
        .map(|_| ())
        .map_err(io::Error::from)
}

/// A descriptor read and written through the tokio reactor.
pub struct AsyncIo {
    fd: AsyncFd<OwnedFd>,
}

impl AsyncIo {
    /// Takes `fd` and makes it non-blocking.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        // SAFETY: an OwnedFd owned by the AsyncFd from here on: open, and
        // the same descriptor, until the AsyncFd drops it.
        let fd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::WRITABLE) }
                .map_err(io::Error::from)?;
        Ok(Self { fd })
    }

    /// Reads what is available, waiting for at least one byte. `Ok(0)`: the
    /// other side is closed (on a terminal master, Linux says EIO once
    /// every slave descriptor is closed: that is the end too).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| read_once(fd.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads what is available now without waiting (`Ok(None)`: nothing).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match read_once(self.fd.get_ref(), buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the terminal's size; the kernel sends the foreground process
    /// group SIGWINCH.
    pub fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        let size = winsize(cols, rows);
        // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which
        // lives for the call.
        unsafe { set_window_size(self.fd.get_ref().as_raw_fd(), &size) }
            .map(|_| ())
            .map_err(io::Error::from)
    }
}

fn read_once(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd.as_fd(), buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EIO) => return Ok(0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Keeps a descriptor from leaking into other processes the agent starts
/// (openpty does not set close-on-exec).
fn close_on_exec(fd: &OwnedFd) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(|_| ())
        .map_err(io::Error::from)
}

/// A pipe whose ends are closed on exec (the child gets them through its
/// standard streams only).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)
}

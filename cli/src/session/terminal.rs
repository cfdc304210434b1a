//! The local end of an interactive session: the terminal in raw mode,
//! standard input read on its own thread, window-size changes and stop
//! signals, and the loop that moves bytes between them and the channel.

use std::collections::VecDeque;
use std::io::{IsTerminal, Read, Write};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use steward_core::sessions::Body;
use steward_core::sessions::frames::MAX_PAYLOAD;
use steward_core::sessions::pump::{ChannelEnd, ChannelEnds, PumpError};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bytes read from standard input at once: a paste goes in few frames, a
/// keystroke in one, at once.
const READ_CHUNK: usize = 16 * 1024;
/// Chunks read ahead of the channel before reading waits.
const INPUT_AHEAD: usize = 16;
/// Bodies waiting for the channel before input is no longer read.
const MAX_PENDING: usize = 16;
/// How long the channel may take to acknowledge the agent's Close once the
/// session is over for this end.
const CLOSE_ACK_WAIT: std::time::Duration = steward_core::sessions::pump::CLOSE_GRACE;

/// What standard input gave.
#[derive(Debug)]
pub enum Input {
    Bytes(Vec<u8>),
    Eof,
    Failed(std::io::Error),
}

/// What the terminal and the process's signals ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Resize {
        cols: u16,
        rows: u16,
    },
    /// A signal asked this process to stop (its name).
    Stop(&'static str),
}

/// How the interaction ended, when it ended as a session may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The agent closed the session (its reason).
    AgentClosed(String),
    /// Standard input reached its end.
    InputEnded,
    /// A signal asked this process to stop (its name).
    Stopped(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum InteractError {
    #[error("cannot write the session's output: {0}")]
    Output(std::io::Error),
    #[error("cannot read standard input: {0}")]
    Input(std::io::Error),
    #[error("the session's channel failed: {0}")]
    Channel(#[from] PumpError),
    #[error("the session's channel ended without the agent closing the session ({0:?})")]
    Ended(ChannelEnd),
    #[error("the session's channel stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs the session until it ends: input and resizes go out, the agent's
/// output is written to `out` (flushed each time). `initial` is the window
/// size to send first (none when input is not a terminal).
pub async fn interact(
    ends: ChannelEnds,
    mut input: mpsc::Receiver<Input>,
    mut controls: mpsc::Receiver<Control>,
    initial: Option<(u16, u16)>,
    out: &mut (dyn Write + Send),
) -> Result<Finish, InteractError> {
    let ChannelEnds {
        outbound,
        mut inbound,
        mut task,
    } = ends;
    let mut pending: VecDeque<Body> = VecDeque::new();
    if let Some((cols, rows)) = initial {
        pending.push_back(Body::Resize { cols, rows });
    }
    let mut controls_open = true;
    loop {
        // Input is read only while the channel keeps up: a stalled channel
        // holds the typist back instead of buffering without bound.
        let read_input = pending.len() < MAX_PENDING;
        let step = tokio::select! {
            permit = outbound.reserve(), if !pending.is_empty() => match permit {
                Ok(permit) => {
                    if let Some(body) = pending.pop_front() {
                        permit.send(body);
                    }
                    continue;
                }
                // The pump stopped taking bodies: it ended.
                Err(_) => Step::ChannelGone,
            },
            got = input.recv(), if read_input => match got {
                Some(Input::Bytes(bytes)) => {
                    pending.push_back(Body::Data(bytes));
                    continue;
                }
                Some(Input::Eof) | None => return Ok(Finish::InputEnded),
                Some(Input::Failed(e)) => return Err(InteractError::Input(e)),
            },
            control = controls.recv(), if controls_open => match control {
                Some(Control::Resize { cols, rows }) => {
                    pending.push_back(Body::Resize { cols, rows });
                    continue;
                }
                Some(Control::Stop(signal)) => return Ok(Finish::Stopped(signal)),
                None => {
                    controls_open = false;
                    continue;
                }
            },
            body = inbound.recv() => match body {
                Some(Body::Data(bytes)) => {
                    out.write_all(&bytes).map_err(InteractError::Output)?;
                    out.flush().map_err(InteractError::Output)?;
                    continue;
                }
                Some(Body::Close { reason }) => Step::AgentClosed(reason),
                // Nothing else is for a shell's client (forwarded streams
                // are another kind of session).
                Some(_) => continue,
                None => Step::ChannelGone,
            },
        };
        return match step {
            Step::AgentClosed(reason) => {
                // Let the pump acknowledge the Close, so that the agent stops
                // resending it; it ends right after. Its outcome changes
                // nothing for this end: the session is over.
                drop(outbound);
                let _acknowledged = tokio::time::timeout(CLOSE_ACK_WAIT, &mut task).await;
                Ok(Finish::AgentClosed(reason))
            }
            Step::ChannelGone => match task.await? {
                Ok(ChannelEnd::ClosedByPeer(reason)) => Ok(Finish::AgentClosed(reason)),
                Ok(other) => Err(InteractError::Ended(other)),
                Err(e) => Err(InteractError::Channel(e)),
            },
        };
    }
}

/// What ends the loop once the select has let go of the channel's ends.
enum Step {
    AgentClosed(String),
    ChannelGone,
}

/// Set while raw mode is on, so that a panic restores the terminal.
static RAW: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// The process's terminal for the length of a session.
pub struct Terminal {
    raw: bool,
    input: Option<mpsc::Receiver<Input>>,
    controls: Option<mpsc::Receiver<Control>>,
    signals: JoinHandle<()>,
}

impl Terminal {
    /// Puts a terminal on standard input in raw mode (Ctrl-C, Ctrl-Z … become
    /// bytes for the node), starts reading standard input, and listens for
    /// resizes (on a terminal) and stop signals.
    pub fn open() -> std::io::Result<Self> {
        let interactive = std::io::stdin().is_terminal();
        let (controls_tx, controls) = mpsc::channel(8);
        let signals = listen(controls_tx, interactive)?;
        if interactive {
            PANIC_HOOK.call_once(|| {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    if RAW.swap(false, Ordering::SeqCst) {
                        // Best effort on the way down: the panic is what gets reported.
                        let _restored = crossterm::terminal::disable_raw_mode();
                    }
                    previous(info);
                }));
            });
            crossterm::terminal::enable_raw_mode()?;
            RAW.store(true, Ordering::SeqCst);
        }
        Ok(Self {
            raw: interactive,
            input: Some(read_stdin()),
            controls: Some(controls),
            signals,
        })
    }

    /// The window's size (columns, rows), when input is a terminal.
    pub fn size(&self) -> Option<(u16, u16)> {
        if self.raw {
            crossterm::terminal::size().ok()
        } else {
            None
        }
    }

    pub fn take_input(&mut self) -> mpsc::Receiver<Input> {
        self.input.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    pub fn take_controls(&mut self) -> mpsc::Receiver<Control> {
        self.controls.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    /// Gives the terminal back as it was.
    pub fn restore(mut self) -> std::io::Result<()> {
        self.restore_now()
    }

    fn restore_now(&mut self) -> std::io::Result<()> {
        self.signals.abort();
        if self.raw {
            self.raw = false;
            RAW.store(false, Ordering::SeqCst);
            crossterm::terminal::disable_raw_mode()?;
        }
        Ok(())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // On the paths that did not call `restore` (an early return): the
        // error has nowhere to go but the terminal it concerns.
        if let Err(e) = self.restore_now() {
            eprintln!("steward: cannot restore the terminal: {e}");
        }
    }
}

/// Reads standard input on a thread of its own: a blocking read cannot be
/// cancelled, and the process must be able to exit while one waits.
fn read_stdin() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(INPUT_AHEAD);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; READ_CHUNK.min(MAX_PAYLOAD)];
        loop {
            let event = match stdin.read(&mut buf) {
                Ok(0) => Input::Eof,
                Ok(n) => Input::Bytes(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Input::Failed(e),
            };
            let last = !matches!(event, Input::Bytes(_));
            if tx.blocking_send(event).is_err() || last {
                return;
            }
        }
    });
    rx
}

/// Window changes (on a terminal) and the signals that end the session.
fn listen(tx: mpsc::Sender<Control>, resizes: bool) -> std::io::Result<JoinHandle<()>> {
    let mut winch = if resizes {
        Some(signal(SignalKind::window_change())?)
    } else {
        None
    };
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // Only `kill -INT` or a script sends it: in raw mode, Ctrl-C is a byte.
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                Some(()) = async { match winch.as_mut() {
                    Some(w) => w.recv().await,
                    None => std::future::pending().await,
                } } => match crossterm::terminal::size() {
                    Ok((cols, rows)) => Control::Resize { cols, rows },
                    // No size to tell: the agent keeps the last one.
                    Err(_) => continue,
                },
                Some(()) = term.recv() => Control::Stop("SIGTERM"),
                Some(()) = hangup.recv() => Control::Stop("SIGHUP"),
                Some(()) = interrupt.recv() => Control::Stop("SIGINT"),
                else => return,
            };
            if tx.send(control).await.is_err() {
                return;
            }
        }
    }))
}

//! Bounds for every wait in the agent's tests: a wait whose condition never
//! comes true fails, naming what it waited for, instead of hanging the run.
//! The bound is a hang guard, not a timing check: it is far above what any
//! wait needs.
//!
//! Shared by the unit tests (`src/lib.rs` includes this file) and the
//! integration tests (`mod support;`); each uses only part of it.
#![allow(dead_code)]

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long one wait may take. The waits need milliseconds (a local process
/// starting, a file appearing) to a few seconds (a round trip through the
/// local stack), even on a loaded two-core machine; only a hang reaches this.
pub const LIMIT: Duration = Duration::from_secs(60);

/// How often a condition is looked at again.
const POLL: Duration = Duration::from_millis(20);

/// A wait that reached its limit. Its `Debug` is the message, so that
/// `.unwrap()` fails with it.
pub struct TimedOut {
    what: String,
    limit: Duration,
}

impl TimedOut {
    fn new(what: &str, limit: Duration) -> Self {
        Self {
            what: what.to_string(),
            limit,
        }
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gave up after {:?} waiting for {}",
            self.limit, self.what
        )
    }
}

impl fmt::Debug for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TimedOut {}

/// Polls `ready` until it holds, or `limit` has passed.
pub async fn wait_until(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), TimedOut> {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() >= deadline {
            return Err(TimedOut::new(what, limit));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Waits until the file at `path` holds something (a process has started
/// writing it).
pub async fn written(path: &Path, limit: Duration) -> Result<(), TimedOut> {
    let what = format!("{} to be written", path.display());
    wait_until(&what, limit, || {
        std::fs::read(path).is_ok_and(|bytes| !bytes.is_empty())
    })
    .await
}

/// `fut`'s output, if it comes within `limit`.
pub async fn within<F: Future>(what: &str, limit: Duration, fut: F) -> Result<F::Output, TimedOut> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| TimedOut::new(what, limit))
}

/// Blocking work on its own thread, to be waited for with a bound.
pub struct OnThread<T> {
    answer: mpsc::Receiver<T>,
    thread: thread::JoinHandle<()>,
}

/// Starts `work` on a thread of its own.
pub fn on_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> OnThread<T> {
    let (tx, answer) = mpsc::channel();
    let thread = thread::spawn(move || {
        let _ = tx.send(work());
    });
    OnThread { answer, thread }
}

impl<T> OnThread<T> {
    /// The work's result, if it finishes within `limit` (a panic in it is
    /// raised here). A thread that overran is left behind.
    pub fn wait(self, what: &str, limit: Duration) -> Result<T, TimedOut> {
        match self.answer.recv_timeout(limit) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Timeout) => Err(TimedOut::new(what, limit)),
            Err(RecvTimeoutError::Disconnected) => match self.thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the thread ended without sending its answer"),
            },
        }
    }
}

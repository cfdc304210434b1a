//! One shutdown signal that every loop of the agent watches. It is a
//! `watch` channel underneath: a loop that starts after the signal sees it
//! at once, and a dropped trigger counts as a shutdown (nothing could ever
//! ask for one again).

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// What a loop holds to learn that the agent is stopping. Cheap to clone:
/// each task takes its own.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// What asks for the shutdown.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// A shutdown asked for on SIGTERM or SIGINT.
    pub fn on_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (trigger, shutdown) = Self::new();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
            trigger.trigger();
        });
        Ok(shutdown)
    }

    /// Whether the shutdown was asked for already.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the shutdown is asked for.
    pub async fn requested(&mut self) {
        // An error means the trigger is gone: that stops the agent too.
        let _ = self.0.wait_for(|s| *s).await;
    }

    /// Runs `work` unless the shutdown comes first (then `None`).
    pub async fn or<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::select! {
            out = work => Some(out),
            _ = self.requested() => None,
        }
    }

    /// Sleeps for `delay`; false when the shutdown cut it short.
    pub async fn sleep(&mut self, delay: Duration) -> bool {
        self.or(tokio::time::sleep(delay)).await.is_some()
    }
}

/// A plain `watch` receiver of "stop now" works as a shutdown too.
impl From<watch::Receiver<bool>> for Shutdown {
    fn from(rx: watch::Receiver<bool>) -> Self {
        Shutdown(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::{LIMIT, within};

    #[tokio::test]
    async fn a_sleep_is_cut_short_and_a_later_wait_sees_the_signal() {
        let (trigger, mut shutdown) = Shutdown::new();
        assert!(!shutdown.is_requested());
        assert!(shutdown.sleep(Duration::from_millis(1)).await);
        trigger.trigger();
        assert!(shutdown.is_requested());
        let cut = shutdown.sleep(Duration::from_secs(600));
        let slept = within("the signalled sleep to end", LIMIT, cut).await;
        assert!(!slept.unwrap());
        let forever = shutdown.or(std::future::pending::<()>());
        let waited = within("the signalled wait to end", LIMIT, forever).await;
        assert_eq!(waited.unwrap(), None);
    }

    #[tokio::test]
    async fn a_dropped_trigger_stops_the_waiters() {
        let (trigger, mut shutdown) = Shutdown::new();
        drop(trigger);
        let cut = shutdown.sleep(Duration::from_secs(600));
        let slept = within("the sleep to end when its trigger is dropped", LIMIT, cut).await;
        assert!(!slept.unwrap());
    }
}

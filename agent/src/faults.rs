//! Crash points for the fault suite (`make test-faults`): with
//! `STEWARD_AGENT_CRASH_AT=<point>` in its environment the agent kills
//! itself with SIGKILL the first time it passes that point, exactly as
//! `kill -9` from outside would, but at a known place rather than a moment
//! a test has to guess. Without the variable each point is one comparison.

use std::sync::OnceLock;

/// The environment variable that arms one crash point.
pub const VARIABLE: &str = "STEWARD_AGENT_CRASH_AT";

/// Where an invocation's life can be cut, in the order it passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// A node-queue message received, nothing verified or written yet.
    AfterReceive,
    /// The message journaled (and acted on), not yet deleted from the queue.
    AfterJournal,
    /// A command's final report spooled, the command not yet journaled
    /// Finished.
    AfterFinalSpooled,
    /// A report accepted by the ingest queue, not yet removed from the spool.
    AfterSendBeforeRemove,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 4] = [
        CrashPoint::AfterReceive,
        CrashPoint::AfterJournal,
        CrashPoint::AfterFinalSpooled,
        CrashPoint::AfterSendBeforeRemove,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterReceive => "after-receive",
            CrashPoint::AfterJournal => "after-journal",
            CrashPoint::AfterFinalSpooled => "after-final-spooled",
            CrashPoint::AfterSendBeforeRemove => "after-send-before-remove",
        }
    }

    fn parse(name: &str) -> Option<CrashPoint> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

static ARMED: OnceLock<Option<CrashPoint>> = OnceLock::new();

/// Reads the variable once. An unknown point is an error, so that a typo
/// in a fault scenario fails loudly instead of never crashing.
pub fn arm_from_env() -> Result<Option<CrashPoint>, String> {
    let armed = match std::env::var(VARIABLE) {
        Ok(name) if !name.is_empty() => Some(CrashPoint::parse(&name).ok_or_else(|| {
            let known: Vec<_> = CrashPoint::ALL.iter().map(|p| p.name()).collect();
            format!(
                "{VARIABLE}={name} names no crash point; use one of {}",
                known.join(", ")
            )
        })?),
        _ => None,
    };
    Ok(*ARMED.get_or_init(|| armed))
}

/// Dies here when this point is armed.
pub fn crash_point(point: CrashPoint) {
    if ARMED.get().copied().flatten() == Some(point) {
        tracing::warn!(
            point = point.name(),
            "crash point reached: killing the agent"
        );
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_parses_back_from_its_name() {
        for p in CrashPoint::ALL {
            assert_eq!(CrashPoint::parse(p.name()), Some(p));
        }
        assert_eq!(CrashPoint::parse("after-lunch"), None);
    }
}

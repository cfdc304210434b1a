//! The control plane's time as this node sees it: the local clock plus an
//! offset learned from the API's answers (their HTTP `Date`), as SSM's agent
//! corrects for clock skew with the service's time. Everything the agent
//! signs for the control plane, or checks against times the control plane
//! wrote, uses it: a node whose clock is minutes off still gets credentials,
//! accepts its commands and reports in the control plane's time, while the
//! control plane keeps its narrow windows against replay.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use steward_core::clock::now_epoch;

/// An offset this small is noise (`Date` has whole seconds and the answer
/// took some time to arrive): the clocks count as in sync.
pub const TOLERANCE_SECONDS: f64 = 2.0;
/// Past this, the agent warns (once) that the node's clock is off.
pub const WARN_SECONDS: f64 = 60.0;

/// The offset of the control plane's clock from the local one.
#[derive(Debug)]
pub struct ServerClock {
    offset_ms: AtomicI64,
    warned: AtomicBool,
}

impl Default for ServerClock {
    fn default() -> Self {
        Self::new()
    }
}

/// The agent's one clock (every part of the agent shares what any API
/// answer taught).
pub static SERVER: ServerClock = ServerClock::new();

/// The control plane's time now, as well as this node knows it.
pub fn server_now() -> f64 {
    SERVER.now()
}

impl ServerClock {
    pub const fn new() -> Self {
        Self {
            offset_ms: AtomicI64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// Seconds to add to the local clock to get the control plane's.
    pub fn offset(&self) -> f64 {
        self.offset_ms.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// The control plane's time for a local clock reading.
    pub fn corrected(&self, local: f64) -> f64 {
        local + self.offset()
    }

    pub fn now(&self) -> f64 {
        self.corrected(now_epoch())
    }

    /// Learns from an answer whose `Date` said `server` (whole seconds)
    /// and that was asked at local time `sent` and arrived at `received`.
    /// Returns whether the offset changed.
    pub fn observe(&self, server: f64, sent: f64, received: f64) -> bool {
        // `Date` is truncated to the second: the server's time was in
        // [server, server + 1) somewhere between sending and receiving.
        let estimate = (server + 0.5) - (sent + received) / 2.0;
        // A slow answer (a loaded control plane) says little more: the
        // server's moment may be anywhere in the round trip.
        let uncertainty = TOLERANCE_SECONDS + (received - sent).max(0.0) / 2.0;
        let current = self.offset();
        if (estimate - current).abs() <= uncertainty {
            return false;
        }
        let next = if estimate.abs() <= uncertainty {
            0.0
        } else {
            estimate
        };
        self.offset_ms
            .store((next * 1000.0).round() as i64, Ordering::Relaxed);
        if next.abs() > WARN_SECONDS && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                offset_seconds = next.round() as i64,
                "this node's clock differs from the control plane's by {} seconds ({}); the agent uses the control plane's time for what it signs and checks, but synchronize the node's clock (NTP)",
                next.abs().round() as i64,
                if next > 0.0 {
                    "the node is behind"
                } else {
                    "the node is ahead"
                },
            );
        } else {
            tracing::info!(
                offset_seconds = next,
                "clock offset from the control plane updated"
            );
        }
        true
    }

    /// Learns from an answer's HTTP `Date` header (IMF-fixdate), if it has
    /// a readable one.
    pub fn observe_date_header(&self, date: Option<&str>, sent: f64, received: f64) -> bool {
        match date.and_then(parse_http_date) {
            Some(server) => self.observe(server, sent, received),
            None => false,
        }
    }
}

/// `Tue, 01 Dec 2026 21:30:36 GMT` → epoch seconds.
pub fn parse_http_date(date: &str) -> Option<f64> {
    aws_smithy_types::DateTime::from_str(date, aws_smithy_types::date_time::Format::HttpDate)
        .ok()
        .map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_read() {
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:01:40 GMT"),
            Some(100.0)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn a_node_ahead_learns_a_negative_offset() {
        let c = ServerClock::new();
        // Asked at local 1600, answered at local 1601; the server said 1000.
        assert!(c.observe(1000.0, 1600.0, 1601.0));
        assert_eq!(c.offset(), -600.0);
        assert_eq!(c.corrected(1700.0), 1100.0);
        assert!(c.warned.load(Ordering::Relaxed));
    }

    #[test]
    fn a_node_behind_learns_a_positive_offset() {
        let c = ServerClock::new();
        assert!(c.observe(1600.0, 1000.0, 1000.0));
        assert_eq!(c.offset(), 600.5);
    }

    #[test]
    fn whole_second_noise_changes_nothing() {
        let c = ServerClock::new();
        // A node in sync: the truncated Date is up to a second behind.
        assert!(!c.observe(1000.0, 1000.9, 1001.0));
        assert!(!c.observe(1001.0, 1000.0, 1000.2));
        assert_eq!(c.offset(), 0.0);
        assert!(!c.warned.load(Ordering::Relaxed));
        // Skewed, then the same skew again (with noise): kept as it was.
        assert!(c.observe(1600.0, 1000.0, 1000.0));
        assert!(!c.observe(1601.0, 1001.0, 1001.0));
        assert_eq!(c.offset(), 600.5);
        // The clock is fixed (NTP caught up): back to none.
        assert!(c.observe(2000.0, 2000.0, 2000.2));
        assert_eq!(c.offset(), 0.0);
    }

    #[test]
    fn a_slow_answer_from_a_clock_in_sync_changes_nothing() {
        let c = ServerClock::new();
        // Asked at 1000, answered at 1005, stamped at the end: in sync.
        assert!(!c.observe(1005.0, 1000.0, 1005.0));
        assert_eq!(c.offset(), 0.0);
        // A skew larger than the round trip is still learnt.
        assert!(c.observe(1605.0, 1000.0, 1005.0));
        assert_eq!(c.offset(), 603.0);
    }

    #[test]
    fn a_small_offset_is_used_without_a_warning() {
        let c = ServerClock::new();
        assert!(c.observe(1010.0, 1000.0, 1000.0));
        assert_eq!(c.offset(), 10.5);
        assert!(!c.warned.load(Ordering::Relaxed));
    }

    #[test]
    fn unreadable_dates_teach_nothing() {
        let c = ServerClock::new();
        assert!(!c.observe_date_header(None, 0.0, 0.0));
        assert!(!c.observe_date_header(Some("soon"), 0.0, 0.0));
        assert_eq!(c.offset(), 0.0);
    }
}

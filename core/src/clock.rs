//! Time as SSM's wire format carries it: epoch seconds, fractional.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, with millisecond precision as SSM reports them.
pub fn now_epoch() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

//! Heartbeats and the PingStatus they decide.

use crate::channel::Heartbeat;
use crate::error::SsmError;

use crate::fleet::FleetContext;
use crate::fleet::node::PingStatus;

/// Applies a heartbeat; `false` when the node is unknown.
pub async fn heartbeat(
    ctx: &FleetContext<'_>,
    instance_id: &str,
    hb: &Heartbeat,
    at: f64,
) -> Result<bool, SsmError> {
    ctx.nodes.record_heartbeat(instance_id, hb, at).await
}

/// `PingStatus` helper re-exported for callers that only have a timestamp.
pub fn ping_status(last_ping: f64, now: f64, lost_after: u64) -> PingStatus {
    PingStatus::of(last_ping, now, lost_after)
}

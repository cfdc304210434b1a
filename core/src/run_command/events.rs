//! Run Command's events, shaped as SSM's on EventBridge (source `steward.ssm`).

use serde_json::json;

use super::model::{Command, Invocation};
use crate::clock::iso8601_seconds;
use crate::events::Event;

pub const COMMAND_STATUS_CHANGE: &str = "EC2 Command Status-change Notification";
pub const INVOCATION_STATUS_CHANGE: &str = "EC2 Command Invocation Status-change Notification";

pub fn command_status_changed(c: &Command) -> Event {
    Event {
        detail_type: COMMAND_STATUS_CHANGE,
        resources: c.resolved_instance_ids.clone(),
        detail: json!({
            "command-id": c.command_id,
            "document-name": c.document_name,
            "expire-after": iso8601_seconds(c.expires_after),
            "parameters": c.parameters,
            "requested-date-time": iso8601_seconds(c.requested_date_time),
            "status": c.status,
        }),
    }
}

pub fn invocation_status_changed(inv: &Invocation) -> Event {
    Event {
        detail_type: INVOCATION_STATUS_CHANGE,
        resources: vec![inv.instance_id.clone()],
        detail: json!({
            "command-id": inv.command_id,
            "document-name": inv.document_name,
            "instance-id": inv.instance_id,
            "requested-date-time": iso8601_seconds(inv.requested_date_time),
            "status": inv.status_details.status().as_str(),
        }),
    }
}

/// The event a change of a command's record makes, as its table's stream
/// tells it: one when the command is created, and one each time its
/// status or status details change. Counters and other fields make none.
pub fn of_command_change(old: Option<&Command>, new: Option<&Command>) -> Option<Event> {
    let new = new?;
    let changed = old.is_none_or(|old| {
        (old.status.as_str(), old.status_details.as_str())
            != (new.status.as_str(), new.status_details.as_str())
    });
    changed.then(|| command_status_changed(new))
}

/// The event a change of an invocation's record makes: one each time its
/// status details change, and one for an invocation created already past
/// `Pending` (closed at its release). A `Pending` creation makes none, as
/// the command's own event tells of it.
pub fn of_invocation_change(old: Option<&Invocation>, new: Option<&Invocation>) -> Option<Event> {
    let new = new?;
    let changed = match old {
        Some(old) => old.status_details != new.status_details,
        None => new.status_details != super::status::InvocationDetail::Pending,
    };
    changed.then(|| invocation_status_changed(new))
}

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

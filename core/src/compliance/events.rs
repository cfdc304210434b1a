//! The event a change of a resource's compliance status publishes, with
//! SSM's detail-type and detail fields (SSM's patch events carry the
//! baseline and severity; its others, the time of the run).

use serde_json::json;

use super::model::{ComplianceRecord, Severity, Status};
use crate::clock::iso8601_seconds;
use crate::events::Event;

pub const COMPLIANCE_STATE_CHANGE: &str = "Configuration Compliance State Change";

/// A resource's status for one compliance type changed (or was first set).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub resource_id: String,
    pub compliance_type: String,
    /// `None`: the resource had no compliance of this type before.
    pub previous: Option<Status>,
    pub status: Status,
    pub overall_severity: Severity,
    /// The put's ExecutionTime.
    pub execution_time: f64,
    /// A Patch put's baseline, from its items' `PatchBaselineId` detail.
    pub patch_baseline_id: Option<String>,
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Compliant => "compliant",
        Status::NonCompliant => "non_compliant",
    }
}

/// The status change a write of a record makes, if any: the record's
/// status for its type differs from before (or was not set before).
pub fn status_change(
    prev: Option<&ComplianceRecord>,
    next: &ComplianceRecord,
) -> Option<StatusChange> {
    let before = prev.map(|p| p.summary().summary.status);
    let after = next.summary().summary;
    if before == Some(after.status) {
        return None;
    }
    Some(StatusChange {
        resource_id: next.resource_id.clone(),
        compliance_type: next.compliance_type.clone(),
        previous: before,
        status: after.status,
        overall_severity: after.overall_severity,
        execution_time: next.execution.execution_time,
        patch_baseline_id: next
            .items
            .iter()
            .find_map(|i| i.entry.details.get("PatchBaselineId").cloned()),
    })
}

/// The event a change of a record makes, as its table's stream tells it
/// (a record is never deleted but with its node, which makes none).
pub fn of_compliance_change(
    old: Option<&ComplianceRecord>,
    new: Option<&ComplianceRecord>,
) -> Option<Event> {
    status_change(old, new?).map(|c| status_changed(&c))
}

pub fn status_changed(c: &StatusChange) -> Event {
    let detail = if c.compliance_type == "Patch" {
        json!({
            "resource-type": "managed-instance",
            "resource-id": c.resource_id,
            "compliance-status": status_word(c.status),
            "compliance-type": c.compliance_type,
            "patch-baseline-id": c.patch_baseline_id.clone().unwrap_or_default(),
            "severity": c.overall_severity.as_str().to_ascii_lowercase(),
        })
    } else {
        json!({
            "last-runtime": iso8601_seconds(c.execution_time),
            "compliance-status": status_word(c.status),
            "resource-type": "managed-instance",
            "resource-id": c.resource_id,
            "compliance-type": c.compliance_type,
        })
    };
    Event {
        detail_type: COMPLIANCE_STATE_CHANGE,
        resources: vec![c.resource_id.clone()],
        detail,
    }
}

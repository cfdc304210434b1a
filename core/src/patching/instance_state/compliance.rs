//! A node's Patch compliance, written from its patch report once the whole
//! report is in: one item per patch the baseline speaks to (every state but
//! InstalledOther), NON_COMPLIANT for those that count against it, through
//! the same write as PutComplianceItems (so the status change event is
//! published the same way). The item's severity is the compliance level of
//! the baseline rule that approved the patch.

use std::collections::BTreeMap;

use super::{InstancePatchState, PatchStateStore};
use crate::compliance::context::ComplianceContext;
use crate::compliance::put::MAX_ITEMS_BYTES;
use crate::compliance::{
    ComplianceWrite, ExecutionSummary, ItemEntry, Severity, Status, StatusChange, UploadType,
    put_items,
};
use crate::error::SsmError;
use crate::patching::baseline::ComplianceLevel;
use crate::patching::report::{PatchEntry, PatchState};

pub const PATCH: &str = "Patch";

fn severity(level: Option<ComplianceLevel>) -> Severity {
    match level.unwrap_or_default() {
        ComplianceLevel::Critical => Severity::Critical,
        ComplianceLevel::High => Severity::High,
        ComplianceLevel::Medium => Severity::Medium,
        ComplianceLevel::Low => Severity::Low,
        ComplianceLevel::Informational => Severity::Informational,
        ComplianceLevel::Unspecified => Severity::Unspecified,
    }
}

fn item(state: &InstancePatchState, p: &PatchEntry) -> ItemEntry {
    let mut details = BTreeMap::from([
        ("Classification".to_string(), p.classification.clone()),
        ("PatchSeverity".to_string(), p.severity.clone()),
        ("PatchState".to_string(), p.state.as_str().to_string()),
        ("PatchBaselineId".to_string(), state.baseline_id.clone()),
    ]);
    if let Some(group) = &state.patch_group {
        details.insert("PatchGroup".into(), group.clone());
    }
    if let Some(t) = p.installed_time {
        details.insert("InstalledTime".into(), format!("{t:.0}"));
    }
    ItemEntry {
        id: p.kb_id.clone(),
        title: p.title.clone(),
        severity: severity(p.compliance_level),
        status: if p.state.is_non_compliant() {
            Status::NonCompliant
        } else {
            Status::Compliant
        },
        details,
    }
}

/// The compliance put of a whole report. Non-compliant patches come first,
/// so that if a node's list is longer than one put holds (it rarely is:
/// InstalledOther packages are left out) what is cut is compliant.
pub fn patch_compliance(
    instance_id: &str,
    state: &InstancePatchState,
    patches: &[PatchEntry],
) -> ComplianceWrite {
    let mut governed: Vec<&PatchEntry> = patches
        .iter()
        .filter(|p| p.state != PatchState::InstalledOther)
        .collect();
    governed.sort_by_key(|p| !p.state.is_non_compliant());
    // Leave room for the record's own fields under the put's limit.
    let budget = MAX_ITEMS_BYTES * 9 / 10;
    let mut used = 0;
    let mut items = Vec::with_capacity(governed.len());
    for p in governed {
        let entry = item(state, p);
        used += serde_json::to_string(&entry).map_or(0, |s| s.len());
        if used > budget {
            tracing::warn!(
                %instance_id,
                kept = items.len(),
                "patch compliance cut to what one put holds; the rest are compliant"
            );
            break;
        }
        items.push(entry);
    }
    ComplianceWrite {
        resource_id: instance_id.to_string(),
        resource_type: crate::compliance::model::MANAGED_INSTANCE.to_string(),
        compliance_type: PATCH.to_string(),
        execution: ExecutionSummary {
            execution_time: state.operation_end_time,
            execution_id: Some(state.snapshot_id.clone()),
            execution_type: Some("Command".to_string()),
        },
        items,
        // The snapshot is the content: a part delivered again puts nothing.
        item_content_hash: Some(format!("{}/{}", state.snapshot_id, state.parts)),
        upload_type: UploadType::Complete,
    }
}

/// Writes the node's Patch compliance if its current snapshot is
/// `snapshot_id` and every part of it has arrived; `Ok(None)` otherwise, or
/// when the status did not change. `current`: the node's state when the
/// caller has just written it (else it is read).
pub async fn write_when_complete(
    states: &dyn PatchStateStore,
    compliance: &ComplianceContext<'_>,
    instance_id: &str,
    snapshot_id: &str,
    current: Option<&InstancePatchState>,
) -> Result<Option<StatusChange>, SsmError> {
    let read;
    let state = match current {
        Some(s) => s,
        None => match states.get(instance_id).await? {
            Some(s) => {
                read = s;
                &read
            }
            None => return Ok(None),
        },
    };
    if state.snapshot_id != snapshot_id {
        return Ok(None);
    }
    let patches = states.patches(instance_id, snapshot_id).await?;
    if patches.len() as u64 != state.counts.total() {
        // More parts to come; the last one writes.
        return Ok(None);
    }
    put_items(compliance, patch_compliance(instance_id, state, &patches)).await
}

//! Each node's patch state, as its agent's reports write it: SSM's
//! InstancePatchState (the summary of the node's latest Scan or Install)
//! and the patches of that operation, read by DescribeInstancePatchStates,
//! DescribeInstancePatches and the patch-group views.
//!
//! The agent sends a report in parts ([`super::report`]); each part is kept
//! as one record under its snapshot, and the node's state moves to a
//! snapshot only when that operation ended later than the one it holds. A
//! redelivered or late part therefore changes nothing it should not.

pub mod compliance;
pub mod describe;
pub mod ingest;
pub mod memory;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::report::{PatchCounts, PatchEntry, PatchReport};
use super::step::{PatchOperation, RebootOption};
use crate::error::SsmError;

/// A node's patch state: the summary of its latest operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancePatchState {
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_group: Option<String>,
    pub baseline_id: String,
    pub snapshot_id: String,
    pub command_id: String,
    pub operation: PatchOperation,
    pub reboot_option: RebootOption,
    pub operation_start_time: f64,
    pub operation_end_time: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_no_reboot_install_operation_time: Option<f64>,
    pub counts: PatchCounts,
    /// How many parts the snapshot's patch list comes in.
    pub parts: u32,
}

impl InstancePatchState {
    pub fn from_report(instance_id: &str, report: &PatchReport) -> Self {
        InstancePatchState {
            instance_id: instance_id.to_string(),
            patch_group: report.patch_group.clone(),
            baseline_id: report.baseline_id.clone(),
            snapshot_id: report.snapshot_id.clone(),
            command_id: report.command_id.clone(),
            operation: report.operation,
            reboot_option: report.reboot_option,
            operation_start_time: report.operation_start_time,
            operation_end_time: report.operation_end_time,
            last_no_reboot_install_operation_time: report.last_no_reboot_install_operation_time,
            counts: report.counts,
            parts: report.parts,
        }
    }

    /// Whether this state replaces `current`: a later operation does; the
    /// same operation (a redelivered part) does not.
    pub fn supersedes(&self, current: &InstancePatchState) -> bool {
        (self.operation_end_time, &self.snapshot_id)
            > (current.operation_end_time, &current.snapshot_id)
    }
}

/// Where patch states and the parts of their patch lists are kept.
#[async_trait]
pub trait PatchStateStore: Send + Sync {
    /// Keeps one part's patches under (node, snapshot, part). Writing the
    /// same part again changes nothing.
    async fn put_part(
        &self,
        instance_id: &str,
        snapshot_id: &str,
        part: u32,
        patches: &[PatchEntry],
    ) -> Result<(), SsmError>;
    /// Writes `state` as the node's, only if the node has none or
    /// `state.supersedes` it (a conditional write). Returns the state it
    /// replaced, `Ok(None)` with `replaced == false` when the write lost.
    async fn adopt(&self, state: &InstancePatchState) -> Result<Adopted, SsmError>;
    async fn get(&self, instance_id: &str) -> Result<Option<InstancePatchState>, SsmError>;
    /// The states of the nodes in a patch group.
    async fn in_group(&self, patch_group: &str) -> Result<Vec<InstancePatchState>, SsmError>;
    /// A snapshot's patches, all parts received so far, in part order.
    async fn patches(
        &self,
        instance_id: &str,
        snapshot_id: &str,
    ) -> Result<Vec<PatchEntry>, SsmError>;
}

/// What [`PatchStateStore::adopt`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Adopted {
    /// The node's state is now the given one; it replaced this (if any).
    Replaced(Option<InstancePatchState>),
    /// The node already holds this or a later operation.
    Kept,
}

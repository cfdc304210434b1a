//! What an `aws:runPatchBaseline` step carries to the node: the operation,
//! the reboot option and the node's own baseline, resolved by the control
//! plane when the command is dispatched (a node's patch group comes from its
//! tags, which only the control plane knows). The baseline travels in
//! CreatePatchBaseline's shape, so the agent checks it with the same code
//! the API uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The plugin `AWS-RunPatchBaseline` runs.
pub const RUN_PATCH_BASELINE: &str = "aws:runPatchBaseline";

/// `Operation`: Scan reports; Install installs the approved updates, then reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PatchOperation {
    Scan,
    Install,
}

impl PatchOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOperation::Scan => "Scan",
            PatchOperation::Install => "Install",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Scan" => Some(PatchOperation::Scan),
            "Install" => Some(PatchOperation::Install),
            _ => None,
        }
    }
}

/// `RebootOption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RebootOption {
    RebootIfNeeded,
    NoReboot,
}

impl RebootOption {
    pub fn as_str(self) -> &'static str {
        match self {
            RebootOption::RebootIfNeeded => "RebootIfNeeded",
            RebootOption::NoReboot => "NoReboot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RebootIfNeeded" => Some(RebootOption::RebootIfNeeded),
            "NoReboot" => Some(RebootOption::NoReboot),
            _ => None,
        }
    }
}

/// The inputs of one `aws:runPatchBaseline` step, as signed into the
/// RunCommand message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchStepInput {
    pub operation: PatchOperation,
    pub reboot_option: RebootOption,
    /// The baseline's id (`pb-…`), reported back with the result.
    pub baseline_id: String,
    /// The baseline in CreatePatchBaseline's shape.
    pub baseline: Value,
    /// The node's patch group, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_group: Option<String>,
    /// Identifies this operation's result (SSM's SnapshotId): the command
    /// id, so a redelivered step reports under the same snapshot.
    pub snapshot_id: String,
}

//! `aws:runPatchBaseline` steps (what `AWS-RunPatchBaseline` runs): their
//! inputs, `Operation`, `RebootOption` and `SnapshotId`, checked as written
//! and once interpolated. The node's baseline is not an input: the control
//! plane adds it at dispatch, from the node's patch group
//! ([`crate::patching::step::PatchStepInput`]).
//!
//! SSM's `InstallOverrideList` and `BaselineOverride` (an S3 or HTTPS list
//! to install instead of the baseline's, a baseline given inline) are not
//! taken: a step that names them is refused, rather than run as if they
//! were honoured.

use serde_json::Value;

use super::interpolate::placeholders;
use crate::error::SsmError;
use crate::patching::step::{PatchOperation, RebootOption};

/// `timeoutSeconds` when the step gives none: SSM's AWS-RunPatchBaseline
/// allows two hours.
pub const DEFAULT_PATCH_TIMEOUT: u32 = 7200;

/// An `aws:runPatchBaseline` step's inputs, interpolated and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchBaselineStep {
    pub operation: PatchOperation,
    pub reboot_option: RebootOption,
    /// Empty: the command id is the snapshot.
    pub snapshot_id: String,
    pub timeout_seconds: u32,
}

const INPUTS: [&str; 4] = ["Operation", "RebootOption", "SnapshotId", "timeoutSeconds"];
const NOT_TAKEN: [&str; 2] = ["InstallOverrideList", "BaselineOverride"];

impl PatchBaselineStep {
    /// Checks the inputs as written (errors are InvalidDocumentContent).
    pub(crate) fn check_template(step: &str, inputs: &Value) -> Result<(), SsmError> {
        Self::read(step, inputs, true)
            .map(|_| ())
            .map_err(SsmError::InvalidDocumentContent)
    }

    /// The inputs once interpolated (errors come from parameter values:
    /// InvalidParameters).
    pub(crate) fn resolve(step: &str, inputs: &Value) -> Result<Self, SsmError> {
        Self::read(step, inputs, false).map_err(SsmError::InvalidParameters)
    }

    fn read(step: &str, inputs: &Value, template: bool) -> Result<Self, String> {
        let Value::Object(map) = inputs else {
            return Err(format!(
                "Step \"{step}\": inputs must be an object with Operation (Scan or Install), and optionally RebootOption and SnapshotId."
            ));
        };
        let pending = |s: &str| template && !placeholders(s).is_empty();
        for (key, value) in map {
            if NOT_TAKEN.contains(&key.as_str()) {
                // Declared by SSM's document with an empty default: only a
                // value is refused.
                match value {
                    Value::String(s) if s.is_empty() || pending(s) => continue,
                    _ => {
                        return Err(format!(
                            "Step \"{step}\": {key} is not supported: Steward installs what the node's patch baseline approves. Leave {key} empty, or change the baseline."
                        ));
                    }
                }
            }
            if !INPUTS.contains(&key.as_str()) {
                return Err(format!(
                    "Step \"{step}\": a patch step has no input \"{key}\"; it takes {}.",
                    INPUTS.join(", ")
                ));
            }
        }
        let text = |key: &str| -> Result<Option<&str>, String> {
            match map.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(v) => Err(format!("Step \"{step}\": {key} must be a string, not {v}.")),
            }
        };
        let operation = match text("Operation")? {
            None => {
                return Err(format!(
                    "Step \"{step}\": Operation is required: Scan or Install."
                ));
            }
            Some(s) if pending(s) => PatchOperation::Scan,
            Some(s) => PatchOperation::parse(s).ok_or_else(|| {
                format!("Step \"{step}\": Operation \"{s}\" is not valid; use Scan or Install.")
            })?,
        };
        let reboot_option = match text("RebootOption")? {
            None => RebootOption::RebootIfNeeded,
            Some(s) if pending(s) => RebootOption::RebootIfNeeded,
            Some(s) => RebootOption::parse(s).ok_or_else(|| {
                format!(
                    "Step \"{step}\": RebootOption \"{s}\" is not valid; use RebootIfNeeded or NoReboot."
                )
            })?,
        };
        let snapshot_id = match text("SnapshotId")? {
            None => String::new(),
            Some(s) if pending(s) => String::new(),
            Some(s) if s.is_empty() || is_uuid(s) => s.to_string(),
            Some(s) => {
                return Err(format!(
                    "Step \"{step}\": SnapshotId \"{s}\" is not valid; give a UUID, or leave it empty."
                ));
            }
        };
        let timeout_seconds = match map.get("timeoutSeconds") {
            None => DEFAULT_PATCH_TIMEOUT,
            Some(Value::String(s)) if pending(s) => DEFAULT_PATCH_TIMEOUT,
            Some(v) => super::plugins::timeout_seconds(step, v)?,
        };
        Ok(PatchBaselineStep {
            operation,
            reboot_option,
            snapshot_id,
            timeout_seconds,
        })
    }
}

/// SSM's SnapshotId pattern: a UUID in its 8-4-4-4-12 hex form.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inputs_are_read_with_their_defaults() {
        let s = PatchBaselineStep::resolve("p", &json!({"Operation": "Install"})).unwrap();
        assert_eq!(s.operation, PatchOperation::Install);
        assert_eq!(s.reboot_option, RebootOption::RebootIfNeeded);
        assert_eq!(s.snapshot_id, "");
        assert_eq!(s.timeout_seconds, DEFAULT_PATCH_TIMEOUT);
        let s = PatchBaselineStep::resolve(
            "p",
            &json!({"Operation": "Scan", "RebootOption": "NoReboot",
                    "SnapshotId": "0123abcd-0000-4000-8000-00000000abcd", "timeoutSeconds": "60"}),
        )
        .unwrap();
        assert_eq!(s.reboot_option, RebootOption::NoReboot);
        assert_eq!(s.snapshot_id, "0123abcd-0000-4000-8000-00000000abcd");
        assert_eq!(s.timeout_seconds, 60);
    }

    #[test]
    fn bad_values_are_refused_in_words() {
        for (inputs, words) in [
            (
                json!({"Operation": "Patch"}),
                "Operation \"Patch\" is not valid",
            ),
            (
                json!({"Operation": "Scan", "RebootOption": "Always"}),
                "RebootOption \"Always\"",
            ),
            (
                json!({"Operation": "Scan", "SnapshotId": "snap"}),
                "SnapshotId \"snap\"",
            ),
            (
                json!({"Operation": "Scan", "InstallOverrideList": "s3://b/k.yaml"}),
                "InstallOverrideList is not supported",
            ),
            (
                json!({"Operation": "Scan", "Baseline": "x"}),
                "no input \"Baseline\"",
            ),
            (json!({}), "Operation is required"),
        ] {
            let e = PatchBaselineStep::resolve("p", &inputs).unwrap_err();
            assert_eq!(e.code(), "InvalidParameters");
            assert!(e.to_string().contains(words), "{inputs}: {e}");
        }
    }

    #[test]
    fn placeholders_are_checked_once_resolved() {
        let template = json!({"Operation": "{{ Operation }}", "RebootOption": "{{RebootOption}}",
                              "SnapshotId": "{{SnapshotId}}", "InstallOverrideList": "{{InstallOverrideList}}"});
        PatchBaselineStep::check_template("p", &template).unwrap();
        assert_eq!(
            PatchBaselineStep::check_template("p", &json!({"Operation": 3}))
                .unwrap_err()
                .code(),
            "InvalidDocumentContent"
        );
    }
}

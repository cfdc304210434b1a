//! `aws:softwareInventory` steps (what `AWS-GatherSoftwareInventory`
//! runs): SSM's inputs, each `Enabled` or `Disabled`, checked as written
//! and once interpolated. An input left out gathers nothing, as with
//! SSM's agent; `AWS:InstanceInformation` is always gathered.
//!
//! What a Linux node has is gathered: applications (dpkg), AWS components,
//! network configuration, services (systemd units) and custom inventory.
//! The Windows inputs (windowsUpdates, windowsRoles, windowsRegistry) are
//! accepted and gather nothing, as on SSM's Linux agent. What Steward does
//! not gather on Linux — instanceDetailedInformation, billingInfo, files —
//! is accepted only as Disabled (files: empty): Enabled is refused in
//! words rather than answered with nothing.

use serde_json::Value;

use super::interpolate::placeholders;
use crate::error::SsmError;
use crate::inventory::step::GatherInventory;

/// `timeoutSeconds` when the step gives none: SSM's default.
pub const DEFAULT_INVENTORY_TIMEOUT: u32 = super::plugins::DEFAULT_EXECUTION_TIMEOUT;

/// An `aws:softwareInventory` step's inputs, interpolated and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftwareInventoryStep {
    pub gather: GatherInventory,
    pub timeout_seconds: u32,
}

const GATHERED: [&str; 5] = [
    "applications",
    "awsComponents",
    "networkConfig",
    "services",
    "customInventory",
];
/// Windows only: accepted, nothing to gather on Linux.
const WINDOWS: [&str; 2] = ["windowsUpdates", "windowsRoles"];
/// Gathered by SSM on Linux, not by Steward: Disabled only.
const NOT_GATHERED: [&str; 2] = ["instanceDetailedInformation", "billingInfo"];
/// JSON lists SSM takes; only empty here (windowsRegistry: Windows only).
const LISTS: [&str; 2] = ["files", "windowsRegistry"];

impl SoftwareInventoryStep {
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
        let empty = serde_json::Map::new();
        let map = match inputs {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => {
                return Err(format!(
                    "Step \"{step}\": inputs must be an object of {} (Enabled or Disabled).",
                    GATHERED.join(", ")
                ));
            }
        };
        let pending = |s: &str| template && !placeholders(s).is_empty();
        let mut gather = GatherInventory {
            applications: false,
            aws_components: false,
            network_config: false,
            services: false,
            custom_inventory: false,
        };
        let mut timeout_seconds = DEFAULT_INVENTORY_TIMEOUT;
        for (key, value) in map {
            let key = key.as_str();
            if key == "timeoutSeconds" {
                timeout_seconds = timeout(step, value, template)?;
                continue;
            }
            let Value::String(s) = value else {
                return Err(format!(
                    "Step \"{step}\": {key} must be a string, not {value}."
                ));
            };
            if pending(s) {
                continue;
            }
            if LISTS.contains(&key) {
                if s.trim().is_empty() {
                    continue;
                }
                return Err(format!(
                    "Step \"{step}\": {key} is not gathered by Steward; leave it empty."
                ));
            }
            let enabled = match s.as_str() {
                "Enabled" => true,
                "Disabled" => false,
                _ => {
                    return Err(format!(
                        "Step \"{step}\": {key} \"{s}\" is not valid; use Enabled or Disabled."
                    ));
                }
            };
            match key {
                "applications" => gather.applications = enabled,
                "awsComponents" => gather.aws_components = enabled,
                "networkConfig" => gather.network_config = enabled,
                "services" => gather.services = enabled,
                "customInventory" => gather.custom_inventory = enabled,
                k if WINDOWS.contains(&k) => {}
                k if NOT_GATHERED.contains(&k) => {
                    if enabled {
                        return Err(format!(
                            "Step \"{step}\": {k} is not gathered by Steward on Linux; set it to Disabled."
                        ));
                    }
                }
                k => {
                    return Err(format!(
                        "Step \"{step}\": an inventory step has no input \"{k}\"; it takes {}, {}, {}, {} and timeoutSeconds.",
                        GATHERED.join(", "),
                        WINDOWS.join(", "),
                        NOT_GATHERED.join(", "),
                        LISTS.join(", ")
                    ));
                }
            }
        }
        Ok(SoftwareInventoryStep {
            gather,
            timeout_seconds,
        })
    }
}

fn timeout(step: &str, v: &Value, template: bool) -> Result<u32, String> {
    match v {
        Value::String(s) if template && !placeholders(s).is_empty() => {
            Ok(DEFAULT_INVENTORY_TIMEOUT)
        }
        v => super::plugins::timeout_seconds(step, v),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inputs_turn_collectors_on_and_left_out_ones_stay_off() {
        let s = SoftwareInventoryStep::resolve(
            "i",
            &json!({"applications": "Enabled", "networkConfig": "Disabled", "windowsUpdates": "Enabled",
                    "files": "", "billingInfo": "Disabled"}),
        )
        .unwrap();
        assert!(s.gather.applications);
        assert!(!s.gather.network_config && !s.gather.services && !s.gather.custom_inventory);
        assert_eq!(s.timeout_seconds, DEFAULT_INVENTORY_TIMEOUT);
    }

    #[test]
    fn what_is_not_gathered_is_refused_in_words() {
        for (inputs, words) in [
            (
                json!({"instanceDetailedInformation": "Enabled"}),
                "not gathered by Steward on Linux",
            ),
            (
                json!({"billingInfo": "Enabled"}),
                "not gathered by Steward on Linux",
            ),
            (
                json!({"files": "[{\"Path\":\"/etc\"}]"}),
                "files is not gathered",
            ),
            (json!({"applications": "Yes"}), "use Enabled or Disabled"),
            (json!({"registry": "Enabled"}), "no input \"registry\""),
            (json!({"applications": true}), "must be a string"),
        ] {
            let e = SoftwareInventoryStep::resolve("i", &inputs).unwrap_err();
            assert_eq!(e.code(), "InvalidParameters");
            assert!(e.to_string().contains(words), "{inputs}: {e}");
        }
        SoftwareInventoryStep::check_template("i", &json!({"applications": "{{ applications }}"}))
            .unwrap();
        assert_eq!(
            SoftwareInventoryStep::check_template("i", &json!({"applications": 1}))
                .unwrap_err()
                .code(),
            "InvalidDocumentContent"
        );
    }
}

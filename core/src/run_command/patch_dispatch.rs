//! Completes a command's `aws:runPatchBaseline` steps for one node at
//! dispatch: the baseline that patches the node (its patch group's for its
//! operating system, else the default) goes into the signed message, with
//! the patch group and the snapshot. Only the control plane knows a node's
//! tags and the registrations, so the agent is told rather than asking.

use crate::channel::PluginStep;
use crate::error::SsmError;
use crate::patching::baseline::OperatingSystem;
use crate::patching::ports::PatchBaselineStore;
use crate::patching::resolve::baseline_for_node;
use crate::tags::TagSet;

use super::ports::NodeAddress;

/// The tags SSM reads a node's patch group from, in the order it prefers
/// them (`PatchGroup` is the form instance metadata allows).
pub const PATCH_GROUP_TAGS: [&str; 2] = ["Patch Group", "PatchGroup"];

/// A node's patch group, from its tags.
pub fn patch_group_of(tags: &TagSet) -> Option<String> {
    PATCH_GROUP_TAGS
        .iter()
        .find_map(|k| tags.get(*k))
        .filter(|g| !g.is_empty())
        .cloned()
}

/// The baseline operating system of a node, from the PlatformName its
/// agent reports (os-release's NAME).
pub fn operating_system_of(platform_name: &str) -> Option<OperatingSystem> {
    let name = platform_name.to_ascii_lowercase();
    if name.contains("ubuntu") {
        Some(OperatingSystem::Ubuntu)
    } else if name.contains("debian") {
        Some(OperatingSystem::Debian)
    } else {
        None
    }
}

/// The steps for `node`, patch steps completed. `Ok(Err(why))`: the node
/// cannot be patched (its system is not one Steward patches, or it has
/// not reported one yet), and the invocation fails with `why`.
pub async fn complete_for_node(
    store: &dyn PatchBaselineStore,
    steps: &[PluginStep],
    address: &NodeAddress,
    command_id: &str,
) -> Result<Result<Vec<PluginStep>, String>, SsmError> {
    if steps.iter().all(|s| s.patch.is_none()) {
        return Ok(Ok(steps.to_vec()));
    }
    let Some(os) = operating_system_of(&address.platform_name) else {
        let seen = if address.platform_name.is_empty() {
            "has not reported its operating system yet".to_string()
        } else {
            format!("runs {}", address.platform_name)
        };
        return Ok(Err(format!(
            "This node {seen}; Steward patches Debian and Ubuntu nodes (through apt)"
        )));
    };
    let (baseline_id, baseline) =
        baseline_for_node(store, os, address.patch_group.as_deref()).await?;
    let body = baseline.to_create_json();
    Ok(Ok(steps
        .iter()
        .map(|s| {
            let mut s = s.clone();
            if let Some(p) = s.patch.as_mut() {
                p.baseline_id = baseline_id.clone();
                p.baseline = body.clone();
                p.patch_group = address.patch_group.clone();
                if p.snapshot_id.is_empty() {
                    p.snapshot_id = command_id.to_string();
                }
            }
            s
        })
        .collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patching::memory::MemoryPatchBaselines;
    use crate::patching::step::{PatchOperation, PatchStepInput, RebootOption};
    use crate::patching::{CreatePatchBaselineRequest, predefined};

    fn patch_step() -> PluginStep {
        PluginStep {
            name: "PatchLinux".into(),
            action: "aws:runPatchBaseline".into(),
            run_command: Vec::new(),
            working_directory: String::new(),
            timeout_seconds: 7200,
            patch: Some(PatchStepInput {
                operation: PatchOperation::Scan,
                reboot_option: RebootOption::NoReboot,
                baseline_id: String::new(),
                baseline: serde_json::Value::Null,
                patch_group: None,
                snapshot_id: String::new(),
            }),
            inventory: None,
        }
    }

    fn address(platform: &str, group: Option<&str>) -> NodeAddress {
        NodeAddress {
            queue_url: "q".into(),
            computer_name: "h".into(),
            platform_name: platform.into(),
            patch_group: group.map(str::to_string),
            online: true,
        }
    }

    #[test]
    fn patch_group_comes_from_either_tag() {
        let tags = |pairs: &[(&str, &str)]| -> TagSet {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            patch_group_of(&tags(&[("PatchGroup", "web")])).as_deref(),
            Some("web")
        );
        assert_eq!(
            patch_group_of(&tags(&[("PatchGroup", "b"), ("Patch Group", "a")])).as_deref(),
            Some("a")
        );
        assert_eq!(patch_group_of(&tags(&[("env", "prod")])), None);
        assert_eq!(
            operating_system_of("Debian GNU/Linux"),
            Some(OperatingSystem::Debian)
        );
        assert_eq!(operating_system_of("Ubuntu"), Some(OperatingSystem::Ubuntu));
        assert_eq!(operating_system_of("Amazon Linux"), None);
    }

    #[tokio::test]
    async fn a_node_gets_its_default_baseline_and_the_command_as_snapshot() {
        let store = MemoryPatchBaselines::default();
        let steps = complete_for_node(
            &store,
            &[patch_step()],
            &address("Debian GNU/Linux", Some("web")),
            "cmd-1",
        )
        .await
        .unwrap()
        .unwrap();
        let p = steps[0].patch.as_ref().unwrap();
        let debian = predefined::for_os(OperatingSystem::Debian);
        assert_eq!(p.baseline_id, debian.id);
        assert_eq!(p.patch_group.as_deref(), Some("web"));
        assert_eq!(p.snapshot_id, "cmd-1");
        // What the agent reads back is the baseline itself.
        assert_eq!(
            CreatePatchBaselineRequest::parse(&p.baseline)
                .unwrap()
                .baseline,
            debian.baseline
        );
    }

    #[tokio::test]
    async fn a_node_that_is_not_debian_or_ubuntu_is_told_why() {
        let store = MemoryPatchBaselines::default();
        let why = complete_for_node(&store, &[patch_step()], &address("Amazon Linux", None), "c")
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            why.contains("runs Amazon Linux; Steward patches Debian and Ubuntu"),
            "{why}"
        );
    }
}

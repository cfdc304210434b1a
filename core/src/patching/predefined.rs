//! The predefined baselines AWS owns, for the systems Steward patches, with
//! SSM's names, descriptions and rules: each approves at once every
//! security update whose priority is Required, Important, Standard,
//! Optional or Extra (apt repositories carry no reliable release dates, so
//! there is no delay), with compliance level UNSPECIFIED, nothing listed as
//! approved or rejected, and ALLOW_AS_DEPENDENCY.
//!
//! Each is the default baseline of its system until an operator registers
//! another. Their ids have SSM's form (`pb-` and 17 hex digits); SSM's own
//! ids differ by region, so Steward's are its own, fixed.

use super::baseline::{
    Approval, ComplianceLevel, OperatingSystem, PatchBaseline, PatchFilter, PatchFilterKey,
    PatchRule, RejectedPatchesAction,
};

/// CreatedDate and ModifiedDate of the predefined baselines (epoch
/// seconds): they exist as long as Steward.
pub const CREATED: f64 = 1_704_067_200.0;

/// The owner SSM reports for these baselines.
pub const OWNER: &str = "AWS";

/// The priorities the predefined rules approve, as SSM spells them.
pub const APPROVED_PRIORITIES: [&str; 5] =
    ["Required", "Important", "Standard", "Optional", "Extra"];

/// One predefined baseline: its id and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predefined {
    pub id: &'static str,
    pub baseline: PatchBaseline,
}

const DEBIAN_ID: &str = "pb-0d3b2e7f5a1c94e60";
const UBUNTU_ID: &str = "pb-07a1c5e9b3d2f8a41";

fn definition(os: OperatingSystem) -> (&'static str, &'static str, &'static str) {
    match os {
        OperatingSystem::Debian => (
            DEBIAN_ID,
            "AWS-DebianDefaultPatchBaseline",
            "Default Patch Baseline for Debian Provided by AWS.",
        ),
        OperatingSystem::Ubuntu => (
            UBUNTU_ID,
            "AWS-UbuntuDefaultPatchBaseline",
            "Default Patch Baseline for Ubuntu Provided by AWS.",
        ),
    }
}

/// The predefined baseline of a system.
pub fn for_os(os: OperatingSystem) -> Predefined {
    let (id, name, description) = definition(os);
    Predefined {
        id,
        baseline: PatchBaseline {
            name: name.to_string(),
            operating_system: os,
            description: Some(description.to_string()),
            global_filters: Vec::new(),
            rules: vec![PatchRule {
                filters: vec![PatchFilter {
                    key: PatchFilterKey::Priority,
                    values: APPROVED_PRIORITIES.iter().map(|p| p.to_string()).collect(),
                }],
                compliance_level: ComplianceLevel::Unspecified,
                approval: Approval::Immediately,
                enable_non_security: false,
            }],
            approved_patches: Vec::new(),
            approved_patches_compliance_level: ComplianceLevel::Unspecified,
            approved_patches_enable_non_security: false,
            rejected_patches: Vec::new(),
            rejected_patches_action: RejectedPatchesAction::AllowAsDependency,
        },
    }
}

/// Every predefined baseline, in the order of [`OperatingSystem::ALL`].
pub fn all() -> Vec<Predefined> {
    OperatingSystem::ALL.iter().map(|os| for_os(*os)).collect()
}

/// The baseline a system uses when no other is registered as its default.
pub fn default_id(os: OperatingSystem) -> &'static str {
    definition(os).0
}

/// The predefined baseline with this id, if any.
pub fn find_id(id: &str) -> Option<Predefined> {
    all().into_iter().find(|p| p.id == id)
}

/// The predefined baseline with this id or name, if any.
pub fn find(id_or_name: &str) -> Option<Predefined> {
    all()
        .into_iter()
        .find(|p| p.id == id_or_name || p.baseline.name == id_or_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_supported_system_has_ssms_predefined_baseline_as_its_default() {
        let debian = for_os(OperatingSystem::Debian);
        assert_eq!(debian.baseline.name, "AWS-DebianDefaultPatchBaseline");
        assert_eq!(
            debian.baseline.description.as_deref(),
            Some("Default Patch Baseline for Debian Provided by AWS.")
        );
        assert_eq!(default_id(OperatingSystem::Debian), debian.id);
        let ubuntu = for_os(OperatingSystem::Ubuntu);
        assert_eq!(ubuntu.baseline.name, "AWS-UbuntuDefaultPatchBaseline");
        assert_eq!(
            ubuntu.baseline.description.as_deref(),
            Some("Default Patch Baseline for Ubuntu Provided by AWS.")
        );
        assert_eq!(ubuntu.baseline.operating_system, OperatingSystem::Ubuntu);
        assert_eq!(default_id(OperatingSystem::Ubuntu), ubuntu.id);
        assert_ne!(debian.id, ubuntu.id);
    }

    #[test]
    fn the_rules_approve_security_updates_of_every_priority_at_once() {
        for p in all() {
            let b = &p.baseline;
            assert_eq!(b.rules.len(), 1);
            let rule = &b.rules[0];
            assert_eq!(rule.approval, Approval::Immediately);
            assert!(!rule.enable_non_security);
            assert_eq!(rule.compliance_level, ComplianceLevel::Unspecified);
            assert_eq!(
                rule.filters,
                vec![PatchFilter {
                    key: PatchFilterKey::Priority,
                    values: vec![
                        "Required".into(),
                        "Important".into(),
                        "Standard".into(),
                        "Optional".into(),
                        "Extra".into()
                    ],
                }]
            );
            assert!(
                b.global_filters.is_empty()
                    && b.approved_patches.is_empty()
                    && b.rejected_patches.is_empty()
            );
            assert_eq!(
                b.rejected_patches_action,
                RejectedPatchesAction::AllowAsDependency
            );
        }
    }

    #[test]
    fn ids_have_ssms_form_and_are_found_by_id_or_name() {
        for p in all() {
            let hex = p.id.strip_prefix("pb-").unwrap_or_default();
            assert_eq!(hex.len(), 17, "{}", p.id);
            assert!(
                hex.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{}",
                p.id
            );
            assert_eq!(
                find(p.id).map(|f| f.baseline.name),
                Some(p.baseline.name.clone())
            );
            assert_eq!(find(&p.baseline.name).map(|f| f.id), Some(p.id));
        }
        assert!(find("AWS-AmazonLinux2023DefaultPatchBaseline").is_none());
    }
}

//! What the agent's patch plugin reports for one Scan or Install: SSM's
//! per-patch states and the operation's summary (SSM's InstancePatchState).
//!
//! A node may hold thousands of packages, more than one uplink message
//! carries, so a report is sent in parts of at most [`MAX_PATCHES_PER_PART`]
//! patches; every part carries the whole summary, so the node's state is
//! known from any one of them, and the patch list is whole once all parts
//! have arrived.

use serde::{Deserialize, Serialize};

use super::baseline::ComplianceLevel;
use super::step::{PatchOperation, RebootOption};

/// Patches per uplink message: a part stays far below SQS's message size.
pub const MAX_PATCHES_PER_PART: usize = 400;

/// SSM's `PatchComplianceDataState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PatchState {
    /// Approved by the baseline and installed.
    Installed,
    /// Installed, and not approved by the baseline.
    InstalledOther,
    /// Installed by this or an earlier operation; the node has not
    /// rebooted since.
    InstalledPendingReboot,
    /// Listed in RejectedPatches, and installed.
    InstalledRejected,
    /// Approved, and not installed.
    Missing,
    /// Approved; the install failed.
    Failed,
    /// Approved for a package that is not on the node.
    NotApplicable,
}

impl PatchState {
    pub const ALL: [PatchState; 7] = [
        PatchState::Installed,
        PatchState::InstalledOther,
        PatchState::InstalledPendingReboot,
        PatchState::InstalledRejected,
        PatchState::Missing,
        PatchState::Failed,
        PatchState::NotApplicable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PatchState::Installed => "Installed",
            PatchState::InstalledOther => "InstalledOther",
            PatchState::InstalledPendingReboot => "InstalledPendingReboot",
            PatchState::InstalledRejected => "InstalledRejected",
            PatchState::Missing => "Missing",
            PatchState::Failed => "Failed",
            PatchState::NotApplicable => "NotApplicable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether a patch in this state makes the node non-compliant (SSM:
    /// Missing and Failed always; InstalledPendingReboot and
    /// InstalledRejected are also counted against compliance).
    pub fn is_non_compliant(self) -> bool {
        matches!(
            self,
            PatchState::Missing
                | PatchState::Failed
                | PatchState::InstalledPendingReboot
                | PatchState::InstalledRejected
        )
    }
}

/// One patch as SSM's `PatchComplianceData` describes it. On apt systems a
/// patch is a package's update: Title is `name version`, KBId the package
/// name (SSM's shape for Debian and Ubuntu).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchEntry {
    pub title: String,
    pub kb_id: String,
    /// `Security` for an update from the release's security archive, else
    /// `Bugfix`; empty for an installed package with no update.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub classification: String,
    /// The package's PRIORITY (apt has no severity), e.g. `important`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    pub state: PatchState,
    /// When it was installed (epoch seconds), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_time: Option<f64>,
    /// The compliance level of an approved patch, from the baseline rule
    /// that approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance_level: Option<ComplianceLevel>,
}

/// The counts of SSM's InstancePatchState, computed from a whole report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchCounts {
    pub installed: u32,
    pub installed_other: u32,
    pub installed_pending_reboot: u32,
    pub installed_rejected: u32,
    pub missing: u32,
    pub failed: u32,
    pub not_applicable: u32,
    /// Non-compliant patches whose compliance level is CRITICAL.
    pub critical_non_compliant: u32,
    /// Non-compliant patches classified as security updates.
    pub security_non_compliant: u32,
    /// The other non-compliant patches.
    pub other_non_compliant: u32,
}

impl PatchCounts {
    pub fn of<'a>(patches: impl IntoIterator<Item = &'a PatchEntry>) -> Self {
        let mut c = PatchCounts::default();
        for p in patches {
            match p.state {
                PatchState::Installed => c.installed += 1,
                PatchState::InstalledOther => c.installed_other += 1,
                PatchState::InstalledPendingReboot => c.installed_pending_reboot += 1,
                PatchState::InstalledRejected => c.installed_rejected += 1,
                PatchState::Missing => c.missing += 1,
                PatchState::Failed => c.failed += 1,
                PatchState::NotApplicable => c.not_applicable += 1,
            }
            if p.state.is_non_compliant() {
                if p.compliance_level == Some(ComplianceLevel::Critical) {
                    c.critical_non_compliant += 1;
                } else if p.classification == "Security" {
                    c.security_non_compliant += 1;
                } else {
                    c.other_non_compliant += 1;
                }
            }
        }
        c
    }

    /// How many patches the whole report lists.
    pub fn total(&self) -> u64 {
        [
            self.installed,
            self.installed_other,
            self.installed_pending_reboot,
            self.installed_rejected,
            self.missing,
            self.failed,
            self.not_applicable,
        ]
        .iter()
        .map(|&n| u64::from(n))
        .sum()
    }

    /// Whether the node is compliant with its baseline.
    pub fn compliant(&self) -> bool {
        self.missing == 0
            && self.failed == 0
            && self.installed_pending_reboot == 0
            && self.installed_rejected == 0
    }
}

/// One part of a node's report for one Scan or Install.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchReport {
    /// The command whose step ran the operation.
    pub command_id: String,
    pub snapshot_id: String,
    pub baseline_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_group: Option<String>,
    pub operation: PatchOperation,
    pub reboot_option: RebootOption,
    pub operation_start_time: f64,
    pub operation_end_time: f64,
    /// Set by an Install that installed anything without rebooting after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_no_reboot_install_operation_time: Option<f64>,
    /// The counts of the whole report, all parts together.
    pub counts: PatchCounts,
    /// This part's index (0-based) and how many parts there are.
    pub part: u32,
    pub parts: u32,
    pub patches: Vec<PatchEntry>,
}

impl PatchReport {
    /// Splits a whole report's patches into parts that each carry the
    /// summary. `header` gives everything but the patches and the part
    /// numbers; a report with no patches is still one part.
    pub fn into_parts(header: PatchReport, patches: Vec<PatchEntry>) -> Vec<PatchReport> {
        let counts = PatchCounts::of(&patches);
        let chunks: Vec<Vec<PatchEntry>> = if patches.is_empty() {
            vec![Vec::new()]
        } else {
            patches
                .chunks(MAX_PATCHES_PER_PART)
                .map(<[PatchEntry]>::to_vec)
                .collect()
        };
        let parts = chunks.len() as u32;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, patches)| PatchReport {
                counts,
                part: i as u32,
                parts,
                patches,
                ..header.clone()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize, state: PatchState) -> PatchEntry {
        PatchEntry {
            title: format!("pkg{n} 1.0"),
            kb_id: format!("pkg{n}"),
            classification: if n.is_multiple_of(2) {
                "Security".into()
            } else {
                "Bugfix".into()
            },
            severity: "important".into(),
            state,
            installed_time: None,
            compliance_level: Some(ComplianceLevel::Medium),
        }
    }

    fn header() -> PatchReport {
        PatchReport {
            command_id: "c".into(),
            snapshot_id: "c".into(),
            baseline_id: "pb-1".into(),
            patch_group: None,
            operation: PatchOperation::Scan,
            reboot_option: RebootOption::NoReboot,
            operation_start_time: 1.0,
            operation_end_time: 2.0,
            last_no_reboot_install_operation_time: None,
            counts: PatchCounts::default(),
            part: 0,
            parts: 0,
            patches: Vec::new(),
        }
    }

    #[test]
    fn parts_carry_every_patch_once_and_the_whole_counts() {
        let patches: Vec<_> = (0..901)
            .map(|n| {
                entry(
                    n,
                    if n < 3 {
                        PatchState::Missing
                    } else {
                        PatchState::InstalledOther
                    },
                )
            })
            .collect();
        let parts = PatchReport::into_parts(header(), patches.clone());
        assert_eq!(parts.len(), 3);
        assert!(
            parts
                .iter()
                .all(|p| p.parts == 3 && p.patches.len() <= MAX_PATCHES_PER_PART)
        );
        let joined: Vec<_> = parts.iter().flat_map(|p| p.patches.clone()).collect();
        assert_eq!(joined, patches);
        for p in &parts {
            assert_eq!(p.counts.missing, 3);
            assert_eq!(p.counts.installed_other, 898);
            assert_eq!(p.counts.security_non_compliant, 2);
            assert_eq!(p.counts.other_non_compliant, 1);
            assert!(!p.counts.compliant());
        }
    }

    #[test]
    fn an_empty_report_is_one_compliant_part() {
        let parts = PatchReport::into_parts(header(), Vec::new());
        assert_eq!(parts.len(), 1);
        assert!(parts[0].counts.compliant());
    }

    #[test]
    fn states_keep_ssm_names() {
        for s in PatchState::ALL {
            assert_eq!(PatchState::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }
}

//! SSM's patch baseline, as CreatePatchBaseline takes it, checked as SSM
//! checks it: the model's limits (lengths, list sizes, enums, ranges) in
//! SSM's "validation error detected" words, then what the model cannot say:
//! the operating systems Steward patches (DEBIAN and UBUNTU, through apt),
//! the filter keys each of them has, one approval delay or cutoff per rule,
//! real `YYYY-MM-DD` dates and apt package names in the patch lists.
//!
//! The operation is not served yet, so its constraints are not in
//! `api_model`'s generated model; [`CreatePatchBaselineRequest::check`]
//! checks them itself, with the limits of SSM's service model.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::Date;
use time::macros::format_description;

use crate::error::SsmError;
use crate::tags::{Tag, TagSet, validate_tags};

/// `BaselineName`: 3 to 128 of `[a-zA-Z0-9_\-.]`.
pub const NAME_MIN: usize = 3;
pub const NAME_MAX: usize = 128;
const NAME_PATTERN: &str = "^[a-zA-Z0-9_\\-.]{3,128}$";
/// `BaselineDescription`: 1 to 1024 characters.
pub const DESCRIPTION_MAX: usize = 1024;
/// `PatchFilterList`: at most 4 filters in a group.
pub const MAX_FILTERS: usize = 4;
/// `PatchFilterValueList`: 1 to 20 values, each 1 to 64 characters.
pub const MAX_FILTER_VALUES: usize = 20;
pub const FILTER_VALUE_MAX: usize = 64;
/// `PatchRuleList`: at most 10 approval rules.
pub const MAX_RULES: usize = 10;
/// `ApproveAfterDays`: 0 to 360.
pub const MAX_APPROVE_AFTER_DAYS: i64 = 360;
/// `PatchStringDateTime`: 1 to 10 characters (`YYYY-MM-DD`).
const DATE_MAX: usize = 10;
/// `PatchIdList`: at most 50 patches, each 1 to 100 characters.
pub const MAX_PATCHES: usize = 50;
pub const PATCH_ID_MAX: usize = 100;
/// `ClientToken`: 1 to 64 characters.
pub const CLIENT_TOKEN_MAX: usize = 64;
/// `TagList`: at most 1000 in the model (SSM's 50 per resource is checked
/// by [`crate::tags`]).
const MAX_TAG_LIST: usize = 1000;

/// SSM's `OperatingSystem` values, all of them, as the model lists them.
pub const ALL_OPERATING_SYSTEMS: [&str; 15] = [
    "WINDOWS",
    "AMAZON_LINUX",
    "AMAZON_LINUX_2",
    "AMAZON_LINUX_2022",
    "UBUNTU",
    "REDHAT_ENTERPRISE_LINUX",
    "SUSE",
    "CENTOS",
    "ORACLE_LINUX",
    "DEBIAN",
    "MACOS",
    "RASPBIAN",
    "ROCKY_LINUX",
    "ALMA_LINUX",
    "AMAZON_LINUX_2023",
];

/// Those whose package manager is dnf or yum.
const DNF_SYSTEMS: [&str; 8] = [
    "AMAZON_LINUX",
    "AMAZON_LINUX_2",
    "AMAZON_LINUX_2022",
    "AMAZON_LINUX_2023",
    "REDHAT_ENTERPRISE_LINUX",
    "CENTOS",
    "ORACLE_LINUX",
    "ROCKY_LINUX",
];

/// SSM's `PatchFilterKey` values.
pub const ALL_FILTER_KEYS: [&str; 19] = [
    "ARCH",
    "ADVISORY_ID",
    "BUGZILLA_ID",
    "PATCH_SET",
    "PRODUCT",
    "PRODUCT_FAMILY",
    "CLASSIFICATION",
    "CVE_ID",
    "EPOCH",
    "MSRC_SEVERITY",
    "NAME",
    "PATCH_ID",
    "SECTION",
    "PRIORITY",
    "REPOSITORY",
    "RELEASE",
    "SEVERITY",
    "SECURITY",
    "VERSION",
];

const COMPLIANCE_LEVELS: [&str; 6] = [
    "CRITICAL",
    "HIGH",
    "MEDIUM",
    "LOW",
    "INFORMATIONAL",
    "UNSPECIFIED",
];
const PATCH_ACTIONS: [&str; 2] = ["ALLOW_AS_DEPENDENCY", "BLOCK"];
const COMPLIANCE_STATUSES: [&str; 2] = ["COMPLIANT", "NON_COMPLIANT"];

/// The operating systems Steward patches: both through apt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperatingSystem {
    Debian,
    Ubuntu,
}

impl OperatingSystem {
    pub const ALL: [OperatingSystem; 2] = [OperatingSystem::Debian, OperatingSystem::Ubuntu];

    pub fn as_str(self) -> &'static str {
        match self {
            OperatingSystem::Debian => "DEBIAN",
            OperatingSystem::Ubuntu => "UBUNTU",
        }
    }

    /// The filter keys a baseline for this system may use: SSM's keys for
    /// apt systems (PatchFilter: PRODUCT, PRIORITY and SECTION).
    pub fn filter_keys(self) -> &'static [PatchFilterKey] {
        &[
            PatchFilterKey::Product,
            PatchFilterKey::Section,
            PatchFilterKey::Priority,
        ]
    }

    /// Reads `OperatingSystem` as SSM does (absent means WINDOWS), and
    /// refuses, in SSM's words, the systems Steward does not patch.
    pub fn parse(given: Option<&str>) -> Result<Self, SsmError> {
        let value = given.unwrap_or("WINDOWS");
        match value {
            "DEBIAN" => return Ok(OperatingSystem::Debian),
            "UBUNTU" => return Ok(OperatingSystem::Ubuntu),
            _ => {}
        }
        if !ALL_OPERATING_SYSTEMS.contains(&value) {
            return Err(model_error(
                value,
                "operatingSystem",
                &enum_constraint(&ALL_OPERATING_SYSTEMS),
            ));
        }
        let why = if DNF_SYSTEMS.contains(&value) {
            "its packages are managed by dnf (or yum), which Steward's agent does not support yet"
        } else {
            "Steward's agent patches through apt only"
        };
        let defaulted = if given.is_none() {
            " (OperatingSystem was not given, and SSM takes WINDOWS then)"
        } else {
            ""
        };
        Err(SsmError::UnsupportedOperatingSystem(format!(
            "Patch baselines for {value}{defaulted} are not supported: {why}. Give OperatingSystem DEBIAN or UBUNTU."
        )))
    }
}

impl std::fmt::Display for OperatingSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The filter keys apt systems have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatchFilterKey {
    /// The release the node runs, e.g. `Ubuntu22.04`, `Debian12`.
    Product,
    /// The package's archive section, e.g. `admin`, `universe/net`.
    Section,
    /// The package's priority: Required, Important, Standard, Optional, Extra.
    Priority,
}

impl PatchFilterKey {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchFilterKey::Product => "PRODUCT",
            PatchFilterKey::Section => "SECTION",
            PatchFilterKey::Priority => "PRIORITY",
        }
    }
}

/// SSM's `PatchComplianceLevel`, from most to least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceLevel {
    Critical,
    High,
    Medium,
    Low,
    Informational,
    #[default]
    Unspecified,
}

impl ComplianceLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceLevel::Critical => "CRITICAL",
            ComplianceLevel::High => "HIGH",
            ComplianceLevel::Medium => "MEDIUM",
            ComplianceLevel::Low => "LOW",
            ComplianceLevel::Informational => "INFORMATIONAL",
            ComplianceLevel::Unspecified => "UNSPECIFIED",
        }
    }

    /// Higher is more severe; UNSPECIFIED is the least.
    pub fn severity(self) -> u8 {
        match self {
            ComplianceLevel::Critical => 5,
            ComplianceLevel::High => 4,
            ComplianceLevel::Medium => 3,
            ComplianceLevel::Low => 2,
            ComplianceLevel::Informational => 1,
            ComplianceLevel::Unspecified => 0,
        }
    }

    fn parse(value: &str, path: &str) -> Result<Self, String> {
        Ok(match value {
            "CRITICAL" => ComplianceLevel::Critical,
            "HIGH" => ComplianceLevel::High,
            "MEDIUM" => ComplianceLevel::Medium,
            "LOW" => ComplianceLevel::Low,
            "INFORMATIONAL" => ComplianceLevel::Informational,
            "UNSPECIFIED" => ComplianceLevel::Unspecified,
            other => {
                return Err(violation(other, path, &enum_constraint(&COMPLIANCE_LEVELS)));
            }
        })
    }
}

/// SSM's `PatchAction`: what a rejected patch may still be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectedPatchesAction {
    /// Installed only as another package's dependency (SSM's default).
    #[default]
    AllowAsDependency,
    /// Never installed, nor anything that needs it.
    Block,
}

impl RejectedPatchesAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectedPatchesAction::AllowAsDependency => "ALLOW_AS_DEPENDENCY",
            RejectedPatchesAction::Block => "BLOCK",
        }
    }
}

/// When a rule's patches are approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// As soon as they are available (no delay and no cutoff given: apt
    /// repositories carry no reliable release dates, and SSM's predefined
    /// apt baselines approve at once).
    Immediately,
    /// `ApproveAfterDays`: this many days after release.
    AfterDays(u16),
    /// `ApproveUntilDate`: those released on or before this day (UTC).
    UntilDate(Date),
}

/// One `PatchFilter`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchFilter {
    pub key: PatchFilterKey,
    /// Exact values, or with `*` wildcards; compared without case.
    pub values: Vec<String>,
}

/// One `PatchRule`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchRule {
    pub filters: Vec<PatchFilter>,
    pub compliance_level: ComplianceLevel,
    pub approval: Approval,
    pub enable_non_security: bool,
}

/// A patch baseline as Steward evaluates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchBaseline {
    pub name: String,
    pub operating_system: OperatingSystem,
    pub description: Option<String>,
    pub global_filters: Vec<PatchFilter>,
    pub rules: Vec<PatchRule>,
    pub approved_patches: Vec<String>,
    pub approved_patches_compliance_level: ComplianceLevel,
    pub approved_patches_enable_non_security: bool,
    pub rejected_patches: Vec<String>,
    pub rejected_patches_action: RejectedPatchesAction,
}

/// CreatePatchBaseline's input, as it comes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreatePatchBaselineRequest {
    pub operating_system: Option<String>,
    pub name: Option<String>,
    pub global_filters: Option<PatchFilterGroupInput>,
    pub approval_rules: Option<PatchRuleGroupInput>,
    pub approved_patches: Option<Vec<String>>,
    pub approved_patches_compliance_level: Option<String>,
    pub approved_patches_enable_non_security: Option<bool>,
    pub rejected_patches: Option<Vec<String>>,
    pub rejected_patches_action: Option<String>,
    pub description: Option<String>,
    pub sources: Option<Vec<Value>>,
    pub available_security_updates_compliance_status: Option<String>,
    pub client_token: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchFilterGroupInput {
    pub patch_filters: Option<Vec<PatchFilterInput>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchFilterInput {
    pub key: Option<String>,
    pub values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchRuleGroupInput {
    pub patch_rules: Option<Vec<PatchRuleInput>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchRuleInput {
    pub patch_filter_group: Option<PatchFilterGroupInput>,
    pub compliance_level: Option<String>,
    /// Wider than the model's integer so an out-of-range value is refused
    /// with SSM's range message, not as a shape mismatch.
    pub approve_after_days: Option<i64>,
    pub approve_until_date: Option<String>,
    pub enable_non_security: Option<bool>,
}

/// A checked CreatePatchBaseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePatchBaseline {
    pub baseline: PatchBaseline,
    pub client_token: Option<String>,
    pub tags: TagSet,
}

impl CreatePatchBaselineRequest {
    /// Reads the request body (SerializationException when its shape is
    /// wrong) and checks it.
    pub fn parse(body: &Value) -> Result<CreatePatchBaseline, SsmError> {
        let request: CreatePatchBaselineRequest = crate::error::parse_request(body)?;
        request.check()
    }

    /// Checks the request as SSM does: first every model constraint,
    /// reported together, then the operating system, then the rest.
    pub fn check(self) -> Result<CreatePatchBaseline, SsmError> {
        let mut v = Vec::new();
        self.model_violations(&mut v);
        if !v.is_empty() {
            return Err(validation(v));
        }
        let os = OperatingSystem::parse(self.operating_system.as_deref())?;
        let name = self.name.unwrap_or_default();

        if self.sources.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(SsmError::ValidationException(format!(
                "Sources is not supported for {os} patch baselines in Steward: patches come from the apt repositories each node already has configured. Remove Sources."
            )));
        }
        if self.available_security_updates_compliance_status.is_some() {
            return Err(SsmError::ValidationException(format!(
                "AvailableSecurityUpdatesComplianceStatus applies to Windows Server patch baselines only, not to {os}. Remove it."
            )));
        }

        let global_filters = filters(
            os,
            self.global_filters
                .and_then(|g| g.patch_filters)
                .unwrap_or_default(),
            "GlobalFilters",
        )?;

        let mut rules = Vec::new();
        let inputs = self
            .approval_rules
            .and_then(|g| g.patch_rules)
            .unwrap_or_default();
        for (i, r) in inputs.into_iter().enumerate() {
            let at = format!("ApprovalRules.PatchRules[{}]", i + 1);
            let approval = match (r.approve_after_days, r.approve_until_date) {
                (Some(_), Some(_)) => {
                    return Err(SsmError::ValidationException(format!(
                        "{at} gives both ApproveAfterDays and ApproveUntilDate; a rule takes one of them. Keep one."
                    )));
                }
                (Some(days), None) => Approval::AfterDays(u16::try_from(days).map_err(|_| {
                    SsmError::ValidationException(format!("{at}: ApproveAfterDays is out of range"))
                })?),
                (None, Some(date)) => Approval::UntilDate(parse_date(&date).ok_or_else(|| {
                    SsmError::ValidationException(format!(
                        "{at}: ApproveUntilDate '{date}' is not a date of the form YYYY-MM-DD (for example 2025-11-16)."
                    ))
                })?),
                (None, None) => Approval::Immediately,
            };
            let compliance_level = match r.compliance_level.as_deref() {
                Some(c) => ComplianceLevel::parse(c, "").map_err(|_| SsmError::internal())?,
                None => ComplianceLevel::Unspecified,
            };
            let filters = filters(
                os,
                r.patch_filter_group
                    .and_then(|g| g.patch_filters)
                    .unwrap_or_default(),
                &format!("{at}.PatchFilterGroup"),
            )?;
            rules.push(PatchRule {
                filters,
                compliance_level,
                approval,
                enable_non_security: r.enable_non_security.unwrap_or(false),
            });
        }

        let approved_patches = patch_names(
            self.approved_patches.unwrap_or_default(),
            os,
            "ApprovedPatches",
        )?;
        let rejected_patches = patch_names(
            self.rejected_patches.unwrap_or_default(),
            os,
            "RejectedPatches",
        )?;
        let approved_patches_compliance_level =
            match self.approved_patches_compliance_level.as_deref() {
                Some(c) => ComplianceLevel::parse(c, "").map_err(|_| SsmError::internal())?,
                None => ComplianceLevel::Unspecified,
            };
        let rejected_patches_action = match self.rejected_patches_action.as_deref() {
            Some("BLOCK") => RejectedPatchesAction::Block,
            Some("ALLOW_AS_DEPENDENCY") | None => RejectedPatchesAction::AllowAsDependency,
            Some(_) => return Err(SsmError::internal()),
        };
        let tags = validate_tags(&self.tags.unwrap_or_default())?;

        Ok(CreatePatchBaseline {
            baseline: PatchBaseline {
                name,
                operating_system: os,
                description: self.description,
                global_filters,
                rules,
                approved_patches,
                approved_patches_compliance_level,
                approved_patches_enable_non_security: self
                    .approved_patches_enable_non_security
                    .unwrap_or(false),
                rejected_patches,
                rejected_patches_action,
            },
            client_token: self.client_token,
            tags,
        })
    }

    /// Every constraint of SSM's model the request breaks, in SSM's words.
    fn model_violations(&self, v: &mut Vec<String>) {
        match self.name.as_deref() {
            None => v.push(
                "Value null at 'name' failed to satisfy constraint: Member must not be null".into(),
            ),
            Some(name) => {
                let n = name.chars().count();
                if n > NAME_MAX {
                    v.push(violation(
                        name,
                        "name",
                        &format!("Member must have length less than or equal to {NAME_MAX}"),
                    ));
                }
                if n < NAME_MIN {
                    v.push(violation(
                        name,
                        "name",
                        &format!("Member must have length greater than or equal to {NAME_MIN}"),
                    ));
                }
                if !is_baseline_name(name) {
                    v.push(violation(
                        name,
                        "name",
                        &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
                    ));
                }
            }
        }
        if let Some(os) = &self.operating_system
            && !ALL_OPERATING_SYSTEMS.contains(&os.as_str())
        {
            v.push(violation(
                os,
                "operatingSystem",
                &enum_constraint(&ALL_OPERATING_SYSTEMS),
            ));
        }
        if let Some(g) = &self.global_filters {
            group_violations(g, "globalFilters", v);
        }
        if let Some(rules) = &self.approval_rules {
            match &rules.patch_rules {
                None => v.push(
                    "Value null at 'approvalRules.patchRules' failed to satisfy constraint: Member must not be null".into(),
                ),
                Some(list) => {
                    if list.len() > MAX_RULES {
                        v.push(list_violation(list.len(), "approvalRules.patchRules", MAX_RULES));
                    }
                    for (i, r) in list.iter().enumerate() {
                        let at = format!("approvalRules.patchRules.{}.member", i + 1);
                        match &r.patch_filter_group {
                            None => v.push(format!(
                                "Value null at '{at}.patchFilterGroup' failed to satisfy constraint: Member must not be null"
                            )),
                            Some(g) => group_violations(g, &format!("{at}.patchFilterGroup"), v),
                        }
                        if let Some(c) = &r.compliance_level
                            && let Err(e) = ComplianceLevel::parse(c, &format!("{at}.complianceLevel"))
                        {
                            v.push(e);
                        }
                        if let Some(days) = r.approve_after_days {
                            let path = format!("{at}.approveAfterDays");
                            if days > MAX_APPROVE_AFTER_DAYS {
                                v.push(violation(&days.to_string(), &path, &format!("Member must have value less than or equal to {MAX_APPROVE_AFTER_DAYS}")));
                            }
                            if days < 0 {
                                v.push(violation(&days.to_string(), &path, "Member must have value greater than or equal to 0"));
                            }
                        }
                        if let Some(date) = &r.approve_until_date {
                            length(date, &format!("{at}.approveUntilDate"), 1, DATE_MAX, v);
                        }
                    }
                }
            }
        }
        for (field, list) in [
            ("approvedPatches", &self.approved_patches),
            ("rejectedPatches", &self.rejected_patches),
        ] {
            if let Some(list) = list {
                if list.len() > MAX_PATCHES {
                    v.push(list_violation(list.len(), field, MAX_PATCHES));
                }
                for (i, p) in list.iter().enumerate() {
                    length(p, &format!("{field}.{}.member", i + 1), 1, PATCH_ID_MAX, v);
                }
            }
        }
        if let Some(c) = &self.approved_patches_compliance_level
            && let Err(e) = ComplianceLevel::parse(c, "approvedPatchesComplianceLevel")
        {
            v.push(e);
        }
        if let Some(a) = &self.rejected_patches_action
            && !PATCH_ACTIONS.contains(&a.as_str())
        {
            v.push(violation(
                a,
                "rejectedPatchesAction",
                &enum_constraint(&PATCH_ACTIONS),
            ));
        }
        if let Some(s) = &self.available_security_updates_compliance_status
            && !COMPLIANCE_STATUSES.contains(&s.as_str())
        {
            v.push(violation(
                s,
                "availableSecurityUpdatesComplianceStatus",
                &enum_constraint(&COMPLIANCE_STATUSES),
            ));
        }
        if let Some(d) = &self.description {
            length(d, "description", 1, DESCRIPTION_MAX, v);
        }
        if let Some(t) = &self.client_token {
            length(t, "clientToken", 1, CLIENT_TOKEN_MAX, v);
        }
        if let Some(s) = &self.sources
            && s.len() > 20
        {
            v.push(list_violation(s.len(), "sources", 20));
        }
        if let Some(t) = &self.tags
            && t.len() > MAX_TAG_LIST
        {
            v.push(list_violation(t.len(), "tags", MAX_TAG_LIST));
        }
    }
}

fn group_violations(g: &PatchFilterGroupInput, at: &str, v: &mut Vec<String>) {
    let Some(list) = &g.patch_filters else {
        v.push(format!(
            "Value null at '{at}.patchFilters' failed to satisfy constraint: Member must not be null"
        ));
        return;
    };
    if list.len() > MAX_FILTERS {
        v.push(list_violation(
            list.len(),
            &format!("{at}.patchFilters"),
            MAX_FILTERS,
        ));
    }
    for (i, f) in list.iter().enumerate() {
        let fat = format!("{at}.patchFilters.{}.member", i + 1);
        match &f.key {
            None => v.push(format!(
                "Value null at '{fat}.key' failed to satisfy constraint: Member must not be null"
            )),
            Some(k) if !ALL_FILTER_KEYS.contains(&k.as_str()) => {
                v.push(violation(
                    k,
                    &format!("{fat}.key"),
                    &enum_constraint(&ALL_FILTER_KEYS),
                ));
            }
            Some(_) => {}
        }
        match &f.values {
            None => v.push(format!(
                "Value null at '{fat}.values' failed to satisfy constraint: Member must not be null"
            )),
            Some(values) => {
                let path = format!("{fat}.values");
                if values.len() > MAX_FILTER_VALUES {
                    v.push(list_violation(values.len(), &path, MAX_FILTER_VALUES));
                }
                if values.is_empty() {
                    v.push(format!(
                        "Value '[]' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to 1"
                    ));
                }
                for (j, value) in values.iter().enumerate() {
                    length(
                        value,
                        &format!("{path}.{}.member", j + 1),
                        1,
                        FILTER_VALUE_MAX,
                        v,
                    );
                }
            }
        }
    }
}

/// Checks a group's filters against what the operating system has; the
/// model constraints have been checked already.
fn filters(
    os: OperatingSystem,
    inputs: Vec<PatchFilterInput>,
    at: &str,
) -> Result<Vec<PatchFilter>, SsmError> {
    let mut out: Vec<PatchFilter> = Vec::new();
    for f in inputs {
        let key_name = f.key.unwrap_or_default();
        let key = os
            .filter_keys()
            .iter()
            .copied()
            .find(|k| k.as_str() == key_name)
            .ok_or_else(|| {
                let valid: Vec<&str> = os.filter_keys().iter().map(|k| k.as_str()).collect();
                SsmError::ValidationException(format!(
                    "{at}: the patch filter key {key_name} is not valid for operating system {os}. Valid keys for {os}: {}.",
                    valid.join(", ")
                ))
            })?;
        if out.iter().any(|existing| existing.key == key) {
            return Err(SsmError::ValidationException(format!(
                "{at}: the patch filter key {key_name} is given more than once; give each key once, with all its values."
            )));
        }
        out.push(PatchFilter {
            key,
            values: f.values.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Checks ApprovedPatches or RejectedPatches for apt: package names alone,
/// as SSM takes them for Debian Server and Ubuntu Server (no architecture,
/// no version), with at most one `*` wildcard. Duplicates are dropped.
fn patch_names(
    list: Vec<String>,
    os: OperatingSystem,
    field: &str,
) -> Result<Vec<String>, SsmError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in list {
        if !is_apt_patch_name(&name) {
            return Err(SsmError::ValidationException(format!(
                "{field}: '{name}' is not a package name of {os}. Give the package name alone (letters, digits, '+', '-', '.', starting with a letter or digit, and at most one '*' wildcard), without architecture or version: for example openssl or libssl*."
            )));
        }
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    Ok(out)
}

/// A Debian package name (policy 5.6.1: letters, digits, `+`, `-`, `.`,
/// starting with a letter or digit), taking SSM's example names with
/// capitals too, and one `*` anywhere.
pub fn is_apt_patch_name(name: &str) -> bool {
    let stars = name.matches('*').count();
    if stars > 1 || name.is_empty() || name == "*" {
        return false;
    }
    let Some(first) = name.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == '*') {
        return false;
    }
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '*'))
}

fn is_baseline_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && (NAME_MIN..=NAME_MAX).contains(&name.chars().count())
}

/// `YYYY-MM-DD`, a real day.
pub fn parse_date(s: &str) -> Option<Date> {
    if s.len() != 10 {
        return None;
    }
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

fn violation(value: &str, path: &str, constraint: &str) -> String {
    format!("Value '{value}' at '{path}' failed to satisfy constraint: {constraint}")
}

fn list_violation(len: usize, path: &str, max: usize) -> String {
    format!(
        "Value with {len} members at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
    )
}

fn length(value: &str, path: &str, min: usize, max: usize, v: &mut Vec<String>) {
    let n = value.chars().count();
    if n > max {
        v.push(violation(
            value,
            path,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if n < min {
        v.push(violation(
            value,
            path,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
}

fn enum_constraint(values: &[&str]) -> String {
    format!(
        "Member must satisfy enum value set: [{}]",
        values.join(", ")
    )
}

fn model_error(value: &str, path: &str, constraint: &str) -> SsmError {
    validation(vec![violation(value, path, constraint)])
}

fn validation(errors: Vec<String>) -> SsmError {
    match errors.len() {
        1 => SsmError::ValidationException(format!("1 validation error detected: {}", errors[0])),
        n => SsmError::ValidationException(format!(
            "{n} validation errors detected: {}",
            errors.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(body: Value) -> CreatePatchBaseline {
        match CreatePatchBaselineRequest::parse(&body) {
            Ok(c) => c,
            Err(e) => panic!("refused: {e:?}"),
        }
    }

    fn refused(body: Value) -> SsmError {
        match CreatePatchBaselineRequest::parse(&body) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e,
        }
    }

    fn full() -> Value {
        json!({
            "Name": "steward-ubuntu.security_1",
            "OperatingSystem": "UBUNTU",
            "Description": "Security updates, at once",
            "GlobalFilters": {"PatchFilters": [{"Key": "PRODUCT", "Values": ["Ubuntu22.04"]}]},
            "ApprovalRules": {"PatchRules": [
                {"PatchFilterGroup": {"PatchFilters": [
                    {"Key": "PRIORITY", "Values": ["Required", "Important"]},
                    {"Key": "SECTION", "Values": ["*"]}
                ]}, "ComplianceLevel": "HIGH", "ApproveAfterDays": 7, "EnableNonSecurity": true},
                {"PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Standard"]}]},
                 "ApproveUntilDate": "2025-11-16"},
                {"PatchFilterGroup": {"PatchFilters": []}}
            ]},
            "ApprovedPatches": ["openssl", "libssl*", "openssl"],
            "ApprovedPatchesComplianceLevel": "CRITICAL",
            "ApprovedPatchesEnableNonSecurity": true,
            "RejectedPatches": ["telnet"],
            "RejectedPatchesAction": "BLOCK",
            "ClientToken": "token-1",
            "Tags": [{"Key": "team", "Value": "ops"}]
        })
    }

    #[test]
    fn a_full_ubuntu_baseline_is_read_with_every_field() {
        let c = ok(full());
        let b = &c.baseline;
        assert_eq!(b.name, "steward-ubuntu.security_1");
        assert_eq!(b.operating_system, OperatingSystem::Ubuntu);
        assert_eq!(b.description.as_deref(), Some("Security updates, at once"));
        assert_eq!(
            b.global_filters,
            vec![PatchFilter {
                key: PatchFilterKey::Product,
                values: vec!["Ubuntu22.04".into()]
            }]
        );
        assert_eq!(b.rules.len(), 3);
        assert_eq!(b.rules[0].compliance_level, ComplianceLevel::High);
        assert_eq!(b.rules[0].approval, Approval::AfterDays(7));
        assert!(b.rules[0].enable_non_security);
        assert_eq!(b.rules[0].filters[1].key, PatchFilterKey::Section);
        assert_eq!(
            b.rules[1].approval,
            Approval::UntilDate(time::macros::date!(2025 - 11 - 16))
        );
        assert_eq!(b.rules[1].compliance_level, ComplianceLevel::Unspecified);
        assert!(!b.rules[1].enable_non_security);
        assert_eq!(b.rules[2].approval, Approval::Immediately);
        assert_eq!(b.approved_patches, vec!["openssl", "libssl*"]);
        assert_eq!(
            b.approved_patches_compliance_level,
            ComplianceLevel::Critical
        );
        assert!(b.approved_patches_enable_non_security);
        assert_eq!(b.rejected_patches, vec!["telnet"]);
        assert_eq!(b.rejected_patches_action, RejectedPatchesAction::Block);
        assert_eq!(c.client_token.as_deref(), Some("token-1"));
        assert_eq!(c.tags.get("team").map(String::as_str), Some("ops"));
    }

    #[test]
    fn a_minimal_debian_baseline_takes_ssms_defaults() {
        let c = ok(json!({"Name": "deb", "OperatingSystem": "DEBIAN"}));
        let b = c.baseline;
        assert_eq!(b.operating_system, OperatingSystem::Debian);
        assert!(b.rules.is_empty() && b.global_filters.is_empty());
        assert_eq!(
            b.approved_patches_compliance_level,
            ComplianceLevel::Unspecified
        );
        assert_eq!(
            b.rejected_patches_action,
            RejectedPatchesAction::AllowAsDependency
        );
        assert!(!b.approved_patches_enable_non_security);
    }

    #[test]
    fn the_name_is_required_and_checked_as_the_model_says() {
        let e = refused(json!({"OperatingSystem": "UBUNTU"}));
        assert_eq!(e, SsmError::ValidationException("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null".into()));
        let e = refused(json!({"Name": "a b", "OperatingSystem": "UBUNTU"}));
        assert_eq!(
            e,
            SsmError::ValidationException(format!(
                "1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}"
            ))
        );
        let e = refused(json!({"Name": "ab", "OperatingSystem": "UBUNTU"}));
        assert!(e.to_string().starts_with("2 validation errors detected: Value 'ab' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 3; "), "{e}");
        ok(json!({"Name": "a".repeat(128), "OperatingSystem": "UBUNTU"}));
        let e = refused(json!({"Name": "a".repeat(129), "OperatingSystem": "UBUNTU"}));
        assert!(
            e.to_string()
                .contains("Member must have length less than or equal to 128"),
            "{e}"
        );
    }

    #[test]
    fn every_model_violation_is_reported_together() {
        let e = refused(json!({
            "Name": "ok-name",
            "OperatingSystem": "UBUNTU",
            "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "COLOR", "Values": []}]},
                "ComplianceLevel": "SEVERE", "ApproveAfterDays": 361}]},
            "RejectedPatchesAction": "DENY"
        }));
        let s = e.to_string();
        assert_eq!(e.code(), "ValidationException");
        assert!(s.starts_with("5 validation errors detected: "), "{s}");
        assert!(s.contains("Value 'COLOR' at 'approvalRules.patchRules.1.member.patchFilterGroup.patchFilters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [ARCH, "), "{s}");
        assert!(s.contains("Value '[]' at 'approvalRules.patchRules.1.member.patchFilterGroup.patchFilters.1.member.values' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{s}");
        assert!(s.contains("Value 'SEVERE' at 'approvalRules.patchRules.1.member.complianceLevel' failed to satisfy constraint: Member must satisfy enum value set: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNSPECIFIED]"), "{s}");
        assert!(s.contains("Value '361' at 'approvalRules.patchRules.1.member.approveAfterDays' failed to satisfy constraint: Member must have value less than or equal to 360"), "{s}");
        assert!(s.contains("Value 'DENY' at 'rejectedPatchesAction' failed to satisfy constraint: Member must satisfy enum value set: [ALLOW_AS_DEPENDENCY, BLOCK]"), "{s}");
    }

    #[test]
    fn approve_after_days_spans_zero_to_360() {
        for days in [0, 360] {
            let c = ok(
                json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": [
                {"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": days}]}}),
            );
            assert_eq!(
                c.baseline.rules[0].approval,
                Approval::AfterDays(days as u16)
            );
        }
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": [
            {"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": -1}]}}),
        );
        assert!(
            e.to_string()
                .contains("Member must have value greater than or equal to 0"),
            "{e}"
        );
    }

    #[test]
    fn the_model_limits_on_list_sizes_hold() {
        let rule = json!({"PatchFilterGroup": {"PatchFilters": []}});
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": vec![rule.clone(); 11]}}),
        );
        assert!(e.to_string().contains("at 'approvalRules.patchRules' failed to satisfy constraint: Member must have length less than or equal to 10"), "{e}");
        ok(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": vec![rule; 10]}}),
        );

        let f = json!({"Key": "PRODUCT", "Values": ["*"]});
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "GlobalFilters": {"PatchFilters": vec![f; 5]}}),
        );
        assert!(e.to_string().contains("at 'globalFilters.patchFilters' failed to satisfy constraint: Member must have length less than or equal to 4"), "{e}");

        let values: Vec<String> = (0..21).map(|i| format!("v{i}")).collect();
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "GlobalFilters": {"PatchFilters": [{"Key": "SECTION", "Values": values}]}}),
        );
        assert!(e.to_string().contains("at 'globalFilters.patchFilters.1.member.values' failed to satisfy constraint: Member must have length less than or equal to 20"), "{e}");
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "GlobalFilters": {"PatchFilters": [{"Key": "SECTION", "Values": ["x".repeat(65)]}]}}),
        );
        assert!(e.to_string().contains("at 'globalFilters.patchFilters.1.member.values.1.member' failed to satisfy constraint: Member must have length less than or equal to 64"), "{e}");

        let patches: Vec<String> = (0..51).map(|i| format!("pkg{i}")).collect();
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovedPatches": patches}),
        );
        assert!(e.to_string().contains("at 'approvedPatches' failed to satisfy constraint: Member must have length less than or equal to 50"), "{e}");
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "RejectedPatches": ["p".repeat(101)]}),
        );
        assert!(e.to_string().contains("at 'rejectedPatches.1.member' failed to satisfy constraint: Member must have length less than or equal to 100"), "{e}");
        let e = refused(json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "Description": ""}));
        assert!(e.to_string().contains("at 'description' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{e}");
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ClientToken": "t".repeat(65)}),
        );
        assert!(e.to_string().contains("at 'clientToken' failed to satisfy constraint: Member must have length less than or equal to 64"), "{e}");
    }

    #[test]
    fn only_debian_and_ubuntu_are_patched_and_dnf_systems_are_told_why() {
        for os in ["AMAZON_LINUX_2023", "REDHAT_ENTERPRISE_LINUX"] {
            let e = refused(json!({"Name": "n-1", "OperatingSystem": os}));
            assert_eq!(e.code(), "UnsupportedOperatingSystem");
            assert!(e.to_string().contains("dnf"), "{e}");
            assert!(
                e.to_string()
                    .contains("Give OperatingSystem DEBIAN or UBUNTU"),
                "{e}"
            );
        }
        let e = refused(json!({"Name": "n-1", "OperatingSystem": "SUSE"}));
        assert_eq!(e.code(), "UnsupportedOperatingSystem");
        assert!(!e.to_string().contains("dnf"), "{e}");
        // Absent, SSM takes WINDOWS.
        let e = refused(json!({"Name": "n-1"}));
        assert_eq!(e.code(), "UnsupportedOperatingSystem");
        assert!(e.to_string().contains("WINDOWS"), "{e}");
        let e = refused(json!({"Name": "n-1", "OperatingSystem": "PLAN9"}));
        assert_eq!(e.code(), "ValidationException");
        assert!(e.to_string().contains("Value 'PLAN9' at 'operatingSystem' failed to satisfy constraint: Member must satisfy enum value set: [WINDOWS, "), "{e}");
    }

    #[test]
    fn filter_keys_are_those_of_the_operating_system() {
        for key in ["PRODUCT", "SECTION", "PRIORITY"] {
            ok(
                json!({"Name": "n-1", "OperatingSystem": "DEBIAN", "GlobalFilters": {"PatchFilters": [{"Key": key, "Values": ["*"]}]}}),
            );
        }
        for key in ["CLASSIFICATION", "SEVERITY", "MSRC_SEVERITY", "PATCH_SET"] {
            let e = refused(
                json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": [
                {"PatchFilterGroup": {"PatchFilters": [{"Key": key, "Values": ["*"]}]}}]}}),
            );
            assert_eq!(e.code(), "ValidationException");
            assert!(
                e.to_string().contains(&format!(
                    "the patch filter key {key} is not valid for operating system UBUNTU"
                )),
                "{e}"
            );
            assert!(
                e.to_string()
                    .contains("ApprovalRules.PatchRules[1].PatchFilterGroup"),
                "{e}"
            );
        }
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "GlobalFilters": {"PatchFilters": [
            {"Key": "PRIORITY", "Values": ["Required"]}, {"Key": "PRIORITY", "Values": ["Extra"]}]}}),
        );
        assert!(e.to_string().contains("more than once"), "{e}");
    }

    #[test]
    fn a_rule_takes_a_delay_or_a_cutoff_not_both_and_the_cutoff_is_a_real_day() {
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": [
            {"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": 1, "ApproveUntilDate": "2025-01-01"}]}}),
        );
        assert!(
            e.to_string()
                .contains("both ApproveAfterDays and ApproveUntilDate"),
            "{e}"
        );
        for bad in ["2025-02-30", "2025/01/01", "25-01-01", "2025-1-1"] {
            let e = refused(
                json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": [
                {"PatchFilterGroup": {"PatchFilters": []}, "ApproveUntilDate": bad}]}}),
            );
            assert!(e.to_string().contains("YYYY-MM-DD"), "{bad}: {e}");
        }
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": [
            {"PatchFilterGroup": {"PatchFilters": []}, "ApproveUntilDate": "2025-01-011"}]}}),
        );
        assert!(e.to_string().contains("at 'approvalRules.patchRules.1.member.approveUntilDate' failed to satisfy constraint: Member must have length less than or equal to 10"), "{e}");
    }

    #[test]
    fn patch_lists_take_apt_package_names() {
        for good in [
            "openssl",
            "libc6",
            "g++-12",
            "libstdc++6",
            "python3.11",
            "ExamplePkg33",
            "libssl*",
            "*-dev",
            "lib*ssl",
        ] {
            assert!(is_apt_patch_name(good), "{good}");
        }
        for bad in [
            "openssl:amd64",
            "openssl=3.0.2",
            "openssl_3.0.2",
            "-dev",
            "a**",
            "*",
            "",
            "open ssl",
            "libs*l*",
        ] {
            assert!(!is_apt_patch_name(bad), "{bad}");
            let e = refused(
                json!({"Name": "n-1", "OperatingSystem": "DEBIAN", "RejectedPatches": [bad]}),
            );
            assert_eq!(e.code(), "ValidationException");
        }
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "DEBIAN", "ApprovedPatches": ["curl.x86_64"]}),
        );
        assert!(
            e.to_string()
                .contains("ApprovedPatches: 'curl.x86_64' is not a package name of DEBIAN"),
            "{e}"
        );
    }

    #[test]
    fn unsupported_members_are_refused_clearly() {
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "Sources": [
            {"Name": "src", "Products": ["Ubuntu22.04"], "Configuration": "deb http://x y main"}]}),
        );
        assert!(e.to_string().contains("Sources is not supported"), "{e}");
        ok(json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "Sources": []}));
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "AvailableSecurityUpdatesComplianceStatus": "COMPLIANT"}),
        );
        assert!(e.to_string().contains("Windows Server"), "{e}");
        let e = refused(json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "Colour": "red"}));
        assert_eq!(e.code(), "SerializationException");
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "ApprovalRules": {"PatchRules": [
            {"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": "7"}]}}),
        );
        assert_eq!(e.code(), "SerializationException");
    }

    #[test]
    fn tags_follow_ssms_tag_rules() {
        let e = refused(
            json!({"Name": "n-1", "OperatingSystem": "UBUNTU", "Tags": [{"Key": "aws:x", "Value": "y"}]}),
        );
        assert_eq!(e.code(), "ValidationException");
    }
}

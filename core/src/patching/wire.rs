//! A baseline in SSM's JSON: the CreatePatchBaseline shape (what the store
//! keeps, and what GetPatchBaseline and UpdatePatchBaseline answer with),
//! and the `PatchBaselineIdentity` of the listings.

use serde_json::{Map, Value, json};
use time::macros::format_description;

use super::baseline::{Approval, PatchBaseline, PatchFilter};

fn filter_group(filters: &[PatchFilter]) -> Value {
    json!({
        "PatchFilters": filters
            .iter()
            .map(|f| json!({"Key": f.key.as_str(), "Values": f.values}))
            .collect::<Vec<_>>()
    })
}

impl PatchBaseline {
    /// CreatePatchBaseline's request for this baseline:
    /// `CreatePatchBaselineRequest::parse(&b.to_create_json())?.baseline == b`.
    pub fn to_create_json(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let mut rule = json!({
                    "PatchFilterGroup": filter_group(&r.filters),
                    "ComplianceLevel": r.compliance_level.as_str(),
                    "EnableNonSecurity": r.enable_non_security,
                });
                match r.approval {
                    Approval::Immediately => {}
                    Approval::AfterDays(d) => rule["ApproveAfterDays"] = json!(d),
                    Approval::UntilDate(date) => {
                        // A checked date always formats; an empty string
                        // would be refused on the way back, never kept.
                        let text = date
                            .format(format_description!("[year]-[month]-[day]"))
                            .unwrap_or_default();
                        rule["ApproveUntilDate"] = json!(text);
                    }
                }
                rule
            })
            .collect();
        let mut out = Map::new();
        out.insert(
            "OperatingSystem".into(),
            json!(self.operating_system.as_str()),
        );
        out.insert("Name".into(), json!(self.name));
        if let Some(d) = &self.description {
            out.insert("Description".into(), json!(d));
        }
        out.insert("GlobalFilters".into(), filter_group(&self.global_filters));
        out.insert("ApprovalRules".into(), json!({ "PatchRules": rules }));
        out.insert("ApprovedPatches".into(), json!(self.approved_patches));
        out.insert(
            "ApprovedPatchesComplianceLevel".into(),
            json!(self.approved_patches_compliance_level.as_str()),
        );
        out.insert(
            "ApprovedPatchesEnableNonSecurity".into(),
            json!(self.approved_patches_enable_non_security),
        );
        out.insert("RejectedPatches".into(), json!(self.rejected_patches));
        out.insert(
            "RejectedPatchesAction".into(),
            json!(self.rejected_patches_action.as_str()),
        );
        Value::Object(out)
    }
}

/// GetPatchBaseline's answer (UpdatePatchBaseline's without `PatchGroups`).
pub fn baseline_view(
    baseline_id: &str,
    b: &PatchBaseline,
    created: f64,
    modified: f64,
    patch_groups: Option<&[String]>,
) -> Value {
    let mut v = b.to_create_json();
    v["BaselineId"] = json!(baseline_id);
    v["CreatedDate"] = json!(created);
    v["ModifiedDate"] = json!(modified);
    v["Sources"] = json!([]);
    if let Some(groups) = patch_groups {
        v["PatchGroups"] = json!(groups);
    }
    v
}

/// A `PatchBaselineIdentity`.
pub fn identity(baseline_id: &str, b: &PatchBaseline, default: bool) -> Value {
    let mut v = json!({
        "BaselineId": baseline_id,
        "BaselineName": b.name,
        "OperatingSystem": b.operating_system.as_str(),
        "DefaultBaseline": default,
    });
    if let Some(d) = &b.description {
        v["BaselineDescription"] = json!(d);
    }
    v
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::Date;

    use super::super::baseline::{
        ComplianceLevel, CreatePatchBaselineRequest, OperatingSystem, PatchFilterKey, PatchRule,
        RejectedPatchesAction,
    };
    use super::*;

    fn os() -> impl Strategy<Value = OperatingSystem> {
        prop_oneof![Just(OperatingSystem::Debian), Just(OperatingSystem::Ubuntu)]
    }

    fn level() -> impl Strategy<Value = ComplianceLevel> {
        prop_oneof![
            Just(ComplianceLevel::Critical),
            Just(ComplianceLevel::High),
            Just(ComplianceLevel::Medium),
            Just(ComplianceLevel::Low),
            Just(ComplianceLevel::Informational),
            Just(ComplianceLevel::Unspecified),
        ]
    }

    /// Filters with distinct keys, as a checked group has them.
    fn filters() -> impl Strategy<Value = Vec<PatchFilter>> {
        let values = prop::collection::vec("[A-Za-z0-9*./+-]{1,64}", 1..=20);
        (
            prop::option::of(values.clone()),
            prop::option::of(values.clone()),
            prop::option::of(values),
        )
            .prop_map(|(p, s, r)| {
                [
                    (PatchFilterKey::Product, p),
                    (PatchFilterKey::Section, s),
                    (PatchFilterKey::Priority, r),
                ]
                .into_iter()
                .filter_map(|(key, v)| v.map(|values| PatchFilter { key, values }))
                .collect()
            })
    }

    fn approval() -> impl Strategy<Value = Approval> {
        prop_oneof![
            Just(Approval::Immediately),
            (0u16..=360).prop_map(Approval::AfterDays),
            (0i32..40_000).prop_map(|d| {
                let base =
                    Date::from_calendar_date(2000, time::Month::January, 1).unwrap_or(Date::MIN);
                Approval::UntilDate(base + time::Duration::days(i64::from(d)))
            }),
        ]
    }

    fn rule() -> impl Strategy<Value = PatchRule> {
        (filters(), level(), approval(), any::<bool>()).prop_map(
            |(filters, compliance_level, approval, enable_non_security)| PatchRule {
                filters,
                compliance_level,
                approval,
                enable_non_security,
            },
        )
    }

    /// Distinct apt package names, with at most one `*`.
    fn patches() -> impl Strategy<Value = Vec<String>> {
        prop::collection::btree_set("[a-z0-9][a-z0-9+.-]{0,20}\\*?", 0..=50)
            .prop_map(|s| s.into_iter().collect())
    }

    fn baseline() -> impl Strategy<Value = PatchBaseline> {
        (
            (
                "[a-zA-Z0-9_.-]{3,128}",
                os(),
                prop::option::of("[ -~]{1,1024}"),
                filters(),
                prop::collection::vec(rule(), 0..=10),
            ),
            (
                patches(),
                level(),
                any::<bool>(),
                patches(),
                prop_oneof![
                    Just(RejectedPatchesAction::AllowAsDependency),
                    Just(RejectedPatchesAction::Block)
                ],
            ),
        )
            .prop_map(
                |(
                    (name, operating_system, description, global_filters, rules),
                    (approved, level, non_security, rejected, action),
                )| PatchBaseline {
                    name,
                    operating_system,
                    description,
                    global_filters,
                    rules,
                    approved_patches: approved,
                    approved_patches_compliance_level: level,
                    approved_patches_enable_non_security: non_security,
                    rejected_patches: rejected,
                    rejected_patches_action: action,
                },
            )
    }

    proptest! {
        #[test]
        fn a_baseline_survives_its_create_json(b in baseline()) {
            let back = CreatePatchBaselineRequest::parse(&b.to_create_json());
            prop_assert!(back.is_ok(), "{:?}", back);
            if let Ok(c) = back {
                prop_assert_eq!(c.baseline, b);
            }
        }
    }

    #[test]
    fn the_json_has_ssms_member_names() {
        let b = super::super::predefined::for_os(OperatingSystem::Ubuntu).baseline;
        let j = b.to_create_json();
        assert_eq!(j["OperatingSystem"], "UBUNTU");
        assert_eq!(j["Name"], "AWS-UbuntuDefaultPatchBaseline");
        assert_eq!(
            j["ApprovalRules"]["PatchRules"][0]["PatchFilterGroup"]["PatchFilters"][0]["Key"],
            "PRIORITY"
        );
        assert_eq!(
            j["ApprovalRules"]["PatchRules"][0].get("ApproveAfterDays"),
            None
        );
        assert_eq!(j["RejectedPatchesAction"], "ALLOW_AS_DEPENDENCY");
        assert_eq!(j["GlobalFilters"], json!({"PatchFilters": []}));
    }
}

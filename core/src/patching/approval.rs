//! Whether a baseline approves an update apt offers, decided as Patch
//! Manager decides it on Debian Server and Ubuntu Server:
//!
//! 1. A package in RejectedPatches is rejected, whatever else the baseline
//!    says (a patch both approved and rejected is rejected); the baseline's
//!    RejectedPatchesAction says whether it may still come in as a
//!    dependency.
//! 2. A package in ApprovedPatches is approved, rules and global filters
//!    aside, if it is a security update or ApprovedPatchesEnableNonSecurity
//!    is set.
//! 3. Otherwise it must pass every GlobalFilter, then one rule: every filter
//!    of the rule matches, it is a security update or the rule has
//!    EnableNonSecurity, and its approval delay or cutoff is met.
//!
//! Filters compare without case; a value may hold `*` wildcards. Within a
//! filter any value may match; all filters of a group must. Dates are UTC
//! days. An update whose release date is unknown counts as released long
//! enough ago (SSM treats a missing date as no delay).
//!
//! The compliance level of a missing approved update is the most severe of
//! those that approve it: ApprovedPatchesComplianceLevel for the list, each
//! matching rule's ComplianceLevel.

use time::{Date, Duration};

use super::baseline::{
    Approval, ComplianceLevel, PatchBaseline, PatchFilter, PatchFilterKey, PatchRule,
    RejectedPatchesAction,
};

/// An update apt offers for a package, with what the baseline filters on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateCandidate {
    /// The package name, e.g. `openssl`.
    pub name: String,
    /// The candidate version, e.g. `3.0.2-0ubuntu1.15`.
    pub version: String,
    /// `amd64`, `arm64`, `all`, …
    pub architecture: String,
    /// SECTION, e.g. `utils` or `universe/net`.
    pub section: String,
    /// PRIORITY, e.g. `optional` (compared without case).
    pub priority: String,
    /// PRODUCT: the node's release, e.g. `Ubuntu22.04`, `Debian12`.
    pub product: String,
    /// When it was released, or first seen, if known.
    pub released: Option<Date>,
    /// Whether the candidate comes from the release's security archive.
    pub security: bool,
}

/// What the baseline says of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// To be installed; reported missing at this level until it is.
    Approved { compliance_level: ComplianceLevel },
    /// Listed in RejectedPatches.
    Rejected { action: RejectedPatchesAction },
    /// Neither: not installed, not counted against compliance.
    NotApproved,
}

impl Decision {
    /// The compliance level of this update while it is missing: only an
    /// approved update is one.
    pub fn missing_compliance_level(self) -> Option<ComplianceLevel> {
        match self {
            Decision::Approved { compliance_level } => Some(compliance_level),
            _ => None,
        }
    }
}

/// Decides an update against a baseline, on day `today` (UTC).
pub fn evaluate(baseline: &PatchBaseline, update: &UpdateCandidate, today: Date) -> Decision {
    if baseline
        .rejected_patches
        .iter()
        .any(|p| glob_matches(p, &update.name))
    {
        return Decision::Rejected {
            action: baseline.rejected_patches_action,
        };
    }

    let mut level: Option<ComplianceLevel> = None;
    let mut approve = |l: ComplianceLevel| {
        level = Some(match level {
            Some(current) if current.severity() >= l.severity() => current,
            _ => l,
        });
    };

    if (update.security || baseline.approved_patches_enable_non_security)
        && baseline
            .approved_patches
            .iter()
            .any(|p| glob_matches(p, &update.name))
    {
        approve(baseline.approved_patches_compliance_level);
    }

    if group_matches(&baseline.global_filters, update) {
        for rule in &baseline.rules {
            if rule_approves(rule, update, today) {
                approve(rule.compliance_level);
            }
        }
    }

    match level {
        Some(compliance_level) => Decision::Approved { compliance_level },
        None => Decision::NotApproved,
    }
}

fn rule_approves(rule: &PatchRule, update: &UpdateCandidate, today: Date) -> bool {
    (update.security || rule.enable_non_security)
        && group_matches(&rule.filters, update)
        && date_allows(rule.approval, update.released, today)
}

/// Whether the rule's delay or cutoff lets an update released on
/// `released` in on `today`.
pub fn date_allows(approval: Approval, released: Option<Date>, today: Date) -> bool {
    let Some(released) = released else {
        return true;
    };
    match approval {
        Approval::Immediately => true,
        Approval::AfterDays(days) => released
            .checked_add(Duration::days(i64::from(days)))
            .is_some_and(|approved_on| approved_on <= today),
        Approval::UntilDate(cutoff) => released <= cutoff,
    }
}

fn group_matches(filters: &[PatchFilter], update: &UpdateCandidate) -> bool {
    filters.iter().all(|f| {
        let property = match f.key {
            PatchFilterKey::Product => &update.product,
            PatchFilterKey::Section => &update.section,
            PatchFilterKey::Priority => &update.priority,
        };
        f.values.iter().any(|v| glob_matches(v, property))
    })
}

/// Whether `pattern` (with `*` for any run of characters) matches all of
/// `value`, without regard to ASCII case.
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let v: Vec<char> = value.chars().map(|c| c.to_ascii_lowercase()).collect();
    // Greedy matching with backtracking to the last star: linear enough for
    // names and filter values of at most a hundred characters.
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && p[pi] == v[vi] {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patching::baseline::OperatingSystem;
    use crate::patching::predefined;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2025 - 06 - 15);

    fn update(name: &str) -> UpdateCandidate {
        UpdateCandidate {
            name: name.into(),
            version: "1.2-3".into(),
            architecture: "amd64".into(),
            section: "utils".into(),
            priority: "optional".into(),
            product: "Ubuntu22.04".into(),
            released: None,
            security: true,
        }
    }

    fn empty() -> PatchBaseline {
        PatchBaseline {
            name: "b-1".into(),
            operating_system: OperatingSystem::Ubuntu,
            description: None,
            global_filters: vec![],
            rules: vec![],
            approved_patches: vec![],
            approved_patches_compliance_level: ComplianceLevel::Unspecified,
            approved_patches_enable_non_security: false,
            rejected_patches: vec![],
            rejected_patches_action: RejectedPatchesAction::AllowAsDependency,
        }
    }

    fn filter(key: PatchFilterKey, values: &[&str]) -> PatchFilter {
        PatchFilter {
            key,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn rule(filters: Vec<PatchFilter>, level: ComplianceLevel, approval: Approval) -> PatchRule {
        PatchRule {
            filters,
            compliance_level: level,
            approval,
            enable_non_security: false,
        }
    }

    fn approved(level: ComplianceLevel) -> Decision {
        Decision::Approved {
            compliance_level: level,
        }
    }

    #[test]
    fn the_predefined_baseline_approves_security_updates_of_any_priority_at_once() {
        let b = predefined::for_os(OperatingSystem::Ubuntu).baseline;
        for priority in ["required", "Important", "STANDARD", "optional", "extra"] {
            let mut u = update("openssl");
            u.priority = priority.into();
            u.released = Some(TODAY);
            assert_eq!(
                evaluate(&b, &u, TODAY),
                approved(ComplianceLevel::Unspecified),
                "{priority}"
            );
        }
        let mut u = update("openssl");
        u.security = false;
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
        let mut u = update("openssl");
        u.priority = "source".into();
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
    }

    #[test]
    fn every_filter_of_a_rule_must_match_and_any_of_its_values() {
        let mut b = empty();
        b.rules.push(rule(
            vec![
                filter(PatchFilterKey::Priority, &["Required", "Optional"]),
                filter(PatchFilterKey::Section, &["universe/*", "utils"]),
                filter(PatchFilterKey::Product, &["Ubuntu22.04"]),
            ],
            ComplianceLevel::Medium,
            Approval::Immediately,
        ));
        assert_eq!(
            evaluate(&b, &update("curl"), TODAY),
            approved(ComplianceLevel::Medium)
        );
        let mut u = update("curl");
        u.section = "universe/net".into();
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::Medium));
        u.section = "net".into();
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
        let mut u = update("curl");
        u.product = "Ubuntu24.04".into();
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
        let mut u = update("curl");
        u.priority = "important".into();
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
    }

    #[test]
    fn non_security_updates_need_enable_non_security() {
        let mut b = empty();
        b.rules
            .push(rule(vec![], ComplianceLevel::Low, Approval::Immediately));
        let mut u = update("vim");
        u.security = false;
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
        b.rules[0].enable_non_security = true;
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::Low));
    }

    #[test]
    fn approve_after_days_counts_whole_utc_days_from_release() {
        let mut b = empty();
        b.rules
            .push(rule(vec![], ComplianceLevel::High, Approval::AfterDays(7)));
        let mut u = update("openssl");
        u.released = Some(date!(2025 - 06 - 08));
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::High));
        u.released = Some(date!(2025 - 06 - 09));
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
        u.released = None;
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::High));
        b.rules[0].approval = Approval::AfterDays(0);
        u.released = Some(TODAY);
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::High));
    }

    #[test]
    fn approve_until_date_takes_updates_released_on_or_before_the_cutoff() {
        let mut b = empty();
        b.rules.push(rule(
            vec![],
            ComplianceLevel::Critical,
            Approval::UntilDate(date!(2025 - 06 - 01)),
        ));
        let mut u = update("openssl");
        u.released = Some(date!(2025 - 06 - 01));
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::Critical));
        u.released = Some(date!(2025 - 06 - 02));
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
    }

    #[test]
    fn global_filters_bound_every_rule_but_not_the_approved_list() {
        let mut b = empty();
        b.global_filters = vec![filter(PatchFilterKey::Section, &["admin"])];
        b.rules
            .push(rule(vec![], ComplianceLevel::Low, Approval::Immediately));
        assert_eq!(evaluate(&b, &update("curl"), TODAY), Decision::NotApproved);
        let mut u = update("sudo");
        u.section = "ADMIN".into();
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::Low));
        b.approved_patches = vec!["curl".into()];
        assert_eq!(
            evaluate(&b, &update("curl"), TODAY),
            approved(ComplianceLevel::Unspecified)
        );
    }

    #[test]
    fn the_approved_list_takes_exact_names_and_wildcards_and_needs_the_non_security_flag() {
        let mut b = empty();
        b.approved_patches = vec!["openssl".into(), "libssl*".into()];
        b.approved_patches_compliance_level = ComplianceLevel::High;
        assert_eq!(
            evaluate(&b, &update("openssl"), TODAY),
            approved(ComplianceLevel::High)
        );
        assert_eq!(
            evaluate(&b, &update("libssl3"), TODAY),
            approved(ComplianceLevel::High)
        );
        assert_eq!(
            evaluate(&b, &update("openssl-dev"), TODAY),
            Decision::NotApproved
        );
        assert_eq!(
            evaluate(&b, &update("xlibssl3"), TODAY),
            Decision::NotApproved
        );
        let mut u = update("openssl");
        u.security = false;
        assert_eq!(evaluate(&b, &u, TODAY), Decision::NotApproved);
        b.approved_patches_enable_non_security = true;
        assert_eq!(evaluate(&b, &u, TODAY), approved(ComplianceLevel::High));
    }

    #[test]
    fn rejected_wins_over_approved_and_carries_the_action() {
        let mut b = empty();
        b.rules.push(rule(
            vec![],
            ComplianceLevel::Critical,
            Approval::Immediately,
        ));
        b.approved_patches = vec!["telnet".into()];
        b.rejected_patches = vec!["telnet".into(), "*-doc".into()];
        assert_eq!(
            evaluate(&b, &update("telnet"), TODAY),
            Decision::Rejected {
                action: RejectedPatchesAction::AllowAsDependency
            }
        );
        b.rejected_patches_action = RejectedPatchesAction::Block;
        assert_eq!(
            evaluate(&b, &update("bash-doc"), TODAY),
            Decision::Rejected {
                action: RejectedPatchesAction::Block
            }
        );
        assert_eq!(
            evaluate(&b, &update("bash"), TODAY),
            approved(ComplianceLevel::Critical)
        );
        assert_eq!(
            evaluate(&b, &update("telnet"), TODAY).missing_compliance_level(),
            None
        );
    }

    #[test]
    fn a_missing_update_takes_the_most_severe_level_of_what_approves_it() {
        let mut b = empty();
        b.rules
            .push(rule(vec![], ComplianceLevel::Low, Approval::Immediately));
        b.rules.push(rule(
            vec![filter(PatchFilterKey::Priority, &["optional"])],
            ComplianceLevel::High,
            Approval::Immediately,
        ));
        b.approved_patches = vec!["curl".into()];
        b.approved_patches_compliance_level = ComplianceLevel::Medium;
        assert_eq!(
            evaluate(&b, &update("curl"), TODAY).missing_compliance_level(),
            Some(ComplianceLevel::High)
        );
        let mut u = update("curl");
        u.priority = "required".into();
        assert_eq!(
            evaluate(&b, &u, TODAY).missing_compliance_level(),
            Some(ComplianceLevel::Medium)
        );
        u.name = "wget".into();
        assert_eq!(
            evaluate(&b, &u, TODAY).missing_compliance_level(),
            Some(ComplianceLevel::Low)
        );
        assert_eq!(Decision::NotApproved.missing_compliance_level(), None);
    }

    #[test]
    fn wildcards_match_any_run_and_nothing_else() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("lib*", "lib"));
        assert!(glob_matches("lib*ssl*", "libfoossl3"));
        assert!(glob_matches("a*b*c", "aXbYbc"));
        assert!(glob_matches("OpenSSL", "openssl"));
        assert!(!glob_matches("lib*ssl", "libssl3"));
        assert!(!glob_matches("openssl", "openssl3"));
        assert!(!glob_matches("openssl", "openss"));
        assert!(!glob_matches("", "a"));
    }

    fn arb_level() -> impl Strategy<Value = ComplianceLevel> {
        prop_oneof![
            Just(ComplianceLevel::Critical),
            Just(ComplianceLevel::High),
            Just(ComplianceLevel::Medium),
            Just(ComplianceLevel::Low),
            Just(ComplianceLevel::Informational),
            Just(ComplianceLevel::Unspecified),
        ]
    }

    fn arb_rule() -> impl Strategy<Value = PatchRule> {
        (
            proptest::collection::vec(("[a-z*]{0,4}", 0..3usize), 0..3),
            arb_level(),
            0u16..400,
            any::<bool>(),
        )
            .prop_map(|(values, level, days, non_security)| {
                let keys = [
                    PatchFilterKey::Product,
                    PatchFilterKey::Section,
                    PatchFilterKey::Priority,
                ];
                let mut filters: Vec<PatchFilter> = Vec::new();
                for (v, k) in values {
                    if !filters.iter().any(|f| f.key == keys[k]) {
                        filters.push(PatchFilter {
                            key: keys[k],
                            values: vec![v, "*".into()],
                        });
                    }
                }
                PatchRule {
                    filters,
                    compliance_level: level,
                    approval: if days % 2 == 0 {
                        Approval::Immediately
                    } else {
                        Approval::AfterDays(days % 361)
                    },
                    enable_non_security: non_security,
                }
            })
    }

    proptest! {
        /// A package the baseline rejects, by its name or a wildcard that
        /// matches it, is never approved, whatever the rules and lists say.
        #[test]
        fn rejected_packages_are_never_approved(
            name in "[a-z0-9][a-z0-9+.-]{0,20}",
            cut in 0usize..22,
            by_wildcard in any::<bool>(),
            rules in proptest::collection::vec(arb_rule(), 0..10),
            approved_too in any::<bool>(),
            enable_non_security in any::<bool>(),
            security in any::<bool>(),
            block in any::<bool>(),
            level in arb_level(),
            released_days_ago in proptest::option::of(0i64..800),
        ) {
            let rejected = if by_wildcard {
                let cut = cut.min(name.len());
                format!("{}*", &name[..cut])
            } else {
                name.clone()
            };
            let mut b = empty();
            b.rules = rules;
            b.rejected_patches = vec![rejected];
            if approved_too {
                b.approved_patches = vec![name.clone(), "*".into()];
            }
            b.approved_patches_enable_non_security = enable_non_security;
            b.approved_patches_compliance_level = level;
            b.rejected_patches_action = if block { RejectedPatchesAction::Block } else { RejectedPatchesAction::AllowAsDependency };
            let mut u = update(&name);
            u.security = security;
            u.released = released_days_ago.and_then(|d| TODAY.checked_sub(Duration::days(d)));
            prop_assert_eq!(evaluate(&b, &u, TODAY), Decision::Rejected { action: b.rejected_patches_action });
        }

        /// A value without a wildcard matches exactly itself, ignoring case.
        #[test]
        fn a_plain_value_matches_only_itself(a in "[a-zA-Z0-9.+-]{0,12}", b in "[a-zA-Z0-9.+-]{0,12}") {
            prop_assert_eq!(glob_matches(&a, &b), a.eq_ignore_ascii_case(&b));
            let star = format!("{a}*");
            let joined = format!("{a}{b}");
            prop_assert!(glob_matches(&star, &joined));
        }
    }
}

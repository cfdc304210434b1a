//! Version labels: SSM's rules for a label, and where labels go when a
//! version is labelled (a label names one version; labelling moves it).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::SsmError;

pub const MAX_LABEL_LENGTH: usize = 100;
/// Labels one version may carry.
pub const MAX_LABELS_PER_VERSION: usize = 10;
/// Labels one Label/UnlabelParameterVersion request may name.
pub const MAX_LABELS_PER_REQUEST: usize = 10;

/// SSM's label rules: letters, numbers, `.`, `-`, `_`; not beginning with a
/// digit, nor with `aws` or `ssm` in any case. (Length is checked on the
/// request, as SSM's API constraint.)
pub fn is_valid(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    !label.is_empty()
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

/// The request's `Labels`: 1 to 10 of 1 to 100 characters each, SSM's
/// `ParameterLabelList` constraint, so a ValidationException in SSM's
/// front-end words (`api_model` says the same before an operation runs).
/// Eleven labels in one request are refused here, as SSM's front end
/// refuses eleven `Names` in GetParameters; ParameterVersionLabelLimitExceeded
/// is for a version that would carry more than 10 ([`plan`]).
pub fn check_request(labels: &[String]) -> Result<(), SsmError> {
    let count = if labels.is_empty() {
        Some("greater than or equal to 1".to_string())
    } else if labels.len() > MAX_LABELS_PER_REQUEST {
        Some(format!("less than or equal to {MAX_LABELS_PER_REQUEST}"))
    } else {
        None
    };
    if let Some(rule) = count {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '[{}]' at 'labels' failed to satisfy constraint: Member must have length {rule}",
            labels.join(", ")
        )));
    }
    for l in labels {
        let n = l.chars().count();
        if n == 0 || n > MAX_LABEL_LENGTH {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '[{l}]' at 'labels' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to {MAX_LABEL_LENGTH}, Member must have length greater than or equal to 1]"
            )));
        }
    }
    Ok(())
}

/// What labelling `version` with `labels` changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelPlan {
    /// Labels refused by the rules, as given (SSM's `InvalidLabels`).
    pub invalid: Vec<String>,
    /// Labels that will name `version` and did not before, with the version
    /// they leave (if any).
    pub moves: BTreeMap<String, Option<u64>>,
}

impl LabelPlan {
    /// The versions whose label sets change: the target and those labels leave.
    pub fn touched(&self, version: u64) -> BTreeSet<u64> {
        let mut out: BTreeSet<u64> = self.moves.values().flatten().copied().collect();
        if !self.moves.is_empty() {
            out.insert(version);
        }
        out
    }
}

/// Plans labelling `version` given every label of the parameter (`current`:
/// label → version). `ParameterVersionLabelLimitExceeded` when the version
/// would carry more than 10 labels; nothing is planned then.
pub fn plan(
    current: &BTreeMap<String, u64>,
    version: u64,
    labels: &[String],
) -> Result<LabelPlan, SsmError> {
    let mut out = LabelPlan::default();
    for l in labels {
        if !is_valid(l) {
            if !out.invalid.contains(l) {
                out.invalid.push(l.clone());
            }
            continue;
        }
        let from = current.get(l).copied();
        if from != Some(version) {
            out.moves.insert(l.clone(), from);
        }
    }
    let already = current.values().filter(|v| **v == version).count();
    if already + out.moves.len() > MAX_LABELS_PER_VERSION {
        return Err(SsmError::ParameterVersionLabelLimitExceeded(format!(
            "A parameter version can have maximum {MAX_LABELS_PER_VERSION} labels.Move one or more labels to another version and try again."
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rules() {
        for ok in ["prod", "Prod-1", "a.b_c", "x", "AwX", &"l".repeat(100)] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["1abc", "awsx", "AWS", "SsmFoo", "a b", "a/b", "a:b", ""] {
            assert!(!is_valid(bad), "{bad}");
        }
        let refused = |labels: &[String]| {
            let e = check_request(labels).unwrap_err();
            assert_eq!(e.code(), "ValidationException", "{e}");
            e.to_string()
        };
        let long = "a".repeat(101);
        assert_eq!(
            refused(std::slice::from_ref(&long)),
            format!(
                "1 validation error detected: Value '[{long}]' at 'labels' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 100, Member must have length greater than or equal to 1]"
            )
        );
        assert_eq!(
            refused(&[]),
            "1 validation error detected: Value '[]' at 'labels' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        let eleven: Vec<String> = (1..=11).map(|i| format!("l{i}")).collect();
        assert_eq!(
            refused(&eleven),
            "1 validation error detected: Value '[l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11]' at 'labels' failed to satisfy constraint: Member must have length less than or equal to 10"
        );
        assert!(check_request(&eleven[..10]).is_ok());
        assert!(check_request(&["a".repeat(100)]).is_ok());
    }

    #[test]
    fn a_label_moves_and_the_eleventh_is_refused() {
        let current = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
        let p = plan(&current, 2, &["a".into(), "b".into(), "9x".into()]).unwrap();
        assert_eq!(p.invalid, vec!["9x".to_string()]);
        assert_eq!(p.moves, BTreeMap::from([("a".to_string(), Some(1))]));
        assert_eq!(p.touched(2), BTreeSet::from([1, 2]));
        let ten: BTreeMap<String, u64> = (0..10).map(|i| (format!("l{i}"), 3)).collect();
        let err = plan(&ten, 3, &["new".into()]).unwrap_err();
        assert_eq!(err.code(), "ParameterVersionLabelLimitExceeded");
        // Relabelling with labels it already has is no change, not a refusal.
        assert!(plan(&ten, 3, &["l0".into()]).unwrap().moves.is_empty());
    }
}

//! Parameter policies, as SSM's: a JSON array of at most ten policies, each
//! `{"Type", "Version": "1.0", "Attributes"}`:
//!
//! - `Expiration` `{"Timestamp": ISO 8601}` deletes the parameter then;
//! - `ExpirationNotification` `{"Before": n, "Unit": "Days"|"Hours"}`
//!   publishes a Policy Action event `n` units before the expiration;
//! - `NoChangeNotification` `{"After": n, "Unit": "Days"|"Hours"}` publishes
//!   one when the parameter has not changed for `n` units.
//!
//! A stored policy is its own JSON text plus a status; the scheduler reads
//! the text again when it acts, so nothing else is stored.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::model::{Parameter, PolicyRecord};
use crate::error::SsmError;

/// SSM's limit on policies per parameter.
pub const MAX_POLICIES: usize = 10;
/// SSM's limit on the `Policies` string of PutParameter, in characters.
pub const MAX_POLICIES_TEXT: usize = 4096;

pub const EXPIRATION: &str = "Expiration";
pub const EXPIRATION_NOTIFICATION: &str = "ExpirationNotification";
pub const NO_CHANGE_NOTIFICATION: &str = "NoChangeNotification";

pub const PENDING: &str = "Pending";
pub const FINISHED: &str = "Finished";
pub const FAILED: &str = "Failed";

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// A policy as the scheduler needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// Epoch seconds.
    Expiration { at: f64 },
    /// Seconds before the expiration.
    ExpirationNotification { before: f64 },
    /// Seconds after the last change.
    NoChangeNotification { after: f64 },
}

impl Policy {
    pub fn type_name(&self) -> &'static str {
        match self {
            Policy::Expiration { .. } => EXPIRATION,
            Policy::ExpirationNotification { .. } => EXPIRATION_NOTIFICATION,
            Policy::NoChangeNotification { .. } => NO_CHANGE_NOTIFICATION,
        }
    }
}

fn attribute_error(msg: String) -> SsmError {
    SsmError::InvalidPolicyAttributeException(msg)
}

/// Parses the `Policies` of a PutParameter. `now` (epoch seconds) refuses
/// an expiration that is not in the future. An empty array is valid: it
/// removes every policy.
pub fn parse_policies(json: &str, now: f64) -> Result<Vec<PolicyRecord>, SsmError> {
    if json.chars().count() > MAX_POLICIES_TEXT {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value at 'policies' failed to satisfy constraint: Member must have length less than or equal to {MAX_POLICIES_TEXT}."
        )));
    }
    let items = match serde_json::from_str::<Value>(json) {
        Ok(Value::Array(items)) => items,
        _ => {
            return Err(attribute_error(
                "Policies must be a JSON array of policies, for example [{\"Type\":\"Expiration\",\"Version\":\"1.0\",\"Attributes\":{\"Timestamp\":\"2030-01-01T00:00:00Z\"}}]."
                    .into(),
            ));
        }
    };
    if items.len() > MAX_POLICIES {
        return Err(SsmError::PoliciesLimitExceededException(format!(
            "A parameter can have at most {MAX_POLICIES} policies; this request has {}. Remove some and try again.",
            items.len()
        )));
    }
    let mut parsed: Vec<Policy> = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    for item in &items {
        let policy = parse_one(item, now)?;
        if parsed.iter().any(|p| p.type_name() == policy.type_name()) {
            return Err(SsmError::IncompatiblePolicyException(format!(
                "A parameter can have only one {} policy; keep one and try again.",
                policy.type_name()
            )));
        }
        parsed.push(policy);
        records.push(PolicyRecord {
            // serde_json renders a parsed object compactly; the caller's
            // spacing is not kept, its content is.
            text: item.to_string(),
            policy_type: policy.type_name().to_string(),
            status: PENDING.to_string(),
        });
    }
    let has = |t: &str| parsed.iter().any(|p| p.type_name() == t);
    if has(EXPIRATION_NOTIFICATION) && !has(EXPIRATION) {
        return Err(SsmError::IncompatiblePolicyException(
            "An ExpirationNotification policy needs an Expiration policy to count back from; add one to the same Policies array."
                .into(),
        ));
    }
    Ok(records)
}

fn parse_one(item: &Value, now: f64) -> Result<Policy, SsmError> {
    let Some(obj) = item.as_object() else {
        return Err(attribute_error(
            "Each policy must be a JSON object with Type, Version and Attributes.".into(),
        ));
    };
    let type_name = match obj.get("Type") {
        Some(Value::String(t)) => t.as_str(),
        _ => {
            return Err(SsmError::InvalidPolicyTypeException(
                "A policy has no Type. Parameter Store supports the following policy types: Expiration, ExpirationNotification, and NoChangeNotification."
                    .into(),
            ));
        }
    };
    if ![EXPIRATION, EXPIRATION_NOTIFICATION, NO_CHANGE_NOTIFICATION].contains(&type_name) {
        return Err(SsmError::InvalidPolicyTypeException(format!(
            "The policy type {type_name} isn't supported. Parameter Store supports the following policy types: Expiration, ExpirationNotification, and NoChangeNotification."
        )));
    }
    if let Some(extra) = obj
        .keys()
        .find(|k| !["Type", "Version", "Attributes"].contains(&k.as_str()))
    {
        return Err(attribute_error(format!(
            "The {type_name} policy has an unknown field {extra}; a policy has only Type, Version and Attributes."
        )));
    }
    match obj.get("Version") {
        Some(Value::String(v)) if v == "1.0" => {}
        _ => {
            return Err(attribute_error(format!(
                "The {type_name} policy must have \"Version\":\"1.0\"."
            )));
        }
    }
    let Some(Value::Object(attrs)) = obj.get("Attributes") else {
        return Err(attribute_error(format!(
            "The {type_name} policy has no Attributes object."
        )));
    };
    policy_of(type_name, attrs, now)
}

fn only_keys(type_name: &str, attrs: &Map<String, Value>, keys: &[&str]) -> Result<(), SsmError> {
    match attrs.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(extra) => Err(attribute_error(format!(
            "The {type_name} policy has an unknown attribute {extra}; its attributes are {}.",
            keys.join(" and ")
        ))),
        None => Ok(()),
    }
}

/// The policy a stored record holds; `None` when its text does not parse
/// (it was validated when written, so only a damaged record gets here).
pub fn policy_of_record(record: &PolicyRecord) -> Option<Policy> {
    let v: Value = serde_json::from_str(&record.text).ok()?;
    let obj = v.as_object()?;
    let type_name = obj.get("Type")?.as_str()?;
    let attrs = obj.get("Attributes")?.as_object()?;
    // An expiration already past is still a valid stored policy.
    policy_of(type_name, attrs, f64::NEG_INFINITY).ok()
}

fn policy_of(type_name: &str, attrs: &Map<String, Value>, now: f64) -> Result<Policy, SsmError> {
    match type_name {
        EXPIRATION => {
            only_keys(type_name, attrs, &["Timestamp"])?;
            let Some(Value::String(ts)) = attrs.get("Timestamp") else {
                return Err(attribute_error(
                    "The Expiration policy needs a Timestamp attribute, for example \"2030-01-01T00:00:00.000Z\"."
                        .into(),
                ));
            };
            let at = parse_timestamp(ts)?;
            if at <= now {
                return Err(attribute_error(format!(
                    "The Expiration policy's Timestamp {ts} is not in the future; give a later date and time."
                )));
            }
            Ok(Policy::Expiration { at })
        }
        EXPIRATION_NOTIFICATION => {
            only_keys(type_name, attrs, &["Before", "Unit"])?;
            Ok(Policy::ExpirationNotification {
                before: duration(type_name, "Before", attrs)?,
            })
        }
        _ => {
            only_keys(type_name, attrs, &["After", "Unit"])?;
            Ok(Policy::NoChangeNotification {
                after: duration(type_name, "After", attrs)?,
            })
        }
    }
}

/// `{"Before"|"After": "15", "Unit": "Days"|"Hours"}` in seconds. SSM's
/// examples write the count as a string; a JSON number is taken too.
fn duration(type_name: &str, field: &str, attrs: &Map<String, Value>) -> Result<f64, SsmError> {
    let count = match attrs.get(field) {
        Some(Value::String(s)) => s.trim().parse::<u32>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    let count = match count {
        Some(c) if c > 0 => c,
        _ => {
            return Err(attribute_error(format!(
                "The {type_name} policy needs {field} as a positive whole number, for example \"{field}\":\"15\"."
            )));
        }
    };
    let unit = match attrs.get("Unit").and_then(Value::as_str) {
        Some("Days") => DAY,
        Some("Hours") => HOUR,
        _ => {
            return Err(attribute_error(format!(
                "The {type_name} policy needs Unit Days or Hours."
            )));
        }
    };
    Ok(f64::from(count) * unit)
}

/// ISO_INSTANT (`2030-12-02T21:34:33.000Z`) or ISO_OFFSET_DATE_TIME
/// (`2030-11-01T22:13:48.87+10:30`, also with seconds in the offset as SSM's
/// own example writes it: `+10:30:00`) as epoch seconds.
pub fn parse_timestamp(ts: &str) -> Result<f64, SsmError> {
    let bad = || {
        attribute_error(format!(
            "The Expiration policy's Timestamp {ts} is not an ISO 8601 date and time; write it as 2030-12-02T21:34:33.000Z or 2030-12-02T21:34:33+01:00."
        ))
    };
    let mut text = ts.trim().to_string();
    // Java's ISO_OFFSET_DATE_TIME allows offset seconds; RFC 3339 does not.
    let b = text.as_bytes();
    let n = b.len();
    let mut offset_seconds = 0i64;
    if n > 9 && (b[n - 9] == b'+' || b[n - 9] == b'-') && b[n - 6] == b':' && b[n - 3] == b':' {
        let secs: i64 = text[n - 2..].parse().map_err(|_| bad())?;
        if secs >= 60 {
            return Err(bad());
        }
        offset_seconds = if b[n - 9] == b'+' { secs } else { -secs };
        text.truncate(n - 3);
    }
    let t = OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| bad())?;
    Ok(t.unix_timestamp_nanos() as f64 / 1e9 - offset_seconds as f64)
}

/// When a policy of `p.current` must next act (epoch seconds), among its
/// `Pending` policies: an expiration at its Timestamp, an expiration
/// notification `Before` ahead of it, a no-change notification `After`
/// past the current version's last change. `None`: nothing is pending.
/// A time already past is returned as is: the scheduler acts on it at its
/// next run.
pub fn next_due(p: &Parameter) -> Option<f64> {
    let policies = &p.current.policies;
    let expiration = policies
        .iter()
        .filter_map(policy_of_record)
        .find_map(|pol| match pol {
            Policy::Expiration { at } => Some(at),
            _ => None,
        });
    policies
        .iter()
        .filter(|r| r.status == PENDING)
        .filter_map(|r| {
            due_at(
                policy_of_record(r)?,
                expiration,
                p.current.last_modified_date,
            )
        })
        .min_by(f64::total_cmp)
}

/// When one policy acts, given the parameter's expiration and last change.
pub fn due_at(policy: Policy, expiration: Option<f64>, last_modified: f64) -> Option<f64> {
    match policy {
        Policy::Expiration { at } => Some(at),
        Policy::ExpirationNotification { before } => expiration.map(|at| at - before),
        Policy::NoChangeNotification { after } => Some(last_modified + after),
    }
}

/// The policies a new version carries over from the one it replaces: the
/// same policies, all `Pending` again, so notifications fire once per
/// version and a NoChangeNotification counts from the new change.
pub fn renewed(policies: &[PolicyRecord]) -> Vec<PolicyRecord> {
    policies
        .iter()
        .map(|r| PolicyRecord {
            status: PENDING.to_string(),
            ..r.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::parameters::model::{ParameterType, ParameterVersion, StoredValue, Tier};

    const NOW: f64 = 1_900_000_000.0; // 2030-03-17

    fn code(json: &str) -> &'static str {
        parse_policies(json, NOW).unwrap_err().code()
    }

    fn exp(ts: &str) -> String {
        format!(r#"{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{ts}"}}}}"#)
    }

    fn note(before: &str, unit: &str) -> String {
        format!(
            r#"{{"Type":"ExpirationNotification","Version":"1.0","Attributes":{{"Before":"{before}","Unit":"{unit}"}}}}"#
        )
    }

    fn nochange(after: &str, unit: &str) -> String {
        format!(
            r#"{{"Type":"NoChangeNotification","Version":"1.0","Attributes":{{"After":"{after}","Unit":"{unit}"}}}}"#
        )
    }

    pub(crate) fn head(policies: Vec<PolicyRecord>, last_modified: f64) -> Parameter {
        Parameter {
            current: ParameterVersion {
                name: "/p".into(),
                version: 1,
                parameter_type: ParameterType::String,
                value: StoredValue::Plain("v".into()),
                key_id: None,
                description: None,
                allowed_pattern: None,
                tier: Tier::Advanced,
                policies,
                data_type: "text".into(),
                labels: BTreeSet::new(),
                last_modified_date: last_modified,
                last_modified_user: "u".into(),
            },
            oldest_version: 1,
            labels: BTreeMap::new(),
            tags: Default::default(),
            policy_due: None,
            revision: 1,
        }
    }

    #[test]
    fn the_three_policies_parse_as_pending_records() {
        let json = format!(
            "[{}, {}, {}]",
            exp("2030-12-02T21:34:33.000Z"),
            note("15", "Days"),
            nochange("5", "Hours")
        );
        let recs = parse_policies(&json, NOW).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].policy_type, "Expiration");
        assert_eq!(recs[1].policy_type, "ExpirationNotification");
        assert_eq!(recs[2].policy_type, "NoChangeNotification");
        assert!(recs.iter().all(|r| r.status == "Pending"));
        let text: Value = serde_json::from_str(&recs[0].text).unwrap();
        assert_eq!(text["Attributes"]["Timestamp"], "2030-12-02T21:34:33.000Z");
        assert!(parse_policies("[]", NOW).unwrap().is_empty());
        // Numbers are taken as well as strings.
        let n = r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":3,"Unit":"Days"}}]"#;
        assert_eq!(parse_policies(n, NOW).unwrap().len(), 1);
    }

    #[test]
    fn timestamps_in_both_iso_forms() {
        let z = parse_timestamp("2030-12-02T21:34:33.000Z").unwrap();
        assert_eq!(z, 1_922_477_673.0);
        assert_eq!(parse_timestamp("2030-12-02T22:34:33+01:00").unwrap(), z);
        assert_eq!(parse_timestamp("2030-12-02T22:34:33+01:00:00").unwrap(), z);
        assert_eq!(parse_timestamp("2030-12-02T21:34:23-00:00:10").unwrap(), z);
        for bad in ["2030-12-02", "tomorrow", "2030-12-02T22:34:33+01:00:60"] {
            let e = parse_timestamp(bad).unwrap_err();
            assert_eq!(e.code(), "InvalidPolicyAttributeException", "{bad}");
            assert_eq!(
                e.to_string(),
                format!(
                    "The Expiration policy's Timestamp {bad} is not an ISO 8601 date and time; write it as 2030-12-02T21:34:33.000Z or 2030-12-02T21:34:33+01:00."
                )
            );
        }
    }

    #[test]
    fn every_parse_error_has_ssm_name() {
        let e = |s: &str| code(s);
        assert_eq!(e("not json"), "InvalidPolicyAttributeException");
        assert_eq!(e("{}"), "InvalidPolicyAttributeException");
        assert_eq!(e("[1]"), "InvalidPolicyAttributeException");
        assert_eq!(
            e(r#"[{"Type":"Rotation","Version":"1.0","Attributes":{}}]"#),
            "InvalidPolicyTypeException"
        );
        assert_eq!(
            e(r#"[{"Version":"1.0","Attributes":{}}]"#),
            "InvalidPolicyTypeException"
        );
        assert_eq!(
            e(
                r#"[{"Type":"Expiration","Version":"2.0","Attributes":{"Timestamp":"2031-01-01T00:00:00Z"}}]"#
            ),
            "InvalidPolicyAttributeException"
        );
        assert_eq!(
            e(r#"[{"Type":"Expiration","Attributes":{"Timestamp":"2031-01-01T00:00:00Z"}}]"#),
            "InvalidPolicyAttributeException"
        );
        assert_eq!(
            e(r#"[{"Type":"Expiration","Version":"1.0"}]"#),
            "InvalidPolicyAttributeException"
        );
        assert_eq!(
            e(
                r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2031-01-01T00:00:00Z"},"Extra":1}]"#
            ),
            "InvalidPolicyAttributeException"
        );
        assert_eq!(
            e(r#"[{"Type":"Expiration","Version":"1.0","Attributes":{}}]"#),
            "InvalidPolicyAttributeException"
        );
        assert_eq!(
            e(
                r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2031-01-01T00:00:00Z","Unit":"Days"}}]"#
            ),
            "InvalidPolicyAttributeException"
        );
        assert_eq!(
            e(&format!("[{}]", exp("next week"))),
            "InvalidPolicyAttributeException"
        );
        // An expiration in the past, or right now.
        assert_eq!(
            e(&format!("[{}]", exp("2020-01-01T00:00:00Z"))),
            "InvalidPolicyAttributeException"
        );
        let expiry = format!("[{}, ", exp("2031-01-01T00:00:00Z"));
        for bad in [
            note("0", "Days"),
            note("-1", "Days"),
            note("1.5", "Days"),
            note("x", "Days"),
            note("1", "Weeks"),
            note("1", "days"),
            r#"{"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Unit":"Days"}}"#.into(),
            r#"{"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"1"}}"#.into(),
            r#"{"Type":"ExpirationNotification","Version":"1.0","Attributes":{"After":"1","Unit":"Days"}}"#.into(),
        ] {
            assert_eq!(e(&format!("{expiry}{bad}]")), "InvalidPolicyAttributeException", "{bad}");
        }
        for bad in [nochange("0", "Hours"), nochange("2", "Minutes")] {
            assert_eq!(
                e(&format!("[{bad}]")),
                "InvalidPolicyAttributeException",
                "{bad}"
            );
        }
        // Two of a type, or a notification with no expiration to count back from.
        assert_eq!(
            e(&format!(
                "[{}, {}]",
                exp("2031-01-01T00:00:00Z"),
                exp("2032-01-01T00:00:00Z")
            )),
            "IncompatiblePolicyException"
        );
        assert_eq!(
            e(&format!(
                "[{}, {}]",
                nochange("1", "Days"),
                nochange("2", "Days")
            )),
            "IncompatiblePolicyException"
        );
        assert_eq!(
            e(&format!("[{}]", note("1", "Days"))),
            "IncompatiblePolicyException"
        );
        // More than ten.
        let many = vec![nochange("1", "Days"); 11].join(",");
        assert_eq!(e(&format!("[{many}]")), "PoliciesLimitExceededException");
        // A Policies string longer than SSM takes.
        let long = format!("[{}]", " ".repeat(MAX_POLICIES_TEXT));
        assert_eq!(e(&long), "ValidationException");
    }

    fn records(json: &str) -> Vec<PolicyRecord> {
        parse_policies(json, NOW).unwrap()
    }

    #[test]
    fn next_due_is_the_earliest_pending_policy() {
        let at = parse_timestamp("2030-12-02T21:34:33Z").unwrap();
        let modified = NOW - 100.0;
        // Nothing: no policy.
        assert_eq!(next_due(&head(vec![], modified)), None);
        // Expiration alone: its timestamp.
        let p = head(
            records(&format!("[{}]", exp("2030-12-02T21:34:33Z"))),
            modified,
        );
        assert_eq!(next_due(&p), Some(at));
        // A notification 15 days before comes first.
        let both = records(&format!(
            "[{}, {}]",
            note("15", "Days"),
            exp("2030-12-02T21:34:33Z")
        ));
        let mut p = head(both, modified);
        assert_eq!(next_due(&p), Some(at - 15.0 * DAY));
        // Once it is Finished, the expiration is next.
        p.current.policies[0].status = FINISHED.into();
        assert_eq!(next_due(&p), Some(at));
        // Everything finished: nothing due.
        p.current.policies[1].status = FINISHED.into();
        assert_eq!(next_due(&p), None);
        // No change: counts from the last modification.
        let p = head(records(&format!("[{}]", nochange("2", "Hours"))), modified);
        assert_eq!(next_due(&p), Some(modified + 2.0 * HOUR));
        // A due time already past is kept (the scheduler acts at its next run).
        let p = head(
            records(&format!("[{}]", nochange("1", "Hours"))),
            NOW - 10.0 * HOUR,
        );
        assert_eq!(next_due(&p), Some(NOW - 9.0 * HOUR));
        // A damaged record is ignored, not fatal.
        let mut p = head(records(&format!("[{}]", nochange("1", "Hours"))), modified);
        p.current.policies.push(PolicyRecord {
            text: "garbage".into(),
            policy_type: "Expiration".into(),
            status: PENDING.into(),
        });
        assert_eq!(next_due(&p), Some(modified + HOUR));
    }

    #[test]
    fn renewed_policies_are_pending_again() {
        let mut recs = records(&format!("[{}]", nochange("1", "Days")));
        recs[0].status = FINISHED.into();
        let again = renewed(&recs);
        assert_eq!(again[0].status, PENDING);
        assert_eq!(again[0].text, recs[0].text);
    }
}

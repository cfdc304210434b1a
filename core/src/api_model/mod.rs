//! SSM's input constraints, checked on every request body before an
//! operation reads it, as SSM's front end checks them: member types,
//! lengths, patterns, enums, ranges and required members, all reported
//! together in SSM's words ("2 validation errors detected: Value 'x' at
//! 'name' failed to satisfy constraint: …").
//!
//! The constraints are SSM's own service model, the file the AWS CLI and
//! the SDKs are generated from, reduced to what validation needs
//! (`ssm-input-shapes.json`, written by `generate.py`). So a length limit of
//! SSM's API reference is checked before any store sees the value, and a
//! value too long for a DynamoDB key is refused here, not by the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::error::SsmError;

const SSM_INPUT_SHAPES: &str = include_str!("ssm-input-shapes.json");

#[derive(Debug, Deserialize)]
struct Model {
    operations: BTreeMap<String, String>,
    shapes: BTreeMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    kind: String,
    min: Option<f64>,
    max: Option<f64>,
    /// As SSM's messages quote it (Java's syntax).
    pattern: Option<String>,
    /// The same, as the `regex` crate reads it.
    regex: Option<String>,
    #[serde(rename = "enum")]
    values: Option<Vec<String>>,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    members: BTreeMap<String, Member>,
    member: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Member {
    shape: String,
    #[serde(default)]
    required: bool,
}

struct Compiled {
    model: Model,
    /// Each shape's pattern by shape name, as SSM means it: the whole value
    /// must match.
    patterns: HashMap<String, Regex>,
}

fn compiled() -> Result<&'static Compiled, SsmError> {
    static MODEL: OnceLock<Result<Compiled, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let model: Model = serde_json::from_str(SSM_INPUT_SHAPES).map_err(|e| e.to_string())?;
            let mut patterns = HashMap::new();
            for (name, shape) in &model.shapes {
                if let Some(p) = &shape.regex {
                    let re = Regex::new(&format!("^(?:{p})$")).map_err(|e| e.to_string())?;
                    patterns.insert(name.clone(), re);
                }
            }
            Ok(Compiled { model, patterns })
        })
        .as_ref()
        .map_err(|e| {
            tracing::error!(error = %e, "SSM's input model does not load");
            SsmError::internal()
        })
}

/// Every operation of SSM's model, by name.
pub fn operation_names() -> Result<Vec<String>, SsmError> {
    Ok(compiled()?.model.operations.keys().cloned().collect())
}

/// Checks `body` against the input shape of SSM operation `op`. An
/// operation the model does not hold (Steward's own) is not checked here.
pub fn validate(op: &str, body: &Value) -> Result<(), SsmError> {
    if is_ec2_node_deregistration(op, body) {
        return Ok(());
    }
    let c = compiled()?;
    let Some(shape) = c.model.operations.get(op) else {
        return Ok(());
    };
    let mut errors = Vec::new();
    Walker {
        c,
        errors: &mut errors,
    }
    .check(shape, body, "", false)?;
    match errors.len() {
        0 => Ok(()),
        1 => Err(SsmError::ValidationException(format!(
            "1 validation error detected: {}",
            errors[0]
        ))),
        n => Err(SsmError::ValidationException(format!(
            "{n} validation errors detected: {}",
            errors.join("; ")
        ))),
    }
}

/// Steward's one widening of SSM's model: DeregisterManagedInstance also
/// takes an EC2 instance id, for a node that registered by its identity
/// (SSM's pattern admits only `mi-` ids). The operation refuses any other
/// EC2 id with SSM's own message.
fn is_ec2_node_deregistration(op: &str, body: &Value) -> bool {
    op == "DeregisterManagedInstance"
        && body.as_object().is_some_and(|o| o.len() == 1)
        && body
            .get("InstanceId")
            .and_then(Value::as_str)
            .is_some_and(|id| id.starts_with("i-") && crate::ids::is_instance_id(id))
}

struct Walker<'a> {
    c: &'a Compiled,
    errors: &'a mut Vec<String>,
}

/// SSM names a member in its messages by its name with the first letter
/// lower-cased, a list element as `list.N.member` (from 1).
fn member_path(parent: &str, member: &str) -> String {
    let mut chars = member.chars();
    let first: String = chars
        .next()
        .map(|c| c.to_lowercase().collect())
        .unwrap_or_default();
    let name = format!("{first}{}", chars.as_str());
    if parent.is_empty() {
        name
    } else {
        format!("{parent}.{name}")
    }
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Every constraint of a plain value's shape, as SSM lists them for the
/// members of a list.
fn constraints(shape: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    let what = if shape.kind == "string" {
        "length"
    } else {
        "value"
    };
    if let Some(max) = shape.max {
        out.push(format!(
            "Member must have {what} less than or equal to {max}"
        ));
    }
    if let Some(min) = shape.min {
        out.push(format!(
            "Member must have {what} greater than or equal to {min}"
        ));
    }
    if let Some(p) = &shape.pattern {
        out.push(format!(
            "Member must satisfy regular expression pattern: {p}"
        ));
    }
    if let Some(values) = &shape.values {
        out.push(format!(
            "Member must satisfy enum value set: [{}]",
            values.join(", ")
        ));
    }
    out
}

fn serialization(expected: &str, path: &str) -> SsmError {
    SsmError::SerializationException(format!(
        "Expected {expected} at '{path}': the request does not match the operation's shape."
    ))
}

impl Walker<'_> {
    fn fail(&mut self, value: &Value, path: &str, sensitive: bool, constraint: String) {
        let shown = if sensitive {
            // A secret is never echoed, not even in a refusal.
            String::from("Value")
        } else {
            format!("Value '{}'", render(value))
        };
        self.errors.push(format!(
            "{shown} at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn length(&mut self, shape: &Shape, len: usize, value: &Value, path: &str, sensitive: bool) {
        if let Some(max) = shape.max
            && len as f64 > max
        {
            self.fail(
                value,
                path,
                sensitive,
                format!("Member must have length less than or equal to {max}"),
            );
        }
        if let Some(min) = shape.min
            && (len as f64) < min
        {
            self.fail(
                value,
                path,
                sensitive,
                format!("Member must have length greater than or equal to {min}"),
            );
        }
    }

    /// The constraints of a plain value's shape that `value` breaks, in
    /// SSM's words; a value of the wrong JSON type is SerializationException.
    fn violations(
        &self,
        shape_name: &str,
        shape: &Shape,
        value: &Value,
        path: &str,
    ) -> Result<Vec<String>, SsmError> {
        let mut out = Vec::new();
        if shape.kind == "string" {
            let Value::String(s) = value else {
                return Err(serialization("a string", path));
            };
            let len = s.chars().count() as f64;
            if let Some(max) = shape.max.filter(|max| len > *max) {
                out.push(format!(
                    "Member must have length less than or equal to {max}"
                ));
            }
            if let Some(min) = shape.min.filter(|min| len < *min) {
                out.push(format!(
                    "Member must have length greater than or equal to {min}"
                ));
            }
            if let Some(p) = &shape.pattern
                && let Some(re) = self.c.patterns.get(shape_name)
                && !re.is_match(s)
            {
                out.push(format!(
                    "Member must satisfy regular expression pattern: {p}"
                ));
            }
            if let Some(values) = shape.values.as_ref().filter(|v| !v.contains(s)) {
                out.push(format!(
                    "Member must satisfy enum value set: [{}]",
                    values.join(", ")
                ));
            }
        } else {
            let Some(n) = value.as_f64().filter(|n| n.fract() == 0.0) else {
                return Err(serialization("an integer", path));
            };
            if let Some(max) = shape.max.filter(|max| n > *max) {
                out.push(format!(
                    "Member must have value less than or equal to {max}"
                ));
            }
            if let Some(min) = shape.min.filter(|min| n < *min) {
                out.push(format!(
                    "Member must have value greater than or equal to {min}"
                ));
            }
        }
        Ok(out)
    }

    /// Type mismatches are SerializationException (the body cannot be read
    /// as the operation's input at all); constraint violations are
    /// collected and reported together.
    fn check(
        &mut self,
        shape_name: &str,
        value: &Value,
        path: &str,
        inherited_sensitive: bool,
    ) -> Result<(), SsmError> {
        let c = self.c;
        let Some(shape) = c.model.shapes.get(shape_name) else {
            return Err(SsmError::internal());
        };
        let sensitive = inherited_sensitive || shape.sensitive;
        if value.is_null() {
            return Ok(());
        }
        match shape.kind.as_str() {
            "structure" => {
                let Value::Object(map) = value else {
                    return Err(serialization("a structure", path));
                };
                for (name, member) in &shape.members {
                    let child = member_path(path, name);
                    match map.get(name) {
                        None | Some(Value::Null) if member.required => {
                            self.errors.push(format!(
                                "Value null at '{child}' failed to satisfy constraint: Member must not be null"
                            ));
                        }
                        None => {}
                        Some(v) => self.check(&member.shape, v, &child, sensitive)?,
                    }
                }
            }
            "list" => {
                let Value::Array(items) = value else {
                    return Err(serialization("a list", path));
                };
                self.length(shape, items.len(), value, path, sensitive);
                let Some(member) = &shape.member else {
                    return Ok(());
                };
                let Some(member_shape) = c.model.shapes.get(member) else {
                    return Err(SsmError::internal());
                };
                if matches!(member_shape.kind.as_str(), "string" | "integer" | "long") {
                    // SSM reports a list of plain values whole, with every
                    // constraint its members must meet.
                    let mut violated = false;
                    for (i, item) in items.iter().enumerate() {
                        let child = format!("{path}.{}.member", i + 1);
                        violated |= !self
                            .violations(member, member_shape, item, &child)?
                            .is_empty();
                    }
                    if violated {
                        let all = constraints(member_shape);
                        self.fail(
                            value,
                            path,
                            sensitive || member_shape.sensitive,
                            format!("Member must satisfy constraint: [{}]", all.join(", ")),
                        );
                    }
                } else {
                    for (i, item) in items.iter().enumerate() {
                        let child = format!("{path}.{}.member", i + 1);
                        self.check(member, item, &child, sensitive)?;
                    }
                }
            }
            "map" => {
                let Value::Object(map) = value else {
                    return Err(serialization("a map", path));
                };
                self.length(shape, map.len(), value, path, sensitive);
                if let Some(v) = &shape.value {
                    for (k, item) in map {
                        self.check(v, item, &format!("{path}.{k}"), sensitive)?;
                    }
                }
            }
            "string" | "integer" | "long" => {
                for constraint in self.violations(shape_name, shape, value, path)? {
                    self.fail(value, path, sensitive, constraint);
                }
            }
            "boolean" if !value.is_boolean() => {
                return Err(serialization("a boolean", path));
            }
            "timestamp" if !(value.is_number() || value.is_string()) => {
                return Err(serialization("a timestamp", path));
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_model_loads_and_every_pattern_compiles() {
        let c = compiled().unwrap();
        assert!(c.model.operations.contains_key("SendCommand"));
        for (name, s) in &c.model.shapes {
            if s.pattern.is_some() {
                assert!(c.patterns.contains_key(name), "{name}");
            }
        }
        // Java's \w is ASCII.
        assert!(
            validate(
                "SendCommand",
                &json!({"DocumentName": "x1x", "InstanceIds": ["mi-0123456789abcdef0"]})
            )
            .is_ok()
        );
        assert!(
            validate(
                "SendCommand",
                &json!({"DocumentName": "x1x", "InstanceIds": ["mi-0123456789abcdéf0"]})
            )
            .is_err()
        );
        for name in c.model.operations.values() {
            assert!(c.model.shapes.contains_key(name), "{name}");
        }
    }

    #[test]
    fn deregistration_also_takes_an_ec2_id_and_nothing_else_widens() {
        let op = "DeregisterManagedInstance";
        assert!(validate(op, &json!({"InstanceId": "i-0123456789abcdef0"})).is_ok());
        assert!(validate(op, &json!({"InstanceId": "i-01234567"})).is_ok());
        for body in [
            json!({"InstanceId": "i-0123456789ABCDEF0"}),
            json!({"InstanceId": "i-0123"}),
            json!({"InstanceId": "x-0123456789abcdef0"}),
            json!({"InstanceId": "i-0123456789abcdef0", "Extra": 1}),
            json!({}),
        ] {
            assert!(validate(op, &body).is_err(), "{body}");
        }
        // Only that operation.
        assert!(
            validate(
                "DeleteActivation",
                &json!({"ActivationId": "i-0123456789abcdef0"})
            )
            .is_err()
        );
    }

    fn message(op: &str, body: Value) -> (String, String) {
        let e = validate(op, &body).unwrap_err();
        (e.code().to_string(), e.to_string())
    }

    #[test]
    fn lengths_are_checked_in_ssms_words() {
        let long = "a".repeat(3000);
        let (code, msg) = message("DescribeDocument", json!({ "Name": long }));
        assert_eq!(code, "ValidationException");
        assert!(
            msg.starts_with(&format!("1 validation error detected: Value '{long}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ")),
            "{msg}"
        );
        let (_, msg) = message("GetParameter", json!({ "Name": "/".repeat(2049) }));
        assert!(
            msg.ends_with("at 'name' failed to satisfy constraint: Member must have length less than or equal to 2048"),
            "{msg}"
        );
        assert!(validate("GetParameter", &json!({ "Name": "/a/b" })).is_ok());
        let (_, msg) = message(
            "DeleteActivation",
            json!({ "ActivationId": "x".repeat(3000) }),
        );
        assert!(msg.contains("at 'activationId'"), "{msg}");
    }

    #[test]
    fn an_enum_and_several_violations_are_reported_together() {
        let (code, msg) = message(
            "PutParameter",
            json!({ "Name": "/x", "Value": "v", "Type": "Number", "Tier": "Gold" }),
        );
        assert_eq!(code, "ValidationException");
        assert!(msg.starts_with("2 validation errors detected: "), "{msg}");
        assert!(
            msg.contains("Value 'Number' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"),
            "{msg}"
        );
        assert!(msg.contains("at 'tier'"), "{msg}");
        let (_, msg) = message(
            "DescribeParameters",
            json!({ "ParameterFilters": [{ "Key": "Name", "Option": "x".repeat(11), "Values": ["a"] }] }),
        );
        assert!(
            msg.contains("at 'parameterFilters.1.member.option'"),
            "{msg}"
        );
    }

    #[test]
    fn a_list_of_plain_values_is_reported_whole_as_ssm_does() {
        let long = "l".repeat(101);
        let (_, msg) = message(
            "LabelParameterVersion",
            json!({ "Name": "/x", "Labels": [long.clone()] }),
        );
        assert_eq!(
            msg,
            format!(
                "1 validation error detected: Value '[{long}]' at 'labels' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 100, Member must have length greater than or equal to 1]"
            )
        );
        let (_, msg) = message(
            "DescribeParameters",
            json!({ "ParameterFilters": [{ "Key": "Name", "Values": ["t".repeat(1025)] }] }),
        );
        assert!(
            msg.ends_with("at 'parameterFilters.1.member.values' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1]"),
            "{msg}"
        );
        let (_, msg) = message(
            "PutParameter",
            json!({ "Name": "/x", "Value": "v", "Type": "str" }),
        );
        assert_eq!(
            msg,
            "1 validation error detected: Value 'str' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
        );
    }

    #[test]
    fn secrets_are_never_echoed() {
        let secret = "hunter2-is-my-secret";
        // SendCommand's Parameters are sensitive in SSM's model.
        let e = validate(
            "SendCommand",
            &json!({ "DocumentName": "x", "Parameters": { "commands": [secret] } }),
        )
        .unwrap_err();
        assert!(e.to_string().contains("at 'documentName'"), "{e}");
        assert!(!e.to_string().contains(secret));
    }

    #[test]
    fn wrong_types_are_serialization_errors_and_required_members_must_be_there() {
        let (code, msg) = message(
            "SendCommand",
            json!({ "DocumentName": "AWS-RunShellScript", "CloudWatchOutputConfig": "yes" }),
        );
        assert_eq!(code, "SerializationException", "{msg}");
        assert!(msg.contains("cloudWatchOutputConfig"), "{msg}");
        let (code, msg) = message("GetParameter", json!({}));
        assert_eq!(code, "ValidationException");
        assert_eq!(
            msg,
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
        );
        // Steward's own operations are not SSM's: not checked here.
        assert!(validate("RegisterManagedInstance", &json!({ "x": 1 })).is_ok());
    }
}

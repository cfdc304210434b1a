//! What a runbook's `{{ … }}` can name, and replacing them when a step
//! starts: the runbook's parameters (`{{ InstanceId }}`), an earlier step's
//! outputs (`{{ restart.CommandId }}`), SSM's automation variables
//! (`{{ automation:EXECUTION_ID }}`, `{{ global:DATE_TIME }}`), and Parameter
//! Store references (`{{ssm:/app/x}}`), which pass through here untouched and
//! are resolved by [`crate::parameters::references`].
//!
//! Replacement follows Command documents ([`crate::documents::interpolate`]):
//! a string that is exactly one reference becomes the value itself (a list
//! stays a list), a reference inside a longer string becomes the value's
//! text, and a value is never expanded again.

use serde_json::Value;

/// SSM's automation variables. `global:ACCOUNT_ID` and `global:REGION` are
/// the stack's own.
pub const VARIABLES: [&str; 6] = [
    "automation:EXECUTION_ID",
    "global:ACCOUNT_ID",
    "global:AWS_PARTITION",
    "global:DATE",
    "global:DATE_TIME",
    "global:REGION",
];

/// One `{{ … }}` of a runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    /// `{{ Name }}`: a parameter of the runbook.
    Parameter(&'a str),
    /// `{{ step.Output }}`.
    StepOutput { step: &'a str, output: &'a str },
    /// `{{ automation:… }}` or `{{ global:… }}`.
    Variable(&'a str),
    /// `{{ssm:…}}` or `{{ssm-secure:…}}`.
    ParameterStore(&'a str),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn classify(inner: &str) -> Option<Reference<'_>> {
    if inner.starts_with("ssm:") || inner.starts_with("ssm-secure:") {
        return Some(Reference::ParameterStore(inner));
    }
    if inner.starts_with("automation:") || inner.starts_with("global:") {
        return Some(Reference::Variable(inner));
    }
    if let Some((step, output)) = inner.split_once('.') {
        return (is_word(step) && is_word(output))
            .then_some(Reference::StepOutput { step, output });
    }
    // SSM's parameter names: letters, digits and '_'.
    (!inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then_some(Reference::Parameter(inner))
}

/// A reference and the bytes of its whole `{{ … }}` in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    pub reference: Reference<'a>,
    pub start: usize,
    pub end: usize,
}

/// Every reference in `text`, in order. Braces that do not enclose a
/// reference are text (`{{ .Names }}` stays as written).
pub fn find(text: &str) -> Vec<Found<'_>> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(i) = text[pos..].find("{{") {
        let start = pos + i;
        let Some(j) = text[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + j + 2;
        match classify(text[start + 2..end - 2].trim_matches(is_space)) {
            Some(reference) => {
                found.push(Found {
                    reference,
                    start,
                    end,
                });
                pos = end;
            }
            // One may still open a byte further on (`{{{x}}`).
            None => pos = start + 1,
        }
    }
    found
}

pub fn references(text: &str) -> Vec<Reference<'_>> {
    find(text).into_iter().map(|f| f.reference).collect()
}

/// Ok when `name` is an automation variable; otherwise the list to choose
/// from, for the message.
pub fn check_variable(name: &str) -> Result<(), String> {
    if VARIABLES.contains(&name) {
        Ok(())
    } else {
        Err(VARIABLES.join(", "))
    }
}

/// Values for references when a step starts. `None` leaves the reference as
/// written (a Parameter Store reference, resolved later).
pub trait Values {
    fn value(&self, reference: Reference<'_>) -> Option<Value>;
}

/// The text a value takes inside a longer string: a string as it is,
/// anything else as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn interpolate_str(text: &str, values: &impl Values) -> Value {
    let found = find(text);
    if let [only] = found.as_slice()
        && only.start == 0
        && only.end == text.len()
        && let Some(v) = values.value(only.reference)
    {
        return v;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for f in found {
        if let Some(v) = values.value(f.reference) {
            out.push_str(&text[last..f.start]);
            out.push_str(&text_of(&v));
            last = f.end;
        }
    }
    out.push_str(&text[last..]);
    Value::String(out)
}

/// `value` with every string's references replaced (map keys are not).
pub fn interpolate(value: &Value, values: &impl Values) -> Value {
    match value {
        Value::String(s) => interpolate_str(s, values),
        Value::Array(items) => Value::Array(items.iter().map(|v| interpolate(v, values)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), interpolate(v, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Map(HashMap<String, Value>);
    impl Values for Map {
        fn value(&self, r: Reference<'_>) -> Option<Value> {
            let key = match r {
                Reference::Parameter(n) | Reference::Variable(n) => n.to_string(),
                Reference::StepOutput { step, output } => format!("{step}.{output}"),
                Reference::ParameterStore(_) => return None,
            };
            self.0.get(&key).cloned()
        }
    }

    fn values() -> Map {
        Map(HashMap::from([
            ("Ids".to_string(), json!(["i-1", "i-2"])),
            ("Name".to_string(), json!("web")),
            ("run.CommandId".to_string(), json!("c-1")),
            ("automation:EXECUTION_ID".to_string(), json!("e-1")),
        ]))
    }

    #[test]
    fn each_kind_of_reference_is_told_apart() {
        assert_eq!(
            references(
                "{{ Name }} {{run.CommandId}} {{ automation:EXECUTION_ID }} {{ssm:/a/b}} {{ .Names }}"
            ),
            vec![
                Reference::Parameter("Name"),
                Reference::StepOutput {
                    step: "run",
                    output: "CommandId"
                },
                Reference::Variable("automation:EXECUTION_ID"),
                Reference::ParameterStore("ssm:/a/b"),
            ]
        );
    }

    #[test]
    fn a_lone_reference_is_the_value_and_an_embedded_one_its_text() {
        let v = values();
        assert_eq!(interpolate_str("{{ Ids }}", &v), json!(["i-1", "i-2"]));
        assert_eq!(
            interpolate_str("ids={{Ids}}", &v),
            json!("ids=[\"i-1\",\"i-2\"]")
        );
        assert_eq!(
            interpolate(
                &json!({"C": "{{run.CommandId}}/{{automation:EXECUTION_ID}}", "K": ["{{Name}}"]}),
                &v
            ),
            json!({"C": "c-1/e-1", "K": ["web"]})
        );
    }

    #[test]
    fn unknown_and_parameter_store_references_stay_as_written() {
        let v = values();
        assert_eq!(
            interpolate_str("{{ssm:/a}} {{Other}}", &v),
            json!("{{ssm:/a}} {{Other}}")
        );
        assert_eq!(interpolate_str("{{{Name}}}", &v), json!("{web}"));
    }

    #[test]
    fn a_value_holding_braces_is_not_expanded_again() {
        let v = Map(HashMap::from([
            ("A".to_string(), json!("{{B}}")),
            ("B".to_string(), json!("no")),
        ]));
        assert_eq!(interpolate_str("x{{A}}", &v), json!("x{{B}}"));
    }

    #[test]
    fn variables_are_checked_against_ssms_list() {
        assert!(check_variable("global:DATE_TIME").is_ok());
        assert_eq!(check_variable("global:NOPE"), Err(VARIABLES.join(", ")));
    }
}

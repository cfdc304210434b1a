//! `{{ name }}` document parameters in step inputs, replaced as SSM Agent
//! replaces them: a string that is exactly one `{{ name }}` (spaces allowed
//! inside the braces) becomes the parameter's value itself — a StringList
//! becomes a list, an Integer a number; a placeholder inside a longer string
//! is replaced by the value's text: a String as it is, any other type as its
//! JSON text (a StringList `a`, `b` becomes `["a","b"]`).
//!
//! Only names of letters and digits are parameters (SSM Agent's own rule), so
//! `{{ssm:/x}}`, `{{ssm-secure:/x}}`, `{{resolve:…}}`, `{{ .Names }}` and any
//! other `{{…}}` are left exactly as written; references are resolved later,
//! elsewhere. Replacement is a single pass: a value that itself contains
//! `{{ name }}` is inserted verbatim, never expanded again.

use std::ops::Range;

use serde_json::Value;

use super::declared_parameters::ParamValue;

/// One `{{ name }}` in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder<'a> {
    pub name: &'a str,
    /// The whole `{{ … }}` (bytes).
    pub span: Range<usize>,
}

/// SSM Agent's `\s`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// SSM Agent's parameter name rule, `^[a-zA-Z0-9]+$`.
pub fn is_parameter_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Every `{{ name }}` in `text`, in order.
pub fn placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(i) = text[pos..].find("{{") {
        let start = pos + i;
        let Some(j) = text[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + j + 2;
        let name = text[start + 2..end - 2].trim_matches(is_space);
        if is_parameter_name(name) {
            found.push(Placeholder {
                name,
                span: start..end,
            });
            pos = end;
        } else {
            // Not a parameter; one may still open one byte on (`{{{x}}`).
            pos = start + 1;
        }
    }
    found
}

/// The parameter `text` is exactly, if it is one `{{ name }}` and nothing else.
pub fn whole_placeholder(text: &str) -> Option<&str> {
    match placeholders(text).as_slice() {
        [p] if p.span == (0..text.len()) => Some(p.name),
        _ => None,
    }
}

/// Every placeholder name anywhere in `value`'s strings.
pub fn names_in(value: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    walk(value, &mut |s| {
        out.extend(placeholders(s).into_iter().map(|p| p.name))
    });
    out
}

fn walk<'a>(value: &'a Value, f: &mut impl FnMut(&'a str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        Value::Object(map) => map.values().for_each(|v| walk(v, f)),
        _ => {}
    }
}

/// `text` with its placeholders replaced; a lone placeholder gives the
/// value itself. Names `lookup` does not know stay as written.
pub fn interpolate_str<'p>(text: &str, lookup: &impl Fn(&str) -> Option<&'p ParamValue>) -> Value {
    if let Some(v) = whole_placeholder(text).and_then(lookup) {
        return v.to_json();
    }
    Value::String(interpolate_text(text, lookup))
}

/// `text` with its placeholders replaced by the values' text.
pub fn interpolate_text<'p>(
    text: &str,
    lookup: &impl Fn(&str) -> Option<&'p ParamValue>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in placeholders(text) {
        if let Some(v) = lookup(p.name) {
            out.push_str(&text[last..p.span.start]);
            out.push_str(&v.to_text());
            last = p.span.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// `value` with the placeholders of all its strings replaced (map keys are
/// not, as in SSM Agent).
pub fn interpolate<'p>(value: &Value, lookup: &impl Fn(&str) -> Option<&'p ParamValue>) -> Value {
    match value {
        Value::String(s) => interpolate_str(s, lookup),
        Value::Array(items) => Value::Array(items.iter().map(|v| interpolate(v, lookup)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), interpolate(v, lookup)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn params() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("msg".to_string(), ParamValue::String("hi there".into())),
            (
                "cmds".to_string(),
                ParamValue::StringList(vec!["a".into(), "b \"c\"".into()]),
            ),
            ("n".to_string(), ParamValue::Integer(42)),
            ("flag".to_string(), ParamValue::Boolean(true)),
        ])
    }

    fn run(v: Value) -> Value {
        let p = params();
        interpolate(&v, &|n: &str| p.get(n))
    }

    #[test]
    fn placeholders_allow_spaces_and_skip_references() {
        let t = "{{msg}} {{ msg }} {{\tmsg\n}} {{ssm:/x}} {{ ssm-secure:/y }} {{resolve:ssm:/z}} {{ .Names }} {{a b}} {{}} {{{n}}";
        let names: Vec<_> = placeholders(t).iter().map(|p| p.name).collect();
        assert_eq!(names, ["msg", "msg", "msg", "n"]);
        let last = placeholders(t).pop().unwrap();
        assert_eq!(&t[last.span], "{{n}}");
        assert!(placeholders("{{ msg").is_empty());
        assert_eq!(whole_placeholder("{{ cmds }}"), Some("cmds"));
        assert_eq!(whole_placeholder(" {{ cmds }}"), None);
        assert_eq!(whole_placeholder("{{a}}{{b}}"), None);
    }

    #[test]
    fn a_lone_placeholder_is_the_value_itself() {
        assert_eq!(run(json!("{{ cmds }}")), json!(["a", "b \"c\""]));
        assert_eq!(
            run(json!(["{{cmds}}", "x"])),
            json!([["a", "b \"c\""], "x"])
        );
        assert_eq!(
            run(json!({"t": "{{ n }}", "f": "{{flag}}"})),
            json!({"t": 42, "f": true})
        );
        assert_eq!(run(json!("{{ msg }}")), json!("hi there"));
    }

    #[test]
    fn inside_a_string_values_are_text_and_lists_are_json() {
        assert_eq!(run(json!("echo {{msg}}!")), json!("echo hi there!"));
        assert_eq!(
            run(json!("run {{ cmds }}")),
            json!(r#"run ["a","b \"c\""]"#)
        );
        assert_eq!(run(json!("t={{n}} f={{ flag }}")), json!("t=42 f=true"));
    }

    #[test]
    fn unknown_names_references_and_other_types_stay() {
        let v = json!({
            "a": "{{ssm:/app/url}} {{ ssm-secure:/db/pw }} {{ other }} {{resolve:x}}",
            "{{msg}}": 1,
            "b": [null, 2.5, false]
        });
        assert_eq!(run(v.clone()), v);
    }

    #[test]
    fn values_are_not_expanded_twice() {
        let p = BTreeMap::from([
            ("a".to_string(), ParamValue::String("{{b}}".into())),
            ("b".to_string(), ParamValue::String("B".into())),
        ]);
        let out = interpolate_text("{{a}}-{{b}}", &|n: &str| p.get(n));
        assert_eq!(out, "{{b}}-B");
    }

    proptest! {
        #[test]
        fn text_without_double_braces_is_unchanged(text in "[^{]*|([^{]*\\{[^{]+)*") {
            prop_assume!(!text.contains("{{"));
            let v = Value::String(text.clone());
            prop_assert_eq!(run(v.clone()), v);
            prop_assert_eq!(run(json!([text.clone(), {"k": text.clone()}])), json!([text.clone(), {"k": text}]));
        }
    }
}

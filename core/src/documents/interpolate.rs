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

/// Texts for property tests that reach the hard cases of `{{…}}` parsing:
/// lone and doubled braces, braces touching a placeholder or reference,
/// adjacent ones, spaces and non-ASCII around them. `pieces` adds what the
/// caller's grammar cares about (names, prefixes).
#[cfg(test)]
pub(crate) fn brace_heavy_text(
    pieces: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    const BRACES: &[&str] = &[
        "{", "}", "{{", "}}", "{{{", "}}}", " ", "\t", "é", "日本", "\u{a0}", "x", ":", "/",
    ];
    let piece = prop_oneof![
        3 => prop::sample::select(BRACES),
        2 => prop::sample::select(pieces),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

/// SSM Agent's placeholder pattern, `{{\s*name\s*}}` with Go's `\s`,
/// written independently of [`placeholders`] as the tests' oracle: each
/// leftmost, non-overlapping match.
#[cfg(test)]
pub(crate) fn ssm_agent_placeholders(text: &str) -> Vec<(String, Range<usize>)> {
    let re = regex::Regex::new(r"\{\{[ \t\n\r\x0c]*([a-zA-Z0-9]+)[ \t\n\r\x0c]*\}\}").unwrap();
    re.captures_iter(text)
        .map(|c| (c[1].to_string(), c.get(0).unwrap().range()))
        .collect()
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

    /// Brace cases, each with SSM Agent's answer. SSM Agent replaces every
    /// leftmost match of `{{\s*name\s*}}` (Go's `\s`: space, tab, CR, LF,
    /// form feed), so braces around a placeholder stay as text:
    /// `{{{n}}}` is `{42}`.
    #[test]
    fn braces_touching_placeholders() {
        let cases: &[(&str, Value)] = &[
            ("{{{n}}}", json!("{42}")),
            ("x{{n}}}", json!("x42}")),
            ("{{{{n}}}}", json!("{{42}}")),
            ("{{ msg }}{{n}}", json!("hi there42")),
            ("{{n}}{", json!("42{")),
            ("{{n}", json!("{{n}")),
            ("{{ n}} }}", json!("42 }}")),
            ("{{a{{n}}", json!("{{a42")),
            ("é{{n}}ü", json!("é42ü")),
            ("{{\u{a0}n}}", json!("{{\u{a0}n}}")),
            ("{", json!("{")),
            ("{{", json!("{{")),
            ("}}", json!("}}")),
            ("{{}}", json!("{{}}")),
            ("{{ }}", json!("{{ }}")),
        ];
        for (text, want) in cases {
            assert_eq!(&run(json!(text)), want, "{text:?}");
        }
        assert_eq!(placeholders("{{{n}}}")[0].span, 1..6);
        assert_eq!(whole_placeholder("{{{n}}}"), None);
    }

    /// [`params`]' values as text, spelled out.
    fn model_text(name: &str) -> Option<&'static str> {
        match name {
            "msg" => Some("hi there"),
            "cmds" => Some(r#"["a","b \"c\""]"#),
            "n" => Some("42"),
            "flag" => Some("true"),
            _ => None,
        }
    }

    const PIECES: &[&str] = &[
        "{{n}}",
        "{{ msg }}",
        "n",
        "msg",
        "cmds",
        "flag",
        "other",
        "{{ssm:/a}}",
        "a b",
        ".",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn placeholders_and_replacement_follow_ssm_agents_pattern(text in brace_heavy_text(PIECES)) {
            let model = ssm_agent_placeholders(&text);
            let found: Vec<_> = placeholders(&text).into_iter().map(|p| (p.name.to_string(), p.span)).collect();
            prop_assert_eq!(&found, &model);

            let mut want = String::new();
            let mut last = 0;
            for (name, span) in &model {
                if let Some(v) = model_text(name) {
                    want.push_str(&text[last..span.start]);
                    want.push_str(v);
                    last = span.end;
                }
            }
            want.push_str(&text[last..]);
            let whole = match model.as_slice() {
                [(name, span)] if *span == (0..text.len()) => match name.as_str() {
                    "msg" => Some(json!("hi there")),
                    "cmds" => Some(json!(["a", "b \"c\""])),
                    "n" => Some(json!(42)),
                    "flag" => Some(json!(true)),
                    _ => None,
                },
                _ => None,
            };
            prop_assert_eq!(run(json!(text)), whole.unwrap_or(Value::String(want)));
        }
    }
}

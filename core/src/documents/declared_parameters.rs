//! A document's declared parameters and the checking of SendCommand's
//! `Parameters` (SSM's wire shape: name → list of strings) against them.
//!
//! On the wire every value is a string: an Integer is `"5"`, a Boolean
//! `"true"`, a StringMap one JSON object text, a MapList one JSON object
//! text per item. A parameter without a `default` is required.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::interpolate::is_parameter_name;
use crate::error::SsmError;
use crate::parameters::references;

/// SendCommand's `Parameters`.
pub type GivenParameters = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParameterType {
    String,
    StringList,
    Integer,
    Boolean,
    StringMap,
    MapList,
}

impl ParameterType {
    pub const ALL: [ParameterType; 6] = [
        ParameterType::String,
        ParameterType::StringList,
        ParameterType::Integer,
        ParameterType::Boolean,
        ParameterType::StringMap,
        ParameterType::MapList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::Integer => "Integer",
            ParameterType::Boolean => "Boolean",
            ParameterType::StringMap => "StringMap",
            ParameterType::MapList => "MapList",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn is_list(self) -> bool {
        matches!(self, ParameterType::StringList | ParameterType::MapList)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayType {
    TextField,
    TextArea,
}

impl DisplayType {
    pub fn as_str(self) -> &'static str {
        match self {
            DisplayType::TextField => "textfield",
            DisplayType::TextArea => "textarea",
        }
    }
}

/// A parameter's value, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    String(String),
    StringList(Vec<String>),
    Integer(i64),
    Boolean(bool),
    StringMap(Map<String, Value>),
    MapList(Vec<Map<String, Value>>),
}

impl ParamValue {
    pub fn to_json(&self) -> Value {
        match self {
            ParamValue::String(s) => Value::String(s.clone()),
            ParamValue::StringList(l) => {
                Value::Array(l.iter().cloned().map(Value::String).collect())
            }
            ParamValue::Integer(n) => Value::from(*n),
            ParamValue::Boolean(b) => Value::Bool(*b),
            ParamValue::StringMap(m) => Value::Object(m.clone()),
            ParamValue::MapList(l) => Value::Array(l.iter().cloned().map(Value::Object).collect()),
        }
    }

    /// The text a placeholder inside a longer string becomes: a String as
    /// it is, anything else as JSON (SSM Agent marshals it).
    pub fn to_text(&self) -> String {
        match self {
            ParamValue::String(s) => s.clone(),
            other => other.to_json().to_string(),
        }
    }
}

/// A declared parameter.
#[derive(Debug, Clone)]
pub struct ParameterDefinition {
    pub name: String,
    pub parameter_type: ParameterType,
    pub description: String,
    pub default: Option<ParamValue>,
    pub allowed_values: Vec<String>,
    pub allowed_pattern: Option<String>,
    pattern: Option<regex_lite::Regex>,
    pub display_type: Option<DisplayType>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_chars: Option<u64>,
    pub max_chars: Option<u64>,
}

const PROPERTIES: &str = "type, description, default, allowedValues, allowedPattern, displayType, minItems, maxItems, minChars and maxChars";

fn content_error(msg: String) -> SsmError {
    SsmError::InvalidDocumentContent(msg)
}

impl ParameterDefinition {
    /// One entry of the document's `parameters`.
    pub fn parse(name: &str, decl: &Value) -> Result<Self, SsmError> {
        if !is_parameter_name(name) || name.len() > 128 {
            return Err(content_error(format!(
                "Parameter name \"{name}\" is not valid: use 1 to 128 letters and digits, the names {{{{ name }}}} can refer to."
            )));
        }
        let Value::Object(decl) = decl else {
            return Err(content_error(format!(
                "Parameter \"{name}\" must be an object with {PROPERTIES}."
            )));
        };
        for key in decl.keys() {
            match key.as_str() {
                "type" | "description" | "default" | "allowedValues" | "allowedPattern"
                | "displayType" | "minItems" | "maxItems" | "minChars" | "maxChars" => {}
                "interpolationType" => {
                    return Err(content_error(format!(
                        "Parameter \"{name}\" uses interpolationType, which Steward does not support yet; remove it (the value is then placed in the step as written)."
                    )));
                }
                other => {
                    return Err(content_error(format!(
                        "Parameter \"{name}\" has an unknown property \"{other}\"; a parameter takes {PROPERTIES}."
                    )));
                }
            }
        }
        let types = || {
            ParameterType::ALL
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let parameter_type = match decl.get("type") {
            Some(Value::String(t)) => ParameterType::parse(t).ok_or_else(|| {
                content_error(format!(
                    "Parameter \"{name}\" has type \"{t}\"; use one of {}.",
                    types()
                ))
            })?,
            Some(_) => {
                return Err(content_error(format!(
                    "Parameter \"{name}\": type must be a string, one of {}.",
                    types()
                )));
            }
            None => {
                return Err(content_error(format!(
                    "Parameter \"{name}\" has no type; give one of {}.",
                    types()
                )));
            }
        };
        let text = |key: &str| -> Result<Option<String>, SsmError> {
            match decl.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(content_error(format!(
                    "Parameter \"{name}\": {key} must be a string."
                ))),
            }
        };
        let count = |key: &str| -> Result<Option<u64>, SsmError> {
            match decl.get(key) {
                None => Ok(None),
                Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
                // SSM Agent reads these as text too.
                Some(Value::String(s))
                    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    s.parse().map(Some).map_err(|_| {
                        content_error(format!("Parameter \"{name}\": {key} is too large."))
                    })
                }
                Some(_) => Err(content_error(format!(
                    "Parameter \"{name}\": {key} must be a whole number of 0 or more."
                ))),
            }
        };
        let description = text("description")?.unwrap_or_default();
        let display_type = match text("displayType")?.as_deref() {
            None => None,
            Some("textfield") => Some(DisplayType::TextField),
            Some("textarea") => Some(DisplayType::TextArea),
            Some(other) => {
                return Err(content_error(format!(
                    "Parameter \"{name}\": displayType \"{other}\" is not valid; use textfield or textarea."
                )));
            }
        };
        let (min_items, max_items) = (count("minItems")?, count("maxItems")?);
        let (min_chars, max_chars) = (count("minChars")?, count("maxChars")?);
        if (min_items.is_some() || max_items.is_some()) && !parameter_type.is_list() {
            return Err(content_error(format!(
                "Parameter \"{name}\": minItems and maxItems apply to StringList and MapList parameters, not {}.",
                parameter_type.as_str()
            )));
        }
        if (min_chars.is_some() || max_chars.is_some())
            && matches!(
                parameter_type,
                ParameterType::Integer | ParameterType::Boolean
            )
        {
            return Err(content_error(format!(
                "Parameter \"{name}\": minChars and maxChars do not apply to {} parameters.",
                parameter_type.as_str()
            )));
        }
        for (lo, hi, what) in [
            (min_items, max_items, "Items"),
            (min_chars, max_chars, "Chars"),
        ] {
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo > hi
            {
                return Err(content_error(format!(
                    "Parameter \"{name}\": min{what} {lo} is more than max{what} {hi}."
                )));
            }
        }
        let allowed_values = match decl.get("allowedValues") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                if matches!(
                    parameter_type,
                    ParameterType::StringMap | ParameterType::MapList
                ) {
                    return Err(content_error(format!(
                        "Parameter \"{name}\": allowedValues applies to String, StringList, Integer and Boolean parameters."
                    )));
                }
                items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
                        _ => Err(content_error(format!(
                            "Parameter \"{name}\": allowedValues must be a list of strings."
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => {
                return Err(content_error(format!(
                    "Parameter \"{name}\": allowedValues must be a list of strings."
                )));
            }
        };
        let allowed_pattern = text("allowedPattern")?;
        let pattern = match &allowed_pattern {
            None => None,
            // The whole value must match: SSM's own AWS-RunShellScript bounds
            // executionTimeout with an unanchored alternation.
            Some(p) => Some(regex_lite::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                content_error(format!(
                    "Parameter \"{name}\": allowedPattern is not a valid regular expression ({e}); fix the pattern, e.g. ^[a-z0-9-]+$."
                ))
            })?),
        };
        let default = match decl.get("default") {
            None => None,
            Some(v) => Some(default_value(name, parameter_type, v)?),
        };
        Ok(Self {
            name: name.to_string(),
            parameter_type,
            description,
            default,
            allowed_values,
            allowed_pattern,
            pattern,
            display_type,
            min_items,
            max_items,
            min_chars,
            max_chars,
        })
    }

    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// DescribeDocument's `DefaultValue`: a String as it is, other types as JSON.
    pub fn default_value_text(&self) -> Option<String> {
        self.default.as_ref().map(ParamValue::to_text)
    }

    /// The given wire values, typed and checked against this declaration.
    pub fn accept(&self, values: &[String]) -> Result<ParamValue, SsmError> {
        let name = &self.name;
        let t = self.parameter_type.as_str();
        let bad =
            |msg: String| SsmError::InvalidParameters(format!("Parameter \"{name}\" ({t}): {msg}"));
        let single = || -> Result<&String, SsmError> {
            match values {
                [one] => Ok(one),
                _ => Err(bad(format!(
                    "takes exactly one value; {} were given.",
                    values.len()
                ))),
            }
        };
        // A `{{ssm:…}}` reference is checked against the store when the
        // command is sent and resolved later; its text is not the value.
        let is_reference = |s: &str| !references::find(s).is_empty();
        let no_reference = |s: &str| -> Result<(), SsmError> {
            if is_reference(s) {
                Err(bad(
                    "a Parameter Store reference can stand for String and StringList values only."
                        .into(),
                ))
            } else {
                Ok(())
            }
        };
        let object = |s: &str| -> Result<Map<String, Value>, SsmError> {
            match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(bad("give a JSON object, e.g. {\"key\":\"value\"}.".into())),
            }
        };
        let value = match self.parameter_type {
            ParameterType::String => ParamValue::String(single()?.clone()),
            ParameterType::StringList => ParamValue::StringList(values.to_vec()),
            ParameterType::Integer => {
                let s = single()?;
                no_reference(s)?;
                let ok = !s.is_empty()
                    && s.strip_prefix('-')
                        .unwrap_or(s)
                        .bytes()
                        .all(|b| b.is_ascii_digit());
                match s.parse::<i64>() {
                    Ok(n) if ok => ParamValue::Integer(n),
                    _ => return Err(bad(format!("\"{s}\" is not a whole number."))),
                }
            }
            ParameterType::Boolean => {
                let s = single()?;
                no_reference(s)?;
                match s.as_str() {
                    "true" => ParamValue::Boolean(true),
                    "false" => ParamValue::Boolean(false),
                    _ => return Err(bad(format!("\"{s}\" is not true or false."))),
                }
            }
            ParameterType::StringMap => {
                let s = single()?;
                no_reference(s)?;
                ParamValue::StringMap(object(s)?)
            }
            ParameterType::MapList => {
                let mut items = Vec::with_capacity(values.len());
                for s in values {
                    no_reference(s)?;
                    items.push(object(s)?);
                }
                ParamValue::MapList(items)
            }
        };
        // The texts the constraints apply to: each item of a list, the JSON
        // of a map (as SSM Agent does).
        let texts: Vec<String> = match &value {
            ParamValue::StringList(l) => l.clone(),
            ParamValue::MapList(l) => l
                .iter()
                .map(|m| Value::Object(m.clone()).to_string())
                .collect(),
            other => vec![other.to_text()],
        };
        if self.parameter_type.is_list() {
            let n = texts.len() as u64;
            if let Some(min) = self.min_items
                && n < min
            {
                return Err(bad(format!(
                    "{n} items were given; it takes at least {min}."
                )));
            }
            if let Some(max) = self.max_items
                && n > max
            {
                return Err(bad(format!(
                    "{n} items were given; it takes at most {max}."
                )));
            }
        }
        for text in texts.iter().filter(|s| !is_reference(s)) {
            let chars = text.chars().count() as u64;
            if let Some(min) = self.min_chars
                && chars < min
            {
                return Err(bad(format!(
                    "a value of {chars} characters is shorter than minChars {min}."
                )));
            }
            if let Some(max) = self.max_chars
                && chars > max
            {
                return Err(bad(format!(
                    "a value of {chars} characters is longer than maxChars {max}."
                )));
            }
            if !self.allowed_values.is_empty() && !self.allowed_values.contains(text) {
                return Err(bad(format!(
                    "\"{text}\" is not an allowed value; use one of {}.",
                    self.allowed_values.join(", ")
                )));
            }
            if let Some(p) = &self.pattern
                && !p.is_match(text)
            {
                return Err(bad(format!(
                    "\"{text}\" does not match the allowed pattern {}.",
                    self.allowed_pattern.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(value)
    }
}

/// A `default`, typed. Scalars stand for a String's text (YAML's `default: 10`).
fn default_value(name: &str, t: ParameterType, v: &Value) -> Result<ParamValue, SsmError> {
    let bad = || {
        content_error(format!(
            "Parameter \"{name}\": the default {v} is not a {} value.",
            t.as_str()
        ))
    };
    let scalar_text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    };
    let object = |v: &Value| match v {
        Value::Object(m) => Some(m.clone()),
        _ => None,
    };
    Ok(match t {
        ParameterType::String => ParamValue::String(scalar_text(v).ok_or_else(bad)?),
        ParameterType::StringList => match v {
            Value::Array(items) => ParamValue::StringList(
                items
                    .iter()
                    .map(|i| scalar_text(i).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            ),
            // A single text stands for a one-item list.
            other => ParamValue::StringList(vec![scalar_text(other).ok_or_else(bad)?]),
        },
        ParameterType::Integer => ParamValue::Integer(v.as_i64().ok_or_else(bad)?),
        ParameterType::Boolean => ParamValue::Boolean(v.as_bool().ok_or_else(bad)?),
        ParameterType::StringMap => ParamValue::StringMap(object(v).ok_or_else(bad)?),
        ParameterType::MapList => match v {
            Value::Array(items) => ParamValue::MapList(
                items
                    .iter()
                    .map(|i| object(i).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(bad()),
        },
    })
}

/// Every declared parameter's value for one command: given or default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedParameters(BTreeMap<String, ParamValue>);

impl ResolvedParameters {
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &ParamValue)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks `given` against `declared`: no unknown name, every required one
/// present, each value of its type and within its constraints. Defaults
/// fill in the rest (they are the document author's and are not checked
/// against allowedPattern: SSM's own examples pair a pattern with `''`).
pub fn validate(
    declared: &[ParameterDefinition],
    given: &GivenParameters,
) -> Result<ResolvedParameters, SsmError> {
    let names = || {
        if declared.is_empty() {
            "it declares none".to_string()
        } else {
            format!(
                "it declares {}",
                declared
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    for key in given.keys() {
        if !declared.iter().any(|d| d.name == *key) {
            return Err(SsmError::InvalidParameters(format!(
                "Parameter \"{key}\" is not declared by the document; {}.",
                names()
            )));
        }
    }
    let mut out = BTreeMap::new();
    for d in declared {
        let value = match (given.get(&d.name), &d.default) {
            (Some(values), _) => d.accept(values)?,
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(SsmError::InvalidParameters(format!(
                    "Parameter \"{}\" is required: the document gives it no default. Give a {} value for it.",
                    d.name,
                    d.parameter_type.as_str()
                )));
            }
        };
        out.insert(d.name.clone(), value);
    }
    Ok(ResolvedParameters(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(name: &str, decl: Value) -> ParameterDefinition {
        ParameterDefinition::parse(name, &decl).unwrap()
    }

    fn parse_err(name: &str, decl: Value) -> String {
        let e = ParameterDefinition::parse(name, &decl).unwrap_err();
        assert_eq!(e.code(), "InvalidDocumentContent", "{e}");
        e.to_string()
    }

    fn given(pairs: &[(&str, &[&str])]) -> GivenParameters {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn accept(d: &ParameterDefinition, values: &[&str]) -> Result<ParamValue, SsmError> {
        d.accept(&values.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn declarations_are_checked() {
        assert!(parse_err("a_b", json!({"type": "String"})).contains("letters and digits"));
        assert!(parse_err("a", json!("String")).contains("must be an object"));
        assert!(parse_err("a", json!({})).contains("has no type"));
        assert!(parse_err("a", json!({"type": "Number"})).contains("use one of String"));
        assert!(
            parse_err("a", json!({"type": "String", "color": 1}))
                .contains("unknown property \"color\"")
        );
        assert!(
            parse_err(
                "a",
                json!({"type": "String", "interpolationType": "ENV_VAR"})
            )
            .contains("does not support yet")
        );
        assert!(
            parse_err("a", json!({"type": "String", "displayType": "box"}))
                .contains("textfield or textarea")
        );
        assert!(
            parse_err("a", json!({"type": "String", "minItems": 1}))
                .contains("StringList and MapList")
        );
        assert!(parse_err("a", json!({"type": "Integer", "maxChars": 1})).contains("do not apply"));
        assert!(
            parse_err(
                "a",
                json!({"type": "StringList", "minItems": 3, "maxItems": 2})
            )
            .contains("minItems 3 is more than maxItems 2")
        );
        assert!(parse_err("a", json!({"type": "String", "maxChars": -1})).contains("whole number"));
        assert!(
            parse_err("a", json!({"type": "String", "allowedPattern": "("}))
                .contains("not a valid regular expression")
        );
        assert!(
            parse_err("a", json!({"type": "StringMap", "allowedValues": ["x"]}))
                .contains("allowedValues applies")
        );
        assert!(
            parse_err("a", json!({"type": "String", "allowedValues": "x"}))
                .contains("list of strings")
        );
        assert!(
            parse_err("a", json!({"type": "Integer", "default": "3"}))
                .contains("not a Integer value")
        );
        assert!(
            parse_err("a", json!({"type": "Boolean", "default": "true"}))
                .contains("not a Boolean value")
        );
        assert!(
            parse_err("a", json!({"type": "StringMap", "default": []}))
                .contains("not a StringMap value")
        );
        assert!(
            parse_err("a", json!({"type": "MapList", "default": [1]}))
                .contains("not a MapList value")
        );
        assert!(
            parse_err("a", json!({"type": "String", "default": [1]}))
                .contains("not a String value")
        );
        let d = def(
            "a",
            json!({"type": "String", "minChars": "2", "maxChars": 4096, "displayType": "textarea", "description": "d"}),
        );
        assert_eq!((d.min_chars, d.max_chars), (Some(2), Some(4096)));
        assert_eq!(d.display_type, Some(DisplayType::TextArea));
        assert!(d.is_required());
    }

    #[test]
    fn defaults_are_typed() {
        let d = def("n", json!({"type": "Integer", "default": 100}));
        assert_eq!(d.default, Some(ParamValue::Integer(100)));
        assert_eq!(d.default_value_text().as_deref(), Some("100"));
        let d = def("s", json!({"type": "String", "default": 10}));
        assert_eq!(d.default, Some(ParamValue::String("10".into())));
        let d = def("l", json!({"type": "StringList", "default": "x"}));
        assert_eq!(d.default, Some(ParamValue::StringList(vec!["x".into()])));
        let d = def("l", json!({"type": "StringList", "default": ["a", "b"]}));
        assert_eq!(d.default_value_text().as_deref(), Some(r#"["a","b"]"#));
        let d = def(
            "m",
            json!({"type": "MapList", "default": [{"DeviceName": "/dev/sda1"}], "maxItems": 2}),
        );
        assert!(!d.is_required());
        // A default need not satisfy the pattern (SSM's own examples).
        let d = def(
            "i",
            json!({"type": "String", "allowedPattern": "^i-[a-z0-9]{8,17}$", "default": ""}),
        );
        assert!(!d.is_required());
    }

    #[test]
    fn values_are_typed() {
        let code = |r: Result<ParamValue, SsmError>| r.unwrap_err().code();
        let s = def("s", json!({"type": "String"}));
        assert_eq!(accept(&s, &["x"]).unwrap(), ParamValue::String("x".into()));
        assert_eq!(code(accept(&s, &["x", "y"])), "InvalidParameters");
        let l = def("l", json!({"type": "StringList"}));
        assert_eq!(
            accept(&l, &["x", "y"]).unwrap(),
            ParamValue::StringList(vec!["x".into(), "y".into()])
        );
        let n = def("n", json!({"type": "Integer"}));
        assert_eq!(accept(&n, &["-5"]).unwrap(), ParamValue::Integer(-5));
        for bad in ["3.5", "", "+3", "x", "99999999999999999999", "-"] {
            assert_eq!(code(accept(&n, &[bad])), "InvalidParameters", "{bad}");
        }
        let b = def("b", json!({"type": "Boolean"}));
        assert_eq!(accept(&b, &["false"]).unwrap(), ParamValue::Boolean(false));
        assert_eq!(code(accept(&b, &["True"])), "InvalidParameters");
        assert_eq!(code(accept(&b, &["{{ssm:/flag}}"])), "InvalidParameters");
        let m = def("m", json!({"type": "StringMap"}));
        assert_eq!(
            accept(&m, &[r#"{"Env":"Prod"}"#]).unwrap(),
            ParamValue::StringMap(json!({"Env": "Prod"}).as_object().unwrap().clone())
        );
        assert_eq!(code(accept(&m, &["[1]"])), "InvalidParameters");
        let ml = def("ml", json!({"type": "MapList", "maxItems": 1}));
        assert!(accept(&ml, &[r#"{"a":"1"}"#]).is_ok());
        assert_eq!(
            code(accept(&ml, &[r#"{"a":"1"}"#, "{}"])),
            "InvalidParameters"
        );
        assert_eq!(code(accept(&ml, &["x"])), "InvalidParameters");
    }

    #[test]
    fn constraints_apply_to_each_item() {
        let l = def(
            "l",
            json!({"type": "StringList", "minItems": 1, "maxItems": 2, "maxChars": 3, "allowedValues": ["a", "bb", "ccc", "dddd"]}),
        );
        assert!(accept(&l, &["a", "ccc"]).is_ok());
        let msg = |r: Result<ParamValue, SsmError>| r.unwrap_err().to_string();
        assert!(msg(accept(&l, &[])).contains("at least 1"));
        assert!(msg(accept(&l, &["a", "a", "a"])).contains("at most 2"));
        assert!(msg(accept(&l, &["dddd"])).contains("longer than maxChars 3"));
        assert!(msg(accept(&l, &["x"])).contains("not an allowed value"));
        let s = def(
            "s",
            json!({"type": "String", "minChars": 2, "allowedPattern": "[a-z]+"}),
        );
        assert!(msg(accept(&s, &["a"])).contains("shorter than minChars 2"));
        // The whole value must match.
        assert!(msg(accept(&s, &["ab1"])).contains("does not match the allowed pattern [a-z]+"));
        assert!(accept(&s, &["abc"]).is_ok());
        // A reference's text is not its value: checked elsewhere.
        assert!(accept(&s, &["{{ssm:/app/name}}"]).is_ok());
        // Characters, not bytes.
        let c = def("c", json!({"type": "String", "maxChars": 2}));
        assert!(accept(&c, &["éé"]).is_ok());
        let n = def("n", json!({"type": "Integer", "allowedValues": [1, 2]}));
        assert!(accept(&n, &["2"]).is_ok());
        let e = accept(&n, &["3"]).unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        assert_eq!(
            e.to_string(),
            r#"Parameter "n" (Integer): "3" is not an allowed value; use one of 1, 2."#
        );
    }

    #[test]
    fn parameters_map_is_validated_with_defaults() {
        let declared = vec![
            def("commands", json!({"type": "StringList", "minItems": 1})),
            def("workingDirectory", json!({"type": "String", "default": ""})),
            def("count", json!({"type": "Integer", "default": 3})),
        ];
        let r = validate(&declared, &given(&[("commands", &["ls"])])).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r.get("workingDirectory"),
            Some(&ParamValue::String(String::new()))
        );
        assert_eq!(r.get("count"), Some(&ParamValue::Integer(3)));
        let r = validate(
            &declared,
            &given(&[("commands", &["ls"]), ("count", &["7"])]),
        )
        .unwrap();
        assert_eq!(r.get("count"), Some(&ParamValue::Integer(7)));

        let e = validate(&declared, &given(&[])).unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        assert!(e.to_string().contains("\"commands\" is required"), "{e}");
        let e = validate(
            &declared,
            &given(&[("commands", &["ls"]), ("color", &["red"])]),
        )
        .unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        assert!(
            e.to_string()
                .contains("declares commands, workingDirectory, count"),
            "{e}"
        );
        let e = validate(&[], &given(&[("x", &["1"])])).unwrap_err();
        assert!(e.to_string().contains("declares none"), "{e}");
        assert!(validate(&[], &given(&[])).unwrap().is_empty());
    }
}

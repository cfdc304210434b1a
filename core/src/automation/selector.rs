//! Step outputs selected from a response by JSONPath (`$.Parameter.Value`,
//! `$.InstanceInformationList[0].PingStatus`), and typed as the step
//! declares.
//!
//! SSM's selectors are JSONPath; RFC 9535's grammar covers them, so the
//! `serde_json_path` crate reads them.

use serde_json::Value;
use serde_json_path::JsonPath;

use super::runbook::OutputType;

#[derive(Debug, Clone)]
pub struct Selector(JsonPath);

impl Selector {
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('$') {
            return Err(format!(
                "Selector {text} must be a JSONPath starting with $, e.g. $.Parameter.Value."
            ));
        }
        JsonPath::parse(text)
            .map(Selector)
            .map_err(|e| format!("Selector {text} is not a valid JSONPath: {e}."))
    }

    /// The value `response` holds at this path, as `output_type`. An output
    /// the response does not hold, or holds as another type, is an error
    /// that names the selector: the step fails.
    pub fn select(&self, response: &Value, output_type: OutputType) -> Result<Value, String> {
        let nodes: Vec<&Value> = self.0.query(response).all();
        let path = self.0.to_string();
        let value = match (nodes.as_slice(), output_type) {
            ([], _) => return Err(format!("Selector {path} matches nothing in the response.")),
            ([one], _) => (*one).clone(),
            (many, OutputType::StringList | OutputType::MapList) => {
                Value::Array(many.iter().map(|v| (*v).clone()).collect())
            }
            (many, _) => {
                return Err(format!(
                    "Selector {path} matches {} values, and the output's type holds one.",
                    many.len()
                ));
            }
        };
        coerce(value, output_type).map_err(|v| {
            format!(
                "Selector {path} selects {v}, which is not a {}.",
                output_type.as_str()
            )
        })
    }
}

/// `value` as `t`; numbers and booleans written as strings are read, as
/// SSM's agent does.
pub fn coerce(value: Value, t: OutputType) -> Result<Value, Value> {
    match (t, value) {
        (OutputType::String, Value::String(s)) => Ok(Value::String(s)),
        (OutputType::String, v @ (Value::Number(_) | Value::Bool(_))) => {
            Ok(Value::String(v.to_string()))
        }
        (OutputType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
        (OutputType::Integer, Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(n) => Ok(Value::from(n)),
            Err(_) => Err(Value::String(s)),
        },
        (OutputType::Boolean, Value::Bool(b)) => Ok(Value::Bool(b)),
        (OutputType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (OutputType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (OutputType::StringList, Value::Array(items)) if items.iter().all(Value::is_string) => {
            Ok(Value::Array(items))
        }
        (OutputType::StringList, Value::String(s)) => Ok(Value::Array(vec![Value::String(s)])),
        (OutputType::StringMap, Value::Object(m)) => Ok(Value::Object(m)),
        (OutputType::MapList, Value::Array(items)) if items.iter().all(Value::is_object) => {
            Ok(Value::Array(items))
        }
        (_, v) => Err(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(path: &str, v: &Value, t: OutputType) -> Result<Value, String> {
        Selector::parse(path).unwrap().select(v, t)
    }

    #[test]
    fn ssm_style_selectors_pick_typed_values() {
        let r = json!({"Parameter": {"Value": "42", "Version": 3},
            "InstanceInformationList": [{"InstanceId": "mi-1", "PingStatus": "Online"}, {"InstanceId": "mi-2", "PingStatus": "ConnectionLost"}]});
        assert_eq!(
            select("$.Parameter.Value", &r, OutputType::String),
            Ok(json!("42"))
        );
        assert_eq!(
            select("$.Parameter.Value", &r, OutputType::Integer),
            Ok(json!(42))
        );
        assert_eq!(
            select("$.Parameter.Version", &r, OutputType::String),
            Ok(json!("3"))
        );
        assert_eq!(
            select(
                "$.InstanceInformationList[0].PingStatus",
                &r,
                OutputType::String
            ),
            Ok(json!("Online"))
        );
        assert_eq!(
            select(
                "$.InstanceInformationList[*].InstanceId",
                &r,
                OutputType::StringList
            ),
            Ok(json!(["mi-1", "mi-2"]))
        );
        assert_eq!(
            select("$.InstanceInformationList", &r, OutputType::MapList)
                .map(|v| v.as_array().map(Vec::len)),
            Ok(Some(2))
        );
    }

    #[test]
    fn a_missing_or_mistyped_value_is_an_error_naming_the_selector() {
        let r = json!({"Parameter": {"Value": "abc"}, "L": [1, 2]});
        assert!(
            select("$.Nope", &r, OutputType::String)
                .unwrap_err()
                .contains("$.Nope")
        );
        assert!(
            select("$.Parameter.Value", &r, OutputType::Integer)
                .unwrap_err()
                .contains("not a Integer")
        );
        assert!(
            select("$.L[*]", &r, OutputType::String)
                .unwrap_err()
                .contains("2 values")
        );
    }

    #[test]
    fn selectors_are_checked_when_written() {
        assert!(Selector::parse("Parameter.Value").is_err());
        assert!(Selector::parse("$.[").is_err());
        assert!(Selector::parse("$.A[0].B").is_ok());
    }
}

//! aws:branch's `Choices` (and aws:loop's `LoopCondition`): a condition on a
//! `Variable`, with SSM's operators, combined by `And`, `Or` and `Not`.
//!
//! A choice is read twice: when the runbook is created, with placeholders
//! where values will be (only its shape and literal values are checked), and
//! when the step runs, with every value in place.

use serde_json::{Map, Value};

/// SSM's comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    EqualsIgnoreCase,
    StartsWith,
    EndsWith,
    Contains,
    NumericEquals,
    NumericGreater,
    NumericLesser,
    NumericGreaterOrEquals,
    NumericLesserOrEquals,
    BooleanEquals,
}

impl Operator {
    pub const ALL: [Operator; 11] = [
        Operator::StringEquals,
        Operator::EqualsIgnoreCase,
        Operator::StartsWith,
        Operator::EndsWith,
        Operator::Contains,
        Operator::NumericEquals,
        Operator::NumericGreater,
        Operator::NumericLesser,
        Operator::NumericGreaterOrEquals,
        Operator::NumericLesserOrEquals,
        Operator::BooleanEquals,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::StringEquals => "StringEquals",
            Operator::EqualsIgnoreCase => "EqualsIgnoreCase",
            Operator::StartsWith => "StartsWith",
            Operator::EndsWith => "EndsWith",
            Operator::Contains => "Contains",
            Operator::NumericEquals => "NumericEquals",
            Operator::NumericGreater => "NumericGreater",
            Operator::NumericLesser => "NumericLesser",
            Operator::NumericGreaterOrEquals => "NumericGreaterOrEquals",
            Operator::NumericLesserOrEquals => "NumericLesserOrEquals",
            Operator::BooleanEquals => "BooleanEquals",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    fn is_numeric(self) -> bool {
        matches!(
            self,
            Operator::NumericEquals
                | Operator::NumericGreater
                | Operator::NumericLesser
                | Operator::NumericGreaterOrEquals
                | Operator::NumericLesserOrEquals
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare {
        variable: Value,
        operator: Operator,
        operand: Value,
    },
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
}

/// One of aws:branch's choices.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub next_step: String,
    pub condition: Condition,
}

fn has_placeholder(v: &Value) -> bool {
    matches!(v, Value::String(s) if !super::variables::find(s).is_empty())
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Choice {
    /// One entry of `Choices`. `written` is true at CreateDocument, when
    /// values may still be placeholders.
    pub fn parse(value: &Value, written: bool) -> Result<Choice, String> {
        let Value::Object(map) = value else {
            return Err("each choice must be an object with NextStep and a condition.".into());
        };
        let next_step = match map.get("NextStep") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err("each choice needs NextStep, the name of a step.".into()),
        };
        let mut rest = map.clone();
        rest.remove("NextStep");
        let condition = condition(&rest, written)?;
        Ok(Choice {
            next_step,
            condition,
        })
    }

    /// A condition on its own (aws:loop's LoopCondition).
    pub fn parse_condition(value: &Value, written: bool) -> Result<Condition, String> {
        match value {
            Value::Object(map) => condition(map, written),
            _ => Err("a condition must be an object, e.g. Variable and StringEquals.".into()),
        }
    }
}

fn condition(map: &Map<String, Value>, written: bool) -> Result<Condition, String> {
    let list = |v: &Value| -> Result<Vec<Condition>, String> {
        match v {
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|c| Choice::parse_condition(c, written))
                .collect(),
            _ => Err("And and Or take a list of at least one condition.".into()),
        }
    };
    if map.len() == 1 {
        if let Some(v) = map.get("And") {
            return list(v).map(Condition::And);
        }
        if let Some(v) = map.get("Or") {
            return list(v).map(Condition::Or);
        }
        if let Some(v) = map.get("Not") {
            return Choice::parse_condition(v, written).map(|c| Condition::Not(Box::new(c)));
        }
    }
    let operators = || Operator::ALL.map(Operator::as_str).join(", ");
    let variable = map.get("Variable").ok_or_else(|| {
        format!(
            "a condition needs Variable and one operator ({}), or And, Or or Not.",
            operators()
        )
    })?;
    let ops: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != "Variable").collect();
    let [(op, operand)] = ops.as_slice() else {
        return Err(format!(
            "a condition takes Variable and exactly one operator: {}.",
            operators()
        ));
    };
    let operator = Operator::parse(op)
        .ok_or_else(|| format!("{op} is not an operator; use {}.", operators()))?;
    let literal = !(written && has_placeholder(operand));
    if literal && operator.is_numeric() && number(operand).is_none() {
        return Err(format!("{op} compares numbers, and {operand} is not one."));
    }
    if literal && operator == Operator::BooleanEquals && boolean(operand).is_none() {
        return Err(format!(
            "BooleanEquals compares with true or false, and {operand} is neither."
        ));
    }
    Ok(Condition::Compare {
        variable: variable.clone(),
        operator,
        operand: (*operand).clone(),
    })
}

impl Condition {
    /// Whether the condition holds, its values in place. A numeric or
    /// boolean comparison on a value that is neither is an error: the step
    /// fails, saying which value.
    pub fn holds(&self) -> Result<bool, String> {
        match self {
            Condition::And(cs) => {
                for c in cs {
                    if !c.holds()? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Condition::Or(cs) => {
                for c in cs {
                    if c.holds()? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Condition::Not(c) => c.holds().map(|b| !b),
            Condition::Compare {
                variable,
                operator,
                operand,
            } => {
                let (v, o) = (text(variable), text(operand));
                Ok(match operator {
                    Operator::StringEquals => v == o,
                    Operator::EqualsIgnoreCase => v.to_lowercase() == o.to_lowercase(),
                    Operator::StartsWith => v.starts_with(&o),
                    Operator::EndsWith => v.ends_with(&o),
                    Operator::Contains => v.contains(&o),
                    Operator::BooleanEquals => {
                        let v = boolean(variable).ok_or_else(|| {
                            format!("BooleanEquals: the variable's value {v} is not true or false.")
                        })?;
                        let o = boolean(operand)
                            .ok_or_else(|| format!("BooleanEquals: {o} is not true or false."))?;
                        v == o
                    }
                    numeric => {
                        let v = number(variable).ok_or_else(|| {
                            format!(
                                "{}: the variable's value {v} is not a number.",
                                numeric.as_str()
                            )
                        })?;
                        let o = number(operand)
                            .ok_or_else(|| format!("{}: {o} is not a number.", numeric.as_str()))?;
                        match numeric {
                            Operator::NumericEquals => v == o,
                            Operator::NumericGreater => v > o,
                            Operator::NumericLesser => v < o,
                            Operator::NumericGreaterOrEquals => v >= o,
                            _ => v <= o,
                        }
                    }
                })
            }
        }
    }
}

/// The step aws:branch goes to: the first choice that holds, else Default.
/// `None` when nothing holds and there is no Default (the step fails, as
/// in SSM).
pub fn choose(choices: &[Choice], default: Option<&str>) -> Result<Option<String>, String> {
    for c in choices {
        if c.condition.holds()? {
            return Ok(Some(c.next_step.clone()));
        }
    }
    Ok(default.map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn choice(v: Value) -> Choice {
        Choice::parse(&v, false).unwrap()
    }

    #[test]
    fn each_operator_compares_as_ssm_does() {
        let cases = [
            (
                json!({"NextStep": "a", "Variable": "Linux", "StringEquals": "Linux"}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": "Linux", "StringEquals": "linux"}),
                false,
            ),
            (
                json!({"NextStep": "a", "Variable": "Linux", "EqualsIgnoreCase": "linux"}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": "web-1", "StartsWith": "web"}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": "web-1", "EndsWith": "-1"}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": "a web b", "Contains": "web"}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": "3", "NumericEquals": 3}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": 3, "NumericGreater": 2}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": 3, "NumericGreater": 3}),
                false,
            ),
            (
                json!({"NextStep": "a", "Variable": 3, "NumericGreaterOrEquals": 3}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": 2, "NumericLesser": 3}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": 4, "NumericLesserOrEquals": 3}),
                false,
            ),
            (
                json!({"NextStep": "a", "Variable": "true", "BooleanEquals": true}),
                true,
            ),
            (
                json!({"NextStep": "a", "Variable": false, "BooleanEquals": true}),
                false,
            ),
        ];
        for (c, want) in cases {
            assert_eq!(choice(c.clone()).condition.holds(), Ok(want), "{c}");
        }
    }

    #[test]
    fn and_or_not_combine() {
        let c = choice(json!({"NextStep": "x", "And": [
            {"Variable": "a", "StringEquals": "a"},
            {"Not": {"Variable": "b", "StringEquals": "c"}},
            {"Or": [{"Variable": 1, "NumericEquals": 2}, {"Variable": "z", "Contains": "z"}]}
        ]}));
        assert_eq!(c.condition.holds(), Ok(true));
        let c = choice(json!({"NextStep": "x", "Not": {"Variable": "a", "StringEquals": "a"}}));
        assert_eq!(c.condition.holds(), Ok(false));
    }

    #[test]
    fn the_first_choice_that_holds_wins_else_default() {
        let cs = vec![
            choice(json!({"NextStep": "one", "Variable": "x", "StringEquals": "y"})),
            choice(json!({"NextStep": "two", "Variable": "x", "StringEquals": "x"})),
            choice(json!({"NextStep": "three", "Variable": "x", "StringEquals": "x"})),
        ];
        assert_eq!(choose(&cs, Some("d")), Ok(Some("two".into())));
        assert_eq!(choose(&cs[..1], Some("d")), Ok(Some("d".into())));
        assert_eq!(choose(&cs[..1], None), Ok(None));
    }

    #[test]
    fn comparing_a_non_number_fails_the_step_with_the_value() {
        let c = choice(json!({"NextStep": "a", "Variable": "abc", "NumericEquals": 1}));
        assert_eq!(
            c.condition.holds(),
            Err("NumericEquals: the variable's value abc is not a number.".into())
        );
    }

    #[test]
    fn shapes_are_checked_when_written_but_placeholders_wait() {
        let bad = [
            json!({"Variable": "a", "StringEquals": "a"}),
            json!({"NextStep": "a", "StringEquals": "a"}),
            json!({"NextStep": "a", "Variable": "a"}),
            json!({"NextStep": "a", "Variable": "a", "StringEquals": "a", "Contains": "b"}),
            json!({"NextStep": "a", "Variable": "a", "Matches": "a"}),
            json!({"NextStep": "a", "Variable": "a", "NumericEquals": "many"}),
            json!({"NextStep": "a", "Variable": "a", "BooleanEquals": "yes"}),
            json!({"NextStep": "a", "And": []}),
        ];
        for c in bad {
            assert!(Choice::parse(&c, true).is_err(), "{c} was accepted");
        }
        let later = json!({"NextStep": "a", "Variable": "{{ n }}", "NumericEquals": "{{ limit }}"});
        assert!(Choice::parse(&later, true).is_ok());
        assert!(Choice::parse(&later, false).is_err());
    }
}

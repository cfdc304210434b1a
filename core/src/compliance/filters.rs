//! SSM's ComplianceStringFilter, as the three listings read it: a key, up
//! to 20 values and a comparison (EQUAL unless given).

use serde::Deserialize;

use crate::error::SsmError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct FilterInput {
    key: Option<String>,
    values: Option<Vec<String>>,
    #[serde(rename = "Type")]
    kind: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    BeginWith,
    LessThan,
    GreaterThan,
}

/// A checked filter.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    pub key: &'static str,
    op: Op,
    values: Vec<String>,
    /// ExecutionTime's value as epoch seconds.
    time: Option<f64>,
}

/// What a filter compares: text, or a time.
pub(super) enum Field<'a> {
    Text(&'a str),
    Time(f64),
}

fn invalid(why: String) -> SsmError {
    SsmError::InvalidFilter(why)
}

/// Checks `input` against the keys a listing takes (`keys`; the time key,
/// if any, is `ExecutionTime`).
pub(super) fn parse(
    input: Vec<FilterInput>,
    keys: &'static [&'static str],
) -> Result<Vec<Filter>, SsmError> {
    input
        .into_iter()
        .map(|f| {
            let given = f.key.unwrap_or_default();
            let key = keys.iter().copied().find(|k| *k == given).ok_or_else(|| {
                invalid(format!(
                    "Filter key {given} is not valid here; use one of {}.",
                    keys.join(", ")
                ))
            })?;
            let values = f.values.unwrap_or_default();
            if values.is_empty() {
                return Err(invalid(format!("Filter {key} needs at least one value.")));
            }
            let op = match f.kind.as_deref().unwrap_or("EQUAL") {
                "EQUAL" => Op::Equal,
                "NOT_EQUAL" => Op::NotEqual,
                "BEGIN_WITH" => Op::BeginWith,
                "LESS_THAN" => Op::LessThan,
                "GREATER_THAN" => Op::GreaterThan,
                other => {
                    return Err(invalid(format!(
                        "Filter type {other} is not valid; use EQUAL, NOT_EQUAL, BEGIN_WITH, LESS_THAN or GREATER_THAN."
                    )));
                }
            };
            let is_time = key == "ExecutionTime";
            let time = if is_time {
                if op == Op::BeginWith {
                    return Err(invalid(
                        "Filter ExecutionTime compares times: use EQUAL, NOT_EQUAL, LESS_THAN or GREATER_THAN.".into(),
                    ));
                }
                let v = &values[0];
                Some(
                    v.parse::<f64>()
                        .or_else(|_| crate::clock::parse_filter_time(v))
                        .map_err(|_| {
                            invalid(format!(
                                "Filter ExecutionTime value {v} is not a time; write it in ISO 8601, for example 2024-01-01T10:10:10Z."
                            ))
                        })?,
                )
            } else {
                if matches!(op, Op::LessThan | Op::GreaterThan) {
                    return Err(invalid(format!(
                        "Filter {key} takes EQUAL, NOT_EQUAL or BEGIN_WITH; LESS_THAN and GREATER_THAN compare ExecutionTime only."
                    )));
                }
                None
            };
            Ok(Filter {
                key,
                op,
                values,
                time,
            })
        })
        .collect()
}

impl Filter {
    pub(super) fn passes(&self, field: Field<'_>) -> bool {
        match (field, self.time) {
            (Field::Time(t), Some(v)) => match self.op {
                Op::LessThan => t < v,
                Op::GreaterThan => t > v,
                // Times as SSM keeps them: to the second.
                Op::Equal => t.floor() == v.floor(),
                Op::NotEqual => t.floor() != v.floor(),
                Op::BeginWith => false,
            },
            (Field::Text(s), None) => match self.op {
                Op::Equal => self.values.iter().any(|v| v == s),
                Op::NotEqual => self.values.iter().all(|v| v != s),
                Op::BeginWith => self.values.iter().any(|v| s.starts_with(v.as_str())),
                Op::LessThan | Op::GreaterThan => false,
            },
            _ => false,
        }
    }
}

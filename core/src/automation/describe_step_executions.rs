//! DescribeAutomationStepExecutions: one execution's step executions,
//! filtered, in run order (or reversed), paged.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::AutomationContext;
use super::execution::{AutomationStatus, StepRecord};
use super::get::{named, runbook_of};
use super::view;
use crate::access::Authorizer;
use crate::clock::parse_filter_time;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{self, max_results};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StepsInput {
    automation_execution_id: Option<String>,
    filters: Vec<FilterInput>,
    max_results: Option<i64>,
    next_token: Option<String>,
    reverse_order: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct FilterInput {
    key: String,
    values: Vec<String>,
}

fn passes(key: &str, values: &[String], r: &StepRecord) -> Result<bool, SsmError> {
    Ok(match key {
        "StepName" => values.contains(&r.name),
        "Action" => values.contains(&r.action),
        "StepExecutionId" => values.contains(&r.step_execution_id),
        "StepExecutionStatus" => {
            for v in values {
                if AutomationStatus::parse(v).is_none() {
                    return Err(SsmError::InvalidFilterValue(format!(
                        "StepExecutionStatus {v} is not a status; use one of {}.",
                        AutomationStatus::ALL
                            .map(AutomationStatus::as_str)
                            .join(", ")
                    )));
                }
            }
            values.iter().any(|v| v == r.status.as_str())
        }
        "StartTimeBefore" => r.start_time < parse_filter_time(&values[0])?,
        "StartTimeAfter" => r.start_time > parse_filter_time(&values[0])?,
        "ParentStepExecutionId" | "ParentStepIteration" | "ParentStepIteratorValue" => {
            return Err(SsmError::InvalidFilterKey(format!(
                "Filter key {key} is not supported by Steward; use StepName, Action, StepExecutionId, StepExecutionStatus, StartTimeBefore or StartTimeAfter."
            )));
        }
        other => {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [StartTimeBefore, StartTimeAfter, StepExecutionStatus, StepExecutionId, StepName, Action, ParentStepExecutionId, ParentStepIteration, ParentStepIteratorValue]"
            )));
        }
    })
}

pub(super) async fn describe_step_executions(
    ctx: &AutomationContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: StepsInput = parse(body)?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    for f in &i.filters {
        if f.values.is_empty() || f.values.len() > 10 {
            return Err(SsmError::InvalidFilterValue(format!(
                "Filter {} takes 1 to 10 values.",
                f.key
            )));
        }
    }
    let e = named(
        ctx,
        caller,
        "ssm:DescribeAutomationStepExecutions",
        &json!({ "AutomationExecutionId": i.automation_execution_id }),
    )
    .await?;
    let runbook = runbook_of(ctx, &e).await;
    let mut steps: Vec<&StepRecord> = Vec::new();
    for r in &e.steps {
        let mut keep = true;
        for f in &i.filters {
            keep &= passes(&f.key, &f.values, r)?;
        }
        if keep {
            steps.push(r);
        }
    }
    if i.reverse_order == Some(true) {
        steps.reverse();
    }
    let (page, next) = paging::page_of(steps, limit, i.next_token.as_deref())?;
    let page: Vec<Value> = page
        .iter()
        .map(|r| view::step_execution(r, runbook.as_ref()))
        .collect();
    let mut out = json!({ "StepExecutions": page });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

//! DescribeAutomationExecutions: executions newest first, filtered as SSM
//! filters them, paged.

use serde::Deserialize;
use serde_json::{Value, json};

use super::context::AutomationContext;
use super::execution::{AutomationStatus, Execution};
use super::view;
use crate::access::Authorizer;
use crate::clock::parse_filter_time;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::max_results;

/// Store pages one call reads at most while its filters keep nothing.
const MAX_PAGES_PER_CALL: usize = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DescribeInput {
    filters: Vec<FilterInput>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct FilterInput {
    key: String,
    values: Vec<String>,
}

enum Filter {
    DocumentNamePrefix(Vec<String>),
    ExecutionStatus(Vec<AutomationStatus>),
    ExecutionId(Vec<String>),
    CurrentAction(Vec<String>),
    StartTimeBefore(f64),
    StartTimeAfter(f64),
    AutomationType(Vec<String>),
    ParentExecutionId(Vec<String>),
}

const KEYS: &str = "DocumentNamePrefix, ExecutionStatus, ExecutionId, ParentExecutionId, CurrentAction, StartTimeBefore, StartTimeAfter, AutomationType";

fn filter(f: FilterInput) -> Result<Filter, SsmError> {
    if f.values.is_empty() || f.values.len() > 10 {
        return Err(SsmError::InvalidFilterValue(format!(
            "Filter {} takes 1 to 10 values.",
            f.key
        )));
    }
    let time = |vals: &[String]| parse_filter_time(&vals[0]);
    Ok(match f.key.as_str() {
        "DocumentNamePrefix" => Filter::DocumentNamePrefix(f.values),
        "ExecutionStatus" => Filter::ExecutionStatus(
            f.values
                .iter()
                .map(|v| {
                    AutomationStatus::parse(v).ok_or_else(|| {
                        SsmError::InvalidFilterValue(format!(
                            "ExecutionStatus {v} is not a status; use one of {}.",
                            AutomationStatus::ALL
                                .map(AutomationStatus::as_str)
                                .join(", ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "ExecutionId" => Filter::ExecutionId(f.values),
        "CurrentAction" => Filter::CurrentAction(f.values),
        "StartTimeBefore" => Filter::StartTimeBefore(time(&f.values)?),
        "StartTimeAfter" => Filter::StartTimeAfter(time(&f.values)?),
        "AutomationType" => Filter::AutomationType(f.values),
        "ParentExecutionId" => Filter::ParentExecutionId(f.values),
        "TagKey" | "TargetResourceGroup" | "AutomationSubtype" | "OpsItemId" => {
            return Err(SsmError::InvalidFilterKey(format!(
                "Filter key {} is not supported by Steward; use {KEYS}.",
                f.key
            )));
        }
        other => {
            return Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'filters.1.member.key' failed to satisfy constraint: Member must satisfy enum value set: [{KEYS}, TagKey, TargetResourceGroup, AutomationSubtype, OpsItemId]"
            )));
        }
    })
}

fn passes(f: &Filter, e: &Execution) -> bool {
    let started = e.start_time.unwrap_or(e.requested_time);
    match f {
        Filter::DocumentNamePrefix(p) => p.iter().any(|p| e.document_name.starts_with(p.as_str())),
        Filter::ExecutionStatus(s) => s.contains(&e.status),
        Filter::ExecutionId(ids) => ids.contains(&e.execution_id),
        Filter::CurrentAction(a) => e.current().is_some_and(|r| a.contains(&r.action)),
        Filter::StartTimeBefore(t) => started < *t,
        Filter::StartTimeAfter(t) => started > *t,
        Filter::AutomationType(t) => t.iter().any(|t| t == "Local"),
        Filter::ParentExecutionId(ids) => e
            .parent_execution_id
            .as_ref()
            .is_some_and(|p| ids.contains(p)),
    }
}

pub(super) async fn describe_executions(
    ctx: &AutomationContext<'_>,
    caller: &dyn Authorizer,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: DescribeInput = parse(body)?;
    let limit = max_results(i.max_results, 1, 50, 50)? as u32;
    let filters: Vec<Filter> = i
        .filters
        .into_iter()
        .map(filter)
        .collect::<Result<_, _>>()?;
    caller.authorize("ssm:DescribeAutomationExecutions", &ctx.execution_arn("*"))?;
    let mut token = i.next_token;
    let mut out: Vec<Value> = Vec::new();
    for _ in 0..MAX_PAGES_PER_CALL {
        let page = ctx.store.list(limit, token.as_deref()).await?;
        out.extend(
            page.items
                .iter()
                .filter(|e| filters.iter().all(|f| passes(f, e)))
                .map(view::metadata),
        );
        token = page.next_token;
        if !out.is_empty() || token.is_none() {
            break;
        }
    }
    let mut answer = json!({ "AutomationExecutionMetadataList": out });
    if let Some(t) = token {
        answer["NextToken"] = json!(t);
    }
    Ok(answer)
}

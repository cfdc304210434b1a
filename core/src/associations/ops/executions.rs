//! DescribeAssociationExecutions: an association's runs, newest first,
//! with SSM's ExecutionId, Status and CreatedTime filters.

use serde::Deserialize;
use serde_json::{Value, json};

use super::required;
use crate::associations::context::{AssociationContext, check_uuid, does_not_exist};
use crate::associations::model::Execution;
use crate::clock::parse_filter_time;
use crate::error::SsmError;
use crate::error::parse_request as parse;
use crate::paging::{max_results, page_of};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Filter {
    key: String,
    value: String,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    association_id: Option<String>,
    filters: Option<Vec<Filter>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn check(f: &Filter) -> Result<(), SsmError> {
    if !["ExecutionId", "Status", "CreatedTime"].contains(&f.key.as_str()) {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{}' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [ExecutionId, Status, CreatedTime]",
            f.key
        )));
    }
    if !["EQUAL", "LESS_THAN", "GREATER_THAN"].contains(&f.kind.as_str()) {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{}' at 'filters.member.type' failed to satisfy constraint: Member must satisfy enum value set: [EQUAL, LESS_THAN, GREATER_THAN]",
            f.kind
        )));
    }
    if f.key != "CreatedTime" && f.kind != "EQUAL" {
        return Err(SsmError::InvalidFilter(format!(
            "Filter {} takes Type EQUAL only; LESS_THAN and GREATER_THAN are for CreatedTime.",
            f.key
        )));
    }
    Ok(())
}

fn keep(e: &Execution, f: &Filter) -> Result<bool, SsmError> {
    Ok(match f.key.as_str() {
        "ExecutionId" => e.execution_id == f.value,
        "Status" => e.status == f.value,
        _ => {
            let at = parse_filter_time(&f.value)?;
            match f.kind.as_str() {
                "LESS_THAN" => e.created < at,
                "GREATER_THAN" => e.created > at,
                _ => (e.created - at).abs() < 1.0,
            }
        }
    })
}

pub(crate) async fn describe_executions(
    ctx: &AssociationContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let i: Input = parse(body)?;
    let id = required(&i.association_id, "associationId")?;
    check_uuid(id, "associationId")?;
    let limit = max_results(i.max_results, 1, 50, 50)?;
    let filters = i.filters.unwrap_or_default();
    for f in &filters {
        check(f)?;
    }
    ctx.caller.authorize(
        "ssm:DescribeAssociationExecutions",
        &ctx.association_arn(id),
    )?;
    let all = ctx.store.executions(id).await?;
    if all.is_empty() && ctx.store.get(id).await?.is_none() {
        return Err(does_not_exist());
    }
    let mut kept = Vec::new();
    for e in all {
        let mut ok = true;
        for f in &filters {
            ok = ok && keep(&e, f)?;
        }
        if ok {
            kept.push(e);
        }
    }
    kept.sort_by(|a, b| {
        b.created
            .total_cmp(&a.created)
            .then_with(|| a.execution_id.cmp(&b.execution_id))
    });
    let (page, next) = page_of(kept, limit, i.next_token.as_deref())?;
    let mut out = json!({
        "AssociationExecutions": page.iter().map(Execution::to_json).collect::<Vec<_>>(),
    });
    if let Some(t) = next {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
